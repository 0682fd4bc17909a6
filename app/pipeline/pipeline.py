"""The running pipeline: sources, stages and their queues, started and stopped as one."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.pipeline.runtime import EventBus, Inbox, Worker
from app.pipeline.workers import CaptureThread, MemoryWorker

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    bus: EventBus
    stop_event: threading.Event  # capture stops; the stages then drain and exit in order
    abort: threading.Event  # hard stop, after a drain timeout
    captures: list[CaptureThread]
    workers: list[Worker]
    inboxes: list[Inbox[Any]]
    memory: MemoryWorker
    backends: dict[str, str] = field(default_factory=dict)
    started_s: float = 0.0

    def start(self) -> Pipeline:
        self.started_s = time.monotonic()
        for worker in self.workers:
            worker.start()
        for capture in self.captures:
            capture.start()
        log.info("pipeline started: %s", ", ".join(f"{k}={v}" for k, v in self.backends.items()))
        return self

    def wait_started(self, timeout_s: float = 10.0) -> bool:
        """Wait until every source really delivers (a microphone stream is running), so that
        "recording" is said only when it is true. False on timeout or when a source failed."""
        deadline = time.monotonic() + timeout_s
        for capture in self.captures:
            started = getattr(capture.source, "started", None)
            while not (started.is_set() if started is not None else capture.is_alive()
                       or capture.items):
                if capture.failed or capture.ended or time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until every source has ended and every stage has drained. True when done."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in [*self.captures, *sorted(self.workers, key=lambda w: w.order)]:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                return False
        return True

    def stop(self, drain_timeout_s: float = 30.0) -> bool:
        """Stop capture first, let the stages drain in order, memory last. True if drained."""
        self.stop_event.set()
        drained = self.wait(drain_timeout_s)
        if not drained:
            log.error("pipeline did not drain in %.0f s; aborting", drain_timeout_s)
            self.abort.set()
            self.wait(5.0)
        return drained

    @property
    def position_s(self) -> float:
        """Media seconds delivered by the slowest source (progress of a replay)."""
        return min((c.position_s for c in self.captures), default=0.0)

    def counters(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for inbox in self.inboxes:
            values[f"{inbox.name}.depth"] = len(inbox)
            values[f"{inbox.name}.high_water"] = inbox.high_water
            values[f"{inbox.name}.dropped"] = inbox.dropped
        for capture in self.captures:
            for counter in ("dropped_chunks", "overflows", "reconnects"):
                value = getattr(capture.source, counter, None)
                if value is not None:
                    values[f"{capture.name}.{counter}"] = int(value)
            values[f"{capture.name}.withheld"] = capture.withheld  # paused / incognito
        for worker in self.workers:
            values[f"{worker.name}.errors"] = worker.errors
        return values
