"""Integration into long-term memory: a summary of every finished hour and day, stored as
moments (kind "summary") that retrieval finds like any other and the timeline shows.

IXC2.5-OmniLive compresses short-term memory into long-term memory. Here the summaries are
extractive (what the hour was about: its most frequent content words, and the things said that
carry them most; a day: its hours), and rewritten by the language model when one is in use
(`rewrite`: app/reasoning/summarise.py, which keeps them grounded in the hour's moments). A summary's id names its hour or day, so writing it again replaces it.

The integrator runs in the background. Its progress is a cursor (the end of the last hour
integrated) in a small JSON file replaced atomically after each summary is stored, so a restart
resumes and a kill leaves either the summary written and the cursor behind (redone, same id) or
nothing. Moments stored late for an hour already integrated (an imported recording), and
deletions, put the hour back in the queue: a summary never keeps the words of a deleted moment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from app.core.events import MemoryIntegrated, MomentsStored
from app.core.timefmt import day_bounds, local_day
from app.memory.base import Embedder, MemoryStore, Moment
from app.memory.episodes import _STOP, _WORD, keywords

log = logging.getLogger(__name__)

HOUR_S = 3600.0
SETTLE_S = 120.0  # an hour is integrated this long after it ended (late transcripts land first)
POLL_S = 30.0
MAX_QUOTES = 3
MAX_QUOTE_CHARS = 160
Rewrite = Callable[[Moment, Sequence[Moment]], "str | None"]


def hour_id(t0_s: float) -> str:
    return "sum-hour-" + dt.datetime.fromtimestamp(t0_s).strftime("%Y-%m-%dT%H")


def day_id(day: str) -> str:
    return f"sum-day-{day}"


def hour_start(t_s: float) -> float:
    d = dt.datetime.fromtimestamp(t_s)
    return d.replace(minute=0, second=0, microsecond=0).timestamp()


def _hm(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s).strftime("%H:%M")


def _quotes(utterances: Sequence[Moment], words: Sequence[str]) -> list[Moment]:
    """The things said that carry the hour's key words most (ties: longer, then earlier)."""
    weight = {w: len(words) - i for i, w in enumerate(words)}

    def score(m: Moment) -> tuple[float, int, float]:
        said = {w.strip("'") for w in _WORD.findall(m.text.lower())} - _STOP
        return (-sum(weight.get(w, 0) for w in said), -len(said), m.t0_s)

    picked = sorted((m for m in utterances if m.text), key=score)[:MAX_QUOTES]
    return sorted(picked, key=lambda m: m.t0_s)


def summarize_hour(moments: Sequence[Moment], t0_s: float, t1_s: float) -> Moment | None:
    """The summary moment of one hour's utterances and clips, or None when nothing happened."""
    said = [m for m in moments if m.kind == "utterance"]
    seen = [m for m in moments if m.kind == "clip"]
    if not said and not seen:
        return None
    words = keywords((m.text for m in moments if m.text), n=5)
    parts = [f"{_hm(t0_s)}–{_hm(t1_s)}:"]
    if words:
        parts.append("about " + ", ".join(words) + ".")
    counts = []
    if said:
        counts.append(f"{len(said)} thing{'s' * (len(said) != 1)} said")
    if seen:
        counts.append(f"{len(seen)} scene{'s' * (len(seen) != 1)} seen")
    parts.append(" and ".join(counts).capitalize() + ".")
    quotes = _quotes(said, words)
    if quotes:
        parts.append(" ".join(f"{_hm(m.t0_s)} \u201c{_clip(m.text)}\u201d" for m in quotes))
    return Moment(id=hour_id(t0_s), kind="summary", t0_s=t0_s, t1_s=t1_s,
                  text=" ".join(parts), n_frames=len(moments))


def summarize_day(day: str, hours: Sequence[Moment], t0_s: float, t1_s: float) -> Moment | None:
    """The day's summary from its hour summaries."""
    hours = sorted((h for h in hours if h.id.startswith("sum-hour-")), key=lambda h: h.t0_s)
    if not hours:
        return None
    words = keywords((h.text.split(":", 1)[-1] for h in hours), n=8)
    first, last = hours[0], hours[-1]
    text = (f"{dt.date.fromisoformat(day).strftime('%A %d %B %Y')}, "
            f"{_hm(first.t0_s)}–{_hm(last.t1_s)}, {len(hours)} hour{'s' * (len(hours) != 1)} "
            f"remembered" + (": about " + ", ".join(words) + "." if words else "."))
    return Moment(id=day_id(day), kind="summary", t0_s=t0_s, t1_s=t1_s, text=text,
                  n_frames=sum(h.n_frames for h in hours))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE_CHARS else text[:MAX_QUOTE_CHARS - 1] + "…"


class Integrator(threading.Thread):
    """Writes the summaries of finished hours and days, in the background."""

    def __init__(self, store: MemoryStore, embedder: Embedder, state_path: Path,
                 emit: Callable[[object], None], *, now: Callable[[], float] | None = None,
                 poll_s: float = POLL_S, first_wait_s: float = 0.0,
                 duty: float = 1.0, rewrite: Rewrite | None = None) -> None:
        """`rewrite(summary, moments)`: the summary's text as a language model writes it
        from those moments, or None to keep the extractive one (app/reasoning/summarise.py)."""
        super().__init__(name="integrate", daemon=True)
        self.store = store
        self.embedder = embedder
        self.state_path = state_path
        self.emit = emit
        self.now = now or (lambda: dt.datetime.now().timestamp())
        self.poll_s = poll_s
        self.first_wait_s = first_wait_s
        self.duty = duty
        self.rewrite = rewrite
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._redo: set[float] = set()  # hour starts to integrate again
        self.cursor: float | None = None  # hours before this are integrated
        self.written = 0
        self._load()

    def stop(self) -> None:
        self.stop_event.set()

    # --- state -------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.cursor = float(state["cursor"]) if state.get("cursor") is not None else None
            self._redo = {float(h) for h in state.get("redo", [])}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("integration: unreadable state %s (%s); starting over", self.state_path,
                        exc)

    def _save(self) -> None:
        with self._lock:
            state = {"cursor": self.cursor, "redo": sorted(self._redo)}
        tmp = self.state_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    # --- from other threads --------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """A bus listener: moments stored for an hour already integrated put it back."""
        if isinstance(event, MomentsStored) and self.cursor is not None:
            hour = hour_start(event.t1_s)
            if hour < self.cursor:
                with self._lock:
                    self._redo.add(hour)

    def invalidate(self, moments: Iterable[Moment]) -> None:
        """Moments were deleted: their hours' and days' summaries are deleted at once (they may
        quote them) and written again from what is left."""
        hours = {hour_start(m.t0_s) for m in moments if m.kind != "summary"}
        if not hours:
            return
        ids = [hour_id(h) for h in hours] + [day_id(local_day(h)) for h in hours]
        self.store.delete(sorted(set(ids)))
        with self._lock:
            self._redo |= {h for h in hours if self.cursor is None or h < self.cursor}
        with contextlib.suppress(OSError):
            self._save()

    # --- the work ----------------------------------------------------------------------------

    def run(self) -> None:
        self.stop_event.wait(self.first_wait_s)
        while not self.stop_event.is_set():
            try:
                self.integrate_once()
            except Exception as exc:
                log.warning("integration paused (%s); trying again", exc)
            self.stop_event.wait(self.poll_s)

    def integrate_once(self) -> list[str]:
        """Integrate every finished hour not integrated yet, and the days they complete."""
        limit = hour_start(self.now() - SETTLE_S)  # hours starting before this have ended
        if self.cursor is None:
            span = self.store.span()
            if span is None:
                return []
            self.cursor = hour_start(span[0])
        written: list[str] = []
        with self._lock:
            redo = sorted(self._redo)
        for hour in redo:
            if self.stop_event.is_set():
                return written
            written += self._hour(hour)
            with self._lock:
                self._redo.discard(hour)
            self._save()
        while self.cursor < limit and not self.stop_event.is_set():
            hour = self.cursor
            started = time.monotonic()
            written += self._hour(hour)
            self.cursor = hour_start(hour + HOUR_S + 1)  # DST-safe: the next hour's start
            self._save()
            if self.duty < 1.0:  # catching up on a long history: leave the CPU half free
                self.stop_event.wait((time.monotonic() - started) * (1.0 / self.duty - 1.0))
        if written:
            log.info("integration: %d summaries written", len(written))
            self.emit(MemoryIntegrated(tuple(written)))
        self.written += len(written)
        return written

    def _hour(self, hour: float) -> list[str]:
        end = hour_start(hour + HOUR_S + 1)
        moments = self.store.moments_between(hour, end)
        summary = self._rewritten(summarize_hour(moments, hour, end), moments)
        written = []
        if summary is None:
            self.store.delete([hour_id(hour)])
        else:
            self._store(summary)
            written.append(summary.id)
        day = local_day(hour)
        day_t0, day_t1 = day_bounds(day)
        if end >= day_t1 or (written and self._day_done(day_t1)):
            hours = self.store.moments_between(day_t0, day_t1, kinds=("summary",))
            day_summary = self._rewritten(summarize_day(day, hours, day_t0, day_t1),
                                          [h for h in hours if h.id.startswith("sum-hour-")])
            if day_summary is not None:
                self._store(day_summary)
                written.append(day_summary.id)
        return written

    def _rewritten(self, summary: Moment | None, moments: Sequence[Moment]) -> Moment | None:
        if summary is None or self.rewrite is None:
            return summary
        try:
            text = self.rewrite(summary, moments)
        except Exception:
            log.exception("integration: rewriting %s failed; the extractive one is kept",
                          summary.id)
            return summary
        return dataclasses.replace(summary, text=text) if text else summary

    def _day_done(self, day_t1: float) -> bool:
        return day_t1 <= hour_start(self.now() - SETTLE_S)

    def _store(self, summary: Moment) -> None:
        vector = self.embedder.embed([summary.text])[0]
        self.store.add([(summary, vector)], self.embedder.name)
