"""A voice and a speaker output without a sound device, for unit tests and bench/voice.py."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from app.speech.echo import RATE_HZ
from app.speech.output import Segment

BLOCK = RATE_HZ // 100


class FakeOutput:
    """Plays queued segments at real-time pace in a thread (10 ms blocks), like AudioOutput."""

    def __init__(self) -> None:
        self.on_start: Any = None
        self.queue: list[Segment] = []
        self.lock = threading.Lock()
        self.stops = 0
        self.closed = False
        self._thread = threading.Thread(target=self._run, name="fake-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t_next = time.monotonic()
        while not self.closed:
            with self.lock:
                seg = self.queue[0] if self.queue else None
                if seg is not None:
                    if seg.started_s is None:
                        seg.started_s = time.monotonic()
                        if self.on_start:
                            self.on_start(seg)
                    seg.played = min(len(seg.pcm), seg.played + BLOCK)
                    if seg.played >= len(seg.pcm):
                        self.queue.pop(0)
                        seg.done.set()
            t_next += BLOCK / RATE_HZ
            time.sleep(max(0.0, t_next - time.monotonic()))

    def play(self, seg: Segment) -> None:
        with self.lock:
            self.queue.append(seg)

    def stop(self) -> list[Segment]:
        with self.lock:
            dropped, self.queue = self.queue, []
        self.stops += 1
        for seg in dropped:
            seg.done.set()
        return dropped

    def close(self) -> None:
        self.closed = True


class FakeVoice:
    """0.1 s of samples a word, after `compute_s` of pretended work (a fixed render time)."""

    name = "fake voice"

    def __init__(self, compute_s: float = 0.0) -> None:
        self.compute_s = compute_s
        self.said: list[str] = []

    def render(self, text: str) -> np.ndarray:
        if self.compute_s:
            time.sleep(self.compute_s)
        self.said.append(text)
        return np.ones(len(text.split()) * RATE_HZ // 10, np.int16)

    def close(self) -> None:
        pass
