"""Bad input gets a clear message, the right exit code, and loses nothing already stored."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from app.capture.audio_file import WavFileSource
from app.capture.video import Cv2FrameSource
from app.core.errors import InputError
from tests import mediagen
from tests.conftest import START, START_S, CliResult, Media, run_cli

pytestmark = pytest.mark.slow


def test_missing_files_are_named(tmp_path: Path) -> None:
    res = run_cli("ingest", "--video", str(tmp_path / "nope.mp4"), data_dir=tmp_path / "d")
    assert res.code == 5
    assert "video file not found" in res.err and "nope.mp4" in res.err
    res = run_cli("ingest", "--audio", str(tmp_path / "nope.wav"), data_dir=tmp_path / "d")
    assert res.code == 5
    assert "audio file not found" in res.err
    assert "Traceback" not in res.err


def test_nothing_to_ingest(tmp_path: Path) -> None:
    res = run_cli("ingest", data_dir=tmp_path)
    assert res.code == 5 and "nothing to ingest" in res.err


@pytest.mark.parametrize("content", [b"", b"this is not a video at all" * 100])
def test_empty_or_garbage_video(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=r"empty|cannot decode|no readable frames"):
        Cv2FrameSource(str(bad))


@pytest.mark.parametrize(("content", "message"), [
    (b"", "audio file is empty"),
    (b"RIFF....WAVEjunk" * 10, "not a PCM WAV file"),
    (b"ID3\x03\x00 an mp3 file" * 10, "not a PCM WAV file.*ffmpeg"),
])
def test_empty_or_garbage_wav(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message):
        WavFileSource(bad, start_s=0)


def test_wav_without_samples(tmp_path: Path) -> None:
    path = mediagen.write_wav(tmp_path / "empty.wav", np.zeros(0, np.int16))
    with pytest.raises(InputError, match="contains no audio"):
        WavFileSource(path, start_s=0)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        WavFileSource(tmp_path, start_s=0)
    with pytest.raises(InputError, match="directory"):
        Cv2FrameSource(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(media: Media, tmp_path: Path) -> None:
    locked = tmp_path / "locked.wav"
    locked.write_bytes(media.wav.read_bytes())
    locked.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        WavFileSource(locked, start_s=0)


def test_stereo_44k_wav_is_resampled_not_rejected(tmp_path: Path) -> None:
    speech = mediagen.speak("the parcel arrives on thursday morning")
    # Make a 44.1 kHz stereo file with ffmpeg (a real converter, not our own resampler).
    mono16 = mediagen.write_wav(tmp_path / "m.wav", np.concatenate(
        [np.zeros(16000, np.int16), speech, np.zeros(16000, np.int16)]))
    stereo = tmp_path / "stereo44.wav"
    import subprocess

    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(mono16), "-ac", "2", "-ar",
                    "44100", str(stereo)], check=True)
    with wave.open(str(stereo)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 44100)
    src = WavFileSource(stereo, start_s=0)
    assert src.converted
    import threading

    pcm = np.concatenate([c.pcm for c in src.chunks(threading.Event())])
    assert abs(len(pcm) - (len(speech) + 32000)) <= 2  # same duration at 16 kHz
    data_dir = tmp_path / "d"
    res = run_cli("ingest", "--audio", str(stereo), "--start", START, "--json", data_dir=data_dir)
    assert res.code == 0, res.err
    assert res.json()["utterances"] == 1
    assert "converting to 16 kHz mono" in res.err
    top = run_cli("ask", "what happens on thursday", "--json",
                  data_dir=data_dir).json()["citations"][0]
    from app.core.timefmt import parse_iso

    assert parse_iso(top["t0"]) == pytest.approx(START_S + 1.0, abs=0.6)


def test_bad_input_loses_nothing_already_stored(media: Media, tmp_path: Path) -> None:
    res = run_cli("ingest", "--audio", str(media.wav), "--start", START, data_dir=tmp_path)
    assert res.code == 0, res.err
    before = run_cli("timeline", "--day", START[:10], "--json", data_dir=tmp_path).json()
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    res = run_cli("ingest", "--audio", str(empty), data_dir=tmp_path)
    assert res.code == 5 and "empty" in res.err
    after = run_cli("timeline", "--day", START[:10], "--json", data_dir=tmp_path).json()
    assert after == before and len(after["moments"]) == 3


# --- one clear line, the right exit code, nothing lost ------------------------------------------


def _one_error(res: CliResult, code: int, *needles: str) -> None:
    """Exactly one `daybook: error:` line naming the problem, `code`, no traceback."""
    assert res.code == code, res.err
    assert "Traceback" not in res.err
    errors = [line for line in res.err.splitlines() if line.startswith("daybook: error:")]
    assert len(errors) == 1, res.err
    for needle in needles:
        assert needle in errors[0], errors[0]


def _tiny_wav(tmp_path: Path) -> Path:
    return mediagen.write_wav(tmp_path / "tiny.wav", np.zeros(1600, np.int16))


@pytest.mark.parametrize(("start", "reason"), [
    ("garbage", ""),
    ("2026-13-45", "(month must be in 1..12)"),
])
def test_start_that_is_not_a_time(tmp_path: Path, start: str, reason: str) -> None:
    data_dir = tmp_path / "d"
    res = run_cli("ingest", "--audio", str(_tiny_wav(tmp_path)), "--start", start,
                  data_dir=data_dir)
    _one_error(res, 5, f"--start: {start!r} is not a date and time", reason,
               "expected ISO-8601, e.g. 2026-11-24T09:00")
    assert not data_dir.exists()  # refused before anything was written


def test_wav_that_says_0_hz(tmp_path: Path) -> None:
    from tests.test_audio_file import _raw_wav

    wav = _raw_wav(tmp_path / "zero.wav", 0, b"\0\0" * 1000)
    res = run_cli("ingest", "--audio", str(wav), data_dir=tmp_path / "d")
    _one_error(res, 5, "sample rate is 0 Hz", "Daybook reads 1 kHz to 384 kHz", "zero.wav")


def test_truncated_wav_loses_only_the_partial_frame(tmp_path: Path) -> None:
    from tests.test_audio_file import _raw_wav

    # 2 s of samples, then half a sample; the header claims 4 s (a recording cut off).
    samples = (np.random.default_rng(1).normal(0, 300, 32000)).astype("<i2")
    wav = _raw_wav(tmp_path / "cut.wav", 16000, samples.tobytes() + b"\x01",
                   claimed_bytes=4 * 32000)
    res = run_cli("ingest", "--audio", str(wav), "--start", START, "--json",
                  data_dir=tmp_path / "d")
    assert res.code == 0, res.err
    assert "Traceback" not in res.err
    summary = res.json()
    assert summary["seconds_ingested"] == 32000 / 16000  # every whole sample
    assert summary["errors"] == []


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    res = run_cli("timeline", data_dir=a_file)
    _one_error(res, 1, f"{a_file} is a file, not a folder", "--data-dir")
    res = run_cli("timeline", data_dir=a_file / "daybook")
    _one_error(res, 1, f"cannot use the data dir {a_file / 'daybook'}",
               "part of the path is a file, not a folder", "--data-dir")
    assert a_file.read_text() == "mine"


def test_another_users_data_dir_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 4242, 4242)
    else:
        theirs = Path("/")  # root's
    res = run_cli("timeline", data_dir=theirs)
    _one_error(res, 1, f"the data dir {theirs} belongs to another user", "--data-dir")
    if os.geteuid() == 0:
        assert list(theirs.iterdir()) == []  # nothing written into it


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """mount(options) → a fresh tmpfs (root only); skipped with the reason where not possible."""
    import shutil
    import subprocess

    mounted: list[Path] = []

    def mount(options: str) -> Path:
        if os.geteuid() != 0 or not shutil.which("mount"):
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (no CAP_SYS_ADMIN?): {res.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_unwritable_data_dir(tmp_path: Path, tiny_tmpfs) -> None:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        res = run_cli("timeline", data_dir=locked)
        _one_error(res, 1, f"cannot use the data dir {locked}: permission denied", "--data-dir")
        return
    # Root writes through any mode: a read-only mount is what stops it.
    read_only = tiny_tmpfs("ro,size=64k")
    res = run_cli("timeline", data_dir=read_only)
    _one_error(res, 1, f"cannot use the data dir {read_only}: the file system is read-only",
               "--data-dir")


def test_full_disk_at_start_up(tiny_tmpfs) -> None:
    disk = tiny_tmpfs("size=64k")
    res = run_cli("ingest", "--audio", str(disk / "any.wav"), data_dir=disk / "d")
    _one_error(res, 1, f"the disk that holds the data dir {disk / 'd'} is full", "KB free",
               "needs at least 64.0 MB", "free some space")
    # Completely full: the check write itself fails.
    with open(disk / "filler", "wb", buffering=0) as fh, pytest.raises(OSError, match="space"):
        while True:
            fh.write(b"\0" * 4096)
    res = run_cli("ingest", "--audio", str(disk / "any.wav"), data_dir=disk / "d")
    _one_error(res, 1, f"cannot use the data dir {disk / 'd'}: the disk is full")
    # Listing (and so removing) models still works, to free space.
    res = run_cli("models", "list", data_dir=disk / "d")
    assert res.code == 0 and "Models folder" in res.out, res.err


def test_low_disk_is_refused_in_process(tmp_path: Path) -> None:
    from app.core.paths import DataDirError, DataPaths

    with pytest.raises(DataDirError, match="is full: .* free; Daybook needs at least") as info:
        DataPaths(tmp_path / "d").ensure(min_free_bytes=1 << 62)
    assert info.value.exit_code == 1


def test_an_existing_data_dir_keeps_its_mode(tmp_path: Path) -> None:
    import stat

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)
    res = run_cli("models", "list", data_dir=shared)
    assert res.code == 0, res.err
    assert mode(shared) == 0o750  # not chmodded behind the user's back
    warning = f"the data dir {shared} can be read by other users (mode 750); `chmod 700"
    assert warning in res.err
    assert warning in (shared / "logs" / "daybook.log").read_text()
    assert {mode(shared / d) for d in ("memory", "logs", "models")} == {0o700}  # created here
    new = tmp_path / "new" / "daybook"
    res = run_cli("models", "list", data_dir=new)
    assert res.code == 0, res.err
    assert mode(new) == 0o700 and "read by other users" not in res.err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0.0"])
def test_config_numbers_must_be_finite_and_in_range(tmp_path: Path, value: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[video]\nsample_fps = {value}\n")
    res = run_cli("timeline", data_dir=tmp_path / "d", env={"DAYBOOK_CONFIG": str(config)})
    expected = "is out of range (0.05 to 30.0)" if value == "0.0" else "expected a finite number"
    _one_error(res, 3, f"{config}: [video] sample_fps: ", expected)


def test_an_unforeseen_failure_is_one_line_and_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal

    from app import cli

    def boom(args: object) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(cli, "cmd_timeline", boom)
    before = signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(["timeline", "--data-dir", str(tmp_path / "d")])
    finally:
        signal.signal(signal.SIGTERM, before)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("daybook: error: unexpected RuntimeError: something nobody expected (")
    assert err.count("\n") == 1 and "Traceback" not in err


# --- logs respect privacy ------------------------------------------------------------------------


def test_logs_hold_no_question_or_transcript_text_unless_debug(media: Media, tmp_path: Path
                                                               ) -> None:
    data_dir = tmp_path / "d"
    log_file = data_dir / "logs" / "daybook.log"
    res = run_cli("ingest", "--audio", str(media.wav), "--start", START, data_dir=data_dir)
    assert res.code == 0, res.err
    res = run_cli("ask", "what did I have for breakfast", data_dir=data_dir)
    assert res.code == 0, res.err
    assert "breakfast" in res.out  # the answer quotes what was heard…
    text = log_file.read_text()
    for word in ("breakfast", "eggs", "meeting", "tomato"):  # …the log does not, nor the question
        assert word not in text.lower()
    assert "asked a question (29 chars): " in text
    debug = tmp_path / "debug.toml"
    debug.write_text('[logging]\nlevel = "DEBUG"\n')
    res = run_cli("ask", "what did I have for breakfast", data_dir=data_dir,
                  env={"DAYBOOK_CONFIG": str(debug)})
    assert res.code == 0, res.err
    assert "asked 'what did I have for breakfast'" in log_file.read_text()


@pytest.fixture
def debug_log(tmp_path: Path):
    """This process logs to tmp_path/logs/daybook.log at DEBUG (as `[logging] level = "DEBUG"`
    does); the test runner's own log handlers come back afterwards."""
    import logging

    from app.core.config import LoggingConfig
    from app.core.logs import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    (tmp_path / "logs").mkdir()
    setup_logging(LoggingConfig(level="DEBUG", max_file_bytes=10_000, backup_count=2),
                  tmp_path / "logs", console_level="CRITICAL")
    yield tmp_path / "logs" / "daybook.log"
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def _all_logs(log_file: Path) -> str:
    return "".join(p.read_text() for p in sorted(log_file.parent.glob("daybook.log*")))


def test_forget_logged_by_moment_id_and_time_range(debug_log: Path) -> None:
    import logging
    import time

    from app.core.logs import forget_logged

    log = logging.getLogger("test.privacy")
    log.debug("question 1 (utt-1795165201680): 'where are my keys'")
    log.info("stored 2 moments: utt-17951652016801 clip-1795165200000")  # another id, longer
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("answering question 1 (utt-1795165201680) failed")
    assert forget_logged(ids=["utt-1795165201680"]) == 2
    text = debug_log.read_text()
    assert "where are my keys" not in text and "boom" not in text  # its traceback went too
    assert "utt-17951652016801" in text
    time.sleep(0.01)
    t0 = time.time()
    log.debug("question 2: 'what is the wifi password'")
    t1 = time.time() + 0.002
    time.sleep(0.01)
    log.info("after the range")
    assert forget_logged(t0, t1) == 1
    text = debug_log.read_text()
    assert "wifi" not in text and "after the range" in text and "clip-1795165200000" in text
    log.info("still logging")  # the handler reopens the rewritten file
    assert debug_log.read_text().endswith("test.privacy: still logging\n")


def test_forget_logged_reaches_rotated_files(debug_log: Path) -> None:
    import logging

    from app.core.logs import forget_logged

    log = logging.getLogger("test.privacy")
    log.debug("question 7 (utt-42): 'my secret question'")
    for i in range(120):  # ≈16 KB: the file (10 KB at most) rotates once
        log.info("filler line %d %s", i, "x" * 60)
    assert (debug_log.parent / "daybook.log.1").exists()
    assert "my secret question" not in debug_log.read_text()
    assert "my secret question" in _all_logs(debug_log)
    assert forget_logged(ids=["utt-42"]) == 1
    assert "my secret question" not in _all_logs(debug_log)


def test_deleting_and_retention_forget_what_the_log_holds(debug_log: Path, tmp_path: Path) -> None:
    import threading
    import time

    from app.core.config import Config
    from app.core.events import AnswerFinished, MomentsStored, SoundClass, UtteranceTranscribed
    from app.core.paths import DataPaths
    from app.memory.base import Moment
    from app.pipeline.service import DaybookService

    service = DaybookService(Config().replace(privacy={"retention_days": 1}),
                             DataPaths(tmp_path / "data").ensure())
    try:
        done = threading.Event()
        service.bus.subscribe(lambda e: done.set() if isinstance(e, AnswerFinished) else None)
        now = time.time()
        said = Moment("utt-77", "utterance", now - 3, now - 1, "Daybook, where are my keys?")
        service.store.add([(said, service.embedder.embed([said.text])[0])], service.embedder.name)
        service.bus.emit(MomentsStored(ids=("utt-77",), kinds=("utterance",), t1_s=now))
        service.bus.emit(UtteranceTranscribed("utt-77", said.text, said.t0_s, said.t1_s,
                                              SoundClass.SPEECH, "test"))
        assert done.wait(10)
        assert "where are my keys" in _all_logs(debug_log)  # at DEBUG, and only at DEBUG
        service.delete([said])
        assert "where are my keys" not in _all_logs(debug_log)
        assert "utt-77" not in _all_logs(debug_log)

        done.clear()
        t0 = time.time()
        service.ask("what is the wifi password")  # typed: no moment names it
        assert done.wait(10)
        assert "wifi password" in _all_logs(debug_log)
        service.delete_range(t0, time.time() + 0.01)
        assert "wifi password" not in _all_logs(debug_log)

        time.sleep(0.01)
        service.apply_retention(now_s=time.time() + 86_400)  # everything logged is a day old
        lines = _all_logs(debug_log).splitlines()
        assert len(lines) == 1 and "retention: forgot 0 moments and" in lines[0]
    finally:
        service.close()
