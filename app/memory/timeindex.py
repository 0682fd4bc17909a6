"""A time-sorted, memory-mapped vector index: exact search over a time range.

Why: Chroma's numeric range filters scan about half the metadata table whatever the range
(4-5 s at 1M rows, /work/shared/notes/MEMORY_SCALE.md). With the vectors kept sorted by t0, a
range is two binary searches and a matrix product over exactly that range's rows.

The index is derived data (Chroma is the truth) for one process: no locking between processes,
one lock between threads. Whatever is wrong with it on open (missing, truncated, unreadable,
interrupted in-place write) sets `stale` to the reason and the index starts empty; the caller
then calls `rebuild`.

Layout of `folder` (little-endian raw files, mapped with numpy):

    CURRENT                       name of the live generation: the commit point of a rebuild or
                                  merge (written to a temporary file, fsynced, os.replace)
    g00000007/header.json         format, dim, n_sorted, n_total, stamp, stale, redo
    g00000007/redo.f32            vectors of an in-place write in progress (see below)
    g00000007/vectors.f32         rows [0, n_sorted): sorted by t0   (N x dim float32)
              t0.f64 ids                                            (N float64, N x 64 bytes)
    g00000007/tail.vectors.f32    rows [n_sorted, n_total): added out of time order; scanned
              tail.t0.f64 tail.ids  whole by search, merged into the sorted part when it grows

Every change is committed by one atomic header write, after the data it needs is flushed.
Files are longer than their rows (they grow in chunks); rows past the header's counts are
ignored, so a kill after writing appended rows and before the header leaves the old index.
In-place writes (an upsert of an existing row, a delete) are first described in the header's
`redo` (rows to blank, rows to overwrite, whose new vectors are in redo.f32), then done, then
the header is written again without it; an open that finds a `redo` does it again (it is
idempotent), so a kill at any point leaves the old state or the new one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

FORMAT = 1
ID_BYTES = 64
MIN_CAPACITY_ROWS = 1024
GROW_MAX_ROWS = 65_536  # files double until then, then grow by this many rows
SEARCH_CHUNK_ROWS = 65_536
COPY_CHUNK_BYTES = 32 << 20  # rows gathered at a time by merge and rebuild

CURRENT = "CURRENT"
HEADER = "header.json"
VECTORS, T0, IDS = "vectors.f32", "t0.f64", "ids"
TAIL = "tail."
UNSORTED = "unsorted."  # rebuild's input, in the generation being written
REDO = "redo.f32"
_REDO_KEYS = ("sorted_write", "tail_write", "sorted_blank", "tail_blank")
_GEN_RE = re.compile(r"g\d{8}")

Row = tuple[str, float, np.ndarray]


class _Damaged(Exception):
    """The files on disk cannot be trusted; the message says why."""


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=_private) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _encode_id(id_: str) -> bytes:
    try:
        b = id_.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise ValueError(f"time index ids must be ASCII strings: {id_!r}") from None
    if not b or len(b) > ID_BYTES or b"\0" in b:
        raise ValueError(f"time index ids must be 1-{ID_BYTES} bytes without NUL: {id_!r}")
    return b


class _Segment:
    """Three parallel row files (vectors, t0, ids) of one generation, mapped read-write.
    `capacity` rows exist in the files; which of them hold data is the header's business."""

    def __init__(self, folder: Path, prefix: str, dim: int) -> None:
        self.dim = dim
        self.paths = [folder / f"{prefix}{name}" for name in (VECTORS, T0, IDS)]
        self.row_bytes = (4 * dim, 8, ID_BYTES)
        self.capacity = 0
        self.vec: np.ndarray = np.zeros((0, dim), "<f4")
        self.t0: np.ndarray = np.zeros(0, "<f8")
        self.ids: np.ndarray = np.zeros(0, f"S{ID_BYTES}")

    def create(self, capacity: int) -> None:
        for path, row in zip(self.paths, self.row_bytes, strict=True):
            with open(path, "wb", opener=_private) as f:
                f.truncate(capacity * row)
                os.fsync(f.fileno())

    def map(self, n_rows: int) -> None:
        """Map the files; `n_rows` must fit in every one of them."""
        caps = []
        for path, row in zip(self.paths, self.row_bytes, strict=True):
            size = path.stat().st_size
            if size < n_rows * row:
                raise _Damaged(f"{path.name} is {size} bytes, shorter than the {n_rows} rows "
                               "the header counts")
            caps.append(size // row)
        cap = min(caps)
        if cap == 0:
            raise _Damaged(f"{self.paths[0].name} is empty")
        self.capacity = cap
        self.vec = np.memmap(self.paths[0], "<f4", "r+", shape=(cap, self.dim))
        self.t0 = np.memmap(self.paths[1], "<f8", "r+", shape=(cap,))
        self.ids = np.memmap(self.paths[2], f"S{ID_BYTES}", "r+", shape=(cap,))

    def unmap(self) -> None:
        # Dropping the last reference closes the mapping (Windows cannot resize or delete a
        # mapped file); nothing outside this class keeps a view.
        self.vec = np.zeros((0, self.dim), "<f4")
        self.t0 = np.zeros(0, "<f8")
        self.ids = np.zeros(0, f"S{ID_BYTES}")
        self.capacity = 0

    def ensure(self, n_rows: int) -> None:
        """Room for `n_rows` rows; grows the files in chunks so appends rarely remap."""
        if n_rows <= self.capacity:
            return
        cap = self.capacity
        new_cap = max(n_rows, cap + max(MIN_CAPACITY_ROWS, min(cap, GROW_MAX_ROWS)))
        self.unmap()
        for path, row in zip(self.paths, self.row_bytes, strict=True):
            os.truncate(path, new_cap * row)
        self.map(0)

    def flush(self) -> None:
        for m in (self.vec, self.t0, self.ids):
            if isinstance(m, np.memmap):
                m.flush()

    def dead(self, n_rows: int) -> np.ndarray:
        """Rows whose id was blanked by a delete, as a bool array of `capacity` entries."""
        out = np.zeros(self.capacity, bool)
        first_bytes = self.ids.view(np.uint8).reshape(self.capacity, ID_BYTES)[:, 0]
        for a in range(0, n_rows, SEARCH_CHUNK_ROWS):
            b = min(a + SEARCH_CHUNK_ROWS, n_rows)
            out[a:b] = first_bytes[a:b] == 0
        return out


def _dot(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """rows @ q on the calling thread. numpy's OpenBLAS runs a float32 matrix-vector product
    above ~1,200 x 384 on its whole thread pool: on 2 busy cores (measured) that spent 6x the CPU
    for no gain, as the product is bound by memory. einsum's own loop is single-threaded and was
    as fast (25 ms for 65,536 x 384 against 54 ms)."""
    return np.einsum("ij,j->i", rows, q)


def _candidates(scores: np.ndarray, k: int, slack: float) -> np.ndarray:
    """Positions in `scores` that can be in the top k once rescored exactly: every row within
    `slack` of the k-th best (the float32 product is off by less than slack / 2)."""
    m = len(scores)
    if m <= k:
        return np.nonzero(scores > -np.inf)[0]
    kth = np.partition(scores, m - k)[m - k]
    if kth == -np.inf:
        return np.nonzero(scores > -np.inf)[0]
    return np.nonzero(scores >= kth - slack)[0]


class TimeIndex:
    """Vectors of one embedder sorted by t0, memory-mapped from `folder`: exact cosine search over
    a time range (vectors are L2-normalised, so a dot product).

    Rows are (id, t0_s, vector); a row is known by its (id, t0_s) pair, exactly as added.
    Thread-safe (one lock); one process at a time."""

    def __init__(self, folder: Path, dim: int, *, merge_min_rows: int = 4096,
                 merge_fraction: float = 0.01) -> None:
        """Open the index in `folder`, or create it (mode 0o700). Never raises on damaged files:
        sets `stale` to the reason and starts empty, for the caller to `rebuild`. A new index is
        stale too ("no index yet"). The out-of-order tail is merged into the sorted part when it
        holds more than max(merge_min_rows, merge_fraction x rows)."""
        if dim <= 0:
            raise ValueError(f"dim must be positive, not {dim}")
        self.folder = Path(folder)
        self.dim = dim
        self.merge_min_rows = merge_min_rows
        self.merge_fraction = merge_fraction
        self.stale: str | None = None
        self.stamp = ""
        self._lock = threading.RLock()
        self._closed = False
        self._gen = ""
        self._sorted = _Segment(self.folder, "", dim)
        self._tail = _Segment(self.folder, TAIL, dim)
        self._n_sorted = 0
        self._n_tail = 0
        self._dead = np.zeros(0, bool)  # per sorted row: blanked by delete()
        self._tail_dead = np.zeros(0, bool)
        self._n_dead = 0
        self._n_tail_dead = 0
        self._tail_rows: dict[tuple[bytes, float], int] = {}  # (id, t0) -> tail row
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._open_current()
        except Exception as exc:  # whatever is wrong with derived data, it is rebuilt
            reason = str(exc) if isinstance(exc, _Damaged) else f"{type(exc).__name__}: {exc}"
            self._close_segments()
            self._start_empty(reason)

    # --- public API ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live rows (deleted ones not counted)."""
        return self._n_sorted + self._n_tail - self._n_dead - self._n_tail_dead

    def __enter__(self) -> TimeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, rows: list[Row], stamp: str) -> None:
        """Add rows (id, t0_s, float32 vector of `dim`), or overwrite in place a row with the same
        (id, t0_s). A moment whose t0 changed is a `delete` of the old pair, then an add. Rows in
        time order extend the sorted part; older ones go to the tail. `stamp` is stored with
        the rows, in the same header write."""
        with self._lock:
            self._check_open()
            ids, t0, vecs = self._parse(rows)
            if len(ids) == 0:
                if stamp != self.stamp:
                    self._commit(stamp=stamp)
                return
            keep: dict[tuple[bytes, float], int] = {}
            for i, key in enumerate(zip(ids.tolist(), t0.tolist(), strict=True)):
                keep[key] = i  # the last of duplicates in one batch wins
            if len(keep) < len(ids):
                sel = np.fromiter(sorted(keep.values()), np.int64)
                ids, t0, vecs = ids[sel], t0[sel], vecs[sel]
            s_pos, t_pos = self._find(ids, t0)
            in_s, in_t = s_pos >= 0, t_pos >= 0
            new = np.nonzero(~(in_s | in_t))[0]
            new = new[np.argsort(t0[new], kind="stable")]
            ns, nt = self._n_sorted, self._n_tail
            last = float(self._sorted.t0[ns - 1]) if ns else -np.inf
            split = int(np.searchsorted(t0[new], last, "left"))
            to_tail, to_sorted = new[:split], new[split:]
            if len(to_sorted):
                self._append(self._sorted, ns, ids[to_sorted], t0[to_sorted], vecs[to_sorted])
                self._dead = _fit(self._dead, self._sorted.capacity)
            if len(to_tail):
                self._append(self._tail, nt, ids[to_tail], t0[to_tail], vecs[to_tail])
                self._tail_dead = _fit(self._tail_dead, self._tail.capacity)
            if len(to_sorted):
                self._sorted.flush()
            if len(to_tail):
                self._tail.flush()
            redo = None
            if in_s.any() or in_t.any():
                redo = {"sorted_write": s_pos[in_s].tolist(), "tail_write": t_pos[in_t].tolist()}
                self._write_redo_vectors(np.concatenate([vecs[in_s], vecs[in_t]]))
            self._commit(n_sorted=ns + len(to_sorted), n_total=ns + nt + len(new), stamp=stamp,
                         redo=redo)
            if redo is not None:
                self._redo(redo)
            self._dead[ns:self._n_sorted] = False
            self._tail_dead[nt:self._n_tail] = False
            id_list, t0_list = ids.tolist(), t0.tolist()
            for j, i in enumerate(to_tail.tolist()):
                self._tail_rows[(id_list[i], t0_list[i])] = nt + j
            if self._needs_merge():
                self.merge()

    def delete(self, rows: list[tuple[str, float]], stamp: str | None = None) -> int:
        """Remove rows by (id, t0_s): their vector is overwritten with zeros and their id blanked
        in the files (gone from disk, not hidden; the t0 stays until the next merge or rebuild
        compacts the files). Returns how many were found. `stamp`: stored with the change
        (default: unchanged)."""
        with self._lock:
            self._check_open()
            stamp = self.stamp if stamp is None else stamp
            if not rows:
                if stamp != self.stamp:
                    self._commit(stamp=stamp)
                return 0
            ids = np.array([_encode_id(i) for i, _ in rows], f"S{ID_BYTES}")
            t0 = np.array([float(t) for _, t in rows], np.float64)
            s_pos, t_pos = self._find(ids, t0)
            s_pos, t_pos = np.unique(s_pos[s_pos >= 0]), np.unique(t_pos[t_pos >= 0])
            found = len(s_pos) + len(t_pos)
            if not found:
                if stamp != self.stamp:
                    self._commit(stamp=stamp)
                return 0
            redo = {"sorted_blank": s_pos.tolist(), "tail_blank": t_pos.tolist()}
            self._commit(stamp=stamp, redo=redo)
            self._redo(redo)
            self._dead[s_pos] = True
            self._n_dead += len(s_pos)
            for p in t_pos.tolist():
                self._tail_dead[p] = True
            self._n_tail_dead += len(t_pos)
            gone = set(t_pos.tolist())
            self._tail_rows = {k: v for k, v in self._tail_rows.items() if v not in gone}
            if self._needs_merge():
                self.merge()
            return found

    def search(self, vector: np.ndarray, k: int, t0_s: float | None = None,
               t1_s: float | None = None) -> list[tuple[str, float]]:
        """The k live rows with t0 in [t0_s, t1_s) (None: unbounded) most similar to `vector`,
        as (id, dot product), highest first; ties: newer t0 first, then id ascending. Exact:
        float32 products pick candidates, which are rescored in float64."""
        q = np.asarray(vector, np.float32).reshape(-1)
        if q.shape != (self.dim,):
            raise ValueError(f"query has {q.size} dimensions, the index {self.dim}")
        if not np.isfinite(q).all():
            raise ValueError("the query vector must be finite")
        with self._lock:
            self._check_open()
            if k <= 0:
                return []
            # The float32 dot product of a unit row and q is off by at most dim x 2^-24 x |q|
            # (rows that are not unit vectors scale this: near-ties may then come out of order).
            slack = 4.0 * self.dim * 2.0**-24 * max(1.0, float(np.linalg.norm(q)))
            lo, hi = self._sorted_range(t0_s, t1_s)
            s_cand: list[np.ndarray] = []
            for a in range(lo, hi, SEARCH_CHUNK_ROWS):
                b = min(a + SEARCH_CHUNK_ROWS, hi)
                scores = _dot(self._sorted.vec[a:b], q)
                scores[self._dead[a:b]] = -np.inf
                s_cand.append(a + _candidates(scores, k, slack))
            t_cand = self._tail_between(t0_s, t1_s)
            if len(t_cand):
                t_cand = t_cand[_candidates(_dot(self._tail.vec[t_cand], q), k, slack)]
            q64 = q.astype(np.float64)
            found: list[tuple[float, float, bytes]] = []
            for seg, pos in ((self._sorted, np.concatenate([np.zeros(0, np.int64), *s_cand])),
                             (self._tail, t_cand)):
                if not len(pos):
                    continue
                # float32 x float32 is exact in float64, and each row is summed the same way
                # wherever it lies, so equal vectors score equal and ties fall to t0 and id.
                exact = np.sum(np.asarray(seg.vec[pos], np.float64) * q64, axis=1)
                found += zip(exact.tolist(), seg.t0[pos].tolist(), seg.ids[pos].tolist(),
                             strict=True)
            found.sort(key=lambda r: (-r[0], -r[1], r[2]))
            return [(i.decode("ascii"), s) for s, _, i in found[:k]]

    def rows_between(self, t0_s: float | None = None, t1_s: float | None = None) -> int:
        """Live rows with t0 in [t0_s, t1_s): two binary searches and a count over the tail."""
        with self._lock:
            self._check_open()
            lo, hi = self._sorted_range(t0_s, t1_s)
            live_sorted = hi - lo - int(np.count_nonzero(self._dead[lo:hi]))
            return live_sorted + len(self._tail_between(t0_s, t1_s))

    def iter_rows(self, batch_rows: int = 65_536) -> Iterator[list[Row]]:
        """Every live row, in batches: the sorted part in time order, then the tail. The vectors
        are copies. Do not write to the index while iterating."""
        for seg, n, dead in ((self._sorted, self._n_sorted, self._dead),
                             (self._tail, self._n_tail, self._tail_dead)):
            for a in range(0, n, batch_rows):
                b = min(a + batch_rows, n)
                with self._lock:
                    self._check_open()
                    live = np.nonzero(~dead[a:b])[0] + a
                    vecs = np.array(seg.vec[live])
                    batch = [(i.decode("ascii"), t, v) for i, t, v in
                             zip(seg.ids[live].tolist(), seg.t0[live].tolist(), vecs, strict=True)]
                if batch:
                    yield batch

    def merge(self) -> None:
        """Rewrite the index with the tail merged into the sorted part and deleted rows dropped,
        in a new generation (the old one stays current until the new one is complete)."""
        with self._lock:
            self._check_open()
            if not self._n_tail and not self._n_dead:
                return
            gen = self._new_generation()
            try:
                n = self._write_sorted(gen, self._merged_chunks())
                self._finish_generation(gen, n, self.stamp, self.stale)
            except BaseException:
                shutil.rmtree(gen, ignore_errors=True)
                raise
            self._switch(gen.name)

    def rebuild(self, batches: Iterable[list[Row]], stamp: str) -> None:
        """Replace the whole index by these rows (any order, unique by (id, t0)): written unsorted
        to temporary files of a new generation, sorted by t0 through an argsort of t0 alone,
        gathered in chunks, fsynced, then made current with one atomic rename. A kill at any
        point leaves the old index or the new one. Clears `stale`."""
        with self._lock:
            self._check_open()
            gen = self._new_generation()
            try:
                n = self._write_unsorted(gen, batches)
                n = self._write_sorted(gen, self._sorted_chunks(gen, n))
                for name in (VECTORS, T0, IDS):
                    (gen / f"{UNSORTED}{name}").unlink()
                self._finish_generation(gen, n, stamp, None)
            except BaseException:
                shutil.rmtree(gen, ignore_errors=True)
                raise
            self._switch(gen.name)

    def close(self) -> None:
        with self._lock:
            self._close_segments()
            self._closed = True

    # --- opening and committing ----------------------------------------------------------------

    def _open_current(self) -> None:
        current = self.folder / CURRENT
        if not current.exists():
            raise _Damaged("no index yet" if not self._generations() else f"{CURRENT} is missing")
        name = current.read_text("ascii").strip()
        if not _GEN_RE.fullmatch(name):
            raise _Damaged(f"{CURRENT} names {name[:40]!r}, not a generation")
        gen = self.folder / name
        try:
            header = json.loads((gen / HEADER).read_text("utf-8"))
        except FileNotFoundError:
            raise _Damaged(f"{name}/{HEADER} is missing") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Damaged(f"{name}/{HEADER} is unreadable: {exc}") from None
        if not isinstance(header, dict):
            raise _Damaged(f"{name}/{HEADER} is not an object")
        if header.get("format") != FORMAT:
            raise _Damaged(f"format {header.get('format')!r}, this code reads {FORMAT}")
        if header.get("dim") != self.dim:
            raise _Damaged(f"the index has {header.get('dim')!r} dimensions, not {self.dim}")
        if header.get("id_bytes") != ID_BYTES:
            raise _Damaged(f"ids of {header.get('id_bytes')!r} bytes, not {ID_BYTES}")
        ns, n = header.get("n_sorted"), header.get("n_total")
        if not (isinstance(ns, int) and isinstance(n, int) and 0 <= ns <= n):
            raise _Damaged(f"bad row counts n_sorted={ns!r} n_total={n!r}")
        stamp, stale = header.get("stamp"), header.get("stale")
        if not isinstance(stamp, str) or not (stale is None or isinstance(stale, str)):
            raise _Damaged("bad stamp or stale in the header")
        redo = header.get("redo")
        if redo is not None and not _valid_redo(redo, ns, n - ns):
            raise _Damaged("the header's redo record is malformed")
        self._sorted = _Segment(gen, "", self.dim)
        self._tail = _Segment(gen, TAIL, self.dim)
        self._sorted.map(ns)
        self._tail.map(n - ns)
        self._gen = name
        if redo is not None:  # a kill interrupted an in-place write: finish it
            self.stamp, self.stale = stamp, stale
            self._n_sorted, self._n_tail = ns, n - ns
            self._redo(redo)
        t = np.asarray(self._sorted.t0[:ns])
        if not np.isfinite(t).all() or (ns > 1 and not (np.diff(t) >= 0).all()):
            raise _Damaged("the sorted rows' t0 are not in order")
        tt = np.asarray(self._tail.t0[:n - ns])
        if not np.isfinite(tt).all():
            raise _Damaged("a tail row's t0 is not a number")
        self.stamp, self.stale = stamp, stale
        self._n_sorted, self._n_tail = ns, n - ns
        self._dead = self._sorted.dead(ns)
        self._tail_dead = self._tail.dead(n - ns)
        self._n_dead = int(np.count_nonzero(self._dead[:ns]))
        self._n_tail_dead = int(np.count_nonzero(self._tail_dead[:n - ns]))
        self._tail_rows = {
            (i, t0): p for p, (i, t0) in enumerate(zip(
                self._tail.ids[:n - ns].tolist(), tt.tolist(), strict=True)) if i}
        self._remove_leftovers()

    def _start_empty(self, reason: str) -> None:
        """A fresh empty generation that stays stale (also after a reopen) until a rebuild."""
        self.stale = reason
        gen = self._new_generation()
        self._write_sorted(gen, iter(()))
        self._finish_generation(gen, 0, "", reason)
        self._switch(gen.name)

    def _switch(self, name: str) -> None:
        """Make generation `name` current (the commit point), open it, remove the old ones."""
        self._close_segments()
        try:
            _write_atomic(self.folder / CURRENT, name.encode("ascii"))
        except BaseException:
            self._open_current()
            raise
        self._open_current()

    def _commit(self, *, n_sorted: int | None = None, n_total: int | None = None,
                stamp: str | None = None, redo: dict[str, list[int]] | None = None) -> None:
        """Write the header (atomically; the data it describes is already flushed), then adopt
        its counts and stamp. With `redo`, the in-place write it describes is committed too:
        call `_redo` next."""
        ns = self._n_sorted if n_sorted is None else n_sorted
        n = self._n_sorted + self._n_tail if n_total is None else n_total
        stamp = self.stamp if stamp is None else stamp
        self._write_header(self.folder / self._gen, ns, n, stamp, self.stale, redo)
        self._n_sorted, self._n_tail, self.stamp = ns, n - ns, stamp

    def _write_header(self, gen: Path, n_sorted: int, n_total: int, stamp: str,
                      stale: str | None, redo: dict[str, list[int]] | None = None) -> None:
        header = {"format": FORMAT, "dim": self.dim, "id_bytes": ID_BYTES, "n_sorted": n_sorted,
                  "n_total": n_total, "stamp": stamp, "stale": stale, "redo": redo}
        _write_atomic(gen / HEADER, json.dumps(header, indent=1).encode("utf-8"))

    def _write_redo_vectors(self, vecs: np.ndarray) -> None:
        with open(self.folder / self._gen / REDO, "wb", opener=_private) as f:
            f.write(np.ascontiguousarray(vecs, "<f4").data)
            f.flush()
            os.fsync(f.fileno())

    def _redo(self, redo: dict[str, list[int]]) -> None:
        """Do the committed in-place write `redo` describes, flush it, and clear it from the
        header. Idempotent: an open after a kill runs it again."""
        path = self.folder / self._gen / REDO
        writes = redo.get("sorted_write", []), redo.get("tail_write", [])
        n_writes = len(writes[0]) + len(writes[1])
        if n_writes:
            vecs = np.fromfile(path, "<f4")
            if vecs.size != n_writes * self.dim:
                raise _Damaged(f"{REDO} holds {vecs.size} numbers, the redo needs "
                               f"{n_writes} x {self.dim}")
            vecs = vecs.reshape(n_writes, self.dim)
            self._sorted.vec[writes[0]] = vecs[:len(writes[0])]
            self._tail.vec[writes[1]] = vecs[len(writes[0]):]
        for seg, pos in ((self._sorted, redo.get("sorted_blank", [])),
                         (self._tail, redo.get("tail_blank", []))):
            if pos:
                seg.ids[pos] = b""
                seg.vec[pos] = 0.0
        self._sorted.flush()
        self._tail.flush()
        self._commit()
        path.unlink(missing_ok=True)

    def _close_segments(self) -> None:
        self._sorted.unmap()
        self._tail.unmap()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the time index is closed")

    # --- generations ---------------------------------------------------------------------------

    def _generations(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if _GEN_RE.fullmatch(p.name))

    def _new_generation(self) -> Path:
        numbers = [int(p.name[1:]) for p in self._generations()]
        gen = self.folder / f"g{max(numbers, default=0) + 1:08d}"
        gen.mkdir(mode=0o700)
        return gen

    def _remove_leftovers(self) -> None:
        """Generations other than the current one: the old one after a switch, or a new one a
        kill interrupted."""
        for p in self._generations():
            if p.name != self._gen:
                shutil.rmtree(p, ignore_errors=True)
        (self.folder / f"{CURRENT}.tmp").unlink(missing_ok=True)

    def _write_sorted(self, gen: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]
                      ) -> int:
        """Write sorted rows as the generation's sorted part; returns how many."""
        seg = _Segment(gen, "", self.dim)
        n = 0
        with (open(seg.paths[0], "wb", opener=_private) as fv,
              open(seg.paths[1], "wb", opener=_private) as ft,
              open(seg.paths[2], "wb", opener=_private) as fi):
            for vecs, t0, ids in chunks:
                fv.write(np.ascontiguousarray(vecs, "<f4").data)
                ft.write(np.ascontiguousarray(t0, "<f8").data)
                fi.write(np.ascontiguousarray(ids, f"S{ID_BYTES}").data)
                n += len(t0)
            cap = max(n, MIN_CAPACITY_ROWS)
            for f, row in zip((fv, ft, fi), seg.row_bytes, strict=True):
                f.flush()
                f.truncate(cap * row)
                os.fsync(f.fileno())
        return n

    def _finish_generation(self, gen: Path, n: int, stamp: str, stale: str | None) -> None:
        _Segment(gen, TAIL, self.dim).create(MIN_CAPACITY_ROWS)
        self._write_header(gen, n, n, stamp, stale)
        _fsync_dir(gen)
        _fsync_dir(self.folder)  # the generation's entry, before CURRENT can name it

    def _merged_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The live sorted rows with the live tail rows slotted in, in time order, in chunks."""
        s, t = self._sorted, self._tail
        ns, nt = self._n_sorted, self._n_tail
        tpos = np.nonzero(~self._tail_dead[:nt])[0]
        tpos = tpos[np.argsort(t.t0[tpos], kind="stable")]
        # a tail row goes before sorted row `ins` (after the sorted rows with an equal t0)
        ins = np.searchsorted(s.t0[:ns], t.t0[tpos], "right")
        step = max(1, COPY_CHUNK_BYTES // (4 * self.dim))
        for a in range(0, max(ns, 1), step):
            b = min(a + step, ns)
            spos = np.nonzero(~self._dead[a:b])[0] + a
            j0 = int(np.searchsorted(ins, a, "left"))
            j1 = int(np.searchsorted(ins, b, "left")) if b < ns else len(ins)
            tsel = tpos[j0:j1]
            keys = np.concatenate([2 * spos + 1, 2 * ins[j0:j1]])
            order = np.argsort(keys, kind="stable")
            yield (np.concatenate([s.vec[spos], t.vec[tsel]])[order],
                   np.concatenate([s.t0[spos], t.t0[tsel]])[order],
                   np.concatenate([s.ids[spos], t.ids[tsel]])[order])

    def _write_unsorted(self, gen: Path, batches: Iterable[list[Row]]) -> int:
        seg = _Segment(gen, UNSORTED, self.dim)
        n = 0
        with (open(seg.paths[0], "wb", opener=_private) as fv,
              open(seg.paths[1], "wb", opener=_private) as ft,
              open(seg.paths[2], "wb", opener=_private) as fi):
            for batch in batches:
                ids, t0, vecs = self._parse(batch)
                fv.write(vecs.data)
                ft.write(t0.data)
                fi.write(ids.data)
                n += len(ids)
        return n

    def _sorted_chunks(self, gen: Path, n: int
                       ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rebuild's rows in t0 order: only t0 and the permutation are held whole (16 bytes a
        row); vectors and ids are gathered from the unsorted files a chunk at a time."""
        if not n:
            return
        seg = _Segment(gen, UNSORTED, self.dim)
        t0 = np.fromfile(seg.paths[1], "<f8", count=n)
        order = np.argsort(t0, kind="stable")
        vec = np.memmap(seg.paths[0], "<f4", "r", shape=(n, self.dim))
        ids = np.memmap(seg.paths[2], f"S{ID_BYTES}", "r", shape=(n,))
        step = max(1, COPY_CHUNK_BYTES // (4 * self.dim))
        try:
            for a in range(0, n, step):
                src = order[a:a + step]
                # read in file order (sequential on a cold cache), put back in time order
                by_file = np.argsort(src)
                back = np.empty_like(by_file)
                back[by_file] = np.arange(len(src))
                yield vec[src[by_file]][back], t0[src], ids[src[by_file]][back]
        finally:
            del vec, ids  # unmapped before the files are removed

    # --- helpers -------------------------------------------------------------------------------

    def _parse(self, rows: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(rows)
        ids = np.array([_encode_id(r[0]) for r in rows], f"S{ID_BYTES}")
        t0 = np.array([float(r[1]) for r in rows], "<f8")
        try:
            vecs = np.asarray([r[2] for r in rows], "<f4").reshape(n, self.dim)
        except ValueError:  # ragged or of another size: say which
            for r in rows:
                if np.size(r[2]) != self.dim:
                    raise ValueError(f"{r[0]}: vector has {np.size(r[2])} dimensions, the index "
                                     f"{self.dim}") from None
            raise
        if not np.isfinite(t0).all():
            raise ValueError("t0 must be finite")
        if not np.isfinite(vecs).all():
            raise ValueError("vectors must be finite")
        return ids, t0, vecs

    def _find(self, ids: np.ndarray, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding these live (id, t0) pairs: (sorted positions, tail positions), -1 where
        absent."""
        s_pos = np.full(len(ids), -1, np.int64)
        t_pos = np.full(len(ids), -1, np.int64)
        ns = self._n_sorted
        if ns:
            t = self._sorted.t0[:ns]
            lo = np.searchsorted(t, t0, "left")
            hi = np.searchsorted(t, t0, "right")
            for i in np.nonzero(hi > lo)[0].tolist():
                match = np.nonzero(self._sorted.ids[lo[i]:hi[i]] == ids[i])[0]
                if len(match):
                    s_pos[i] = lo[i] + match[0]
        if self._tail_rows:
            for i, key in enumerate(zip(ids.tolist(), t0.tolist(), strict=True)):
                t_pos[i] = self._tail_rows.get(key, -1)
        return s_pos, t_pos

    def _append(self, seg: _Segment, at: int, ids: np.ndarray, t0: np.ndarray,
                vecs: np.ndarray) -> None:
        seg.ensure(at + len(ids))
        seg.vec[at:at + len(ids)] = vecs
        seg.t0[at:at + len(ids)] = t0
        seg.ids[at:at + len(ids)] = ids

    def _sorted_range(self, t0_s: float | None, t1_s: float | None) -> tuple[int, int]:
        ns = self._n_sorted
        t = self._sorted.t0[:ns]
        lo = 0 if t0_s is None else int(np.searchsorted(t, t0_s, "left"))
        hi = ns if t1_s is None else int(np.searchsorted(t, t1_s, "left"))
        return lo, max(lo, hi)

    def _tail_between(self, t0_s: float | None, t1_s: float | None) -> np.ndarray:
        """Positions of the live tail rows with t0 in [t0_s, t1_s)."""
        nt = self._n_tail
        if nt == self._n_tail_dead:
            return np.zeros(0, np.int64)
        t = np.asarray(self._tail.t0[:nt])
        ok = ~self._tail_dead[:nt]
        if t0_s is not None:
            ok &= t >= t0_s
        if t1_s is not None:
            ok &= t < t1_s
        return np.nonzero(ok)[0]

    def _needs_merge(self) -> bool:
        limit = max(self.merge_min_rows, self.merge_fraction * (self._n_sorted + self._n_tail))
        return self._n_tail > limit or self._n_dead > 4 * limit


def _valid_redo(redo: object, n_sorted: int, n_tail: int) -> bool:
    if not isinstance(redo, dict) or not set(redo) <= set(_REDO_KEYS):
        return False
    for key, pos in redo.items():
        limit = n_sorted if key.startswith("sorted") else n_tail
        if not (isinstance(pos, list)
                and all(isinstance(p, int) and 0 <= p < limit for p in pos)):
            return False
    return True


def _fit(mask: np.ndarray, n: int) -> np.ndarray:
    """`mask` grown with False entries to at least n."""
    if len(mask) >= n:
        return mask
    return np.concatenate([mask, np.zeros(n - len(mask), bool)])
