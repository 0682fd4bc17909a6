"""Starting, stopping and switching the pipeline without the GUI thread ever waiting.

`DaybookService.start()`, `stop()` and `close()` block for seconds: they drain the old pipeline,
start the engines' child processes (and may restart them, or replay a journal). `PipelineControl`
runs them, and the opening of the sources, on `BackgroundTasks.control_pool`, which has one
thread: one request at a time, in the order asked. The outcome of each comes back in the GUI
thread as a signal.

Requests still waiting for their turn are merged: a newer start or stop replaces them (only the
latest sources matter), and a start with the same key as the latest start already asked for is
dropped ("Play demo" clicked twice starts the demo once). After `close()` nothing more runs.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.capture.base import AudioSource, FrameSource
from app.pipeline.service import DaybookService
from app.ui.tasks import BackgroundTasks

log = logging.getLogger(__name__)

Sources = tuple[AudioSource | None, FrameSource | None, list[str]]
OpenSources = Callable[[], Sources]  # runs on the control thread: no UI calls

IDLE, STARTING, RUNNING, STOPPING, CLOSING, CLOSED = (
    "idle", "starting", "running", "stopping", "closing", "closed")


@dataclass(frozen=True)
class Started:
    """What a start did, after `DaybookService.start()` returned (the sources are open and
    running). Neither source: nothing was started (and what ran before was stopped)."""

    key: str
    audio: bool
    video: bool
    problems: list[str]  # sources that could not be opened, and why


@dataclass
class _Request:
    action: str  # "start" | "stop" | "close"
    key: str = ""
    open_sources: OpenSources | None = None
    backends: dict[str, Any] = field(default_factory=dict)


class PipelineControl(QObject):
    """The only way the GUI starts, stops, switches or closes the service's pipeline.

    `state` is "idle", "starting" (a start or switch is running or waiting), "running" (the
    last start returned), "stopping", "closing" or "closed". Signals arrive in the GUI thread.
    """

    stateChanged = Signal(str)
    started = Signal(object)  # Started
    startFailed = Signal(str, str)  # key, message
    stopped = Signal()
    closed = Signal()  # the service is closed (its pipeline drained first): nothing more runs

    def __init__(self, service: DaybookService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self._tasks = BackgroundTasks.instance()
        self._pending: collections.deque[_Request] = collections.deque()  # asked, not begun
        self._current: _Request | None = None  # running on the control thread
        self._state = IDLE
        self.key = ""  # what the running pipeline records ("live", "demo", …); "" when idle
        self.starts = 0  # service.start() calls made (tests)

    # --- asking (GUI thread) ---------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def is_closed(self) -> bool:
        return self._state == CLOSED

    def start(self, key: str, open_sources: OpenSources, **backends: Any) -> bool:
        """Open sources with `open_sources()` and run the pipeline on them, replacing the one
        running (`backends`: vad=, transcriber= for tests). False when not taken: closing, or
        the latest start asked for has the same `key`, or it is running with nothing asked
        since."""
        if self._closing:
            return False
        latest = self._latest()
        if latest is not None and latest.action == "start" and latest.key == key:
            log.info("start %r: already asked for", key)
            return False
        if latest is None and self._state == RUNNING and self.key == key and self._running():
            log.info("start %r: already running", key)
            return False
        self._pending.clear()  # a newer request replaces what has not begun
        self._ask(_Request("start", key, open_sources, backends))
        return True

    def stop(self) -> bool:
        """Stop the pipeline (it drains first). False when there is nothing to stop."""
        latest = self._latest()
        if self._closing or (latest is None and self._state == IDLE) or (
                latest is not None and latest.action == "stop"):
            return False
        self._pending.clear()
        self._ask(_Request("stop"))
        return True

    def close(self) -> None:
        """Drain the pipeline and close the service; `closed` follows. Requests not begun are
        dropped; one running finishes first."""
        if self._closing:
            return
        self._pending.clear()
        self._ask(_Request("close"))

    @property
    def _closing(self) -> bool:
        return self._state in (CLOSING, CLOSED) or any(
            r.action == "close" for r in (self._current, *self._pending) if r is not None)

    def _latest(self) -> _Request | None:
        return self._pending[-1] if self._pending else self._current

    def _running(self) -> bool:
        pipe = self.service.pipeline
        return bool(pipe and any(c.is_alive() for c in pipe.captures))

    def _ask(self, request: _Request) -> None:
        self._pending.append(request)
        self._set_state({"start": STARTING, "stop": STOPPING, "close": CLOSING}[request.action])
        self._next()

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    # --- running (one at a time) --------------------------------------------------------------

    def _next(self) -> None:
        if self._current is not None or not self._pending:
            return
        request = self._current = self._pending.popleft()
        service = self.service
        work: Callable[[], Any]
        if request.action == "start":
            self.starts += 1
            work = lambda: _start(service, request)  # noqa: E731
        elif request.action == "stop":
            work = service.stop
        else:
            work = lambda: _close(service, self._tasks)  # noqa: E731
        self._tasks.run(self, work, lambda result: self._finished(request, result, None),
                        lambda exc: self._finished(request, None, exc),
                        pool=self._tasks.control_pool)

    def _finished(self, request: _Request, result: Any, error: Exception | None) -> None:
        self._current = None
        if request.action == "start":
            if error is not None:
                self.key = ""
                log.error("could not start recording (%s): %s", request.key, error)
                self._settle(IDLE)
                self.startFailed.emit(request.key, str(error) or type(error).__name__)
            else:
                started: Started = result
                self.key = request.key if started.audio or started.video else ""
                self._settle(RUNNING if self.key else IDLE)
                self.started.emit(started)
        elif request.action == "stop":
            if error is not None:
                log.error("stopping the pipeline failed: %s", error)
            self.key = ""
            self._settle(IDLE)
            self.stopped.emit()
        else:
            if error is not None:
                log.error("closing Daybook failed: %s", error)
            self.key = ""
            self._set_state(CLOSED)
            self.closed.emit()
        self._next()

    def _settle(self, state: str) -> None:
        """The state after a request, unless another one is waiting (its state stays)."""
        if not self._pending:
            self._set_state(state)


def _start(service: DaybookService, request: _Request) -> Started:
    """On the control thread: open the sources, then stop the old pipeline and start the new."""
    assert request.open_sources is not None
    audio, video, problems = request.open_sources()
    if audio is None and video is None:
        service.stop()  # nothing to record with: what ran before is not left running
        return Started(request.key, False, False, list(problems))
    try:
        service.start(audio=audio, video=video, **request.backends)
    except BaseException:
        _clean_up(service, (audio, video))
        raise
    return Started(request.key, audio is not None, video is not None, list(problems))


def _close(service: DaybookService, tasks: BackgroundTasks) -> None:
    """On the control thread: drain the pipeline, let the store calls already asked for
    (deletes, exports) finish, then close the store."""
    service.stop()
    tasks.store_pool.waitForDone()
    service.close()


def _clean_up(service: DaybookService, sources: tuple[Any, ...]) -> None:
    """After a failed start: stop what was built, close the sources no capture thread took."""
    pipe = service.pipeline
    taken = {id(c.source) for c in pipe.captures if c.ident is not None} if pipe else set()
    try:
        service.stop()
    except Exception:
        log.exception("stopping after a failed start")
    for source in sources:
        if source is not None and id(source) not in taken:
            with contextlib.suppress(Exception):
                source.close()
