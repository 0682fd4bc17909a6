"""Reasoning interfaces: an answer and the remembered moments it cites."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.core.timefmt import iso
from app.memory.base import Moment


@dataclass(frozen=True)
class Citation:
    moment: Moment
    score: float
    thumbnail: Path | None

    def to_json(self) -> dict[str, Any]:
        m = self.moment
        return {
            "id": m.id,
            "t0": iso(m.t0_s),
            "t1": iso(m.t1_s),
            "kind": m.kind,
            "text": m.text,
            "sound": m.sound or None,
            "score": round(self.score, 4),
            "thumbnail": str(self.thumbnail) if self.thumbnail else None,
        }


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    scope: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "scope": self.scope,
            "citations": [c.to_json() for c in self.citations],
        }


class Reasoner(Protocol):
    name: str

    def answer(self, question: str, citations: list[Citation], scope: str | None) -> str: ...
