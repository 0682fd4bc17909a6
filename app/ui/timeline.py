"""The memory timeline: a day's moments in hour lanes, search, and a moment view.

Nothing slow runs in the GUI thread. Day loads, searches, deletes and exports run on one
background thread, in order (`BackgroundTasks.store_pool`); key frames are decoded to QImage on a
small pool of their own (`ThumbnailLoader`). Both hand results back through
`BackgroundTasks._delivered`, a signal on a QObject living in the GUI thread, so the callbacks run
there; QPixmaps are made only there.

The day is a two-level Qt model (`DayModel`): hours are the top rows, their moments the children.
One `QTreeView` shows it: the whole day compact, or one hour (the view's root index set to that
hour) with larger thumbnails. Rows have one height, so a day with thousands of moments lays out
and scrolls without measuring every row.

The delegates and the window read the models through their Python methods (`DayModel.moment`,
`.lane`, `.thumbnail`) rather than `index.data(role)`: no QVariant round trip per painted row.
The roles stay for Qt's own use (tooltips, accessibility).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import (
    QDate,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QKeySequence,
    QPalette,
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
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.core.events import MemoryIntegrated, MomentsDeleted, MomentsStored
from app.core.timefmt import day_bounds, local_day, local_dt
from app.memory.base import Moment
from app.memory.episodes import Episode, episode_of, group_episodes
from app.memory.export import ExportExistsError, ExportResult, export_range
from app.reasoning.base import Citation
from app.ui.bridge import EventBridge
from app.ui.tasks import BackgroundTasks, ThumbnailLoader
from app.ui.timeline_model import (
    CLIP_COLOR,
    ENGLISH,
    EXPAND_ROWS_PER_STEP,
    PANEL_IMAGE,
    RELOAD_EVERY_MS,
    SEARCH_DELAY_MS,
    SPEECH_COLOR,
    WHOLE_DAY,
    DayModel,
    HitModel,
    _duration,
    _Lane,
    _long_date,
    _qdate,
    _span,
    day_summary,
    describe,
    group_by_hour,
    moment_json,
    moment_t0_from_id,
    summary_day,
    summary_line,
)
from app.ui.timeline_paint import HitDelegate, LaneDelegate

log = logging.getLogger(__name__)

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


def _hm(t_s: float) -> str:
    return local_dt(t_s).strftime("%H:%M")


def _length(seconds: float) -> str:
    """An episode's length, to the minute once it is one."""
    if seconds < 60:
        return _duration(seconds)
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


class MomentView(QFrame):
    """The side panel. With a moment open: its key frame, times, kind, what was heard, the
    caption, the episode it belongs to, and actions. Otherwise the day's overview: its episodes
    (long-term memory's stretches of activity), each opening its first moment when clicked."""

    deleteRequested = Signal()
    exportRequested = Signal()
    overviewRequested = Signal()  # "back to the day"
    episodeActivated = Signal(str)  # the episode's first moment id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.moment: Moment | None = None
        # Why a clip has no caption (the timeline gives the service's `caption_note`).
        self.no_caption: Callable[[], str] = lambda: "No caption. The key frame is kept."
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
        self.episode = QLabel()
        self.episode.setWordWrap(True)
        self.episode.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.episodes: list[Episode] = []
        self._note = ""
        self.back_button = QToolButton()
        self.back_button.setText("‹ Day overview")
        self.back_button.setAutoRaise(True)
        self.back_button.setToolTip("Back to the day's episodes (Esc)")
        self.back_button.clicked.connect(self.overviewRequested)

        self.overview_title = QLabel()
        self.overview_title.setFont(self.title.font())
        self.overview_hint = QLabel(
            "Stretches of activity: a new one starts after 5 minutes with nothing remembered "
            "or when talk resumes after a quiet spell. Click one to open it; select a moment "
            "to see it here.")
        self.overview_hint.setWordWrap(True)
        self.overview_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.episode_list = QListWidget()
        self.episode_list.setWordWrap(True)
        self.episode_list.setFrameShape(QFrame.Shape.NoFrame)
        self.episode_list.setAccessibleName("Episodes of the day")
        self.episode_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.episode_list.itemClicked.connect(self._episode_clicked)
        self.episode_list.itemActivated.connect(self._episode_clicked)
        overview = QWidget()
        over_lay = QVBoxLayout(overview)
        over_lay.setContentsMargins(0, 0, 0, 0)
        over_lay.addWidget(self.overview_title)
        over_lay.addWidget(self.overview_hint)
        over_lay.addWidget(self.episode_list, 1)
        self.overview = overview

        details = QWidget()
        lay = QVBoxLayout(details)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        back_row = QHBoxLayout()
        back_row.addWidget(self.back_button)
        back_row.addStretch(1)
        lay.addLayout(back_row)
        lay.addWidget(self.image)
        lay.addWidget(self.image_note)
        lay.addSpacing(4)
        lay.addWidget(self.title)
        lay.addWidget(self.subtitle)
        lay.addWidget(self.kind)
        lay.addWidget(self.episode)
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
        self.stack.addWidget(overview)
        self.stack.addWidget(details)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 10, 10, 10)
        outer.addWidget(self.stack)
        self.show_moment(None)

    def show_overview(self, episodes: list[Episode]) -> None:
        """The day's episodes (shown while no moment is open)."""
        # A live reload that changed nothing keeps the list as it is (and its scroll position).
        if episodes != self.episodes or self.episode_list.count() != len(episodes):
            self.episodes = episodes
            self.episode_list.clear()
            for e in episodes:
                parts = [f"{e.n_clips} seen"] if e.n_clips else []
                parts += [f"{e.n_utterances} heard"] if e.n_utterances else []
                item = QListWidgetItem(f"{_hm(e.t0_s)}–{_hm(e.t1_s)}  ·  {e.title}\n"
                                       f"{_length(e.t1_s - e.t0_s)} · {' · '.join(parts)}")
                item.setData(Qt.ItemDataRole.UserRole, e.first_id)
                item.setToolTip("Open the episode's first moment")
                self.episode_list.addItem(item)
            n = len(episodes)
            self.overview_title.setText(f"{n} episode{'s' if n != 1 else ''}")
        if self.moment is None and not self._note:
            self.stack.setCurrentWidget(self.overview if episodes else self.placeholder)

    def _episode_clicked(self, item: QListWidgetItem) -> None:
        self.episodeActivated.emit(item.data(Qt.ItemDataRole.UserRole))

    def show_moment(self, m: Moment | None, note: str = "", *,
                    episode: Episode | None = None) -> None:
        self.moment = m
        self._note = note  # says why no moment is shown: stays until a moment or the overview
        self.status.clear()
        if m is None:
            self.placeholder.setText(note or "Select a moment to see it here.")
            showing_overview = not note and self.episodes
            self.stack.setCurrentWidget(self.overview if showing_overview else self.placeholder)
            return
        self.stack.setCurrentWidget(self.details)
        self.set_episode(episode)
        self.title.setText(_span(m))
        self.subtitle.setText(f"{_long_date(local_day(m.t0_s), year=True)} · "
                              f"{_duration(m.t1_s - m.t0_s)}")
        # A summary is written from other moments: Daybook rewrites it when they are deleted.
        self.delete_button.setVisible(m.kind != "summary")
        if m.kind == "summary":
            self.kind.setText("Summary of the " + ("day" if m.id.startswith("sum-day-")
                                                   else "hour"))
            self.heard_label.hide()
            self.caption_label.hide()
            self.caption.hide()
            self.heard.show()
            self.heard.setText(m.text)
        elif m.kind == "clip":
            frames = f", {m.n_frames} frames" if m.n_frames else ""
            self.kind.setText(f"<span style='color:{CLIP_COLOR.name()}'>●</span> "
                              f"Seen (camera clip{frames})")
            self.heard_label.hide()
            self.heard.hide()
            self.caption_label.show()
            self.caption.show()
            self.caption.setText(m.text or self.no_caption())
            self.caption.setForegroundRole(QPalette.ColorRole.WindowText if m.text
                                           else QPalette.ColorRole.PlaceholderText)
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

    def set_episode(self, episode: Episode | None) -> None:
        """The line naming the episode the open moment belongs to."""
        self.episode.setVisible(episode is not None)
        if episode is not None:
            n = len(episode.moment_ids)
            self.episode.setText(f"Episode {_hm(episode.t0_s)}–{_hm(episode.t1_s)}: "
                                 f"{episode.title} ({n} moment{'s' if n != 1 else ''})")

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


def export_files(m: Moment, frame: Path | None, folder: Path) -> list[Path]:
    """Write `m` as `<id>.json` and its key frame `frame` as `<id>.jpg` into `folder` (no Qt:
    runs off the GUI thread). An utterance has no key frame of its own; the camera's frame
    nearest to it, if any, is written as `<id>-nearby.jpg`. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    frame_name = None
    if frame is not None and frame.is_file():
        frame_name = f"{m.id}.jpg" if m.kind == "clip" else f"{m.id}-nearby.jpg"
        shutil.copyfile(frame, folder / frame_name)
        written.append(folder / frame_name)
    info = moment_json(m, frame_name)
    if m.kind != "clip":
        info["key_frame_is_nearby"] = frame_name is not None
    target = folder / f"{m.id}.json"
    target.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(target)
    return written


class TimelineWindow(QWidget):
    """Browse the memory by day and hour, search it, open, delete and export moments.

    Usable as a tab or a top-level window. Day loads and searches finish asynchronously:
    `dayLoaded(day)` and `searchFinished(count)` say when. Set `confirm` to a callable returning
    True to skip the delete confirmation dialog (tests, scripted use); `confirm_replace` likewise
    for replacing a day's export already in the chosen folder.
    """

    momentOpened = Signal(str)  # moment id, whenever the moment view shows a moment
    dayLoaded = Signal(str)  # 'YYYY-MM-DD', after the shown day's moments are in the view
    searchFinished = Signal(int)  # number of hits
    momentsRemoved = Signal(int)  # moments taken off the view after a delete
    exported = Signal(object)  # list[Path]: the files an export wrote
    exportFailed = Signal(str)  # why an export wrote nothing (or not everything)

    def __init__(self, service: Any, parent: QWidget | None = None, *,
                 bridge: EventBridge | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.confirm: Callable[[str], bool] = self._ask_confirmation
        self.confirm_replace: Callable[[str], bool] = self._ask_replace
        self._tasks = BackgroundTasks.instance()
        self._day = ""
        self._loading = False
        self._load_token = 0
        self._search_token = 0
        self._pending_open: str | None = None
        self._to_expand: list[int] = []  # hours still to expand (a day opens in steps)
        self._zoom_hour: int | None = None
        self._open_id: str | None = None
        self._summary = ""  # the shown day's summary (without its date)

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
        self._live = True

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
        self.day_message = QLabel()  # what the day's export did
        self.day_message.setWordWrap(True)
        self.day_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_day_button = QPushButton("Export…")
        self.export_day_button.setToolTip(
            "Save the day shown as a day book: Markdown and JSON, with its key frames")
        self.export_day_button.clicked.connect(self._export_day_clicked)
        title_row = QHBoxLayout()
        title_row.addWidget(self.day_title)
        title_row.addSpacing(12)
        title_row.addWidget(self.day_counts, 1)
        title_row.addWidget(self.export_day_button)
        # The day's summary (long-term memory), once Daybook has written one.
        self.day_summary = QLabel()
        self.day_summary.setWordWrap(True)
        self.day_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.day_summary.setToolTip("Daybook's summary of the day, written after each hour")
        italic = self.day_summary.font()
        italic.setItalic(True)
        self.day_summary.setFont(italic)
        self.day_summary.hide()
        self.day_message.hide()

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
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self.tree, self._escape,
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
        left_lay.addWidget(self.day_summary)
        left_lay.addWidget(self.day_message)
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
        if hasattr(self.service, "caption_note"):
            self.moment_view.no_caption = self.service.caption_note
        self.moment_view.setFrameShape(QFrame.Shape.StyledPanel)
        self.moment_view.deleteRequested.connect(lambda: self.delete_moment())
        self.moment_view.exportRequested.connect(self._export_clicked)
        self.moment_view.overviewRequested.connect(self.show_overview)
        self.moment_view.episodeActivated.connect(self.open_moment)

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
            self.day_summary.hide()
            self.day_message.hide()
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

        def read() -> tuple[list[_Lane], list[Episode], str]:
            moments = service.moments_on_day(day)
            try:
                summaries = service.store.moments_between(*day_bounds(day), kinds=("summary",))
            except Exception as exc:  # the day still shows without them
                log.warning("could not read the summaries of %s: %s", day, exc)
                summaries = []
            return (group_by_hour(moments, summaries), group_episodes(moments),
                    day_summary(summaries))

        self._tasks.run(self, read, partial(self._day_read, token, day, reset),
                        partial(self._day_failed, token, day))

    def _day_read(self, token: int, day: str, reset: bool,
                  read: tuple[list[_Lane], list[Episode], str]) -> None:
        if token != self._load_token:
            return  # a newer load is on its way
        lanes, episodes, self._summary = read
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
        self.model.set_episodes(episodes)
        self.moment_view.show_overview(episodes)
        if self.moment_view.moment is not None:
            self.moment_view.set_episode(episode_of(self.episodes, self.moment_view.moment.id))
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
        summary = self._summary
        if hour is not None:  # the hour's summary: its row is not shown while zoomed in
            title += f" · {hour:02d}:00–{(hour + 1) % 24:02d}:00"
            lanes = [lane for lane in lanes if lane.hour == hour]
            summary = summary_line(lanes[0].summary) if lanes else ""
        self.day_title.setText(title)
        self.day_summary.setText(f"Summary: {summary}" if summary else "")
        self.day_summary.setVisible(bool(summary))
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

    @property
    def episodes(self) -> list[Episode]:
        """The shown day's episodes, in time order (the side panel holds them)."""
        return self.moment_view.episodes

    def show_overview(self) -> None:
        """Close the moment view: the panel lists the day's episodes again."""
        self.tree.selectionModel().clearCurrentIndex()
        self.tree.clearSelection()
        self._open_id = None
        self.moment_view.show_moment(None)

    def _escape(self) -> None:
        if self._zoom_hour is not None:
            self.zoom_to_hour(None)
        else:
            self.show_overview()

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
        self.moment_view.show_moment(m, episode=episode_of(self.episodes, m.id))
        self._panel_image()
        self.momentOpened.emit(m.id)

    def _panel_image(self) -> None:
        m = self.moment_view.moment
        if m is None:
            return
        if m.kind == "summary":  # no picture: a frame near a whole day would mislead
            self.moment_view.set_image(None, missing=True)
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

    def export_moment(self, folder: str | Path, moment_id: str | None = None) -> bool:
        """Export the moment (default: the open one) into `folder` on the store thread, after
        any delete asked before it: see `export_files`. `exported(files)` or
        `exportFailed(message)` follows; False when there is no such moment."""
        m = self._moment(moment_id)
        if m is None:
            return False
        service, out = self.service, Path(folder)
        self.moment_view.show_status("Exporting\u2026")
        self._tasks.run(self, lambda: export_files(m, service.thumbnail_path(m), out),
                        partial(self._exported, out), self._export_failed)
        return True

    def _exported(self, folder: Path, files: list[Path]) -> None:
        self.moment_view.show_status(f"Saved {', '.join(p.name for p in files)} to {folder}")
        self.exported.emit(files)

    def _export_failed(self, error: Exception) -> None:
        message = f"Could not export: {error}"
        self.moment_view.show_status(message)
        self.exportFailed.emit(message)

    def _export_clicked(self) -> None:
        if self.moment_view.moment is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the moment to a folder",
                                                  str(Path.home()))
        if folder:
            self.export_moment(folder)

    def export_day(self, folder: str | Path, *, force: bool = False) -> bool:
        """Export the day shown into `folder` as a day book (app/memory/export.py) on the store
        thread. `exported([markdown, json])` or `exportFailed(message)` follows; an export of
        the day already there is replaced only after `confirm`. False when no day is shown."""
        day = self._day
        if not day:
            return False
        service, out = self.service, Path(folder)
        self._day_note("Exporting the day\u2026")

        def work() -> ExportResult:
            t0_s, t1_s = day_bounds(day)
            return export_range(service.store, service.key_frames, t0_s, t1_s, out, day,
                                force=force)

        self._tasks.run(self, work, self._day_exported,
                        partial(self._day_export_failed, day, out))
        return True

    def _day_note(self, text: str) -> None:
        self.day_message.setText(text)
        self.day_message.setVisible(bool(text))

    def _day_exported(self, result: ExportResult) -> None:
        n = result.moments
        what = f"{n} moment{'s' if n != 1 else ''}" if n else "nothing remembered"
        self._day_note(f"Exported {what} to {result.markdown} (and {result.json.name}"
                       f"{', keyframes/' if result.key_frames else ''})")
        self.exported.emit([result.markdown, result.json])

    def _day_export_failed(self, day: str, folder: Path, error: Exception) -> None:
        if isinstance(error, ExportExistsError) and day == self._day and self.confirm_replace(
                f"{folder} already holds an export of {_long_date(day, year=True)}.\n\n"
                "Replace it?"):
            self.export_day(folder, force=True)
            return
        message = ("Not exported: the folder already holds this day's export"
                   if isinstance(error, ExportExistsError) else f"Could not export: {error}")
        self._day_note(message)
        self.exportFailed.emit(message)

    def _export_day_clicked(self) -> None:
        if not self._day:
            return
        folder = QFileDialog.getExistingDirectory(
            self, f"Export {_long_date(self._day, year=True)} to a folder", str(Path.home()))
        if folder:
            self.export_day(folder)

    def _ask_replace(self, question: str) -> bool:
        answer = QMessageBox.question(
            self, "Replace the export?", question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

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
            if not self._reload_timer.isActive():
                self._reload_timer.start()  # the episodes change with the moments

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
        day = local_day(m.t0_s)
        if m.kind == "summary":  # not a row of the day: its text in the panel, beside its day
            self._pending_open = None
            self._show(m)
            if day != self._day:
                self.show_day(day)
            return
        if self._pending_open == m.id:
            return  # already on its way (a click, then the activation of the same row)
        found = self.model.index_of(m.id)
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
        elif (isinstance(event, MemoryIntegrated)
              and self._day in {summary_day(i) for i in event.ids}
              and not self._reload_timer.isActive()):
            self._reload_timer.start()

    # --- Qt -------------------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._day:
            self.go_today()

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop updating and wait for background work to finish (before the service closes)."""
        self.stop_updates()
        self._tasks.wait()

    def stop_updates(self) -> None:
        """No more reloads, searches or live updates (the window is going away)."""
        for timer in (self._reload_timer, self._loading_timer, self._search_timer):
            timer.stop()
        if self._live:
            self._live = False
            self.bridge.received.disconnect(self._on_event)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.tree.viewport().update()

