"""The Chroma store on a temp dir (real database), and the in-memory fake kept in step with it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import psutil
import pytest

from app.memory.base import Moment
from app.memory.chroma_store import LEXICAL, ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore

DAY1 = 1_795_165_200.0  # 2026-11-20 09:00 UTC
DAY2 = DAY1 + 86_400
LEX = LexicalEmbedder.name
assert LEX == LEXICAL

TEXTS = [(DAY1 + 10, "I had eggs for breakfast"), (DAY1 + 60, "They book, when is the meeting?"),
         (DAY2 + 5, "water the tomato plants"), (DAY2 + 90, "breakfast tomorrow is pancakes")]
COUNTS = {"utterance": 4, "clip": 1, "summary": 0}


def _items() -> list[tuple[Moment, np.ndarray]]:
    e = LexicalEmbedder()
    vecs = e.embed([t for _, t in TEXTS])
    items = [(Moment(id=f"utt-{i}", kind="utterance", t0_s=t, t1_s=t + 2, text=text,
                     sound="speech", question="when is the meeting" if "book," in text else ""),
              v) for i, ((t, text), v) in enumerate(zip(TEXTS, vecs, strict=False))]
    clip = Moment(id="clip-1", kind="clip", t0_s=DAY1 + 5, t1_s=DAY1 + 20,
                  key_frame="2026-11-20/x.jpg", n_frames=16)
    items.append((clip, np.ones(256, np.float32) / 16))
    return items


def _fill(store: ChromaMemoryStore | InMemoryStore) -> None:
    store.add(_items(), LEX)


@pytest.fixture(params=["chroma", "fake"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ChromaMemoryStore | InMemoryStore:
    s = ChromaMemoryStore(tmp_path / "chroma") if request.param == "chroma" else InMemoryStore()
    _fill(s)
    return s


def test_search_ranks_by_meaning_and_filters_by_time(store) -> None:
    q = LexicalEmbedder().embed(["what was for breakfast"])[0]
    hits = store.search(q, 2, embedder=LEX)
    assert {h.moment.id for h in hits} == {"utt-0", "utt-3"}
    assert hits[0].similarity >= hits[1].similarity > 0.2
    day1 = store.search(q, 5, DAY1, DAY1 + 86_400, embedder=LEX)
    assert next(h.moment.id for h in day1) == "utt-0"
    assert all(h.moment.t0_s < DAY2 for h in day1)
    assert [h.moment.id for h in store.search(q, 5, DAY2 + 6, None, embedder=LEX)] == ["utt-3"]
    assert store.search(q, 5, DAY1 + 11, DAY1 + 12, embedder=LEX) == []
    assert all(h.moment.kind == "utterance" for h in store.search(q, 10, embedder=LEX))
    assert store.search(q, 5, embedder="some other embedder") == []


def test_keyword_search_is_bm25_with_time_ranges(store) -> None:
    hits = store.keyword_search("what about the tomatoes?", 5)
    assert [h.moment.id for h in hits] == ["utt-2"]  # porter stemming: tomatoes → tomato
    hits = store.keyword_search("breakfast", 5)
    assert [h.moment.id for h in hits][:2] in (["utt-0", "utt-3"], ["utt-3", "utt-0"])
    assert [h.moment.id for h in store.keyword_search("breakfast", 5, DAY2, None)] == ["utt-3"]
    assert store.keyword_search("what did I do", 5) == []  # only question words: nothing
    assert store.keyword_search('" OR NEAR( *', 5) == []  # FTS syntax is never passed through


def test_moments_by_time_with_all_fields(store) -> None:
    day = store.moments_on_day("2026-11-20")
    assert [m.id for m in day] == ["clip-1", "utt-0", "utt-1"]
    clip, utt = day[0], day[1]
    assert clip.key_frame == "2026-11-20/x.jpg" and clip.n_frames == 16 and clip.text == ""
    assert utt == Moment(id="utt-0", kind="utterance", t0_s=DAY1 + 10, t1_s=DAY1 + 12,
                         text="I had eggs for breakfast", sound="speech", key_frame=None)
    assert day[2].question == "when is the meeting"  # what the recogniser heard asked of the name
    assert store.moments_on_day("2030-01-01") == []
    assert [m.id for m in store.moments_between(DAY1 + 6, DAY2 + 6)] == ["utt-0", "utt-1",
                                                                         "utt-2"]
    assert store.count() == COUNTS
    assert store.span() == (DAY1 + 5, DAY2 + 90)
    assert [m.id for m in store.get(["utt-3", "nope", "clip-1"])] == ["utt-3", "clip-1"]


def test_a_captioned_clip_is_found_by_its_caption_s_meaning(store) -> None:
    """A clip stored again with its caption (app/pipeline/captions.py) gets a text vector beside
    its visual one: vector and keyword searches find it, it counts among the moments a new
    embedder must embed, and deleting it takes its text vector too."""
    e = LexicalEmbedder()
    clip, visual = next((m, v) for m, v in _items() if m.kind == "clip")
    captioned = Moment(clip.id, "clip", clip.t0_s, clip.t1_s, "a red bicycle against the wall",
                       key_frame=clip.key_frame, n_frames=clip.n_frames)
    with pytest.raises(ValueError, match="clip-1 has a caption but no text vector"):
        store.add([(captioned, visual)], LEX)
    assert store.get(["clip-1"])[0].text == ""  # the refused write changed nothing
    store.add([(captioned, visual)], LEX, {"clip-1": e.embed([captioned.text])[0]})
    q = e.embed(["where was the bicycle"])[0]
    hits = store.search(q, 1, embedder=LEX)
    assert [h.moment for h in hits] == [captioned]  # the clip itself, key frame and all
    assert store.search(q, 3, DAY1 + 6, None, embedder=LEX)[0].moment.id != "clip-1"
    assert [h.moment.id for h in store.keyword_search("bicycle", 3)] == ["clip-1"]
    assert store.count() == COUNTS  # still one clip
    state = store.embedder_state("another-embedder")
    assert state.total == 5  # four utterances and the captioned clip
    assert ("clip-1", captioned.text) in store.embedding_todo("another-embedder", 10)
    store.delete(["clip-1"])
    assert store.search(q, 5, embedder=LEX)[0].moment.id != "clip-1"
    assert store.embedder_state(LEX).total == 4


def test_a_lost_side_file_is_rebuilt_with_captioned_clips(tmp_path: Path) -> None:
    e = LexicalEmbedder()
    s = ChromaMemoryStore(tmp_path / "c")
    _fill(s)
    clip, visual = next((m, v) for m, v in _items() if m.kind == "clip")
    captioned = Moment(clip.id, "clip", clip.t0_s, clip.t1_s, "a red bicycle against the wall",
                       key_frame=clip.key_frame, n_frames=clip.n_frames)
    s.add([(captioned, visual)], LEX, {"clip-1": e.embed([captioned.text])[0]})
    s.close()
    (tmp_path / "c-index" / "memory.sqlite3").unlink()
    again = ChromaMemoryStore(tmp_path / "c")
    assert again.count() == COUNTS
    state = again.embedder_state(LEX)
    assert (state.active, state.building, state.total) == (LEX, None, 5)
    hits = again.search(e.embed(["where was the bicycle"])[0], 1, embedder=LEX)
    assert [h.moment for h in hits] == [captioned]


def test_chroma_store_persists_and_upserts(tmp_path: Path) -> None:
    s = ChromaMemoryStore(tmp_path / "c")
    _fill(s)
    s.close()
    again = ChromaMemoryStore(tmp_path / "c")
    assert again.count() == COUNTS
    _fill(again)  # same ids: replaced, not duplicated
    assert again.count() == COUNTS
    changed = Moment("utt-2", "utterance", DAY2 + 5, DAY2 + 7, "water the basil instead")
    again.add([(changed, LexicalEmbedder().embed([changed.text])[0])], LEX)
    assert [h.moment.id for h in again.keyword_search("tomato", 5)] == []
    assert [h.moment.id for h in again.keyword_search("basil", 5)] == ["utt-2"]


def test_empty_store_answers_empty(tmp_path: Path) -> None:
    s = ChromaMemoryStore(tmp_path / "c")
    assert s.search(np.ones(384, np.float32), 5, embedder=LEX) == []
    assert s.keyword_search("anything", 5) == []
    assert s.span() is None


def test_delete_and_delete_before(store) -> None:
    assert [m.id for m in store.delete(["utt-1", "nope"])] == ["utt-1"]
    assert store.count() == {**COUNTS, "utterance": 3}
    gone = store.delete_before(DAY2)
    assert {m.id for m in gone} == {"utt-0", "clip-1"}
    assert store.count() == {"utterance": 2, "clip": 0, "summary": 0}
    assert store.delete_before(0.0) == []


def test_deletion_really_deletes(tmp_path: Path) -> None:
    """After delete, neither search, the full-text index, the time index nor the side file's
    pages hold the deleted text or vector."""
    s = ChromaMemoryStore(tmp_path / "c")
    secret = "the safe combination is zebra quokka"
    e = LexicalEmbedder()
    m = Moment("utt-secret", "utterance", DAY1 + 500, DAY1 + 503, secret)
    vec = e.embed([secret])[0]
    s.add([(m, vec)], LEX)
    _fill(s)
    assert [h.moment.id for h in s.keyword_search("quokka", 5)] == ["utt-secret"]
    s.delete(["utt-secret"])
    assert s.keyword_search("quokka", 5) == []
    assert all(h.moment.id != "utt-secret" for h in s.search(vec, 10, embedder=LEX))
    assert all(h.moment.id != "utt-secret" for h in s.search(vec, 10, DAY1, DAY2, embedder=LEX))
    s.close()
    index = tmp_path / "c-index"
    for path in index.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"quokka" not in data and b"utt-secret" not in data, path
            assert vec.astype("<f4").tobytes() not in data, path
    db = sqlite3.connect(index / "memory.sqlite3")
    assert db.execute("SELECT count(*) FROM fts WHERE fts MATCH 'quokka'").fetchone()[0] == 0
    again = ChromaMemoryStore(tmp_path / "c")
    assert again.get(["utt-secret"]) == [] and again.count() == COUNTS


def test_switching_embedder_rebuilds_and_keeps_answering(tmp_path: Path) -> None:
    """The store keeps one vector set per embedder; the old one answers until the new one has a
    vector for every text moment, then the new one does and the old one is dropped."""

    class Doubled:
        name, dim, min_similarity = "doubled-test", 768, 0.1

        def embed(self, texts: list[str]) -> np.ndarray:
            v = LexicalEmbedder().embed(texts)
            return np.concatenate([v, v], axis=1) / np.sqrt(2)

    new = Doubled()
    s = ChromaMemoryStore(tmp_path / "c")
    _fill(s)
    assert s.embedder_state(LEX).active == LEX
    state = s.embedder_state(new.name)
    assert (state.active, state.building, state.done, state.total) == (LEX, new.name, 0, 4)
    todo = s.embedding_todo(new.name, 3)
    assert [i for i, _ in todo] == ["utt-0", "utt-1", "utt-2"]  # oldest first
    state = s.add_vectors(new.name, [(i, new.embed([t])[0]) for i, t in todo])
    assert (state.active, state.building, state.done) == (LEX, new.name, 3)
    q = LexicalEmbedder().embed(["breakfast"])[0]
    assert s.search(q, 1, embedder=LEX)[0].moment.id in ("utt-0", "utt-3")  # still answering
    s.close()  # a restart in the middle: the work resumes where it was
    s = ChromaMemoryStore(tmp_path / "c")
    assert s.embedder_state(new.name).done == 3
    todo = s.embedding_todo(new.name, 10)
    assert [i for i, _ in todo] == ["utt-3"]
    state = s.add_vectors(new.name, [(i, new.embed([t])[0]) for i, t in todo])
    assert (state.active, state.building) == (new.name, None)
    assert s.search(q, 5, embedder=LEX) == []  # the old set is gone
    hits = s.search(new.embed(["breakfast"])[0], 2, embedder=new.name)
    assert {h.moment.id for h in hits} == {"utt-0", "utt-3"}
    assert next(h.moment.id for h in s.search(new.embed(["breakfast"])[0], 2, DAY2, None,
                                          embedder=new.name)) == "utt-3"
    assert s.count() == COUNTS
    assert not (tmp_path / "c-index" / "time" / "lexical-hashed-n-grams").exists()


def test_a_data_dir_from_before_is_indexed_on_first_open(tmp_path: Path) -> None:
    """Data dirs written before the side file existed: Chroma's collections only."""
    import chromadb
    from chromadb.config import Settings

    from app.memory.chroma_store import _meta

    client = chromadb.PersistentClient(path=str(tmp_path / "c"),
                                       settings=Settings(anonymized_telemetry=False))
    for kind, name in (("utterance", "utterances"), ("clip", "clips")):
        col = client.get_or_create_collection(name, embedding_function=None,
                                              metadata={"hnsw:space": "cosine"})
        batch = [(m, v) for m, v in _items() if m.kind == kind]
        col.upsert(ids=[m.id for m, _ in batch], embeddings=np.stack([v for _, v in batch]),
                   metadatas=[_meta(m) for m, _ in batch], documents=[m.text for m, _ in batch])
    del client
    s = ChromaMemoryStore(tmp_path / "c")
    assert s.count() == COUNTS
    assert s.embedder_state(LEX).active == LEX
    assert [h.moment.id for h in s.keyword_search("tomato", 3)] == ["utt-2"]
    q = LexicalEmbedder().embed(["what was for breakfast"])[0]
    assert {h.moment.id for h in s.search(q, 2, DAY1, DAY2 + 86_400, embedder=LEX)} == {
        "utt-0", "utt-3"}


def test_an_interrupted_write_is_repaired_at_the_next_open(tmp_path: Path) -> None:
    """Chroma took the write, the side file did not (a kill in between): the pending ids are
    read back from Chroma at the next open."""
    s = ChromaMemoryStore(tmp_path / "c")
    _fill(s)
    late = Moment("utt-late", "utterance", DAY2 + 200, DAY2 + 202, "the parcel came at noon")
    vec = LexicalEmbedder().embed([late.text])[0]
    s.side.set_state("pending", '["utt-late", "utt-0"]')
    s._col(LEX).upsert(ids=["utt-late"], embeddings=[vec.tolist()],
                       metadatas=[{"kind": "utterance", "t0": late.t0_s, "t1": late.t1_s,
                                   "day": "2026-11-21"}], documents=[late.text])
    s._col(LEX).delete(ids=["utt-0"])
    s._clips.delete(ids=["utt-0"])
    s.close()
    again = ChromaMemoryStore(tmp_path / "c")
    assert again.side.get_state("pending") is None
    assert again.count() == {**COUNTS, "utterance": 4}  # utt-late in, utt-0 out
    assert [h.moment.id for h in again.keyword_search("parcel", 3)] == ["utt-late"]
    assert again.keyword_search("eggs", 3) == []
    assert [h.moment.id for h in again.search(vec, 1, DAY2, None, embedder=LEX)] == ["utt-late"]


def test_store_in_its_own_process(tmp_path: Path) -> None:
    from app.memory.store_process import ProcessMemoryStore

    store = ProcessMemoryStore(tmp_path / "c")
    pid = store.engine.pid
    try:
        _fill(store)  # type: ignore[arg-type]
        assert store.count() == COUNTS
        q = LexicalEmbedder().embed(["what was for breakfast"])[0]
        assert {h.moment.id for h in store.search(q, 2, embedder=LEX)} == {"utt-0", "utt-3"}
        assert [h.moment.id for h in store.keyword_search("tomato", 2)] == ["utt-2"]
        assert [m.id for m in store.moments_on_day("2026-11-20")] == ["clip-1", "utt-0", "utt-1"]
        with pytest.raises(ValueError):  # the error is raised here, in the caller
            store.search(np.ones(7, np.float32), 2, embedder=LEX)
        assert store.count()["utterance"] == 4  # still serving after an error
    finally:
        store.close()
    assert not store.engine.alive and pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert store.engine.failures == 0  # a clean exit, not a kill
    reopened = ChromaMemoryStore(tmp_path / "c")  # the child closed the database cleanly
    assert reopened.count() == COUNTS


def test_keyword_search_leaves_out_words_most_moments_have(monkeypatch) -> None:
    """A word in more than COMMON_DOCS moments costs the most to rank and tells the least: it is
    left out of the keyword search (the vector search still has it)."""
    from app.memory import sidecar

    store = InMemoryStore()
    _fill(store)
    monkeypatch.setattr(sidecar, "COMMON_DOCS", 1)
    assert store.keyword_search("breakfast", 5) == []  # in two moments: left out
    assert [h.moment.id for h in store.keyword_search("breakfast pancakes", 5)] == ["utt-3"]
    monkeypatch.setattr(sidecar, "COMMON_DOCS", 2)
    assert len(store.keyword_search("breakfast", 5)) == 2
