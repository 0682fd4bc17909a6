"""Worker runtime: bounded inboxes that count, named worker threads, an event bus.

Each worker is a named thread with one inbox, looping on `inbox.get(timeout=…)`. End of stream
travels as a `SourceEnded` item down the same queues as data, so every worker flushes what it holds
before it exits; `abort` is the shared hard-stop event for when draining takes too long.
"""

from __future__ import annotations

import collections
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from app.core.events import SourceEnded, WorkerFailed

log = logging.getLogger(__name__)

T = TypeVar("T")


class ShutdownOrder(enum.IntEnum):
    """Stop accepting input first; the memory store is the last thing to close."""

    CAPTURE = 0
    PERCEPTION = 1
    ASR = 2
    MEMORY = 3


class Inbox(Generic[T]):
    """A bounded FIFO that counts its depth high-water mark and drops.

    `drop_oldest=True` (video from a live source): a full inbox discards its oldest item and counts
    it. Otherwise (audio, replayed media) `put` waits, which is back-pressure on a replay and never
    happens for a live microphone, whose own callback queue absorbs bursts.
    """

    def __init__(self, name: str, maxsize: int, *, drop_oldest: bool = False) -> None:
        self.name = name
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._woken = False
        self.dropped = 0
        self.high_water = 0

    def put(self, item: T, abort: threading.Event | None = None) -> bool:
        """Queue an item; False only if `abort` was set while waiting for room."""
        with self._cond:
            if not isinstance(item, SourceEnded):
                while len(self._items) >= self.maxsize:
                    if self.drop_oldest:
                        self._items.popleft()
                        self.dropped += 1
                        break
                    if abort is not None and abort.is_set():
                        return False
                    self._cond.wait(0.05)
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> T:
        with self._cond:
            if (not self._items and not self._cond.wait_for(
                    lambda: bool(self._items) or self._woken, timeout)) or not self._items:
                self._woken = False
                raise queue.Empty
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wake(self) -> None:
        """End the wait of a `get` at once, as if it had timed out (its worker goes idle now)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)


Listener = Callable[[Any], None]


class EventBus:
    """Fan-out of pipeline events to listeners (the UI bridge, the CLI, tests).

    Listeners run in the emitting worker's thread, so they must be quick and thread-safe.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def emit(self, event: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", type(event).__name__)


class Worker(threading.Thread):
    """One stage: takes items from its inbox, handles them, passes results on.

    Subclasses implement `handle` (one item) and may implement `finish` (end of stream: flush)
    and `idle` (called when the inbox has been empty for `poll_s`).
    """

    order: ShutdownOrder = ShutdownOrder.PERCEPTION
    poll_s = 0.1

    def __init__(
        self,
        name: str,
        inbox: Inbox[Any],
        bus: EventBus,
        abort: threading.Event,
        *,
        upstreams: int = 1,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.inbox = inbox
        self.bus = bus
        self.abort = abort
        self.upstreams = upstreams
        self.handled = 0
        self.errors = 0
        self.busy_s = 0.0

    def handle(self, item: Any) -> None:
        raise NotImplementedError

    def begin(self) -> None:
        """Before the first item (e.g. pick up what an earlier run left)."""

    def finish(self) -> None:
        """End of stream from every upstream: flush and pass `SourceEnded` on."""

    def idle(self) -> None:
        """The inbox has been empty for a while (e.g. flush a time-based batch)."""

    def run(self) -> None:
        ended = 0
        self._guard(self.begin)
        while not self.abort.is_set():
            try:
                item = self.inbox.get(timeout=self.poll_s)
            except queue.Empty:
                self._guard(self.idle)
                continue
            if isinstance(item, SourceEnded):
                ended += 1
                if ended >= self.upstreams:
                    break
                continue
            start = time.perf_counter()
            self._guard(self.handle, item)
            self.busy_s += time.perf_counter() - start
            self.handled += 1
        self._guard(self.finish)
        log.debug("%s stopped after %d items (%.2f s busy)", self.name, self.handled, self.busy_s)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # one bad item must not take the pipeline down
            self.errors += 1
            log.exception("%s failed", self.name)
            self.bus.emit(WorkerFailed(worker=self.name, message=f"{type(exc).__name__}: {exc}"))
