"""The Privacy & storage tab: how long moments are kept, how long incognito pauses for,
forgetting a time range (after the user confirms, on a helper thread), the data folder, and how
much room the memory folder takes (measured on a helper thread with app/memory/usage.py). A new
data folder takes effect after Daybook restarts; existing memories are not moved.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.config import Config
from app.core.units import fmt_bytes
from app.memory.usage import folder_usage
from app.pipeline.service import DaybookService
from app.ui.settings.common import _FolderField, _message_label, _note, _show
from app.ui.tasks import Report, TaskGroup

RESTART_NOTE = "Takes effect after Daybook restarts."


def _range_of(section: str, key: str) -> tuple[int, int]:
    cls = type(getattr(Config(), section))
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == key)
    return int(meta["lo"]), int(meta["hi"])


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
