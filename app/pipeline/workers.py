"""The pipeline's stages. Each docstring says who feeds the stage and whom it feeds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from app.capture.base import AudioSource as AudioSourceT
from app.capture.base import FrameSource as FrameSourceT
from app.capture.base import Reopenable
from app.core.errors import InputError
from app.core.events import (
    AudioCaptured,
    ClipClosed,
    FrameCaptured,
    FramePreviewed,
    SoundClass,
    SourceEnded,
    SourceFailed,
    SourceLost,
    SourceRecovered,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
    WorkerFailed,
)
from app.memory.base import Embedder, MemoryStore, Moment
from app.memory.journal import MomentJournal
from app.memory.keyframes import KeyFrameDir
from app.memory.writer import MemoryWriter
from app.perception.base import Transcriber
from app.perception.clips import ClipBuilder
from app.perception.hallucination import guard_transcript
from app.perception.sound import classify_sound_with_confidence
from app.perception.spool import Untranscribed, UntranscribedSpool
from app.perception.vad import SpeechSegmenter
from app.pipeline.runtime import EventBus, Inbox, ShutdownOrder, Worker
from app.reasoning.instruction import only_name, question_text

log = logging.getLogger(__name__)


PREVIEW_MIN_GAP_S = 0.1  # the preview needs at most 10 frames a second, whatever the source


class CaptureThread(threading.Thread):
    """Iterates one source (audio or video) into the first stage's inbox.

    On any failure it reports `SourceFailed`; it always ends with `SourceEnded` so the stages
    downstream flush and stop.

    A live source that can open its device again (`Reopenable`: a microphone) is not given up
    when its device stops delivering (InputError while running): `SourceLost` is reported and the
    device is opened again after `retry_delays_s` (the last one repeats) until it delivers again
    (`SourceRecovered`, at its first item) or the pipeline stops. Its items keep wall-clock
    times: the time it was lost is simply missing. A replayed file is never retried.
    """

    order = ShutdownOrder.CAPTURE
    retry_delays_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)

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
        self.lost: str | None = None  # why the device is lost, while it is retried
        self.tries = 0  # to open it again, since it was lost
        self.ended = False
        self._t_first: float | None = None
        self._last_preview = 0.0
        self._lost_at = 0.0

    def run(self) -> None:
        src = self.source
        try:
            while True:
                try:
                    self._deliver(src)
                    break
                except InputError as exc:
                    if not (src.live and isinstance(src, Reopenable)) or self.stop.is_set():
                        raise
                    self._report_lost(exc)
                    if not self._reopen(src):
                        break  # the pipeline stopped meanwhile
        except Exception as exc:
            self.failed = f"{src.name}: {exc}"
            log.error("source failed: %s", self.failed)
            self.bus.emit(SourceFailed(source=src.name, message=str(exc)))
        finally:
            self.ended = True
            src.close()
            self.out.put(SourceEnded(source=src.name))
            self.bus.emit(SourceEnded(source=src.name))

    def _deliver(self, src: AudioSourceT | FrameSourceT) -> None:
        """Pass the source's items on until it ends, `stop`, or it raises."""
        items = src.chunks(self.stop) if isinstance(src, AudioSourceT) else src.frames(self.stop)
        for item in items:
            if self.lost is not None:
                self._report_recovered()
            if (self.preview_width and isinstance(item, FrameCaptured)
                    and time.monotonic() - self._last_preview >= PREVIEW_MIN_GAP_S):
                self._last_preview = time.monotonic()
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
            self._t_first = t0 if self._t_first is None else self._t_first
            self.position_s = t1 - self._t_first

    def _report_lost(self, exc: InputError) -> None:
        if self.lost is not None:  # opened again, but it failed before delivering: still lost
            log.info("%s: still lost (%s)", self.source.name, exc)
            return
        self.lost = str(exc)
        self._lost_at = time.monotonic()
        # INFO: the event is what tells the user (the banner, `record`'s own line on stderr).
        log.info("%s lost: %s; opening it again until it is back", self.source.name, exc)
        self.bus.emit(SourceLost(source=self.source.name, message=str(exc)))

    def _report_recovered(self) -> None:
        log.info("%s is back after %.1f s (%d tries)", self.source.name,
                 time.monotonic() - self._lost_at, self.tries)
        self.lost = None
        self.tries = 0
        self.bus.emit(SourceRecovered(source=self.source.name))

    def _reopen(self, src: Reopenable) -> bool:
        """Open the lost device again, with back-off, until it opens (True) or `stop` (False)."""
        while True:
            delay = self.retry_delays_s[min(self.tries, len(self.retry_delays_s) - 1)]
            if self.stop.wait(delay):
                return False
            self.tries += 1
            try:
                src.reopen()
            except InputError as exc:
                log.debug("%s: try %d to open it again failed: %s", self.source.name,
                          self.tries, exc)
                continue
            return True


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


SoundClassifierFn = Callable[[np.ndarray, int], tuple[SoundClass, float]]
NOT_SPEECH_CONFIDENCE = 0.6  # music, noise or silence this sure is not sent to the recogniser


FOLLOW_UP_S = 4.0  # the name alone, then the question within this many seconds


def _surely_not_speech(sound: SoundClass, confidence: float) -> bool:
    return sound is not SoundClass.SPEECH and confidence >= NOT_SPEECH_CONFIDENCE


class AsrWorker(Worker):
    """Fed by the VAD (the ASR todo queue); feeds the memory worker with UtteranceTranscribed.

    An utterance whose recognition fails (the recogniser crashed or hung) is not lost: it is
    passed on with its time and sound class and no text, its audio is kept in the spool, and it
    is transcribed again when the recogniser answers (when idle, and before the stage ends).
    """

    order = ShutdownOrder.ASR
    retry_every_s = 2.0
    max_tries = 3  # per run: an utterance that keeps failing waits for the next start

    def __init__(
        self, transcriber: Transcriber | None, memory_inbox: Inbox[Any],
        spool: UntranscribedSpool | None = None,
        classify: SoundClassifierFn = classify_sound_with_confidence,
        wake_name: Callable[[], str] | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.transcriber = transcriber
        self.wake_name = wake_name  # read for each utterance: the settings may change it
        self._called_at_s: float | None = None  # the end of an utterance that was the name alone
        self.classify = classify
        self.memory_inbox = memory_inbox
        self.spool = spool if spool is not None else UntranscribedSpool()
        self.failed = 0  # recognitions that failed (kept, to transcribe again)
        self.retranscribed = 0
        self._tries: dict[str, int] = {}
        self._retry_at = 0.0

    def handle(self, item: SpeechEnded) -> None:
        sound, confidence = self.classify(item.pcm, item.sample_rate_hz)
        id_ = f"utt-{round(item.t0_s * 1000)}"
        text, backend, question = "", "none", ""
        if self.transcriber is not None and not _surely_not_speech(sound, confidence):
            try:
                text, question = self._transcribe_addressed(item.pcm, item.sample_rate_hz)
                backend = self.transcriber.name
            except Exception as exc:
                self.failed += 1
                backend = "none (recognition failed; transcribed again later)"
                self.spool.add(Untranscribed(id_, item.t0_s, item.t1_s, str(sound),
                                             item.sample_rate_hz, item.pcm))
                self._retry_at = time.monotonic() + self.retry_every_s
                self.errors += 1
                log.error("recognition of %s failed (%s); kept with its time and sound, "
                          "to be transcribed again", id_, exc)
                self.bus.emit(WorkerFailed(worker=self.name, message=(
                    f"speech recognition failed ({type(exc).__name__}: {exc}); the utterance "
                    "is kept and transcribed again later")))
        elif self.transcriber is not None:
            backend = f"none ({sound}: nothing to transcribe)"
        question = self._follow_up(text, question if text else "", item.t0_s, item.t1_s)
        self._send(UtteranceTranscribed(id=id_, text=text, t0_s=item.t0_s, t1_s=item.t1_s,
                                        sound=sound, backend=backend,
                                        sound_confidence=round(confidence, 3),
                                        question=question))

    def _transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        """The recogniser's text, with what it made up removed (loops, more words than the
        audio could hold: app/perception/hallucination.py)."""
        assert self.transcriber is not None
        text = self.transcriber.transcribe(pcm, sample_rate_hz)
        return guard_transcript(text, len(pcm) / sample_rate_hz)

    def _follow_up(self, text: str, question: str, t0_s: float, t1_s: float) -> str:
        """The name said alone, a pause, then the question ("Daybook." … "where are my keys?"):
        the VAD cuts them apart, and the utterance that starts within FOLLOW_UP_S of the name's
        end is the question."""
        name = self.wake_name() if self.wake_name is not None else ""
        if not text or not name.strip():
            return question
        called, self._called_at_s = self._called_at_s, None
        if question:
            return question
        if only_name(text, name):
            self._called_at_s = t1_s
            return ""
        if called is not None and 0.0 <= t0_s - called <= FOLLOW_UP_S:
            return question_text(text)
        return ""

    def _transcribe_addressed(self, pcm: np.ndarray, sample_rate_hz: int) -> tuple[str, str]:
        """The text, and what was asked of the wake name where the recogniser can tell that the
        name was said though its text bent or dropped it (app/perception/name_check.py)."""
        name = self.wake_name() if self.wake_name is not None else ""
        check = getattr(self.transcriber, "transcribe_addressed", None)
        if not name.strip() or check is None:
            return self._transcribe(pcm, sample_rate_hz), ""
        text, question = check(pcm, sample_rate_hz, name)
        kept = guard_transcript(str(text), len(pcm) / sample_rate_hz)
        return kept, str(question) if kept else ""

    def _send(self, event: UtteranceTranscribed) -> None:
        self.bus.emit(event)
        self.memory_inbox.put(event, self.abort)

    def idle(self) -> None:
        if self.transcriber is None or time.monotonic() < self._retry_at:
            return
        for u in self.spool.pending():
            if self._tries.get(u.id, 0) < self.max_tries:
                self._retry(u)
                return

    def _retry(self, u: Untranscribed) -> bool:
        assert self.transcriber is not None
        try:
            text = self._transcribe(u.pcm, u.sample_rate_hz)
        except Exception as exc:
            tries = self._tries[u.id] = self._tries.get(u.id, 0) + 1
            self._retry_at = time.monotonic() + self.retry_every_s * tries
            log.error("transcribing %s again failed (try %d of %d): %s", u.id, tries,
                      self.max_tries, exc)
            return False
        if u.id not in self.spool:  # the user deleted it meanwhile
            return False
        self._send(UtteranceTranscribed(id=u.id, text=text, t0_s=u.t0_s, t1_s=u.t1_s,
                                        sound=SoundClass(u.sound),
                                        backend=self.transcriber.name, retry=True))
        self.spool.done(u.id)
        self.retranscribed += 1
        log.info("transcribed %s again", u.id)
        return True

    def finish(self) -> None:
        if self.transcriber is not None:
            for u in self.spool.pending():
                if self._tries.get(u.id, 0) < self.max_tries and not self.abort.is_set():
                    self._retry(u)
        self.memory_inbox.put(SourceEnded(source=self.name))
        close = getattr(self.transcriber, "close", None)
        if close is not None:  # e.g. the recogniser's child process
            close()


class ClipWorker(Worker):
    """Fed by the video capture thread (sampled frames); feeds the memory worker with clips."""

    order = ShutdownOrder.PERCEPTION

    def __init__(self, builder: ClipBuilder, memory_inbox: Inbox[Any],
                 caption_inbox: Inbox[Any] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.builder = builder
        self.memory_inbox = memory_inbox
        self.caption_inbox = caption_inbox  # the caption stage's (one clip; newer ones replace)
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
            if self.caption_inbox is not None:
                self.caption_inbox.put(clip)  # never waits: drops the clip that waited

    def finish(self) -> None:
        self._emit(self.builder.flush())
        self.memory_inbox.put(SourceEnded(source=self.name))
        if self.caption_inbox is not None:
            self.caption_inbox.put(SourceEnded(source=self.name))


class MemoryWorker(Worker):
    """Fed by the ASR and clip workers; hands everything to the memory's one writer
    (app/memory/writer.py), which owns batching, retries and the journal."""

    order = ShutdownOrder.MEMORY

    def __init__(self, store: MemoryStore, embedder: Embedder, key_frames: KeyFrameDir, *,
                 batch_size: int, flush_interval_s: float, journal: MomentJournal | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.writer = MemoryWriter(store, embedder, key_frames, batch_size=batch_size,
                                   flush_interval_s=flush_interval_s, journal=journal,
                                   emit=self.bus.emit, abort=self.abort)

    # What the front ends read (counts for the summary, the banner).
    @property
    def store(self) -> MemoryStore:
        return self.writer.store

    @property
    def stored(self) -> dict[str, int]:
        return self.writer.stored

    @property
    def recovered(self) -> int:
        return self.writer.recovered

    @property
    def kept(self) -> int:
        return self.writer.kept

    @property
    def journaled(self) -> int:
        return self.writer.journaled

    @property
    def last_error(self) -> str | None:
        return self.writer.last_error

    def begin(self) -> None:
        self.writer.begin()

    def handle(self, item: UtteranceTranscribed | ClipClosed) -> None:
        self.writer.handle(item)

    def idle(self) -> None:
        self.writer.idle()

    def finish(self) -> None:
        self.writer.finish()

    def forget(self, doomed: Callable[[Moment], bool]) -> None:
        self.writer.forget(doomed)

    def flush_soon(self) -> None:
        self.writer.flush_soon()
        self.inbox.wake()  # what is pending is committed now, not after the idle poll
