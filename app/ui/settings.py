"""The settings dialog: devices, models (download, import, remove), assistant, privacy & storage.

Everything slow (probing devices, downloads, imports, deleting a range, measuring the memory
folder) runs on a helper thread through a `TaskGroup` (app/ui/tasks.py); results come back to
the GUI thread. The work functions handed to it must not touch widgets.

Saving builds the new Config with `Config.replace`, validates it with the same rules as
`load_config` (plus a few of the dialog's own), writes it with `save_config` and emits
`configSaved(Config)`. New devices are switched to at once (by the main window, off the GUI
thread); folders take effect when Daybook restarts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDateTime,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.capture import audio_device
from app.core.config import Config, config_from_dict, load_config, save_config
from app.core.errors import ConfigError, DaybookError
from app.core.units import fmt_bytes
from app.models.catalog import ROLES, CatalogEntry, load_catalog
from app.models.download import DownloadCancelled, DownloadError, Progress, part_path
from app.models.manager import InstalledModel, ModelManager
from app.models.selection import EMBEDDED, describe_choices
from app.models.validate import sniff_format
from app.pipeline.service import DaybookService
from app.reasoning.extractive import ExtractiveReasoner
from app.ui.tasks import Report, TaskGroup

log = logging.getLogger(__name__)

NO_MICROPHONE = "No microphone found — Daybook keeps working with files and the demo."
CAMERA_INDEXES = range(4)
RESTART_NOTE = "Takes effect after Daybook restarts."
ROLE_LABELS = {"asr": "speech recognition", "vad": "voice detection",
               "embedding": "text embedding", "tokenizer": "tokenizer", "llm": "language model",
               "vlm": "image captions", "mmproj": "vision projector"}
_ERROR_STYLE = "color: #b3261e;"


# --- helpers that run on worker threads (no Qt here) -------------------------------------------

def probe_microphones() -> list[str]:
    """Input device names PortAudio sees, without duplicates. Raises when PortAudio is missing."""
    names: list[str] = []
    for device in audio_device.list_input_devices():
        name = str(device.get("name", "")).strip()
        if name and name not in names:
            names.append(name)
    return names


def probe_cameras(indexes: range = CAMERA_INDEXES) -> list[int]:
    """Camera indexes OpenCV can open (each is released at once)."""
    import cv2

    found = []
    for i in indexes:
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened():
                found.append(i)
        finally:
            cap.release()
    return found


def list_voices() -> list[tuple[str, str]]:
    """(id, name) of the text-to-speech voices, or [] when pyttsx3 is not installed."""
    if importlib.util.find_spec("pyttsx3") is None:
        return []
    import pyttsx3

    engine = pyttsx3.init()
    try:
        return [(str(v.id), str(v.name)) for v in engine.getProperty("voices")]
    finally:
        engine.stop()


def folder_usage(folder: Path) -> tuple[int, int]:
    """(bytes, files) under a folder; files that vanish while walking are skipped."""
    total = files = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            files += 1
    return total, files



# --- validation --------------------------------------------------------------------------------

def validate_config(cfg: Config, source: str = "Settings") -> Config:
    """The checks `load_config` makes (through `config_from_dict`) plus the dialog's own.

    Raises ConfigError naming the section and field, e.g. `[assistant] wake_name: ...`.
    """
    data = {f.name: dataclasses.asdict(getattr(cfg, f.name))
            for f in dataclasses.fields(Config) if f.name != "source"}
    checked = config_from_dict(data, source)
    if not checked.assistant.wake_name.strip():
        raise ConfigError(f"{source}: [assistant] wake_name: must not be empty (questions "
                          "start with this name)")
    for section, key in (("models", "dir"), ("storage", "data_dir")):
        value = getattr(getattr(checked, section), key)
        if not value:
            continue
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            raise ConfigError(f"{source}: [{section}] {key}: {value!r} is not a full path "
                              "(choose a folder with Browse…)")
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{source}: [{section}] {key}: {value} is a file, not a folder")
    return dataclasses.replace(checked, source=cfg.source)


def _field_of(message: str) -> tuple[str, str] | None:
    match = re.search(r"\[(\w+)\] (\w+)", message)
    return (match.group(1), match.group(2)) if match else None


def _range_of(section: str, key: str) -> tuple[int, int]:
    cls = type(getattr(Config(), section))
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == key)
    return int(meta["lo"]), int(meta["hi"])


# --- small widgets -----------------------------------------------------------------------------

def _note(text: str) -> QLabel:
    """Secondary text: the window text colour blended towards the background."""
    label = QLabel(text)
    label.setWordWrap(True)
    palette = label.palette()
    fg, bg = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Window)
    mixed = QColor(*(round(0.65 * a + 0.35 * b) for a, b in
                     ((fg.red(), bg.red()), (fg.green(), bg.green()), (fg.blue(), bg.blue()))))
    palette.setColor(QPalette.ColorRole.WindowText, mixed)
    label.setPalette(palette)
    return label


def _message_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _show(label: QLabel, text: str, *, error: bool = False) -> None:
    label.setStyleSheet(_ERROR_STYLE if error else "")
    label.setText(text)
    label.setVisible(bool(text))


def _combo_select(combo: QComboBox, value: str) -> bool:
    index = combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)
    return index >= 0


class _FolderField(QWidget):
    """A path line edit with a Browse… button."""

    def __init__(self, value: str, placeholder: str, title: str) -> None:
        super().__init__()
        self.title = title
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)

    def text(self) -> str:
        return self.edit.text().strip()

    def _browse(self) -> None:
        start = self.text() or self.edit.placeholderText()
        folder = QFileDialog.getExistingDirectory(self, self.title, start)
        if folder:
            self.edit.setText(folder)


# --- Devices -----------------------------------------------------------------------------------

MIC_DEFAULT, NONE, CAMERA_URL = "default", "", "\x00url"


class DevicesTab(QWidget):
    def __init__(self, cfg: Config, tasks: TaskGroup) -> None:
        super().__init__()
        self.tasks = tasks
        self._mic_value = cfg.capture.microphone
        self._camera_value = cfg.capture.camera

        self.microphone = QComboBox()
        self.mic_status = _message_label()
        self.camera = QComboBox()
        self.camera_url = QLineEdit()
        self.camera_url.setPlaceholderText("a video file, or rtsp:// / http:// stream address")
        self.camera_status = _message_label()

        mic_box = QGroupBox("Microphone")
        mic_layout = QVBoxLayout(mic_box)
        mic_layout.addWidget(self.microphone)
        mic_layout.addWidget(self.mic_status)
        camera_box = QGroupBox("Camera")
        camera_form = QFormLayout(camera_box)
        camera_form.addRow("Source:", self.camera)
        camera_form.addRow("File or stream URL:", self.camera_url)
        camera_form.addRow(self.camera_status)
        layout = QVBoxLayout(self)
        layout.addWidget(mic_box)
        layout.addWidget(camera_box)
        layout.addWidget(_note("Daybook listens and watches through these while it runs. "
                               "Saved device changes take effect at once."))
        layout.addStretch(1)

        self._fill_microphones(None)
        self._fill_cameras(None)
        self.camera.currentIndexChanged.connect(self._camera_mode_changed)
        _show(self.mic_status, "Looking for microphones…")
        _show(self.camera_status, "Looking for cameras…")
        tasks.run("probe-microphones", lambda _r: probe_microphones(), self._microphones_found,
                  self._microphones_failed)
        tasks.run("probe-cameras", lambda _r: probe_cameras(), self._cameras_found,
                  self._cameras_failed)

    # microphones

    def _fill_microphones(self, names: list[str] | None) -> None:
        current = self.microphone.currentData() if self.microphone.count() else self._mic_value
        self.microphone.clear()
        self.microphone.addItem("System default", MIC_DEFAULT)
        for name in names or []:
            self.microphone.addItem(name, name)
        self.microphone.addItem("(none)", NONE)
        if not _combo_select(self.microphone, current):
            label = current if names is None else f"{current} (not found)"
            self.microphone.insertItem(1, label, current)
            self.microphone.setCurrentIndex(1)

    def _microphones_found(self, names: list[str]) -> None:
        self._fill_microphones(names)
        if names:
            _show(self.mic_status, f"{len(names)} microphone{'s' if len(names) > 1 else ''} "
                  "found.")
        else:
            _show(self.mic_status, NO_MICROPHONE)

    def _microphones_failed(self, exc: BaseException) -> None:
        self._fill_microphones([])
        _show(self.mic_status, f"Microphones cannot be listed: {exc}. {NO_MICROPHONE}",
              error=True)

    # cameras

    def _fill_cameras(self, found: list[int] | None) -> None:
        if self.camera.count():
            mode = self.camera.currentData()  # "0"…, CAMERA_URL or NONE
        else:
            value = self._camera_value
            mode = value if value.isdigit() or not value else CAMERA_URL
            if mode == CAMERA_URL:
                self.camera_url.setText(value)
        self.camera.blockSignals(True)
        self.camera.clear()
        for i in found or []:
            self.camera.addItem(f"Camera {i}", str(i))
        self.camera.addItem("File or stream URL", CAMERA_URL)
        self.camera.addItem("(none)", NONE)
        if not _combo_select(self.camera, mode):  # a configured index that was not detected
            label = f"Camera {mode}" + ("" if found is None else
                                        " (not detected — unplugged or in use?)")
            self.camera.insertItem(0, label, mode)
            self.camera.setCurrentIndex(0)
        self.camera.blockSignals(False)
        self._camera_mode_changed()

    def _camera_mode_changed(self) -> None:
        self.camera_url.setEnabled(self.camera.currentData() == CAMERA_URL)

    def _cameras_found(self, found: list[int]) -> None:
        self._fill_cameras(found)
        _show(self.camera_status, f"Found {', '.join(f'camera {i}' for i in found)}." if found
              else "No camera found — a video file or stream address works too.")

    def _cameras_failed(self, exc: BaseException) -> None:
        self._fill_cameras([])
        _show(self.camera_status, f"Cameras cannot be probed: {exc}", error=True)

    def value(self) -> dict[str, str]:
        camera = self.camera.currentData()
        if camera == CAMERA_URL:
            camera = self.camera_url.text().strip()
        return {"microphone": self.microphone.currentData(), "camera": camera}

    def values(self) -> dict[str, dict[str, Any]]:
        value = self.value()
        if self.camera.currentData() == CAMERA_URL and not value["camera"]:
            raise ConfigError("Settings: [capture] camera: enter a video file or stream URL, or "
                              "choose (none)")
        return {"capture": value}

    def widget_for(self, key: str) -> QWidget:
        if key == "camera":
            return self.camera_url if self.camera.currentData() == CAMERA_URL else self.camera
        return self.microphone


# --- Models ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelRow:
    name: str
    role: str
    size_bytes: int
    installed: bool
    partial_bytes: int
    default: bool
    licence: str
    description: str
    in_catalog: bool
    details: str = ""

    @property
    def state(self) -> str:
        if self.installed:
            return "installed"
        return f"partial ({fmt_bytes(self.partial_bytes)})" if self.partial_bytes else "-"


def model_rows(manager: ModelManager) -> list[ModelRow]:
    """The catalog, then the user's own models (imported or from an address)."""
    installed = manager.installed()
    rows = []
    for e in manager.catalog.values():
        details = [f"{e.name}: {e.description}", f"licence {e.licence}", f"from {e.url}"]
        if e.requires:
            details.append(f"also downloads {', '.join(e.requires)}")
        if not e.verified:
            details.append("no published checksum")
        rows.append(ModelRow(e.name, e.role, e.size_bytes, e.name in installed,
                             manager.partial_bytes(e.name), e.default, e.licence, e.description,
                             True, " · ".join(details)))
    for m in installed.values():
        if m.name not in manager.catalog:
            origin = {"import": "imported", "url": "downloaded from an address"}.get(m.origin,
                                                                                     m.origin)
            rows.append(ModelRow(m.name, m.role, m.size_bytes, True, 0, False, "(your own file)",
                                 f"{origin} {m.installed_at.replace('T', ' ')}", False,
                                 f"{m.name}: {manager.path(m)} · sha256 {m.sha256}"))
    return rows


class ModelTableModel(QAbstractTableModel):
    COLUMNS = ("Name", "Role", "Size", "Status", "Default", "Licence", "Description")
    STATUS = 3

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ModelRow] = []
        self.activity: dict[str, str] = {}  # name -> "downloading 42%", shown as the status

    def set_rows(self, rows: list[ModelRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def set_activity(self, name: str, text: str | None) -> None:
        if text is None:
            self.activity.pop(name, None)
        else:
            self.activity[name] = text
        for r, row in enumerate(self.rows):
            if row.name == name:
                cell = self.index(r, self.STATUS)
                self.dataChanged.emit(cell, cell)

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.name == name), -1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.name, ROLE_LABELS.get(row.role, row.role), fmt_bytes(row.size_bytes),
                    self.activity.get(row.name, row.state), "✓" if row.default else "",
                    row.licence, row.description)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.details or row.description
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if col == 2 \
                else int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None


class ModelsTab(QWidget):
    """The model manager: what is installed and in use; download, import, remove."""

    def __init__(self, service: DaybookService, cfg: Config, tasks: TaskGroup,
                 confirm: Callable[[str, str], bool]) -> None:
        super().__init__()
        self.service = service
        self.tasks = tasks
        self.confirm = confirm
        self._cancel: threading.Event | None = None
        self._job: str | None = None  # "download <name>" / "import" while one runs
        self._current = ""  # the file being downloaded (a companion comes first)

        self.table_model = ModelTableModel()
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setHighlightSections(False)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(self._download_selected)

        self.download_button = QPushButton("Download")
        self.import_button = QPushButton("Import…")
        self.remove_button = QPushButton("Remove…")
        self.download_button.clicked.connect(self._download_selected)
        self.import_button.clicked.connect(self._import_clicked)
        self.remove_button.clicked.connect(self._remove_selected)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.import_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.clicked.connect(self.cancel_download)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.progress_box.hide()

        self.details = _note("Select a model to see what it is.")
        self.message = _message_label()
        self.message.hide()
        self.unavailable = _message_label()
        self.unavailable.hide()
        self.in_use = QLabel()
        self.in_use.setWordWrap(True)
        self.in_use.setTextFormat(Qt.TextFormat.RichText)

        self.folder = _FolderField(cfg.models.dir, str(service.paths.models),
                                   "Choose the models folder")
        folder_box = QGroupBox("Models folder")
        folder_layout = QVBoxLayout(folder_box)
        folder_layout.addWidget(self.folder)
        folder_layout.addWidget(_note("Empty means the data folder's models/. A new folder takes "
                                      "effect after Daybook restarts; files already downloaded "
                                      "are not moved."))

        in_use_box = QGroupBox("In use")
        in_use_layout = QVBoxLayout(in_use_box)
        in_use_layout.addWidget(self.in_use)

        layout = QVBoxLayout(self)
        layout.addWidget(self.unavailable)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_box)
        layout.addWidget(self.message)
        layout.addWidget(in_use_box)
        layout.addWidget(folder_box)
        layout.addStretch(0)  # takes the table's room when the table is hidden
        self.refresh()

    @property
    def manager(self) -> ModelManager | None:
        return self.service.models

    @property
    def downloading(self) -> bool:
        return bool(self._job and self._job.startswith("download"))

    def refresh(self) -> None:
        """Re-read what is installed (cheap: an index file and a few stats)."""
        manager = self.manager
        selected = self.selected()
        if manager is None:
            self.table_model.set_rows([])
            _show(self.unavailable, "The model manager is not available: "
                  f"{_manager_problem()}. Daybook uses its embedded defaults.", error=True)
            self.table.hide()
            self.details.hide()
        else:
            try:
                self.table_model.set_rows(model_rows(manager))
            except DaybookError as exc:
                self.table_model.set_rows([])
                _show(self.unavailable, str(exc), error=True)
            self._fit_columns()
        try:
            choices = describe_choices(manager)
        except DaybookError as exc:
            choices = {"models": str(exc)}
        if "llm" in choices:
            choices["llm"] = _answers_with(self.service, choices["llm"])
        self.in_use.setText("<table>" + "".join(
            f"<tr><td style='padding-right:12px'><b>{ROLE_LABELS.get(role, role)}</b></td>"
            f"<td>{_html(text)}</td></tr>" for role, text in choices.items()) + "</table>")
        if selected is not None and (r := self.table_model.row_of(selected.name)) >= 0:
            self.table.selectRow(r)
        self._update_buttons()

    def _fit_columns(self) -> None:
        header = self.table.horizontalHeader()
        for col in range(len(ModelTableModel.COLUMNS) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

    def selected(self) -> ModelRow | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        row = self.table_model.data(rows[0], Qt.ItemDataRole.UserRole)
        return row if isinstance(row, ModelRow) else None

    def select(self, name: str) -> None:
        r = self.table_model.row_of(name)
        if r >= 0:
            self.table.selectRow(r)

    def _selection_changed(self) -> None:
        row = self.selected()
        if row is not None:
            self.details.setText(row.details or row.description)
        self._update_buttons()

    def _update_buttons(self) -> None:
        row = self.selected()
        idle = self._job is None and self.manager is not None
        can_download = bool(idle and row and row.in_catalog and not row.installed)
        self.download_button.setEnabled(can_download)
        self.download_button.setText("Resume download" if row and row.partial_bytes
                                     and not row.installed else "Download")
        self.remove_button.setEnabled(bool(idle and row and row.installed))
        self.import_button.setEnabled(idle)

    # download

    def _download_selected(self) -> None:
        row = self.selected()
        if row is not None and row.in_catalog and not row.installed and self._job is None:
            self.download_model(row.name)

    def download_model(self, name: str) -> None:
        """Download a catalog model (and its companions) on a helper thread, with progress."""
        manager = self.manager
        if manager is None or self._job is not None:
            return
        cancel = threading.Event()
        self._cancel = cancel
        self._job = f"download {name}"
        entry = manager.catalog[name]
        _show(self.message, "")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress_label.setText(f"Connecting for {entry.name}…")
        self.cancel_button.setEnabled(True)
        self.progress_box.show()
        self.table_model.set_activity(name, "starting…")
        self._update_buttons()
        self.tasks.run(f"download-{name}", lambda report: _download(manager, name, cancel, report),
                       self._download_done, self._download_failed, self._download_progress)

    def cancel_download(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def _download_progress(self, payload: object) -> None:
        if isinstance(payload, CatalogEntry):
            self._current = payload.name
            self.table_model.set_activity(payload.name, "starting…")
            self.progress.setValue(0)
            self.progress_label.setText(f"{payload.name}: connecting…")
            return
        if not isinstance(payload, Progress) or (self._cancel and self._cancel.is_set()):
            return
        name = self._current
        rate = f"{payload.rate_bps / 1e6:.1f} MB/s"
        if payload.total_bytes:
            fraction = payload.done_bytes / payload.total_bytes
            self.progress_label.setText(f"{name}: {payload.done_bytes / 1e6:,.1f} of "
                                        f"{payload.total_bytes / 1e6:,.1f} MB · {rate}")
            self.progress.setValue(round(fraction * 1000))
            self.table_model.set_activity(name, f"downloading {fraction:.0%}")
        else:
            self.progress.setRange(0, 0)
            self.progress_label.setText(f"{name}: {payload.done_bytes / 1e6:,.1f} MB · {rate}")

    def _download_finished(self) -> None:
        self._job = None
        self._cancel = None
        self.table_model.activity.clear()
        self.progress_box.hide()
        self.refresh()

    def _download_done(self, models: list[InstalledModel]) -> None:
        self._download_finished()
        lines = [f"Installed {m.name} ({fmt_bytes(m.size_bytes)}, "
                 f"{'checksum verified' if m.verified else 'no published checksum'})."
                 for m in models]
        _show(self.message, " ".join(lines))
        if models:
            self.select(models[-1].name)

    def _download_failed(self, exc: BaseException) -> None:
        self._download_finished()
        if isinstance(exc, DownloadCancelled):
            _show(self.message, "Download cancelled; nothing was installed.")
        elif isinstance(exc, DaybookError):
            _show(self.message, f"Download failed: {exc}", error=True)
        else:
            _show(self.message, f"Download failed unexpectedly: {exc!r}", error=True)

    # import

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model file", str(Path.home()),
            "Model files (*.gguf *.bin *.onnx *.json);;All files (*)")
        if not path:
            return
        roles = [f"{ROLE_LABELS[r]} ({r})" for r in ROLES]
        choice, ok = QInputDialog.getItem(self, "Import a model",
                                          f"What is {Path(path).name} for?", roles,
                                          ROLES.index(_guess_role(Path(path))), False)
        if ok:
            self.import_model(Path(path), ROLES[roles.index(choice)])

    def import_model(self, path: Path, role: str) -> None:
        """Validate and copy a model file into the models folder (on a helper thread)."""
        manager = self.manager
        if manager is None or self._job is not None:
            return
        self._job = "import"
        self._update_buttons()
        _show(self.message, f"Checking and copying {path.name}…")
        self.tasks.run("import", lambda _r: manager.import_file(path, role),
                       self._import_done, self._import_failed)

    def _import_done(self, model: InstalledModel) -> None:
        self._job = None
        self.refresh()
        self.select(model.name)
        check = ("matches the catalog's published checksum" if model.verified
                 else f"sha256 {model.sha256[:16]}…")
        _show(self.message, f"Imported {model.name} as {ROLE_LABELS.get(model.role, model.role)} "
              f"({fmt_bytes(model.size_bytes)}, {check}).")

    def _import_failed(self, exc: BaseException) -> None:
        self._job = None
        self.refresh()
        _show(self.message, f"Cannot import: {exc}", error=True)

    # remove

    def _remove_selected(self) -> None:
        row = self.selected()
        if row is not None and row.installed:
            self.remove_model(row.name)

    def remove_model(self, name: str) -> bool:
        """Remove an installed model after the user confirms; returns whether it was removed."""
        manager = self.manager
        if manager is None or self._job is not None:
            return False
        if not self.confirm("Remove model", f"Remove {name} and delete its file from "
                            f"{manager.dir}?"):
            return False
        try:
            model = manager.remove(name)
        except DaybookError as exc:
            _show(self.message, f"Cannot remove {name}: {exc}", error=True)
            return False
        finally:
            self.refresh()
        _show(self.message, f"Removed {model.name}.")
        return True

    def values(self) -> dict[str, dict[str, Any]]:
        return {"models": {"dir": self.folder.text()}}


def _download(manager: ModelManager, name: str, cancel: threading.Event,
              report: Report) -> list[InstalledModel]:
    """On the helper thread. A cancel leaves nothing installed: no part file, and companions
    this download installed are removed again."""
    before = set(manager.installed())
    current: list[CatalogEntry] = []

    def on_start(entry: CatalogEntry) -> None:
        current[:] = [entry]
        report(entry)

    def undo() -> None:
        for entry in current:
            part_path(manager.dir / entry.file).unlink(missing_ok=True)
        for added in set(manager.installed()) - before:
            manager.remove(added)

    try:
        done = manager.download(name, progress=report, cancel=cancel, on_start=on_start)
    except DownloadError as exc:
        # The downloader checks the cancel between chunks; a stalled or dropped connection can
        # end the download another way after the user cancelled.
        if cancel.is_set():
            undo()
            raise DownloadCancelled("download cancelled; nothing was installed") from exc
        raise
    if cancel.is_set():  # cancelled while the last chunk was being verified
        undo()
        raise DownloadCancelled("download cancelled; nothing was installed")
    return done


def _guess_role(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fmt = sniff_format(fh.read(64))
    except OSError:
        fmt = None
    return {"gguf": "llm", "whisper-ggml": "asr", "onnx": "vad", "json": "tokenizer"}.get(
        fmt or "", "llm")


def _manager_problem() -> str:
    try:
        load_catalog()
    except DaybookError as exc:
        return str(exc)
    return "the models folder could not be opened (see the log)"


def _answers_with(service: DaybookService, described: str) -> str:
    """The language model's row: what answers questions now; for the extractive answer, why."""
    reasoner = service.reasoner
    if not isinstance(reasoner, ExtractiveReasoner):
        return reasoner.name
    if described.startswith(EMBEDDED["llm"]):  # no model it can run, and why
        return described
    why = ("[reasoning] backend is “extractive”" if service.cfg.reasoning.backend == "extractive"
           else "not loaded: restart Daybook, or see the log")
    return f"{EMBEDDED['llm']}  ({described} is installed; {why})"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- Assistant ---------------------------------------------------------------------------------

class AssistantTab(QWidget):
    def __init__(self, cfg: Config, tasks: TaskGroup) -> None:
        super().__init__()
        self._voice_value = cfg.assistant.voice
        self.wake_name = QLineEdit(cfg.assistant.wake_name)
        self.wake_name.setMaxLength(40)
        self.voice = QComboBox()
        self.voice_status = _message_label()
        self._fill_voices([])

        form = QFormLayout(self)
        form.addRow("Wake name:", self.wake_name)
        form.addRow("", _note("Questions addressed to this name are answered, e.g. "
                              "“Daybook, what did I have for breakfast?”"))
        form.addRow("Voice:", self.voice)
        form.addRow("", self.voice_status)
        if importlib.util.find_spec("pyttsx3") is not None:
            _show(self.voice_status, "Looking for voices…")
            tasks.run("list-voices", lambda _r: list_voices(), self._voices_found,
                      self._voices_failed)
        else:
            _show(self.voice_status, "Spoken answers use the system voice (pyttsx3 is not "
                  "installed, so no other voice can be chosen).")

    def _fill_voices(self, voices: list[tuple[str, str]]) -> None:
        current = self.voice.currentData() if self.voice.count() else self._voice_value
        self.voice.clear()
        self.voice.addItem("System default", "")
        for vid, name in voices:
            self.voice.addItem(name, vid)
        if not _combo_select(self.voice, current):
            self.voice.addItem(f"{current} (not available)", current)
            self.voice.setCurrentIndex(self.voice.count() - 1)

    def _voices_found(self, voices: list[tuple[str, str]]) -> None:
        self._fill_voices(voices)
        _show(self.voice_status, f"{len(voices)} voices available." if voices else
              "No voices found; the system default is used.")

    def _voices_failed(self, exc: BaseException) -> None:
        _show(self.voice_status, f"Voices cannot be listed: {exc}", error=True)

    def values(self) -> dict[str, dict[str, Any]]:
        return {"assistant": {"wake_name": self.wake_name.text().strip(),
                              "voice": self.voice.currentData()}}


# --- Privacy & storage -------------------------------------------------------------------------

class PrivacyTab(QWidget):
    def __init__(self, service: DaybookService, cfg: Config, tasks: TaskGroup,
                 confirm: Callable[[str, str], bool]) -> None:
        super().__init__()
        self.service = service
        self.tasks = tasks
        self.confirm = confirm
        self.deleting = False

        self.retention_days = QSpinBox()
        self.retention_days.setRange(*_range_of("privacy", "retention_days"))
        self.retention_days.setSpecialValueText("Keep forever")
        self.retention_days.setSuffix(" days")
        self.retention_days.setValue(cfg.privacy.retention_days)
        self.incognito_minutes = QSpinBox()
        self.incognito_minutes.setRange(*_range_of("privacy", "incognito_minutes"))
        self.incognito_minutes.setSuffix(" min")
        self.incognito_minutes.setValue(cfg.privacy.incognito_minutes)
        for spin in (self.retention_days, self.incognito_minutes):
            spin.setMinimumWidth(160)
            spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

        keep = QGroupBox("Privacy")
        keep_form = QFormLayout(keep)
        keep_form.addRow("Keep moments for:", self.retention_days)
        keep_form.addRow("", _note("Older moments and their pictures are forgotten. "
                                   "Everything stays on this computer."))
        keep_form.addRow("Incognito pauses for:", self.incognito_minutes)

        now = QDateTime.currentDateTime()
        self.range_from = QDateTimeEdit(now.addSecs(-3600))
        self.range_to = QDateTimeEdit(now)
        for edit in (self.range_from, self.range_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.delete_button = QPushButton("Delete a range…")
        self.delete_button.clicked.connect(self._delete_clicked)
        self.delete_result = _message_label()
        self.delete_result.hide()
        range_box = QGroupBox("Forget a time range")
        range_row = QHBoxLayout()
        range_row.addWidget(QLabel("From"))
        range_row.addWidget(self.range_from)
        range_row.addWidget(QLabel("to"))
        range_row.addWidget(self.range_to)
        range_row.addWidget(self.delete_button)
        range_row.addStretch(1)
        range_layout = QVBoxLayout(range_box)
        range_layout.addLayout(range_row)
        range_layout.addWidget(self.delete_result)

        self.data_dir = _FolderField(cfg.storage.data_dir, str(service.paths.root),
                                     "Choose the data folder")
        self.usage = _message_label()
        storage = QGroupBox("Storage")
        storage_form = QFormLayout(storage)
        storage_form.addRow("Data folder:", self.data_dir)
        storage_form.addRow("", _note("Empty means the default folder. " + RESTART_NOTE +
                                      " Existing memories are not moved."))
        storage_form.addRow("Memory uses:", self.usage)

        layout = QVBoxLayout(self)
        layout.addWidget(keep)
        layout.addWidget(range_box)
        layout.addWidget(storage)
        layout.addStretch(1)
        self.measure()

    def measure(self) -> None:
        """Measure the memory folder on a helper thread."""
        folder = self.service.paths.memory
        self.usage.setText("measuring…")

        def work(_report: Report) -> tuple[int, int, int]:
            size, files = folder_usage(folder)
            free = shutil.disk_usage(folder).free if folder.exists() else 0
            return size, files, free

        self.tasks.run("disk-usage", work, self._measured, self._measure_failed)

    def _measured(self, result: tuple[int, int, int]) -> None:
        size, files, free = result
        _show(self.usage, f"{fmt_bytes(size)} in {files:,} file{'' if files == 1 else 's'} "
              f"({self.service.paths.memory}); {fmt_bytes(free)} free on that disk")

    def _measure_failed(self, exc: BaseException) -> None:
        _show(self.usage, f"cannot measure: {exc}", error=True)

    def _delete_clicked(self) -> None:
        t0 = self.range_from.dateTime().toSecsSinceEpoch()
        t1 = self.range_to.dateTime().toSecsSinceEpoch()
        self.delete_range(float(t0), float(t1))

    def delete_range(self, t0_s: float, t1_s: float) -> bool:
        """Forget [t0, t1) after the user confirms; the count is reported when done."""
        if self.deleting:
            return False
        if t1_s <= t0_s:
            _show(self.delete_result, "The end of the range must be after its start.",
                  error=True)
            return False
        span = f"{_local(t0_s)} and {_local(t1_s)}"
        if not self.confirm("Delete a range", f"Forget everything Daybook remembered between "
                            f"{span}? This cannot be undone."):
            return False
        self.deleting = True
        self.delete_button.setEnabled(False)
        _show(self.delete_result, f"Deleting between {span}…")
        service = self.service
        self.tasks.run("delete-range", lambda _r: service.delete_range(t0_s, t1_s),
                       lambda n: self._deleted(n, span), self._delete_failed)
        return True

    def _deleted(self, count: int, span: str) -> None:
        self.deleting = False
        self.delete_button.setEnabled(True)
        _show(self.delete_result, f"Deleted {count} moment{'' if count == 1 else 's'} between "
              f"{span}." if count else f"Nothing was remembered between {span}.")
        self.measure()

    def _delete_failed(self, exc: BaseException) -> None:
        self.deleting = False
        self.delete_button.setEnabled(True)
        _show(self.delete_result, f"Cannot delete: {exc}", error=True)

    def values(self) -> dict[str, dict[str, Any]]:
        return {"privacy": {"retention_days": self.retention_days.value(),
                            "incognito_minutes": self.incognito_minutes.value()},
                "storage": {"data_dir": self.data_dir.text()}}


def _local(t_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t_s))


# --- the dialog --------------------------------------------------------------------------------

class SettingsDialog(QDialog):
    """Daybook's settings. Emits `configSaved(Config)` after the file is written."""

    configSaved = Signal(object)

    def __init__(self, service: DaybookService, config_path: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Daybook settings")
        self.service = service
        self.config_path = config_path
        self.tasks = TaskGroup()
        self.destroyed.connect(self.tasks.shutdown)
        self.cfg, problem = _editable_config(service, config_path)

        def ask(title: str, question: str) -> bool:
            return self.confirm(title, question)  # looked up late: tests replace `confirm`

        self.devices = DevicesTab(self.cfg, self.tasks)
        self.models = ModelsTab(service, self.cfg, self.tasks, ask)
        self.assistant = AssistantTab(self.cfg, self.tasks)
        self.privacy = PrivacyTab(service, self.cfg, self.tasks, ask)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.devices, "Devices")
        self.tabs.addTab(self.models, "Models")
        self.tabs.addTab(self.assistant, "Assistant")
        self.tabs.addTab(self.privacy, "Privacy && storage")

        self.status = _message_label()
        self.status.hide()
        if problem:
            _show(self.status, problem, error=True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.Apply)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self.save)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(980, 640)

    @property
    def apply_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Apply)

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def confirm(self, title: str, question: str) -> bool:
        """Ask yes/no (tests replace this to answer without a modal box)."""
        answer = QMessageBox.question(self, title, question,
                                      QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def pending_config(self) -> Config:
        """The Config the widgets describe, validated; raises ConfigError naming the field."""
        sections: dict[str, dict[str, Any]] = {}
        for tab in (self.devices, self.models, self.assistant, self.privacy):
            sections.update(tab.values())
        return validate_config(self.cfg.replace(**sections))

    def save(self) -> bool:
        """Validate, write the file, emit configSaved; an error is shown, not raised."""
        try:
            cfg = self.pending_config()
        except ConfigError as exc:
            self._show_error(str(exc))
            return False
        cfg = dataclasses.replace(cfg, source=str(self.config_path))
        try:
            save_config(cfg, self.config_path)
        except OSError as exc:
            _show(self.status, f"Cannot write {self.config_path}: {exc.strerror or exc}",
                  error=True)
            return False
        self.cfg = cfg
        running = self.service.cfg
        restart = [what for what, changed in (
            ("data folder", cfg.storage.data_dir != running.storage.data_dir),
            ("models folder", cfg.models.dir != running.models.dir)) if changed]
        switching = " Switching to the new devices." if cfg.capture != running.capture else ""
        _show(self.status, f"Saved to {self.config_path}.{switching}" + (
            f" Restart Daybook to use the new {' and '.join(restart)}." if restart else ""))
        self.configSaved.emit(cfg)
        return True

    def _show_error(self, message: str) -> None:
        text = message.removeprefix("Settings: ")
        _show(self.status, f"Not saved: {text}", error=True)
        field = _field_of(message)
        if field is None:
            return
        section, key = field
        widget: QWidget | None = {
            "capture": lambda: self.devices.widget_for(key),
            "models": lambda: self.models.folder.edit,
            "assistant": lambda: (self.assistant.wake_name if key == "wake_name"
                                  else self.assistant.voice),
            "privacy": lambda: (self.privacy.retention_days if key == "retention_days"
                                else self.privacy.incognito_minutes),
            "storage": lambda: self.privacy.data_dir.edit,
        }.get(section, lambda: None)()
        if widget is not None:
            tab = widget.parentWidget()
            while tab is not None and self.tabs.indexOf(tab) < 0:
                tab = tab.parentWidget()
            if tab is not None:
                self.tabs.setCurrentWidget(tab)
            widget.setFocus()

    def accept(self) -> None:
        if self.save():
            super().accept()

    def done(self, result: int) -> None:
        if self.models.downloading:
            if not self.confirm("Stop the download?", "A model is still downloading. Stop it "
                                "and close? The partial file is removed."):
                return
            self.models.cancel_download()
        super().done(result)


def _editable_config(service: DaybookService, path: Path) -> tuple[Config, str]:
    """What the file says (it may be newer than the running config), else the running one."""
    try:
        return (load_config(path) if path.exists() else service.cfg), ""
    except ConfigError as exc:
        return service.cfg, f"{exc} — showing the settings Daybook runs with; saving replaces " \
            "the file."
