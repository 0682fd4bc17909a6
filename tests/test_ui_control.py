"""The main window starts, switches and stops the pipeline without the GUI thread waiting
(`PipelineControl`), says "Recording" only once the sources run, and shows the failures the
pipeline reports. The service's blocking calls are held on a gate here, so the tests see the
window while they run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.config import Config
from app.core.errors import DaybookError
from app.core.events import (
    EngineFailed,
    EngineRecovered,
    FrameCaptured,
    MomentsKept,
    SourceFailed,
)
from app.core.paths import DataPaths
from app.perception.fakes import EnergyVad, ScriptedTranscriber, always_speech
from app.pipeline.service import DaybookService
from app.ui.main_window import MainWindow

pytestmark = pytest.mark.slow


class Endless:
    """A camera that runs until the pipeline stops it (one small frame every 50 ms)."""

    live = True
    duration_s = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def frames(self, stop: threading.Event) -> Iterator[FrameCaptured]:
        index = 0
        while not stop.wait(0.05):
            yield FrameCaptured(np.full((60, 80, 3), index % 255, np.uint8), time.time(), index)
            index += 1

    def close(self) -> None:
        self.closed = True


def camera(name: str) -> Callable[[], tuple[Any, Any, list[str]]]:
    return lambda: (None, Endless(name), [])


class Gate:
    """Wraps a blocking service call: each call waits until `opened`, and records the thread it
    ran on and how many ran at once."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self.call = call
        self.opened = threading.Event()
        self.threads: list[int] = []
        self.names: list[str] = []  # the video source's name, for start()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.threads.append(threading.get_ident())
            video = kwargs.get("video")
            self.names.append(getattr(video, "name", ""))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            assert self.opened.wait(30), "the test never opened the gate"
            return self.call(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    service = DaybookService(Config(), DataPaths(tmp_path / "data").ensure())
    win = MainWindow(service, tmp_path / "config.toml")
    win.show()
    yield win
    if not win.control.is_closed:
        win.close()
        qtbot.waitUntil(lambda: win.control.is_closed, timeout=60_000)
    win.deleteLater()


def start(win: MainWindow, key: str, name: str | None = None) -> bool:
    return win.start_recording(key, camera(name or key), vad=EnergyVad(),
                               classify_sound=always_speech, transcriber=ScriptedTranscriber([]))


def test_recording_shows_only_once_start_returned(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gate = Gate(window.service.start)
    monkeypatch.setattr(window.service, "start", gate)
    t0 = time.perf_counter()
    assert start(window, "live")
    assert time.perf_counter() - t0 < 0.2  # asked, not waited for
    qtbot.waitUntil(lambda: len(gate.threads) == 1, timeout=5000)  # start() is running now
    ticks: list[float] = []
    qtbot.waitUntil(lambda: ticks.append(time.perf_counter()) or len(ticks) > 5, timeout=2000)
    assert gate.threads[0] != threading.get_ident()  # not on the GUI thread
    assert "STARTING" in window.rec.text() and window.state_label.text() == "Starting\u2026"
    assert "REC" not in window.rec.text()
    gate.opened.set()
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    assert "REC" in window.rec.text()
    assert window.control.key == "live"
    assert "No microphone" in window.banner_text.text()  # this start's set-up notes


def test_starts_run_one_at_a_time_in_order_and_play_demo_twice_is_once(  # type: ignore[no-untyped-def]
        window: MainWindow, qtbot, monkeypatch) -> None:
    gate = Gate(window.service.start)
    monkeypatch.setattr(window.service, "start", gate)
    assert start(window, "live")
    qtbot.waitUntil(lambda: len(gate.threads) == 1, timeout=5000)
    assert start(window, "demo")  # waits for its turn
    assert not start(window, "demo")  # clicked twice: already asked for
    assert start(window, "replay")  # a newer request replaces the one not begun
    assert not start(window, "replay")
    gate.opened.set()
    qtbot.waitUntil(lambda: window.control.state == "running"
                    and window.control.key == "replay", timeout=10_000)
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=5000)
    assert gate.names == ["live", "replay"]  # in order; the demo's turn never came
    assert gate.most_at_once == 1
    pipe = window.service.pipeline
    assert pipe is not None and [c.source.name for c in pipe.captures] == ["replay"]
    assert not start(window, "replay")  # already running
    assert window.control.starts == 2


def test_play_demo_clicked_twice_starts_one_pipeline(window: MainWindow, qtbot,  # type: ignore[no-untyped-def]
                                                     monkeypatch) -> None:
    import app.ui.app

    monkeypatch.setattr(app.ui.app, "replay_sources", lambda video, audio: camera("demo")())
    gate = Gate(window.service.start)
    monkeypatch.setattr(window.service, "start", gate)
    window.demo_action.trigger()
    window.demo_action.trigger()
    window.demo_button.click()
    gate.opened.set()
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    assert gate.names == ["demo"] and window.control.starts == 1


def test_a_failed_start_is_shown(window: MainWindow, qtbot, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    def fail(**_: Any) -> None:
        raise DaybookError("the microphone is busy")

    monkeypatch.setattr(window.service, "start", fail)
    opened: list[Endless] = []

    def sources() -> tuple[Any, Any, list[str]]:
        opened.append(Endless("camera"))
        return None, opened[-1], []

    window.start_recording("live", sources)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert "Could not start recording" in window.banner_text.text()
    assert "the microphone is busy" in window.banner_text.text()
    assert "Daybook is not recording" in window.banner_text.text()
    assert window.state_label.text() == "Not recording" and "IDLE" in window.rec.text()
    assert "the microphone is busy" in caplog.text  # and in the log
    assert opened[0].closed  # the camera it opened is not left open
    # A later start that works takes the message away.
    monkeypatch.undo()
    start(window, "live")
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    assert "Could not start" not in window.banner_text.text()


def test_failures_reported_as_events_show_until_recovered(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    bus = window.service.bus

    def emit(event: object) -> None:  # from a worker thread, as the pipeline does
        thread = threading.Thread(target=bus.emit, args=(event,))
        thread.start()
        thread.join()

    def banner() -> str:
        return window.banner_text.text() if window.banner.isVisible() else ""

    emit(EngineFailed("speech recogniser", "it exited (code -9)", restarting=True))
    qtbot.waitUntil(lambda: "speech recogniser failed: it exited (code -9)" in banner(),
                    timeout=5000)
    assert "Restarting it" in banner()
    emit(MomentsKept(3, True, "the memory store is not answering"))
    qtbot.waitUntil(lambda: "3 moments not stored yet: kept on disk" in banner(), timeout=5000)
    assert "on disk" in banner() and "speech recogniser" in banner()
    emit(EngineRecovered("speech recogniser"))
    qtbot.waitUntil(lambda: "speech recogniser" not in banner(), timeout=5000)
    assert "3 moments" in banner()
    assert "speech recogniser works again" in window.statusBar().currentMessage()
    emit(MomentsKept(0, False, "all kept moments are stored"))
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=5000)
    emit(EngineFailed("memory store", "no answer in 10 s", restarting=False))
    qtbot.waitUntil(lambda: "It is not restarted" in banner(), timeout=5000)
    emit(SourceFailed("microphone default", "the device was unplugged"))
    qtbot.waitUntil(lambda: "microphone default stopped: the device was unplugged" in banner(),
                    timeout=5000)


def test_closing_the_window_returns_at_once_and_drains_behind_it(  # type: ignore[no-untyped-def]
        window: MainWindow, qtbot, monkeypatch) -> None:
    start(window, "live")
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    pipe = window.service.pipeline
    assert pipe is not None
    gate = Gate(window.service.stop)
    monkeypatch.setattr(window.service, "stop", gate)
    closed: list[bool] = []
    window.control.closed.connect(lambda: closed.append(True))
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 0.2 and not window.isVisible()
    qtbot.waitUntil(lambda: len(gate.threads) == 1, timeout=5000)  # draining, off the GUI thread
    assert gate.threads[0] != threading.get_ident()
    qtbot.wait(100)
    assert not closed and pipe.captures[0].is_alive()
    assert not start(window, "demo")  # nothing starts once closing
    gate.opened.set()
    qtbot.waitUntil(lambda: bool(closed), timeout=30_000)
    assert window.control.is_closed and not pipe.captures[0].is_alive()
    assert pipe.captures[0].source.closed


def fake_live_sources(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The live devices as a camera named after the configured one; the cameras opened."""
    import app.ui.app

    opened: list[str] = []

    def live_sources(cfg: Config) -> tuple[Any, Any, list[str]]:
        opened.append(cfg.capture.camera)
        return camera(f"camera {cfg.capture.camera}")()

    monkeypatch.setattr(app.ui.app, "live_sources", live_sources)
    return opened


def test_saved_devices_switch_the_pipeline(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = fake_live_sources(monkeypatch)
    window.start_live()
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    assert not window.start_live()  # the same devices: already running
    cfg = window.service.cfg
    window._config_saved(cfg.replace(privacy={"retention_days": 30}))  # not a device: no switch
    window._config_saved(cfg.replace(capture={"camera": "2"}))
    assert window.state_label.text() == "Starting\u2026"
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    pipe = window.service.pipeline
    assert seen == ["0", "2"] and pipe is not None
    assert [c.source.name for c in pipe.captures] == ["camera 2"]


def test_new_vision_models_start_the_live_camera_again(window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """After Settings › Models: a vision model downloaded (or removed) while the camera records
    starts the live pipeline again, on the same devices, so the new captioner is used; a change
    that is not about vision models does not."""
    opened = fake_live_sources(monkeypatch)
    window.start_live()
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
    first = window.service.pipeline
    monkeypatch.setattr(window.service, "reload_captioner", lambda: True)
    assert window._reload_models()  # what the background task returns
    window._models_reloaded(False)
    assert window.state_label.text() == "Recording" and window.service.pipeline is first
    for n in (1, 2):  # each change, even the second with the same devices
        window._models_reloaded(True)
        assert window.state_label.text() == "Starting\u2026"
        qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=10_000)
        assert len(opened) == 1 + n and window.service.pipeline is not first
