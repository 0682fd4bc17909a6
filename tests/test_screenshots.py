"""Real windows on a virtual X display (Xvfb), with screenshots saved as PNG artefacts under
test-artifacts/screenshots/ (look at them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")]

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"


def test_screenshots_under_xvfb(tmp_path: Path) -> None:
    display = f":{100 + os.getpid() % 500}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        assert xvfb.poll() is None, "Xvfb did not start"
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "DAYBOOK_CONFIG": str(tmp_path / "none.toml")}
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "ui_scripts" / "screenshots.py"),
                               str(ARTIFACTS), str(tmp_path / "data")], env=env,
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    from PySide6.QtGui import QImage

    for name in ("main_window", "timeline", "timeline_moment", "settings", "settings_models"):
        path = ARTIFACTS / f"{name}.png"
        image = QImage(str(path))
        assert not image.isNull() and image.width() == 1440, name
        # Not a blank screen: many distinct colours were drawn.
        colours = {image.pixel(x, y) for x in range(0, 1440, 3) for y in range(0, 900, 3)}
        assert len(colours) > 50, f"{name} looks blank ({len(colours)} colours)"
