"""Small widgets and helpers shared by the Settings tabs: secondary notes, selectable message
labels that turn red for errors, selecting a combo box item by its data, and a folder field with
a Browse… button. They hold no state of their own and touch only the widgets they are given, so
every tab (and the dialog) builds its labels the same way.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

_ERROR_STYLE = "color: #b3261e;"


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
