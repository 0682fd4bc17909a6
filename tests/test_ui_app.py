"""The app as installers and users start it: --self-test, a second instance, no display."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.core.lock import DataDirLock
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
OFFSCREEN = {"QT_QPA_PLATFORM": "offscreen"}


def test_self_test_runs_the_demo_and_exits_0(tmp_path: Path) -> None:
    """No model downloaded, no devices: the demo is replayed, heard by the default recogniser,
    and a typed question about it is answered from what was heard."""
    shot = tmp_path / "window.png"
    res = run_cli("--self-test", "--screenshot", str(shot), data_dir=tmp_path / "data",
                  env=OFFSCREEN, timeout_s=120)
    assert res.code == 0, res.err
    result = json.loads(res.out.strip().splitlines()[-1])
    assert result["self_test"] == "passed"
    assert result["preview_frames"] >= 3 and result["transcribed_utterances"] >= 1
    assert result["timeline_moments"] >= 1 and result["first_run_guidance"] is True
    assert result["question"] == "what did I have for breakfast?"
    assert "scrambled eggs and coffee for breakfast" in result["answer"].lower(), result
    assert result["screenshot"] == str(shot) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_instance_is_refused(tmp_path: Path) -> None:
    with DataDirLock(tmp_path / "daybook.lock"):
        res = run_cli("--self-test", data_dir=tmp_path, env=OFFSCREEN)
    assert res.code == 4 and "in use by process" in res.err


def test_no_display_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--data-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "no display" in proc.stderr and "xvfb-run" in proc.stderr


def test_cold_start_reports_when_the_window_is_shown(tmp_path: Path) -> None:
    res = run_cli("--exit-after-show", data_dir=tmp_path, env=OFFSCREEN)
    assert res.code == 0, res.err
    shown = json.loads(res.out.strip().splitlines()[-1])["window_shown_after_s"]
    assert 0 < shown < 60
