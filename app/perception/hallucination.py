"""A guard against text a speech recogniser made up rather than heard.

Sequence-to-sequence recognisers (Moonshine, Whisper) write text one token at a time and can get
stuck: "to to to to to", "thank you. thank you. thank you.", or far more words than the audio
could hold. `guard_transcript` is a pure function of the text and the audio's length:

- a loop that makes up most of the text (the same word 4+ times in a row, or the same 2–8 words
  3+ times in a row) drops the text;
- a shorter loop is cut to one copy ("buy milk milk milk milk and bread" → "buy milk and bread"),
  keeping what was heard around it;
- text that is too long for the audio (more than 6 words or 40 characters a second, plus a little
  slack for short clips: fast speech is about 4 words a second) is dropped;
- text with no letter or digit ("...", "♪") is dropped.
"""

from __future__ import annotations

import re

MAX_WORDS_PER_S = 6.0
SLACK_WORDS = 3
MAX_CHARS_PER_S = 40.0
SLACK_CHARS = 20
MAX_NGRAM = 8
LOOP_SHARE = 0.6  # a loop covering this share of the words: nothing in the text is trusted


def _min_repeats(n: int) -> int:
    """Consecutive copies of an n-word group that make a loop ("no no no" is still speech)."""
    return 4 if n == 1 else 3


def _norm(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


def find_loop(words: list[str], max_n: int = MAX_NGRAM) -> tuple[int, int, int] | None:
    """The longest run of an n-word group repeated back to back, as (start, n, copies), or None.

    `words` are compared as given (normalise them first)."""
    best: tuple[int, int, int] | None = None
    for n in range(1, max_n + 1):
        for i in range(len(words) - 2 * n + 1):
            group = words[i:i + n]
            copies = 1
            while words[i + copies * n:i + (copies + 1) * n] == group:
                copies += 1
            if copies >= _min_repeats(n) and (best is None or copies * n > best[1] * best[2]):
                best = (i, n, copies)
    return best


def guard_transcript(text: str, duration_s: float) -> str:
    """`text` as heard in `duration_s` seconds of audio, with loops cut, or "" where it looks
    made up (see the module's docstring)."""
    words = [w for w in text.split() if _norm(w)]
    if not words:
        return ""
    while (loop := find_loop([_norm(w) for w in words])) is not None:
        start, n, copies = loop
        if n * copies >= LOOP_SHARE * len(words):
            return ""
        words = words[:start + n] + words[start + n * copies:]
    out = " ".join(words)
    duration_s = max(duration_s, 0.0)
    if (len(words) > SLACK_WORDS + MAX_WORDS_PER_S * duration_s
            or len(out) > SLACK_CHARS + MAX_CHARS_PER_S * duration_s):
        return ""
    return out
