"""Time words in a question ("this morning", "yesterday", "in the last 10 minutes") → a range."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "few": 3,
    "couple": 2,
}
_PARTS = {"morning": (5, 12), "afternoon": (12, 17), "evening": (17, 24)}


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


def parse_time_scope(question: str, now: dt.datetime | None = None) -> TimeScope | None:
    now = now or dt.datetime.now()
    q = question.lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def span(a: dt.datetime, b: dt.datetime, label: str) -> TimeScope:
        return TimeScope(a.timestamp(), b.timestamp(), label)

    m = re.search(
        r"\b(?:last|past)\s+(?:(\d+|a|an|one|two|three|four|five|six|ten|fifteen|"
        r"twenty|thirty|few|couple)\s+(?:of\s+)?)?(minute|hour|day)s?\b",
        q,
    )
    if m:
        n = (
            int(m.group(1))
            if m.group(1) and m.group(1).isdigit()
            else _NUMBERS.get(m.group(1) or "", 1)
        )
        unit = {
            "minute": dt.timedelta(minutes=n),
            "hour": dt.timedelta(hours=n),
            "day": dt.timedelta(days=n),
        }[m.group(2)]
        return span(now - unit, now, m.group(0))
    if "last night" in q:
        y = midnight - dt.timedelta(days=1)
        return span(y.replace(hour=18), midnight.replace(hour=5), "last night")
    if "tonight" in q:
        return span(midnight.replace(hour=17), midnight + dt.timedelta(days=1), "tonight")
    m = re.search(r"\b(this|yesterday)\s+(morning|afternoon|evening)\b", q)
    if m:
        base = midnight if m.group(1) == "this" else midnight - dt.timedelta(days=1)
        h0, h1 = _PARTS[m.group(2)]
        return span(base + dt.timedelta(hours=h0), base + dt.timedelta(hours=h1), m.group(0))
    if re.search(r"\byesterday\b", q):
        return span(midnight - dt.timedelta(days=1), midnight, "yesterday")
    if re.search(r"\btoday\b", q):
        return span(midnight, midnight + dt.timedelta(days=1), "today")
    if re.search(r"\blast week\b", q):
        start = midnight - dt.timedelta(days=midnight.weekday() + 7)
        return span(start, start + dt.timedelta(days=7), "last week")
    if re.search(r"\bthis week\b", q):
        start = midnight - dt.timedelta(days=midnight.weekday())
        return span(start, start + dt.timedelta(days=7), "this week")
    return None
