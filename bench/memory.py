"""The memory store at scale: ChromaMemoryStore (embedded) filled with a year of moments.

For each size (default 10k and 100k; `--sizes 1000000` on demand: ≈15 min and 2-3 GB of disk)
a fresh store in a temp dir gets text moments with 384-d vectors (embedder name "bench-384"),
added in time order in batches of 256: clustered unit vectors (2,000 centres + noise, as in
shared/notes/MEMORY_SCALE.md), t0 spread over one year, short generated sentences (so the
full-text index has content). Prints and writes bench/out/memory.json:
  - add throughput (moments/s),
  - search p50/p95 (k=5) for open questions (no range) and for 1-hour, 1-day, 7-day and 30-day
    ranges, and keyword_search (BM25, two words),
  - RSS of this process after loading and after the queries (psutil),
  - bytes on disk per moment (the Chroma dir + the index dir),
  - reopening: a new process opens the store (constructor) and runs its first search,
and compares with the targets: p95 ≤ 50 ms with and without a time scope at 1M moments.
The default run writes memory.json; other sizes memory-<sizes>.json (beside it, not over it).

    python bench/memory.py [--sizes 10000,100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.memory.base import Moment  # noqa: E402
from app.memory.chroma_store import ChromaMemoryStore  # noqa: E402

OUT = ROOT / "bench" / "out"
EMBEDDER = "bench-384"
DIM = 384
CENTRES = 2_000
NOISE = 0.5  # norm of the noise added to a unit centre: ≈0.9 cosine within a cluster
BATCH = 256
K = 5
YEAR_S = 365 * 86_400
START_S = 1_767_225_600.0  # 2026-01-01 00:00 UTC
RANGES_S = {"1 hour": 3_600, "1 day": 86_400, "7 days": 7 * 86_400, "30 days": 30 * 86_400}
TARGET_P95_MS = 50.0
TARGET_SIZE = 1_000_000

# Sentences: a few frame words and a vocabulary of made-up words whose use falls off like
# words in speech (Zipf), so a keyword matches many moments or few.
_SYLLABLES = [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]
_FRAME = ("i", "the", "we", "said", "to", "and", "it", "was", "at", "with", "on", "for")


def vocabulary(n: int = 5_000, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < n:
        k = int(rng.integers(2, 4))
        words["".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), k))] = None
    return list(words)


class Generator:
    """Moments in time order, made batch by batch (a million vectors never sit in memory)."""

    def __init__(self, n: int, seed: int = 7) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        centres = self.rng.standard_normal((CENTRES, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.t0 = np.sort(START_S + self.rng.random(n) * YEAR_S)
        self.words = vocabulary()
        weights = 1.0 / np.arange(1, len(self.words) + 1) ** 1.1
        self.word_p = weights / weights.sum()

    def vectors(self, m: int) -> np.ndarray:
        noise = self.rng.standard_normal((m, DIM)).astype(np.float32)
        noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
        v = self.centres[self.rng.integers(0, CENTRES, m)] + noise
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def text(self) -> str:
        content = self.rng.choice(len(self.words), int(self.rng.integers(3, 7)), p=self.word_p)
        frame = self.rng.choice(len(_FRAME), 3)
        return " ".join([*(_FRAME[int(i)] for i in frame), *(self.words[int(i)] for i in content)])

    def batches(self, batch: int = BATCH) -> Iterator[list[tuple[Moment, np.ndarray]]]:
        for start in range(0, self.n, batch):
            end = min(start + batch, self.n)
            vecs = self.vectors(end - start)
            yield [(Moment(f"m{i:07d}", "utterance", float(self.t0[i]), float(self.t0[i]) + 4.0,
                           self.text(), sound="speech"), vecs[i - start])
                   for i in range(start, end)]

    def query_words(self) -> str:
        """Two content words of the 1,000 most used."""
        return " ".join(self.words[int(i)] for i in self.rng.choice(1_000, 2, replace=False))


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 1e6, 1)


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    a = np.array(times)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2),
            "max_ms": round(float(a.max()), 2), "n": n}


_REOPEN = """
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[2])
from app.memory.chroma_store import ChromaMemoryStore
start = time.perf_counter()
import chromadb  # the store imports it on open: timed apart
imported = time.perf_counter()
store = ChromaMemoryStore(Path(sys.argv[1]))
opened = time.perf_counter()
v = np.random.default_rng(0).standard_normal(384).astype(np.float32)
store.search(v / np.linalg.norm(v), 5, embedder=sys.argv[3])
first = time.perf_counter()
print(json.dumps({"import_chromadb_s": round(imported - start, 3),
                  "open_s": round(opened - imported, 3), "first_search_s": round(first - opened, 3)}))
"""


def reopen(path: Path) -> dict[str, float]:
    """Open the store in a new process (Chroma caches clients by path within a process) and run
    one open search; the child's own timings (`import chromadb` apart) and the whole process's."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _REOPEN, str(path), str(ROOT), EMBEDDER],
                         check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - start, 2)
    return result


def run_size(n: int, queries: int, folder: Path, batch: int = BATCH) -> dict[str, Any]:
    gen = Generator(n)
    path = folder / "chroma"
    rss_before = rss_mb()
    store = ChromaMemoryStore(path)
    start = time.perf_counter()
    last_report = start
    for i, items in enumerate(gen.batches(batch)):
        store.add(items, EMBEDDER)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            done = (i + 1) * batch
            print(f"  {n:,}: {done:,} added, {done / (last_report - start):,.0f}/s", flush=True)
    add_s = time.perf_counter() - start
    gc.collect()
    rss_loaded = rss_mb()
    print(f"  {n:,}: added in {add_s:.1f} s", flush=True)

    span_lo, span_hi = float(gen.t0[0]), float(gen.t0[-1])
    searches: dict[str, Any] = {}

    def query() -> np.ndarray:
        return gen.vectors(1)[0]

    searches["open"] = timed(lambda: store.search(query(), K, embedder=EMBEDDER), queries)
    for name, width in RANGES_S.items():
        def scoped(width: float = width) -> object:
            t0 = span_lo + gen.rng.random() * (span_hi - span_lo - width)
            return store.search(query(), K, t0, t0 + width, embedder=EMBEDDER)

        searches[name] = timed(scoped, queries)
    searches["keyword"] = timed(lambda: store.keyword_search(gen.query_words(), K), queries)
    rss_queried = rss_mb()
    store.close()
    disk = dir_bytes(path) + dir_bytes(folder / "chroma-index")
    return {
        "moments": n,
        "add_s": round(add_s, 1),
        "add_per_s": round(n / add_s),
        "search": searches,
        "rss_mb": {"before": rss_before, "after_load": rss_loaded, "after_queries": rss_queried},
        "disk_bytes": disk,
        "disk_bytes_per_moment": round(disk / n),
        "disk_mb": {"chroma": round(dir_bytes(path) / 1e6, 1),
                    "index": round(dir_bytes(folder / "chroma-index") / 1e6, 1)},
        "reopen": reopen(path),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated store sizes (1000000 takes ≈15 min)")
    parser.add_argument("--queries", type=int, default=200, help="searches per kind and size")
    parser.add_argument("--dir", default="", help="where the stores go (default: a temp dir)")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help="moments per add (the app's writer: 32–256; 4096 fills 1M faster)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results: dict[str, Any] = {}
    total = time.perf_counter()
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="daybook-memory-", dir=args.dir or None) as tmp:
            results[str(n)] = run_size(n, args.queries, Path(tmp), args.batch)
    total_s = time.perf_counter() - total

    kinds = ["open", *RANGES_S, "keyword"]
    print(f"\n{'moments':>9} {'add/s':>7} " + " ".join(f"{k:>15}" for k in kinds)
          + f" {'RSS load/query MB':>18} {'B/moment':>9} {'reopen s':>9} {'1st search s':>12}")
    print(f"{'':>9} {'':>7} " + " ".join(f"{'p50 / p95 ms':>15}" for _ in kinds))
    for size, r in results.items():
        cells = " ".join(f"{r['search'][k]['p50_ms']:>6.1f} / {r['search'][k]['p95_ms']:>6.1f}"
                         for k in kinds)
        rss = f"{r['rss_mb']['after_load']:.0f} / {r['rss_mb']['after_queries']:.0f}"
        print(f"{int(size):>9,} {r['add_per_s']:>7,} {cells} {rss:>18} "
              f"{r['disk_bytes_per_moment']:>9,} {r['reopen']['open_s']:>9} "
              f"{r['reopen']['first_search_s']:>12}")
    target = results.get(str(TARGET_SIZE))
    if target is None:
        print(f"\ntarget (p95 ≤ {TARGET_P95_MS:g} ms at {TARGET_SIZE:,}, with and without a time "
              f"scope): not measured here; run --sizes {TARGET_SIZE}")
    else:
        for k in kinds[:-1]:
            p95 = target["search"][k]["p95_ms"]
            verdict = "met" if p95 <= TARGET_P95_MS else "MISSED"
            print(f"target p95 ≤ {TARGET_P95_MS:g} ms at {TARGET_SIZE:,}, {k}: {p95} ms, {verdict}")
    print(f"total {total_s:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "memory", "embedder": EMBEDDER, "dim": DIM, "batch": args.batch, "k": K,
              "target": {"moments": TARGET_SIZE, "p95_ms": TARGET_P95_MS},
              "total_s": round(total_s), "machine": {
                  "cpus": os.cpu_count(), "python": platform.python_version(),
                  "platform": platform.platform()}, "results": results}
    name = "memory.json" if sizes == [10_000, 100_000] else \
        f"memory-{'-'.join(str(s) for s in sizes)}.json"
    (OUT / name).write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
