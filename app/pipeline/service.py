"""Daybook as one object: the memory, the running pipeline, questions, privacy controls.

This is what the desktop app (and any other front end) drives. It is Qt-free: results and live
updates arrive as events on `bus`, emitted from worker threads; a GUI must cross into its own
thread (see app/ui/bridge.py) before touching widgets.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.capture.base import AudioSource, FrameSource
from app.core.config import Config
from app.core.events import (
    AnswerChunk,
    AnswerFinished,
    AnswerStarted,
    MomentsDeleted,
    MomentsStored,
    RecordingPaused,
    RecordingResumed,
    UtteranceTranscribed,
)
from app.core.paths import DataPaths
from app.memory.base import Moment
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.integrate import Integrator
from app.memory.journal import MomentJournal
from app.memory.reembed import Reembedder
from app.perception.spool import UntranscribedSpool
from app.pipeline.factory import (
    build_pipeline,
    close_store,
    journal_path,
    make_embedder,
    make_key_frames,
    make_store,
    model_manager,
    untranscribed_dir,
)
from app.pipeline.pipeline import Pipeline
from app.pipeline.runtime import EventBus
from app.reasoning.base import Answer, Citation
from app.reasoning.extractive import ExtractiveReasoner
from app.reasoning.instruction import addressed_question
from app.reasoning.retrieve import Retriever, answer_question

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 480
PREVIEW_FPS = 5.0
STORED_WAIT_S = 3.0
INTEGRATE_FIRST_WAIT_S = 20.0  # the first summaries are written this long after the start  # a spoken question waits at most this long for the memory to commit


class DaybookService:
    """Owns the store for this process (the caller holds the data-dir lock)."""

    def __init__(self, cfg: Config, paths: DataPaths, *, bus: EventBus | None = None,
                 open_store_in_background: bool = False) -> None:
        self.cfg = cfg
        self.paths = paths
        self.bus = bus or EventBus()
        # In the background: the window shows while Chroma opens (≈1–3 s); what needs the store
        # waits for it, off the GUI thread.
        self.store = make_store(paths, cfg, self.bus.emit, wait=not open_store_in_background)
        self.key_frames = make_key_frames(cfg, paths.key_frames)
        # Utterances whose recognition failed, shared by every pipeline this service runs.
        self.spool = UntranscribedSpool(untranscribed_dir(paths))
        self.models = model_manager(cfg, paths)
        self.embedder = make_embedder(cfg, self.models, background=True)  # the window shows
        # The lexical embedder answers for a data dir from before (its vectors) while the
        # configured one's are built in the background.
        self.retriever = Retriever(self.store, self.embedder, self.key_frames, cfg.reasoning,
                                   wake_name=cfg.assistant.wake_name, others=[LexicalEmbedder()])
        self.reembedder = Reembedder(self.store, self.embedder, self.bus.emit)
        self.reembedder.start()
        # Hour and day summaries (long-term memory), in the background.
        self.integrator = Integrator(self.store, self.embedder, paths.memory / "integrate.json",
                                     self.bus.emit, first_wait_s=INTEGRATE_FIRST_WAIT_S,
                                     duty=0.5)
        self.bus.subscribe(self.integrator.on_event)
        if cfg.memory.summaries:
            self.integrator.start()
        self.reasoner = ExtractiveReasoner()
        self.pipeline: Pipeline | None = None
        self.recording = threading.Event()
        self.recording.set()
        self.paused_until_s: float | None = None
        self._question_ids = itertools.count(1)
        self._resume_timer: threading.Timer | None = None
        self._stored_ids: collections.deque[str] = collections.deque(maxlen=1024)
        self._stored_cond = threading.Condition()
        self.bus.subscribe(self._heard)

    # --- the pipeline ----------------------------------------------------------------------

    def start(self, *, audio: AudioSource | None, video: FrameSource | None,
              **backends: Any) -> Pipeline:
        """Run the pipeline on these sources (`backends`: vad=, transcriber= for tests).
        Blocking (it drains the previous pipeline and starts the recogniser): call it off a
        GUI thread. It returns once the sources really deliver (or failed to start)."""
        self.stop()
        self.pipeline = build_pipeline(
            self.cfg, store=self.store, key_frames=self.key_frames, audio=audio, video=video,
            embedder=self.embedder, bus=self.bus, models=self.models, data=self.paths,
            spool=self.spool, **backends)
        for capture in self.pipeline.captures:
            capture.recording = self.recording
            if capture.name == "capture-video":
                capture.preview_width = PREVIEW_WIDTH
        self.pipeline.start()
        if not self.pipeline.wait_started():
            log.warning("a source did not start delivering (see above)")
        return self.pipeline

    def stop(self, drain_timeout_s: float = 30.0) -> None:
        if self.pipeline is not None:
            self.pipeline.stop(drain_timeout_s)
            self.pipeline = None

    # --- privacy -----------------------------------------------------------------------------

    def pause(self, minutes: float | None = None, reason: str = "paused") -> None:
        """Stop storing anything (for `minutes`, or until `resume`)."""
        self.recording.clear()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
        self.paused_until_s = time.time() + minutes * 60 if minutes else None
        if minutes:
            self._resume_timer = threading.Timer(minutes * 60, self.resume)
            self._resume_timer.daemon = True
            self._resume_timer.start()
        log.info("recording %s%s", reason, f" for {minutes:g} min" if minutes else "")
        self.bus.emit(RecordingPaused(self.paused_until_s, reason))

    def resume(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        self.paused_until_s = None
        self.recording.set()
        log.info("recording resumed")
        self.bus.emit(RecordingResumed())

    @property
    def is_recording(self) -> bool:
        return self.recording.is_set()

    def delete(self, moments: list[Moment]) -> None:
        """Forget moments and their key frames."""
        if not moments:
            return
        self.store.delete([m.id for m in moments])
        try:  # the summaries quoting them go too (and are written again from what is left)
            self.integrator.invalidate(moments)
        except Exception as exc:
            log.warning("could not remove the summaries of deleted moments yet: %s", exc)
        for m in moments:
            if m.key_frame:
                self.key_frames.absolute(m.key_frame).unlink(missing_ok=True)
            if m.kind == "utterance":  # its kept audio, if its recognition had failed
                self.spool.done(m.id)
        from app.core.logs import forget_logged

        records = forget_logged(ids=[m.id for m in moments])  # the log forgets them too
        log.info("deleted %d moments and %d log records naming them", len(moments), records)
        self.bus.emit(MomentsDeleted(tuple(m.id for m in moments)))

    def _forget_kept(self, doomed: Callable[[float, str], bool]) -> None:
        """What is kept but not stored yet (the journal, untranscribed audio) is forgotten too."""
        spooled = self.spool.forget(doomed)
        pipe = self.pipeline
        if pipe is not None:
            pipe.memory.forget(lambda m: doomed(m.t0_s, m.id))
            return
        try:
            journaled = MomentJournal(journal_path(self.paths)).forget(
                lambda m: doomed(m.t0_s, m.id))
        except OSError as exc:
            log.error("cannot remove deleted moments from the journal: %s", exc)
            journaled = 0
        if spooled or journaled:
            log.info("forgot %d untranscribed and %d journaled moments", spooled, journaled)

    def apply_retention(self, now_s: float | None = None) -> int:
        """Forget what is older than `[privacy] retention_days` (0 keeps everything)."""
        days = self.cfg.privacy.retention_days
        if not days:
            return 0
        cutoff = (now_s or time.time()) - days * 86_400
        gone = self.store.delete_before(cutoff)
        self._forget_kept(lambda t0_s, _id: t0_s < cutoff)
        for m in gone:
            if m.key_frame:
                self.key_frames.absolute(m.key_frame).unlink(missing_ok=True)
        from app.core.logs import forget_logged

        records = forget_logged(0.0, cutoff, ids=[m.id for m in gone])  # and older log records
        if gone or records:
            log.info("retention: forgot %d moments and %d log records older than %d days",
                     len(gone), records, days)
        if gone:
            self.bus.emit(MomentsDeleted(tuple(m.id for m in gone)))
        return len(gone)

    def delete_range(self, t0_s: float, t1_s: float) -> int:
        """Forget everything that started in [t0, t1); returns how many moments."""
        from app.reasoning.timewords import TimeScope

        doomed = [m for day in TimeScope(t0_s, t1_s, "").days()
                  for m in self.moments_on_day(day) if t0_s <= m.t0_s < t1_s]
        from app.core.logs import forget_logged

        forget_logged(t0_s, t1_s)  # what was logged in the range (a typed question at DEBUG)
        self._forget_kept(lambda t, _id: t0_s <= t < t1_s)
        self.delete(doomed)
        return len(doomed)

    # --- reading -------------------------------------------------------------------------------

    def moments_on_day(self, day: str) -> list[Moment]:
        return self.store.moments_on_day(day)

    def search(self, text: str) -> list[Citation]:
        citations, _ = self.retriever.retrieve(text)
        return citations

    def thumbnail_path(self, m: Moment) -> Path | None:
        if m.key_frame:
            return self.key_frames.absolute(m.key_frame)
        return self.key_frames.near(m.t0_s, m.t1_s)

    def ask(self, question: str, *, spoken: bool = False, after: str | None = None) -> int:
        """Answer in a background thread; AnswerStarted/Chunk/Finished events follow. `after`:
        a moment id to wait for in the store first (a spoken question's own utterance)."""
        qid = next(self._question_ids)
        threading.Thread(target=self._answer, args=(qid, question, spoken, after),
                         name=f"ask-{qid}", daemon=True).start()
        return qid

    def ask_now(self, question: str) -> Answer:
        return answer_question(self.retriever, self.reasoner, question)

    def _heard(self, event: object) -> None:
        """Instruction prediction (in the emitting worker's thread): an utterance addressed to
        the wake name is a spoken question. Nothing is heard while recording is paused."""
        if isinstance(event, MomentsStored):
            with self._stored_cond:
                self._stored_ids.extend(event.ids)
                self._stored_cond.notify_all()
            return
        if not isinstance(event, UtteranceTranscribed) or not event.text or event.retry:
            return  # a kept utterance transcribed again later is no question now
        question = event.question or addressed_question(event.text,
                                                        self.cfg.assistant.wake_name)
        if question:
            # No question text at INFO (privacy): _answer logs it at DEBUG, naming the moment.
            log.info("spoken question (%s): %d chars", event.id, len(question))
            self.ask(question, spoken=True, after=event.id)

    def _wait_stored(self, moment_id: str, timeout_s: float) -> bool:
        """Wait until `moment_id` (and so, the memory worker being first in, first out,
        everything heard before it) is committed and searchable."""
        pipe = self.pipeline
        if pipe is not None:
            pipe.memory.flush_soon()
        with self._stored_cond:
            return self._stored_cond.wait_for(lambda: moment_id in self._stored_ids, timeout_s)

    def _answer(self, qid: int, question: str, spoken: bool = False,
                after: str | None = None) -> None:
        self.bus.emit(AnswerStarted(qid, question, spoken))
        log.debug("question %d%s: %r", qid, f" ({after})" if after else "", question)
        if after is not None and not self._wait_stored(after, STORED_WAIT_S):
            log.warning("answering question %d (%s) before the memory caught up", qid, after)
        try:
            answer = self.ask_now(question)
        except Exception as exc:
            log.exception("answering question %d (%d chars) failed", qid, len(question))
            answer = Answer(question, f"Sorry, I could not search my memory ({exc}).")
        # The extractive answer streams line by line; an LLM will stream tokens.
        for line in answer.text.splitlines(keepends=True):
            self.bus.emit(AnswerChunk(qid, line))
        self.bus.emit(AnswerFinished(qid, answer))

    def status(self) -> dict[str, Any]:
        pipe = self.pipeline
        return {
            "recording": self.is_recording,
            "paused_until_s": self.paused_until_s,
            "backends": pipe.backends if pipe else {},
            "counters": pipe.counters() if pipe else {},
            "running": bool(pipe and any(c.is_alive() for c in pipe.captures)),
        }

    def close(self) -> None:
        self.stop()
        self.reembedder.stop()
        self.integrator.stop()
        self.reembedder.join(timeout=10)
        if self.integrator.is_alive():
            self.integrator.join(timeout=10)
        if self._resume_timer is not None:
            self._resume_timer.cancel()
        close_store(self.store)
