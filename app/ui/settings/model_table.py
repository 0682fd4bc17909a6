"""The table model behind the Models tab: one row per model (app/models/rows.py), with its name,
role, size, status, whether it is a default, licence and description. While a model downloads,
its status cell shows the activity ("downloading 42%") instead of the installed state; the
details line is the tooltip. `ROLE_LABELS` names each role the way the dialog shows it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.core.units import fmt_bytes
from app.models.rows import ModelRow

ROLE_LABELS = {"asr": "speech recognition", "vad": "voice detection",
               "embedding": "text embedding", "tokenizer": "tokenizer", "llm": "language model",
               "vlm": "image captions", "mmproj": "vision projector"}


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
