"""The timeline's Qt models: a day as hour lanes of moments, and search hits."""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QDate,
    QLocale,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Slot,
)
from PySide6.QtGui import (
    QColor,
    QPixmap,
)

from app.core.timefmt import iso, local_day, local_dt
from app.memory.base import Moment
from app.memory.episodes import Episode
from app.memory.keyframes import KeyFrameDir
from app.reasoning.base import Citation
from app.ui.tasks import ThumbnailLoader

log = logging.getLogger(__name__)

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()

MomentRole = Qt.ItemDataRole.UserRole + 1  # the Moment (moment rows)
HourRole = Qt.ItemDataRole.UserRole + 2  # the hour, 0–23 (every row)
ThumbRole = Qt.ItemDataRole.UserRole + 3  # QPixmap once loaded, else None (clip rows)
LaneRole = Qt.ItemDataRole.UserRole + 4  # the _Lane (hour rows)

CLIP_COLOR = QColor("#3a7bc8")  # seen
SPEECH_COLOR = QColor("#d9822b")  # heard
GAP_COLOR = QColor("#c0392b")  # nothing seen: the camera lost, paused or off

COMPACT_ROW_PX = 44
COMPACT_THUMB = QSize(56, 40)
LARGE_ROW_PX = 132
LARGE_THUMB = QSize(160, 120)
HIT_THUMB = QSize(64, 48)
PANEL_IMAGE = QSize(360, 270)
RELOAD_EVERY_MS = 500  # live updates: at most one reload of the shown day per this interval
SEARCH_DELAY_MS = 350  # typing pause before a search runs
WHOLE_DAY = -1  # the zoom box's "hour" for the whole day
EXPAND_ROWS_PER_STEP = 600  # moment rows laid out per event-loop turn when a day opens

DAY_SUMMARY = "sum-day-"  # summary ids (app/memory/integrate.py)
HOUR_SUMMARY = "sum-hour-"
ENGLISH = QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom)


def _hms(t_s: float) -> str:
    return local_dt(t_s).strftime("%H:%M:%S")


def _span(m: Moment) -> str:
    return f"{_hms(m.t0_s)}–{_hms(m.t1_s)}"


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"


def _qdate(day: str) -> QDate:
    return QDate.fromString(day, "yyyy-MM-dd")


def _long_date(day: str, year: bool = False) -> str:
    return ENGLISH.toString(_qdate(day), "dddd d MMMM yyyy" if year else "dddd d MMMM")


def _short_date(t_s: float) -> str:
    return ENGLISH.toString(_qdate(local_day(t_s)), "ddd d MMM")


def describe(m: Moment) -> str:
    """One line for a moment: what was said, the clip's caption, or what kind of thing it was."""
    if m.text:
        return m.text
    if m.kind == "clip":
        return f"Camera · {m.n_frames} frames" if m.n_frames else "Camera"
    if not m.sound or m.sound == "speech":
        return "Speech (not transcribed)"
    return m.sound.capitalize()


def moment_t0_from_id(moment_id: str) -> float | None:
    """Utterance and clip ids carry their start: `utt-<t0 ms>`, `clip-<t0 ms>` (a summary's id,
    `sum-day-2026-11-24`, carries no such number: None)."""
    kind, _, digits = moment_id.rpartition("-")
    return int(digits) / 1000 if kind in ("utt", "clip") and digits.isdigit() else None


def summary_day(summary_id: str) -> str | None:
    """The local day a summary id names: `sum-day-YYYY-MM-DD`, `sum-hour-YYYY-MM-DDTHH`."""
    for prefix in (DAY_SUMMARY, HOUR_SUMMARY):
        if summary_id.startswith(prefix):
            return summary_id[len(prefix):len(prefix) + 10]
    return None


_HOUR_SPAN = re.compile(r"^\d\d:\d\d\s*[–-]\s*\d\d:\d\d:\s*")


def summary_line(text: str) -> str:
    """An hour summary without its leading `09:00–10:00: ` (the hour row says the hour)."""
    return _HOUR_SPAN.sub("", " ".join(text.split()))


_LONG_DATE = re.compile(r"^[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4},\s*")


def day_summary(summaries: Iterable[Moment]) -> str:
    """The text of the day summary among `summaries` ("" if there is none), without the date it
    starts with (the timeline's title says it)."""
    text = next((s.text for s in summaries if s.id.startswith(DAY_SUMMARY)), "")
    return _LONG_DATE.sub("", " ".join(text.split()))


def moment_json(m: Moment, key_frame: str | None = None) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "day": local_day(m.t0_s),
        "start": iso(m.t0_s),
        "end": iso(m.t1_s),
        "duration_s": round(m.t1_s - m.t0_s, 3),
        "text": m.text,
        "sound": m.sound or None,
        "n_frames": m.n_frames,
        "key_frame": key_frame,
    }


# --- the day model -------------------------------------------------------------------------


CAMERA_GAP_S = 5.0  # no clip for this long between two clips: a gap in what was seen


def _hour_fraction(t_s: float) -> float:
    """How far into its (local) hour `t_s` is, 0..1, to the second."""
    t = local_dt(t_s)
    return (t.minute * 60 + t.second) / 3600


def _order(m: Moment) -> tuple[float, str, str]:
    return (m.t0_s, m.kind, m.id)


@dataclass
class _Lane:
    """One hour of the shown day: its moments in time order, plus what the hour row draws."""

    hour: int
    moments: list[Moment]
    ticks: list[tuple[float, bool]] = field(default_factory=list)  # (fraction of hour, is clip)
    n_clips: int = 0
    bands: list[tuple[float, float]] = field(default_factory=list)  # episodes, fractions of hour
    summary: str = ""  # the hour's summary (long-term memory), "" until one is written
    # Where the camera saw nothing between two clips of the hour (lost, reconnecting, paused,
    # the app closed): (start, end) as fractions of the hour, and the seconds missing.
    gaps: list[tuple[float, float]] = field(default_factory=list)
    gap_s: float = 0.0

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.ticks = [(_hour_fraction(m.t0_s), m.kind == "clip") for m in self.moments]
        self.n_clips = sum(1 for _, clip in self.ticks if clip)
        self.gaps, self.gap_s = [], 0.0
        clips = [m for m in self.moments if m.kind == "clip"]
        for before, after in itertools.pairwise(clips):
            if after.t0_s - before.t1_s >= CAMERA_GAP_S:
                frac = _hour_fraction(before.t1_s)
                self.gaps.append((frac, min(1.0, frac + (after.t0_s - before.t1_s) / 3600)))
                self.gap_s += after.t0_s - before.t1_s

    @property
    def n_utterances(self) -> int:
        return len(self.moments) - self.n_clips


def group_by_hour(moments: Iterable[Moment], summaries: Iterable[Moment] = ()) -> list[_Lane]:
    """Moments → hour lanes in order, each with its hour's summary if there is one (runs off
    the GUI thread for big days). Summaries never become moment rows."""
    by_hour: dict[int, list[Moment]] = {}
    for m in sorted(moments, key=_order):
        if m.kind != "summary":
            by_hour.setdefault(local_dt(m.t0_s).hour, []).append(m)
    texts = {local_dt(s.t0_s).hour: s.text for s in summaries
             if s.kind == "summary" and s.id.startswith(HOUR_SUMMARY)}
    return [_Lane(h, ms, summary=texts.get(h, "")) for h, ms in sorted(by_hour.items())]


_HOUR_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_MOMENT_FLAGS = _HOUR_FLAGS | Qt.ItemFlag.ItemNeverHasChildren


class DayModel(QAbstractItemModel):
    """One day: hour rows (top level) with their moments as children, one column.

    A child's internal id is its hour + 1 (top rows: 0), which stays valid while lanes come and go.
    """

    def __init__(self, loader: ThumbnailLoader, key_frames: KeyFrameDir,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.key_frames = key_frames
        self.thumb_box = COMPACT_THUMB
        self.dpr = 1.0
        self.day = ""
        self._lanes: list[_Lane] = []
        self._where: dict[str, tuple[int, int]] | None = None  # id → (hour, position)
        loader.loaded.connect(self._thumb_loaded)

    # Qt's side -------------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = _ROOT) -> QModelIndex:
        if column != 0 or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, 0, 0) if row < len(self._lanes) else QModelIndex()
        if parent.internalId() != 0 or parent.row() >= len(self._lanes):
            return QModelIndex()
        lane = self._lanes[parent.row()]
        return self.createIndex(row, 0, lane.hour + 1) if row < len(lane.moments) else QModelIndex()

    def parent(self, index: Index = _ROOT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        row = self._lane_row(int(index.internalId()) - 1)
        return self.createIndex(row, 0, 0) if row is not None else QModelIndex()

    def rowCount(self, parent: Index = _ROOT) -> int:
        if not parent.isValid():
            return len(self._lanes)
        if parent.internalId() == 0 and parent.row() < len(self._lanes):
            return len(self._lanes[parent.row()].moments)
        return 0

    def columnCount(self, parent: Index = _ROOT) -> int:
        return 1

    def hasChildren(self, parent: Index = _ROOT) -> bool:
        if not parent.isValid():
            return bool(self._lanes)
        return parent.internalId() == 0  # lanes are never empty

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if index.internalId() == 0:
            return _HOUR_FLAGS
        return _MOMENT_FLAGS  # "never has children" spares the view a call per row

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if index.internalId() == 0:
            lane = self._lanes[index.row()]
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{lane.hour:02d}:00"
            if role == HourRole:
                return lane.hour
            if role == LaneRole:
                return lane
            if role == Qt.ItemDataRole.ToolTipRole:
                about = f"\n{lane.summary}" if lane.summary else ""
                return (f"{lane.hour:02d}:00–{(lane.hour + 1) % 24:02d}:00: {lane.n_clips} seen, "
                        f"{lane.n_utterances} heard. Double-click to zoom in.{about}")
            return None
        m = self.moment(index)
        if m is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{_hms(m.t0_s)} {describe(m)}"
        if role == MomentRole:
            return m
        if role == HourRole:
            return int(index.internalId()) - 1
        if role == ThumbRole:
            return self.thumbnail(index)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{_span(m)} ({_duration(m.t1_s - m.t0_s)})\n{describe(m)}"
        return None

    # Daybook's side --------------------------------------------------------------------------

    def lane(self, index: Index) -> _Lane | None:
        """The hour lane of an hour row (None for a moment row)."""
        if not index.isValid() or index.internalId() != 0 or index.row() >= len(self._lanes):
            return None
        return self._lanes[index.row()]

    def hour_of(self, index: Index) -> int | None:
        """The hour of any row."""
        if not index.isValid():
            return None
        if index.internalId() == 0:
            lane = self.lane(index)
            return lane.hour if lane else None
        return int(index.internalId()) - 1

    def thumbnail(self, index: Index) -> QPixmap | None:
        """A clip row's key frame at the current thumbnail size, once loaded (else None)."""
        m = self.moment(index)
        if m is None or m.kind != "clip" or not m.key_frame:
            return None
        key = ThumbnailLoader.key(m.id, self.thumb_box)
        return self.loader.get(key, partial(self.key_frames.absolute, m.key_frame),
                               self.thumb_box, self.dpr)

    def moment(self, index: Index) -> Moment | None:
        if not index.isValid() or index.internalId() == 0:
            return None
        row = self._lane_row(int(index.internalId()) - 1)
        if row is None or index.row() >= len(self._lanes[row].moments):
            return None
        return self._lanes[row].moments[index.row()]

    def lanes(self) -> list[_Lane]:
        return list(self._lanes)

    def moment_count(self) -> int:
        return sum(len(lane.moments) for lane in self._lanes)

    def moments(self) -> list[Moment]:
        return [m for lane in self._lanes for m in lane.moments]

    def hour_index(self, hour: int) -> QModelIndex:
        row = self._lane_row(hour)
        return self.index(row, 0) if row is not None else QModelIndex()

    def index_of(self, moment_id: str) -> QModelIndex:
        if self._where is None:
            self._where = {m.id: (lane.hour, pos) for lane in self._lanes
                           for pos, m in enumerate(lane.moments)}
        found = self._where.get(moment_id)
        if found is None:
            return QModelIndex()
        hour, pos = found
        return self.index(pos, 0, self.hour_index(hour))

    def set_episodes(self, episodes: Sequence[Episode]) -> None:
        """Mark the day's episodes on the hour rows' strips (as bands under the ticks)."""
        for row, lane in enumerate(self._lanes):
            if not lane.moments:
                continue
            start = local_dt(lane.moments[0].t0_s).replace(minute=0, second=0, microsecond=0)
            start_s = start.timestamp()
            bands = []
            for e in episodes:
                a = (e.t0_s - start_s) / 3600
                b = (e.t1_s - start_s) / 3600
                if b > 0 and a < 1:
                    bands.append((max(0.0, a), min(1.0, b)))
            if bands != lane.bands:
                lane.bands = bands
                index = self.index(row, 0)
                self.dataChanged.emit(index, index)

    def set_day(self, day: str, lanes: list[_Lane]) -> None:
        """Show another day (resets views)."""
        self.beginResetModel()
        self.day, self._lanes, self._where = day, lanes, None
        self.endResetModel()

    def merge(self, lanes: list[_Lane]) -> list[int]:
        """Bring the shown day up to date with minimal row changes, so views keep their scroll
        position, selection and expanded hours. Returns the hours that were added."""
        wanted = {lane.hour: lane for lane in lanes}
        for row in reversed(range(len(self._lanes))):
            if self._lanes[row].hour not in wanted:
                self._remove_lanes(row, row)
        added = []
        for hour, new in sorted(wanted.items()):
            row = bisect.bisect_left([lane.hour for lane in self._lanes], hour)
            if row < len(self._lanes) and self._lanes[row].hour == hour:
                self._lanes[row].summary = new.summary  # _merge_lane repaints the hour row
                self._merge_lane(row, new.moments)
            else:
                self.beginInsertRows(QModelIndex(), row, row)
                self._lanes.insert(row, new)
                self._where = None
                self.endInsertRows()
                added.append(hour)
        return added

    def remove_ids(self, ids: Iterable[str]) -> int:
        """Drop moments (deleted elsewhere); returns how many were shown."""
        doomed = set(ids)
        removed = 0
        for row in reversed(range(len(self._lanes))):
            lane = self._lanes[row]
            keep = [m for m in lane.moments if m.id not in doomed]
            if len(keep) == len(lane.moments):
                continue
            removed += len(lane.moments) - len(keep)
            if keep:
                self._merge_lane(row, keep)
            else:
                self._remove_lanes(row, row)
        return removed

    def _lane_row(self, hour: int) -> int | None:
        for row, lane in enumerate(self._lanes):  # at most 24
            if lane.hour == hour:
                return row
        return None

    def _remove_lanes(self, first: int, last: int) -> None:
        self.beginRemoveRows(QModelIndex(), first, last)
        del self._lanes[first:last + 1]
        self._where = None
        self.endRemoveRows()

    def _merge_lane(self, row: int, moments: list[Moment]) -> None:
        lane = self._lanes[row]
        parent = self.index(row, 0)
        keep = {m.id for m in moments}
        # Removals, as contiguous runs from the end.
        i = len(lane.moments) - 1
        while i >= 0:
            if lane.moments[i].id in keep:
                i -= 1
                continue
            j = i
            while j > 0 and lane.moments[j - 1].id not in keep:
                j -= 1
            self.beginRemoveRows(parent, j, i)
            del lane.moments[j:i + 1]
            self._where = None
            self.endRemoveRows()
            i = j - 1
        # What is left is in the new order (both sorted alike): insert the new runs, update the rest.
        have = {m.id for m in lane.moments}
        k = 0
        while k < len(moments):
            if moments[k].id in have:
                if lane.moments[k] != moments[k]:
                    lane.moments[k] = moments[k]
                    index = self.index(k, 0, parent)
                    self.dataChanged.emit(index, index)
                k += 1
                continue
            end = k
            while end < len(moments) and moments[end].id not in have:
                end += 1
            self.beginInsertRows(parent, k, end - 1)
            lane.moments[k:k] = moments[k:end]
            self._where = None
            self.endInsertRows()
            k = end
        lane.refresh()
        self.dataChanged.emit(parent, parent)

    @Slot(str)
    def _thumb_loaded(self, key: str) -> None:
        moment_id, _, size = key.rpartition("@")
        if size != f"{self.thumb_box.width()}x{self.thumb_box.height()}":
            return
        index = self.index_of(moment_id)
        if index.isValid():
            self.dataChanged.emit(index, index, [ThumbRole])


class HitModel(QAbstractListModel):
    """Search results: one row per cited moment, with a small thumbnail."""

    def __init__(self, loader: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.dpr = 1.0
        self.citations: list[Citation] = []
        loader.loaded.connect(self._thumb_loaded)

    def rowCount(self, parent: Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.citations)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.citations):
            return None
        c = self.citations[index.row()]
        m = c.moment
        if role == Qt.ItemDataRole.DisplayRole:
            text = describe(m)
            if len(text) > 90:
                text = text[:88].rstrip() + "…"
            return f"{_short_date(m.t0_s)} · {_hms(m.t0_s)}\n{text}"
        if role == ThumbRole:
            return self.thumbnail(index)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{_span(m)} · score {c.score:.2f}\n{describe(m)}"
        if role == MomentRole:
            return m
        return None

    def citation(self, index: Index) -> Citation | None:
        ok = index.isValid() and index.row() < len(self.citations)
        return self.citations[index.row()] if ok else None

    def thumbnail(self, index: Index) -> QPixmap | None:
        c = self.citation(index)
        thumb = c.thumbnail if c is not None else None
        if c is None or thumb is None or c.moment.kind == "summary":
            return None  # a summary has no picture (a frame near a whole day would mislead)
        key = ThumbnailLoader.key(c.moment.id, HIT_THUMB)
        return self.loader.get(key, lambda: thumb, HIT_THUMB, self.dpr)

    def set_citations(self, citations: list[Citation]) -> None:
        self.beginResetModel()
        self.citations = list(citations)
        self.endResetModel()

    def remove_ids(self, ids: Iterable[str]) -> None:
        doomed = set(ids)
        for row in reversed(range(len(self.citations))):
            if self.citations[row].moment.id in doomed:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.citations[row]
                self.endRemoveRows()

    @Slot(str)
    def _thumb_loaded(self, key: str) -> None:
        moment_id, _, size = key.rpartition("@")
        if size != f"{HIT_THUMB.width()}x{HIT_THUMB.height()}":
            return
        for row, c in enumerate(self.citations):
            if c.moment.id == moment_id:
                index = self.index(row, 0)
                self.dataChanged.emit(index, index, [ThumbRole])


# --- drawing the lanes -----------------------------------------------------------------------


