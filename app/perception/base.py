"""Perception interfaces: voice activity and speech recognition."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Vad(Protocol):
    """Frame-level voice activity detection on 16 kHz int16 PCM."""

    name: str
    frame_ms: int

    def is_speech(self, frame: np.ndarray) -> bool: ...


class Transcriber(Protocol):
    """Speech to text for one utterance (16 kHz mono int16)."""

    name: str

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str: ...
