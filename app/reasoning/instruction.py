"""Instruction prediction, first version: is an utterance addressed to the assistant?

IXC2.5-OmniLive decides with a model whether what was just said is a question for it. Until a
language model runs here, Daybook uses the wake name from the settings (`[assistant] wake_name`):
an utterance that begins with it ("Daybook, where are my keys?", "hey daybook ...") or ends with
it ("... where are my keys, Daybook?") is a question; everything else is only remembered.

Speech recognisers split and bend unusual names ("day book", "daybooks"), so the name matches
as one to three words run together, within one letter's edit for names of five letters or more.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9']+")
_LEAD = frozenset({"hey", "hi", "ok", "okay", "hello", "so", "um", "uh", "oh", "and", "say"})


def _near(heard: str, name: str) -> bool:
    if heard == name:
        return True
    if len(name) < 5 or abs(len(heard) - len(name)) > 1:
        return False
    # one insertion, deletion or substitution
    if len(heard) == len(name):
        return sum(a != b for a, b in zip(heard, name, strict=True)) == 1
    short, long_ = sorted((heard, name), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _name_span(words: list[str], at: int, name: str, backwards: bool = False) -> int:
    """How many words starting (or, backwards, ending) at `at` spell the name; 0 if none."""
    for n in (1, 2, 3):
        part = words[at - n + 1: at + 1] if backwards else words[at: at + n]
        if len(part) == n and (at - n + 1 >= 0 or not backwards) and _near("".join(part), name):
            return n
    return 0


def addressed_question(text: str, wake_name: str) -> str | None:
    """The question in `text` when it is addressed to `wake_name`, else None."""
    name = re.sub(r"[^a-z0-9]", "", wake_name.lower())
    words = [w.strip("'") for w in _WORD.findall(text.lower())]
    words = [w for w in words if w]
    if not name or not words:
        return None
    start = 0
    while start < min(2, len(words)) and words[start] in _LEAD:
        start += 1
    n = _name_span(words, start, name)
    if n:
        rest = words[start + n:]
    else:
        n = _name_span(words, len(words) - 1, name, backwards=True)
        rest = words[start: len(words) - n] if n else []
    return " ".join(rest) if rest else None
