from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from app.reasoning.timewords import parse_time_scope, wants_first, wants_latest

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


def D(day: int, hour: int = 0, minute: int = 0, month: int = 11, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute)


def _at(question: str, now: dt.datetime = NOW) -> tuple[dt.datetime, dt.datetime, str]:
    scope = parse_time_scope(question, now)
    assert scope is not None, question
    return (dt.datetime.fromtimestamp(scope.t0_s), dt.datetime.fromtimestamp(scope.t1_s),
            scope.label)


# NOW is Tuesday 2026-11-24 15:30; Monday is the 23rd.
@pytest.mark.parametrize(("question", "start", "end", "label"), [
    # clock times: ±30 min, the most recent past occurrence
    ("what did I say at 3 pm?", D(24, 14, 30), D(24, 15, 30), "at 3 pm"),
    ("3pm", D(24, 14, 30), D(24, 15, 30), "at 3 pm"),
    ("at 3:30", D(24, 15), D(24, 16), "at 3:30 pm"),
    ("at 3", D(24, 14, 30), D(24, 15, 30), "at 3 pm"),
    ("at 4 pm", D(23, 15, 30), D(23, 16, 30), "yesterday at 4 pm"),  # later than now
    ("at 5", D(24, 4, 30), D(24, 5, 30), "at 5 am"),  # 5 pm is still to come
    ("around 10 am", D(24, 9, 30), D(24, 10, 30), "around 10 am"),
    ("at about 10 a.m.", D(24, 9, 30), D(24, 10, 30), "around 10 am"),
    ("at 10:30 p.m.", D(23, 22), D(23, 23), "yesterday at 10:30 pm"),
    ("at 15:45", D(23, 15, 15), D(23, 16, 15), "yesterday at 3:45 pm"),
    ("at 0:30", D(24, 0), D(24, 1), "at 12:30 am"),
    ("what did we eat at noon", D(24, 11, 30), D(24, 12, 30), "at noon"),
    ("at midnight", D(23, 23, 30), D(24, 0, 30), "at midnight"),
    ("at ten thirty", D(24, 10), D(24, 11), "at 10:30 am"),
    ("at three o'clock", D(24, 14, 30), D(24, 15, 30), "at 3 pm"),
    ("at 3ish", D(24, 14, 30), D(24, 15, 30), "at 3 pm"),
    ("at half past two", D(24, 14), D(24, 15), "at 2:30 pm"),
    ("at quarter to 3", D(24, 14, 15), D(24, 15, 15), "at 2:45 pm"),
    ("at 9 in the morning", D(24, 8, 30), D(24, 9, 30), "at 9 am"),
    ("at 8 in the evening", D(23, 19, 30), D(23, 20, 30), "yesterday at 8 pm"),
    # clock times on a day: without am/pm, daytime (7-11 am, 12-6 pm) unless a part says
    ("yesterday at 3 pm", D(23, 14, 30), D(23, 15, 30), "yesterday at 3 pm"),
    ("yesterday at 3", D(23, 14, 30), D(23, 15, 30), "yesterday at 3 pm"),
    ("yesterday at 8", D(23, 7, 30), D(23, 8, 30), "yesterday at 8 am"),
    ("today at 8", D(24, 7, 30), D(24, 8, 30), "today at 8 am"),
    ("this morning at 10", D(24, 9, 30), D(24, 10, 30), "this morning at 10 am"),
    ("on Monday at 9", D(23, 8, 30), D(23, 9, 30), "on Monday at 9 am"),
    ("Monday evening at 8", D(23, 19, 30), D(23, 20, 30), "on Monday evening at 8 pm"),
    ("last night at 11", D(23, 22, 30), D(23, 23, 30), "last night at 11 pm"),
    ("last night at 2", D(24, 1, 30), D(24, 2, 30), "last night at 2 am"),
    ("yesterday at midnight", D(23, 23, 30), D(24, 0, 30), "yesterday at midnight"),
    ("the 3rd of November at 3 pm", D(3, 14, 30), D(3, 15, 30), "on November 3 at 3 pm"),
    # relative past points: ±50 %, at least ±2 min, never past now
    ("ten minutes ago", D(24, 15, 15), D(24, 15, 25), "10 minutes ago"),
    ("an hour ago", D(24, 14), D(24, 15), "an hour ago"),
    ("2 hours ago", D(24, 12, 30), D(24, 14, 30), "2 hours ago"),
    ("half an hour ago", D(24, 14, 45), D(24, 15, 15), "half an hour ago"),
    ("an hour and a half ago", D(24, 13, 15), D(24, 14, 45), "an hour and a half ago"),
    ("twenty minutes ago", D(24, 15), D(24, 15, 20), "20 minutes ago"),
    ("a minute ago", D(24, 15, 27), D(24, 15, 30), "a minute ago"),
    ("a few minutes ago", D(24, 15, 25), D(24, 15, 29), "a few minutes ago"),
    ("a couple of hours ago", D(24, 12, 30), D(24, 14, 30), "a couple of hours ago"),
    ("a few seconds ago", D(24, 15, 25), D(24, 15, 30), "a few seconds ago"),
    ("2 weeks ago", D(3, 15, 30), D(17, 15, 30), "2 weeks ago"),
    ("3 days ago", D(21), D(22), "3 days ago"),
    ("3 days ago in the morning", D(21, 5), D(21, 12), "3 days ago in the morning"),
    ("a couple of days ago", D(21), D(24), "a couple of days ago"),
    ("just now", D(24, 15, 25), D(24, 15, 30), "just now"),
    ("a moment ago", D(24, 15, 25), D(24, 15, 30), "a moment ago"),
    # weekdays: the most recent past one, never today
    ("on Monday", D(23), D(24), "on Monday"),
    ("what did I do Monday?", D(23), D(24), "on Monday"),
    ("last Monday", D(23), D(24), "on Monday"),
    ("this past Sunday", D(22), D(23), "on Sunday"),
    ("on Tuesday", D(17), D(18), "on Tuesday"),  # today is Tuesday
    ("this Tuesday", D(24), D(25), "on Tuesday"),
    ("on Wednesday", D(18), D(19), "on Wednesday"),
    ("Monday morning", D(23, 5), D(23, 12), "on Monday morning"),
    ("what did Anna say Monday night?", D(23, 18), D(24, 5), "on Monday night"),
    ("Monday last week", D(16), D(17), "last week on Monday"),
    ("last week on Friday", D(20), D(21), "last week on Friday"),
    ("the Monday before last", D(16), D(17), "the Monday before last"),
    # meals
    ("before lunch", D(24, 5), D(24, 12), "before lunch"),
    ("at lunch", D(24, 11, 30), D(24, 14), "at lunch"),
    ("during lunch", D(24, 11, 30), D(24, 14), "at lunch"),
    ("lunchtime", D(24, 11, 30), D(24, 14), "at lunch"),
    ("after lunch", D(24, 13), D(24, 17), "after lunch"),
    ("what did I say over breakfast", D(24, 6), D(24, 10), "at breakfast"),
    ("at dinner", D(23, 17, 30), D(23, 21), "yesterday at dinner"),  # not yet today
    ("after dinner", D(23, 19), D(24), "yesterday after dinner"),
    ("yesterday before lunch", D(23, 5), D(23, 12), "yesterday before lunch"),
    ("on Monday at supper", D(23, 17, 30), D(23, 21), "on Monday at supper"),
    # more spans
    ("earlier today", D(24), NOW, "earlier today"),
    ("the day before yesterday", D(22), D(23), "the day before yesterday"),
    ("the day before yesterday morning", D(22, 5), D(22, 12),
     "the day before yesterday in the morning"),
    ("what happened in the evening", D(23, 17), D(24), "yesterday evening"),
    ("last month", D(1, month=10), D(1), "last month"),
    ("this month", D(1), D(1, month=12), "this month"),
    ("in the past week", D(17, 15, 30), NOW, "past week"),
    ("over the last forty-five minutes", D(24, 14, 45), NOW, "last 45 minutes"),
    # dates: the most recent past one, today included
    ("on November 3", D(3), D(4), "on November 3"),
    ("on the 3rd", D(3), D(4), "on November 3"),
    ("on the twenty fourth", D(24), D(25), "on November 24"),
    ("on November 30", D(30, year=2025), D(1, month=12, year=2025), "on November 30, 2025"),
    ("on the 31st", D(31, month=10), D(1), "on October 31"),
    ("on Nov 3rd, 2025", D(3, year=2025), D(4, year=2025), "on November 3, 2025"),
    ("on February 29", D(29, month=2, year=2024), D(1, month=3, year=2024),
     "on February 29, 2024"),
])
def test_more_time_words(question: str, start: dt.datetime, end: dt.datetime, label: str) -> None:
    assert _at(question) == (start, end, label)


def test_existing_labels_are_kept() -> None:
    assert _at("in the last 10 minutes")[2] == "last 10 minutes"
    assert _at("what did I say yesterday afternoon")[2] == "yesterday afternoon"
    assert _at("tonight")[2] == "tonight"
    assert _at("last night")[2] == "last night"


def test_earlier_in_the_day_a_bare_time_is_read_from_now() -> None:
    morning = D(24, 9)
    assert _at("at 3", morning)[:2] == (D(24, 2, 30), D(24, 3, 30))  # 3 pm is still to come
    assert _at("at lunch", morning) == (D(23, 11, 30), D(23, 14), "yesterday at lunch")
    assert _at("before lunch", morning)[:2] == (D(24, 5), D(24, 12))  # it has begun


def test_just_after_midnight() -> None:
    late = D(25, 0, 10)
    assert _at("at 11 pm", late) == (D(24, 22, 30), D(24, 23, 30), "yesterday at 11 pm")
    assert _at("at midnight", late)[:2] == (D(24, 23, 30), D(25, 0, 30))
    assert _at("20 minutes ago", late)[:2] == (D(24, 23, 40), D(25))
    assert _at("last night", late)[:2] == (D(24, 18), D(25, 5))
    scope = parse_time_scope("in the last hour", late)
    assert scope is not None and scope.days() == ["2026-11-24", "2026-11-25"]


def test_on_the_31st_in_march_skips_february() -> None:
    assert _at("on the 31st", D(10, 9, month=3))[:2] == (D(31, month=1), D(1, month=2))


@pytest.mark.parametrize("question", [
    "I ate 3 apples",
    "I looked at 3 apples",
    "we met around 3 people",
    "the ten am meeting",  # a number word needs "at": "which one am I" is no time
    "which one am I",
    "Black Friday deals",
    "black friday morning",
    "what did Friday say",
    "do I read the Sunday Times",
    "what do I do on Mondays",
    "Mondayne called",
    "on the 3rd floor",
    "they march 3 miles",
    "the third time I asked",
    "at 25",
    "at 3:75",
    "13 pm",
    "someone mentioned the past",
    "how long did it last",
    "what should we have for dinner",  # talked about before dinner, not during it
    "what was on the second page",
    "did I say anything at one point",
])
def test_no_time_in(question: str) -> None:
    assert parse_time_scope(question, NOW) is None


@pytest.mark.parametrize(("question", "latest", "first"), [
    ("when did I last see my keys", True, False),
    ("where did I last put my phone?", True, False),
    ("the last time I talked to Bob", True, False),
    ("what did Anna say most recently", True, False),
    ("the first time I met Anna", False, True),
    ("when did I first mention the trip", False, True),
    ("what happened last night", False, False),
    ("what did I do last Monday", False, False),
    ("in the last 10 minutes", False, False),
    ("how long did it last", False, False),
    ("on the first of November", False, False),
])
def test_wants_latest_or_first(question: str, latest: bool, first: bool) -> None:
    assert (wants_latest(question), wants_first(question)) == (latest, first)


@pytest.fixture
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time with daylight saving (ending on Sunday 2026-10-25, 03:00 → 02:00)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is Unix-only")
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("berlin_time")
def test_daylight_saving_change() -> None:
    day = parse_time_scope("yesterday", D(26, 10, month=10))
    assert day is not None and day.t1_s - day.t0_s == 25 * 3600  # local midnight to midnight
    assert dt.datetime.fromtimestamp(day.t0_s) == D(25, month=10)
    hours = parse_time_scope("in the last 2 hours", D(25, 3, 30, month=10))
    assert hours is not None and hours.t1_s - hours.t0_s == 2 * 3600  # real hours
    at = parse_time_scope("yesterday at 3 pm", D(26, 10, month=10))
    assert at is not None and at.t1_s - at.t0_s == 3600
    assert dt.datetime.fromtimestamp((at.t0_s + at.t1_s) / 2) == D(25, 15, month=10)
