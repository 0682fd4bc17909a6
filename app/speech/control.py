"""Answers said out loud, and barge-in: the bus listener between the answer stage and a speaker.

AnswerStarted → (when `[assistant] speak` wants this answer said) its sentences go to the
speaker as they are generated; AnswerFinished → the speaker finishes it, and AnswerSpoken tells
what was heard. SpeechStarted while an answer is generated or said → barge-in: generation is
stopped between two tokens and the speaker is silenced at once (BargeIn, then AnswerSpoken with
`interrupted` and what had been said). While Daybook's voice is playing, barge-in also needs the
VAD to be sure (`barge_in_confidence`): what the echo canceller leaves of Daybook's own voice must
not cut it off.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from app.core.config import AssistantConfig
from app.core.events import (
    AnswerFinished,
    AnswerSentence,
    AnswerSpoken,
    AnswerStarted,
    BargeIn,
    SpeakingStarted,
    SpeechStarted,
)
from app.speech.speaker import Speaker

log = logging.getLogger(__name__)


class VoiceControl:
    """Subscribe `on_event` to the bus; `stop_answer` stops generation (the service's)."""

    def __init__(self, speaker: Speaker, emit: Callable[[object], None],
                 stop_answer: Callable[[], bool], cfg: AssistantConfig) -> None:
        self.speaker: Speaker = speaker
        self.emit = emit
        self.stop_answer = stop_answer
        self.cfg = cfg
        self._lock = threading.Lock()
        self._answering: int | None = None  # generated now (said or not)
        self._said: int | None = None  # the answer whose sentences go to the speaker
        self.barge_ins = 0
        # Speech heard from a live microphone can be someone talking over Daybook; speech in a
        # recording being replayed (the demo, --audio) cannot (set by the service).
        self.heard_live = True
        # Whether the microphone's echo canceller has learnt the room (set by the service):
        # until then its output still holds Daybook's own voice, and speech over an answer is
        # not taken as barge-in (the first answer through open speakers cut itself off).
        self.echo_settled: Callable[[], bool] = lambda: True
        self.ignored_starts = 0  # speech starts while speaking that were not sure enough
        self.attach(speaker)

    def attach(self, speaker: Speaker) -> Speaker:
        """Use `speaker` from now on; returns the previous one (for the caller to close)."""
        previous, self.speaker = self.speaker, speaker
        speaker.on_started = self._started
        speaker.on_spoken = self._spoken
        if previous is not speaker:
            previous.stop()
        return previous

    def wants(self, event: AnswerStarted) -> bool:
        mode = self.cfg.speak
        return self.speaker.available and (mode == "always" or (mode == "spoken" and event.spoken))

    def speak_next(self) -> None:
        """Say the next answer whatever `speak` is (`ask --speak`)."""
        self.cfg = dataclasses.replace(self.cfg, speak="always")

    def on_event(self, event: object) -> None:
        if isinstance(event, AnswerStarted):
            with self._lock:
                self._answering = event.question_id
                self._said = event.question_id if self.wants(event) else None
        elif isinstance(event, AnswerSentence):
            if event.question_id == self._said:
                self.speaker.say(event.question_id, event.text)
        elif isinstance(event, AnswerFinished):
            with self._lock:
                if self._answering == event.question_id:
                    self._answering = None
                said = self._said == event.question_id
            if said:
                self.speaker.finish(event.question_id)
        elif isinstance(event, SpeechStarted):
            self._speech_started(event)

    def _speech_started(self, event: SpeechStarted) -> None:
        if not self.cfg.barge_in or not self.heard_live:
            return
        speaking = self.speaker.speaking
        with self._lock:
            answering = self._answering
        if not speaking and answering is None:
            return
        if speaking and not self.echo_settled():
            self.ignored_starts += 1
            log.info("speech start while speaking not taken as barge-in: the echo canceller is "
                     "still learning the room")
            return
        if speaking and event.confidence < self.cfg.barge_in_confidence:
            self.ignored_starts += 1
            log.info("speech start while speaking not taken as barge-in (confidence %.2f < %.2f)",
                     event.confidence, self.cfg.barge_in_confidence)
            return
        qid = answering if answering is not None else (self._said or 0)
        self.stop_answer()
        delay = self.speaker.stop()
        self.barge_ins += 1
        log.info("barge-in: answer %d stopped (speech silenced in %s)", qid,
                 f"{1000 * delay:.0f} ms" if delay is not None else "—")
        self.emit(BargeIn(qid, event.t0_s))

    def _started(self, tag: int, t_s: float) -> None:
        self.emit(SpeakingStarted(tag, t_s))

    def _spoken(self, tag: int, said: str, interrupted: bool, delay: float | None) -> None:
        with self._lock:
            if self._said == tag:
                self._said = None
        log.info("answer %d %s (%d chars said)", tag,
                 "cut off" if interrupted else "spoken", len(said))
        self.emit(AnswerSpoken(tag, said, interrupted, delay))

    def stop(self) -> bool:
        """The user pressed Stop: generation and speech end now."""
        stopped = self.stop_answer()
        return self.speaker.stop() is not None or stopped

