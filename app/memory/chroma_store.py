"""The durable memory: a Chroma database (embedded, or a Chroma server), with two derived
indexes beside it that make it fast at a year of moments.

- Chroma holds the truth: `clips` (visual vectors) and one text collection per embedder (its
  vectors of utterances and summaries), every record with its full metadata and text.
  The lexical embedder's collection keeps its old name `utterances` (data dirs from before).
- The side file (app/memory/sidecar.py, SQLite): every moment by time, the full-text index
  (BM25), which embedder has vectors for which moment, the active and the building embedder.
- A time index per embedder (app/memory/timeindex.py): its vectors sorted by time, memory-mapped.

Searches: a time-scoped question (or any question while the store is small) is answered exactly
from the time index; an open one at scale from Chroma's HNSW. Chroma's metadata filters are never
on a query path (they scan the whole metadata table: shared/notes/MEMORY_SCALE.md).

Crash safety: before Chroma is touched, the ids a write is about are recorded in the side file
(`pending`); the derived indexes are updated after Chroma, and `pending` is cleared in the same
transaction as the side file's rows. At the next open (or the next write) the pending ids are
re-read from Chroma and both indexes repaired for just those ids. A side file that is missing
(a data dir from before it existed) is rebuilt from Chroma, and so is a damaged time index.

Switching embedders: the new embedder's vectors are added next to the old ones (the caller
re-embeds in the background through `embedding_todo`/`add_vectors`); searches use the old set
until the new one covers every text moment, then the new set becomes active and the old one is
dropped. One state change, in one SQLite transaction.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import DaybookError
from app.core.timefmt import day_bounds, local_day
from app.memory.base import (
    LIVE_KINDS,
    TEXT_KINDS,
    EmbedderState,
    Hit,
    Kind,
    Moment,
    caption_vector,
)
from app.memory.sidecar import Sidecar
from app.memory.timeindex import TimeIndex

log = logging.getLogger(__name__)

# Belt and braces: Chroma reads these before its settings object exists.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("CHROMA_TELEMETRY_IMPL", "none")

LEGACY_TEXT = "utterances"  # the lexical embedder's collection, named before there were others
LEXICAL = "lexical (hashed n-grams)"  # app.memory.embed_lexical.LexicalEmbedder.name
EXACT_ROWS = 200_000  # up to this many rows in range, search exactly (≤ ≈20 ms); else HNSW
OVERSAMPLE = 8  # HNSW candidates per wanted hit when a wide time range filters them after
PAGE = 2_000


def _meta(m: Moment, embedder: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "kind": m.kind,
        "t0": m.t0_s,
        "t1": m.t1_s,
        "day": local_day(m.t0_s),
        "sound": m.sound,
        "key_frame": m.key_frame or "",
        "n_frames": m.n_frames,
        "question": m.question,
    }
    if embedder:
        meta["embedder"] = embedder
    return meta


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


def _slug(embedder: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", embedder.lower()).strip("-")[:48] or "x"


def collection_name(embedder: str) -> str:
    return LEGACY_TEXT if embedder == LEXICAL else f"text-{_slug(embedder)}"


def open_client(path: Path, url: str = "") -> Any:
    """An embedded database at `path`, or the Chroma server at `url` (http[s]://host:port)."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if not url:
        return chromadb.PersistentClient(path=str(path), settings=settings)
    from urllib.parse import urlparse

    parts = urlparse(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a Chroma server address: {url!r} (want http://host:port)")
    ssl = parts.scheme == "https"
    try:
        client = chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if ssl else 8000),
                                     ssl=ssl, settings=settings)
    except ValueError as exc:  # chromadb's "Could not connect…" names neither server nor cause
        if exc.__context__ is None or type(exc.__context__).__module__.split(".")[0] != "httpx":
            raise
        raise _unreachable(url, exc.__context__) from exc
    return _Server(client, url)


class ChromaUnreachableError(DaybookError):
    """The Chroma server did not answer (down, restarting, unreachable). A write cut short is
    repaired at the next one (`pending`); the memory writer keeps the moments and retries."""


def _unreachable(url: str, exc: BaseException) -> ChromaUnreachableError:
    why = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return ChromaUnreachableError(f"the Chroma server at {url} cannot be reached: {why}")


class _Server:
    """A Chroma client or collection of a server, whose network errors (httpx's, raw, with
    neither the server nor the call in them) become a ChromaUnreachableError naming the server."""

    def __init__(self, target: Any, url: str) -> None:
        self._target, self._url = target, url

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            import httpx

            try:
                out = attr(*args, **kwargs)
            except httpx.TransportError as exc:
                raise _unreachable(self._url, exc) from exc
            return _Server(out, self._url) if type(out).__name__ == "Collection" else out

        return call


class ChromaMemoryStore:
    def __init__(self, path: Path, *, url: str = "", index_dir: Path | None = None) -> None:
        """`path`: the embedded database's folder (unused with `url`). `index_dir`: where the
        side file and time indexes live (default: beside `path`, `<name>-index`)."""
        self.path = path
        self.url = url
        self.index_dir = index_dir or path.with_name(path.name + "-index")
        self._lock = threading.RLock()
        self._client = open_client(path, url)
        self._clips = self._client.get_or_create_collection(
            "clips", embedding_function=None, metadata={"hnsw:space": "cosine"})
        self._text: dict[str, Any] = {}  # embedder → its Chroma collection
        self._index: dict[str, TimeIndex] = {}
        fresh = not (self.index_dir / "memory.sqlite3").exists()
        self.side = Sidecar(self.index_dir / "memory.sqlite3")
        if fresh or self.side.get_state("built") != "1":
            self._rebuild_side()
        self._drop_orphans()
        for embedder in self._sets():
            self._open_index(embedder)
        if self.side.get_state("pending"):
            self._repair()
        self._warm_up()

    def _warm_up(self) -> None:
        """Chroma loads a collection's HNSW index at its first query (≈9 s at a million
        moments): do that now, in the background, where open questions will need it."""
        active = self.side.get_state("active")
        col = self._col(active) if active else None
        idx = self._index.get(active or "")
        if col is None or idx is None or len(idx) <= EXACT_ROWS:
            return

        def query() -> None:
            try:
                col.query(query_embeddings=[[1.0] + [0.0] * (idx.dim - 1)], n_results=1,
                          include=[])
            except Exception as exc:
                log.debug("memory: warming up the HNSW index: %s", exc)

        threading.Thread(target=query, name="hnsw-warm-up", daemon=True).start()

    # --- collections and indexes ----------------------------------------------------------------

    def _text_collections(self) -> dict[str, Any]:
        """Every text collection in the database, by embedder."""
        out = {}
        for col in self._client.list_collections():
            name = col if isinstance(col, str) else col.name
            if name == LEGACY_TEXT or name.startswith("text-"):
                c = self._client.get_collection(name, embedding_function=None)
                out[str((c.metadata or {}).get("embedder") or LEXICAL)] = c
        return out

    def _col(self, embedder: str, create: bool = False) -> Any:
        col = self._text.get(embedder)
        if col is None:
            name = collection_name(embedder)
            if create:
                col = self._client.get_or_create_collection(
                    name, embedding_function=None,
                    metadata={"hnsw:space": "cosine", "embedder": embedder})
            else:
                try:
                    col = self._client.get_collection(name, embedding_function=None)
                except Exception:
                    return None
            self._text[embedder] = col
        return col

    def _sets(self) -> list[str]:
        return [e for e in (self.side.get_state("active"), self.side.get_state("building")) if e]

    def _index_folder(self, embedder: str) -> Path:
        return self.index_dir / "time" / _slug(embedder)

    def _open_index(self, embedder: str, dim: int | None = None) -> TimeIndex | None:
        idx = self._index.get(embedder)
        if idx is not None:
            return idx
        col = self._col(embedder)
        if dim is None:
            dim = int(self.side.get_state(f"dim:{embedder}") or 0)
            if not dim and col is not None and col.count():
                first = col.get(limit=1, include=["embeddings"])["embeddings"]
                dim = len(first[0])
        if not dim:
            return None
        idx = TimeIndex(self._index_folder(embedder), dim)
        count = self.side.vec_count(embedder)
        if idx.stale or len(idx) != count:
            if count:
                why = idx.stale or f"{len(idx)} rows, the store has {count}"
                log.warning("memory: rebuilding the time index of %s (%s)", embedder, why)
            idx.rebuild(self._vectors_from_chroma(embedder), stamp=embedder)
        self._index[embedder] = idx
        return idx

    def _vectors_from_chroma(self, embedder: str) -> Iterator[list[tuple[str, float, np.ndarray]]]:
        col = self._col(embedder)
        if col is None:
            return
        offset = 0
        while True:
            res: Any = col.get(limit=PAGE, offset=offset, include=["metadatas", "embeddings"])
            if not res["ids"]:
                return
            # t0 as the side file has it: Chroma may give a float back one step off, and the
            # index knows a row by its exact (id, t0).
            t0s = {m.id: m.t0_s for m in self.side.get(res["ids"])}
            yield [(i, t0s.get(i, float(m["t0"])), np.asarray(v, np.float32))
                   for i, m, v in zip(res["ids"], res["metadatas"], res["embeddings"],
                                      strict=True)]
            offset += len(res["ids"])

    def _drop_set(self, embedder: str) -> None:
        """Delete one embedder's vectors (collection, index); its state rows are already gone."""
        idx = self._index.pop(embedder, None)
        if idx is not None:
            idx.close()
        shutil.rmtree(self._index_folder(embedder), ignore_errors=True)
        self._text.pop(embedder, None)
        try:
            self._client.delete_collection(collection_name(embedder))
        except Exception as exc:
            log.debug("memory: dropping %s: %s", embedder, exc)
        log.info("memory: dropped the vectors of %s", embedder)

    def _drop_orphans(self) -> None:
        """Vector sets that are neither active nor building (a switch cut short by a kill)."""
        keep = set(self._sets())
        for embedder in self._text_collections():
            if embedder not in keep:
                with self.side.transaction() as db:
                    self.side.drop_embedder(db, embedder)
                self._drop_set(embedder)

    # --- crash safety -------------------------------------------------------------------------

    def _begin(self, ids: list[str]) -> None:
        if self.side.get_state("pending"):
            self._repair()  # an earlier write failed half-way (a Chroma server went away)
        self.side.set_state("pending", json.dumps(ids))

    def _repair(self) -> None:
        """Make the side file and time indexes agree with Chroma for the pending ids."""
        ids = json.loads(self.side.get_state("pending") or "[]")
        if ids:
            log.warning("memory: repairing %d moments of an interrupted write", len(ids))
        old = {m.id: m for m in self.side.get(ids)}
        present: dict[str, Moment] = {}
        vectors: dict[str, list[tuple[str, float, np.ndarray]]] = {}
        collections = self._text_collections()
        self._text.update(collections)
        for i in range(0, len(ids), PAGE):
            chunk = ids[i:i + PAGE]
            res: Any = self._clips.get(ids=chunk, include=["metadatas", "documents"])
            for id_, meta, doc in zip(res["ids"], res["metadatas"], res["documents"], strict=True):
                present[id_] = _moment(id_, dict(meta), doc)
            for embedder, col in collections.items():
                res = col.get(ids=chunk, include=["metadatas", "documents", "embeddings"])
                for id_, meta, doc, vec in zip(res["ids"], res["metadatas"], res["documents"],
                                               res["embeddings"], strict=True):
                    present[id_] = _moment(id_, dict(meta), doc)
                    vectors.setdefault(embedder, []).append(
                        (id_, float(meta["t0"]), np.asarray(vec, np.float32)))
        for embedder, idx in self._index.items():
            idx.delete([(m.id, m.t0_s) for m in old.values()]
                       + [(m.id, m.t0_s) for m in present.values()])
            if vectors.get(embedder):
                idx.add(vectors[embedder], stamp=embedder)
        with self.side.transaction() as db:
            self.side.delete(db, ids)
            self.side.upsert(db, present.values())
            for embedder, rows in vectors.items():
                self.side.set_vectors(db, embedder, [r[0] for r in rows])
            self.side.set_state("pending", None, db)

    def _rebuild_side(self) -> None:
        """The side file from Chroma: a data dir from before it existed, or a lost side file."""
        sets = self._text_collections()
        if self._clips.count() or any(col.count() for col in sets.values()):
            log.warning("memory: building the time and full-text indexes from the database")
        with self.side.transaction() as db:
            for table in ("moment", "fts", "vec", "state"):
                db.execute(f"DELETE FROM {table}")
            for embedder, col in [("", self._clips), *sets.items()]:
                offset = 0
                while True:
                    res: Any = col.get(limit=PAGE, offset=offset,
                                       include=["metadatas", "documents"])
                    if not res["ids"]:
                        break
                    docs = res["documents"] or [""] * len(res["ids"])
                    self.side.upsert(db, [_moment(i, dict(m), d) for i, m, d
                                          in zip(res["ids"], res["metadatas"], docs, strict=True)])
                    if embedder:
                        self.side.set_vectors(db, embedder, res["ids"])
                    offset += len(res["ids"])
            if sets:  # the set covering the most moments answers searches
                active = max(sets, key=lambda e: (self.side.vec_count(e), e))
                self.side.set_state("active", active, db)
            self.side.set_state("built", "1", db)
        for idx in self._index.values():
            idx.close()
        self._index.clear()
        shutil.rmtree(self.index_dir / "time", ignore_errors=True)

    # --- embedder state -------------------------------------------------------------------------

    def _want(self, embedder: str) -> None:
        active, building = self.side.get_state("active"), self.side.get_state("building")
        if active == embedder:
            if building:
                with self.side.transaction() as db:
                    self.side.set_state("building", None, db)
                    self.side.drop_embedder(db, building)
                self._drop_set(building)
            return
        if active is None and self.side.text_count() == self.side.vec_count(embedder):
            self.side.set_state("active", embedder)
            return
        if building != embedder:
            with self.side.transaction() as db:
                self.side.set_state("building", embedder, db)
                if building:
                    self.side.drop_embedder(db, building)
            if building:
                self._drop_set(building)
            log.info("memory: building vectors of %s (active: %s)", embedder, active)

    def _maybe_activate(self, embedder: str) -> None:
        if self.side.get_state("building") != embedder:
            return
        if self.side.vec_count(embedder) < self.side.text_count():
            return
        old = self.side.get_state("active")
        with self.side.transaction() as db:
            self.side.set_state("active", embedder, db)
            self.side.set_state("building", None, db)
            if old:
                self.side.drop_embedder(db, old)
        if old:
            self._drop_set(old)
        log.warning("memory: %s now answers searches (every moment has its vectors)", embedder)

    def _state(self) -> EmbedderState:
        building = self.side.get_state("building")
        return EmbedderState(active=self.side.get_state("active"), building=building,
                             done=self.side.vec_count(building) if building else 0,
                             total=self.side.text_count())

    def embedder_state(self, wanted: str) -> EmbedderState:
        with self._lock:
            self._want(wanted)
            return self._state()

    def embedding_todo(self, embedder: str, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            return [(m.id, m.text or f"({m.sound})") for m in self.side.todo(embedder, limit)]

    def add_vectors(self, embedder: str, vectors: list[tuple[str, np.ndarray]]) -> EmbedderState:
        with self._lock:
            self._want(embedder)
            if self.side.get_state("building") == embedder and vectors:
                by_id = {m.id: m for m in self.side.get([i for i, _ in vectors])}
                items = [(by_id[i], v) for i, v in vectors if i in by_id]
                if items:
                    self._add_text(items, embedder)
            self._maybe_activate(embedder)
            return self._state()

    # --- writing ---------------------------------------------------------------------------------

    def add(self, items: list[tuple[Moment, np.ndarray]], embedder: str,
            captions: dict[str, np.ndarray] | None = None) -> None:
        if not items:
            return
        clips = [(m, v) for m, v in items if m.kind not in TEXT_KINDS]
        # A captioned clip: its visual vector in the clips' collection, its caption's text
        # vector in the embedder's, so that a question finds it by meaning.
        texts = ([(m, v) for m, v in items if m.kind in TEXT_KINDS]
                 + [(m, caption_vector(m, captions)) for m, _ in clips if m.text])
        with self._lock:
            if texts:
                self._want(embedder)
            self._begin([m.id for m, _ in items])
            if clips:
                self._clips.upsert(
                    ids=[m.id for m, _ in clips],
                    embeddings=np.stack([v for _, v in clips]).astype(np.float32),
                    metadatas=[_meta(m) for m, _ in clips],
                    documents=[m.text for m, _ in clips])
            if texts:  # the clips' records go in the same transaction that ends the write
                self._add_text(texts, embedder, begun=True,
                               also=[m for m, _ in clips if not m.text])
                self._maybe_activate(embedder)
            else:
                with self.side.transaction() as db:
                    self.side.upsert(db, [m for m, _ in clips])
                    self.side.set_state("pending", None, db)

    def _add_text(self, items: list[tuple[Moment, np.ndarray]], embedder: str, *,
                  begun: bool = False, also: list[Moment] | None = None) -> None:
        """Text moments with `embedder` vectors; `also`: clips of the same write, already in
        Chroma, whose records are committed with these."""
        ids = [m.id for m, _ in items]
        if not begun:
            self._begin(ids)
        vectors = np.stack([v for _, v in items]).astype(np.float32)
        # The index first: a new one is built from Chroma, which must not hold this batch yet.
        idx = self._open_index(embedder, dim=int(vectors.shape[1]))
        col = self._col(embedder, create=True)
        col.upsert(ids=ids, embeddings=vectors, metadatas=[_meta(m, embedder) for m, _ in items],
                   documents=[m.text for m, _ in items])
        old = {m.id: m for m in self.side.get(ids)}
        # A moment stored again (its text transcribed again): other sets' vectors are stale.
        for other in self._sets():
            if other == embedder:
                continue
            other_col = self._col(other)
            if other_col is not None:
                other_col.delete(ids=ids)
            if other in self._index:
                self._index[other].delete([(m.id, m.t0_s) for m in old.values()])
        if idx is not None:
            idx.delete([(m.id, m.t0_s) for m in old.values()])
            idx.add([(m.id, m.t0_s, v) for (m, _), v in zip(items, vectors, strict=True)],
                    stamp=embedder)
        with self.side.transaction() as db:
            self.side.drop_vectors(db, ids, except_embedder=embedder)
            self.side.upsert(db, [m for m, _ in items] + (also or []))
            self.side.set_vectors(db, embedder, ids)
            self.side.set_state(f"dim:{embedder}", str(vectors.shape[1]), db)
            self.side.set_state("pending", None, db)

    def delete(self, ids: list[str]) -> list[Moment]:
        with self._lock:
            gone = self._delete(ids)
            if gone:
                self.side.purge()
            return gone

    def _delete(self, ids: list[str]) -> list[Moment]:
        gone = self.side.get(ids)
        if not gone:
            return []
        ids = [m.id for m in gone]
        self._begin(ids)
        self._clips.delete(ids=ids)
        for embedder in self._sets():  # the only vector sets left after the open
            col = self._col(embedder)
            if col is not None:
                col.delete(ids=ids)
        for idx in self._index.values():
            idx.delete([(m.id, m.t0_s) for m in gone])
        with self.side.transaction() as db:
            self.side.delete(db, ids)
            self.side.set_state("pending", None, db)
        return gone

    def delete_before(self, t_s: float) -> list[Moment]:
        with self._lock:
            ids = self.side.ids_before(t_s)
            gone: list[Moment] = []
            for i in range(0, len(ids), 500):
                gone += self._delete(ids[i:i + 500])
            if gone:
                self.side.purge()
            return gone

    # --- reading -------------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int, t0_s: float | None = None,
               t1_s: float | None = None, embedder: str = "") -> list[Hit]:
        with self._lock:
            col = self._col(embedder)
            idx = self._index.get(embedder)
            n = len(idx) if idx is not None else self.side.vec_count(embedder)
            if n == 0 or col is None or k <= 0:
                return []
            vector = np.asarray(vector, np.float32)
            scoped = t0_s is not None or t1_s is not None
            pairs: list[tuple[str, float]] | None = None
            if idx is not None and idx.rows_between(t0_s, t1_s) <= EXACT_ROWS:
                pairs = idx.search(vector, k, t0_s, t1_s)
            else:
                want = min(n, k * OVERSAMPLE if scoped else k)
                res: Any = col.query(query_embeddings=[vector.tolist()], n_results=want,
                                     include=["distances"])
                pairs = [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0],
                                                              res["distances"][0], strict=True)]
            by_id = {m.id: m for m in self.side.get([i for i, _ in pairs])}
            lo, hi = (-np.inf if t0_s is None else t0_s), (np.inf if t1_s is None else t1_s)
            hits = [Hit(by_id[i], s) for i, s in pairs if i in by_id
                    and lo <= by_id[i].t0_s < hi]
            if scoped and len(hits) < k and idx is not None and len(hits) < len(pairs) + 1:
                # a wide range the HNSW candidates did not fill: exact, slower but complete
                exact = idx.search(vector, k, t0_s, t1_s)
                by_id = {m.id: m for m in self.side.get([i for i, _ in exact])}
                hits = [Hit(by_id[i], s) for i, s in exact if i in by_id]
            hits.sort(key=lambda h: (-h.similarity, -h.moment.t0_s, h.moment.id))
            return hits[:k]

    def keyword_search(self, query: str, k: int, t0_s: float | None = None,
                       t1_s: float | None = None) -> list[Hit]:
        with self._lock:
            return [Hit(m, s) for m, s in self.side.keyword(query, k, t0_s, t1_s)]

    def moments_between(self, t0_s: float, t1_s: float,
                        kinds: tuple[Kind, ...] = LIVE_KINDS) -> list[Moment]:
        with self._lock:
            return self.side.between(t0_s, t1_s, kinds)

    def moments_on_day(self, day: str) -> list[Moment]:
        t0, t1 = day_bounds(day)
        return self.moments_between(t0, t1)

    def get(self, ids: list[str]) -> list[Moment]:
        with self._lock:
            return self.side.get(ids)

    def count(self) -> dict[str, int]:
        with self._lock:
            return self.side.counts()

    def span(self) -> tuple[float, float] | None:
        with self._lock:
            return self.side.span()

    def close(self) -> None:
        with self._lock:
            for idx in self._index.values():
                idx.close()
            self._index.clear()
            self.side.close()
