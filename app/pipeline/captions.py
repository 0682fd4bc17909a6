"""The caption stage: each clip's key frame described in words, in the background.

Fed by the clip worker through an inbox of one clip that drops the clip still waiting when a
newer one closes (counted: `captions.dropped` in the pipeline's counters), so captioning runs at
the rate the CPU sustains and never falls behind the camera; the newest clip is always the one
captioned next. A caption goes to the memory worker as the same clip again (`update`), which
stores its words with it: shown in the timeline, searched by questions, said in answers. A clip
the model fails on keeps no words; the failure is counted (`captions.errors`) and logged, and
the next clip is tried.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from app.core.events import ClipCaptioned, ClipClosed, SourceEnded
from app.perception.caption import Captioner, CaptionError
from app.pipeline.runtime import Inbox, ShutdownOrder, Worker

log = logging.getLogger(__name__)


class CaptionWorker(Worker):
    order = ShutdownOrder.PERCEPTION

    def __init__(self, captioner: Captioner, memory_inbox: Inbox[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.captioner = captioner
        self.memory_inbox = memory_inbox

    def handle(self, item: ClipClosed) -> None:
        t0 = time.monotonic()
        try:
            text = " ".join(self.captioner.caption(item.key_frame).split())
        except CaptionError as exc:  # counted without a WorkerFailed: the clip is kept
            self.errors += 1
            log.warning("no caption for %s: %s", item.id, exc)
            return
        latency = time.monotonic() - t0
        if not text:
            return
        self.memory_inbox.put(dataclasses.replace(item, caption=text, update=True), self.abort)
        self.bus.emit(ClipCaptioned(item.id, text, latency))
        log.debug("caption for %s in %.2f s", item.id, latency)

    def finish(self) -> None:
        self.memory_inbox.put(SourceEnded(source=self.name))
