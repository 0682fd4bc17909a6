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
from tests.conftest import START, START_S, Media, run_cli

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
