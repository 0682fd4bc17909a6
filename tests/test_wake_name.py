"""The wake name with the built-in recogniser: pocketsphinx's language model does not know
"Daybook", so the name is spotted with its keyphrase search (real pocketsphinx, espeak-ng speech
over room noise, as a microphone hears it)."""

from __future__ import annotations

import numpy as np
import pytest

from app.perception.asr_pocketsphinx import PocketSphinxTranscriber, keyphrase
from app.reasoning.instruction import addressed_question
from tests import mediagen


@pytest.fixture(scope="module")
def sphinx() -> PocketSphinxTranscriber:
    return PocketSphinxTranscriber("Daybook")


def _heard(sphinx: PocketSphinxTranscriber, text: str, seed: int = 0) -> str:
    speech = mediagen.speak(text).astype(np.float32)
    room = np.random.default_rng(seed).normal(0, 30, len(speech) + 16_000).astype(np.float32)
    room[8000:8000 + len(speech)] += speech
    return sphinx.transcribe(room.clip(-32768, 32767).astype(np.int16), 16_000)


def test_the_name_is_spelled_with_dictionary_words() -> None:
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL")
    assert keyphrase(decoder, "Daybook") == "day book"  # not in the dictionary as one word
    assert keyphrase(decoder, "Computer") == "computer"
    assert keyphrase(decoder, "Hey Jarvis") == "hey jarvis"
    assert keyphrase(decoder, "Qxzvbt") is None  # nothing to spot: the plain text is used


@pytest.mark.parametrize("said", [
    "Daybook, where are my keys?",
    "hey Daybook, where are my keys?",
    "Daybook, what did I have for breakfast?",
    "where did I leave my keys, Daybook?",
])
def test_questions_to_daybook_are_heard_as_such(sphinx: PocketSphinxTranscriber,
                                                said: str) -> None:
    heard = _heard(sphinx, said)
    question = addressed_question(heard, "Daybook")
    assert question, heard
    assert "daybook" not in question


@pytest.mark.parametrize("said", [
    "they booked a table for two",  # "day book" spotted first, but no pause after it
    "the book is on the table",
    "my day book is on the shelf",  # not first, not last
    "what did they book for today",
    "I left my keys in the kitchen drawer",
])
def test_other_speech_is_left_as_heard(sphinx: PocketSphinxTranscriber, said: str) -> None:
    heard = _heard(sphinx, said)
    assert addressed_question(heard, "Daybook") is None, heard
    assert "daybook" not in heard


def test_without_a_wake_name_nothing_is_spotted() -> None:
    plain = PocketSphinxTranscriber()
    assert "daybook" not in _heard(plain, "Daybook, where are my keys?")
