"""Memory interfaces and the record they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

Kind = Literal["utterance", "clip"]


@dataclass(frozen=True)
class Moment:
    """One remembered moment: something said (utterance) or seen (clip)."""

    id: str
    kind: Kind
    t0_s: float
    t1_s: float
    text: str = ""
    sound: str = ""
    key_frame: str | None = None  # path relative to the key-frame dir
    n_frames: int = 0
    question: str = ""  # an utterance that asked the assistant this (UtteranceTranscribed)


@dataclass(frozen=True)
class Hit:
    moment: Moment
    similarity: float


class Embedder(Protocol):
    """Text → L2-normalised float32 vectors."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class MemoryStore(Protocol):
    """The durable memory. One process owns it (see app.core.lock)."""

    def add(self, items: list[tuple[Moment, np.ndarray]]) -> None:
        """Commit moments with their vectors (text vectors for utterances, visual for clips)."""
        ...

    def search(self, vector: np.ndarray, k: int, days: list[str] | None = None) -> list[Hit]:
        """Utterances nearest to a text vector, optionally only on the given local days."""
        ...

    def moments_on_day(self, day: str) -> list[Moment]:
        """Every moment of a local day ('YYYY-MM-DD'), in time order."""
        ...

    def delete(self, ids: list[str]) -> None:
        """Forget moments (their key-frame files are the caller's to remove)."""
        ...

    def delete_before(self, t_s: float) -> list[Moment]:
        """Forget every moment that started before `t_s` (retention); returns them."""
        ...

    def count(self) -> dict[str, int]: ...
