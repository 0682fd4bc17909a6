"""Starting the desktop app: lock, service, window, sources; and the installer's self-test."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from app.core.config import load_config
from app.core.errors import DaybookError, ExitCode
from app.core.lock import DataDirLock
from app.core.logs import setup_logging
from app.core.paths import default_config_path, resolve_data_dir
from app.core.timefmt import local_day

log = logging.getLogger(__name__)
DEMO_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo"


def replay_sources(video: str | None, audio: str | None) -> tuple[Any, Any, list[str]]:
    """Sources that replay files at real-time pace, as if live; problems are returned."""
    from app.capture.audio_file import WavFileSource
    from app.capture.video import Cv2FrameSource
    from app.pipeline.service import PREVIEW_FPS

    now = time.time()
    problems: list[str] = []
    a = v = None
    if audio:
        try:
            a = WavFileSource(Path(audio), start_s=now, realtime=True)
        except DaybookError as exc:
            problems.append(str(exc))
    if video:
        try:
            v = Cv2FrameSource(video, max_fps=PREVIEW_FPS, start_s=now, realtime=True)
        except DaybookError as exc:
            problems.append(str(exc))
    return a, v, problems


def live_sources(cfg: Any) -> tuple[Any, Any, list[str]]:
    from app.pipeline.factory import open_live_sources
    from app.pipeline.service import PREVIEW_FPS

    cfg = cfg.replace(video={"sample_fps": max(cfg.video.sample_fps, PREVIEW_FPS)})
    return open_live_sources(cfg, camera=cfg.capture.camera, microphone=cfg.capture.microphone)


def run_gui(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    t_start = time.perf_counter()
    if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM")):
        raise DaybookError("no display to open the window on. Use the command line instead "
                           "(python main.py --help), or run under a virtual display: "
                           "xvfb-run -a python main.py")
    config_path = default_config_path(args.config)
    cfg = load_config(config_path)
    paths = resolve_data_dir(args.data_dir, cfg.storage.data_dir).ensure()
    setup_logging(cfg.logging, paths.logs, console_level="INFO" if args.verbose else "WARNING")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Daybook")
    favour_gui_thread()
    try:
        lock = DataDirLock(paths.lock_file).acquire()
    except DaybookError as exc:
        if not args.self_test:
            QMessageBox.critical(None, "Daybook is already running", str(exc))
        print(f"daybook: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    from app.pipeline.service import DaybookService
    from app.ui.main_window import MainWindow

    service = DaybookService(cfg, paths)
    window = MainWindow(service, config_path)
    window.demoRequested.connect(lambda: _start(window, *replay_sources(
        str(DEMO_DIR / "demo.mp4"), str(DEMO_DIR / "demo.wav"))))
    window.show()
    app.processEvents()  # painted, not just mapped
    settle_memory()
    shown_s = time.time() - _process_start_s()
    log.info("window shown %.2f s after the process started (%.2f s in run_gui)", shown_s,
             time.perf_counter() - t_start)
    if args.exit_after_show:  # bench/gui.py: cold start to window shown
        print(json.dumps({"window_shown_after_s": round(shown_s, 3)}))
        service.close()
        lock.release()
        return 0
    if args.self_test or args.replay or args.audio:
        video = str(DEMO_DIR / "demo.mp4") if args.self_test and not args.replay else args.replay
        audio = str(DEMO_DIR / "demo.wav") if args.self_test and not args.audio else args.audio
        _start(window, *replay_sources(video, audio))
    else:
        _start(window, *live_sources(cfg))
    checker = SelfTest(window, service, args.self_test_s) if args.self_test else None
    try:
        code = app.exec()
    finally:
        service.close()
        lock.release()
    return checker.exit_code if checker is not None else code


def _start(window: Any, audio: Any, video: Any, problems: list[str]) -> None:
    service = window.service
    models_missing = [role for role, text in (("speech", "asr"), ("voice", "vad"))
                      if service.models is None or service.models.best(text) is None]
    notes = list(problems)
    if audio is None:
        notes.append("No microphone: nothing is heard.")
    if video is None:
        notes.append("No camera: nothing is seen.")
    if models_missing:
        notes.append("No models downloaded: using the built-in speech recogniser (rough) and "
                     "voice detector.")
    if audio is None and video is None:
        window.show_first_run(notes)
        return
    service.start(audio=audio, video=video)
    settle_memory()  # what starting the pipeline imported and built, too
    window.problems = []
    window.banner.hide()
    if notes and (audio is None or video is None):
        window.show_first_run(notes)
    window.refresh_status()


GUI_SWITCH_INTERVAL_S = 0.002


def favour_gui_thread() -> None:
    """Shorten the GIL's switch interval (5 ms by default) in the GUI process.

    A thread waiting for the GIL asks for it after one interval, and when several worker threads
    also want it, it can lose that race several times in a row. With the default interval the
    GUI thread's worst wait during a flat-out ingest was 26–38 ms in about one run in three; at
    2 ms it stayed at 10–16 ms in 12 of 12 runs, with the same throughput (bench/gui.py)."""
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)


def settle_memory() -> None:
    """Collect once, then freeze what start-up allocated (Qt, Chroma, numpy: ~10^6 objects)
    into the permanent generation. Without this, each full collection walks them all while
    holding the GIL: 15–60 ms freezes of the GUI, measured by bench/gui.py."""
    import gc

    gc.collect()
    gc.freeze()


def _process_start_s() -> float:
    import psutil

    return float(psutil.Process().create_time())


class SelfTest:
    """Runs the demo through the real pipeline and checks the window really updated."""

    def __init__(self, window: Any, service: Any, limit_s: float) -> None:
        from PySide6.QtCore import QTimer

        self.window = window
        self.service = service
        self.deadline = time.monotonic() + limit_s
        self.exit_code = 1
        self.timer = QTimer(window)
        self.timer.timeout.connect(self.check)
        self.timer.start(250)

    def results(self) -> dict[str, Any]:
        day = local_day(time.time())
        said = [r for r in self.window.transcript.rows if r.state == "done" and r.text]
        return {
            "preview_frames": self.window.frames_shown,
            "transcribed_utterances": len(said),
            "timeline_moments": self.window.timeline.model.moment_count(),
            "stored_moments": len(self.service.moments_on_day(day)),
        }

    def check(self) -> None:
        from PySide6.QtWidgets import QApplication

        r = self.results()
        ok = (r["preview_frames"] >= 3 and r["transcribed_utterances"] >= 1
              and r["timeline_moments"] >= 1)
        if ok or time.monotonic() > self.deadline:
            self.timer.stop()
            self.exit_code = int(ExitCode.OK if ok else ExitCode.FAILURE)
            print(json.dumps({"self_test": "passed" if ok else "failed", **r}))
            QApplication.instance().quit()  # type: ignore[union-attr]
