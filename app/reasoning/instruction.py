"""Instruction prediction, first version: is an utterance addressed to the assistant?

IXC2.5-OmniLive decides with a model whether what was just said is a question for it. Until a
language model runs here, Daybook uses the wake name from the settings (`[assistant] wake_name`):
an utterance that begins with it ("Daybook, where are my keys?", "hey daybook ...") or ends with
it ("... where are my keys, Daybook?") is a question; everything else is only remembered.

Speech recognisers split and bend unusual names (Moonshine writes a spoken "Daybook" as "Day
book", "Maybook" or "Paybook"), so the name matches as one to three words run together, within
one letter's edit for names of five letters or more, said first (after a greeting or not) or
last. Nothing biases the recogniser towards the name: it is matched in what was really heard.
Where the recogniser bent it further ("they book", "hey, look") or dropped it, the recogniser's
own check of readings with the name against the audio (app/perception/name_check.py) finds the
question; it travels beside the transcript. Measured by bench/hearing.py (precision and recall
on a generated set of addressed and other utterances, notebook/daybreak/"they look" included).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

_WORD = re.compile(r"[a-z0-9']+")
GREETINGS = frozenset({"hey", "hi", "ok", "okay", "hello"})
_LEAD = GREETINGS | {"so", "um", "uh", "oh", "and", "say"}


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (letters of a word, words of a sentence)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _near(heard: str, name: str) -> bool:
    # One letter ("maybook"), not two ("hey book" for "hey, book a table for two").
    allowed = 1 if len(name) >= 5 else 0
    return abs(len(heard) - len(name)) <= allowed and edit_distance(heard, name) <= allowed


def _name_span(words: list[str], at: int, name: str, backwards: bool = False) -> int:
    """How many words starting (or, backwards, ending) at `at` spell the name; 0 if none."""
    for n in (1, 2, 3):
        part = words[at - n + 1: at + 1] if backwards else words[at: at + n]
        if len(part) == n and (at - n + 1 >= 0 or not backwards) and _near("".join(part), name):
            return n
    return 0


def _words(text: str) -> list[str]:
    return [w for w in (w.strip("'") for w in _WORD.findall(text.lower())) if w]


def question_text(text: str) -> str:
    """An utterance as a question: its words, lower case, no punctuation (as addressed_question
    gives them)."""
    return " ".join(_words(text))


def only_name(text: str, wake_name: str) -> bool:
    """Is `text` the name alone ("Daybook.", "Hey, Daybook")? The question may follow it."""
    name = re.sub(r"[^a-z0-9]", "", wake_name.lower())
    words = _words(text)
    start = 0
    while start < min(2, len(words)) and words[start] in _LEAD and not _name_span(
            words, start, name):
        start += 1
    return bool(name) and start < len(words) and _name_span(words, start, name) == len(
        words) - start


def addressed_question(text: str, wake_name: str) -> str | None:
    """The question in `text` when it is addressed to `wake_name`, else None."""
    name = re.sub(r"[^a-z0-9]", "", wake_name.lower())
    words = _words(text)
    if not name or not words:
        return None
    start = 0
    n = _name_span(words, 0, name)  # "hey book": the name as heard, greeting-like
    while not n and start < min(2, len(words)) and words[start] in _LEAD:
        start += 1
        n = _name_span(words, start, name)
    if n:
        rest = words[start + n:]
    else:
        n = _name_span(words, len(words) - 1, name, backwards=True)
        rest = words[start: len(words) - n] if n else []
    return " ".join(rest) if rest else None
