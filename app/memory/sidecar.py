"""The store's SQLite side file: every moment's record by time, the full-text index, which
embedders' vectors each text moment has, and the store's state.

Chroma stays the durable truth (vectors, documents, metadata); this file is derived from it and
rebuilt from it when missing or after a write was interrupted (`dirty`). It answers what Chroma's
metadata filters answer slowly at scale (shared/notes/MEMORY_SCALE.md): a day's moments by the
`t0` index, keyword search by FTS5's BM25, which moments still need vectors from a new embedder.

Counts (per kind, per embedder) are kept by triggers in `tally`: a question asks for them, and
counting a million rows each time would cost more than the search.

`secure_delete` is on and the full-text index is optimised after deletions, so a deleted moment's
text does not linger in free pages or old index segments.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.memory.base import LIVE_KINDS, TEXT_KINDS, Kind, Moment

_SCHEMA = """
CREATE TABLE IF NOT EXISTS moment(
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL,
    text TEXT NOT NULL DEFAULT '', sound TEXT NOT NULL DEFAULT '',
    key_frame TEXT NOT NULL DEFAULT '', n_frames INTEGER NOT NULL DEFAULT 0,
    question TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS moment_t0 ON moment(t0);
CREATE INDEX IF NOT EXISTS moment_kind_t0 ON moment(kind, t0);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(text, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS vec(embedder TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY(embedder, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tally(name TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS moment_added AFTER INSERT ON moment BEGIN
    INSERT INTO tally(name, n) VALUES ('kind:' || new.kind, 1)
        ON CONFLICT(name) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS moment_removed AFTER DELETE ON moment BEGIN
    UPDATE tally SET n = n - 1 WHERE name = 'kind:' || old.kind; END;
CREATE TRIGGER IF NOT EXISTS moment_rekinded AFTER UPDATE OF kind ON moment
    WHEN old.kind != new.kind BEGIN
    UPDATE tally SET n = n - 1 WHERE name = 'kind:' || old.kind;
    INSERT INTO tally(name, n) VALUES ('kind:' || new.kind, 1)
        ON CONFLICT(name) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS caption_added AFTER INSERT ON moment
    WHEN new.kind = 'clip' AND new.text != '' BEGIN
    INSERT INTO tally(name, n) VALUES ('captioned', 1)
        ON CONFLICT(name) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS caption_removed AFTER DELETE ON moment
    WHEN old.kind = 'clip' AND old.text != '' BEGIN
    UPDATE tally SET n = n - 1 WHERE name = 'captioned'; END;
CREATE TRIGGER IF NOT EXISTS caption_changed AFTER UPDATE OF kind, text ON moment
    WHEN (old.kind = 'clip' AND old.text != '') != (new.kind = 'clip' AND new.text != '') BEGIN
    INSERT INTO tally(name, n)
        VALUES ('captioned', CASE WHEN new.kind = 'clip' AND new.text != '' THEN 1 ELSE -1 END)
        ON CONFLICT(name) DO UPDATE SET n = n + excluded.n; END;
CREATE TRIGGER IF NOT EXISTS vec_added AFTER INSERT ON vec BEGIN
    INSERT INTO tally(name, n) VALUES ('vec:' || new.embedder, 1)
        ON CONFLICT(name) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS vec_removed AFTER DELETE ON vec BEGIN
    UPDATE tally SET n = n - 1 WHERE name = 'vec:' || old.embedder; END;
"""
_COLUMNS = "id, kind, t0, t1, text, sound, key_frame, n_frames, question"
# A word in more moments than this is left out of a keyword search: BM25 gives it little weight,
# and ranking every moment that has it is what costs (at a million moments, a word in a tenth of
# them took 270 ms; with this cap the keyword search's p95 is ≈20 ms). The vector search still
# covers it. Counting stops at the cap, so the check itself costs ≈1 ms.
COMMON_DOCS = 10_000
_TERM = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# Words a question is made of that say nothing about what to find (BM25 weighs rare words up,
# but "what did I" would still match every moment with "I" in it).
_QUESTION_WORDS = frozenset(re.split(r"\s+", """
a an the and or but of to in on at by for with from about as is am are was were be been do does
did have has had i me my we us our you your he him his she her it its they them their this that
these those what which who whom whose when where why how there here so if then than not no any
some all just can could would should will shall may might must tell remind say said again please
daybook hey ok okay
""".strip()))


def _moment(row: tuple) -> Moment:
    id_, kind, t0, t1, text, sound, key_frame, n_frames, question = row
    return Moment(id=id_, kind=kind, t0_s=t0, t1_s=t1, text=text, sound=sound,
                  key_frame=key_frame or None, n_frames=n_frames, question=question)


def match_terms(text: str) -> list[str]:
    """The content words of `text`, each quoted for FTS5 (no FTS syntax leaks through)."""
    terms: list[str] = []
    for word in _TERM.findall(text.lower()):
        word = word.split("'")[0]
        if len(word) > 1 and word not in _QUESTION_WORDS and f'"{word}"' not in terms:
            terms.append(f'"{word}"')
    return terms


def match_query(text: str) -> str:
    """An FTS5 query for `text`: its content words, any of them."""
    return " OR ".join(match_terms(text))


class Sidecar:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA secure_delete=ON")
        self.db.executescript(_SCHEMA)
        if self.get_state("tally:captioned") is None:  # a side file from before captions counted
            with self.transaction() as db:
                db.execute("INSERT OR REPLACE INTO tally(name, n) SELECT 'captioned', count(*) "
                           "FROM moment WHERE kind = 'clip' AND text != ''")
                self.set_state("tally:captioned", "1", db)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- state -------------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str | None, db: sqlite3.Connection | None = None) -> None:
        db = db or self.db
        if value is None:
            db.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            db.execute("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", (key, value))

    # --- writing -----------------------------------------------------------------------------

    def upsert(self, db: sqlite3.Connection, moments: Iterable[Moment]) -> None:
        for m in moments:
            old = db.execute("SELECT rowid FROM moment WHERE id = ?", (m.id,)).fetchone()
            values = (m.id, m.kind, m.t0_s, m.t1_s, m.text, m.sound, m.key_frame or "",
                      m.n_frames, m.question)
            if old:
                db.execute("UPDATE moment SET kind=?, t0=?, t1=?, text=?, sound=?, key_frame=?, "
                           "n_frames=?, question=? WHERE rowid=?", (*values[1:], old[0]))
                db.execute("DELETE FROM fts WHERE rowid = ?", (old[0],))
                rowid = old[0]
            else:
                rowid = db.execute(f"INSERT INTO moment({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                                   values).lastrowid
            if m.text:
                db.execute("INSERT INTO fts(rowid, text) VALUES (?, ?)", (rowid, m.text))

    def set_vectors(self, db: sqlite3.Connection, embedder: str, ids: Iterable[str]) -> None:
        db.executemany("INSERT OR IGNORE INTO vec(embedder, id) VALUES (?, ?)",
                       ((embedder, i) for i in ids))

    def drop_vectors(self, db: sqlite3.Connection, ids: list[str], *,
                     except_embedder: str | None = None) -> list[tuple[str, str]]:
        """Forget which embedders have vectors for these ids; returns the (embedder, id) pairs."""
        gone: list[tuple[str, str]] = []
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT embedder, id FROM vec WHERE id IN ({marks})",
                              chunk).fetchall()
            gone += [(e, i) for e, i in rows if e != except_embedder]
        db.executemany("DELETE FROM vec WHERE embedder = ? AND id = ?", gone)
        return gone

    def drop_embedder(self, db: sqlite3.Connection, embedder: str) -> None:
        db.execute("DELETE FROM vec WHERE embedder = ?", (embedder,))

    def delete(self, db: sqlite3.Connection, ids: list[str]) -> list[Moment]:
        gone = self.get(ids, db)
        for chunk in _chunks([m.id for m in gone], 500):
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM fts WHERE rowid IN (SELECT rowid FROM moment "
                       f"WHERE id IN ({marks}))", chunk)
            db.execute(f"DELETE FROM moment WHERE id IN ({marks})", chunk)
            db.execute(f"DELETE FROM vec WHERE id IN ({marks})", chunk)
        return gone

    def purge(self) -> None:
        """After deletions: merge the full-text segments so deleted words are really gone."""
        self.db.execute("INSERT INTO fts(fts) VALUES ('optimize')")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- reading -----------------------------------------------------------------------------

    def get(self, ids: list[str], db: sqlite3.Connection | None = None) -> list[Moment]:
        db = db or self.db
        out: list[Moment] = []
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            out += [_moment(r) for r in db.execute(
                f"SELECT {_COLUMNS} FROM moment WHERE id IN ({marks})", chunk)]
        order = {id_: i for i, id_ in enumerate(ids)}
        return sorted(out, key=lambda m: order[m.id])

    def between(self, t0_s: float | None, t1_s: float | None,
                kinds: tuple[Kind, ...]) -> list[Moment]:
        marks = ",".join("?" * len(kinds))
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM moment WHERE t0 >= ? AND t0 < ? AND kind IN ({marks}) "
            "ORDER BY t0, kind, id",
            (-1e300 if t0_s is None else t0_s, 1e300 if t1_s is None else t1_s, *kinds))
        return [_moment(r) for r in rows]

    def span(self) -> tuple[float, float] | None:
        """The first and last start time of what perception stored (summaries aside)."""
        marks = ",".join("?" * len(LIVE_KINDS))
        row = self.db.execute(f"SELECT min(t0), max(t0) FROM moment WHERE kind IN ({marks})",
                              LIVE_KINDS).fetchone()
        return None if row is None or row[0] is None else (float(row[0]), float(row[1]))

    def ids_before(self, t_s: float) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM moment WHERE t0 < ?", (t_s,))]

    def keyword(self, query: str, k: int, t0_s: float | None,
                t1_s: float | None) -> list[tuple[Moment, float]]:
        """BM25 over the moments' texts (FTS5 returns lower-is-better: negated here)."""
        terms = [t for t in match_terms(query) if self._docs_with(t) <= COMMON_DOCS]
        if not terms:
            return []
        expr = " OR ".join(terms)
        rows = self.db.execute(
            f"SELECT {', '.join('m.' + c.strip() for c in _COLUMNS.split(','))}, bm25(fts) AS s "
            "FROM fts JOIN moment m ON m.rowid = fts.rowid "
            "WHERE fts MATCH ? AND m.t0 >= ? AND m.t0 < ? ORDER BY s, m.t0 DESC, m.id LIMIT ?",
            (expr, -1e300 if t0_s is None else t0_s, 1e300 if t1_s is None else t1_s, k))
        return [(_moment(r[:-1]), -float(r[-1])) for r in rows]

    def _tally(self, name: str) -> int:
        row = self.db.execute("SELECT n FROM tally WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _docs_with(self, term: str) -> int:
        """How many moments hold `term`, counted up to COMMON_DOCS + 1."""
        return int(self.db.execute(
            "SELECT count(*) FROM (SELECT rowid FROM fts WHERE fts MATCH ? LIMIT ?)",
            (term, COMMON_DOCS + 1)).fetchone()[0])

    def counts(self) -> dict[str, int]:
        return {kind: self._tally(f"kind:{kind}") for kind in ("utterance", "clip", "summary")}

    def text_count(self) -> int:
        """Moments with a text vector: utterances, summaries and captioned clips."""
        return sum(self._tally(f"kind:{kind}") for kind in TEXT_KINDS) + self._tally("captioned")

    def vec_count(self, embedder: str) -> int:
        return self._tally(f"vec:{embedder}")

    def vec_ids(self, embedder: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM vec WHERE embedder = ?",
                                              (embedder,))}

    def embedders(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT embedder FROM vec")]

    def todo(self, embedder: str, limit: int) -> list[Moment]:
        marks = ",".join("?" * len(TEXT_KINDS))
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM moment m WHERE (kind IN ({marks}) "
            "OR (kind = 'clip' AND text != '')) AND NOT EXISTS "
            "(SELECT 1 FROM vec v WHERE v.embedder = ? AND v.id = m.id) ORDER BY t0, id LIMIT ?",
            (*TEXT_KINDS, embedder, limit))
        return [_moment(r) for r in rows]

    def all_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM moment")}


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
