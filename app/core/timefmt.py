"""Local-time helpers: POSIX seconds ↔ local days and ISO-8601 strings."""

from __future__ import annotations

import datetime as dt


def local_dt(t_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_s).astimezone()


def local_day(t_s: float) -> str:
    return local_dt(t_s).strftime("%Y-%m-%d")


def iso(t_s: float) -> str:
    return local_dt(t_s).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> float:
    """ISO-8601 → POSIX seconds; a time without an offset is local time."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.astimezone()
    return value.timestamp()


def day_bounds(day: str) -> tuple[float, float]:
    start = dt.datetime.strptime(day, "%Y-%m-%d").astimezone()
    end = (start + dt.timedelta(days=1)).replace(tzinfo=None).astimezone()
    return start.timestamp(), end.timestamp()
