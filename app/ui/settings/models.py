"""The Models tab: the model manager's table (the catalog and the user's own models), what is
in use for each role, and the models folder. Downloads (with progress and cancel), imports and
removals run on a helper thread through the dialog's `TaskGroup`; the table (model_table.py)
shows the rows of app/models/rows.py. A cancelled download leaves nothing installed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.config import Config
from app.core.errors import DaybookError
from app.core.units import fmt_bytes
from app.models.catalog import ROLES, CatalogEntry
from app.models.download import DownloadCancelled, DownloadError, Progress, part_path
from app.models.manager import InstalledModel, ModelManager
from app.models.rows import ModelRow, guess_role, manager_problem, model_rows
from app.models.selection import EMBEDDED, describe_choices
from app.pipeline.service import DaybookService
from app.reasoning.extractive import ExtractiveReasoner
from app.ui.settings.common import _FolderField, _message_label, _note, _show
from app.ui.settings.model_table import ROLE_LABELS, ModelTableModel
from app.ui.tasks import Report, TaskGroup


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
                  f"{manager_problem()}. Daybook uses its embedded defaults.", error=True)
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
                                          ROLES.index(guess_role(Path(path))), False)
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
