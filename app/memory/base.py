"""Memory interfaces and the record they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

Kind = Literal["utterance", "clip", "summary"]
TEXT_KINDS: tuple[Kind, ...] = ("utterance", "summary")  # embedded as text, in the full-text index
LIVE_KINDS: tuple[Kind, ...] = ("utterance", "clip")  # what perception stores (summaries are derived)


@dataclass(frozen=True)
class Moment:
    """One remembered moment: something said (utterance) or seen (clip), or a summary of an hour
    or a day (long-term memory, written by app/memory/integrate.py)."""

    id: str
    kind: Kind
    t0_s: float
    t1_s: float
    text: str = ""
    sound: str = ""
    key_frame: str | None = None  # path relative to the key-frame dir
    n_frames: int = 0
    question: str = ""  # an utterance that asked the assistant this (UtteranceTranscribed)


def embeds_text(m: Moment) -> bool:
    """Whether `m` has a text vector: utterances and summaries always, a clip once it has a
    caption (its visual vector stays in the clips' collection beside it)."""
    return m.kind in TEXT_KINDS or (m.kind == "clip" and bool(m.text))


def caption_vector(m: Moment, captions: dict[str, np.ndarray] | None) -> np.ndarray:
    """The text vector given for captioned clip `m` (MemoryStore.add), or ValueError."""
    vector = (captions or {}).get(m.id)
    if vector is None:
        raise ValueError(f"clip {m.id} has a caption but no text vector for it")
    return vector


@dataclass(frozen=True)
class Hit:
    moment: Moment
    similarity: float


class Embedder(Protocol):
    """Text → L2-normalised float32 vectors.

    `name` is recorded with every vector it makes (the store keeps one vector set per embedder);
    change it whenever the vectors change. `min_similarity`: below it, a vector hit that shares
    no word with the question is not relevant (each embedder's similarities have their own scale).
    """

    name: str
    dim: int
    min_similarity: float

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbedderState:
    """Which vector set answers searches, and the one being built to replace it."""

    active: str | None  # None: the store holds no text vectors yet
    building: str | None = None
    done: int = 0  # text moments the building embedder has vectors for
    total: int = 0  # text moments in all


class MemoryStore(Protocol):
    """The durable memory. One process owns it (see app.core.lock).

    Time ranges are half-open, [t0_s, t1_s), on a moment's start. `None` is unbounded.
    """

    def add(self, items: list[tuple[Moment, np.ndarray]], embedder: str,
            captions: dict[str, np.ndarray] | None = None) -> None:
        """Commit moments with their vectors: text vectors made by `embedder` for utterances and
        summaries, visual vectors for clips; `captions`: the `embedder` vector of each captioned
        clip's caption, by id (required for every clip with text). Upserts: an id stored again
        replaces the old one."""
        ...

    def search(self, vector: np.ndarray, k: int, t0_s: float | None = None,
               t1_s: float | None = None, *, embedder: str) -> list[Hit]:
        """Moments with text vectors (utterances, summaries, captioned clips) nearest to a vector
        made by `embedder`, optionally only those starting in [t0_s, t1_s). Similarity: cosine,
        highest first."""
        ...

    def keyword_search(self, query: str, k: int, t0_s: float | None = None,
                       t1_s: float | None = None) -> list[Hit]:
        """Text moments matching the words of `query` (full-text index, BM25); similarity is the
        negated BM25 score (higher is better), ties broken by newer first, then id."""
        ...

    def moments_between(self, t0_s: float, t1_s: float,
                        kinds: tuple[Kind, ...] = LIVE_KINDS) -> list[Moment]:
        """The moments of these kinds starting in [t0_s, t1_s), in time order."""
        ...

    def moments_on_day(self, day: str) -> list[Moment]:
        """Every utterance and clip of a local day ('YYYY-MM-DD'), in time order."""
        ...

    def get(self, ids: list[str]) -> list[Moment]:
        """The stored moments with these ids (unknown ids are skipped)."""
        ...

    def delete(self, ids: list[str]) -> list[Moment]:
        """Forget moments: vectors, texts, full-text rows, time-index rows. Returns what was
        deleted (its key-frame files are the caller's to remove)."""
        ...

    def delete_before(self, t_s: float) -> list[Moment]:
        """Forget every moment that started before `t_s` (retention); returns them."""
        ...

    def count(self) -> dict[str, int]: ...

    def span(self) -> tuple[float, float] | None:
        """The first and last start time of the stored utterances and clips (None: empty)."""
        ...

    # --- embedders: the store keeps one vector set per embedder name ----------------------------

    def embedder_state(self, wanted: str) -> EmbedderState:
        """Which vector set answers searches; starts building `wanted`'s if it is not active."""
        ...

    def embedding_todo(self, embedder: str, limit: int) -> list[tuple[str, str]]:
        """(id, text) of moments with text (captioned clips too) that have no `embedder` vector
        yet, oldest first."""
        ...

    def add_vectors(self, embedder: str, vectors: list[tuple[str, np.ndarray]]) -> EmbedderState:
        """Store `embedder` vectors for stored text moments; when every text moment has one, that
        set becomes the active one (the old set is dropped)."""
        ...
