"""Retrieval: the remembered moments most relevant to a question.

Open questions rank utterances by vector similarity (Chroma's unfiltered HNSW search) plus a
keyword-overlap bonus. A time word ("this morning") restricts the search to that range; a question
that is only a time ("what happened this morning?") lists that range's moments, clips included.
"""

from __future__ import annotations

import datetime as dt

from app.core.config import ReasoningConfig
from app.memory.base import Embedder, MemoryStore, Moment
from app.memory.embed_lexical import stem, words
from app.memory.keyframes import KeyFrameDir
from app.reasoning.base import Answer, Citation, Reasoner
from app.reasoning.instruction import addressed_question
from app.reasoning.timewords import TimeScope, parse_time_scope

KEYWORD_BONUS = 0.3


class Retriever:
    def __init__(
        self, store: MemoryStore, embedder: Embedder, key_frames: KeyFrameDir, cfg: ReasoningConfig,
        *, wake_name: str = "",
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.key_frames = key_frames
        self.cfg = cfg
        self.wake_name = wake_name

    def _asked(self, m: Moment) -> bool:
        """A question said to the assistant: remembered, but it answers nothing (not even
        itself, or a later question like it)."""
        return m.kind == "utterance" and (bool(m.question) or (
            bool(self.wake_name) and addressed_question(m.text, self.wake_name) is not None))

    def retrieve(
        self, question: str, now: dt.datetime | None = None
    ) -> tuple[list[Citation], TimeScope | None]:
        scope = parse_time_scope(question, now)
        terms = {stem(w) for w in words(question)}
        if not terms:
            return self._in_scope(scope, now), scope
        vector = self.embedder.embed([question])[0]
        k = self.cfg.top_k * 4
        hits = self.store.search(vector, k, days=scope.days() if scope else None)
        scored: list[tuple[float, Moment]] = []
        for hit in hits:
            m = hit.moment
            if self._asked(m) or (scope and not (scope.t0_s <= m.t0_s < scope.t1_s)):
                continue
            overlap = len(terms & {stem(w) for w in words(m.text)}) / len(terms)
            if hit.similarity < self.cfg.min_similarity and overlap == 0:
                continue
            scored.append((hit.similarity + KEYWORD_BONUS * overlap, m))
        scored.sort(key=lambda s: -s[0])
        return [self._cite(m, score) for score, m in scored[: self.cfg.top_k]], scope

    def _in_scope(self, scope: TimeScope | None, now: dt.datetime | None) -> list[Citation]:
        if scope is None:  # nothing to go on: the latest moments of today
            today = (now or dt.datetime.now()).date().isoformat()
            moments = self.store.moments_on_day(today)
        else:
            moments = [
                m
                for day in scope.days()
                for m in self.store.moments_on_day(day)
                if scope.t0_s <= m.t0_s < scope.t1_s
            ]
        moments = [m for m in moments if not self._asked(m)]
        # Prefer what was said; fill up with what was seen. Newest first.
        said = [m for m in moments if m.kind == "utterance" and m.text]
        seen = [m for m in moments if m.kind == "clip"]
        picked = (said[::-1] + seen[::-1])[: self.cfg.top_k]
        return [self._cite(m, 0.0) for m in sorted(picked, key=lambda m: m.t0_s)]

    def _cite(self, m: Moment, score: float) -> Citation:
        thumb = (self.key_frames.absolute(m.key_frame) if m.key_frame
                 else self.key_frames.near(m.t0_s, m.t1_s))
        return Citation(moment=m, score=score, thumbnail=thumb)


def answer_question(retriever: Retriever, reasoner: Reasoner, question: str,
                    now: dt.datetime | None = None) -> Answer:
    """Retrieve the moments for a question and let the reasoner answer from them."""
    citations, scope = retriever.retrieve(question, now)
    label = scope.label if scope else None
    return Answer(question, reasoner.answer(question, citations, label), citations, label)
