"""The Devices tab: which microphone and camera Daybook listens and watches through. The
microphones and cameras are probed on a helper thread (app/capture/devices.py); until the probe
answers, the configured device is listed as it is, and one the probe does not find is kept and
marked "not found". A camera may also be a video file or a stream URL. Saved device changes take
effect at once.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLineEdit, QVBoxLayout, QWidget

from app.capture.devices import NO_MICROPHONE, probe_cameras, probe_microphones
from app.core.config import Config
from app.core.errors import ConfigError
from app.ui.settings.common import _combo_select, _message_label, _note, _show
from app.ui.tasks import TaskGroup

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
