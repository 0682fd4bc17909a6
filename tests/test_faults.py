"""Fault injection on the real parts: the Chroma store's and the recogniser's child processes
killed (SIGKILL) or hung (SIGSTOP: a child that stops answering) in the middle of a real-time
ingest and of a live `record` from a PulseAudio microphone, and Ctrl-C as a terminal sends it (to
the whole process group). Afterwards every sentence is remembered, with its words."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests import mediagen, pulse
from tests.conftest import ROOT, START, START_S, run_cli

pytestmark = pytest.mark.slow

SENTENCES = [(1.0, "the blue car is parked outside"),
             (5.0, "call the dentist about monday"),
             (9.0, "the keys are in the kitchen drawer"),
             (13.0, "buy milk and bread on the way home")]
TOTAL_S = 17.0
ENGINES = {"store": "memory store", "asr": "speech recogniser"}


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("faults")
    return mediagen.write_wav(d / "talk.wav", mediagen.conversation(SENTENCES, TOTAL_S))


def _config(tmp_path: Path) -> Path:
    """A short store timeout, so a hung store is noticed within the test."""
    path = tmp_path / "config.toml"
    path.write_text("[memory]\nstore_timeout_s = 3.0\n")
    return path


def _log(data_dir: Path) -> str:
    path = data_dir / "logs" / "daybook.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(data_dir: Path, pattern: str, proc: subprocess.Popen, timeout_s: float = 60
              ) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if match := re.search(pattern, _log(data_dir)):
            return match
        assert proc.poll() is None, f"daybook ended early:\n{_log(data_dir)[-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not logged in {timeout_s} s:\n{_log(data_dir)[-3000:]}")


def _engine_pid(data_dir: Path, engine: str, proc: subprocess.Popen) -> int:
    _wait_for(data_dir, rf"{engine} started \(pid \d+\)", proc)
    return int(re.findall(rf"{engine} started \(pid (\d+)\)", _log(data_dir))[-1])


def _inject(fault: str, data_dir: Path, proc: subprocess.Popen) -> None:
    """After the first utterance is committed: kill or hang an engine."""
    _wait_for(data_dir, r"stored \d+ moments: .*utt-", proc)
    kind, engine = fault.split("-")
    pid = _engine_pid(data_dir, ENGINES[engine], proc)
    if kind == "kill" and engine == "asr":
        # Killed while it holds an utterance: stopped now, so the next sentence is sent to it
        # and waits there; killed once that sentence has ended.
        os.kill(pid, signal.SIGSTOP)
        time.sleep(4.5)
    os.kill(pid, signal.SIGKILL if kind == "kill" else signal.SIGSTOP)


def _remembered(data_dir: Path) -> list[dict]:
    res = run_cli("timeline", "--day", START[:10], "--json", data_dir=data_dir)
    assert res.code == 0, res.err
    return [m for m in res.json()["moments"] if m["kind"] == "utterance"]


def _assert_remembered(data_dir: Path, until_s: float = TOTAL_S) -> None:
    """One utterance, with words, for every sentence that ended before `until_s`."""
    said = _remembered(data_dir)
    starts = [mediagen_time(m["t0"]) - START_S for m in said]
    expected = [t for t, text in SENTENCES if t + len(text.split()) * 0.45 < until_s]
    assert len(said) >= len(expected), (starts, [m["text"] for m in said])
    for t in expected:
        near = [m for m, s in zip(said, starts, strict=True) if abs(s - t) < 0.9]
        assert len(near) == 1, (t, starts)
        assert near[0]["text"], f"the sentence at {t} s was kept without its words: {said}"


def mediagen_time(iso_text: str) -> float:
    from app.core.timefmt import parse_iso

    return parse_iso(iso_text)


def _summary(out: str) -> dict:
    return json.loads(out)


@pytest.mark.parametrize("fault", ["kill-store", "hang-store", "kill-asr"])
def test_ingest_survives_an_engine_fault(fault: str, talk: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "DAYBOOK_CONFIG": str(_config(tmp_path))}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "ingest", "--audio", str(talk), "--start", START,
         "--realtime", "--json", "--data-dir", str(data_dir)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _inject(fault, data_dir, proc)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err  # everything was stored in the end
    summary = _summary(out)
    engine = ENGINES[fault.split("-")[1]]
    assert summary["engines"][engine]["failures"] >= 1, summary
    assert summary["engines"][engine]["restarts"] >= 1, summary
    assert summary["memory"]["kept"] == 0 and summary["utterances"] == len(SENTENCES)
    if fault == "kill-asr":
        assert summary["untranscribed"] == {"failed": 1, "transcribed_again": 1, "waiting": 0}
    assert "(recovered)" not in err  # --json: the warnings are in the summary
    assert summary["warnings"]
    _assert_remembered(data_dir)


def test_ctrl_c_to_the_process_group_keeps_what_was_heard(talk: Path, tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the children too: they ignore it, the parent drains."""
    data_dir = tmp_path / "data"
    env = {**os.environ, "DAYBOOK_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "ingest", "--audio", str(talk), "--start", START,
         "--realtime", "--json", "--data-dir", str(data_dir)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group, as a shell gives a job
    try:
        _wait_for(data_dir, r"pipeline started", proc)
        time.sleep(11.4)  # the third sentence has just ended: it is being recognised
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    summary = _summary(out)
    assert summary["interrupted"] and summary["memory"]["kept"] == 0
    assert summary["engines"]["speech recogniser"]["failures"] == 0, summary
    heard_s = summary["seconds_ingested"]
    assert 9.0 < heard_s < TOTAL_S - 1, heard_s
    _assert_remembered(data_dir, until_s=heard_s)
    # The children are gone with it.
    assert "did not exit" not in _log(data_dir)


@pytest.mark.pulse
@pytest.mark.skipif(not pulse.available(), reason="pulseaudio is not installed")
@pytest.mark.parametrize("fault", ["kill-store", "hang-store", "kill-asr"])
def test_live_record_survives_an_engine_fault(fault: str, talk: Path, tmp_path: Path) -> None:
    speech = mediagen.read_wav(talk)
    data_dir = tmp_path / "data"
    with tempfile.TemporaryDirectory(prefix="daybook-pulse-") as d, \
            pulse.PulseServer(Path(d)) as server:
        env = {**os.environ, **server.env, "DAYBOOK_CONFIG": str(_config(tmp_path))}
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "record", "--camera", "", "--duration",
             str(TOTAL_S + 6), "--json", "--data-dir", str(data_dir)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = ""
            for _ in range(20):  # said once the microphone really records
                line += proc.stderr.readline()
                if "recording from" in line or proc.poll() is not None:
                    break
            assert "recording from microphone" in line, line
            t0 = time.time()
            server.feed(speech)
            _inject(fault, data_dir, proc)
            out, rest = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = line + rest
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    summary = _summary(out)
    engine = ENGINES[fault.split("-")[1]]
    assert summary["engines"][engine]["failures"] >= 1, summary
    assert summary["memory"]["kept"] == 0 and summary["utterances"] == len(SENTENCES), summary
    said = _remembered_live(data_dir, t0)
    assert len(said) == len(SENTENCES), said
    assert all(m["text"] for m in said), said


def _remembered_live(data_dir: Path, t0: float) -> list[dict]:
    from app.core.timefmt import local_day

    said = []
    for day in sorted({local_day(t0), local_day(time.time())}):  # a run may cross midnight
        res = run_cli("timeline", "--day", day, "--json", data_dir=data_dir)
        assert res.code == 0, res.err
        said += [m for m in res.json()["moments"] if m["kind"] == "utterance"]
    return said
