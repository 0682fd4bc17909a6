"""Time words in a question ("this morning", "yesterday at 3 pm", "ten minutes ago") → a range.

`parse_time_scope` gives a half-open range of epoch seconds (local time) or None; the retriever
searches only inside it. `wants_latest` / `wants_first` say whether a question asks for the most
recent (or the first) match rather than for a range. Pure functions: deterministic given `now`.

Questions are about the past, so an ambiguous form takes its most recent past reading:
- A clock time ("at 3 pm", "at 3:30", "around 10 am", "at noon") is a window of ±30 min around
  it. Alone it is its most recent past occurrence: later than now today → yesterday; "at 3"
  without am/pm is the most recent past 3:00, am or pm. On a named day an hour without am/pm is
  read as daytime (7–11 am, 12–6 pm), unless a part of the day says which ("Monday evening at
  8"); on "today" it is the most recent past one. "Midnight" ends the day it is attached to
  ("yesterday at midnight" = 00:00 today); "12 am" starts it.
- "N minutes/hours/weeks/months ago": now − N, ±50 % (at least ±2 min), never past now.
  "A couple of" = 1–3, "a few" = 1–5, "several" = 2–8 units ago. "N days ago" is that whole day.
  "Just now", "a moment ago", "seconds ago": the last 5 minutes.
- A weekday ("on Monday", "Monday", "last Monday", "this past Monday") is the most recent past
  such day, never today (asked on a Tuesday, "on Tuesday" is a week ago: today is "today").
  "This Tuesday" is this week's (today included); "Monday last week" and "the Monday before
  last" are a week further back. Plurals ("on Mondays") and names ("Black Friday") are no day.
- A date ("on November 3", "the 3rd of November", "on the 3rd") is its most recent past
  occurrence, today included.
- Parts of a day: morning 5–12, afternoon 12–17, evening 17–24, night 18–05 (into the next day),
  tonight 17–24. Meals: breakfast 6–10 (before 5–8, after 8–12), lunch 11:30–14 (before 5–12,
  after 13–17), dinner or supper 17:30–21 (before 14–19, after 19–24). With no day named they
  are today's, or yesterday's when today's has not begun yet. "For dinner" is no time: what to
  have for dinner is talked about before it.
- "Last week" / "this week" / "last month" / "this month" are calendar spans (weeks start on
  Monday); "in the last N days" and "the past week" are rolling spans ending now.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

CLOCK_HALF_WINDOW_S = 30 * 60
AGO_SPREAD = 0.5  # "N ago" covers now − N·(1 ± AGO_SPREAD)
AGO_MIN_HALF_WINDOW_S = 2 * 60
JUST_NOW_S = 5 * 60

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_FUZZY = {"couple": (2, 1, 3), "few": (3, 1, 5), "several": (5, 2, 8)}  # (for "last N", lo, hi)
_ORD_1_19 = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth",
)
_ORDINALS = {w: i + 1 for i, w in enumerate(_ORD_1_19)}
_ORDINALS.update({f"twenty {w}": 21 + i for i, w in enumerate(_ORD_1_19[:9])})
_ORDINALS.update({"twentieth": 20, "thirtieth": 30, "thirty first": 31})
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
_MONTHS = {m.lower(): i + 1 for i, m in enumerate(_MONTH_NAMES)}
_MONTHS.update({m.lower()[:3]: i + 1 for i, m in enumerate(_MONTH_NAMES) if m != "May"})
_MONTHS["sept"] = 9
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A weekday after these is a name ("Black Friday", "Girl Friday"), not a day.
_WEEKDAY_NAMERS = frozenset((
    "black", "cyber", "good", "holy", "ash", "easter", "maundy", "whit", "plough", "shrove",
    "palm", "giving", "girl", "man", "blue", "super", "fat", "manic",
))
# What may follow a bare number ("at 3", "on the 3rd", "Monday") for it to be a time:
# "at 3 apples" is not.
_FOLLOWERS = frozenset((
    "about", "after", "and", "around", "at", "before", "but", "during", "earlier", "for",
    "how", "i", "in", "is", "last", "morning", "afternoon", "evening", "night", "on", "or",
    "that", "the", "then", "this", "today", "tonight", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "why", "with", "yesterday", "you", "he", "she", "they",
    "someone", "breakfast", "lunch", "dinner", "supper",
)) | frozenset(_WEEKDAYS)
_PARTS = {"morning": (300, 720), "afternoon": (720, 1020), "evening": (1020, 1440),
          "night": (1080, 1740), "tonight": (1020, 1440)}  # minutes after the day's midnight
_MEALS = {
    "breakfast": {"before": (300, 480), "at": (360, 600), "after": (480, 720)},
    "lunch": {"before": (300, 720), "at": (690, 840), "after": (780, 1020)},
    "dinner": {"before": (840, 1140), "at": (1050, 1260), "after": (1140, 1440)},
}
_UNIT_S = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600,
           "day": 86400, "week": 7 * 86400, "month": 30 * 86400}


def _alt(words: Iterable[str]) -> str:
    """A regex alternation, longest first."""
    return "|".join(sorted(words, key=len, reverse=True))


_NUM_WORD = rf"(?:(?:{_alt(_TENS)})(?: (?:{_alt(_ONES[1:10])}))?|{_alt(_ONES)})"
_NUM = rf"(?:\d+(?:\.\d+)?|(?:a )?(?:few|couple(?: of)?)|several|{_NUM_WORD}|an?)"
_HOUR = rf"(?:\d{{1,2}}|{_alt(_ONES[1:13])})"
_MINUTE_WORD = (rf"(?:oh (?:{_alt(_ONES[1:10])})|(?:twenty|thirty|forty|fifty)"
                rf"(?: (?:{_alt(_ONES[1:10])}))?|{_alt(_ONES[10:20])})")
_PREP = r"(?P<prep>at|around)(?: (?:around|about))?"
_WD = _alt(_WEEKDAYS)
_P = "morning|afternoon|evening|night"

_ROLLING = re.compile(
    rf"\b(?:last|past) (?:(?P<n>{_NUM}) (?:of )?)?(?P<unit>minute|min|hour|hr|day)s?\b"
    rf"|\b(?:last|past) (?P<n2>{_NUM}) (?P<unit2>week|month)s?\b|\bpast (?P<unit3>week|month)\b")
_AGO = re.compile(
    rf"\b(?:(?P<half>(?:a )?half (?:an? )?hour)|(?P<n>{_NUM})(?P<h1> and a half)? "
    rf"(?P<unit>second|sec|minute|min|hour|hr|day|week|month)s?(?P<h2> and a half)?) ago\b")
_JUST_NOW = re.compile(r"\b(?:just now|(?:a )?moments? ago)\b")
_DAY_PARTS = (  # a day and its part in one phrase, in the order they were always tried
    (re.compile(r"\blast night\b"), -1, "night"),
    (re.compile(r"\btonight\b"), 0, "tonight"),
    (re.compile(r"\bthis (morning|afternoon|evening)\b"), 0, ""),
    (re.compile(rf"(?<!before )\byesterday ({_P})\b"), -1, ""),
)
_DAYS_AGO = re.compile(rf"\b(?P<n>{_NUM}) days? ago\b")
_DAY_NUM = rf"(?:(?P<d>\d{{1,2}})(?:st|nd|rd|th)?|(?P<dw>{_alt(_ORDINALS)}))"
_DATES = (
    re.compile(rf"\b(?P<mon>{_alt(_MONTHS)})\.? (?:the )?{_DAY_NUM}(?:,? (?P<y>\d{{4}}))?\b"),
    re.compile(
        rf"\b(?:the )?{_DAY_NUM} (?:of )?(?P<mon>{_alt(_MONTHS)})\b\.?(?:,? (?P<y>\d{{4}}))?"),
    re.compile(
        rf"\b(?:on|of|since) the (?:(?P<d>\d{{1,2}})(?:st|nd|rd|th)|(?P<dw>{_alt(_ORDINALS)}))\b"),
)
_WEEKDAY = re.compile(
    rf"\b(?P<pre>(?:on )?(?:the )?(?:this past |last |past |this )?)(?P<wd>{_WD})"
    r"(?P<post> before last| (?:of )?last week| (?:of )?this week)?\b")
_MEAL = re.compile(
    r"\b(?:(?P<rel>before|after|at|during|over|around) (?:(?:the|my|our) )?"
    r"(?P<meal>breakfast|lunch|dinner|supper)(?: ?time)?"
    r"|(?P<meal2>breakfast|lunch|dinner|supper) ?time)\b")
_PART = re.compile(
    rf"\b(?:(?:yesterday|{_WD}) (?P<a>{_P})|(?:in|during) the (?P<b>{_P})|the (?P<c>{_P}) of"
    r"|at (?P<d>night)|(?P<e>overnight))\b")
_AMPM = re.compile(
    rf"\b(?:{_PREP} )?(?P<h>{_HOUR})(?::(?P<m>\d{{2}})| (?P<mw>{_MINUTE_WORD}))? ?(?P<ap>am|pm)\b")
_NOON = re.compile(rf"\b{_PREP} (?:12 )?(?P<w>noon|midday|midnight)\b")
_PAST = re.compile(rf"\b(?:{_PREP} )?(?P<q>half|(?:a )?quarter) (?P<rel>past|to) (?P<h>{_HOUR})\b")
_BARE = re.compile(
    rf"\b{_PREP} (?P<h>{_HOUR})(?::(?P<m>\d{{2}})| (?P<mw>{_MINUTE_WORD}))?"
    r"(?P<oc> o'? ?clock)?(?:ish)?\b")
_OCLOCK = re.compile(rf"\b(?P<h>{_HOUR}) o'? ?clock\b")
_PRON = r"(?:i|we|you|he|she|they)"  # not "it": "how long did it last"
_LATEST = re.compile(
    rf"\b(?:(?:the )?last time|most recent(?:ly)?|latest|{_PRON} last"
    rf"(?! (?:night|week|month|year|time|{_WD}|{_NUM}|\d+)\b))\b")
_FIRST = re.compile(
    rf"\b(?:(?:the )?first time|earliest|{_PRON} first(?! (?:of|day|week|month)\b))\b")


@dataclass(frozen=True)
class TimeScope:
    t0_s: float
    t1_s: float
    label: str

    def days(self) -> list[str]:
        """Local days the range touches."""
        out, day = [], dt.datetime.fromtimestamp(self.t0_s).date()
        last = dt.datetime.fromtimestamp(max(self.t0_s, self.t1_s - 1e-3)).date()
        while day <= last:
            out.append(day.isoformat())
            day += dt.timedelta(days=1)
        return out


@dataclass(frozen=True)
class _Day:
    start: dt.datetime  # local midnight
    label: str  # "yesterday", "on Monday", "on November 3"
    kind: str  # "today", "yesterday", "weekday" or "other": how a part of it is said


@dataclass(frozen=True)
class _Part:
    minutes: tuple[int, int]  # after the day's midnight
    name: str  # "morning", "night", "tonight", "at lunch"
    meal: bool = False


@dataclass(frozen=True)
class _Clock:
    minutes: tuple[int, ...]  # the readings, after the day's midnight: (3:00, 15:00) for "at 3"
    prep: str  # "at" or "around"
    word: str = ""  # "noon" or "midnight" when said so


def parse_time_scope(question: str, now: dt.datetime | None = None) -> TimeScope | None:
    """The range a question's time words point at, or None when it names no time."""
    now = now or dt.datetime.now()
    q = _normalize(question)
    scope = _rolling(q, now) or _ago(q, now) or _recent(q, now)
    if scope:
        return scope
    day, day_part = _find_day(q, now)
    if day is None:
        scope = _calendar(q, now)
        if scope:  # "last week at lunch": the whole week, not today's lunch
            return scope
    part = _find_part(q) or day_part
    clock = _find_clock(q)
    if day is None and part is None and clock is None:
        return None
    return _compose(day, part, clock, now)


def wants_latest(question: str) -> bool:
    """The question asks for the most recent match ("the last time I…", "when did I last…")."""
    return bool(_LATEST.search(_normalize(question)))


def wants_first(question: str) -> bool:
    """The question asks for the earliest match ("the first time I…", "when did I first…")."""
    return bool(_FIRST.search(_normalize(question)))


def _normalize(text: str) -> str:
    q = text.lower().replace("’", "'")
    q = re.sub(r"\b([ap])\. ?m\b\.?", r"\1m", q)  # "p.m." → "pm"
    q = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", q)  # "forty-five" → "forty five"
    return re.sub(r"\s+", " ", q).strip()


def _number(text: str) -> float:
    if text[0].isdigit():
        return float(text)
    if text in ("a", "an"):
        return 1
    return sum(_TENS[w] if w in _TENS else _ONES.index(w) for w in text.split())


def _amount(text: str) -> tuple[float, tuple[int, int] | None]:
    """A number and, for a vague one ("a few"), the range of units it stands for."""
    word = text.removeprefix("a ").removesuffix(" of")
    if word in _FUZZY:
        n, lo, hi = _FUZZY[word]
        return n, (lo, hi)
    return _number(text), None


def _digits(text: str) -> str:
    """ "ten minutes ago" → "10 minutes ago", for labels."""
    return re.sub(rf"\b{_NUM_WORD}\b", lambda m: f"{_number(m.group(0)):g}", text)


def _free_after(q: str, end: int) -> bool:
    """Nothing, punctuation or a time-ish word follows: "at 3?" yes, "at 3 apples" no."""
    m = re.match(r" ?([a-z0-9']+)", q[end:])
    return m is None or m.group(1) in _FOLLOWERS


def _midnight(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _span(a: dt.datetime, b: dt.datetime, label: str) -> TimeScope:
    return TimeScope(a.timestamp(), b.timestamp(), label)


def _rolling(q: str, now: dt.datetime) -> TimeScope | None:
    """ "in the last 10 minutes", "the past few days": a span ending now."""
    m = _ROLLING.search(q)
    if not m:
        return None
    unit = m.group("unit") or m.group("unit2") or m.group("unit3")
    text = m.group("n") or m.group("n2")
    n, label = (_amount(text)[0] if text else 1), _digits(m.group(0))
    if _UNIT_S[unit] < 86400:  # in seconds: an hour is an hour across a DST change
        return TimeScope(now.timestamp() - n * _UNIT_S[unit], now.timestamp(), label)
    return _span(now - dt.timedelta(days=n * _UNIT_S[unit] / 86400), now, label)


def _ago(q: str, now: dt.datetime) -> TimeScope | None:
    """ "ten minutes ago", "a few hours ago": a window around that moment."""
    m = _AGO.search(q)
    if not m:
        return None
    now_s, label = now.timestamp(), _digits(m.group(0))
    if m.group("half"):
        n, fuzzy, unit_s = 0.5, None, 3600
    else:
        n, fuzzy = _amount(m.group("n"))
        n += 0.5 if m.group("h1") or m.group("h2") else 0
        unit_s = _UNIT_S[m.group("unit")]
    if unit_s == 1:
        return TimeScope(now_s - JUST_NOW_S, now_s, label)
    if unit_s == 86400:  # whole days
        if fuzzy is None:
            return None  # one day: a day anchor, which may take a part or a clock time
        midnight = _midnight(now)
        return _span(midnight - dt.timedelta(days=fuzzy[1]),
                     midnight - dt.timedelta(days=fuzzy[0] - 1), label)
    if fuzzy:
        return TimeScope(now_s - fuzzy[1] * unit_s, now_s - fuzzy[0] * unit_s, label)
    centre, half = now_s - n * unit_s, max(AGO_SPREAD * n * unit_s, AGO_MIN_HALF_WINDOW_S)
    return TimeScope(centre - half, min(centre + half, now_s), label)


def _recent(q: str, now: dt.datetime) -> TimeScope | None:
    m = _JUST_NOW.search(q)
    if m:
        return TimeScope(now.timestamp() - JUST_NOW_S, now.timestamp(), m.group(0))
    if re.search(r"\bearlier today\b", q):
        return _span(_midnight(now), now, "earlier today")
    return None


def _calendar(q: str, now: dt.datetime) -> TimeScope | None:
    midnight = _midnight(now)
    monday = midnight - dt.timedelta(days=midnight.weekday())
    if re.search(r"\blast week\b", q):
        return _span(monday - dt.timedelta(days=7), monday, "last week")
    if re.search(r"\bthis week\b", q):
        return _span(monday, monday + dt.timedelta(days=7), "this week")
    first = midnight.replace(day=1)
    if re.search(r"\blast month\b", q):
        return _span((first - dt.timedelta(days=1)).replace(day=1), first, "last month")
    if re.search(r"\bthis month\b", q):
        return _span(first, (first + dt.timedelta(days=31)).replace(day=1), "this month")
    return None


def _find_day(q: str, now: dt.datetime) -> tuple[_Day | None, _Part | None]:
    """The day a question names, and the part of it when said in one phrase ("last night")."""
    midnight = _midnight(now)
    for pattern, offset, part in _DAY_PARTS:
        m = pattern.search(q)
        if m:
            name = part or m.group(1)
            return _relative_day(midnight, offset), _Part(_PARTS[name], name)
    if re.search(r"\bday before yesterday\b", q):
        return _Day(midnight - dt.timedelta(days=2), "the day before yesterday", "other"), None
    if re.search(r"\byesterday\b", q):
        return _relative_day(midnight, -1), None
    if re.search(r"\btoday\b", q):
        return _relative_day(midnight, 0), None
    for m in _DAYS_AGO.finditer(q):
        n, fuzzy = _amount(m.group("n"))
        if fuzzy is None and n == int(n) and n >= 1:
            if n == 1:
                return _relative_day(midnight, -1), None
            return _Day(midnight - dt.timedelta(days=n), f"{n:g} days ago", "other"), None
    return _find_date(q, now) or _find_weekday(q, now), None


def _relative_day(midnight: dt.datetime, offset: int) -> _Day:
    name = "today" if offset == 0 else "yesterday"
    return _Day(midnight + dt.timedelta(days=offset), name, name)


def _find_date(q: str, now: dt.datetime) -> _Day | None:
    for pattern in _DATES:
        for m in pattern.finditer(q):
            year = m.groupdict().get("y")
            if not year and not _free_after(q, m.end()):
                continue  # "on the 3rd floor", "they march 3 miles"
            day = int(m.group("d")) if m.group("d") else _ORDINALS[m.group("dw")]
            month = _MONTHS[m.group("mon")] if m.groupdict().get("mon") else None
            date = _recent_date(now.date(), month, day, int(year) if year else None)
            if date is None:
                continue
            label = f"on {_MONTH_NAMES[date.month - 1]} {date.day}"
            label += f", {date.year}" if date.year != now.year else ""
            return _Day(dt.datetime.combine(date, dt.time(), now.tzinfo), label, "other")
    return None


def _recent_date(today: dt.date, month: int | None, day: int, year: int | None) -> dt.date | None:
    """The most recent past (or today's) date with that month and day; a given year is kept."""
    if not 1 <= day <= 31:
        return None
    if year is not None:
        tries = [(year, month or today.month)]
    elif month is not None:
        tries = [(today.year - k, month) for k in range(9)]  # 9 years: there is a February 29
    else:
        tries = [(today.year + (today.month - 1 - k) // 12, (today.month - 1 - k) % 12 + 1)
                 for k in range(12)]
    for y, mo in tries:
        try:
            date = dt.date(y, mo, day)
        except ValueError:
            continue
        if date <= today or year is not None:
            return date
    return None


def _find_weekday(q: str, now: dt.datetime) -> _Day | None:
    midnight = _midnight(now)
    for m in _WEEKDAY.finditer(q):
        pre, post = m.group("pre").strip(), m.group("post") or ""
        if _named(q, m.start("wd")):
            continue
        if pre in ("", "the", "on the") and not post and not _free_after(q, m.end()):
            continue  # "what did Friday say"
        wd, today = _WEEKDAYS.index(m.group("wd")), midnight.weekday()
        name = m.group("wd").capitalize()
        if "last week" in post or re.search(r"\blast week\b", q):
            back, label, kind = today - wd + 7, f"last week on {name}", "weekday"
        elif "this week" in post or re.search(r"\bthis week\b", q):
            back, label, kind = today - wd, f"on {name}", "weekday"
        elif post == " before last":
            back, label, kind = (today - wd - 1) % 7 + 8, f"the {name} before last", "other"
        elif pre.endswith("this"):  # "this Tuesday" on a Tuesday: today
            back, label, kind = (today - wd) % 7, f"on {name}", "weekday"
        else:
            back, label, kind = (today - wd - 1) % 7 + 1, f"on {name}", "weekday"
        return _Day(midnight - dt.timedelta(days=back), label, kind)
    return None


def _find_part(q: str) -> _Part | None:
    m = _MEAL.search(q)
    if m:
        meal = m.group("meal") or m.group("meal2")
        rel = m.group("rel") if m.group("rel") in ("before", "after") else "at"
        minutes = _MEALS["dinner" if meal == "supper" else meal][rel]
        return _Part(minutes, f"{rel} {meal}", meal=True)
    for m in _PART.finditer(q):
        if m.group("a") and _named(q, m.start()):
            continue  # "Black Friday morning"
        name = next(g for g in m.groups() if g)
        name = "night" if name == "overnight" else name
        return _Part(_PARTS[name], name)
    return None


def _named(q: str, start: int) -> bool:
    """The weekday at `start` is part of a name ("Black Friday")."""
    before = re.search(r"([a-z]+) $", q[:start])
    return before is not None and before.group(1) in _WEEKDAY_NAMERS


def _find_clock(q: str) -> _Clock | None:
    for m in _AMPM.finditer(q):
        if m.group("h").isdigit() or m.group("prep"):  # "which one am I" is no time
            minutes = _clock(m.group("h"), m.group("m"), m.group("mw"), m.group("ap"))
            if minutes:
                return _Clock(minutes, _prep(m))
    noon = _NOON.search(q)
    if noon:
        word = "midnight" if noon.group("w") == "midnight" else "noon"
        return _Clock((1440,) if word == "midnight" else (720,), _prep(noon), word)
    past = _PAST.search(q)
    h = _clock(past.group("h"), None, None, None) if past else None
    if past and h:
        offset = {"half": 30, "quarter": 15}[past.group("q").removeprefix("a ")]
        offset = -offset if past.group("rel") == "to" else offset
        return _Clock(tuple(sorted((c + offset) % 1440 for c in h)), _prep(past))
    for m in _BARE.finditer(q):
        if m.group("m") or m.group("oc") or _free_after(q, m.end()):
            minutes = _clock(m.group("h"), m.group("m"), m.group("mw"), None)
            if minutes:
                return _Clock(minutes, _prep(m))
    for m in _OCLOCK.finditer(q):
        minutes = _clock(m.group("h"), None, None, None)
        if minutes:
            return _Clock(minutes, "at")
    return None


def _prep(m: re.Match[str]) -> str:
    return "around" if re.match(r"(?:at )?(?:around|about)\b", m.group(0)) else "at"


def _clock(hour: str, minute: str | None, minute_word: str | None,
           ampm: str | None) -> tuple[int, ...] | None:
    """The readings of a clock time in minutes after midnight, or None when it is no time."""
    h = int(hour) if hour.isdigit() else _ONES.index(hour)
    if minute_word:
        mi = int(_number(minute_word.removeprefix("oh ")))
    else:
        mi = int(minute) if minute else 0
    if mi > 59:
        return None
    if ampm:
        if not 1 <= h <= 12:
            return None
        return ((h % 12) * 60 + mi + (720 if ampm == "pm" else 0),)
    if h > 23:
        return None
    if h == 0 or h > 12 or hour.startswith("0"):  # 24-hour clock: one reading
        return (h * 60 + mi,)
    return ((h % 12) * 60 + mi, (h % 12 + 12) * 60 + mi)


def _compose(day: _Day | None, part: _Part | None, clock: _Clock | None,
             now: dt.datetime) -> TimeScope:
    midnight = _midnight(now)
    implicit = day is None
    if clock is not None:
        return _at_clock(day, part, clock, now)
    if part is not None:
        if day is None:  # today's, unless it has not begun yet
            started = midnight + dt.timedelta(minutes=part.minutes[0]) <= now
            day = _relative_day(midnight, 0 if started else -1)
        a, b = (day.start + dt.timedelta(minutes=x) for x in part.minutes)
        return _span(a, b, _part_label(part, day, implicit))
    assert day is not None
    return _span(day.start, day.start + dt.timedelta(days=1), day.label)


def _at_clock(day: _Day | None, part: _Part | None, clock: _Clock,
              now: dt.datetime) -> TimeScope:
    minutes = clock.minutes
    if part is not None:  # "this morning at 10": the part says am or pm
        lo, hi = part.minutes
        fits = [c + k for c in clock.minutes for k in (0, 1440) if lo <= c + k < hi]
        minutes = tuple(fits[:1]) or minutes
    midnight = _midnight(now)
    if day is None:  # the most recent past occurrence
        times = [midnight + dt.timedelta(days=d, minutes=c) for d in (0, -1) for c in minutes]
        past = [t for t in times if t <= now]
        t = max(past) if past else min(times)
        prefix = "" if t.date() == now.date() else "yesterday "
    else:
        times = [day.start + dt.timedelta(minutes=c) for c in minutes]
        past = [t for t in times if t <= now]
        if day.kind == "today" and past:
            t = max(past)
        elif len(times) == 2:  # on another day, without am/pm: daytime, 7 am to 6:59 pm
            t = times[0] if 7 <= minutes[0] // 60 <= 11 else times[1]
        else:
            t = times[0]
        prefix = (_part_label(part, day, False) if part else day.label) + " "
    t_s = t.timestamp()
    label = f"{prefix}{clock.prep} {clock.word or _clock_text(t)}"
    return TimeScope(t_s - CLOCK_HALF_WINDOW_S, t_s + CLOCK_HALF_WINDOW_S, label)


def _clock_text(t: dt.datetime) -> str:
    h12 = t.hour % 12 or 12
    suffix = "am" if t.hour < 12 else "pm"
    return f"{h12}:{t.minute:02d} {suffix}" if t.minute else f"{h12} {suffix}"


def _part_label(part: _Part, day: _Day, implicit: bool) -> str:
    if part.name == "tonight":
        return "tonight"
    if part.meal:
        return part.name if implicit and day.kind == "today" else f"{day.label} {part.name}"
    night = part.name == "night"
    if day.kind == "today":
        return "tonight" if night else f"this {part.name}"
    if day.kind == "yesterday":
        return "last night" if night else f"yesterday {part.name}"
    if day.kind == "weekday":
        return f"{day.label} {part.name}"
    return f"{day.label} at night" if night else f"{day.label} in the {part.name}"
