"""Instruction prediction by wake name: which utterances are questions for the assistant."""

from __future__ import annotations

import pytest

from app.reasoning.instruction import addressed_question


@pytest.mark.parametrize(("heard", "question"), [
    ("Daybook, what did I have for breakfast?", "what did i have for breakfast"),
    ("hey daybook where are my keys", "where are my keys"),
    ("ok day book when is the meeting", "when is the meeting"),  # split by the recogniser
    ("daybooks what did alice say", "what did alice say"),  # one letter off
    ("where did I leave the keys, Daybook?", "where did i leave the keys"),  # name at the end
])
def test_addressed_utterances_become_questions(heard: str, question: str) -> None:
    assert addressed_question(heard, "Daybook") == question


@pytest.mark.parametrize("heard", [
    "I wrote it in my day planner",  # the name is not there
    "the daybook is on the shelf",  # mentioned, not addressed
    "daybook",  # the name alone asks nothing
    "",
    "they look at the book",
])
def test_other_speech_is_only_remembered(heard: str) -> None:
    assert addressed_question(heard, "Daybook") is None


def test_short_names_must_match_exactly_and_the_name_is_configurable() -> None:
    assert addressed_question("max what time is it", "Max") == "what time is it"
    assert addressed_question("mix what time is it", "Max") is None
    assert addressed_question("jarvis lights", "Jarvis") == "lights"
    assert addressed_question("daybook lights", "Jarvis") is None
    assert addressed_question("daybook lights", "") is None


def test_the_name_alone_is_a_call_and_the_question_may_follow() -> None:
    from app.reasoning.instruction import only_name, question_text

    for text in ["Daybook.", "Okay, daybook.", "Hey, Day book!"]:
        assert only_name(text, "Daybook"), text
    for text in ["", "hey", "Daybook, where are my keys?", "my daybook", "the day book"]:
        assert not only_name(text, "Daybook"), text
    assert question_text("Where did I park the car?") == "where did i park the car"
