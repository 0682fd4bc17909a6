from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from app.core.config import ReasoningConfig
from app.memory.base import Hit, Moment
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore
from app.memory.keyframes import KeyFrameDir
from app.reasoning.base import Request
from app.reasoning.extractive import spoken_answer
from app.reasoning.retrieve import Retriever, asks_for, fuse, holds

MORNING = dt.datetime(2026, 11, 24, 9, 0).timestamp()
NOW = dt.datetime(2026, 11, 24, 15, 0)


def _setup(tmp_path: Path) -> tuple[Retriever, KeyFrameDir]:
    store = InMemoryStore()
    e = LexicalEmbedder()
    said = [(0, "I left my keys in the kitchen drawer"), (600, "lunch with Sam at noon"),
            (-86_400, "the keys to the shed are lost")]
    items = [(Moment(f"utt-{i}", "utterance", MORNING + dt_s, MORNING + dt_s + 3, text),
              e.embed([text])[0]) for i, (dt_s, text) in enumerate(said)]
    keys = KeyFrameDir(tmp_path)
    rel = keys.write(np.full((48, 64, 3), 128, np.uint8), MORNING - 5, MORNING + 10)
    items.append((Moment("clip-0", "clip", MORNING - 5, MORNING + 10, key_frame=rel, n_frames=15),
                  np.ones(256, np.float32)))
    store.add(items, e.name)
    return Retriever(store, e, keys, ReasoningConfig()), keys


def test_question_finds_the_utterance_and_its_key_frame(tmp_path: Path) -> None:
    retriever, keys = _setup(tmp_path)
    cites, scope = retriever.retrieve("did I put the keys in the kitchen?", NOW)
    assert scope is None
    assert [c.moment.id for c in cites][:2] == ["utt-0", "utt-2"]
    assert cites[0].thumbnail == keys.near(MORNING, MORNING + 3)
    assert cites[0].thumbnail is not None and cites[0].thumbnail.is_file()
    text = spoken_answer(Request("keys?", cites, None, NOW.timestamp()))
    # The best match, said with when; the shed keys (yesterday) rank too far below to be said.
    assert text == "At 9:00 this morning you said: I left my keys in the kitchen drawer."


def test_a_question_embedded_ahead_is_embedded_once_and_found_the_same(
        tmp_path: Path) -> None:
    retriever, _ = _setup(tmp_path)
    question = "did I put the keys in the kitchen?"
    expected = [c.moment.id for c in retriever.retrieve(question, NOW)[0]]
    calls: list[list[str]] = []
    embed = retriever.embedder.embed

    def counted(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return embed(texts)

    retriever.embedders[retriever.embedder.name].embed = counted  # type: ignore[method-assign]
    retriever.prefetch(question)
    assert len(calls) == 1
    assert [c.moment.id for c in retriever.retrieve(question, NOW)[0]] == expected
    assert len(calls) == 1  # the vector embedded ahead was used
    retriever.retrieve(question, NOW)
    assert len(calls) == 2  # and used once: a later question is embedded afresh


def test_time_words_restrict_the_search(tmp_path: Path) -> None:
    retriever, _ = _setup(tmp_path)
    cites, scope = retriever.retrieve("what did I say about keys this morning", NOW)
    assert scope is not None and scope.label == "this morning"
    assert [c.moment.id for c in cites] == ["utt-0"]
    cites, _ = retriever.retrieve("keys yesterday", NOW)
    assert [c.moment.id for c in cites] == ["utt-2"]


def test_time_only_question_lists_the_range_including_clips(tmp_path: Path) -> None:
    retriever, _ = _setup(tmp_path)
    cites, scope = retriever.retrieve("what happened this morning?", NOW)
    assert scope is not None
    assert [c.moment.id for c in cites] == ["clip-0", "utt-0", "utt-1"]
    text = spoken_answer(Request("?", cites, scope.label, NOW.timestamp()))
    # A listing is unranked: its first two moments are said.
    assert text == ("At 8:59 this morning I saw a scene, which I can show but not yet describe in "
                    "words. "
                    "Also at 9:00 this morning you said: I left my keys in the kitchen drawer.")


def test_unrelated_question_finds_nothing(tmp_path: Path) -> None:
    retriever, _ = _setup(tmp_path)
    cites, _ = retriever.retrieve("volcano eruption", NOW)
    assert cites == []
    assert spoken_answer(Request("volcano eruption", cites, None, NOW.timestamp())) == (
        "I don't remember anything that matches that.")


def test_key_frame_lookup_by_time(tmp_path: Path) -> None:
    keys = KeyFrameDir(tmp_path, max_width=32)
    img = np.zeros((100, 200, 3), np.uint8)
    a = keys.write(img, 1000.0, 1010.0)
    b = keys.write(img, 1010.0, 1020.0)
    assert keys.near(1012.0, 1014.0) == keys.absolute(b)
    assert keys.near(1001.0, 1003.0) == keys.absolute(a)
    assert keys.near(1030.0, 1031.0) == keys.absolute(b)  # nearest within 30 s
    assert keys.near(5000.0, 5001.0) is None
    import cv2

    assert cv2.imread(str(keys.absolute(a))).shape[1] == 32  # downscaled to max width
    assert not list(tmp_path.rglob("*.tmp"))


def test_retention_forgets_old_moments_and_their_key_frames(tmp_path: Path) -> None:
    from app.core.config import Config
    from app.core.paths import DataPaths
    from app.pipeline.service import DaybookService

    cfg = Config().replace(privacy={"retention_days": 7})
    service = DaybookService(cfg, DataPaths(tmp_path / "d").ensure())
    now = dt.datetime(2026, 11, 24, 12).timestamp()
    e = service.embedder
    old_frame = service.key_frames.write(np.zeros((48, 64, 3), np.uint8), now - 9 * 86400,
                                         now - 9 * 86400 + 10)
    service.store.add([
        (Moment("utt-old", "utterance", now - 8 * 86400, now - 8 * 86400 + 2, "old news"),
         e.embed(["old news"])[0]),
        (Moment("utt-new", "utterance", now - 86400, now - 86400 + 2, "fresh news"),
         e.embed(["fresh news"])[0]),
        (Moment("clip-old", "clip", now - 9 * 86400, now - 9 * 86400 + 10, key_frame=old_frame,
                n_frames=10), np.ones(256, np.float32) / 16),
    ], service.embedder.name)
    assert service.apply_retention(now) == 2
    assert service.store.count() == {"utterance": 1, "clip": 0, "summary": 0}
    assert not service.key_frames.absolute(old_frame).exists()
    assert Config().privacy.retention_days == 0  # the default keeps everything
    service.close()


def test_questions_said_to_the_assistant_answer_nothing(tmp_path: Path) -> None:
    """A spoken question is remembered like anything said, but it is never an answer: not to
    itself, nor to a later question like it."""
    retriever, keys = _setup(tmp_path)
    e = retriever.embedder
    asked = "computer did I lose my keys"
    retriever.store.add([(Moment("utt-q", "utterance", MORNING + 60, MORNING + 62, asked),
                          e.embed([asked])[0])], e.name)
    plain = Retriever(retriever.store, e, keys, ReasoningConfig())
    assert plain.retrieve("did I lose my keys", NOW)[0][0].moment.id == "utt-q"  # the trap
    minding = Retriever(retriever.store, e, keys, ReasoningConfig(), wake_name="Computer")
    cites, _ = minding.retrieve("did I lose my keys", NOW)
    assert {c.moment.id for c in cites} == {"utt-0", "utt-2"}
    cites, _ = minding.retrieve("what happened this morning?", NOW)  # listing a range too
    assert "utt-q" not in [c.moment.id for c in cites]
    assert minding.store.count()["utterance"] == 4  # still remembered


def test_a_question_the_recogniser_heard_asked_of_the_name_answers_nothing(
        tmp_path: Path) -> None:
    """The name bent beyond the text match ("they book, ..."): the moment's question, from the
    recogniser's own check (name_check.py), marks it as asked."""
    retriever, keys = _setup(tmp_path)
    e = retriever.embedder
    heard = "they book where are my keys"
    retriever.store.add([(Moment("utt-q", "utterance", MORNING + 60, MORNING + 62, heard,
                                 question="where are my keys"), e.embed([heard])[0])], e.name)
    minding = Retriever(retriever.store, e, keys, ReasoningConfig(), wake_name="Daybook")
    cites, _ = minding.retrieve("where are my keys", NOW)
    assert "utt-q" not in {c.moment.id for c in cites} and cites


@pytest.mark.parametrize(("question", "kind"), [
    ("when am I seeing the dentist?", "time"), ("what time does the train leave", "time"),
    ("where did I put my keys?", "place"), ("who has my umbrella?", "person"),
    ("what's the name of the new neighbour?", "person"), ("how many eggs do we need?", "number"),
    ("what's the code to get on the internet?", "number"),
    ("what should I buy at the shop?", None), ("did I call the plumber?", None),
])
def test_what_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asks_for(question) == kind


@pytest.mark.parametrize(("kind", "text", "held"), [
    ("time", "the dentist appointment moved to Friday at ten", True),
    ("time", "the meeting is at 3 pm", True),
    ("time", "the dentist's waiting room always smells of mint", False),
    ("place", "my keys are in the blue bowl by the door", True),
    ("place", "keys are annoying", False),
    ("person", "I lent my blue umbrella to Peter", True),
    ("person", "my neighbour borrowed the ladder", True),
    ("person", "The umbrella is blue", False),
    ("number", "the wifi password is tiger42", True),
    ("number", "the gate code is four four seven one", True),
    ("number", "the router is in the hall", False),
])
def test_what_a_moment_holds(kind: str, text: str, held: bool) -> None:
    assert holds(kind, text) is held


def test_among_close_matches_the_one_that_holds_the_answer_comes_first() -> None:
    """Both mention the dentist and the room ranks first; the question asks when: the one with
    a day and a time wins. One far below does not jump the queue."""
    room = Moment("utt-room", "utterance", MORNING, MORNING + 3,
                  "the dentist's waiting room always smells of mint")
    date = Moment("utt-date", "utterance", MORNING - 60, MORNING - 57,
                  "the dentist appointment moved to Friday at ten")
    others = [Moment(f"utt-{i}", "utterance", MORNING + i, MORNING + i + 1, f"thing {i}")
              for i in range(1, 12)]
    ranking = [Hit(room, 0.9), Hit(date, 0.85)]
    assert [m.id for _, m in fuse([(1.0, ranking)], None)][:2] == ["utt-room", "utt-date"]
    assert [m.id for _, m in fuse([(1.0, ranking)], None, "time")][:2] == ["utt-date", "utt-room"]
    far = [Hit(m, 0.9) for m in [room, *others]] + [Hit(date, 0.5)]
    assert fuse([(1.0, far)], None, "time")[0][1].id == "utt-room"
