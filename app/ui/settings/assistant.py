"""The Assistant tab: the wake name that questions start with, and how answers are said: which
answers, the voice, its rate and volume, the speaker, echo cancellation and barge-in.
The voices are listed on a helper thread (app/speech/voices.py) when pyttsx3 is installed;
without it the system voice is used and no other can be chosen. A configured voice that is not
available stays selected, marked "not available".
"""

from __future__ import annotations

import importlib.util
from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from app.capture.devices import probe_speakers
from app.core.config import Config
from app.speech.voices import list_voices
from app.ui.settings.common import _combo_select, _message_label, _note, _show
from app.ui.tasks import TaskGroup


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
        a = cfg.assistant
        self.speak = QComboBox()
        for label, value in (("Answers to spoken questions", "spoken"),
                             ("All answers", "always"), ("None (text only)", "never")):
            self.speak.addItem(label, value)
        _combo_select(self.speak, a.speak)
        form.addRow("Say out loud:", self.speak)
        form.addRow("Voice:", self.voice)
        form.addRow("", self.voice_status)
        self.rate = QSpinBox()
        self.rate.setRange(80, 450)
        self.rate.setSuffix(" words/min")
        self.rate.setValue(a.rate_wpm)
        form.addRow("Rate:", self.rate)
        self.volume = QSpinBox()
        self.volume.setRange(0, 100)
        self.volume.setSuffix(" %")
        self.volume.setValue(a.volume)
        form.addRow("Volume:", self.volume)
        self._output_value = a.output
        self.output = QComboBox()
        self._fill_outputs([])
        form.addRow("Speaker:", self.output)
        self.echo = QCheckBox("Cancel Daybook's own voice in the microphone (echo cancellation)")
        self.echo.setChecked(a.echo_cancellation)
        form.addRow("", self.echo)
        self.barge_in = QCheckBox("Talking over an answer stops it")
        self.barge_in.setChecked(a.barge_in)
        form.addRow("", self.barge_in)
        tasks.run("list-speakers", lambda _r: probe_speakers(), self._fill_outputs,
                  lambda _exc: None)
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

    def _fill_outputs(self, names: list[str]) -> None:
        current = self.output.currentData() if self.output.count() else self._output_value
        self.output.clear()
        self.output.addItem("System default", "default")
        self.output.addItem("None (answers are shown only)", "")
        for name in names:
            if name != "default":
                self.output.addItem(name, name)
        if not _combo_select(self.output, current):
            self.output.addItem(f"{current} (not found)", current)
            self.output.setCurrentIndex(self.output.count() - 1)

    def _voices_found(self, voices: list[tuple[str, str]]) -> None:
        self._fill_voices(voices)
        _show(self.voice_status, f"{len(voices)} voices available." if voices else
              "No voices found; the system default is used.")

    def _voices_failed(self, exc: BaseException) -> None:
        _show(self.voice_status, f"Voices cannot be listed: {exc}", error=True)

    def values(self) -> dict[str, dict[str, Any]]:
        return {"assistant": {"wake_name": self.wake_name.text().strip(),
                              "voice": self.voice.currentData(),
                              "speak": self.speak.currentData(),
                              "rate_wpm": self.rate.value(), "volume": self.volume.value(),
                              "output": self.output.currentData(),
                              "echo_cancellation": self.echo.isChecked(),
                              "barge_in": self.barge_in.isChecked()}}
