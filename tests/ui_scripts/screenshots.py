"""Opens the real app windows on an X display (Xvfb in tests) and saves real screenshots.

    DISPLAY=:99 python tests/ui_scripts/screenshots.py OUT_DIR DATA_DIR

The main window replays the demo recording through the real pipeline for a while, so the
preview, transcript, conversation and timeline show real content.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.config import Config  # noqa: E402
from app.core.paths import DataPaths  # noqa: E402
from app.pipeline.service import DaybookService  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402


def pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def shot(app: QApplication, path: Path) -> None:
    pump(app, 0.5)
    screen = app.primaryScreen()
    screen.grabWindow(0).save(str(path))  # the X server's root window: a real screenshot
    print(path)


def main() -> None:
    out, data = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    service = DaybookService(Config(), DataPaths(data).ensure())
    win = MainWindow(service, data / "config.toml")
    win.resize(1360, 860)
    win.move(0, 0)
    win.show()
    win.play_demo()  # starts off the GUI thread; the window says "starting…" meanwhile
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        pump(app, 0.5)
        said = [r for r in win.transcript.rows if r.state == "done" and r.text]
        if len(said) >= 3:
            break
    qid = win.ask("what did I have for breakfast?")
    while not win.exchanges[qid].done:
        pump(app, 0.1)
    shot(app, out / "main_window.png")
    win.tabs.setCurrentWidget(win.timeline)
    win.timeline.show_day(time.strftime("%Y-%m-%d"))
    pump(app, 2.0)
    shot(app, out / "timeline.png")
    clip = next((m for m in win.timeline.model.moments() if m.kind == "clip"), None)
    if clip is not None:  # the moment view: key frame, caption note, its episode
        win.timeline.open_moment(clip.id)
        pump(app, 1.0)
    shot(app, out / "timeline_moment.png")
    from app.ui.settings import SettingsDialog

    dialog = SettingsDialog(service, data / "config.toml", win)
    dialog.move(80, 60)
    dialog.show()
    shot(app, out / "settings.png")
    dialog.tabs.setCurrentIndex(1)  # Models
    shot(app, out / "settings_models.png")
    dialog.close()
    win.close()  # the pipeline drains and the service closes behind the closed window
    while not win.control.is_closed:
        pump(app, 0.1)


if __name__ == "__main__":
    main()
