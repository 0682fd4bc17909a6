"""An in-memory MemoryStore with the same semantics as the Chroma one (for logic tests): the same
side file in memory (records, full-text index, embedder state), vectors searched exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.timefmt import day_bounds
from app.memory.base import (
    LIVE_KINDS,
    TEXT_KINDS,
    EmbedderState,
    Hit,
    Kind,
    Moment,
    caption_vector,
    embeds_text,
)
from app.memory.sidecar import Sidecar


class InMemoryStore:
    def __init__(self) -> None:
        self.side = Sidecar(Path(":memory:"))
        self.vectors: dict[str, dict[str, np.ndarray]] = {}  # embedder → id → vector
        self.clip_vectors: dict[str, np.ndarray] = {}

    @property
    def items(self) -> dict[str, tuple[Moment, np.ndarray]]:
        """Every stored moment with its vector, in time order (for tests to look at)."""
        out = {}
        for m in self.side.between(None, None, ("utterance", "clip", "summary")):
            vector = self.clip_vectors.get(m.id)
            if vector is None:
                vector = next((v[m.id] for v in self.vectors.values() if m.id in v), None)
            out[m.id] = (m, vector if vector is not None else np.zeros(0, np.float32))
        return out

    def _want(self, embedder: str) -> None:
        active, building = self.side.get_state("active"), self.side.get_state("building")
        if active == embedder:
            if building:
                self.vectors.pop(building, None)
                self.side.set_state("building", None)
        elif active is None and self.side.text_count() == len(self.vectors.get(embedder, {})):
            self.side.set_state("active", embedder)
        elif building != embedder:
            if building:
                self.vectors.pop(building, None)
            self.side.set_state("building", embedder)

    def _maybe_activate(self, embedder: str) -> None:
        if (self.side.get_state("building") == embedder
                and len(self.vectors.get(embedder, {})) >= self.side.text_count()):
            old = self.side.get_state("active")
            if old:
                self.vectors.pop(old, None)
            self.side.set_state("active", embedder)
            self.side.set_state("building", None)

    def _sync_vec(self) -> None:
        with self.side.transaction() as db:
            db.execute("DELETE FROM vec")
            for embedder, vecs in self.vectors.items():
                self.side.set_vectors(db, embedder, list(vecs))

    def add(self, items: list[tuple[Moment, np.ndarray]], embedder: str,
            captions: dict[str, np.ndarray] | None = None) -> None:
        texts = [(m, v if m.kind in TEXT_KINDS else caption_vector(m, captions))
                 for m, v in items if embeds_text(m)]
        if texts:
            self._want(embedder)
        with self.side.transaction() as db:
            self.side.upsert(db, [m for m, _ in items])
        for m, v in items:
            if m.kind not in TEXT_KINDS:
                self.clip_vectors[m.id] = np.asarray(v, np.float32)
        for m, v in texts:
            for vecs in self.vectors.values():
                vecs.pop(m.id, None)
            self.vectors.setdefault(embedder, {})[m.id] = np.asarray(v, np.float32)
        self._sync_vec()
        self._maybe_activate(embedder)

    def search(self, vector: np.ndarray, k: int, t0_s: float | None = None,
               t1_s: float | None = None, embedder: str = "") -> list[Hit]:
        vecs = self.vectors.get(embedder, {})
        moments = {m.id: m for m in self.side.get(list(vecs))}
        lo, hi = (-np.inf if t0_s is None else t0_s), (np.inf if t1_s is None else t1_s)
        hits = [Hit(moments[i], float(v @ vector)) for i, v in vecs.items()
                if i in moments and lo <= moments[i].t0_s < hi]
        hits.sort(key=lambda h: (-h.similarity, -h.moment.t0_s, h.moment.id))
        return hits[:k]

    def keyword_search(self, query: str, k: int, t0_s: float | None = None,
                       t1_s: float | None = None) -> list[Hit]:
        return [Hit(m, s) for m, s in self.side.keyword(query, k, t0_s, t1_s)]

    def moments_between(self, t0_s: float, t1_s: float,
                        kinds: tuple[Kind, ...] = LIVE_KINDS) -> list[Moment]:
        return self.side.between(t0_s, t1_s, kinds)

    def moments_on_day(self, day: str) -> list[Moment]:
        return self.moments_between(*day_bounds(day))

    def get(self, ids: list[str]) -> list[Moment]:
        return self.side.get(ids)

    def delete(self, ids: list[str]) -> list[Moment]:
        with self.side.transaction() as db:
            gone = self.side.delete(db, ids)
        for m in gone:
            self.clip_vectors.pop(m.id, None)
            for vecs in self.vectors.values():
                vecs.pop(m.id, None)
        return gone

    def delete_before(self, t_s: float) -> list[Moment]:
        return self.delete(self.side.ids_before(t_s))

    def count(self) -> dict[str, int]:
        return self.side.counts()

    def span(self) -> tuple[float, float] | None:
        return self.side.span()

    def embedder_state(self, wanted: str) -> EmbedderState:
        self._want(wanted)
        building = self.side.get_state("building")
        return EmbedderState(self.side.get_state("active"), building,
                             len(self.vectors.get(building, {})) if building else 0,
                             self.side.text_count())

    def embedding_todo(self, embedder: str, limit: int) -> list[tuple[str, str]]:
        return [(m.id, m.text or f"({m.sound})") for m in self.side.todo(embedder, limit)]

    def add_vectors(self, embedder: str, vectors: list[tuple[str, np.ndarray]]) -> EmbedderState:
        self._want(embedder)
        if self.side.get_state("building") == embedder:
            known = {m.id for m in self.side.get([i for i, _ in vectors])}
            self.vectors.setdefault(embedder, {}).update(
                {i: np.asarray(v, np.float32) for i, v in vectors if i in known})
            self._sync_vec()
        self._maybe_activate(embedder)
        return self.embedder_state(embedder)
