"""Long-term memory written by the language model: when a model is in use, it rewrites the
extractive summary of an hour (or a day) as one or two plain sentences, from the moments that
hour holds and nothing else.

Grounded, and checked: the model sees only that hour's moments, and its summary is kept only
when every name and number in it, and nearly every other content word, is found in them; else
the extractive summary stays. Questions come first: a summary is written only while no answer
is being generated, and a question asked meanwhile cancels it (the extractive one stays).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence

from app.core.timefmt import local_dt
from app.memory.base import Moment
from app.memory.episodes import _STOP
from app.reasoning.base import Prompt, Reasoner, ReasonerError, Request
from app.reasoning.extractive import ExtractiveReasoner
from app.reasoning.prompt import describe, estimate_tokens

log = logging.getLogger(__name__)

SYSTEM = ("You keep a diary of what the user heard and saw. Summarise the notes given in one or "
          "two short sentences. Use only the notes: no names, places, times or facts that are "
          "not in them.")
MAX_TOKENS = 80
BUDGET_TOKENS = 1500  # notes beyond this are left out (the extractive summary's quotes first)
UNSEEN_SHARE = 0.25  # at most this share of a summary's content words may be absent from notes
# Words a summary narrates with, which notes need not contain.
NARRATION = frozenset(re.split(r"\s+", """user you your they talked talk mentioned said says heard hear saw see
seen about discussed spoke noted remembered asked told also then later earlier morning
afternoon evening night hour day scene scenes things something someone people plans planned
need needed wanted diary summary""".strip()))
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']+|\d+")


class ModelSummariser:
    """`rewrite(summary, moments)` for app/memory/integrate.py's Integrator."""

    def __init__(self, reasoner: Callable[[], Reasoner | None],
                 slot: Callable[[], BackgroundSlot | None]) -> None:
        self.reasoner = reasoner  # the one in use, or None: no model, nothing to rewrite
        self.slot = slot
        self.written = 0
        self.rejected = 0

    def rewrite(self, summary: Moment, moments: Sequence[Moment]) -> str | None:
        reasoner, slot = self.reasoner(), self.slot()
        if reasoner is None or slot is None or isinstance(reasoner, ExtractiveReasoner):
            return None
        notes = _notes(summary, moments)
        if not notes:
            return None
        t0, t1 = local_dt(summary.t0_s), local_dt(summary.t1_s)
        span = "day" if summary.id.startswith("sum-day-") else "hour"
        user = (f"Notes from the {span} {t0:%A %d %B, %H:%M}\u2013{t1:%H:%M}:\n" + "\n".join(notes)
                + f"\nSummarise this {span} in one or two short sentences.")
        prompt = Prompt(Request("", [], None, summary.t1_s),
                        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                        [])
        with slot.hold() as cancel:
            if cancel is None:
                return None
            try:
                text = "".join(reasoner.stream(prompt, cancel)).strip()
            except ReasonerError as exc:
                log.info("integration: the model did not write the %s summary (%s)", span, exc)
                return None
            if cancel.is_set():
                return None
        text = " ".join(text.split())
        source = " ".join(m.text for m in moments) + " " + summary.text
        if not text or not grounded(text, source):
            self.rejected += 1
            log.info("integration: the model's %s summary was not grounded in its moments; "
                     "the extractive one is kept", span)
            return None
        self.written += 1
        return f"{t0:%H:%M}\u2013{t1:%H:%M}: {text}"


def _notes(summary: Moment, moments: Sequence[Moment]) -> list[str]:
    """The moments as dated lines, as many as fit (said things first: they carry the facts)."""
    ordered = sorted((m for m in moments if m.text), key=lambda m: (m.kind != "utterance",
                                                                    m.t0_s))
    lines, budget = [], BUDGET_TOKENS
    for m, cost in zip(ordered, estimate_tokens([describe(m) for m in ordered]), strict=True):
        if cost > budget:
            continue
        budget -= cost
        lines.append((m.t0_s, f"- {local_dt(m.t0_s):%H:%M} {describe(m)}"))
    return [line for _, line in sorted(lines)]


def _stem(word: str) -> str:
    word = word.lower().strip("'")
    return word[:4] if len(word) > 4 else word


def grounded(text: str, source: str) -> bool:
    """Is every name and number of `text` in `source`, and nearly every other content word?"""
    seen = {_stem(w) for w in _TOKEN.findall(source)}
    content, unseen = 0, 0
    for match in _TOKEN.finditer(text):
        word = match.group()
        if not word.isdigit() and (word.lower() in _STOP or word.lower() in NARRATION
                                   or len(word) <= 2):
            continue
        content += 1
        if _stem(word) in seen:
            continue
        before = text[: match.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?:"
        if word.isdigit() or (word[0].isupper() and not sentence_start):
            return False  # an invented number or name
        unseen += 1
    return unseen <= UNSEEN_SHARE * max(1, content)


class BackgroundSlot:
    """Model time for background work (summaries), given only while no answer is generated and
    taken back by the next question (see AnswerWorker.background_slot)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._cancel: threading.Event | None = None
        self._guard = threading.Lock()

    def interrupt(self) -> None:
        with self._guard:
            if self._cancel is not None:
                self._cancel.set()

    def hold(self) -> _Held:
        return _Held(self)


class _Held:
    def __init__(self, slot: BackgroundSlot) -> None:
        self.slot = slot
        self.cancel: threading.Event | None = None

    def __enter__(self) -> threading.Event | None:
        if not self.slot._lock.acquire(timeout=1.0):  # an answer is being generated
            return None
        self.cancel = threading.Event()
        with self.slot._guard:
            self.slot._cancel = self.cancel
        return self.cancel

    def __exit__(self, *_: object) -> None:
        if self.cancel is not None:
            with self.slot._guard:
                self.slot._cancel = None
            self.slot._lock.release()
