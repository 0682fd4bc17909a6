"""GUI benchmarks.

Timeline (`measure_timeline`): a real service on a temp dir holding one day of N moments (half
clips with their own key-frame JPEGs, half utterances), the TimelineWindow shown (offscreen when
there is no display), and:
  - show_day → the day's rows in the model (`dayLoaded`), → first paint of them, → the visible
    thumbnails decoded and painted;
  - scrolling to the bottom in one jump, and page by page from the top to the bottom (each
    page: set the scroll bar, process events until the viewport has painted);
  - the worst event-loop stall during each phase: a 5 ms QTimer records the longest gap between
    its ticks (design target: ≤ 30 ms).
Start, switch, stop (`measure_control_stall`): the main window as the app runs it, the worst
event-loop stall while it starts recording (the demo replayed as if live, as at start-up), plays
the demo while recording ("Play demo": the old pipeline drains, the new one starts), stops, and
quits (the window closes, the pipeline drains behind it). Each phase runs until the window says
"Recording" (and 1.5 s more) or the pipeline is stopped/closed.

Writes bench/out/gui.json ("cold_start", "pipeline_stall", "control_stall", "timeline"; with
--only, the other entries are kept as they were).

    python bench/gui.py [--moments 5000] [--only cold|ingest|control|timeline]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"

DAY = "2026-11-24"


def _qt_app() -> Any:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(sys.argv[:1])


def _fill_day(service: Any, day: str, n_moments: int) -> None:
    """n moments spread over 07:00–22:00 of `day`; every other one a clip with its own JPEG."""
    import cv2
    import numpy as np

    from app.core.timefmt import day_bounds
    from app.memory.base import Moment

    start_s = day_bounds(day)[0] + 7 * 3600
    step_s = 15 * 3600 / n_moments
    rng = np.random.default_rng(1)
    base = np.zeros((360, 640, 3), np.uint8)
    base[:] = np.linspace(40, 200, 640, dtype=np.uint8)[None, :, None]
    clip_vec = np.ones(256, np.float32) / 16
    utt_vec = service.embedder.embed(["the keys are in the kitchen drawer"])[0]
    batch: list[tuple[Moment, Any]] = []
    for i in range(n_moments):
        t0 = start_s + i * step_s
        if i % 2:
            image = base.copy()
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(image, (int(rng.integers(0, 640)), int(rng.integers(0, 360))), 90, color, -1)
            rel = service.key_frames.write(image, t0, t0 + 8)
            batch.append((Moment(f"clip-{round(t0 * 1000)}", "clip", t0, t0 + 8, key_frame=rel,
                                 n_frames=8), clip_vec))
        else:
            batch.append((Moment(f"utt-{round(t0 * 1000)}", "utterance", t0, t0 + 3,
                                 text=f"the keys are in the kitchen drawer ({i})",
                                 sound="speech"), utt_vec))
        if len(batch) == 1000:
            service.store.add(batch, service.embedder.name)
            batch = []
    if batch:
        service.store.add(batch, service.embedder.name)


class _StallProbe:
    """A 5 ms timer; the longest gap between ticks is the worst event-loop stall."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.max_gap_ms = 0.0
        self._last = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000)
        self._last = now

    def reset(self) -> float:
        """Start a new phase; returns the previous phase's worst gap."""
        worst, self.max_gap_ms, self._last = self.max_gap_ms, 0.0, time.perf_counter()
        return round(worst, 1)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()


def measure_timeline(n_moments: int = 5000) -> dict:
    """Time the timeline window on one day of `n_moments` moments (see the module docstring)."""
    app = _qt_app()
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject

    from app.core.config import Config
    from app.core.paths import DataPaths
    from app.pipeline.service import DaybookService
    from app.ui.timeline import TimelineWindow

    class PaintCounter(QObject):
        """Counts the viewport's paints, and when the last one and the last thumbnail came."""

        def __init__(self, has_rows: Callable[[], bool]) -> None:
            super().__init__()
            self.has_rows = has_rows
            self.paints = 0
            self.last_paint = 0.0
            self.last_thumb = 0.0
            self.first_rows_paint = 0.0  # the first paint with the day's rows in the model

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.paints += 1
                self.last_paint = time.perf_counter()
                if not self.first_rows_paint and self.has_rows():
                    self.first_rows_paint = self.last_paint
            return False

        def thumb(self, _key: str) -> None:
            self.last_thumb = time.perf_counter()

    def run_until(done: Callable[[], bool], timeout_s: float = 120.0) -> float:
        """Run the event loop until `done()`; returns the time it became true."""
        deadline = time.perf_counter() + timeout_s
        flags = (QEventLoop.ProcessEventsFlag.AllEvents
                 | QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        while not done():
            if time.perf_counter() > deadline:
                raise TimeoutError("the timeline did not settle")
            QCoreApplication.processEvents(flags)
        return time.perf_counter()

    def settle(window: TimelineWindow, counter: PaintCounter) -> float:
        """Until the visible thumbnails are decoded and painted (no decode waiting, and a paint
        after the last one arrived)."""
        return run_until(lambda: not window.loader.pending
                         and counter.last_paint > counter.last_thumb)

    with tempfile.TemporaryDirectory(prefix="daybook-bench-gui-") as tmp:
        service = DaybookService(Config(), DataPaths(Path(tmp) / "data").ensure())
        t = time.perf_counter()
        _fill_day(service, DAY, n_moments)
        fill_s = time.perf_counter() - t

        window = TimelineWindow(service)
        window.resize(1280, 800)
        window.show_day("2000-01-01")  # not yet: show the window on an empty day first
        loaded: list[str] = []
        window.dayLoaded.connect(loaded.append)
        window.show()
        run_until(lambda: bool(loaded) and window.isVisible())
        counter = PaintCounter(lambda: window.model.moment_count() > 0)
        window.tree.viewport().installEventFilter(counter)
        window.loader.loaded.connect(counter.thumb)
        probe = _StallProbe()
        probe.start()
        run_until(lambda: True)

        # 1. show_day → populated → painted → thumbnails on screen.
        loaded.clear()
        probe.reset()
        t_show = time.perf_counter()
        window.show_day(DAY)
        show_call_ms = (time.perf_counter() - t_show) * 1000
        t_painted = run_until(lambda: bool(counter.first_rows_paint)) and counter.first_rows_paint
        t_loaded = run_until(lambda: bool(loaded))
        t_thumbs = settle(window, counter)
        stall_show = probe.reset()
        assert window.model.moment_count() == n_moments, window.model.moment_count()

        # 2. One jump to the bottom.
        tree = window.tree
        paints = counter.paints
        t_jump = time.perf_counter()
        tree.scrollToBottom()
        t_bottom = run_until(lambda: counter.paints > paints)
        t_bottom_thumbs = settle(window, counter)
        stall_bottom = probe.reset()

        # 3. Page by page from the top to the bottom, not waiting for thumbnails.
        tree.scrollToTop()
        settle(window, counter)
        probe.reset()
        bar = tree.verticalScrollBar()
        pages: list[float] = []
        t_scroll = time.perf_counter()
        while bar.value() < bar.maximum():
            paints = counter.paints
            t0 = time.perf_counter()
            bar.setValue(bar.value() + bar.pageStep())
            pages.append((run_until(lambda: counter.paints > paints) - t0) * 1000)  # noqa: B023
        scroll_ms = (time.perf_counter() - t_scroll) * 1000
        settle(window, counter)
        stall_scroll = probe.reset()

        result = {
            "moments": n_moments,
            "platform": app.platformName(),
            "fill_store_s": round(fill_s, 1),
            "show_day_call_ms": round(show_call_ms, 1),
            "show_day_to_first_rows_painted_ms": ms(t_painted - t_show),
            "show_day_to_all_rows_in_view_ms": ms(t_loaded - t_show),  # dayLoaded
            "show_day_to_thumbnails_ms": ms(t_thumbs - t_show),
            "worst_stall_show_day_ms": stall_show,
            "scroll_to_bottom_painted_ms": ms(t_bottom - t_jump),
            "scroll_to_bottom_thumbnails_ms": ms(t_bottom_thumbs - t_jump),
            "worst_stall_scroll_to_bottom_ms": stall_bottom,
            "paged_scroll_pages": len(pages),
            "paged_scroll_total_ms": round(scroll_ms, 1),  # events processed, thumbnails not awaited
            "paged_scroll_worst_page_ms": round(max(pages, default=0.0), 1),
            "paged_scroll_median_page_ms": round(sorted(pages)[len(pages) // 2], 1) if pages else 0,
            "worst_stall_paged_scroll_ms": stall_scroll,
            "thumbnails_decoded": window.loader.decoded,
            "thumbnail_threads": len(window.loader.decode_threads),
        }
        probe.timer.stop()
        window.close()
        window.deleteLater()
        service.close()
        run_until(lambda: True)
    return result


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def measure_cold_start(runs: int = 5) -> dict:
    """Process start to main window shown and painted (`main.py --exit-after-show`), on a fresh
    data dir each run; the first run also pays for cold OS file caches."""
    import statistics
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    shown, wall = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="daybook-cold-") as tmp:
            env["DAYBOOK_CONFIG"] = str(Path(tmp) / "none.toml")
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(root / "main.py"), "--exit-after-show",
                                   "--data-dir", str(Path(tmp) / "data")], env=env,
                                  capture_output=True, text=True, timeout=120)
            wall.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"cold start failed:\n{proc.stderr}")
            shown.append(json.loads(proc.stdout.strip().splitlines()[-1])["window_shown_after_s"])
    return {"runs": runs, "window_shown_s_median": round(statistics.median(shown), 3),
            "window_shown_s_max": round(max(shown), 3),
            "process_wall_s_median": round(statistics.median(wall), 3)}


def measure_pipeline_stall(repeat: int = 6) -> dict:
    """The main window's event loop while the real pipeline ingests flat out: the demo audio
    tiled `repeat` times (replayed as fast as it goes) and the demo video at real-time pace."""
    import numpy as np
    from PySide6.QtCore import QTimer

    from app.capture.audio_file import WavFileSource
    from app.capture.video import Cv2FrameSource
    from app.core.config import Config
    from app.core.paths import DataPaths
    from app.pipeline.service import DaybookService
    from app.resources import DEMO_DIR
    from app.ui.main_window import MainWindow
    from tests import mediagen

    app = _qt_app()
    with tempfile.TemporaryDirectory(prefix="daybook-stall-") as tmp:
        wav = mediagen.write_wav(Path(tmp) / "long.wav",
                                 np.tile(mediagen.read_wav(DEMO_DIR / "demo.wav"), repeat))
        service = DaybookService(Config(), DataPaths(Path(tmp) / "data").ensure())
        window = MainWindow(service)
        window.show()
        from app.ui.app import favour_gui_thread, preload_pipeline_modules, settle_memory

        switch_interval_s = sys.getswitchinterval()
        favour_gui_thread()  # as run_gui does
        preload_pipeline_modules()
        settle_memory()  # as the app does after start-up
        now = time.time()
        pipe = service.start(audio=WavFileSource(wav, start_s=now),
                             video=Cv2FrameSource(str(DEMO_DIR / "demo.mp4"), max_fps=5.0,
                                                  start_s=now, realtime=True))
        settle_memory()  # as the app does once the pipeline runs
        ticks: list[float] = []  # measured from here: the pipeline is built and running
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(5)
        audio = pipe.captures[0]
        t0 = time.perf_counter()
        while audio.is_alive() or pipe.counters()["asr.depth"] or pipe.counters()["audio.depth"]:
            app.processEvents()
            time.sleep(0.001)
        wall = time.perf_counter() - t0
        timer.stop()
        sys.setswitchinterval(switch_interval_s)
        media_s = audio.position_s
        frames_shown = window.frames_shown
        window.close()  # the pipeline drains and the service closes behind it
        while not window.control.is_closed:
            app.processEvents()
            time.sleep(0.01)
        window.deleteLater()
    gaps = np.diff(ticks) * 1000
    return {"media_seconds": round(media_s, 1), "wall_seconds": round(wall, 2),
            "ticks": len(ticks), "max_stall_ms": round(float(gaps.max()), 1),
            "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1),
            "preview_frames": frames_shown}


CONTROL_PHASES = ("start", "play_demo_while_recording", "stop", "quit")


def measure_control_stall(record_s: float = 1.5) -> dict:
    """The main window's event loop while it starts recording, plays the demo while recording,
    stops and quits, as the app does it (see the module docstring). Per phase: the worst
    event-loop gap, how long the call took on the GUI thread, and how long until done."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from app.core.config import Config
    from app.core.paths import DataPaths
    from app.pipeline.service import DaybookService
    from app.ui.app import (
        DEMO_DIR,
        favour_gui_thread,
        preload_pipeline_modules,
        replay_sources,
        settle_memory,
    )
    from app.ui.main_window import MainWindow

    _qt_app()

    def run_until(done: Callable[[], bool], timeout_s: float = 120.0) -> float:
        deadline = time.perf_counter() + timeout_s
        while not done():
            if time.perf_counter() > deadline:
                raise TimeoutError("the window did not get there")
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        return time.perf_counter()

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="daybook-control-") as tmp:
        service = DaybookService(Config(), DataPaths(Path(tmp) / "data").ensure())
        window = MainWindow(service, Path(tmp) / "config.toml")
        # As run_gui does:
        switch_interval_s = sys.getswitchinterval()
        favour_gui_thread()
        window.control.started.connect(lambda _started: settle_memory())
        preload_pipeline_modules()
        settle_memory()
        window.show()
        run_until(lambda: True)
        probe = _StallProbe()
        probe.start()

        def recording(key: str) -> Callable[[], bool]:
            return lambda: (window.control.key == key and window.control.state == "running"
                            and window.state_label.text() == "Recording")

        def phase(name: str, ask: Callable[[], object], done: Callable[[], bool],
                  then_s: float = 0.0) -> None:
            probe.reset()
            t0 = time.perf_counter()
            ask()
            call_ms = ms(time.perf_counter() - t0)
            t_done = run_until(done)
            run_until(lambda: time.perf_counter() > t_done + then_s)
            result[name] = {"worst_stall_ms": probe.reset(), "call_ms": call_ms,
                            "done_after_s": round(t_done - t0, 2)}

        demo = (str(DEMO_DIR / "demo.mp4"), str(DEMO_DIR / "demo.wav"))
        phase("start", lambda: window.start_recording("live", lambda: replay_sources(*demo)),
              recording("live"), record_s)
        phase("play_demo_while_recording", window.play_demo, recording("demo"), record_s)
        phase("stop", window.control.stop, lambda: window.control.state == "idle")
        phase("quit", window.close, lambda: window.control.is_closed)
        probe.timer.stop()
        sys.setswitchinterval(switch_interval_s)
        window.deleteLater()
        run_until(lambda: True)
    result["max_stall_ms"] = max(result[p]["worst_stall_ms"] for p in CONTROL_PHASES)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, default=5000)
    parser.add_argument("--stall-runs", type=int, default=5)
    parser.add_argument("--control-runs", type=int, default=3)
    parser.add_argument("--only", choices=["cold", "ingest", "control", "timeline"])
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "gui.json"
    report = json.loads(path.read_text()) if path.exists() else {"benchmark": "gui"}
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "platform": platform.platform()}
    if args.only in (None, "cold"):
        cold = report["cold_start"] = measure_cold_start()
        print("cold start to window shown (target 2 s):")
        for key, value in cold.items():
            print(f"  {key}  {value}")
    if args.only in (None, "ingest"):
        # Stalls are rare events: one run can miss them, so the ingest runs several times.
        runs = [measure_pipeline_stall() for _ in range(args.stall_runs)]
        stall = report["pipeline_stall"] = {
            "runs": runs, "max_stall_ms": max(r["max_stall_ms"] for r in runs),
            "p99_gap_ms": max(r["p99_gap_ms"] for r in runs)}
        print(f"GUI event loop while the pipeline ingests flat out, {len(runs)} runs "
              "(target 30 ms):")
        for r in runs:
            print("  " + "  ".join(f"{key} {value}" for key, value in r.items()))
        print(f"  worst of all runs: max_stall_ms {stall['max_stall_ms']}, p99_gap_ms "
              f"{stall['p99_gap_ms']}")
    if args.only in (None, "control"):
        runs = [measure_control_stall() for _ in range(args.control_runs)]
        control = report["control_stall"] = {
            "runs": runs, "max_stall_ms": max(r["max_stall_ms"] for r in runs),
            **{f"{p}_worst_stall_ms": max(r[p]["worst_stall_ms"] for r in runs)
               for p in CONTROL_PHASES}}
        print(f"GUI event loop while the window starts, plays the demo while recording, stops "
              f"and quits, {len(runs)} runs (target 30 ms):")
        for r in runs:
            print("  " + "  ".join(f"{p}: stall {r[p]['worst_stall_ms']} ms, call "
                                   f"{r[p]['call_ms']} ms, done {r[p]['done_after_s']} s;"
                                   for p in CONTROL_PHASES))
        print(f"  worst of all runs: max_stall_ms {control['max_stall_ms']} ("
              + ", ".join(f"{p} {control[f'{p}_worst_stall_ms']}" for p in CONTROL_PHASES)
              + ")")
    if args.only in (None, "timeline"):
        timeline = report["timeline"] = measure_timeline(args.moments)
        width = max(len(k) for k in timeline)
        print(f"timeline, a day with {args.moments} moments:")
        for key, value in timeline.items():
            print(f"  {key:{width}}  {value}")
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
