"""Shared fixtures: generated media (espeak-ng speech, ffmpeg video) and a CLI runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# A job started with '&' from a script inherits SIGINT ignored, and so would every Daybook the
# tests start (Python keeps an ignored SIGINT: no KeyboardInterrupt). The tests that send Ctrl-C
# test what a terminal gives: a handled SIGINT here is reset to the default in each child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import mediagen  # noqa: E402

# Spoken lines of the standard test recording: (offset in seconds, text). The words checked in
# tests ("breakfast", "meeting", "o'clock", "water") are heard by the default recogniser.
LINES = [
    (2.0, "I had scrambled eggs and coffee for breakfast"),
    (10.0, "the meeting with Alice is at three o'clock"),
    (18.0, "remember to water the tomato plants"),
]
DURATION_S = 26.0
SCENE_S = [8.0, 8.0, 10.0]
START = "2026-11-20T09:00:00+00:00"
START_S = 1_795_165_200.0  # START as POSIX seconds


@dataclass(frozen=True)
class Media:
    wav: Path
    video: Path
    dir: Path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    d = tmp_path_factory.mktemp("media")
    wav = mediagen.write_wav(d / "talk.wav", mediagen.conversation(LINES, DURATION_S))
    video = mediagen.scenes_video(d / "scenes.mp4", SCENE_S)
    return Media(wav=wav, video=video, dir=d)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


def run_cli(*args: str, data_dir: Path, timeout_s: float = 120, env: dict | None = None
            ) -> CliResult:
    """Run `python main.py ARGS --data-dir DIR` in a fresh process (a real restart each time)."""
    full_env = {**os.environ, "DAYBOOK_CONFIG": str(data_dir / "no-config.toml"), **(env or {})}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args, "--data-dir",
                           str(data_dir)], capture_output=True, text=True, timeout=timeout_s,
                          env=full_env, cwd=ROOT)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli
