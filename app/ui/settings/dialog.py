"""The settings dialog: a tab each for devices, models, the assistant, and privacy & storage.

Everything slow (probing devices, downloads, imports, deleting a range, measuring the memory
folder) runs on a helper thread through a `TaskGroup` (app/ui/tasks.py); results come back to
the GUI thread. The work functions handed to it must not touch widgets. Saving builds the new
Config with `Config.replace`, validates it with `validate_config` (app/core/config_check.py:
the same rules as `load_config` plus a few of the dialog's own), writes it with `save_config`
and emits `configSaved(Config)`. New devices are switched to at once (by the main window, off
the GUI thread); folders take effect when Daybook restarts.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.config import Config, load_config, save_config
from app.core.config_check import validate_config
from app.core.errors import ConfigError
from app.pipeline.service import DaybookService
from app.ui.settings.assistant import AssistantTab
from app.ui.settings.common import _message_label, _show
from app.ui.settings.devices import DevicesTab
from app.ui.settings.models import ModelsTab
from app.ui.settings.privacy import PrivacyTab
from app.ui.tasks import TaskGroup


def _field_of(message: str) -> tuple[str, str] | None:
    match = re.search(r"\[(\w+)\] (\w+)", message)
    return (match.group(1), match.group(2)) if match else None


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
