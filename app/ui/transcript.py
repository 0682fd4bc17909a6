"""The live transcript: speech segments appear when detected, text fills in when transcribed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from app.core.events import SpeechEnded, SpeechStarted, UtteranceTranscribed
from app.core.timefmt import local_dt

MAX_ROWS = 500
_ROOT = QModelIndex()


@dataclass
class Row:
    t0_s: float
    state: str  # "listening" | "transcribing" | "done"
    text: str = ""
    sound: str = "speech"


class TranscriptModel(QAbstractListModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[Row] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            when = f"{local_dt(row.t0_s):%H:%M:%S}"
            if row.state == "listening":
                return f"{when}   \u2026 listening"
            if row.state == "transcribing":
                return f"{when}   (transcribing\u2026)"
            if row.text:
                return f"{when}   {row.text}"
            return f"{when}   [{row.sound}]"
        if role == Qt.ItemDataRole.ForegroundRole and row.state != "done":
            return QColor("#7a7a7a")
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"sound: {row.sound}"
        return None

    def on_event(self, event: Any) -> None:
        if isinstance(event, SpeechStarted):
            self._append(Row(event.t0_s, "listening"))
        elif isinstance(event, SpeechEnded):
            i = self._find("listening", event.t0_s, window_s=1.0)
            if i is None:
                self._append(Row(event.t0_s, "transcribing"))
            else:
                self.rows[i].state = "transcribing"
                self._changed(i)
        elif isinstance(event, UtteranceTranscribed):
            i = self._find("transcribing", event.t0_s, window_s=1.5)
            if i is None:
                i = self._find("listening", event.t0_s, window_s=1.5)
            if i is None:
                self._append(Row(event.t0_s, "done", event.text, str(event.sound)))
                return
            row = self.rows[i]
            row.state, row.text, row.sound = "done", event.text, str(event.sound)
            row.t0_s = event.t0_s
            self._changed(i)

    def _find(self, state: str, t0_s: float, window_s: float) -> int | None:
        for i in range(len(self.rows) - 1, -1, -1):
            row = self.rows[i]
            if row.state == state and abs(row.t0_s - t0_s) <= window_s:
                return i
        return None

    def _append(self, row: Row) -> None:
        if len(self.rows) >= MAX_ROWS:
            self.beginRemoveRows(QModelIndex(), 0, 0)
            self.rows.pop(0)
            self.endRemoveRows()
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self.rows.append(row)
        self.endInsertRows()

    def _changed(self, i: int) -> None:
        idx = self.index(i)
        self.dataChanged.emit(idx, idx)
