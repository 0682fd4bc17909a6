"""Deterministic perception backends for unit tests of pipeline logic."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from app.core.events import SoundClass


class EnergyVad:
    """Voiced when the frame's RMS is above a threshold: exact on synthetic signals."""

    name = "fake-energy-vad"

    def __init__(self, threshold: float = 500.0, frame_ms: int = 30) -> None:
        self.threshold = threshold
        self.frame_ms = frame_ms

    def is_speech(self, frame: np.ndarray) -> bool:
        return float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > self.threshold


class ScriptedTranscriber:
    """Returns the given texts in order, one per utterance, then "" (records what it got)."""

    name = "fake-scripted"

    def __init__(self, texts: Iterable[str]) -> None:
        self._texts = list(texts)
        self.calls: list[float] = []

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        self.calls.append(len(pcm) / sample_rate_hz)
        return self._texts.pop(0) if self._texts else ""


def always_speech(pcm: np.ndarray, sample_rate_hz: int) -> tuple[SoundClass, float]:
    """A sound classifier for pipeline tests whose test signals are tones, not speech."""
    return SoundClass.SPEECH, 1.0
