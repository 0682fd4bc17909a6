"""Speakers: what says an answer's sentences out loud, in order, and stops at once.

`Speaker` is the protocol; `VoiceSpeaker` renders each sentence with a `Voice` (pyttsx3) in its
own thread and plays it through `AudioOutput`, so the first sentence plays while the model still
writes the rest; `TextOnly` is what answers with when no speech engine or speaker is there (the
reason is shown in the window and logged).

A speaker reports through two callbacks: `on_started(tag, t_s)` when an answer's first sound
reaches the device, and `on_spoken(tag, said, interrupted, stop_delay_s)` when its speech is over,
with what was heard of it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from app.speech.output import AudioOutput, Segment

log = logging.getLogger(__name__)

StartedFn = Callable[[int, float], None]
SpokenFn = Callable[[int, str, bool, "float | None"], None]


class Voice(Protocol):
    name: str

    def render(self, text: str) -> np.ndarray: ...

    def close(self) -> None: ...


class Speaker(Protocol):
    name: str
    available: bool  # False: text only
    reason: str  # why text only ("" when speaking)
    on_started: StartedFn | None
    on_spoken: SpokenFn | None

    def say(self, tag: int, text: str) -> None:
        """Queue a sentence of answer `tag` (a new tag ends the previous answer's speech)."""

    def finish(self, tag: int) -> None:
        """Answer `tag` has no more sentences: on_spoken follows when it has been played."""

    def stop(self) -> float | None:
        """Silence now; on_spoken(interrupted=True) for the answer being said. Returns the
        seconds it took to go silent, or None when nothing was being said."""

    @property
    def speaking(self) -> bool: ...

    def close(self) -> None: ...


def heard_of(segment: Segment) -> str:
    """What was heard of a partly played sentence: its words in proportion to the samples
    played, cut at a word, with "…" (all of it when it was played out)."""
    total = len(segment.pcm)
    if total == 0 or segment.played >= total:
        return segment.text
    words = segment.text.split()
    n = int(len(words) * segment.played / total)
    return " ".join(words[:n]) + "…" if n else ""


class TextOnly:
    """No voice: answers are shown, not said."""

    available = False
    name = "text only"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.on_started: StartedFn | None = None
        self.on_spoken: SpokenFn | None = None

    def say(self, tag: int, text: str) -> None:
        pass

    def finish(self, tag: int) -> None:
        pass

    def stop(self) -> float | None:
        return None

    @property
    def speaking(self) -> bool:
        return False

    def close(self) -> None:
        pass


class VoiceSpeaker:
    """Renders sentences in its own thread ("tts") and plays them on `output`."""

    available = True
    reason = ""

    def __init__(self, make_voice: Callable[[], Voice], output: AudioOutput) -> None:
        self.output = output
        self.on_started: StartedFn | None = None
        self.on_spoken: SpokenFn | None = None
        # (tag, a sentence to say | None: its answer is finished | a segment that started)
        self._inbox: queue.Queue[tuple[int, str | Segment | None] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._tag: int | None = None  # the answer being said
        self._segments: list[Segment] = []  # its sentences, rendered
        self._finished = False  # its last sentence is known
        self._pending = 0  # its sentences not rendered yet
        self._announced: int | None = None  # the last answer whose first sound was reported
        self.name = "voice"
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                voice = make_voice()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            self.name = voice.name
            ready.set()
            self._run(voice)

        output.on_start = self._segment_started
        self._thread = threading.Thread(target=run, name="tts", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    # --- the caller's side -------------------------------------------------------------------

    def say(self, tag: int, text: str) -> None:
        with self._lock:
            if tag != self._tag:
                self._begin(tag)
            self._pending += 1
        self._inbox.put((tag, text))

    def finish(self, tag: int) -> None:
        with self._lock:
            if tag != self._tag:
                return  # nothing of it was said
            self._finished = True
        self._inbox.put((tag, None))  # after its sentences: checks whether all was played

    def stop(self) -> float | None:
        t0 = time.monotonic()
        with self._lock:
            tag = self._tag
            if tag is None:
                return None
            self._tag = None
            segments = self._segments
            self._segments = []
        self.output.stop()
        delay = time.monotonic() - t0
        said = " ".join(s for s in (heard_of(seg) for seg in segments if seg.played) if s)
        self._report(tag, said, True, delay)
        return delay

    @property
    def speaking(self) -> bool:
        with self._lock:
            return self._tag is not None

    def close(self) -> None:
        self.stop()
        self._inbox.put(None)
        self._thread.join(5.0)
        self.output.close()

    def _begin(self, tag: int) -> None:
        """Under the lock: a new answer; the one being said (if any) is cut off."""
        if self._tag is not None:
            previous = self._tag
            self._lock.release()
            try:
                self.stop()
            finally:
                self._lock.acquire()
            log.debug("answer %d: cut off by answer %d", previous, tag)
        self._tag = tag
        self._segments = []
        self._finished = False
        self._pending = 0

    # --- the render thread -------------------------------------------------------------------

    def _run(self, voice: Voice) -> None:
        try:
            while (item := self._inbox.get()) is not None:
                tag, text = item
                if text is None:
                    self._check_done(tag)
                    continue
                if isinstance(text, Segment):
                    with self._lock:
                        current = tag == self._tag  # not stopped meanwhile
                    if current and self.on_started is not None:
                        self.on_started(tag, text.started_s or time.monotonic())
                    continue
                with self._lock:
                    wanted = tag == self._tag
                if not wanted:
                    continue  # stopped before its turn
                try:
                    pcm = voice.render(text)
                except Exception:
                    log.exception("the voice could not say a sentence of answer %d", tag)
                    pcm = np.zeros(0, dtype=np.int16)
                seg = Segment(pcm, tag, text)
                with self._lock:
                    if tag != self._tag:
                        continue  # stopped while it was rendered
                    self._pending -= 1
                    self._segments.append(seg)
                    self.output.play(seg)
                self._check_done(tag)
        finally:
            voice.close()

    def _check_done(self, tag: int) -> None:
        """When answer `tag` is finished and all of it rendered, wait for it to play out."""
        with self._lock:
            if tag != self._tag or not self._finished or self._pending:
                return
            segments = list(self._segments)
        threading.Thread(target=self._await_played, args=(tag, segments),
                         name="tts-played", daemon=True).start()

    def _await_played(self, tag: int, segments: list[Segment]) -> None:
        for seg in segments:
            seg.done.wait()
        with self._lock:
            if tag != self._tag:
                return  # stopped meanwhile: reported by stop()
            self._tag = None
            self._segments = []
        # Played out: the device still holds its last blocks (its latency) — they play now.
        said = " ".join(s.text for s in segments if len(s.pcm))
        self._report(tag, said, False, None)

    def _segment_started(self, seg: Segment) -> None:
        """From the audio callback: a segment's first block went to the device. An answer's
        first is reported from the render thread (nothing more is done in the callback)."""
        if seg.tag != self._announced:
            self._announced = seg.tag
            self._inbox.put_nowait((seg.tag, seg))

    def _report(self, tag: int, said: str, interrupted: bool, delay: float | None) -> None:
        if self.on_spoken is not None:
            self.on_spoken(tag, said, interrupted, delay)

