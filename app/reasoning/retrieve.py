"""Retrieval: the remembered moments most relevant to a question (hybrid search).

Two rankings are fused by reciprocal rank (RRF, which needs no common scale): vector similarity
from the store's active embedder (and, while the store re-embeds, from the new embedder's
partial set too), and BM25 keyword matching from the store's full-text index. A vector hit below
its embedder's `min_similarity` is dropped unless the words match too. Time words restrict both
searches to their range ("this morning", "at 3 pm"), and within a range the moments nearest its
middle get a small boost; "the last time I …" puts the most recent of the relevant matches
first; a range where nothing matches falls back to all of memory (the time words may be the
topic: "what happens on Thursday?"). A question that is only a time ("what happened this morning?") lists that range's
moments, clips included. Equal scores are ordered newer first, then by id: ranking is
deterministic.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import numpy as np

from app.core.config import ReasoningConfig
from app.memory.base import Embedder, Hit, MemoryStore, Moment
from app.memory.keyframes import KeyFrameDir
from app.memory.sidecar import match_query
from app.reasoning.base import Citation
from app.reasoning.instruction import addressed_question
from app.reasoning.present import PRESENT_S
from app.reasoning.timewords import TimeScope, parse_time_scope, wants_latest

# Words that only place a question in time (the time words parser reads them) or ask for a
# listing: searched for, they would match every moment that mentions "morning".
_TIME_WORDS = frozenset(re.split(r"\s+", """
morning mornings afternoon evening night tonight today yesterday week weeks month months year
day days hour hours minute minutes ago last past earlier recently just now around noon midnight
am pm this an o'clock oclock monday tuesday wednesday thursday friday saturday sunday january february
march april may june july august september october november december happened happen happening
going on time times first latest recent before after since
""".strip()))
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def content_of(question: str) -> str:
    """The question without its time words and numbers: what to search for."""
    return " ".join(w for w in _WORD.findall(question.lower())
                    if w not in _TIME_WORDS and not w.isdigit())


SUMMARISED_RANGE_S = 3 * 3600.0  # "what did I do yesterday?": its summaries come first
RRF_K = 20  # rank constant: with few candidates, a small one keeps the first ranks apart
# The BM25 ranking's weight in the fusion (vectors: 1). Measured by bench/recall.py: at 1, words
# shared with unrelated moments pull them up (paraphrase recall@1 66 %, @3 91 %); at 0.5 BM25
# still decides among close vector matches (75 %, 94 %) and time-scoped recall@3 stays 100 %.
KEYWORD_WEIGHT = 0.5
TIME_BOOST = 0.2  # × 1/RRF_K at the middle of a time word's range, 0 at its edges
# "The last time I …": vector matches this close to the best one, and the best keyword match,
# are the relevant ones; the newest of them comes first.
LATEST_MARGIN = 0.1
PREFETCH_KEPT = 8  # question vectors embedded ahead (a question cancelled before retrieval)


# What a question asks for (by its opening words), and how a moment that holds that kind of
# thing reads. Among close matches, one that holds it is preferred: "when am I seeing the
# dentist?" wants "the dentist moved to Friday at ten", not "the dentist's waiting room smells
# of mint". Measured by bench/recall.py and bench/reason.py: at 0.15 paraphrase recall@1/@3
# went from 75/94 % to 78/97 % and the extractive answer held the fact in 18 of 24 answers
# (17 before); at 0.3, @1 fell back to 75 %.
ANSWER_BOOST = 0.15  # × 1/RRF_K for a moment that holds what the question asks for
_ASKS = (
    ("time", re.compile(r"^(when|what time|what day|which day|what date|how long|how soon|"
                        r"until when|by when)\b")),
    ("place", re.compile(r"^(where|in which|which room)\b")),
    ("person", re.compile(r"^(who|whom|whose|which person|what(?:'s| is| was) (?:the|his|her|"
                          r"their) name)\b")),
    ("number", re.compile(r"^(how many|how much|what number|which number|what(?:'s| is| was) "
                          r"the (?:code|password|pin|number|price|cost|combination))\b")),
)
_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
                 r"twenty|thirty|forty|fifty|hundred|thousand")
_HOLDS = {
    "time": re.compile(
        r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|"
        r"april|june|july|august|september|october|november|december|today|tomorrow|tonight|"
        r"yesterday|noon|midnight|weekend|next week|o'clock|half past|quarter (?:past|to)|"
        r"\d{1,2}(?::\d\d)?\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}(?:st|nd|rd|th)|"
        rf"(?:at|by|until|before|after) (?:\d{{1,2}}|{_NUMBER_WORDS})\b)", re.IGNORECASE),
    "place": re.compile(r"\b(?:in|on|under|behind|beside|inside|near|next to|by|at|into|"
                        r"on top of|in front of) (?:the|my|your|his|her|our|their|a|an)\b",
                        re.IGNORECASE),
    "person": re.compile(r"(?<![.!?]\s)(?<!^)\b(?!I\b|I'[a-z]+\b)[A-Z][a-z]+|\b(?:mum|mom|dad|"
                         r"brother|sister|neighbou?r|friend|boss|colleague|wife|husband|"
                         r"partner|son|daughter|aunt|uncle|grandma|grandpa)\b"),
    "number": re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE),
}


def asks_for(question: str) -> str | None:
    """"time", "place", "person" or "number": what the question's opening words ask for."""
    q = " ".join(_WORD.findall(question.lower().replace("\u2019", "'")))
    for kind, pattern in _ASKS:
        if pattern.search(q):
            return kind
    return None


def holds(kind: str, text: str) -> bool:
    """Does `text` hold the kind of thing `asks_for` named?"""
    return bool(_HOLDS[kind].search(text))


class Retriever:
    def __init__(
        self, store: MemoryStore, embedder: Embedder, key_frames: KeyFrameDir, cfg: ReasoningConfig,
        *, wake_name: str = "", others: list[Embedder] | None = None,
    ) -> None:
        """`embedder`: the configured one (the store builds its vectors when they are not
        there yet); `others`: embedders the store's older vector sets may need meanwhile."""
        self.store = store
        self.embedder = embedder
        self.key_frames = key_frames
        self.cfg = cfg
        self.wake_name = wake_name
        self.embedders = {e.name: e for e in [*(others or []), embedder]}
        self._prefetched: dict[tuple[str, str], np.ndarray] = {}
        self._prefetch_lock = threading.Lock()

    def prefetch(self, question: str) -> None:
        """Embed `question` now for its `retrieve` to come. A spoken question calls this before
        it waits for the memory worker to store what was heard before it (embedding that too),
        so the two embeddings run side by side instead of one after the other."""
        content = content_of(question)
        if not match_query(content):
            return
        state = self.store.embedder_state(self.embedder.name)
        for name in (state.active, state.building):
            embedder = self.embedders.get(name) if name else None
            if embedder is not None and name is not None:
                vector = embedder.embed([content])[0]
                with self._prefetch_lock:
                    if len(self._prefetched) >= PREFETCH_KEPT:
                        self._prefetched.clear()
                    self._prefetched[(name, content)] = vector

    def _vector(self, embedder: Embedder, name: str, content: str) -> np.ndarray:
        with self._prefetch_lock:
            vector = self._prefetched.pop((name, content), None)
        return embedder.embed([content])[0] if vector is None else vector

    def _asked(self, m: Moment) -> bool:
        """A question said to the assistant: remembered, but it answers nothing (not even
        itself, or a later question like it)."""
        return m.kind == "utterance" and (bool(m.question) or (
            bool(self.wake_name) and addressed_question(m.text, self.wake_name) is not None))

    def _min_similarity(self, embedder: Embedder) -> float:
        return self.cfg.min_similarity or embedder.min_similarity

    def retrieve(
        self, question: str, now: dt.datetime | None = None
    ) -> tuple[list[Citation], TimeScope | None]:
        scope = parse_time_scope(question, now)
        content = content_of(question)
        if not match_query(content):
            return self._in_scope(scope, now), scope
        kind = asks_for(question)
        scored, relevant = self._ranked(content, content, scope, kind)
        if not scored and scope is not None:
            # Nothing in the range: the time words may be what was talked about ("what
            # happens on Thursday?"), not when. Search all of memory, time words included.
            scope = None
            scored, relevant = self._ranked(content, question, None, kind)
        if scored and wants_latest(question):
            # The newest of the relevant matches first, then the others as ranked.
            scored = (sorted((s for s in scored if s[1].id in relevant),
                             key=lambda s: (-s[1].t0_s, s[1].id))
                      + [s for s in scored if s[1].id not in relevant])
        return [self._cite(m, score) for score, m in scored[: self.cfg.top_k]], scope

    def _ranked(self, content: str, words: str, scope: TimeScope | None,
                kind: str | None = None) -> tuple[list[tuple[float, Moment]], set[str]]:
        """Vector rankings of `content` and the keyword ranking of `words`, fused; and the ids
        of the clearly relevant ones (for "the last time I …")."""
        t0_s, t1_s = (scope.t0_s, scope.t1_s) if scope else (None, None)
        k = self.cfg.top_k * 4
        rankings: list[tuple[float, list[Hit]]] = []
        relevant: set[str] = set()
        state = self.store.embedder_state(self.embedder.name)
        for name in (state.active, state.building):
            embedder = self.embedders.get(name) if name else None
            if embedder is None or name is None:
                continue
            vector = self._vector(embedder, name, content)
            floor = self._min_similarity(embedder)
            hits = [h for h in self.store.search(vector, k, t0_s, t1_s, embedder=name)
                    if h.similarity >= floor and not self._asked(h.moment)]
            if hits:
                relevant |= {h.moment.id for h in hits
                             if h.similarity >= hits[0].similarity - LATEST_MARGIN}
            rankings.append((1.0, hits))
        hits = [h for h in self.store.keyword_search(words, k, t0_s, t1_s)
                if not self._asked(h.moment)]
        if hits:
            relevant.add(hits[0].moment.id)
        rankings.append((KEYWORD_WEIGHT, hits))
        return fuse(rankings, scope, kind), relevant

    def present(self, now_s: float) -> list[Citation]:
        """The latest clip the camera gave (app/reasoning/present.py), if it is recent."""
        clips = self.store.moments_between(now_s - PRESENT_S, now_s + 1.0, kinds=("clip",))
        return [self._cite(clips[-1], 0.0)] if clips else []

    def _in_scope(self, scope: TimeScope | None, now: dt.datetime | None) -> list[Citation]:
        if scope is None:  # nothing to go on: the latest moments of today
            today = (now or dt.datetime.now()).date().isoformat()
            moments = self.store.moments_on_day(today)
        else:
            moments = self.store.moments_between(scope.t0_s, scope.t1_s)
        moments = [m for m in moments if not self._asked(m)]
        # A range of hours is told by its summaries first (the day's, then its hours'); then
        # what was said, then what was seen, newest first.
        summaries: list[Moment] = []
        if scope is not None and scope.t1_s - scope.t0_s >= SUMMARISED_RANGE_S:
            summaries = sorted(self.store.moments_between(scope.t0_s, scope.t1_s,
                                                          kinds=("summary",)),
                               key=lambda m: (not m.id.startswith("sum-day-"), m.t0_s))
        said = [m for m in moments if m.kind == "utterance" and m.text]
        seen = [m for m in moments if m.kind == "clip"]
        picked = (summaries + said[::-1] + seen[::-1])[: self.cfg.top_k]
        return [self._cite(m, 0.0) for m in sorted(picked, key=lambda m: (m.kind != "summary",
                                                                          m.t0_s))]

    def _cite(self, m: Moment, score: float) -> Citation:
        thumb = (self.key_frames.absolute(m.key_frame) if m.key_frame
                 else self.key_frames.near(m.t0_s, m.t1_s))
        return Citation(moment=m, score=score, thumbnail=thumb)


def fuse(rankings: list[tuple[float, list[Hit]]], scope: TimeScope | None,
         kind: str | None = None) -> list[tuple[float, Moment]]:
    """Weighted reciprocal-rank fusion of several rankings, plus a boost near the middle of a
    time range and one for moments that hold what the question asks for (`kind`, see
    `asks_for`); best first, ties newer first, then by id."""
    scores: dict[str, float] = {}
    moments: dict[str, Moment] = {}
    for weight, ranking in rankings:
        for rank, hit in enumerate(ranking):
            moments[hit.moment.id] = hit.moment
            scores[hit.moment.id] = (scores.get(hit.moment.id, 0.0)
                                     + weight / (RRF_K + rank + 1))
    if scope is not None and scope.t1_s > scope.t0_s:
        middle, half = (scope.t0_s + scope.t1_s) / 2, (scope.t1_s - scope.t0_s) / 2
        for id_, m in moments.items():
            closeness = max(0.0, 1.0 - abs(m.t0_s - middle) / half)
            scores[id_] += TIME_BOOST * closeness / RRF_K
    if kind is not None and ANSWER_BOOST:
        for id_, m in moments.items():
            if m.kind != "summary" and m.text and holds(kind, m.text):
                scores[id_] += ANSWER_BOOST / RRF_K
    ranked = sorted(moments.values(), key=lambda m: (-scores[m.id], -m.t0_s, m.id))
    return [(scores[m.id], m) for m in ranked]
