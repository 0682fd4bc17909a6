from __future__ import annotations

import datetime as dt

import pytest

from app.reasoning.timewords import parse_time_scope

NOW = dt.datetime(2026, 11, 24, 15, 30)  # a Tuesday afternoon


def _span(q: str) -> tuple[dt.datetime, dt.datetime, str]:
    scope = parse_time_scope(q, NOW)
    assert scope is not None, q
    return (dt.datetime.fromtimestamp(scope.t0_s), dt.datetime.fromtimestamp(scope.t1_s),
            scope.label)


@pytest.mark.parametrize(("question", "start", "end"), [
    ("what happened this morning?", dt.datetime(2026, 11, 24, 5), dt.datetime(2026, 11, 24, 12)),
    ("what did I say yesterday afternoon", dt.datetime(2026, 11, 23, 12),
     dt.datetime(2026, 11, 23, 17)),
    ("anything today", dt.datetime(2026, 11, 24), dt.datetime(2026, 11, 25)),
    ("yesterday", dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24)),
    ("in the last 10 minutes", NOW - dt.timedelta(minutes=10), NOW),
    ("over the past hour", NOW - dt.timedelta(hours=1), NOW),
    ("last two hours", NOW - dt.timedelta(hours=2), NOW),
    ("last night", dt.datetime(2026, 11, 23, 18), dt.datetime(2026, 11, 24, 5)),
    ("last week", dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 23)),
    ("this week", dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 30)),
])
def test_time_words(question: str, start: dt.datetime, end: dt.datetime) -> None:
    a, b, _ = _span(question)
    assert (a, b) == (start, end)


def test_no_time_words() -> None:
    assert parse_time_scope("where are my keys", NOW) is None


def test_days_of_a_scope() -> None:
    scope = parse_time_scope("last night", NOW)
    assert scope is not None and scope.days() == ["2026-11-23", "2026-11-24"]
    scope = parse_time_scope("today", NOW)
    assert scope is not None and scope.days() == ["2026-11-24"]
