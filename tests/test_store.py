"""The Chroma store on a temp dir (real database), and the in-memory fake kept in step with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psutil
import pytest

from app.memory.base import Moment
from app.memory.chroma_store import ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore

DAY1 = 1_795_165_200.0  # 2026-11-20 09:00 UTC
DAY2 = DAY1 + 86_400

TEXTS = [(DAY1 + 10, "I had eggs for breakfast"), (DAY1 + 60, "They book, when is the meeting?"),
         (DAY2 + 5, "water the tomato plants"), (DAY2 + 90, "breakfast tomorrow is pancakes")]


def _fill(store: ChromaMemoryStore | InMemoryStore) -> None:
    e = LexicalEmbedder()
    vecs = e.embed([t for _, t in TEXTS])
    items = [(Moment(id=f"utt-{i}", kind="utterance", t0_s=t, t1_s=t + 2, text=text,
                     sound="speech", question="when is the meeting" if "book," in text else ""),
              v) for i, ((t, text), v) in enumerate(zip(TEXTS, vecs, strict=False))]
    clip = Moment(id="clip-1", kind="clip", t0_s=DAY1 + 5, t1_s=DAY1 + 20,
                  key_frame="2026-11-20/x.jpg", n_frames=16)
    items.append((clip, np.ones(256, np.float32) / 16))
    store.add(items)


@pytest.fixture(params=["chroma", "fake"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ChromaMemoryStore | InMemoryStore:
    s = ChromaMemoryStore(tmp_path / "chroma") if request.param == "chroma" else InMemoryStore()
    _fill(s)
    return s


def test_search_ranks_by_meaning_and_filters_days(store) -> None:
    q = LexicalEmbedder().embed(["what was for breakfast"])[0]
    hits = store.search(q, 2)
    assert {h.moment.id for h in hits} == {"utt-0", "utt-3"}
    assert hits[0].similarity >= hits[1].similarity > 0.2
    day1 = store.search(q, 5, days=["2026-11-20"])
    assert next(h.moment.id for h in day1) == "utt-0"
    assert all(h.moment.t0_s < DAY2 for h in day1)
    assert all(h.moment.kind == "utterance" for h in store.search(q, 10))


def test_moments_on_day_in_order_with_all_fields(store) -> None:
    day = store.moments_on_day("2026-11-20")
    assert [m.id for m in day] == ["clip-1", "utt-0", "utt-1"]
    clip, utt = day[0], day[1]
    assert clip.key_frame == "2026-11-20/x.jpg" and clip.n_frames == 16 and clip.text == ""
    assert utt == Moment(id="utt-0", kind="utterance", t0_s=DAY1 + 10, t1_s=DAY1 + 12,
                         text="I had eggs for breakfast", sound="speech", key_frame=None)
    assert day[2].question == "when is the meeting"  # what the recogniser heard asked of the name
    assert store.moments_on_day("2030-01-01") == []
    assert store.count() == {"utterance": 4, "clip": 1}


def test_chroma_store_persists_and_upserts(tmp_path: Path) -> None:
    s = ChromaMemoryStore(tmp_path / "c")
    _fill(s)
    del s
    again = ChromaMemoryStore(tmp_path / "c")
    assert again.count() == {"utterance": 4, "clip": 1}
    _fill(again)  # same ids: replaced, not duplicated
    assert again.count() == {"utterance": 4, "clip": 1}


def test_empty_store_answers_empty(tmp_path: Path) -> None:
    s = ChromaMemoryStore(tmp_path / "c")
    assert s.search(np.ones(384, np.float32), 5) == []
    assert s.search(np.ones(384, np.float32), 5, days=[]) == []


def test_delete_and_delete_before(store) -> None:
    store.delete(["utt-1"])
    assert store.count() == {"utterance": 3, "clip": 1}
    gone = store.delete_before(DAY2)
    assert {m.id for m in gone} == {"utt-0", "clip-1"}
    assert store.count() == {"utterance": 2, "clip": 0}
    assert store.delete_before(0.0) == []


def test_store_in_its_own_process(tmp_path: Path) -> None:
    from app.memory.store_process import ProcessMemoryStore

    store = ProcessMemoryStore(tmp_path / "c")
    pid = store.engine.pid
    try:
        _fill(store)  # type: ignore[arg-type]
        assert store.count() == {"utterance": 4, "clip": 1}
        q = LexicalEmbedder().embed(["what was for breakfast"])[0]
        assert {h.moment.id for h in store.search(q, 2)} == {"utt-0", "utt-3"}
        assert [m.id for m in store.moments_on_day("2026-11-20")] == ["clip-1", "utt-0", "utt-1"]
        from chromadb.errors import ChromaError

        with pytest.raises(ChromaError, match="dimension"):  # Chroma's own error, raised here
            store.search(np.ones(7, np.float32), 2)
        assert store.count()["utterance"] == 4  # still serving after an error
    finally:
        store.close()
    assert not store.engine.alive and pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert store.engine.failures == 0  # a clean exit, not a kill
    reopened = ChromaMemoryStore(tmp_path / "c")  # the child closed the database cleanly
    assert reopened.count() == {"utterance": 4, "clip": 1}
