"""The answer path: the prompt (paper order, fitted by rank, never an item cut), sentences out
of a token stream, the spoken extractive answer, and the answer stage (one generation at a time,
cancelled by a new question or Stop between tokens, the extractive answer when the model fails,
the settings reaching every part)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.config import ReasoningConfig
from app.core.events import (
    AnswerChunk,
    AnswerFinished,
    AnswerSentence,
    AnswerStarted,
    ClipClosed,
    EngineFailed,
    EngineRecovered,
    UtteranceTranscribed,
)
from app.memory.base import Moment
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore
from app.memory.keyframes import KeyFrameDir
from app.pipeline.answer import AnswerWorker
from app.pipeline.runtime import EventBus
from app.reasoning.base import Answer, Citation, Prompt, ReasonerError, Request
from app.reasoning.extractive import spoken_answer
from app.reasoning.prompt import build_prompt, spoken_when
from app.reasoning.retrieve import Retriever
from app.reasoning.sentences import SentenceSplitter, split_sentences

NOW = dt.datetime(2026, 11, 24, 15, 0).timestamp()


def at(h: int, m: int = 0, day: int = 24) -> float:
    return dt.datetime(2026, 11, day, h, m).timestamp()


def said(i: int, t: float, text: str) -> Citation:
    return Citation(Moment(f"utt-{i}", "utterance", t, t + 3, text), 1.0 / (i + 1), None)


# --- the prompt ----------------------------------------------------------------------------


def test_the_prompt_is_in_the_papers_order_with_times() -> None:
    clip = Citation(Moment("clip-1", "clip", at(14, 1), at(14, 2), n_frames=12), 0.5, None)
    cites = [said(0, at(14, 2), "I lent my blue umbrella to Peter"), clip,
             said(2, at(9, 30), "buy milk and eggs at the shop")]
    prompt = build_prompt(Request("who has my umbrella?", cites, None, NOW),
                          context_tokens=2048, answer_tokens=160)
    system, user = prompt.messages
    assert system["role"] == "system" and "Never make anything up" in system["content"]
    text = user["content"]
    assert text.index("Current time: Tuesday 24 November 2026, 3:00 pm") < text.index(
        "Question: who has my umbrella?") < text.index(
        "Here is the question related video clip: [Tue 24 Nov 14:01\u201314:02] saw a scene "
        "of 12 frames") < text.index("Here is the question related memory:") < text.index(
        "- [Tue 24 Nov 14:02\u201314:02] heard: \u201cI lent my blue umbrella to Peter\u201d"
    ) < text.index("buy milk")
    assert prompt.cited == cites  # all fitted, in rank order


def test_the_prompt_keeps_what_fits_by_rank_and_never_cuts_an_item() -> None:
    long = "word " * 300
    cites = [said(0, at(10), "the first and best match"), said(1, at(11), long),
             said(2, at(12), "a short third one")]
    prompt = build_prompt(Request("q?", cites, None, NOW), context_tokens=400,
                          answer_tokens=100)
    # The long second item does not fit whole: it is left out, the third still fits.
    assert [c.moment.id for c in prompt.cited] == ["utt-0", "utt-2"]
    assert "word word" not in prompt.messages[1]["content"]
    tiny = build_prompt(Request("q?", cites, None, NOW), context_tokens=140, answer_tokens=100)
    assert tiny.cited == []
    assert "(nothing related is remembered)" in tiny.messages[1]["content"]


def test_the_prompt_counts_with_the_models_tokenizer() -> None:
    counted: list[list[str]] = []

    def count(texts: list[str]) -> list[int]:
        counted.append(texts)
        return [1000 if "expensive" in t else 5 for t in texts]

    cites = [said(0, at(10), "an expensive memory"), said(1, at(11), "a cheap one")]
    prompt = build_prompt(Request("q?", cites, None, NOW), context_tokens=600,
                          answer_tokens=100, count=count)
    assert [c.moment.id for c in prompt.cited] == ["utt-1"]
    assert len(counted) == 1  # one batch: one round trip to a model's tokenizer


# --- sentences -------------------------------------------------------------------------------


def test_sentences_come_out_as_soon_as_they_are_complete() -> None:
    s = SentenceSplitter()
    out = []
    for piece in ["At 2:0", "2 you said", ": I lent it to Mr.", " Smith. It", " cost 2.5", " euros!",
                  " Then"]:
        out.append(s.feed(piece))
    assert out == [[], [], [], ["At 2:02 you said: I lent it to Mr. Smith."], [], [],
                   ["It cost 2.5 euros!"]]
    assert s.flush() == ["Then"]
    assert split_sentences("One. Two? Three") == ["One.", "Two?", "Three"]


# --- the spoken extractive answer ------------------------------------------------------------


@pytest.mark.parametrize(("t", "said_as"), [
    (at(14, 2), "at 2:02 this afternoon"), (at(9, 5), "at 9:05 this morning"),
    (at(2, 30), "at 2:30 last night"), (at(20, 15, day=23), "yesterday at 8:15 pm"),
    (at(8, 0, day=20), "on Friday at 8:00 am"), (at(8, 0, day=3), "on 3 November at 8:00 am"),
])
def test_when_is_said_as_people_say_it(t: float, said_as: str) -> None:
    assert spoken_when(t, NOW) == said_as


def test_the_extractive_answer_is_one_spoken_sentence_with_when() -> None:
    cites = [said(0, at(14, 2), "I lent my blue umbrella to Peter"),
             said(1, at(9, 0), "umbrellas are on sale")]
    assert spoken_answer(Request("who has my umbrella?", cites, None, NOW)) == (
        "At 2:02 this afternoon you said: I lent my blue umbrella to Peter.")
    assert spoken_answer(Request("x?", [], "this morning", NOW)) == (
        "I don't remember anything from this morning that matches that.")


# --- the answer stage ------------------------------------------------------------------------


class Slow:
    """A reasoner that says a word every `delay_s`, for as long as it is let."""

    name = "slow test model"

    def __init__(self, words: int = 100, delay_s: float = 0.02) -> None:
        self.words, self.delay_s = words, delay_s
        self.made = 0
        self.cancelled_at: float | None = None
        self.last_made_at = 0.0

    def prepare(self, request: Request) -> Prompt:
        return Prompt(request, [{"role": "user", "content": request.question}],
                      request.citations[:1])

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]:
        for i in range(self.words):
            if cancel.is_set():
                return
            time.sleep(self.delay_s)
            self.made += 1
            self.last_made_at = time.monotonic()
            yield f"word{i}. " if i % 3 == 2 else f"word{i} "

    def close(self) -> None:
        pass


class Failing(Slow):
    name = "failing test model"

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]:
        for i, piece in enumerate(super().stream(prompt, cancel)):
            if i == self.after:
                raise ReasonerError("cannot reach the language model server at 127.0.0.1:9 "
                                    "(connection refused)")
            yield piece


@pytest.fixture
def stage(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = InMemoryStore()
    e = LexicalEmbedder()
    text = "I lent my blue umbrella to Peter"
    store.add([(Moment("utt-1", "utterance", at(14, 2), at(14, 2) + 3, text),
                e.embed([text])[0])], e.name)
    retriever = Retriever(store, e, KeyFrameDir(tmp_path), ReasoningConfig(),
                          wake_name="Daybook")
    bus = EventBus()
    events: list[object] = []
    bus.subscribe(events.append)
    box: dict[str, object] = {"reasoner": Slow()}
    worker = AnswerWorker(retriever, lambda: box["reasoner"], bus,  # type: ignore[arg-type,return-value]
                          wake_name=lambda: "Daybook", wait_stored=lambda _id, _t: True,
                          now=lambda: NOW)
    worker.start()
    yield worker, events, box
    worker.close()


def _finished(events: list[object], qid: int) -> Answer | None:
    for e in events:
        if isinstance(e, AnswerFinished) and e.question_id == qid:
            assert isinstance(e.answer, Answer)
            return e.answer
    return None


def _wait(events: list[object], qid: int, timeout_s: float = 10.0) -> Answer:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = _finished(events, qid)
        if answer is not None:
            return answer
        time.sleep(0.01)
    raise AssertionError(f"question {qid} was not answered in {timeout_s} s")


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_an_answer_streams_in_pieces_and_sentences(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage
    box["reasoner"] = Slow(words=6, delay_s=0.0)
    qid = worker.ask("who has my umbrella?")
    answer = _wait(events, qid)
    mine = [e for e in events if getattr(e, "question_id", None) == qid]
    assert isinstance(mine[0], AnswerStarted) and mine[0].reasoner == "slow test model"
    assert [e.text for e in mine if isinstance(e, AnswerChunk)] == [
        "word0 ", "word1 ", "word2. ", "word3 ", "word4 ", "word5. "]
    assert [e.text for e in mine if isinstance(e, AnswerSentence)] == [
        "word0 word1 word2.", "word3 word4 word5."]
    assert answer.text == "word0 word1 word2. word3 word4 word5."
    assert answer.reasoner == "slow test model" and not answer.interrupted
    assert [c.moment.id for c in answer.citations] == ["utt-1"]  # what the prompt held


def test_a_new_question_cancels_the_running_answer_between_tokens(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage
    slow = Slow(words=1000, delay_s=0.02)
    box["reasoner"] = slow
    first = worker.ask("who has my umbrella?")
    _until(lambda: any(isinstance(e, AnswerChunk) for e in events))
    box["reasoner"] = Slow(words=3, delay_s=0.0)  # for the second (the first has its own)
    second = worker.ask("who has my umbrella, again?")
    stopped = _wait(events, first)
    assert stopped.interrupted and stopped.text.startswith("word0")
    assert slow.made < 50  # it did not go on generating
    assert not _wait(events, second).interrupted
    # One generation at a time: the second started after the first finished.
    order = [(type(e).__name__, e.question_id) for e in events
             if isinstance(e, AnswerStarted | AnswerFinished)]
    assert order == [("AnswerStarted", first), ("AnswerFinished", first),
                     ("AnswerStarted", second), ("AnswerFinished", second)]


def test_stop_ends_the_answer_within_one_token(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage
    slow = Slow(words=1000, delay_s=0.05)
    box["reasoner"] = slow
    qid = worker.ask("who has my umbrella?")
    _until(lambda: slow.made >= 2)
    made_at_stop = slow.made
    assert worker.stop_answer()
    answer = _wait(events, qid)
    assert answer.interrupted
    assert slow.made <= made_at_stop + 1
    assert not worker.stop_answer()  # nothing left to stop


def test_a_failing_model_gives_the_extractive_answer_and_says_why(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage
    box["reasoner"] = Failing(after=2)
    qid = worker.ask("who has my umbrella?")
    answer = _wait(events, qid)
    assert answer.text == ("word0 word1 …\n"
                           "At 2:02 this afternoon you said: I lent my blue umbrella to Peter.")
    assert answer.reasoner == "extractive (no language model)"
    assert answer.note is not None and "connection refused" in answer.note
    assert [c.moment.id for c in answer.citations] == ["utt-1"]
    failed = [e for e in events if isinstance(e, EngineFailed)]
    assert len(failed) == 1 and failed[0].engine == "language model"
    # Once the model answers again, that is said too.
    box["reasoner"] = Slow(words=2, delay_s=0.0)
    assert _wait(events, worker.ask("again?")).reasoner == "slow test model"
    assert sum(isinstance(e, EngineRecovered) for e in events) == 1


def test_a_bug_in_a_reasoner_still_ends_in_an_answer(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage

    class Broken(Slow):
        def prepare(self, request: Request) -> Prompt:
            raise KeyError("choices")

    box["reasoner"] = Broken()
    answer = _wait(events, worker.ask("who has my umbrella?"))
    assert answer.reasoner == "extractive (no language model)" and "umbrella" in answer.text
    assert answer.note == "the language model failed: KeyError: 'choices'"


def test_a_question_heard_goes_through_the_door(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage
    box["reasoner"] = Slow(words=2, delay_s=0.0)
    worker.offer(UtteranceTranscribed("utt-9", "Daybook, who has my umbrella?", at(14, 3),
                                      at(14, 4), "speech", "test"))
    worker.offer(UtteranceTranscribed("utt-10", "nice weather today", at(14, 5), at(14, 6),
                                      "speech", "test"))
    _until(lambda: any(isinstance(e, AnswerFinished) for e in events))
    started = [e for e in events if isinstance(e, AnswerStarted)]
    assert [(e.question, e.spoken) for e in started] == [("who has my umbrella", True)]


def test_a_spoken_question_waits_for_what_was_heard_before_it_not_for_itself(
        tmp_path: Path) -> None:
    """The memory stores first in, first out: the moment heard (or seen) just before a question
    being stored means everything before it is searchable. The question's own utterance answers
    nothing, so its answer does not wait for it to be stored."""
    store = InMemoryStore()
    e = LexicalEmbedder()
    retriever = Retriever(store, e, KeyFrameDir(tmp_path), ReasoningConfig(),
                          wake_name="Daybook")
    bus = EventBus()
    events: list[object] = []
    bus.subscribe(events.append)
    waited: list[str] = []

    def wait_stored(moment_id: str, _timeout_s: float) -> bool:
        waited.append(moment_id)
        fact = "I lent my blue umbrella to Peter"  # stored only now: the answer must find it
        store.add([(Moment("utt-1", "utterance", at(14, 2), at(14, 2) + 3, fact),
                    e.embed([fact])[0])], e.name)
        return True

    worker = AnswerWorker(retriever, lambda: Slow(words=0), bus, wake_name=lambda: "Daybook",
                          wait_stored=wait_stored, now=lambda: NOW)
    worker.start()
    try:
        worker.offer(UtteranceTranscribed("utt-1", "I lent my blue umbrella to Peter", at(14, 2),
                                          at(14, 2) + 3, "speech", "test"))
        worker.offer(ClipClosed("clip-1", at(14, 2) + 1, at(14, 2) + 4, 8,
                                np.zeros((4, 4, 3), np.uint8), np.ones(8, np.float32)))
        worker.offer(UtteranceTranscribed("utt-2", "Daybook, who has my umbrella?", at(14, 3),
                                          at(14, 4), "speech", "test"))
        _until(lambda: any(isinstance(x, AnswerFinished) for x in events))
    finally:
        worker.close()
    assert waited == ["clip-1"]  # the last moment before the question, not "utt-2"
    answer = next(x.answer for x in events if isinstance(x, AnswerFinished))
    assert [c.moment.id for c in answer.citations] == ["utt-1"]


def test_a_question_before_anything_was_heard_waits_for_nothing(stage) -> None:  # type: ignore[no-untyped-def]
    worker, events, box = stage
    box["reasoner"] = Slow(words=1, delay_s=0.0)
    worker.wait_stored = lambda _id, _t: pytest.fail("nothing was heard before the question")
    worker.offer(UtteranceTranscribed("utt-9", "Daybook, who has my umbrella?", at(14, 3),
                                      at(14, 4), "speech", "test"))
    _until(lambda: any(isinstance(e, AnswerFinished) for e in events))


@pytest.mark.parametrize("question", [
    "what am I holding?", "What do you see?", "Can you see this?", "what's this?",
    "what is in front of me", "what colour is this", "describe what you see",
    "What does it look like?", "what am I looking at"])
def test_questions_about_now(question: str) -> None:
    from app.reasoning.present import asks_about_now

    assert asks_about_now(question)


@pytest.mark.parametrize("question", [
    "what did I see at 8?", "what is this meeting about?", "what was I holding yesterday?",
    "where are my keys?", "what am I doing tomorrow?", "who did I see this morning?"])
def test_questions_about_memory_are_not_about_now(question: str) -> None:
    from app.reasoning.present import asks_about_now

    assert not asks_about_now(question)


def test_a_question_about_now_is_answered_from_the_latest_clip_plainly(stage) -> None:  # type: ignore[no-untyped-def]
    """With no vision model, Daybook says it cannot put what it sees into words, with the
    camera's latest view; the language model (which cannot see) is not asked."""
    worker, events, box = stage
    box["reasoner"] = Slow(words=3, delay_s=0.0)
    store = worker.retriever.store
    store.add([(Moment("clip-old", "clip", NOW - 600, NOW - 590, n_frames=10),
                np.ones(256, np.float32)),
               (Moment("clip-now", "clip", NOW - 20, NOW - 4, n_frames=16),
                np.ones(256, np.float32))], "visual")
    answer = _wait(events, worker.ask("what am I holding?"))
    assert [c.moment.id for c in answer.citations] == ["clip-now"]
    assert answer.reasoner == "extractive (no language model)"
    assert answer.text.startswith("I can't say in words what I see: no vision model is installed")
    assert answer.text.endswith("Here is what the camera saw at 2:59 this afternoon.")

    store.delete(["clip-now"])  # the camera gave nothing in the last minute
    answer = _wait(events, worker.ask("what do you see?"))
    assert answer.citations == []
    assert answer.text == ("I can't see anything right now: the camera has shown me nothing "
                           "in the last minute.")


def test_with_a_vision_model_the_question_is_asked_of_the_latest_frame(stage) -> None:  # type: ignore[no-untyped-def]
    from app.perception.caption import CaptionError

    worker, events, box = stage
    box["reasoner"] = Slow(words=3, delay_s=0.0)
    asked: list[str] = []

    def look(question: str) -> str:
        asked.append(question)
        return "You are holding a red mug"

    worker.see_now = look
    answer = _wait(events, worker.ask("what am I holding?"))
    assert asked == ["what am I holding?"]  # the question itself goes to the vision model
    assert answer.text == "Looking at the camera now: you are holding a red mug."

    def broken(question: str) -> str:
        raise CaptionError("the vision model is unavailable (it crashed)")

    worker.see_now = broken  # answered all the same, plainly
    answer = _wait(events, worker.ask("what do you see?"))
    assert answer.text.startswith("I can't see anything right now")
