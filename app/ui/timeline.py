"""The memory timeline: a day's moments in hour lanes, search, and a moment view.

Nothing slow runs in the GUI thread. Day loads, searches and deletes run on one background thread,
in order (`BackgroundTasks.store_pool`); key frames are decoded to QImage on a small pool of their
own (`ThumbnailLoader`). Both hand results back through `BackgroundTasks._delivered`, a signal on a
QObject living in the GUI thread, so the callbacks run there; QPixmaps are made only there.

The day is a two-level Qt model (`DayModel`): hours are the top rows, their moments the children.
One `QTreeView` shows it: the whole day compact, or one hour (the view's root index set to that
hour) with larger thumbnails. Rows have one height, so a day with thousands of moments lays out
and scrolls without measuring every row.

The delegates and the window read the models through their Python methods (`DayModel.moment`,
`.lane`, `.thumbnail`) rather than `index.data(role)`: no QVariant round trip per painted row.
The roles stay for Qt's own use (tooltips, accessibility).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import logging
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QCoreApplication,
    QDate,
    QEvent,
    QLocale,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    QThread,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QImageReader,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.core.events import MomentsDeleted, MomentsStored
from app.core.timefmt import iso, local_day, local_dt
from app.memory.base import Moment
from app.memory.keyframes import KeyFrameDir
from app.reasoning.base import Citation
from app.ui.bridge import EventBridge

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

ENGLISH = QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom)


# --- background work -----------------------------------------------------------------------


class BackgroundTasks(QObject):
    """Runs work off the GUI thread and hands results back in it. One per application.

    `store_pool` has one thread, so the UI's store calls (day loads, searches, deletes) run one
    at a time, in the order asked; `image_pool` decodes key frames. Do not call UI routines from
    the work functions: only the `done`/`failed` callbacks run in the GUI thread, and only while
    their owner QObject is alive.
    """

    _delivered = Signal(object)  # (owner, callable, args): run in the GUI thread
    _instance: ClassVar[BackgroundTasks | None] = None

    @classmethod
    def instance(cls) -> BackgroundTasks:
        """The application's instance (create it from the GUI thread)."""
        if cls._instance is None or not isValid(cls._instance):
            cls._instance = cls(QCoreApplication.instance())
        return cls._instance

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store_pool = QThreadPool()
        self.store_pool.setMaxThreadCount(1)
        self.image_pool = QThreadPool()
        self.image_pool.setMaxThreadCount(max(1, min(2, QThread.idealThreadCount() - 1)))
        self._delivered.connect(self._deliver)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def run(self, owner: QObject, work: Callable[[], T], done: Callable[[T], None],
            failed: Callable[[Exception], None] | None = None) -> None:
        """Run `work` on the store thread; `done(result)` or `failed(error)` in the GUI thread."""

        def job() -> None:
            try:
                result = work()
            except Exception as exc:
                log.exception("background task failed")
                if failed is not None:
                    self.post(owner, failed, exc)
                return
            self.post(owner, done, result)

        self.store_pool.start(job)

    def post(self, owner: QObject, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread: call `fn(*args)` in the GUI thread, unless `owner` is gone by then."""
        self._delivered.emit((owner, fn, args))

    @Slot(object)
    def _deliver(self, item: tuple[QObject, Callable[..., Any], tuple[Any, ...]]) -> None:
        owner, fn, args = item
        if not isValid(owner):
            return
        try:
            fn(*args)
        except Exception:
            log.exception("delivering a background result failed")

    @Slot()
    def shutdown(self) -> None:
        """At exit: drop queued work, wait for running work."""
        for pool in (self.store_pool, self.image_pool):
            pool.clear()
        self.wait()

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Wait until all queued and running work is done (results are delivered later)."""
        return all(pool.waitForDone(timeout_ms) for pool in (self.store_pool, self.image_pool))


def _decode(path: Path, box_px: QSize) -> QImage | None:
    """Read a JPEG scaled to fit `box_px` (libjpeg scales while decoding: fast)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid():
        reader.setScaledSize(size.scaled(box_px, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return None if image.isNull() else image


class ThumbnailLoader(QObject):
    """Key frames as QPixmaps: decoded off the GUI thread, kept in a small LRU cache.

    `get` answers from the cache at once, or asks for a decode and answers None; `loaded(key)`
    follows in the GUI thread. The newest requests run first, and only the newest `max_pending`
    are still wanted when their turn comes (older ones are skipped), so fast scrolling through
    thousands of rows decodes only what is (nearly) on screen.
    """

    loaded = Signal(str)  # cache key; the pixmap is in the cache
    missing = Signal(str)  # cache key; no image (no file, or it could not be read)

    def __init__(self, parent: QObject | None = None, *, max_bytes: int = 48 << 20,
                 max_pending: int = 160) -> None:
        super().__init__(parent)
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self._tasks = BackgroundTasks.instance()
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._bytes = 0
        # key → request number; read by the decoding threads to skip requests no longer wanted
        self._pending: OrderedDict[str, int] = OrderedDict()
        self._missing: set[str] = set()
        self._requests = itertools.count(1)
        self.decode_threads: set[int] = set()  # idents of the threads that decoded (tests)
        self.decoded = 0

    @staticmethod
    def key(moment_id: str, box: QSize) -> str:
        return f"{moment_id}@{box.width()}x{box.height()}"

    def get(self, key: str, locate: Callable[[], Path | None], box: QSize,
            dpr: float = 1.0) -> QPixmap | None:
        """The cached pixmap, or None (a decode is queued unless one is, or the file is missing).

        `locate` runs on the decoding thread (it may scan a folder)."""
        pixmap = self._cache.get(key)
        if pixmap is not None:
            self._cache.move_to_end(key)
            return pixmap
        if key not in self._pending and key not in self._missing:
            self._request(key, locate, box, dpr)
        return None

    def is_missing(self, key: str) -> bool:
        return key in self._missing

    @property
    def pending(self) -> int:
        return len(self._pending)

    def forget(self, moment_ids: Iterable[str]) -> None:
        prefixes = tuple(f"{i}@" for i in moment_ids)
        for key in [k for k in self._cache if k.startswith(prefixes)]:
            self._bytes -= self._cost(self._cache.pop(key))
        self._missing = {k for k in self._missing if not k.startswith(prefixes)}

    def _request(self, key: str, locate: Callable[[], Path | None], box: QSize,
                 dpr: float) -> None:
        box_px = QSize(round(box.width() * dpr), round(box.height() * dpr))
        threads, pending, tasks = self.decode_threads, self._pending, self._tasks
        number = next(self._requests)

        def work() -> None:
            if pending.get(key) != number:
                return  # scrolled past (or asked again since)
            threads.add(threading.get_ident())
            image = None
            try:
                path = locate()
                image = _decode(path, box_px) if path is not None else None
            except Exception:
                log.exception("decoding the key frame for %s failed", key)
            tasks.post(self, self._decoded, key, number, image, dpr)

        pending[key] = number
        while len(pending) > self.max_pending:
            pending.popitem(last=False)
        tasks.image_pool.start(work, number % (1 << 30))  # higher runs first: the newest

    def _decoded(self, key: str, number: int, image: QImage | None, dpr: float) -> None:
        if self._pending.get(key) == number:
            del self._pending[key]
        if image is None:
            self._missing.add(key)
            self.missing.emit(key)
            return
        self.decoded += 1
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(dpr)
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= self._cost(old)
        self._cache[key] = pixmap
        self._bytes += self._cost(pixmap)
        while self._bytes > self.max_bytes and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._bytes -= self._cost(evicted)
        self.loaded.emit(key)

    @staticmethod
    def _cost(pixmap: QPixmap) -> int:
        return pixmap.width() * pixmap.height() * 4


# --- formatting ----------------------------------------------------------------------------


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
    """Utterance and clip ids carry their start: `utt-<t0 ms>`, `clip-<t0 ms>`."""
    _, _, digits = moment_id.rpartition("-")
    return int(digits) / 1000 if digits.isdigit() else None


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


def _order(m: Moment) -> tuple[float, str, str]:
    return (m.t0_s, m.kind, m.id)


@dataclass
class _Lane:
    """One hour of the shown day: its moments in time order, plus what the hour row draws."""

    hour: int
    moments: list[Moment]
    ticks: list[tuple[float, bool]] = field(default_factory=list)  # (fraction of hour, is clip)
    n_clips: int = 0

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        ticks = []
        for m in self.moments:
            t = local_dt(m.t0_s)
            ticks.append(((t.minute * 60 + t.second) / 3600, m.kind == "clip"))
        self.ticks = ticks
        self.n_clips = sum(1 for _, clip in ticks if clip)

    @property
    def n_utterances(self) -> int:
        return len(self.moments) - self.n_clips


def group_by_hour(moments: Iterable[Moment]) -> list[_Lane]:
    """Moments → hour lanes in order (runs off the GUI thread for big days)."""
    by_hour: dict[int, list[Moment]] = {}
    for m in sorted(moments, key=_order):
        by_hour.setdefault(local_dt(m.t0_s).hour, []).append(m)
    return [_Lane(h, ms) for h, ms in sorted(by_hour.items())]


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
                return (f"{lane.hour:02d}:00–{(lane.hour + 1) % 24:02d}:00: {lane.n_clips} seen, "
                        f"{lane.n_utterances} heard. Double-click to zoom in.")
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
        if c is None or thumb is None:
            return None
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


def _secondary(palette: QPalette, selected: bool) -> QColor:
    if selected:
        return palette.color(QPalette.ColorRole.HighlightedText)
    color = palette.color(QPalette.ColorRole.Text)
    color.setAlphaF(0.6)
    return color


def _fit(size: QSize, box: QRect) -> QRect:
    scaled = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(box.x() + (box.width() - scaled.width()) // 2,
                 box.y() + (box.height() - scaled.height()) // 2, scaled.width(), scaled.height())


def _paint_bubble(painter: QPainter, box: QRect, color: QColor) -> None:
    """A speech bubble (drawn, so it does not depend on an emoji font)."""
    w = min(box.width(), round(box.height() * 1.25))
    h = round(w * 0.62)
    body = QRectF(box.center().x() - w / 2, box.center().y() - h / 2 - 2, w, h)
    path = QPainterPath()
    path.addRoundedRect(body, h * 0.3, h * 0.3)
    tail = QPainterPath()
    tail.moveTo(body.left() + w * 0.25, body.bottom() - 1)
    tail.lineTo(body.left() + w * 0.18, body.bottom() + h * 0.32)
    tail.lineTo(body.left() + w * 0.45, body.bottom() - 1)
    tail.closeSubpath()
    path = path.united(tail)
    fill = QColor(color)
    fill.setAlphaF(0.18)
    painter.setPen(QPen(color, 1.2))
    painter.setBrush(fill)
    painter.drawPath(path)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    r = max(1.5, h * 0.08)
    for dx in (-w * 0.2, 0.0, w * 0.2):
        painter.drawEllipse(QPointF(body.center().x() + dx, body.center().y()), r, r)


class LaneDelegate(QStyledItemDelegate):
    """Paints hour rows (time, counts, a strip of minute ticks) and moment rows (time,
    thumbnail or speech bubble, text). Rows are all one height (`large` picks which)."""

    def __init__(self, model: DayModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.large = False

    @property
    def thumb_box(self) -> QSize:
        return LARGE_THUMB if self.large else COMPACT_THUMB

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(320, LARGE_ROW_PX if self.large else COMPACT_ROW_PX)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        widget = opt.widget
        style = widget.style() if widget is not None else None
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        lane = self.model.lane(index)
        if lane is not None and not selected:
            band = QColor(opt.palette.color(QPalette.ColorRole.AlternateBase))
            painter.fillRect(opt.rect, band)
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        if lane is not None:
            self._paint_hour(painter, opt, lane, selected)
        else:
            moment = self.model.moment(index)
            if moment is not None:
                self._paint_moment(painter, opt, index, moment, selected)
        painter.restore()

    def _paint_hour(self, painter: QPainter, opt: QStyleOptionViewItem, lane: _Lane,
                    selected: bool) -> None:
        rect: QRect = opt.rect.adjusted(4, 0, -10, 0)
        palette: QPalette = opt.palette
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected
                                   else QPalette.ColorRole.Text)
        bold = QFont(opt.font)
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.1)
        painter.setFont(bold)
        painter.setPen(text_color)
        label = f"{lane.hour:02d}:00"
        fm = painter.fontMetrics()
        painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
        x = rect.left() + fm.horizontalAdvance("00:00") + 14

        painter.setFont(opt.font)
        fm = painter.fontMetrics()
        strip_w = max(120, min(360, rect.width() // 2))
        strip = QRect(rect.right() - strip_w, rect.center().y() - 7, strip_w, 14)
        counts = [(f"{len(lane.moments)} moments", None),
                  (f"{lane.n_clips} seen", CLIP_COLOR), (f"{lane.n_utterances} heard", SPEECH_COLOR)]
        for i, (text, dot) in enumerate(counts):
            if i:
                text = "·  " + text if dot is None else text
            if dot is not None:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(dot)
                painter.drawEllipse(QPoint(x + 4, rect.center().y() + 1), 4, 4)
                x += 12
            painter.setPen(_secondary(palette, selected))
            width = fm.horizontalAdvance(text)
            if x + width > strip.left() - 12:
                break
            painter.drawText(QRect(x, rect.top(), width + 2, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter, text)
            x += width + 14

        track = QColor(palette.color(QPalette.ColorRole.Text))
        track.setAlphaF(0.08)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(strip, 3, 3)
        guide = QColor(palette.color(QPalette.ColorRole.Text))
        guide.setAlphaF(0.2)
        painter.setPen(QPen(guide, 1))
        for quarter in (1, 2, 3):
            gx = strip.left() + strip.width() * quarter // 4
            painter.drawLine(gx, strip.top() + 3, gx, strip.bottom() - 3)
        for clip_pass in (True, False):  # speech on top: it is sparser
            painter.setPen(QPen(CLIP_COLOR if clip_pass else SPEECH_COLOR, 2))
            for frac, is_clip in lane.ticks:
                if is_clip == clip_pass:
                    tx = strip.left() + 1 + round(frac * (strip.width() - 2))
                    painter.drawLine(tx, strip.top() + 2, tx, strip.bottom() - 2)

    def _paint_moment(self, painter: QPainter, opt: QStyleOptionViewItem, index: Index,
                      m: Moment, selected: bool) -> None:
        rect: QRect = opt.rect.adjusted(6, 2, -10, -2)
        palette: QPalette = opt.palette
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected
                                   else QPalette.ColorRole.Text)
        painter.setFont(opt.font)
        fm = painter.fontMetrics()
        # Compact rows lead with the start time; large rows say the whole span beside the image.
        time_w = 0 if self.large else fm.horizontalAdvance("00:00:00") + 12
        time_rect = QRect(rect.left(), rect.top(), time_w, rect.height())
        if not self.large:
            painter.setPen(_secondary(palette, selected))
            painter.drawText(time_rect, Qt.AlignmentFlag.AlignVCenter, _hms(m.t0_s))

        box_size = self.thumb_box
        box = QRect(time_rect.right() + 1, rect.top() + (rect.height() - box_size.height()) // 2,
                    box_size.width(), box_size.height())
        if m.kind == "clip":
            pixmap = self.model.thumbnail(index)
            if pixmap is not None and not pixmap.isNull():
                target = _fit(pixmap.deviceIndependentSize().toSize(), box)
                painter.drawPixmap(target, pixmap)
            else:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128, 50))
                painter.drawRoundedRect(box, 3, 3)
        else:
            side = 56 if self.large else 26
            _paint_bubble(painter, QRect(box.center().x() - side // 2 - side // 4,
                                         box.center().y() - side // 2, side + side // 2, side),
                          SPEECH_COLOR)

        text_left = box.right() + 12
        duration = _duration(m.t1_s - m.t0_s)
        dur_w = fm.horizontalAdvance(duration) + 4
        painter.setPen(text_color if m.text else _secondary(palette, selected))
        if self.large:
            head = QRect(text_left, rect.top() + 4, rect.right() - text_left, fm.height())
            painter.setPen(_secondary(palette, selected))
            painter.drawText(head, Qt.AlignmentFlag.AlignLeft,
                             f"{_span(m)} · {duration} · {'seen' if m.kind == 'clip' else 'heard'}")
            body = QRect(text_left, head.bottom() + 6, rect.right() - text_left,
                         rect.bottom() - head.bottom() - 8)
            painter.setPen(text_color if m.text else _secondary(palette, selected))
            lines = max(1, body.height() // fm.lineSpacing())
            text = describe(m)
            elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, body.width() * lines)
            painter.drawText(body, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignTop, elided)
        else:
            text_rect = QRect(text_left, rect.top(), rect.right() - text_left - dur_w - 8,
                              rect.height())
            text = fm.elidedText(describe(m).replace("\n", " "), Qt.TextElideMode.ElideRight,
                                 text_rect.width())
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, text)
            painter.setPen(_secondary(palette, selected))
            painter.drawText(QRect(rect.right() - dur_w, rect.top(), dur_w, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, duration)


class HitDelegate(QStyledItemDelegate):
    """A search hit: its picture (or a speech bubble), when, and what."""

    def __init__(self, model: HitModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(240, HIT_THUMB.height() + 10)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        widget = opt.widget
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if widget is not None:
            widget.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt,
                                         painter, widget)
        c = self.model.citation(index)
        if c is not None:
            m = c.moment
            selected = bool(opt.state & QStyle.StateFlag.State_Selected)
            rect = opt.rect.adjusted(5, 5, -6, -5)
            box = QRect(rect.left(), rect.top(), HIT_THUMB.width(), HIT_THUMB.height())
            pixmap = self.model.thumbnail(index)
            if pixmap is not None and not pixmap.isNull():
                painter.drawPixmap(_fit(pixmap.deviceIndependentSize().toSize(), box), pixmap)
            elif m.kind == "clip":
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128, 50))
                painter.drawRoundedRect(box, 3, 3)
            else:
                _paint_bubble(painter, QRect(box.center().x() - 20, box.center().y() - 13, 40, 26),
                              SPEECH_COLOR)
            palette = opt.palette
            fm = opt.fontMetrics
            left = box.right() + 10
            width = rect.right() - left
            line = fm.height()
            top = rect.top() + (rect.height() - 2 * line - 2) // 2
            painter.setFont(opt.font)
            painter.setPen(_secondary(palette, selected))
            kind = "seen" if m.kind == "clip" else "heard"
            painter.drawText(QRect(left, top, width, line), Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(f"{_short_date(m.t0_s)} · {_hms(m.t0_s)} · {kind}",
                                           Qt.TextElideMode.ElideRight, width))
            painter.setPen(palette.color(QPalette.ColorRole.HighlightedText if selected
                                         else QPalette.ColorRole.Text))
            painter.drawText(QRect(left, top + line + 2, width, line), Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(describe(m).replace("\n", " "),
                                           Qt.TextElideMode.ElideRight, width))
        painter.restore()


# --- the moment view -------------------------------------------------------------------------


class MomentView(QFrame):
    """A side panel showing one moment: key frame, times, kind, what was heard, and actions."""

    deleteRequested = Signal()
    exportRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.moment: Moment | None = None
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(PANEL_IMAGE.width() // 2, PANEL_IMAGE.height() // 2)
        self.image.setMaximumHeight(PANEL_IMAGE.height())
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.image.setStyleSheet("QLabel { background: rgba(128,128,128,40); border-radius: 4px; }")
        self.image_note = QLabel()
        self.image_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = QLabel()
        self.kind = QLabel()
        self.heard_label = QLabel("Heard")
        self.heard = QLabel()
        self.caption_label = QLabel("Caption")
        self.caption = QLabel()
        for label in (self.heard_label, self.caption_label):
            bold = label.font()
            bold.setBold(True)
            label.setFont(bold)
        for label in (self.heard, self.caption, self.subtitle, self.kind, self.image_note):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the key frame (JPEG) and the moment (JSON) to a folder")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Forget this moment and its key frame")
        self.export_button.clicked.connect(self.exportRequested)
        self.delete_button.clicked.connect(self.deleteRequested)
        self.placeholder = QLabel("Select a moment to see it here.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)

        details = QWidget()
        lay = QVBoxLayout(details)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(self.image)
        lay.addWidget(self.image_note)
        lay.addSpacing(4)
        lay.addWidget(self.title)
        lay.addWidget(self.subtitle)
        lay.addWidget(self.kind)
        lay.addSpacing(6)
        lay.addWidget(self.heard_label)
        lay.addWidget(self.heard)
        lay.addWidget(self.caption_label)
        lay.addWidget(self.caption)
        lay.addStretch(1)
        lay.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.delete_button)
        lay.addLayout(buttons)
        self.details = details

        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(details)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 10, 10, 10)
        outer.addWidget(self.stack)
        self.show_moment(None)

    def show_moment(self, m: Moment | None, note: str = "") -> None:
        self.moment = m
        self.status.clear()
        if m is None:
            self.placeholder.setText(note or "Select a moment to see it here.")
            self.stack.setCurrentWidget(self.placeholder)
            return
        self.stack.setCurrentWidget(self.details)
        self.title.setText(_span(m))
        self.subtitle.setText(f"{_long_date(local_day(m.t0_s), year=True)} · "
                              f"{_duration(m.t1_s - m.t0_s)}")
        if m.kind == "clip":
            frames = f", {m.n_frames} frames" if m.n_frames else ""
            self.kind.setText(f"<span style='color:{CLIP_COLOR.name()}'>●</span> "
                              f"Seen (camera clip{frames})")
            self.heard_label.hide()
            self.heard.hide()
            self.caption_label.setVisible(bool(m.text))
            self.caption.setVisible(bool(m.text))
            self.caption.setText(m.text)
        else:
            sound = m.sound or "speech"
            self.kind.setText(f"<span style='color:{SPEECH_COLOR.name()}'>●</span> "
                              f"Heard ({sound})")
            self.heard_label.show()
            self.heard.show()
            self.heard.setText(f"“{m.text}”" if m.text else describe(m))
            self.caption_label.hide()
            self.caption.hide()
            self.image_note.setText("The camera around then")
        self.set_image(None)

    def set_image(self, pixmap: QPixmap | None, missing: bool = False) -> None:
        """The key frame (None: still loading, or `missing`)."""
        utterance = self.moment is not None and self.moment.kind != "clip"
        # An utterance without a camera frame near it simply has no picture.
        self.image.setVisible(not (utterance and missing))
        self.image_note.setVisible(utterance and not missing)
        if pixmap is None:
            self.image.setPixmap(QPixmap())
            self.image.setText("The key frame is missing" if missing else "")
        else:
            self.image.setText("")
            self.image.setPixmap(pixmap)

    def show_status(self, text: str) -> None:
        self.status.setText(text)


# --- the window ------------------------------------------------------------------------------


class TimelineWindow(QWidget):
    """Browse the memory by day and hour, search it, open, delete and export moments.

    Usable as a tab or a top-level window. Day loads and searches finish asynchronously:
    `dayLoaded(day)` and `searchFinished(count)` say when. Set `confirm` to a callable returning
    True to skip the delete confirmation dialog (tests, scripted use).
    """

    momentOpened = Signal(str)  # moment id, whenever the moment view shows a moment
    dayLoaded = Signal(str)  # 'YYYY-MM-DD', after the shown day's moments are in the view
    searchFinished = Signal(int)  # number of hits
    momentsRemoved = Signal(int)  # moments taken off the view after a delete

    def __init__(self, service: Any, parent: QWidget | None = None, *,
                 bridge: EventBridge | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.confirm: Callable[[str], bool] = self._ask_confirmation
        self._tasks = BackgroundTasks.instance()
        self._day = ""
        self._loading = False
        self._load_token = 0
        self._search_token = 0
        self._pending_open: str | None = None
        self._to_expand: list[int] = []  # hours still to expand (a day opens in steps)
        self._zoom_hour: int | None = None
        self._open_id: str | None = None

        self.loader = ThumbnailLoader(self)
        self.loader.loaded.connect(self._thumb_loaded)
        self.loader.missing.connect(self._thumb_loaded)
        self.model = DayModel(self.loader, service.key_frames, self)
        self.hits = HitModel(self.loader, self)
        self._build()

        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_EVERY_MS)
        self._reload_timer.timeout.connect(self.reload)
        self._loading_timer = QTimer(self)
        self._loading_timer.setSingleShot(True)
        self._loading_timer.setInterval(200)
        self._loading_timer.timeout.connect(self._show_loading)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.search(self.search_box.text()))

        self.bridge = bridge or EventBridge(service.bus, self)
        self.bridge.received.connect(self._on_event)

    # --- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.prev_button = QToolButton()
        self.prev_button.setArrowType(Qt.ArrowType.LeftArrow)
        self.prev_button.setToolTip("Previous day")
        self.next_button = QToolButton()
        self.next_button.setArrowType(Qt.ArrowType.RightArrow)
        self.next_button.setToolTip("Next day")
        self.date_edit = QDateEdit()
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("ddd d MMM yyyy")
        self.date_edit.setLocale(ENGLISH)
        self.today_button = QPushButton("Today")
        self.zoom_box = QComboBox()
        self.zoom_box.setToolTip("Whole day, or one hour with larger pictures "
                                 "(double-click an hour to zoom in)")
        self.zoom_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search your memory…")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumWidth(260)
        self.prev_button.clicked.connect(self.previous_day)
        self.next_button.clicked.connect(self.next_day)
        self.today_button.clicked.connect(self.go_today)
        self.date_edit.dateChanged.connect(self._date_picked)
        self.zoom_box.activated.connect(self._zoom_picked)
        self.search_box.returnPressed.connect(lambda: self.search(self.search_box.text()))
        self.search_box.textEdited.connect(lambda _: self._search_timer.start())

        bar = QHBoxLayout()
        bar.addWidget(self.prev_button)
        bar.addWidget(self.date_edit)
        bar.addWidget(self.next_button)
        bar.addWidget(self.today_button)
        bar.addSpacing(16)
        bar.addWidget(QLabel("Show:"))
        bar.addWidget(self.zoom_box)
        bar.addStretch(1)
        bar.addWidget(self.search_box)

        self.day_title = QLabel()
        font = self.day_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.day_title.setFont(font)
        self.day_counts = QLabel()
        title_row = QHBoxLayout()
        title_row.addWidget(self.day_title)
        title_row.addSpacing(12)
        title_row.addWidget(self.day_counts, 1)

        self.delegate = LaneDelegate(self.model, self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setItemDelegate(self.delegate)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(14)
        self.tree.setExpandsOnDoubleClick(False)
        self.tree.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAccessibleName("Moments of the day, by hour")
        self.tree.setFrameShape(QFrame.Shape.NoFrame)
        self.tree.selectionModel().currentChanged.connect(self._current_changed)
        self.tree.doubleClicked.connect(self._double_clicked)
        # Only while the list has the focus: Delete in the search box edits text.
        QShortcut(QKeySequence.StandardKey.Delete, self.tree, lambda: self.delete_moment(),
                  Qt.ShortcutContext.WidgetShortcut)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self.tree, lambda: self.zoom_to_hour(None),
                  Qt.ShortcutContext.WidgetShortcut)

        self.empty_title = QLabel()
        self.empty_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        big = self.empty_title.font()
        big.setPointSizeF(big.pointSizeF() * 1.4)
        self.empty_title.setFont(big)
        self.empty_hint = QLabel()
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        empty = QWidget()
        empty_lay = QVBoxLayout(empty)
        empty_lay.addStretch(1)
        empty_lay.addWidget(self.empty_title)
        empty_lay.addWidget(self.empty_hint)
        empty_lay.addStretch(2)
        self.empty_page = empty

        self.pages = QStackedWidget()
        self.pages.addWidget(self.tree)
        self.pages.addWidget(self.empty_page)

        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addLayout(title_row)
        left_lay.addWidget(self.pages, 1)

        self.hits_title = QLabel()
        self.hits_title.setWordWrap(True)
        close_hits = QToolButton()
        close_hits.setText("✕")
        close_hits.setAutoRaise(True)
        close_hits.setToolTip("Close the search results")
        close_hits.clicked.connect(self.clear_search)
        hits_head = QHBoxLayout()
        hits_head.addWidget(self.hits_title, 1)
        hits_head.addWidget(close_hits)
        self.hits_view = QListView()
        self.hits_view.setModel(self.hits)
        self.hits_view.setItemDelegate(HitDelegate(self.hits, self.hits_view))
        self.hits_view.setUniformItemSizes(True)
        self.hits_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.hits_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.hits_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.hits_view.clicked.connect(self._hit_activated)
        self.hits_view.activated.connect(self._hit_activated)
        self.hits_box = QWidget()
        hits_lay = QVBoxLayout(self.hits_box)
        hits_lay.setContentsMargins(0, 0, 0, 0)
        hits_lay.addLayout(hits_head)
        hits_lay.addWidget(self.hits_view, 1)
        self.hits_box.hide()

        self.moment_view = MomentView()
        self.moment_view.setFrameShape(QFrame.Shape.StyledPanel)
        self.moment_view.deleteRequested.connect(lambda: self.delete_moment())
        self.moment_view.exportRequested.connect(self._export_clicked)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.hits_box)
        right.addWidget(self.moment_view)
        right.setStretchFactor(0, 2)
        right.setStretchFactor(1, 3)
        right.setChildrenCollapsible(False)
        right.setMinimumWidth(320)
        self.side_splitter = right

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setChildrenCollapsible(False)
        split.setSizes([900, PANEL_IMAGE.width() + 20])
        self.splitter = split

        outer = QVBoxLayout(self)
        outer.addLayout(bar)
        outer.addWidget(split, 1)
        self._fill_zoom_box()

    # --- days ---------------------------------------------------------------------------------

    def current_day(self) -> str:
        """The day shown (or being loaded), 'YYYY-MM-DD'."""
        return self._day

    def show_day(self, day: str) -> None:
        """Show a local day ('YYYY-MM-DD'); the moments load in the background (`dayLoaded`)."""
        if not _qdate(day).isValid():
            raise ValueError(f"not a day: {day!r} (want YYYY-MM-DD)")
        same = day == self._day
        self._day = day
        self.date_edit.blockSignals(True)
        self.date_edit.setDate(_qdate(day))
        self.date_edit.blockSignals(False)
        if not same:
            self.day_title.setText(_long_date(day, year=True))
            self.day_counts.setText("loading…")
            self._loading_timer.start()
        self._load(reset=not same)

    def reload(self) -> None:
        """Re-read the shown day, keeping scroll position and selection."""
        if self._day:
            self._load(reset=False)

    def previous_day(self) -> None:
        self.show_day(self._shift(-1))

    def next_day(self) -> None:
        self.show_day(self._shift(+1))

    def go_today(self) -> None:
        self.show_day(dt.date.today().isoformat())

    def _shift(self, days: int) -> str:
        base = dt.date.fromisoformat(self._day) if self._day else dt.date.today()
        return (base + dt.timedelta(days=days)).isoformat()

    def _date_picked(self, date: QDate) -> None:
        self.show_day(date.toString("yyyy-MM-dd"))

    def _load(self, reset: bool) -> None:
        self._load_token += 1
        token, day, service = self._load_token, self._day, self.service
        self._loading = True
        self._tasks.run(self, lambda: group_by_hour(service.moments_on_day(day)),
                        partial(self._day_read, token, day, reset),
                        partial(self._day_failed, token, day))

    def _day_read(self, token: int, day: str, reset: bool, lanes: list[_Lane]) -> None:
        if token != self._load_token:
            return  # a newer load is on its way
        self._loading = False
        self._loading_timer.stop()
        if reset or day != self.model.day:
            self.model.set_day(day, lanes)
            self._zoom_hour = None
            self._apply_zoom()  # lays out the (collapsed) hour rows
            self._to_expand = [lane.hour for lane in lanes]
        else:
            self._to_expand += self.model.merge(lanes)
            if self._zoom_hour is not None and not self.model.hour_index(self._zoom_hour).isValid():
                self._zoom_hour = None
                self._apply_zoom()
        self._day_changed()
        self._expand_step(token, day)

    def _expand_step(self, token: int, day: str) -> None:
        """Expand hour rows a few hundred moments at a time, one step per event-loop turn, then
        announce the day: laying out a row costs the view a few calls into the Python model, and
        expanding thousands of moments at once would stall the GUI for tens of milliseconds."""
        if token != self._load_token:
            return  # a reload takes over (and the rest of `_to_expand`)
        budget = EXPAND_ROWS_PER_STEP
        while self._to_expand and budget > 0:
            index = self.model.hour_index(self._to_expand.pop(0))
            if index.isValid():
                self.tree.expand(index)
                budget -= self.model.rowCount(index)
        if self._to_expand:
            QTimer.singleShot(0, self, partial(self._expand_step, token, day))
        else:
            self._day_ready(day)

    def _busy(self) -> bool:
        """The shown day is still loading or being laid out."""
        return self._loading or bool(self._to_expand)

    def _day_ready(self, day: str) -> None:
        if self._pending_open is not None:
            moment_id, self._pending_open = self._pending_open, None
            index = self.model.index_of(moment_id)
            if index.isValid():
                self._select(index)
            else:
                self.moment_view.show_moment(None, "That moment is no longer in memory.")
                self._open_id = None
        self.dayLoaded.emit(day)

    def _day_failed(self, token: int, day: str, error: Exception) -> None:
        if token != self._load_token:
            return
        self._loading = False
        self._loading_timer.stop()
        self.day_counts.setText(f"could not read the memory: {error}")
        self.dayLoaded.emit(day)

    def _show_loading(self) -> None:
        if self._loading:
            self.empty_title.setText(f"Loading {_long_date(self._day)}…")
            self.empty_hint.setText("")
            self.pages.setCurrentWidget(self.empty_page)

    def _day_changed(self) -> None:
        """Counts, zoom choices and the empty state after the day's moments changed."""
        lanes = self.model.lanes()
        n = sum(len(lane.moments) for lane in lanes)
        if n:
            self.pages.setCurrentWidget(self.tree)
        else:
            self.empty_title.setText(f"Nothing remembered on {_long_date(self._day)}")
            self.empty_hint.setText(self._empty_hint())
            self.pages.setCurrentWidget(self.empty_page)
        self._fill_zoom_box()
        self._update_title()

    def _update_title(self) -> None:
        if not self._day:
            return
        title = _long_date(self._day, year=True)
        lanes = self.model.lanes() if self.model.day == self._day else []
        hour = self._zoom_hour
        if hour is not None:
            title += f" · {hour:02d}:00–{(hour + 1) % 24:02d}:00"
            lanes = [lane for lane in lanes if lane.hour == hour]
        self.day_title.setText(title)
        n = sum(len(lane.moments) for lane in lanes)
        seen = sum(lane.n_clips for lane in lanes)
        self.day_counts.setText(
            f"{n} moment{'s' if n != 1 else ''} · {seen} seen · {n - seen} heard" if n else "")

    def _empty_hint(self) -> str:
        today = dt.date.today().isoformat()
        if self._day == today:
            return "Moments appear here as Daybook sees and hears them while it is recording."
        if self._day > today:
            return "That day has not happened yet."
        return ("Daybook keeps what it sees and hears only while it is recording. "
                "Try another day, or search your memory.")

    # --- zoom ---------------------------------------------------------------------------------

    def zoom_to_hour(self, hour: int | None) -> None:
        """Show one hour with larger thumbnails, or (None) the whole day."""
        if hour is not None and not self.model.hour_index(hour).isValid():
            hour = None
        if hour == self._zoom_hour:
            return
        current = self._current_moment_id()
        self._zoom_hour = hour
        self._apply_zoom()
        if current:
            index = self.model.index_of(current)
            if index.isValid() and (hour is None or self.model.hour_of(index) == hour):
                self.tree.setCurrentIndex(index)
                self.tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def zoomed_hour(self) -> int | None:
        return self._zoom_hour

    def _apply_zoom(self) -> None:
        hour = self._zoom_hour
        large = hour is not None
        self.delegate.large = large
        self.model.thumb_box = self.delegate.thumb_box
        self.model.dpr = self.hits.dpr = self.tree.devicePixelRatioF()
        self.tree.setRootIsDecorated(not large)
        self.tree.setRootIndex(self.model.hour_index(hour) if hour is not None else QModelIndex())
        self.tree.doItemsLayout()
        self._fill_zoom_box()
        self._update_title()

    def _fill_zoom_box(self) -> None:
        box = self.zoom_box
        box.blockSignals(True)
        box.clear()
        box.addItem("Whole day", WHOLE_DAY)
        for lane in self.model.lanes():
            box.addItem(f"{lane.hour:02d}:00–{(lane.hour + 1) % 24:02d}:00 "
                        f"({len(lane.moments)})", lane.hour)
        at = box.findData(WHOLE_DAY if self._zoom_hour is None else self._zoom_hour)
        box.setCurrentIndex(max(0, at))
        box.blockSignals(False)

    def _zoom_picked(self, row: int) -> None:
        hour = self.zoom_box.itemData(row)
        self.zoom_to_hour(None if hour == WHOLE_DAY else hour)

    def _double_clicked(self, index: QModelIndex) -> None:
        lane = self.model.lane(index)
        if lane is not None:
            self.zoom_to_hour(lane.hour)

    # --- moments ------------------------------------------------------------------------------

    def open_moment(self, moment_id: str) -> None:
        """Show a moment: on the shown day, or on the day its id says (after that day loads)."""
        index = self.model.index_of(moment_id)
        if index.isValid() and not self._busy():
            self._select(index, announce=True)
            return
        t0_s = moment_t0_from_id(moment_id)
        day = local_day(t0_s) if t0_s is not None else self._day
        self._open_later(moment_id, day, found=index.isValid())

    def _open_later(self, moment_id: str, day: str, found: bool = False) -> None:
        """Open the moment once `day` is shown and laid out."""
        self._pending_open = moment_id
        self._open_id = None  # announce it when it arrives
        if day != self._day:
            self.show_day(day)
        elif not self._loading and not (found and self._to_expand):
            self.reload()  # stored since the last load, or gone

    def open_moment_id(self) -> str | None:
        """The id of the moment in the moment view, if any."""
        return self._open_id

    def _select(self, index: QModelIndex, announce: bool = False) -> None:
        hour = self.model.hour_of(index)
        if self._zoom_hour is not None and hour != self._zoom_hour:
            self.zoom_to_hour(hour)
        if announce:
            self._open_id = None
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        m = self.model.moment(index)
        if m is not None:
            self._show(m)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        m = self.model.moment(current)
        if m is not None:
            self._show(m)

    def _current_moment_id(self) -> str | None:
        m = self.model.moment(self.tree.currentIndex())
        return m.id if m is not None else None

    def _show(self, m: Moment) -> None:
        if m.id == self._open_id and self.moment_view.moment == m:
            return
        self._open_id = m.id
        self.moment_view.show_moment(m)
        self._panel_image()
        self.momentOpened.emit(m.id)

    def _panel_image(self) -> None:
        m = self.moment_view.moment
        if m is None:
            return
        key = ThumbnailLoader.key(m.id, PANEL_IMAGE)
        locate: Callable[[], Path | None] = partial(self.service.thumbnail_path, m)
        pixmap = self.loader.get(key, locate, PANEL_IMAGE, self.devicePixelRatioF())
        self.moment_view.set_image(pixmap, missing=self.loader.is_missing(key))

    @Slot(str)
    def _thumb_loaded(self, key: str) -> None:
        m = self.moment_view.moment
        if m is not None and key == ThumbnailLoader.key(m.id, PANEL_IMAGE):
            self._panel_image()

    def _moment(self, moment_id: str | None) -> Moment | None:
        if moment_id is None:
            return self.moment_view.moment
        return self.model.moment(self.model.index_of(moment_id))

    def delete_moment(self, moment_id: str | None = None) -> bool:
        """Forget a moment (default: the open one) after `confirm`; False if nothing was asked.

        The store and the key frame are deleted in the background; the view follows on
        `MomentsDeleted` (`momentsRemoved` then fires)."""
        m = self._moment(moment_id)
        if m is None:
            return False
        what = "what was seen" if m.kind == "clip" else "what was heard"
        question = (f"Forget {what} at {_span(m)} on {_long_date(local_day(m.t0_s))}?\n\n"
                    "It is removed from Daybook's memory, with its key frame. "
                    "This cannot be undone.")
        if not self.confirm(question):
            return False
        service = self.service
        self._tasks.run(self, lambda: service.delete([m]),
                        lambda _: self._remove((m.id,)),
                        lambda exc: self.moment_view.show_status(f"Could not delete: {exc}"))
        return True

    def export_moment(self, folder: str | Path, moment_id: str | None = None) -> list[Path]:
        """Write the moment as `<id>.json` and its key frame as `<id>.jpg` into `folder`.

        An utterance has no key frame of its own; the camera's frame nearest to it, if any, is
        written as `<id>-nearby.jpg`. Returns the files written."""
        m = self._moment(moment_id)
        if m is None:
            return []
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        frame_name = None
        source = self.service.thumbnail_path(m)
        if source is not None and source.is_file():
            frame_name = f"{m.id}.jpg" if m.kind == "clip" else f"{m.id}-nearby.jpg"
            shutil.copyfile(source, out / frame_name)
            written.append(out / frame_name)
        info = moment_json(m, frame_name)
        if m.kind != "clip":
            info["key_frame_is_nearby"] = frame_name is not None
        target = out / f"{m.id}.json"
        target.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
        return written

    def _export_clicked(self) -> None:
        if self.moment_view.moment is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the moment to a folder",
                                                  str(Path.home()))
        if not folder:
            return
        try:
            files = self.export_moment(folder)
        except OSError as exc:
            self.moment_view.show_status(f"Could not export: {exc}")
            return
        self.moment_view.show_status(
            f"Saved {', '.join(p.name for p in files)} to {folder}")

    def _ask_confirmation(self, question: str) -> bool:
        answer = QMessageBox.question(
            self, "Forget this moment?", question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _remove(self, ids: tuple[str, ...]) -> None:
        self.loader.forget(ids)
        self.hits.remove_ids(ids)
        removed = self.model.remove_ids(ids)
        if self._open_id in ids:
            self._open_id = None
            self.moment_view.show_moment(None, "The moment was deleted.")
        if removed:
            if self._zoom_hour is not None and not self.model.hour_index(self._zoom_hour).isValid():
                self.zoom_to_hour(None)
            self._day_changed()
            self.momentsRemoved.emit(removed)

    # --- search -------------------------------------------------------------------------------

    def search(self, text: str) -> None:
        """Search the memory in the background; results list beside the day (`searchFinished`)."""
        self._search_timer.stop()
        text = text.strip()
        self._search_token += 1
        if not text:
            self.clear_search()
            return
        token, service = self._search_token, self.service
        if self.search_box.text().strip() != text:
            self.search_box.setText(text)
        self.hits_title.setText(f"Searching for “{text}”…")
        if self.hits_box.isHidden():
            self.hits_box.show()
            total = sum(self.side_splitter.sizes())
            self.side_splitter.setSizes([total * 2 // 5, total - total * 2 // 5])
        self.hits_view.setVisible(bool(self.hits.citations))
        self._tasks.run(self, lambda: service.search(text),
                        partial(self._search_done, token, text),
                        partial(self._search_failed, token))

    def clear_search(self) -> None:
        self._search_token += 1
        self.hits.set_citations([])
        self.hits_box.hide()
        if self.search_box.text():
            self.search_box.clear()

    def _search_done(self, token: int, text: str, citations: list[Citation]) -> None:
        if token != self._search_token:
            return
        self.hits.set_citations(citations)
        n = len(citations)
        self.hits_view.setVisible(n > 0)
        self.hits_title.setText(
            f"{n} moment{'s' if n != 1 else ''} for “{text}”" if n
            else f"Nothing in memory matches “{text}”.")
        self.searchFinished.emit(n)

    def _search_failed(self, token: int, error: Exception) -> None:
        if token != self._search_token:
            return
        self.hits.set_citations([])
        self.hits_view.hide()
        self.hits_title.setText(f"The search failed: {error}")
        self.searchFinished.emit(0)

    def _hit_activated(self, index: QModelIndex) -> None:
        c = self.hits.citation(index)
        if c is None:
            return
        m = c.moment
        if self._pending_open == m.id:
            return  # already on its way (a click, then the activation of the same row)
        found = self.model.index_of(m.id)
        day = local_day(m.t0_s)
        if found.isValid() and not self._busy() and day == self._day:
            if m.id != self._open_id:
                self._select(found, announce=True)
            return
        # Show it at once; select it in its day when that day is shown.
        self._open_id = None
        self._show(m)
        self._open_later(m.id, day, found=found.isValid())
        self._open_id = m.id  # announced just now

    # --- live updates -------------------------------------------------------------------------

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, MomentsStored):
            days = {local_day(t) for t in map(moment_t0_from_id, event.ids) if t is not None}
            if (self._day in days or (not days and local_day(event.t1_s) == self._day)) \
                    and not self._reload_timer.isActive():
                self._reload_timer.start()
        elif isinstance(event, MomentsDeleted):
            self._remove(event.ids)

    # --- Qt -------------------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._day:
            self.go_today()

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop timers and wait for background work to finish (before the service closes)."""
        for timer in (self._reload_timer, self._loading_timer, self._search_timer):
            timer.stop()
        self._tasks.wait()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.tree.viewport().update()
