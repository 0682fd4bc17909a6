"""Reasoning interfaces: a question's context, the streaming `Reasoner`, and the answer with the
remembered moments it cites."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.core.errors import DaybookError
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
class Request:
    """What a reasoner answers from: the question, the retrieved moments best first, the time
    words' range ("this morning") if any, and the time of asking (epoch seconds)."""

    question: str
    citations: list[Citation]
    scope: str | None
    now_s: float
    present: bool = False  # about what the camera sees now (app/reasoning/present.py)
    seen_now: str = ""  # the vision model's answer from the camera's latest frame, if it has one


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    scope: str | None = None
    reasoner: str = ""  # the name of what answered
    interrupted: bool = False  # stopped before its end (a new question, Stop, barge-in)
    note: str | None = None  # why the language model did not answer, when it did not

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "scope": self.scope,
            "reasoner": self.reasoner,
            "interrupted": self.interrupted,
            "note": self.note,
            "citations": [c.to_json() for c in self.citations],
        }


class ReasonerError(DaybookError):
    """The language model could not answer (unreachable, refused, crashed, stalled, gave
    nonsense). The caller answers extractively instead; nothing is lost."""


@dataclass(frozen=True)
class Prompt:
    """A request made ready for one reasoner: chat messages (OpenAI format; empty for the
    extractive answer) and the citations that fitted in them, best first."""

    request: Request
    messages: list[dict[str, str]]
    cited: list[Citation]


class Reasoner(Protocol):
    """Answers from remembered moments. `prepare` fits the request into the model's context
    (may raise ReasonerError); `stream` yields the answer's text in pieces as it is generated,
    and stops between pieces once `cancel` is set (may raise ReasonerError, also mid-stream)."""

    name: str

    def prepare(self, request: Request) -> Prompt: ...

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]: ...

    def close(self) -> None: ...
