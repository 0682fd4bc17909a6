"""Sentences out of a stream of text pieces, for whatever speaks them (one sentence can be
rendered while the next is still being generated)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? … (and closing quotes or brackets after them) followed by space;
# not after a single capital ("J. Smith"), a number's point ("2.5"), or common abbreviations.
_END = re.compile(r"[.!?…]+[\"'\u201d\u2019)\]]*(?=\s)")
_ABBREV = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "no", "approx"})


def _is_end(text: str, match: re.Match[str]) -> bool:
    if match.group().startswith("."):
        before = text[: match.start()].rsplit(None, 1)
        word = before[-1].lower() if before else ""
        if word in _ABBREV or (len(word) == 1 and word.isalpha()):
            return False
    return True


def split_sentences(text: str) -> list[str]:
    """Complete sentences of `text`, the unfinished rest as the last one (whitespace trimmed)."""
    out, start = [], 0
    for m in _END.finditer(text):
        if _is_end(text, m):
            piece = text[start: m.end()].strip()
            if piece:
                out.append(piece)
            start = m.end()
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


class SentenceSplitter:
    """Feed text pieces; complete sentences come out as soon as they are known to be complete
    (the next non-space character has arrived); `flush` gives the rest at the end."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        done: list[str] = []
        start = 0
        for m in _END.finditer(self._buffer):
            if _is_end(self._buffer, m) and self._buffer[m.end():].strip():
                sentence = self._buffer[start: m.end()].strip()
                if sentence:
                    done.append(sentence)
                start = m.end()
        self._buffer = self._buffer[start:]
        return done

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []
