"""The time index (app/memory/timeindex.py): exact against brute force, upserts and deletes on
disk, and what a kill or a damaged file leaves behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.memory import timeindex
from app.memory.timeindex import TimeIndex
from tests.conftest import ROOT

DIM = 16
Key = tuple[str, float]


def unit(rng: np.random.Generator, n: int, dim: int = DIM, centres: int = 20) -> np.ndarray:
    """Clustered unit vectors (as embeddings are): a few centres plus noise."""
    c = rng.normal(size=(centres, dim))
    v = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def make_rows(rng: np.random.Generator, n: int, prefix: str = "utt", t_max: float = 1e6,
              dim: int = DIM) -> list[tuple[str, float, np.ndarray]]:
    t0 = np.round(rng.uniform(0, t_max, n), 3)
    vecs = unit(rng, n, dim)
    return [(f"{prefix}-{i}", float(t0[i]), vecs[i]) for i in range(n)]


class Brute:
    """The expected answers, by brute force in float64 over every row."""

    def __init__(self, state: dict[Key, np.ndarray]) -> None:
        self.keys = list(state)
        self.t0 = np.array([t for _, t in self.keys], np.float64)
        self.ids = np.array([i for i, _ in self.keys], str)
        self.mat = (np.array([state[key] for key in self.keys], np.float64) if self.keys
                    else np.zeros((0, 0)))

    def between(self, t0_s: float | None, t1_s: float | None) -> np.ndarray:
        lo = -np.inf if t0_s is None else t0_s
        hi = np.inf if t1_s is None else t1_s
        return np.nonzero((self.t0 >= lo) & (self.t0 < hi))[0]

    def search(self, q: np.ndarray, k: int, t0_s: float | None,
               t1_s: float | None) -> list[tuple[str, float]]:
        rows = self.between(t0_s, t1_s)
        if not len(rows):
            return []
        scores = (self.mat @ q.astype(np.float32).astype(np.float64))[rows]
        order = np.lexsort((self.ids[rows], -self.t0[rows], -scores))[:k]
        return [(str(self.ids[rows[i]]), float(scores[i])) for i in order]


def brute(state: dict[Key, np.ndarray], q: np.ndarray, k: int, t0_s: float | None,
          t1_s: float | None) -> list[tuple[str, float]]:
    return Brute(state).search(q, k, t0_s, t1_s)


def assert_same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-9)


def check_queries(idx: TimeIndex, state: dict[Key, np.ndarray], rng: np.random.Generator,
                  n: int = 12) -> None:
    expected = Brute(state)
    times = sorted(t for _, t in state) or [0.0]
    ranges: list[tuple[float | None, float | None]] = [(None, None), (None, times[len(times) // 2]),
                                                       (times[len(times) // 3], None)]
    for _ in range(n):
        a, b = sorted(rng.uniform(times[0] - 10, times[-1] + 10, 2))
        ranges.append((float(a), float(b)))
    ranges += [(5.0, 5.0), (times[-1] + 1, None), (times[0], times[0] + 1e-6)]
    for t0_s, t1_s in ranges:
        q = unit(rng, 1, idx.dim)[0]
        for k in (1, 5, 40):
            assert_same(idx.search(q, k, t0_s, t1_s), expected.search(q, k, t0_s, t1_s))
        assert idx.rows_between(t0_s, t1_s) == len(expected.between(t0_s, t1_s))
    assert len(idx) == len(state)


def assert_rows(idx: TimeIndex, state: dict[Key, np.ndarray], batch_rows: int = 65_536) -> None:
    """The index holds exactly these rows and vectors."""
    got = {(i, t): v for batch in idx.iter_rows(batch_rows) for i, t, v in batch}
    assert got.keys() == state.keys()
    keys = list(state)
    assert np.array_equal(np.array([got[key] for key in keys]), np.array([state[key] for key in keys]))


def header(folder: Path) -> dict:
    gen = (folder / "CURRENT").read_text().strip()
    return json.loads((folder / gen / "header.json").read_text())


def gen_dir(folder: Path) -> Path:
    return folder / (folder / "CURRENT").read_text().strip()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several search chunks and copy chunks on small data."""
    monkeypatch.setattr(timeindex, "SEARCH_CHUNK_ROWS", 97)
    monkeypatch.setattr(timeindex, "COPY_CHUNK_BYTES", 61 * 4 * DIM)


# --- exactness -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_chunks")
def test_exact_against_brute_force(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = make_rows(rng, 1500)
    idx = TimeIndex(tmp_path / "ix", DIM)
    assert idx.stale == "no index yet" and len(idx) == 0
    assert idx.search(unit(rng, 1)[0], 5, None, None) == []
    idx.rebuild([rows[:700], rows[700:]], "s")
    assert idx.stale is None
    state = {(i, t): v for i, t, v in rows}
    check_queries(idx, state, rng)
    # k larger than the range, and k <= 0
    q = unit(rng, 1)[0]
    assert len(idx.search(q, 10_000, None, None)) == 1500
    assert idx.search(q, 0, None, None) == []
    assert_same(idx.search(q, 10_000, 1e5, 2e5), brute(state, q, 10_000, 1e5, 2e5))
    with pytest.raises(ValueError):
        idx.search(np.zeros(DIM + 1, np.float32), 5, None, None)


@pytest.mark.usefixtures("small_chunks")
def test_out_of_order_rows_go_to_the_tail_and_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "ix"
    idx = TimeIndex(folder, DIM, merge_min_rows=150, merge_fraction=0.01)
    idx.rebuild([], "0")
    state: dict[Key, np.ndarray] = {}
    # live recording: batches in time order extend the sorted part
    for b in range(6):
        batch = [(f"live-{b}-{i}", 1000.0 * b + i, v) for i, v in enumerate(unit(rng, 50))]
        idx.add(batch, f"{b}")
        state.update({(i, t): v for i, t, v in batch})
    assert header(folder)["n_sorted"] == header(folder)["n_total"] == 300
    first_gen = gen_dir(folder).name
    # an older recording imported: its rows go to the tail, still found by search
    old = [(f"old-{i}", float(t), v) for i, (t, v) in
           enumerate(zip(rng.uniform(0, 5000, 100), unit(rng, 100), strict=True))]
    idx.add(old, "imported")
    state.update({(i, t): v for i, t, v in old})
    h = header(folder)
    assert h["n_total"] - h["n_sorted"] > 0 and gen_dir(folder).name == first_gen
    check_queries(idx, state, rng)
    # a mixed batch: the new part extends the sorted part, the old part joins the tail
    mixed = [("new-0", 9000.0, unit(rng, 1)[0]), ("old-x", 10.0, unit(rng, 1)[0])]
    idx.add(mixed, "mixed")
    state.update({(i, t): v for i, t, v in mixed})
    assert header(folder)["n_sorted"] == 301
    check_queries(idx, state, rng)
    # past 150 tail rows: merged into a new generation, the old one removed
    more = [(f"old2-{i}", float(t), v) for i, (t, v) in
            enumerate(zip(rng.uniform(0, 5000, 60), unit(rng, 60), strict=True))]
    idx.add(more, "merged")
    state.update({(i, t): v for i, t, v in more})
    h = header(folder)
    assert h["n_sorted"] == h["n_total"] == len(state) == 462
    assert gen_dir(folder).name != first_gen and not (folder / first_gen).exists()
    assert h["stamp"] == idx.stamp == "merged"
    t0 = np.fromfile(gen_dir(folder) / "t0.f64", "<f8")[:462]
    assert (np.diff(t0) >= 0).all()
    check_queries(idx, state, rng)


def test_upsert_overwrites_in_place(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    folder = tmp_path / "ix"
    idx = TimeIndex(folder, DIM)
    rows = make_rows(rng, 200)
    idx.rebuild([rows], "a")
    v_old, v_new = rows[10][2], unit(rng, 1)[0]
    tail_old, tail_new = unit(rng, 2)
    idx.add([("late", -5.0, tail_old)], "b")  # older than everything: a tail row
    n_total = header(folder)["n_total"]
    idx.add([(rows[10][0], rows[10][1], v_new), ("late", -5.0, tail_new)], "c")
    assert len(idx) == 201 and header(folder)["n_total"] == n_total
    assert idx.search(v_new, 1, None, None)[0][0] == rows[10][0]
    assert idx.search(tail_new, 1, None, None) == [("late", pytest.approx(1.0, abs=1e-6))]
    raw = (gen_dir(folder) / "vectors.f32").read_bytes()
    assert v_new.tobytes() in raw and v_old.tobytes() not in raw
    raw_tail = (gen_dir(folder) / "tail.vectors.f32").read_bytes()
    assert tail_new.tobytes() in raw_tail and tail_old.tobytes() not in raw_tail
    # the same id at another t0 is another row: moving a moment is delete + add
    idx.add([(rows[10][0], rows[10][1] + 1, v_new)], "d")
    assert len(idx) == 202
    # duplicates within one batch: the last wins
    a, b = unit(rng, 2)
    idx.add([("dup", 1e7, a), ("dup", 1e7, b)], "e")
    assert len(idx) == 203
    assert idx.search(b, 1, 1e7, None) == [("dup", pytest.approx(1.0, abs=1e-6))]


def test_delete_zeroes_the_bytes_on_disk(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    folder = tmp_path / "ix"
    idx = TimeIndex(folder, DIM)
    rows = make_rows(rng, 300, prefix="utt-1795165210123")
    idx.rebuild([rows], "a")
    late = ("utt-late-secret", -1.0, unit(rng, 1)[0])
    idx.add([late], "b")
    victim = rows[42]
    gen = gen_dir(folder)
    assert victim[2].tobytes() in (gen / "vectors.f32").read_bytes()
    assert victim[0].encode() in (gen / "ids").read_bytes()
    assert idx.delete([(victim[0], victim[1]), (late[0], late[1]), ("absent", 1.0),
                       (victim[0], victim[1] + 1)], stamp="c") == 2
    assert len(idx) == 299 and idx.stamp == "c"
    for name, row in (("", victim), ("tail.", late)):
        assert row[2].tobytes() not in (gen / f"{name}vectors.f32").read_bytes()
        assert row[0].encode() not in (gen / f"{name}ids").read_bytes()
    state = {(i, t): v for i, t, v in rows if i != victim[0]}
    assert_same(idx.search(victim[2], 300, None, None), brute(state, victim[2], 300, None, None))
    assert all(i != late[0] for i, _ in idx.search(late[2], 400, None, None))
    assert idx.delete([(victim[0], victim[1])]) == 0  # already gone
    idx.close()
    idx = TimeIndex(folder, DIM)
    assert len(idx) == 299 and idx.stale is None
    check_queries(idx, state, rng)
    # compaction at the next merge: the row is gone from the files altogether
    idx.merge()
    h = header(folder)
    assert h["n_total"] == h["n_sorted"] == 299
    check_queries(idx, state, rng)


def test_reopen_gives_the_same_results_and_stamp(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    folder = tmp_path / "ix"
    idx = TimeIndex(folder, DIM)
    rows = make_rows(rng, 500)
    idx.rebuild([rows[:400]], "400:1")
    idx.add(rows[400:], "500:2")  # partly in order, partly in the tail
    queries = unit(rng, 8)
    before = [idx.search(q, 7, 2e5, 8e5) for q in queries]
    idx.close()
    with pytest.raises(ValueError):
        idx.search(queries[0], 5, None, None)
    idx = TimeIndex(folder, DIM)
    assert idx.stale is None and idx.stamp == "500:2" and len(idx) == 500
    assert [idx.search(q, 7, 2e5, 8e5) for q in queries] == before
    idx.add([], "500:3")  # a stamp alone
    idx.close()
    assert TimeIndex(folder, DIM).stamp == "500:3"
    assert (folder.stat().st_mode & 0o777) == 0o700


def test_ties_newer_first_then_id(tmp_path: Path, small_chunks: None) -> None:
    rng = np.random.default_rng(6)
    idx = TimeIndex(tmp_path / "ix", DIM)
    v = unit(rng, 1)[0]
    others = make_rows(rng, 400, prefix="other")
    same = [(f"tie-{c}", t, v) for c, t in [("b", 50.0), ("a", 50.0), ("c", 10.0), ("d", 900.0),
                                           ("e", 3e5), ("f", 3e5)]]
    batches = [others[:200], same[:3], others[200:], same[3:]]
    random.Random(0).shuffle(batches)
    idx.rebuild(batches, "t")
    idx.add([("tie-g", 20.0, v.copy())], "t2")  # in the tail
    got = [i for i, _ in idx.search(v, 7, None, None)]
    assert got == ["tie-e", "tie-f", "tie-d", "tie-a", "tie-b", "tie-g", "tie-c"]
    assert [i for i, _ in idx.search(v, 3, 0.0, 100.0)] == ["tie-a", "tie-b", "tie-g"]


@pytest.mark.usefixtures("small_chunks")
def test_rebuild_from_batches_in_random_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    folder = tmp_path / "ix"
    idx = TimeIndex(folder, DIM)
    idx.add(make_rows(rng, 50, prefix="gone"), "old")
    rows = make_rows(rng, 2000)
    order = rng.permutation(len(rows))
    batches = [[rows[i] for i in order[a:a + 137]] for a in range(0, len(rows), 137)]
    idx.rebuild(iter(batches), "new")
    assert idx.stale is None and idx.stamp == "new" and len(idx) == 2000
    assert sorted(p.name for p in folder.iterdir()) == ["CURRENT", gen_dir(folder).name]
    assert not any(p.name.startswith("unsorted") for p in gen_dir(folder).iterdir())
    t0 = np.fromfile(gen_dir(folder) / "t0.f64", "<f8")[:2000]
    assert (np.diff(t0) >= 0).all()
    state = {(i, t): v for i, t, v in rows}
    check_queries(idx, state, rng)
    assert_rows(idx, state, batch_rows=300)
    idx.rebuild([], "empty")
    assert len(idx) == 0 and idx.search(rows[0][2], 5, None, None) == []


def test_bad_input_is_refused(tmp_path: Path) -> None:
    idx = TimeIndex(tmp_path / "ix", DIM)
    v = np.ones(DIM, np.float32) / 4
    for bad in [("x" * 65, 1.0, v), ("", 1.0, v), ("été", 1.0, v), ("a", 1.0, v[:-1]),
                ("a", float("nan"), v), ("a", 1.0, v * np.nan)]:
        with pytest.raises(ValueError):
            idx.add([bad], "s")
    idx.add([("x" * 64, 1.0, v)], "s")
    assert idx.search(v, 1, None, None)[0][0] == "x" * 64
    with pytest.raises(ValueError):
        idx.rebuild([[("ok", 1.0, v), ("x" * 65, 2.0, v)]], "s")
    assert len(idx) == 1 and len(list(tmp_path.joinpath("ix").glob("g*"))) == 1


# --- kills and damage ----------------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL at a chosen point: nothing after it runs."""


def built(folder: Path, rng: np.random.Generator, n: int = 400) -> tuple[TimeIndex, dict]:
    idx = TimeIndex(folder, DIM)
    rows = make_rows(rng, n)
    idx.rebuild([rows], "v1")
    return idx, {(i, t): v for i, t, v in rows}


def assert_old_or_stale(folder: Path, state: dict, stamp: str, rng: np.random.Generator) -> None:
    idx = TimeIndex(folder, DIM)
    if idx.stale is None:
        assert idx.stamp == stamp
        check_queries(idx, state, rng)
    else:
        assert len(idx) == 0 and idx.search(unit(rng, 1)[0], 5, None, None) == []
    idx.close()


def test_kill_after_appending_data_before_the_header(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    folder = tmp_path / "ix"
    idx, state = built(folder, rng)
    new_rows = [(f"new-{i}", 2e6 + i, v) for i, v in enumerate(unit(rng, 30))]
    old_rows = [(f"old-{i}", -10.0 - i, v) for i, v in enumerate(unit(rng, 5))]

    def killed(*_: object, **__: object) -> None:
        raise Killed

    monkeypatch.setattr(TimeIndex, "_write_header", killed)
    with pytest.raises(Killed):
        idx.add(new_rows + old_rows, "v2")
    monkeypatch.undo()
    # the rows are in the files, past the counts of the header
    raw = (gen_dir(folder) / "vectors.f32").read_bytes()
    assert new_rows[0][2].tobytes() in raw
    reopened = TimeIndex(folder, DIM)
    assert reopened.stale is None and reopened.stamp == "v1" and len(reopened) == 400
    check_queries(reopened, state, rng)
    # and appending again overwrites them
    reopened.add(new_rows[:3], "v3")
    state.update({(i, t): v for i, t, v in new_rows[:3]})
    check_queries(reopened, state, rng)


@pytest.mark.parametrize("kill_at", ["first header", "redo", "clean header"])
@pytest.mark.parametrize("op", ["delete", "upsert"])
def test_kill_during_an_in_place_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       op: str, kill_at: str) -> None:
    """Killed before the header that commits it: the old state. After: the open finishes it."""
    rng = np.random.default_rng(9)
    folder = tmp_path / "ix"
    idx, state = built(folder, rng)
    late = ("late", -1.0, unit(rng, 1)[0])
    idx.add([late], "v1")
    state[late[:2]] = late[2]
    keys = [next(iter(state)), late[:2]]  # a sorted row and a tail row
    new_vecs = unit(rng, 2)
    real = TimeIndex._write_header
    calls = []

    def killing(self: TimeIndex, *args: object) -> None:
        calls.append(args)
        if (kill_at == "first header") or (kill_at == "clean header" and len(calls) == 2):
            raise Killed
        real(self, *args)  # type: ignore[arg-type]

    def killed(*_: object) -> None:
        raise Killed

    monkeypatch.setattr(TimeIndex, "_write_header", killing)
    if kill_at == "redo":
        monkeypatch.setattr(TimeIndex, "_redo", killed)
    with pytest.raises(Killed):
        if op == "delete":
            idx.delete(keys, stamp="v2")
        else:
            idx.add([(*key, v) for key, v in zip(keys, new_vecs, strict=True)], "v2")
    monkeypatch.undo()
    old = dict(state)
    if op == "delete":
        for key in keys:
            del state[key]
    else:
        state.update(zip(keys, new_vecs, strict=True))
    reopened = TimeIndex(folder, DIM)
    assert reopened.stale is None
    if kill_at == "first header":
        assert reopened.stamp == "v1"
        check_queries(reopened, old, rng)
        assert_rows(reopened, old)
        return
    assert reopened.stamp == "v2" and header(folder)["redo"] is None
    check_queries(reopened, state, rng)
    assert_rows(reopened, state)
    gen = gen_dir(folder)
    raw = (gen / "vectors.f32").read_bytes() + (gen / "tail.vectors.f32").read_bytes()
    if op == "delete":
        assert old[keys[0]].tobytes() not in raw and old[keys[1]].tobytes() not in raw
        assert b"late" not in (gen / "tail.ids").read_bytes()
    else:
        assert new_vecs[0].tobytes() in raw and old[keys[0]].tobytes() not in raw
    assert not (gen / "redo.f32").exists()


def test_kill_during_rebuild_and_merge_keeps_the_old_index(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(10)
    folder = tmp_path / "ix"
    idx, state = built(folder, rng)
    old_gen = gen_dir(folder).name

    def killed(*_: object, **__: object) -> None:
        raise Killed

    for point in ("_finish_generation", "_switch"):
        monkeypatch.setattr(TimeIndex, point, killed)
        with pytest.raises(Killed):
            idx.rebuild([make_rows(rng, 100, prefix="new")], "v2")
        monkeypatch.undo()
        assert_old_or_stale(folder, state, "v1", rng)
        assert gen_dir(folder).name == old_gen
    # a merge killed before its switch: a new generation left behind, removed on the next open
    idx = TimeIndex(folder, DIM)
    late = [(f"late-{i}", -1.0 - i, v) for i, v in enumerate(unit(rng, 10))]
    idx.add(late, "v4")
    state.update({(i, t): v for i, t, v in late})
    monkeypatch.setattr(TimeIndex, "_switch", killed)
    with pytest.raises(Killed):
        idx.merge()
    monkeypatch.undo()
    assert len(list(folder.glob("g*"))) == 2
    assert_old_or_stale(folder, state, "v4", rng)
    assert [p.name for p in folder.glob("g*")] == [old_gen]


@pytest.mark.parametrize("damage", ["truncate", "header", "dim", "current", "unsorted",
                                    "no header", "no current", "bad redo", "no redo file"])
def test_damaged_files_make_it_stale(tmp_path: Path, damage: str) -> None:
    rng = np.random.default_rng(11)
    folder = tmp_path / "ix"
    idx, state = built(folder, rng)
    idx.close()
    gen = gen_dir(folder)
    if damage == "truncate":
        os.truncate(gen / "vectors.f32", 100 * 4 * DIM)
    elif damage == "header":
        (gen / "header.json").write_text('{"format": 1, "dim": ')
    elif damage == "dim":
        h = header(folder)
        (gen / "header.json").write_text(json.dumps({**h, "dim": DIM * 2}))
    elif damage == "current":
        (folder / "CURRENT").write_text("../etc")
    elif damage == "unsorted":
        t0 = np.memmap(gen / "t0.f64", "<f8", "r+")
        t0[5], t0[6] = t0[6] + 1, t0[5]
        t0.flush()
        del t0
    elif damage == "no header":
        (gen / "header.json").unlink()
    elif damage == "no current":
        (folder / "CURRENT").unlink()
    elif damage == "bad redo":
        h = header(folder)
        (gen / "header.json").write_text(json.dumps({**h, "redo": {"sorted_blank": [400]}}))
    elif damage == "no redo file":
        h = header(folder)
        (gen / "header.json").write_text(json.dumps({**h, "redo": {"sorted_write": [3]}}))
    idx = TimeIndex(folder, DIM)
    assert idx.stale, damage
    assert len(idx) == 0 and idx.search(unit(rng, 1)[0], 5, None, None) == []
    assert idx.rows_between(None, None) == 0
    reason = idx.stale
    idx.close()
    idx = TimeIndex(folder, DIM)  # still stale after a reopen, until a rebuild
    assert idx.stale == reason
    idx.rebuild([[(i, t, v) for (i, t), v in state.items()]], "v2")
    idx.close()
    assert_old_or_stale(folder, state, "v2", rng)
    assert TimeIndex(folder, DIM).stale is None


# --- a real SIGKILL ------------------------------------------------------------------------------

KILL_DIM = 24
KILL_BASE_ROWS = 30_000


class Model:
    """The operations the child runs, replayed by the test to know the state after each one."""

    def __init__(self) -> None:
        self.state: dict[Key, np.ndarray] = {}
        self.t_max = 0.0

    def op(self, i: int) -> tuple[str, object]:
        rng = np.random.default_rng(1000 + i)
        if i == 0 or i % 9 == 0:
            n = KILL_BASE_ROWS if i == 0 else 0
            rows = make_rows(rng, n, prefix=f"base{i}", t_max=1e6, dim=KILL_DIM)
            self.state.update({(r[0], r[1]): r[2] for r in rows})
            self.t_max = max([self.t_max, *(t for _, t in self.state)])
            return "rebuild", None
        if i % 5 == 3:
            keys = list(self.state)
            gone = [keys[j] for j in rng.choice(len(keys), 4, replace=False)]
            for key in gone:
                del self.state[key]
            return "delete", [*gone, ("absent", 1.0)]
        if i % 4 == 1:
            rows = make_rows(rng, 40, prefix=f"old{i}", t_max=self.t_max, dim=KILL_DIM)
        else:
            t = self.t_max + np.cumsum(rng.uniform(0.5, 5.0, 60))
            vecs = unit(rng, 60, KILL_DIM)
            rows = [(f"live{i}-{j}", float(t[j]), vecs[j]) for j in range(60)]
            rows.append((*list(self.state)[int(rng.integers(len(self.state)))],
                         unit(rng, 1, KILL_DIM)[0]))  # an upsert in place
            self.t_max = float(t[-1])
        self.state.update({(r[0], r[1]): r[2] for r in rows})
        return "add", rows


def child(folder: str, start: int) -> None:
    """Runs operations on the index until killed, printing `begin i kind` and `done i`."""
    model = Model()
    for i in range(start):
        model.op(i)
    idx = TimeIndex(Path(folder), KILL_DIM, merge_min_rows=50, merge_fraction=0.0)
    for i in range(start, 10_000):
        kind, arg = model.op(i)
        print(f"begin {i} {kind}", flush=True)
        if kind == "rebuild":
            items = list(model.state.items())
            random.Random(i).shuffle(items)
            idx.rebuild(([(k[0], k[1], v) for k, v in items[a:a + 5000]]
                         for a in range(0, len(items), 5000)), f"op{i}")
        elif kind == "delete":
            idx.delete(arg, stamp=f"op{i}")  # type: ignore[arg-type]
        else:
            idx.add(arg, f"op{i}")  # type: ignore[arg-type]
        print(f"done {i}", flush=True)


@pytest.mark.slow
def test_sigkill_during_writes_leaves_a_consistent_index(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    rng = np.random.default_rng(12)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tests.test_timeindex import child; "
            "child(sys.argv[2], int(sys.argv[3]))")
    last_done, outcomes = -1, []
    for round_ in range(8):
        start = last_done + 1
        proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(folder), str(start)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert proc.stdout is not None
        try:
            # every other round, during a rebuild (every 9th operation; ~0.25 s); else anywhere
            wanted = (start // 9 + 1) * 9 - 1 if round_ % 2 else start + 1 + round_ % 3
            begun = ""
            for line in proc.stdout:
                if line.startswith("begin"):
                    begun = line.strip()
                    continue
                last_done = int(line.split()[1])
                if last_done >= wanted:
                    time.sleep(float(rng.uniform(0.0, 0.25 if round_ % 2 else 0.05)))
                    break
            assert proc.poll() is None, "the child ended before it was killed"
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.read()
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        for line in rest.splitlines():
            if line.startswith("begin"):
                begun = line.strip()
            elif line.startswith("done"):
                last_done = int(line.split()[1])
        during = f"killed in {begun.split(maxsplit=1)[1]}" if begun and int(
            begun.split()[1]) > last_done else "killed between operations"
        idx = TimeIndex(folder, KILL_DIM)
        if idx.stale is not None:
            outcomes.append(f"{during}: stale ({idx.stale})")
            assert len(idx) == 0
            last_done = -1  # the child's next run rebuilds from operation 0
            idx.close()
            continue
        j = int(idx.stamp.removeprefix("op"))
        assert j >= last_done, "an operation reported done was lost"
        model = Model()
        for i in range(j + 1):
            model.op(i)
        check_queries(idx, model.state, rng, n=4)
        assert_rows(idx, model.state)
        outcomes.append(f"{during}: op{j} after done {last_done}")
        idx.close()
        last_done = j
    print("\n".join(outcomes))
