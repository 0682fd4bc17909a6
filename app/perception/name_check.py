"""Was the wake name said? A check of the recogniser's own reading against the audio.

Moonshine hears a spoken "Daybook" as "they book", "hey, look", "Hey, babe", "David", and often
drops it altogether when it ends a question ("What was the name of that restaurant?"); matching
the name in the text alone (app/reasoning/instruction.py) finds about half of the questions put
to it. Nothing here changes what the recogniser wrote: the transcript stays its own greedy
reading. After it has written its text, the same model is asked how likely a few readings with
the name are, for the same audio: the words at the start (after a greeting) replaced by the
name, the last words replaced by it, or the name added at the end. A reading counts when the
model finds it at most `MAX_LOSS_NATS` less likely than its own text (log-probability of the
whole token sequence, end token included) and what is then asked of the name is a question or
a request. The question is carried beside the transcript (`UtteranceTranscribed.question`).

On a generated set (12 questions with the name first, after "hey"/"okay", or last, by five
voices — Piper and four espeak-ng voices — and 22 near misses: notebook, daybreak, "they booked a
table", "hey, book a table", "the book is on the table"; plus ordinary sentences), readings with
the name scored 0 to −9 nats for questions put to Daybook (garbled ones lower) and −9 to −29 for
the rest. With the check, 53 of 60 questions were found, and none of 87 other utterances was
taken for one; 5 of the 7 misses are espeak's en-us+f3 voice, whose "Daybook" Moonshine hears
as "name up". It costs one more decoder pass, over about seven sequences at once.
bench/hearing.py measures precision, recall and time on its own set.

Pure logic on token ids: the model's scoring is a function passed in (`score`), so this module
needs no model to be tested.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.reasoning.instruction import GREETINGS, addressed_question

MAX_LOSS_NATS = 9.0
MAX_WORDS = 40  # longer utterances are not checked: no one says that much to a wake name
MAX_REPLACED = 2  # words at the start or end the name may have been heard as
SPACE = "▁".encode()
PUNCT = (b",", b".", b"?", b"!", b'"', b":", b";")

# What a question or request put to the assistant starts with (after the name).
_ASKING_WORDS = """
what where when who whom whose why how which is are was were am do does did can could will
would should shall have has had tell remind show find give read say play stop repeat list
what's where's when's who's how's whats wheres
"""
_ASKING = frozenset(_ASKING_WORDS.split())


def asks(question: str, heard: str) -> bool:
    """Is `question` (what follows or precedes the name) asked, rather than said in passing?
    It starts with a question word or a request, or the recogniser itself heard a question
    (`heard`, its own text, ends with a question mark)."""
    first = question.split()[0] if question.split() else ""
    return first in _ASKING or heard.rstrip().rstrip('"').endswith("?")


@dataclass(frozen=True)
class Vocabulary:
    """The recogniser's token pieces (bytes, "▁" marking a word's start) and their ids."""

    pieces: Sequence[bytes]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {p: i for i, p in enumerate(self.pieces)})

    def id(self, piece: bytes) -> int | None:
        return self._index.get(piece)  # type: ignore[attr-defined]

    def encode_word(self, word: str, first_id: int = 259) -> list[int] | None:
        """The word as pieces, longest first from the left (SentencePiece's own split may
        differ; the model scores either). Ids below `first_id` (special and byte tokens) are
        not used. None when a part of it is not in the vocabulary."""
        b = SPACE + word.encode()
        out: list[int] = []
        while b:
            for n in range(len(b), 0, -1):
                i = self.id(b[:n])
                if i is not None and i >= first_id:
                    out.append(i)
                    b = b[n:]
                    break
            else:
                return None
        return out


def _groups(ids: list[int], vocab: Vocabulary) -> list[list[int]]:
    """Token ids grouped into words (a piece starting with "▁" starts one); punctuation stays
    with the word before it."""
    groups: list[list[int]] = []
    for t in ids:
        piece = vocab.pieces[t] if 0 <= t < len(vocab.pieces) else b""
        if piece.startswith(SPACE) or not groups:
            groups.append([t])
        else:
            groups[-1].append(t)
    return groups


def _word(group: list[int], vocab: Vocabulary) -> str:
    text = b"".join(vocab.pieces[t] for t in group).decode("utf-8", errors="replace")
    return re.sub(r"[^a-z0-9']", "", text.replace("▁", "").lower())


def _bare(group: list[int], vocab: Vocabulary) -> list[int]:
    """The word without the punctuation after it."""
    out = list(group)
    while out and vocab.pieces[out[-1]] in PUNCT:
        out.pop()
    return out


def readings(ids: list[int], name_ids: list[int], vocab: Vocabulary) -> list[list[int]]:
    """Token sequences that say the name where it is said to an assistant: the first one or two
    words (after up to two greetings) replaced by it, or the last one or two words replaced by
    it, or it added at the end."""
    comma, qmark = vocab.id(b","), vocab.id(b"?")
    if comma is None or qmark is None:
        return []
    groups = _groups(ids, vocab)
    words = [_word(g, vocab) for g in groups]
    greetings = 0
    while greetings < min(2, len(words)) and words[greetings] in GREETINGS:
        greetings += 1
    out: list[list[int]] = []
    for g in range(greetings + 1):
        for k in range(1, MAX_REPLACED + 1):
            if g + k < len(groups):
                out.append([t for w in groups[:g] for t in w] + name_ids + [comma]
                           + [t for w in groups[g + k:] for t in w])
    for k in range(MAX_REPLACED + 1):
        if len(groups) - k >= 2:
            body = groups[:len(groups) - k]
            out.append([t for w in body[:-1] for t in w] + _bare(body[-1], vocab)
                       + [comma] + name_ids + [qmark])
    return out


@dataclass(frozen=True)
class NameCheck:
    question: str  # what was asked of the name ("" when it was not said)
    reading: str  # the reading with the name that was scored best ("" when none was)
    loss_nats: float  # how much less likely the model found it than its own text


def check_name(ids: list[int], wake_name: str, vocab: Vocabulary,
               decode: Callable[[list[int]], str],
               score: Callable[[list[list[int]]], list[float]]) -> NameCheck:
    """Is `wake_name` said, with a question, in the audio the recogniser read as `ids`?

    `score(sequences)` gives the model's log-probability of each token sequence (end token
    included) for the same audio; the first sequence passed is the recogniser's own."""
    text = decode(ids)
    found = addressed_question(text, wake_name)
    if found:  # the name is in the text as heard
        return NameCheck(found, text, 0.0)
    name = wake_name.strip()
    if not name or not ids or len(text.split()) > MAX_WORDS:
        return NameCheck("", "", float("inf"))
    name_ids: list[int] = []
    for part in name.split():
        word_ids = vocab.encode_word(part)
        if word_ids is None:
            return NameCheck("", "", float("inf"))
        name_ids += word_ids
    options = readings(ids, name_ids, vocab)
    if not options:
        return NameCheck("", "", float("inf"))
    scores = score([ids, *options])
    own = scores[0]
    best = max(range(len(options)), key=lambda i: scores[i + 1])
    loss = own - scores[best + 1]
    reading = decode(options[best])
    if loss <= MAX_LOSS_NATS:
        question = addressed_question(reading, wake_name)
        if question and asks(question, text):
            return NameCheck(question, reading, loss)
    return NameCheck("", reading, loss)
