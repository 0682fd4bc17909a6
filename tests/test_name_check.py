"""The wake-name check's logic (app/perception/name_check.py) on a small made-up vocabulary and a
scorer given by the test: which readings with the name are built, and when one counts.
The real model's check is in tests/test_wake_name.py."""

from __future__ import annotations

from app.perception.name_check import MAX_LOSS_NATS, Vocabulary, asks, check_name, readings

PIECES = [b"<unk>", b"<s>", b"</s>", *[bytes([i]) for i in range(256)],
          "▁Hey".encode(), b",", b"?", b".", "▁look".encode(), "▁where".encode(),
          "▁are".encode(), "▁my".encode(), "▁keys".encode(), "▁Day".encode(), b"book",
          "▁They".encode(), "▁booked".encode(), "▁a".encode(), "▁table".encode()]
VOCAB = Vocabulary(PIECES)


def ids(*pieces: str) -> list[int]:
    return [PIECES.index(p.replace(" ", "▁").encode()) for p in pieces]


def decode(seq: list[int]) -> str:
    return b"".join(PIECES[t] for t in seq).decode().replace("▁", " ").strip()


NAME = ids(" Day", "book")
HEARD = ids(" Hey", ",", " look", ",", " where", " are", " my", " keys", "?")


def test_the_name_is_spelt_in_the_vocabulary_and_unknown_names_are_not_checked() -> None:
    assert VOCAB.encode_word("Daybook") == NAME
    assert VOCAB.encode_word("Zed") is None
    result = check_name(HEARD, "Zed", VOCAB, decode, lambda seqs: [0.0] * len(seqs))
    assert result.question == "" and result.reading == ""


def test_readings_replace_the_first_words_after_a_greeting_or_the_last_or_add_the_name() -> None:
    texts = [decode(r) for r in readings(HEARD, NAME, VOCAB)]
    assert "Daybook, where are my keys?" in texts  # "Hey, look," was the name
    assert "Hey, Daybook, where are my keys?" in texts  # "look," was
    assert "Hey, look, where are my keys, Daybook?" in texts  # said last, dropped
    assert "Hey, look, where are my, Daybook?" in texts  # "keys" was
    assert all(t.count("Daybook") == 1 for t in texts)


def _scorer(loss_of: dict[str, float]):  # type: ignore[no-untyped-def]
    def score(seqs: list[list[int]]) -> list[float]:
        own = -10.0
        return [own] + [own - loss_of.get(decode(s), 99.0) for s in seqs[1:]]
    return score


def test_a_reading_counts_when_the_model_finds_it_nearly_as_likely_as_its_own_text() -> None:
    result = check_name(HEARD, "Daybook", VOCAB, decode,
                        _scorer({"Daybook, where are my keys?": 2.0}))
    assert result.question == "where are my keys"
    assert result.loss_nats == 2.0


def test_a_reading_much_less_likely_does_not_count() -> None:
    result = check_name(HEARD, "Daybook", VOCAB, decode,
                        _scorer({"Daybook, where are my keys?": MAX_LOSS_NATS + 0.5}))
    assert result.question == ""
    assert result.reading == "Daybook, where are my keys?"


def test_a_likely_reading_that_asks_nothing_does_not_count() -> None:
    heard = ids(" They", " booked", " a", " table", ".")  # "They booked a table."
    result = check_name(heard, "Daybook", VOCAB, decode,
                        _scorer({"Daybook, a table.": 1.0}))
    assert result.question == ""
    assert not asks("a table", "They booked a table.")
    assert asks("where are my keys", "They book, where are my keys?")
    assert asks("a table", "They book, a table?")  # the recogniser heard a question


def test_the_name_in_the_text_needs_no_check() -> None:
    heard = ids(" Day", "book", ",", " where", " are", " my", " keys", "?")
    calls: list[int] = []

    def score(seqs: list[list[int]]) -> list[float]:
        calls.append(len(seqs))
        return [0.0] * len(seqs)

    result = check_name(heard, "Daybook", VOCAB, decode, score)
    assert result.question == "where are my keys" and calls == []
