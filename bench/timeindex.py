"""Time index benchmark: app/memory/timeindex.py from 10k to 1M rows.

For each size N: N 384-d clustered unit vectors (2,000 centres + noise, as in
/work/shared/notes/MEMORY_SCALE.md) with t0 spread over one year. Each size runs in a fresh
process (so its RSS is its own) and measures:
  - build: `rebuild` from 5,000-row batches in random time order (the batches' generation is
    not counted),
  - search p50 / p95 (k=5, exact) over ranges of 1 hour, 1 day, 7 days, 30 days and the whole
    year, random start, queries near the data, warm page cache,
  - live adds (5 rows in time order, each committed with its fsyncs), 1,000 rows added out of
    time order (to the tail) and the merge that folds them in, a delete of 10 rows,
  - reopen (close + open) and the first query after it,
  - bytes on disk per row (allocated blocks; apparent size with the files' spare rows),
  - RSS after the searches: anonymous (the process's own memory) and file-backed (pages of the
    memory-mapped index it touched; the kernel drops them under pressure).
Writes bench/out/timeindex.json.

    python bench/timeindex.py [--sizes 10000 100000] [--queries 50]
    python bench/timeindex.py --sizes 1000000

Measured (2 cores shared with other jobs, load 2.6-4; `nice -n 19`, numpy 2.4 with OpenBLAS;
all three sizes in 62 s; search p50 / p95 ms, k=5, warm page cache):

                        10k            100k            1M
  1 hour                0.14 / 0.30    0.17 / 0.30     0.22 / 0.30    (111 rows at 1M)
  1 day                 0.18 / 0.21    0.15 / 0.25     0.75 / 1.05    (2.7k rows)
  7 days                0.21 / 0.25    0.41 / 0.48     4.3 / 7.1      (19k rows)
  30 days               0.34 / 0.38    1.7 / 2.2       16.7 / 43      (82k rows)
  whole year            2.1 / 2.8      17.6 / 21.4     189 / 230
  build (rebuild)       0.16 s         1.3 s           14.4 s (70k rows/s)
  merge (1,000 tail)    0.19 s         1.2 s           9.8 s
  disk per row          1,609 B (384 x 4 + 8 + 64 = 1,608)
  RSS after search      63 MB          223 MB          1,604 MB: anonymous 27 / 50 / 50 MB, the
                                                       rest file-backed pages of the index
  build anonymous peak  86 MB          144 MB          146 MB (with the batches being generated)
  reopen + 1st query    1.8 + 0.4 ms   3.7 + 0.7 ms    14 + 3.6 ms
  live add of 5 rows: 2.5-19 ms p50 (fsyncs); delete of 10 rows: 10-51 ms; rows_between < 0.1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.memory.timeindex import TimeIndex  # noqa: E402

OUT = ROOT / "bench" / "out"
DIM = 384
CENTRES = 2_000
BATCH = 5_000
YEAR_S = 365 * 86_400.0
T_START = 1_767_225_600.0  # 2026-01-01 UTC
RANGES = {"1 hour": 3_600.0, "1 day": 86_400.0, "7 days": 7 * 86_400.0,
          "30 days": 30 * 86_400.0, "whole year": None}


def unit_rows(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    v = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.7 / np.sqrt(DIM), (n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def rss_mb() -> dict[str, float]:
    """Anonymous and file-backed resident memory (Linux); total RSS elsewhere."""
    fields: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        import psutil

        fields["VmRSS"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    return fields


def disk_bytes(folder: Path) -> tuple[int, int]:
    """(allocated, apparent) bytes of every file under folder."""
    files = [p.stat() for p in folder.rglob("*") if p.is_file()]
    blocks = all(hasattr(s, "st_blocks") for s in files)  # not on Windows
    return (sum(s.st_blocks * 512 if blocks else s.st_size for s in files),
            sum(s.st_size for s in files))


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def run_size(n: int, queries: int, folder: Path, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CENTRES, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    gen_s = 0.0

    def batches() -> Iterator[list[tuple[str, float, np.ndarray]]]:
        nonlocal gen_s
        for a in range(0, n, BATCH):
            t = time.perf_counter()
            m = min(BATCH, n - a)
            t0 = T_START + rng.uniform(0, YEAR_S, m)
            vecs = unit_rows(rng, centres, m)
            batch = [(f"utt-{int(t0[i] * 1000)}-{a + i}", float(t0[i]), vecs[i])
                     for i in range(m)]
            gen_s += time.perf_counter() - t
            yield batch

    idx = TimeIndex(folder, DIM)
    peak_anon = [0.0]
    building = threading.Event()
    building.set()

    def sample() -> None:  # the process's own memory during the build, not the page cache
        while building.is_set():
            peak_anon[0] = max(peak_anon[0], rss_mb().get("RssAnon", 0.0))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    t = time.perf_counter()
    idx.rebuild(batches(), f"{n}:1")
    build_s = time.perf_counter() - t - gen_s
    building.clear()
    sampler.join()
    assert len(idx) == n and idx.stale is None
    rss_build = rss_mb()

    search: dict[str, dict] = {}
    for name, width in RANGES.items():
        lat, in_range = [], []
        for i in range(queries + 1):
            q = unit_rows(rng, centres, 1)[0]
            t0_s = t1_s = None
            if width is not None:
                t0_s = T_START + float(rng.uniform(0, YEAR_S - width))
                t1_s = t0_s + width
            t = time.perf_counter()
            hits = idx.search(q, 5, t0_s, t1_s)
            if i:  # the first one warms up
                lat.append((time.perf_counter() - t) * 1000)
                in_range.append(idx.rows_between(t0_s, t1_s))
            assert len(hits) == min(5, idx.rows_between(t0_s, t1_s))
        search[name] = {"rows_median": int(np.median(in_range)), "p50_ms": pct(lat, 50),
                        "p95_ms": pct(lat, 95)}
        t = time.perf_counter()
        for _ in range(20):
            idx.rows_between(t0_s, t1_s)
        search[name]["rows_between_ms"] = round((time.perf_counter() - t) / 20 * 1000, 4)
    rss_search = rss_mb()
    allocated, apparent = disk_bytes(folder)

    # live recording: small adds in time order
    t_last = T_START + YEAR_S
    add_ms = []
    for i in range(50):
        vecs = unit_rows(rng, centres, 5)
        rows = [(f"live-{i}-{j}", t_last + 10.0 * (5 * i + j), vecs[j]) for j in range(5)]
        t = time.perf_counter()
        idx.add(rows, f"{n}:live{i}")
        add_ms.append((time.perf_counter() - t) * 1000)
    # an older recording imported: out of time order, to the tail; then merged
    old_ms = []
    for i in range(10):
        vecs = unit_rows(rng, centres, 100)
        t0 = T_START + rng.uniform(0, YEAR_S, 100)
        rows = [(f"old-{i}-{j}", float(t0[j]), vecs[j]) for j in range(100)]
        t = time.perf_counter()
        idx.add(rows, f"{n}:old{i}")
        old_ms.append((time.perf_counter() - t) * 1000)
    tail_rows = idx.rows_between(None, None) - n - 250
    q = unit_rows(rng, centres, 1)[0]
    t = time.perf_counter()
    idx.search(q, 5, T_START, T_START + 86_400.0)
    day_with_tail_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    idx.merge()
    merge_s = time.perf_counter() - t
    some = [(i, t_) for i, t_, _ in next(idx.iter_rows(10))]
    t = time.perf_counter()
    assert idx.delete(some, stamp="deleted") == 10
    delete_ms = (time.perf_counter() - t) * 1000
    idx.close()
    t = time.perf_counter()
    idx = TimeIndex(folder, DIM)
    open_ms = (time.perf_counter() - t) * 1000
    assert idx.stale is None and len(idx) == n + 250 + 1000 - 10
    t = time.perf_counter()
    idx.search(q, 5, T_START, T_START + 7 * 86_400.0)
    first_query_ms = (time.perf_counter() - t) * 1000
    idx.close()
    return {
        "rows": n, "dim": DIM,
        "build_s": round(build_s, 2), "build_rows_per_s": round(n / build_s),
        "search_k5": search,
        "live_add_5_rows_ms": {"p50": pct(add_ms, 50), "p95": pct(add_ms, 95)},
        "out_of_order_add_100_rows_ms": {"p50": pct(old_ms, 50), "p95": pct(old_ms, 95)},
        "tail_rows_before_merge": tail_rows,
        "one_day_search_with_tail_ms": round(day_with_tail_ms, 3),
        "merge_s": round(merge_s, 2),
        "delete_10_rows_ms": round(delete_ms, 2),
        "reopen_ms": round(open_ms, 1), "first_query_after_reopen_ms": round(first_query_ms, 2),
        "disk_bytes_per_row": round(allocated / n), "apparent_bytes_per_row": round(apparent / n),
        "peak_anonymous_rss_mb_during_build": peak_anon[0],
        "rss_mb_after_build": rss_build, "rss_mb_after_search": rss_search,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50, help="per range and size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, args.queries, args.dir)))
        return
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="daybook-bench-") as tmp:
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--one", str(n), "--queries",
                                  str(args.queries), "--dir", str(Path(tmp) / "index")],
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"size {n} failed:\n{out.stderr}")
            r = json.loads(out.stdout)
            r["wall_s"] = round(time.perf_counter() - t, 1)
        results.append(r)
        print(f"\n{n:,} rows x {DIM}: built in {r['build_s']} s ({r['build_rows_per_s']:,} rows/s), "
              f"{r['disk_bytes_per_row']} B/row on disk ({r['apparent_bytes_per_row']} apparent)")
        print(f"  {'range':12} {'rows':>9} {'p50 ms':>8} {'p95 ms':>8} {'count ms':>9}")
        for name, s in r["search_k5"].items():
            print(f"  {name:12} {s['rows_median']:>9,} {s['p50_ms']:>8} {s['p95_ms']:>8} "
                  f"{s['rows_between_ms']:>9}")
        rss = r["rss_mb_after_search"]
        print(f"  build: peak anonymous RSS {r['peak_anonymous_rss_mb_during_build']} MB "
              "(with the batches being generated)")
        print(f"  RSS after search: {rss.get('VmRSS')} MB (anonymous {rss.get('RssAnon')}, "
              f"file-backed {rss.get('RssFile')}); peak {rss.get('VmHWM')} MB")
        print(f"  live add of 5 rows p50/p95 {r['live_add_5_rows_ms']['p50']}/"
              f"{r['live_add_5_rows_ms']['p95']} ms; 100 old rows to the tail "
              f"{r['out_of_order_add_100_rows_ms']['p50']} ms; 1-day search with "
              f"{r['tail_rows_before_merge']} tail rows {r['one_day_search_with_tail_ms']} ms; "
              f"merge {r['merge_s']} s; delete 10 rows {r['delete_10_rows_ms']} ms; "
              f"reopen {r['reopen_ms']} ms + first query {r['first_query_after_reopen_ms']} ms")
    OUT.mkdir(parents=True, exist_ok=True)
    try:  # keep the other sizes of an earlier run (1M is measured on demand)
        earlier = json.loads((OUT / "timeindex.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        earlier = []
    results = sorted([r for r in earlier if r.get("rows") not in args.sizes] + results,
                     key=lambda r: r["rows"])
    report = {"benchmark": "timeindex", "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "platform": platform.platform(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}, "results": results}
    (OUT / "timeindex.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {OUT / 'timeindex.json'}")


if __name__ == "__main__":
    main()
