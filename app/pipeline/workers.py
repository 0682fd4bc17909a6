"""The pipeline's stages. Each docstring says who feeds the stage and whom it feeds."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from app.capture.base import AudioSource as AudioSourceT
from app.capture.base import FrameSource as FrameSourceT
from app.core.events import (
    AudioCaptured,
    ClipClosed,
    FrameCaptured,
    FramePreviewed,
    MomentsStored,
    SourceEnded,
    SourceFailed,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
)
from app.memory.base import Embedder, MemoryStore, Moment
from app.memory.keyframes import KeyFrameDir
from app.perception.base import Transcriber
from app.perception.clips import ClipBuilder
from app.perception.sound import classify_sound
from app.perception.vad import SpeechSegmenter
from app.pipeline.runtime import EventBus, Inbox, ShutdownOrder, Worker

log = logging.getLogger(__name__)


PREVIEW_MIN_GAP_S = 0.1  # the preview needs at most 10 frames a second, whatever the source


class CaptureThread(threading.Thread):
    """Iterates one source (audio or video) into the first stage's inbox.

    On any failure it reports `SourceFailed`; it always ends with `SourceEnded` so the stages
    downstream flush and stop.
    """

    order = ShutdownOrder.CAPTURE

    def __init__(
        self,
        name: str,
        source: AudioSourceT | FrameSourceT,
        out: Inbox[Any],
        bus: EventBus,
        stop: threading.Event,
        abort: threading.Event,
        recording: threading.Event | None = None,
        preview_width: int = 0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.recording = recording  # cleared: paused/incognito, items are not passed on
        self.preview_width = preview_width  # > 0: publish each frame, downscaled, for preview
        self.withheld = 0
        self.source = source
        self.out = out
        self.bus = bus
        self.stop = stop
        self.abort = abort
        self.items = 0
        self.position_s = 0.0  # media seconds delivered so far
        self.failed: str | None = None

    def run(self) -> None:
        src = self.source
        t_first: float | None = None
        last_preview = 0.0
        try:
            items = (
                src.chunks(self.stop) if isinstance(src, AudioSourceT) else src.frames(self.stop)
            )
            for item in items:
                if (self.preview_width and isinstance(item, FrameCaptured)
                        and time.monotonic() - last_preview >= PREVIEW_MIN_GAP_S):
                    last_preview = time.monotonic()
                    self.bus.emit(FramePreviewed(_downscale(item.image, self.preview_width),
                                                 item.t_s))
                if self.recording is not None and not self.recording.is_set():
                    self.withheld += 1
                    continue
                if not self.out.put(item, self.abort):
                    break
                self.items += 1
                if isinstance(item, AudioCaptured):
                    t0, t1 = item.t0_s, item.t0_s + item.duration_s
                else:
                    t0 = t1 = item.t_s
                t_first = t0 if t_first is None else t_first
                self.position_s = t1 - t_first
        except Exception as exc:
            self.failed = f"{src.name}: {exc}"
            log.error("source failed: %s", self.failed)
            self.bus.emit(SourceFailed(source=src.name, message=str(exc)))
        finally:
            src.close()
            self.out.put(SourceEnded(source=src.name))
            self.bus.emit(SourceEnded(source=src.name))


def _downscale(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= width:
        return image
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


class VadWorker(Worker):
    """Fed by the audio capture thread; feeds the ASR todo queue with SpeechEnded."""

    order = ShutdownOrder.PERCEPTION

    def __init__(self, segmenter: SpeechSegmenter, asr_inbox: Inbox[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.segmenter = segmenter
        self.asr_inbox = asr_inbox

    def handle(self, item: Any) -> None:
        for event in self.segmenter.push(item):
            self._emit(event)

    def _emit(self, event: SpeechStarted | SpeechEnded) -> None:
        self.bus.emit(event)
        if isinstance(event, SpeechEnded):
            self.asr_inbox.put(event, self.abort)

    def finish(self) -> None:
        for event in self.segmenter.flush():
            self._emit(event)
        self.asr_inbox.put(SourceEnded(source=self.name))


class AsrWorker(Worker):
    """Fed by the VAD (the ASR todo queue); feeds the memory worker with UtteranceTranscribed."""

    order = ShutdownOrder.ASR

    def __init__(
        self, transcriber: Transcriber | None, memory_inbox: Inbox[Any], **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.transcriber = transcriber
        self.memory_inbox = memory_inbox

    def handle(self, item: SpeechEnded) -> None:
        sound = classify_sound(item.pcm, item.sample_rate_hz)
        text = ""
        if self.transcriber is not None:
            text = self.transcriber.transcribe(item.pcm, item.sample_rate_hz)
        event = UtteranceTranscribed(
            id=f"utt-{round(item.t0_s * 1000)}",
            text=text,
            t0_s=item.t0_s,
            t1_s=item.t1_s,
            sound=sound,
            backend=self.transcriber.name if self.transcriber else "none",
        )
        self.bus.emit(event)
        self.memory_inbox.put(event, self.abort)

    def finish(self) -> None:
        self.memory_inbox.put(SourceEnded(source=self.name))
        close = getattr(self.transcriber, "close", None)
        if close is not None:  # e.g. the recogniser's child process
            close()


class ClipWorker(Worker):
    """Fed by the video capture thread (sampled frames); feeds the memory worker with clips."""

    order = ShutdownOrder.PERCEPTION

    def __init__(self, builder: ClipBuilder, memory_inbox: Inbox[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.builder = builder
        self.memory_inbox = memory_inbox
        self._gap_s = 1.0 / builder.cfg.sample_fps
        self._next_due_s = float("-inf")

    def handle(self, item: FrameCaptured) -> None:
        # Sources may deliver faster than the memory samples (for a smooth preview).
        if item.t_s + 0.02 < self._next_due_s:
            return
        on_time = item.t_s - self._next_due_s < 0.5 * self._gap_s
        self._next_due_s = (self._next_due_s if on_time else item.t_s) + self._gap_s
        self._emit(self.builder.push(item))

    def _emit(self, clip: ClipClosed | None) -> None:
        if clip is not None:
            self.bus.emit(clip)
            self.memory_inbox.put(clip, self.abort)

    def finish(self) -> None:
        self._emit(self.builder.flush())
        self.memory_inbox.put(SourceEnded(source=self.name))


class MemoryWorker(Worker):
    """Fed by the ASR and clip workers; the single owner of the memory store.

    Writes key frames at once, and commits records in batches (`batch_size`, or after
    `flush_interval_s`). A failed commit keeps the batch and retries it, so a full disk loses
    nothing that is still in RAM.
    """

    order = ShutdownOrder.MEMORY
    final_retry_s = 10.0  # at end of stream, keep retrying a failing store this long

    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder,
        key_frames: KeyFrameDir,
        *,
        batch_size: int,
        flush_interval_s: float,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.store = store
        self.embedder = embedder
        self.key_frames = key_frames
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._pending: list[tuple[Moment, np.ndarray | None]] = []
        self._oldest_pending = 0.0
        self._soon = threading.Event()  # commit at the next turn, not after flush_interval_s
        self.stored = {"utterance": 0, "clip": 0}
        self.last_error: str | None = None

    def handle(self, item: UtteranceTranscribed | ClipClosed) -> None:
        if isinstance(item, UtteranceTranscribed):
            moment = Moment(
                id=item.id,
                kind="utterance",
                t0_s=item.t0_s,
                t1_s=item.t1_s,
                text=item.text,
                sound=str(item.sound),
            )
            vector = None  # embedded with the batch
        else:
            try:
                rel = self.key_frames.write(item.key_frame, item.t0_s, item.t1_s)
            except OSError as exc:
                rel = None
                self._report(f"could not save a key frame ({exc}); the clip is kept without it")
            moment = Moment(
                id=item.id,
                kind="clip",
                t0_s=item.t0_s,
                t1_s=item.t1_s,
                text=item.caption,
                key_frame=rel,
                n_frames=item.n_frames,
            )
            vector = item.global_vector
        if not self._pending:
            self._oldest_pending = time.monotonic()
        self._pending.append((moment, vector))
        if len(self._pending) >= self.batch_size or self._soon.is_set():
            self.flush()

    def idle(self) -> None:
        if self._pending and (self._soon.is_set()
                              or time.monotonic() - self._oldest_pending >= self.flush_interval_s):
            self.flush()

    def flush_soon(self) -> None:
        """From any thread: commit what is pending (and what arrives next) without waiting for
        the batch to fill: a spoken question is about to be answered from the memory."""
        self._soon.set()

    def finish(self) -> None:
        self.flush()
        deadline = time.monotonic() + self.final_retry_s
        while self._pending and time.monotonic() < deadline and not self.abort.wait(0.25):
            self.flush()
        if self._pending:  # what still fails is said loudly
            log.error("memory: %d moments could not be stored: %s", len(self._pending),
                      self.last_error)

    def flush(self) -> None:
        if not self._pending:
            return
        texts = [
            (i, m.text or f"({m.sound})") for i, (m, v) in enumerate(self._pending) if v is None
        ]
        if texts:
            vectors = self.embedder.embed([t for _, t in texts])
            for (i, _), vec in zip(texts, vectors, strict=True):
                self._pending[i] = (self._pending[i][0], vec)
        batch = [(m, v) for m, v in self._pending if v is not None]
        try:
            self.store.add(batch)
        except Exception as exc:
            self._report(f"could not write to the memory store ({exc}); will retry")
            return
        self._pending = []
        self._soon.clear()
        for m, _ in batch:
            self.stored[m.kind] += 1
        ids = tuple(m.id for m, _ in batch)
        log.info("stored %d moments: %s", len(ids), " ".join(ids))
        self.bus.emit(
            MomentsStored(
                ids=ids, kinds=tuple(m.kind for m, _ in batch), t1_s=max(m.t1_s for m, _ in batch)
            )
        )

    def _report(self, message: str) -> None:
        if message != self.last_error:
            log.error("memory: %s", message)
        self.last_error = message
