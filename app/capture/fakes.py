"""Deterministic sources for tests: audio from an array, frames from a list of images."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np

from app.capture.base import TARGET_SAMPLE_RATE_HZ
from app.core.events import AudioCaptured, FrameCaptured


class ArrayAudioSource:
    live = False

    def __init__(self, pcm: np.ndarray, *, start_s: float = 0.0, block_ms: int = 30,
                 name: str = "fake audio") -> None:
        self.pcm = pcm.astype(np.int16)
        self.start_s = start_s
        self.block = TARGET_SAMPLE_RATE_HZ * block_ms // 1000
        self.name = name
        self.duration_s: float | None = len(pcm) / TARGET_SAMPLE_RATE_HZ
        self.closed = False

    def chunks(self, stop: threading.Event) -> Iterator[AudioCaptured]:
        for i in range(0, len(self.pcm), self.block):
            if stop.is_set():
                return
            yield AudioCaptured(self.pcm[i:i + self.block],
                                self.start_s + i / TARGET_SAMPLE_RATE_HZ, TARGET_SAMPLE_RATE_HZ)

    def close(self) -> None:
        self.closed = True


class ListFrameSource:
    def __init__(self, images: Sequence[np.ndarray], *, fps: float = 1.0, start_s: float = 0.0,
                 live: bool = False, name: str = "fake video") -> None:
        self.images = list(images)
        self.fps = fps
        self.start_s = start_s
        self.live = live
        self.name = name
        self.duration_s: float | None = len(self.images) / fps
        self.closed = False

    def frames(self, stop: threading.Event) -> Iterator[FrameCaptured]:
        for i, image in enumerate(self.images):
            if stop.is_set():
                return
            yield FrameCaptured(image=image, t_s=self.start_s + i / self.fps, index=i)

    def close(self) -> None:
        self.closed = True
