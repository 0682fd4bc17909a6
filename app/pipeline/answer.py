"""The answer path as a pipeline stage: one inbox (questions heard and typed), one generation at
a time.

For each question: wait until the memory has committed what was heard before it → retrieve →
fit the prompt → stream the answer (pieces and whole sentences out as events) → finish with the
moments it was given as citations. A new question, or `stop`, cancels the running answer between
two tokens (and any question still waiting). When the language model cannot answer (it is
down, refused, crashed, stalled or sent nonsense) the extractive answer is given instead, with
the reason in the answer's note and an EngineFailed event; nothing is lost.

Instruction prediction (is an utterance a question for the assistant?) happens at the door,
in `offer`, so that a question heard while an answer streams cancels it at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.events import (
    AnswerChunk,
    AnswerFinished,
    AnswerSentence,
    AnswerStarted,
    ClipClosed,
    EngineFailed,
    EngineRecovered,
    UtteranceTranscribed,
)
from app.pipeline.runtime import EventBus, Inbox
from app.reasoning.base import Answer, Citation, Prompt, Reasoner, ReasonerError, Request
from app.reasoning.extractive import ExtractiveReasoner
from app.reasoning.instruction import addressed_question
from app.reasoning.present import asks_about_now
from app.reasoning.retrieve import Retriever
from app.reasoning.sentences import SentenceSplitter
from app.reasoning.summarise import BackgroundSlot

log = logging.getLogger(__name__)

STORED_WAIT_S = 3.0  # a question waits at most this long for the memory to commit
LLM_ENGINE = "language model"  # the engine name in EngineFailed/EngineRecovered


@dataclass
class Question:
    id: int
    text: str
    spoken: bool = False
    # The moment to wait for first: for a spoken question, the last one heard or seen before it
    # (the memory stores first in, first out, so everything before it is in then). Not the
    # question's own utterance, which answers nothing: storing it took 11–18 ms of each answer.
    after: str | None = None
    moment: str | None = None  # a spoken question's own utterance (named in the debug log)
    cancel: threading.Event = field(default_factory=threading.Event)


class AnswerWorker(threading.Thread):
    """Answers questions one at a time, in its own thread, for as long as the service runs."""

    def __init__(self, retriever: Retriever, reasoner: Callable[[], Reasoner], bus: EventBus, *,
                 wake_name: Callable[[], str], wait_stored: Callable[[str, float], bool],
                 now: Callable[[], float] = time.time,
                 see_now: Callable[[str], str] = lambda question: "") -> None:
        super().__init__(name="answer", daemon=True)
        self.retriever = retriever
        self.reasoner = reasoner  # asked per question: settings may have changed it
        self.fallback = ExtractiveReasoner()
        self.bus = bus
        self.wake_name = wake_name
        self.wait_stored = wait_stored
        # A question about now, answered by the vision model from the camera's latest frame
        # ("" without a vision model or a recent frame).
        self.see_now = see_now
        self.now = now
        self.inbox: Inbox[Question | None] = Inbox("answer", 64)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: list[Question] = []
        self._last_heard: str | None = None  # the latest moment the memory was sent
        self._current: Question | None = None
        self._llm_down = False
        self.answered = 0
        self.interrupted = 0
        self.fell_back = 0
        self.generation = threading.Lock()  # held while a model generates (answers, summaries)
        # Model time for background work (summaries); a question takes it back at once.
        self.background_slot = BackgroundSlot(self.generation)

    # --- the door --------------------------------------------------------------------------

    def offer(self, event: object) -> None:
        """A bus listener: an utterance addressed to the wake name becomes a question."""
        if not isinstance(event, UtteranceTranscribed | ClipClosed):
            return
        with self._lock:  # emitted by the recogniser's and the clip maker's threads
            before, self._last_heard = self._last_heard, event.id
        if isinstance(event, ClipClosed):
            return
        if not event.text or event.retry:
            return  # a kept utterance transcribed again later is no question now
        question = event.question or addressed_question(event.text, self.wake_name())
        if question:
            # No question text at INFO (privacy): _answer logs it at DEBUG, naming the moment.
            log.info("spoken question (%s): %d chars", event.id, len(question))
            self.ask(question, spoken=True, after=before, moment=event.id)

    def ask(self, text: str, *, spoken: bool = False, after: str | None = None,
            moment: str | None = None) -> int:
        """Queue a question; whatever is being answered or waits is cancelled. Returns its id
        (AnswerStarted/Chunk/Sentence/Finished events carry it). A typed question waits for
        the latest moment heard or seen before it, as a spoken one does ("what did I just
        say?")."""
        self.background_slot.interrupt()  # a summary being written gives way
        with self._lock:
            if not spoken and after is None:
                after = self._last_heard
            q = Question(next(self._ids), text, spoken, after, moment)
            self._cancel_all()
            self._waiting.append(q)
        self.inbox.put(q)
        return q.id

    def stop_answer(self) -> bool:
        """Stop the answer being given and those waiting; True when there was one."""
        with self._lock:
            busy = self._current is not None or bool(self._waiting)
            self._cancel_all()
        return busy

    def _cancel_all(self) -> None:
        if self._current is not None:
            self._current.cancel.set()
        for q in self._waiting:
            q.cancel.set()

    @property
    def busy(self) -> bool:
        return self._current is not None

    def close(self, timeout_s: float = 5.0) -> None:
        self.stop_answer()
        self.inbox.put(None)
        if self.is_alive():
            self.join(timeout_s)

    # --- the stage -------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            try:
                q = self.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if q is None:
                return
            with self._lock:
                if q in self._waiting:
                    self._waiting.remove(q)
                self._current = q
            try:
                self.answer(q)
            except Exception:  # one question must not end the stage
                log.exception("answering question %d failed", q.id)
            finally:
                with self._lock:
                    self._current = None

    def answer(self, q: Question) -> Answer:
        """Answer one question (in this thread), emitting its events; returns the answer."""
        reasoner = self.reasoner()
        self.bus.emit(AnswerStarted(q.id, q.text, q.spoken, reasoner.name))
        # Named by its own moment: deleting that moment deletes this line (app/core/logs.py).
        log.debug("question %d%s: %r", q.id, f" ({q.moment})" if q.moment else "", q.text)
        if q.cancel.is_set():
            return self._finish(q, Answer(q.text, "", reasoner=reasoner.name, interrupted=True))
        present = asks_about_now(q.text)
        if q.after is not None and not present:
            try:  # the question's vector, while the memory worker stores what came before
                self.retriever.prefetch(q.text)
            except Exception:  # retrieve below says it again, and answers all the same
                log.debug("embedding question %d ahead failed", q.id, exc_info=True)
        if q.after is not None and not self.wait_stored(q.after, STORED_WAIT_S):
            log.warning("answering question %d (%s) before the memory caught up", q.id, q.after)
        now_s = self.now()
        if present:  # no language model here sees: answered from the latest clip, plainly
            reasoner = self.fallback
        try:
            if present:
                citations, scope = self.retriever.present(now_s), None
            else:
                citations, scope = self.retriever.retrieve(q.text,
                                                           dt.datetime.fromtimestamp(now_s))
        except Exception as exc:
            log.exception("searching the memory for question %d failed", q.id)
            text = f"Sorry, I could not search my memory ({exc})."
            self._emit_text(q, text)
            return self._finish(q, Answer(q.text, text, reasoner=reasoner.name))
        seen_now = ""
        if present:
            try:
                seen_now = self.see_now(q.text)
            except Exception:  # CaptionError, or a bug: answered without it all the same
                log.warning("question %d: the vision model could not look at the latest frame",
                            q.id, exc_info=True)
        request = Request(q.text, citations, scope.label if scope else None, now_s, present,
                          seen_now)
        parts: list[str] = []
        note: str | None = None
        used = reasoner
        prompt: Prompt | None = None
        try:
            prompt = reasoner.prepare(request)
            self._stream(q, reasoner, prompt, parts)
            if self._llm_down and reasoner is not self.fallback and not q.cancel.is_set():
                self._llm_down = False
                self.bus.emit(EngineRecovered(LLM_ENGINE))
        except Exception as exc:  # ReasonerError; anything else is a bug, answered all the same
            note = str(exc) if isinstance(exc, ReasonerError) else (
                f"the language model failed: {type(exc).__name__}: {exc}")
            self.fell_back += 1
            log.warning("question %d: %s; answering from memory without it", q.id, note,
                        exc_info=not isinstance(exc, ReasonerError))
            if not self._llm_down:
                self._llm_down = True
                self.bus.emit(EngineFailed(LLM_ENGINE, note, restarting=False))
            if parts:  # the model stopped mid-answer: what it said stays, marked
                mark = "…\n" if parts[-1][-1:].isspace() else " …\n"
                parts.append(mark)
                self.bus.emit(AnswerChunk(q.id, mark))
            used = self.fallback
            prompt = self.fallback.prepare(request)
            self._stream(q, self.fallback, prompt, parts)
        cited: list[Citation] = prompt.cited if prompt is not None else []
        return self._finish(q, Answer(q.text, "".join(parts).strip(), cited, request.scope,
                                      used.name, q.cancel.is_set(), note))

    def _stream(self, q: Question, reasoner: Reasoner, prompt: Prompt, parts: list[str]) -> None:
        splitter = SentenceSplitter()
        lock = self.generation if reasoner is not self.fallback else None
        if lock is not None:
            lock.acquire()
        try:
            for piece in reasoner.stream(prompt, q.cancel):
                if q.cancel.is_set():
                    break
                parts.append(piece)
                self.bus.emit(AnswerChunk(q.id, piece))
                for sentence in splitter.feed(piece):
                    self.bus.emit(AnswerSentence(q.id, sentence))
        finally:
            if lock is not None:
                lock.release()
        if not q.cancel.is_set():
            for sentence in splitter.flush():
                self.bus.emit(AnswerSentence(q.id, sentence))

    def _emit_text(self, q: Question, text: str) -> None:
        self.bus.emit(AnswerChunk(q.id, text))
        self.bus.emit(AnswerSentence(q.id, text))

    def _finish(self, q: Question, answer: Answer) -> Answer:
        if answer.interrupted:
            self.interrupted += 1
            log.info("question %d: answer stopped (%d chars said)", q.id, len(answer.text))
        else:
            self.answered += 1
            log.info("question %d answered by %s: %d chars, %d citations", q.id,
                     answer.reasoner, len(answer.text), len(answer.citations))
        self.bus.emit(AnswerFinished(q.id, answer))
        return answer
