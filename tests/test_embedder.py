from __future__ import annotations

import numpy as np

from app.memory.embed_lexical import LexicalEmbedder, stem, words


def test_vectors_are_unit_length_and_deterministic() -> None:
    e = LexicalEmbedder()
    v = e.embed(["coffee at breakfast", "the dog barked"])
    assert v.shape == (2, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(v, LexicalEmbedder().embed(["coffee at breakfast", "the dog barked"]))


def test_shared_words_and_stems_score_higher() -> None:
    e = LexicalEmbedder()
    q, same, other = e.embed(["what did I eat for breakfast?",
                              "I had eggs for breakfast", "the meeting moved to Friday"])
    assert q @ same > 0.3
    assert q @ same > q @ other + 0.2
    plants, plant = e.embed(["watering the plants", "water the plant"])
    assert plants @ plant > 0.5


def test_empty_and_stopword_only_text_is_a_zero_vector() -> None:
    v = LexicalEmbedder().embed(["", "what did I do today?"])
    assert not v.any()


def test_words_and_stems() -> None:
    assert words("What did I say about the MEETING?") == ["meeting"]
    assert stem("meetings") == "meet" and stem("bus") == "bus"
