"""The durable memory: an embedded Chroma database (telemetry off) under the data dir.

Two collections: `utterances` (text vectors, cosine) and `clips` (visual global vectors, cosine).
Every record carries its time span, local day and kind as metadata. Time scoping uses the `day`
string, never Chroma's numeric range filters (they scan the whole metadata table:
shared/notes/MEMORY_SCALE.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from app.core.timefmt import local_day
from app.memory.base import Hit, Moment

log = logging.getLogger(__name__)

# Belt and braces: Chroma reads these before its settings object exists.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("CHROMA_TELEMETRY_IMPL", "none")

_COLLECTIONS = {"utterance": "utterances", "clip": "clips"}


def _meta(m: Moment) -> dict[str, Any]:
    return {
        "kind": m.kind,
        "t0": m.t0_s,
        "t1": m.t1_s,
        "day": local_day(m.t0_s),
        "sound": m.sound,
        "key_frame": m.key_frame or "",
        "n_frames": m.n_frames,
        "question": m.question,
    }


def _moment(id_: str, meta: dict[str, Any], doc: str | None) -> Moment:
    return Moment(
        id=id_,
        kind=meta["kind"],
        t0_s=float(meta["t0"]),
        t1_s=float(meta["t1"]),
        text=doc or "",
        sound=str(meta.get("sound", "")),
        key_frame=str(meta.get("key_frame") or "") or None,
        n_frames=int(meta.get("n_frames", 0)),
        question=str(meta.get("question") or ""),
    )


class ChromaMemoryStore:
    def __init__(self, path: Path) -> None:
        import chromadb
        from chromadb.config import Settings

        self.path = path
        self._client = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
        )
        self._cols = {
            kind: self._client.get_or_create_collection(
                name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
            for kind, name in _COLLECTIONS.items()
        }

    def add(self, items: list[tuple[Moment, np.ndarray]]) -> None:
        # Chroma holds the GIL for a whole upsert (20–40 ms for 32 rows): the app runs this
        # class in its own process (app/memory/store_process.py) so no GUI thread waits on it.
        for kind, col in self._cols.items():
            batch = [(m, v) for m, v in items if m.kind == kind]
            if batch:
                col.upsert(
                    ids=[m.id for m, _ in batch],
                    embeddings=np.stack([v for _, v in batch]).astype(np.float32),
                    metadatas=[_meta(m) for m, _ in batch],
                    documents=[m.text for m, _ in batch],
                )

    def search(self, vector: np.ndarray, k: int, days: list[str] | None = None) -> list[Hit]:
        col = self._cols["utterance"]
        n = col.count()
        if n == 0 or days == []:
            return []
        where: Any = None
        if days:
            where = {"day": days[0]} if len(days) == 1 else {"day": {"$in": days}}
        res: Any = col.query(
            query_embeddings=[vector.astype(np.float32).tolist()],
            n_results=min(k, n),
            where=where,
            include=["metadatas", "documents", "distances"],
        )
        hits = []
        for id_, meta, doc, dist in zip(
            res["ids"][0],
            res["metadatas"][0],
            res["documents"][0],
            res["distances"][0],
            strict=True,
        ):
            hits.append(Hit(_moment(id_, dict(meta), doc), similarity=1.0 - float(dist)))
        return hits

    def moments_on_day(self, day: str) -> list[Moment]:
        out: list[Moment] = []
        for col in self._cols.values():
            res: Any = col.get(where={"day": day}, include=["metadatas", "documents"])
            docs = res["documents"] or [""] * len(res["ids"])
            out.extend(
                _moment(i, dict(m), d)
                for i, m, d in zip(res["ids"], res["metadatas"] or [], docs, strict=True)
            )
        return sorted(out, key=lambda m: (m.t0_s, m.kind))

    def delete(self, ids: list[str]) -> None:
        for col in self._cols.values():
            col.delete(ids=ids)

    def delete_before(self, t_s: float) -> list[Moment]:
        # A numeric filter scans the metadata table: fine for a daily background clean-up,
        # never on a query path (shared/notes/MEMORY_SCALE.md).
        gone: list[Moment] = []
        for col in self._cols.values():
            where: Any = {"t0": {"$lt": t_s}}
            res: Any = col.get(where=where, include=["metadatas", "documents"])
            if res["ids"]:
                docs = res["documents"] or [""] * len(res["ids"])
                gone += [_moment(i, dict(m), d)
                         for i, m, d in zip(res["ids"], res["metadatas"], docs, strict=True)]
                col.delete(ids=res["ids"])
        return gone

    def count(self) -> dict[str, int]:
        return {kind: col.count() for kind, col in self._cols.items()}
