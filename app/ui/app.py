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

from app.core.boot import boot
from app.core.errors import DaybookError, ExitCode
from app.core.lock import DataDirLock
from app.core.timefmt import local_day
from app.resources import DEMO_DIR

log = logging.getLogger(__name__)


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
    b = boot(args.config, args.data_dir, verbose=args.verbose)
    cfg, config_path, paths = b.cfg, b.config_path, b.paths
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Daybook")
    QApplication.setQuitOnLastWindowClosed(False)  # the window closes, then control.closed quits
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

    service = DaybookService(cfg, paths, open_store_in_background=True)
    window = MainWindow(service, config_path)
    window.control.closed.connect(app.quit)
    # What starting a pipeline imported and built is frozen too (GUI thread: a few ms).
    window.control.started.connect(lambda _started: settle_memory())
    preload_pipeline_modules()
    settle_memory()  # before the window shows: the full collection takes 40-50 ms
    window.show()
    app.processEvents()  # painted, not just mapped
    shown_s = time.time() - _process_start_s()
    log.info("window shown %.2f s after the process started (%.2f s in run_gui)", shown_s,
             time.perf_counter() - t_start)
    if args.exit_after_show:  # bench/gui.py: cold start to window shown
        print(json.dumps({"window_shown_after_s": round(shown_s, 3)}), flush=True)
        window.close()  # as a user closing it at once: the service closes behind it, then quit
        app.exec()
        lock.release()
        return 0
    # The devices open and the pipeline starts off the GUI thread; the window says so.
    if args.self_test or args.replay or args.audio:
        video = str(DEMO_DIR / "demo.mp4") if args.self_test and not args.replay else args.replay
        audio = str(DEMO_DIR / "demo.wav") if args.self_test and not args.audio else args.audio
        window.start_recording("replay", lambda: replay_sources(video, audio))
    else:
        window.start_live()
    checker = (SelfTest(window, service, args.self_test_s, args.screenshot)
               if args.self_test else None)
    try:
        code = app.exec()
    finally:
        if not window.control.is_closed:  # the loop ended some other way than by closing
            from app.ui.tasks import BackgroundTasks

            BackgroundTasks.instance().control_pool.waitForDone()  # a start or stop under way
            service.close()  # the window is gone: this thread may wait now
        lock.release()
    return checker.exit_code if checker is not None else code


GUI_SWITCH_INTERVAL_S = 0.002

# What the first start of a pipeline imports (factory and sources import lazily), and
# numpy.ma, which numpy imports on the first np.percentile (the first utterance's sound class):
# 35 ms. Not sounddevice: importing it initialises PortAudio, which goes with opening devices.
PIPELINE_MODULES = ("app.capture.audio_file", "app.capture.video", "app.capture.audio_device",
                    "app.perception.vad", "webrtcvad", "app.perception.asr_process", "numpy.ma")


def preload_pipeline_modules() -> None:
    """Import what starting the pipeline will, before the window shows. An import holds the
    GIL while it compiles or runs a module's body, so on the pipeline's thread the first start
    froze the window for 20-45 ms at a time (bench/gui.py, no bytecode cache), and numpy.ma
    for up to 180 ms at the first utterance."""
    import importlib

    for name in PIPELINE_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the backend's own start reports it properly
            log.debug("preloading %s: %s", name, exc)


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


def _render_voice(text: str) -> int | str:
    """The answer rendered by the speech engine (not played: there may be no speaker): its
    sample count, or why not. Text-only is allowed, so this only reports."""
    from app.speech.tts import Pyttsx3Voice

    try:
        voice = Pyttsx3Voice()
    except DaybookError as exc:
        return f"none: {exc}"
    try:
        return len(voice.render(text))
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"
    finally:
        voice.close()


class SelfTest:
    """Runs the demo through the real pipeline and checks the window really updated: frames
    shown, speech transcribed, moments in the timeline, and a typed question about what was
    heard answered with it. `screenshot`: the window is saved there (PNG) at the end."""

    QUESTION = "what did I have for breakfast?"  # the demo's first line says it
    EXPECTED = "eggs"

    def __init__(self, window: Any, service: Any, limit_s: float,
                 screenshot: str | None = None) -> None:
        from PySide6.QtCore import QTimer

        self.window = window
        self.service = service
        self.screenshot = screenshot
        self.deadline = time.monotonic() + limit_s
        self.question_id: int | None = None
        # The first-run guidance a new user sees before asking anything.
        self.guidance = window.conversation.toPlainText().startswith("Ask about anything")
        self.exit_code = 1
        self.timer = QTimer(window)
        self.timer.timeout.connect(self.check)
        self.timer.start(250)

    def results(self) -> dict[str, Any]:
        said = [r for r in self.window.transcript.rows if r.state == "done" and r.text]
        return {
            "first_run_guidance": self.guidance,
            "preview_frames": self.window.frames_shown,
            "transcribed_utterances": len(said),
            "timeline_moments": self.window.timeline.model.moment_count(),
        }

    def check(self) -> None:
        from app.ui.tasks import BackgroundTasks

        r = self.results()
        heard = (self.guidance and r["preview_frames"] >= 3
                 and r["transcribed_utterances"] >= 1 and r["timeline_moments"] >= 1)
        said = " ".join(row.text.lower() for row in self.window.transcript.rows
                        if row.state == "done")
        if self.question_id is None and self.EXPECTED in said:
            self.question_id = self.window.ask(self.QUESTION)  # as if typed in the box
        exchange = self.window.exchanges.get(self.question_id)
        answered = exchange is not None and exchange.done
        if answered:
            r.update(question=self.QUESTION, answer=exchange.answer)
        ok = heard and answered and self.EXPECTED in exchange.answer.lower()
        if (heard and answered) or time.monotonic() > self.deadline:
            self.timer.stop()
            self.exit_code = int(ExitCode.OK if ok else ExitCode.FAILURE)
            day = local_day(time.time())
            said_text = str(r.get("answer") or "Daybook works.")

            def probe() -> dict[str, Any]:  # a store query and speech: not on the GUI thread
                return {"stored_moments": len(self.service.moments_on_day(day)),
                        "voice_samples": _render_voice(said_text)}

            BackgroundTasks.instance().run(
                self.timer, probe, lambda more: self.finish(ok, {**r, **more}),
                lambda exc: self.finish(ok, {**r, "stored_moments": f"error: {exc}"}))

    def finish(self, ok: bool, results: dict[str, Any]) -> None:
        if self.screenshot:
            saved = self.window.grab().save(self.screenshot)
            results["screenshot"] = self.screenshot if saved else f"not saved: {self.screenshot}"
            ok = ok and saved
        print(json.dumps({"self_test": "passed" if ok else "failed", **results}))
        self.window.close()  # the pipeline drains, the service closes, then the app quits
