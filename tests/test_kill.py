"""A process killed with SIGKILL mid-ingest leaves a store that opens and holds every utterance
it had committed (the memory worker logs each committed batch)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import mediagen
from tests.conftest import ROOT, START, run_cli

pytestmark = pytest.mark.slow

SENTENCES = ["the blue car is parked outside", "call the dentist about monday",
             "the keys are in the kitchen drawer", "buy milk and bread on the way home",
             "the printer on the second floor is broken", "the train leaves at seven fifteen"]


def test_sigkill_during_ingest_keeps_committed_utterances(tmp_path: Path) -> None:
    lines = [(1.0 + 4.0 * i, s) for i, s in enumerate(SENTENCES)]
    wav = mediagen.write_wav(tmp_path / "long.wav", mediagen.conversation(lines, 26.0))
    video = mediagen.scenes_video(tmp_path / "v.mp4", [13.0, 13.0])
    data_dir = tmp_path / "data"
    log_file = data_dir / "logs" / "daybook.log"
    env = {**os.environ, "DAYBOOK_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "ingest", "--audio", str(wav),
                             "--video", str(video), "--start", START, "--realtime",
                             "--data-dir", str(data_dir)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    committed: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            text = log_file.read_text() if log_file.exists() else ""
            committed = re.findall(r"\b(utt-\d+)\b", " ".join(
                line for line in text.splitlines() if "stored" in line))
            if len(committed) >= 2:
                break
            assert proc.poll() is None, "ingest ended before it could be killed"
            time.sleep(0.05)
        assert len(committed) >= 2, "no utterance was committed in time"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    # The store opens (the stale lock is taken over) and holds everything that was committed.
    res = run_cli("timeline", "--day", START[:10], "--json", "-v", data_dir=data_dir)
    assert res.code == 0, res.err
    assert "took over a stale lock" in res.err
    ids = {m["id"] for m in res.json()["moments"]}
    assert set(committed) <= ids
    # It was really cut short: not every sentence made it.
    said = [m for m in res.json()["moments"] if m["kind"] == "utterance"]
    assert len(said) < len(SENTENCES)
    # And ingest can carry on into the same store afterwards.
    res = run_cli("ingest", "--audio", str(wav), "--start", START, "--json", data_dir=data_dir)
    assert res.code == 0, res.err
    assert res.json()["utterances"] == len(SENTENCES)
