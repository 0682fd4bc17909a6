"""The wake name with the default recogniser (Moonshine, from its wheel): matched only in what
was really heard, never spotted or biased towards (real Moonshine, espeak-ng speech in two
accents over room noise, as a microphone hears it). bench/hearing.py measures precision and
recall on a larger set."""

from __future__ import annotations

import numpy as np
import pytest

from app.reasoning.instruction import addressed_question
from tests import mediagen

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moonshine():
    from app.perception.asr_moonshine import MoonshineTranscriber

    return MoonshineTranscriber(threads=1)


def _heard(asr, text: str, voice: str) -> str:
    speech = mediagen.speak(text, voice=voice).astype(np.float32)
    room = np.random.default_rng(0).normal(0, 30, len(speech) + 16_000).astype(np.float32)
    room[8000:8000 + len(speech)] += speech
    return asr.transcribe(room.clip(-32768, 32767).astype(np.int16), 16_000)


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
@pytest.mark.parametrize(("said", "question"), [
    ("Daybook, where are my keys?", "where are my keys"),
    ("hey Daybook, what did I have for breakfast?", "breakfast"),
    ("where did I leave my keys, Daybook?", "where did i leave my keys"),
])
def test_questions_to_daybook_are_heard_as_such(moonshine, voice: str, said: str,
                                                question: str) -> None:
    heard = _heard(moonshine, said, voice)
    asked = addressed_question(heard, "Daybook")
    assert asked and question in asked, heard


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
@pytest.mark.parametrize("said", [
    "the book is on the table",
    "my day book is on the shelf",
    "I put the car keys in the blue notebook",
    "daybreak was beautiful this morning",
    "they look tired today",
    "what did they book for today",
])
def test_other_speech_is_left_as_heard(moonshine, voice: str, said: str) -> None:
    heard = _heard(moonshine, said, voice)
    assert addressed_question(heard, "Daybook") is None, heard
