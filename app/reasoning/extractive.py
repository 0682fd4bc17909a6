"""The answer Daybook gives with no language model: one or two spoken sentences that quote what
was heard (or say what was seen) and when — "At 2:02 this afternoon you said: I lent my blue
umbrella to Peter." The full list of moments travels as the answer's citations."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from app.memory.base import Moment
from app.reasoning.base import Citation, Prompt, Request
from app.reasoning.present import present_answer
from app.reasoning.prompt import spoken_day, spoken_when


def summary_span(m: Moment) -> str:
    """"hour" or "day": what a summary moment sums up."""
    return "day" if m.id.startswith("sum-day-") else "hour"


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip()
    return text if text[-1:] in ".!?…\u201d\"" else text + "."


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def say_moment(m: Moment, now_s: float) -> str:
    """One remembered moment as a spoken sentence."""
    when = spoken_when(m.t0_s, now_s)
    if m.kind == "utterance":
        if m.text:
            return f"{_cap(when)} you said: {_sentence(m.text)}"
        return f"{_cap(when)} I heard {m.sound or 'a sound'}, but no words."
    if m.kind == "summary":
        if summary_span(m) == "day":
            return f"{_cap(spoken_day(m.t0_s, now_s))}, in summary: {_sentence(m.text)}"
        return f"{_cap(when)}, in summary: {_sentence(m.text)}"
    if m.text:
        return f"{_cap(when)} I saw {_sentence(m.text)}"
    return f"{_cap(when)} I saw a scene, which I can show but not yet describe in words."


def spoken_answer(request: Request) -> str:
    if request.present:
        return present_answer(request)
    citations = request.citations
    if not citations:
        where = f" from {request.scope}" if request.scope else ""
        return f"I don't remember anything{where} that matches that."
    first = citations[0]
    said = [say_moment(first.moment, request.now_s)]
    second = _second(first, citations[1:])
    if second is not None:
        sentence = say_moment(second.moment, request.now_s)
        said.append("Also " + sentence[:1].lower() + sentence[1:])
    return " ".join(said)


def _second(first: Citation, rest: list[Citation]) -> Citation | None:
    """A listing of a time range (its moments unranked: score 0) says its first two; a search
    says its best match only (the rest are in the citations)."""
    if first.score > 0.0:
        return None
    return next((c for c in rest if not (c.moment.text and c.moment.text == first.moment.text)),
                None)


class ExtractiveReasoner:
    name = "extractive (no language model)"

    def prepare(self, request: Request) -> Prompt:
        return Prompt(request, [], list(request.citations))

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]:
        for i, sentence in enumerate(_split(spoken_answer(prompt.request))):
            if cancel.is_set():
                return
            yield (" " if i else "") + sentence

    def close(self) -> None:
        pass


def _split(text: str) -> list[str]:
    from app.reasoning.sentences import split_sentences

    return split_sentences(text) or [text]
