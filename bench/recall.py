"""Retrieval quality: does the retriever find the moment that answers a question?

The scripted day of bench/recall_set.py (74 utterances, 24 clips, 53 questions with their
answers) is stored in a real ChromaMemoryStore (a temp dir) once per embedder: the lexical one
(hashed n-grams), all-MiniLM-L6-v2 int8 from its wheel (the default), and the catalog's fp32
all-MiniLM-L6-v2 when it is installed. The real Retriever (top_k 5) answers every question, and
recall@1/3/5 (the answer among the first 1, 3, 5 citations) is printed per embedder and group:
  paraphrase   the answer in other words
  time         time-scoped questions ("the car this morning", "who called an hour ago")
  untimed      the same questions with their time words removed: what the time words add
  latest       "the last time I …": the newer of two matching moments
in three modes: hybrid (vector + BM25, fused: what the app runs), vector only (the keyword
ranking off) and keyword only (BM25 alone, the same for every embedder). The questions the
default stack (MiniLM int8, hybrid) misses at 3 are listed with what came first. Writes
bench/out/recall.json.

    python bench/recall.py
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.config import ReasoningConfig  # noqa: E402
from app.core.errors import BackendUnavailableError  # noqa: E402
from app.memory.base import Embedder, EmbedderState, Hit, MemoryStore  # noqa: E402
from app.memory.chroma_store import ChromaMemoryStore  # noqa: E402
from app.memory.embed_lexical import LexicalEmbedder  # noqa: E402
from app.memory.keyframes import KeyFrameDir  # noqa: E402
from app.reasoning.retrieve import Retriever  # noqa: E402
from bench import recall_set  # noqa: E402
from bench.recall_set import QUESTIONS, Question  # noqa: E402

OUT = ROOT / "bench" / "out"
TOP_K = 5
MODES = ("hybrid", "vector only", "keyword only")
REPORT_GROUPS = ("paraphrase", "time", "untimed", "latest")


class _KeywordsOff:
    """The store with its full-text index hidden: the retriever fuses the vector ranking alone."""

    def __init__(self, store: ChromaMemoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def keyword_search(self, query: str, k: int, t0_s: float | None = None,
                       t1_s: float | None = None) -> list[Hit]:
        return []


class _VectorsOff(_KeywordsOff):
    """The store with no active vector set: the retriever has only the BM25 ranking."""

    def keyword_search(self, query: str, k: int, t0_s: float | None = None,
                       t1_s: float | None = None) -> list[Hit]:
        return self._store.keyword_search(query, k, t0_s, t1_s)

    def embedder_state(self, wanted: str) -> EmbedderState:
        return EmbedderState(active=None)


def embedders() -> list[Embedder]:
    """The lexical embedder, MiniLM int8 from its wheel, and the catalog's fp32 MiniLM when
    installed (read from the user's data dir; nothing is downloaded)."""
    from app.memory import embed_minilm as minilm

    out: list[Embedder] = [LexicalEmbedder()]
    try:
        out.append(minilm.MiniLMEmbedder(minilm.wheel_model(), minilm.WHEEL_NAME))
    except BackendUnavailableError as exc:
        print(f"skipped {minilm.WHEEL_NAME}: {exc}")
    try:
        from app.core.config import load_config
        from app.core.paths import default_config_path, resolve_data_dir
        from app.pipeline.factory import model_manager

        cfg = load_config(default_config_path())
        paths = resolve_data_dir(None, cfg.storage.data_dir)
        manager = model_manager(cfg, paths) if paths.models.is_dir() else None
        installed = minilm.installed_model(manager)
        if installed is None:
            print(f"skipped {minilm.CATALOG_NAME}: {minilm.CATALOG_MODEL} is not installed")
        else:
            out.append(minilm.MiniLMEmbedder(installed, minilm.CATALOG_NAME))
    except BackendUnavailableError as exc:
        print(f"skipped {minilm.CATALOG_NAME}: {exc}")
    return out


@contextmanager
def day_store(embedder: Embedder) -> Iterator[tuple[ChromaMemoryStore, KeyFrameDir, float]]:
    """The scripted day in a fresh store on a temp dir; yields it, its key-frame dir (empty) and
    the seconds it took to embed and store."""
    with tempfile.TemporaryDirectory(prefix="daybook-recall-") as tmp:
        start = time.perf_counter()
        store = ChromaMemoryStore(Path(tmp) / "chroma")
        said = recall_set.utterances()
        vectors = embedder.embed([m.text for m in said])
        store.add([*zip(said, vectors, strict=True), *recall_set.clips()], embedder.name)
        seconds = time.perf_counter() - start
        try:
            yield store, KeyFrameDir(Path(tmp) / "keyframes"), seconds
        finally:
            store.close()


def retriever(store: ChromaMemoryStore, embedder: Embedder, key_frames: KeyFrameDir,
              mode: str) -> Retriever:
    view: object = {"hybrid": store, "vector only": _KeywordsOff(store),
                    "keyword only": _VectorsOff(store)}[mode]
    return Retriever(cast(MemoryStore, view), embedder, key_frames, ReasoningConfig(top_k=TOP_K))


def ask(r: Retriever, question: Question, untimed: bool = False) -> list[str]:
    cites, _ = r.retrieve(question.untimed if untimed else question.text, question.now)
    return [c.moment.id for c in cites]


def run_mode(r: Retriever) -> dict[str, Any]:
    """Every question (and every time-scoped one without its time words) through `r`: recall
    per group, each question's rank of its answer (None: not in the top 5), query times."""
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    for q in QUESTIONS:
        for untimed in (False, True) if q.group == "time" else (False,):
            start = time.perf_counter()
            ids = ask(r, q, untimed)
            seconds.append(time.perf_counter() - start)
            rank = ids.index(q.answer) + 1 if q.answer in ids else None
            rows.append({"group": "untimed" if untimed else q.group,
                         "question": q.untimed if untimed else q.text, "answer": q.answer,
                         "rank": rank, "top": ids[:3]})
    recall = {}
    for group in REPORT_GROUPS:
        ranks = [row["rank"] for row in rows if row["group"] == group]
        recall[group] = {"n": len(ranks), **{
            f"r@{k}": round(sum(1 for x in ranks if x is not None and x <= k) / len(ranks), 3)
            for k in (1, 3, 5)}}
    return {"recall": recall, "questions": rows,
            "query_ms_p50": round(statistics.median(seconds) * 1000, 2)}


def evaluate(embedder: Embedder, modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    with day_store(embedder) as (store, key_frames, load_s):
        out: dict[str, Any] = {"load_s": round(load_s, 2)}
        for mode in modes:
            out[mode] = run_mode(retriever(store, embedder, key_frames, mode))
        return out


def _pct(x: float) -> str:
    return f"{x * 100:3.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    recall_set.check()
    groups = {g: sum(q.group == g for q in QUESTIONS) for g in recall_set.GROUPS}
    print(f"set: {len(recall_set.SCRIPT)} utterances, {len(recall_set.clips())} clips, "
          f"{len(QUESTIONS)} questions {groups}")
    results: dict[str, Any] = {}
    for i, embedder in enumerate(embedders()):
        modes = MODES if i == 0 else MODES[:2]  # BM25 alone does not depend on the embedder
        results[embedder.name] = evaluate(embedder, modes)
    header = f"{'embedder':26} {'mode':13}" + "".join(
        f" {g + ' @1/@3/@5':>22}" for g in REPORT_GROUPS) + f" {'ms/query':>9}"
    print(header)
    for name, res in results.items():
        for mode in MODES:
            if mode not in res:
                continue
            rec = res[mode]["recall"]
            cells = "".join(
                f" {_pct(rec[g]['r@1'])} {_pct(rec[g]['r@3'])} {_pct(rec[g]['r@5'])} "
                f"(n={rec[g]['n']:2})".rjust(23) for g in REPORT_GROUPS)
            label = "(any)" if mode == "keyword only" else name
            print(f"{label:26} {mode:13}{cells} {res[mode]['query_ms_p50']:>9}")
    for name, res in results.items():
        if name == "lexical (hashed n-grams)":
            continue
        for mode in ("hybrid", "vector only"):
            misses = [row for row in res[mode]["questions"]
                      if row["group"] != "untimed" and (row["rank"] or 99) > 3]
            print(f"\n{name}, {mode}: {len(misses)} questions not answered in the top 3")
            for row in misses:
                print(f"  [{row['group']}] {row['question']!r} → {row['answer']} "
                      f"(rank {row['rank'] or '>5'}); first: {', '.join(row['top'])}")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "recall", "top_k": TOP_K, "set": {
        "utterances": len(recall_set.SCRIPT), "clips": len(recall_set.clips()),
        "questions": groups}, "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform()}, "results": results}
    (OUT / "recall.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {OUT / 'recall.json'}")


if __name__ == "__main__":
    main()
