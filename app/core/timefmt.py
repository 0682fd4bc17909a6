"""Local-time helpers: POSIX seconds ↔ local days and ISO-8601 strings."""

from __future__ import annotations

import datetime as dt


def local_dt(t_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_s).astimezone()


def local_day(t_s: float) -> str:
    return local_dt(t_s).strftime("%Y-%m-%d")


def iso(t_s: float) -> str:
    return local_dt(t_s).isoformat(timespec="milliseconds")


ISO_EXAMPLES = "2026-11-24T09:00 or 2026-11-24T09:00:00+01:00"


def parse_iso(text: str) -> float:
    """ISO-8601 → POSIX seconds; a time without an offset is local time. Raises ValueError with
    a message for the user (what is wrong, what is expected)."""
    try:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.astimezone()
        return value.timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        reason = str(exc)
        detail = "" if not reason or reason.startswith("Invalid isoformat") else f" ({reason})"
        raise ValueError(f"{text!r} is not a date and time{detail}; expected ISO-8601, "
                         f"e.g. {ISO_EXAMPLES}") from exc


def day_bounds(day: str) -> tuple[float, float]:
    start = dt.datetime.strptime(day, "%Y-%m-%d").astimezone()
    end = (start + dt.timedelta(days=1)).replace(tzinfo=None).astimezone()
    return start.timestamp(), end.timestamp()
