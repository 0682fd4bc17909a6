"""The wake name with the default recogniser (Moonshine, from its wheel): the transcript is what
was really heard, never biased towards the name; the name is found in it, or by the model's check
of readings with the name against the audio (app/perception/name_check.py). Real Moonshine,
espeak-ng speech in two accents over room noise, as a microphone hears it. bench/hearing.py
measures precision and recall on a larger set."""

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


def _heard(asr, text: str, voice: str) -> tuple[str, str]:
    speech = mediagen.speak(text, voice=voice).astype(np.float32)
    room = np.random.default_rng(0).normal(0, 30, len(speech) + 16_000).astype(np.float32)
    room[8000:8000 + len(speech)] += speech
    return asr.transcribe_addressed(room.clip(-32768, 32767).astype(np.int16), 16_000,
                                    "Daybook")


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
@pytest.mark.parametrize(("said", "question"), [
    ("Daybook, where are my keys?", "where are my keys"),
    ("hey Daybook, what did I have for breakfast?", "breakfast"),
    ("where did I leave my keys, Daybook?", "where did i leave my keys"),
])
def test_questions_to_daybook_are_heard_as_such(moonshine, voice: str, said: str,
                                                question: str) -> None:
    heard, asked = _heard(moonshine, said, voice)
    assert asked and question in asked, heard
    assert "daybook" not in heard.lower() or addressed_question(heard, "Daybook") == asked


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
@pytest.mark.parametrize("said", [
    "the book is on the table",
    "my day book is on the shelf",
    "I put the car keys in the blue notebook",
    "daybreak was beautiful this morning",
    "they look tired today",
    "what did they book for today",
    "hey, book a table for two at eight",
    "they booked a table for eight on Friday",
])
def test_other_speech_is_left_as_heard(moonshine, voice: str, said: str) -> None:
    heard, asked = _heard(moonshine, said, voice)
    assert asked == "", heard
    assert addressed_question(heard, "Daybook") is None, heard
