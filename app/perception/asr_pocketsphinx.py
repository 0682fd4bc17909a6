"""Speech recognition with pocketsphinx's bundled en-us model: rough, but needs no download.

Its language model rarely gets an unusual name right (espeak's "Daybook, what should I water?"
comes out as "do you look what you're going wild"), so the wake name is also *spotted*: each
utterance gets a second, cheap pass with pocketsphinx's keyphrase search (≈0.08 s against ≈0.4 s
for the full decode). Where the name is spotted, the words heard in its place are replaced by the
name, but only when that makes the utterance one addressed to the assistant (the name first,
followed by a pause, or last; `app/reasoning/instruction.py`): "what did they book for today"
spots "day book" in the middle and keeps its text, and "the book is on the table" spots it first
but without the pause of "Daybook, ...".
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import numpy as np

from app.core.errors import BackendUnavailableError
from app.reasoning.instruction import addressed_question

log = logging.getLogger(__name__)

_LM = "_default"
_WAKE = "wake"
LEAD_IN_FRAMES = 60  # 10 ms frames: up to 0.6 s of words before the name is a greeting
PAUSE_FRAMES = 8  # after a name said first, at least 80 ms of silence
# What the language model makes of "hey", "ok", "hi" in front of a name.
_GREETING_AS_HEARD = frozenset({"hey", "hi", "ok", "okay", "hello", "oh", "so", "do", "you",
                                "the", "a", "they", "day", "hay", "hate", "say"})


def keyphrase(decoder: Any, name: str) -> str | None:
    """The wake name in words of the pronouncing dictionary ("Daybook" → "day book"), or None
    when it cannot be spelled with them."""
    words: list[str] = []
    for word in re.findall(r"[a-z']+", name.lower()):
        if decoder.lookup_word(word):
            words.append(word)
            continue
        split = next(((word[:i], word[i:]) for i in range(2, len(word) - 1)
                      if decoder.lookup_word(word[:i]) and decoder.lookup_word(word[i:])), None)
        if split is None:
            return None
        words.extend(split)
    return " ".join(words) or None


def _word(segment_word: str) -> str | None:
    """A dictionary entry as heard: no alternates ("you're(2)"), no fillers ("<sil>", "[NOISE]")."""
    if segment_word.startswith(("<", "[", "+")):
        return None
    return segment_word.split("(")[0]


class PocketSphinxTranscriber:
    name = "pocketsphinx (bundled en-us)"

    def __init__(self, wake_name: str = "") -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise BackendUnavailableError(
                "pocketsphinx is not installed (pip install pocketsphinx)"
            ) from exc
        self._decoder = Decoder(loglevel="FATAL")
        self._lock = threading.Lock()
        self.wake_name = ""
        phrase = keyphrase(self._decoder, wake_name) if wake_name.strip() else None
        if phrase:
            self._decoder.add_keyphrase(_WAKE, phrase)
            self.wake_name = wake_name.strip()
        elif wake_name.strip():
            log.info("the wake name %r is not in pocketsphinx's dictionary: not spotted",
                     wake_name)

    def _decode(self, pcm: bytes, search: str) -> tuple[str, list[tuple[str, int, int]]]:
        d = self._decoder
        d.activate_search(search)
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        segments = [(s.word, s.start_frame, s.end_frame) for s in (d.seg() or [])]
        return (hyp.hypstr.strip() if hyp is not None else ""), segments

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        if sample_rate_hz != 16_000:
            raise ValueError("pocketsphinx expects 16 kHz audio")
        raw = pcm.astype(np.int16).tobytes()
        with self._lock:
            text, segments = self._decode(raw, _LM)
            if not self.wake_name:
                return text
            _, spotted = self._decode(raw, _WAKE)
        if not spotted:
            return text
        return self._named(text, segments, spotted[0][1], spotted[0][2])

    def _named(self, text: str, segments: list[tuple[str, int, int]], start: int,
               end: int) -> str:
        """`text` with the words heard where the name was spotted replaced by the name, if that
        addresses the assistant; else `text` as it was."""
        before, after = [], []
        first_s0: int | None = None
        paused = False
        for seg_word, s0, s1 in segments:
            word = _word(seg_word)
            if word is None:  # silence or noise: is it the pause after the name?
                paused |= (seg_word not in ("<s>", "</s>") and s0 <= end + 10 and s1 > end
                           and s1 - s0 >= PAUSE_FRAMES)
            elif s1 <= start + 5:
                before.append(word)
                first_s0 = s0 if first_s0 is None else first_s0
            elif s1 > end + 5:
                after.append(word)
            # else: heard where the name was said ("do you look"): replaced by it
        if (before and first_s0 is not None and start - first_s0 <= LEAD_IN_FRAMES
                and all(w in _GREETING_AS_HEARD for w in before)):
            before = []  # "hey", as the language model hears it ("do you")
        if not before and after and not paused:
            # Name first needs the pause of "Daybook, ...": without it, "the book is on the
            # table" and "they booked a table" would be questions.
            return text
        named = " ".join([*before, self.wake_name.lower(), *after])
        if addressed_question(named, self.wake_name) is None:
            return text
        return named
