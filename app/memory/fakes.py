"""An in-memory MemoryStore with the same semantics as the Chroma one (for logic tests)."""

from __future__ import annotations

import numpy as np

from app.core.timefmt import local_day
from app.memory.base import Hit, Moment


class InMemoryStore:
    def __init__(self) -> None:
        self.items: dict[str, tuple[Moment, np.ndarray]] = {}

    def add(self, items: list[tuple[Moment, np.ndarray]]) -> None:
        for m, v in items:
            self.items[m.id] = (m, v.astype(np.float32))

    def search(self, vector: np.ndarray, k: int, days: list[str] | None = None) -> list[Hit]:
        hits = [
            Hit(m, float(v @ vector))
            for m, v in self.items.values()
            if m.kind == "utterance" and (days is None or local_day(m.t0_s) in days)
        ]
        return sorted(hits, key=lambda h: -h.similarity)[:k]

    def moments_on_day(self, day: str) -> list[Moment]:
        return sorted(
            (m for m, _ in self.items.values() if local_day(m.t0_s) == day),
            key=lambda m: (m.t0_s, m.kind),
        )

    def delete(self, ids: list[str]) -> None:
        for id_ in ids:
            self.items.pop(id_, None)

    def delete_before(self, t_s: float) -> list[Moment]:
        gone = [m for m, _ in self.items.values() if m.t0_s < t_s]
        self.delete([m.id for m in gone])
        return gone

    def count(self) -> dict[str, int]:
        kinds = [m.kind for m, _ in self.items.values()]
        return {"utterance": kinds.count("utterance"), "clip": kinds.count("clip")}
