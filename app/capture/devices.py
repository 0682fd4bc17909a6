"""Finding the capture devices this computer has: microphones PortAudio sees and cameras OpenCV
can open. No Qt here: the settings dialog runs these probes on a helper thread (probing a camera
can take a second or more) and shows the result on the GUI thread. `NO_MICROPHONE` is the
message shown when no microphone can be found or listed.
"""

from __future__ import annotations

from typing import Any

from app.capture import audio_device

NO_MICROPHONE = "No microphone found — Daybook keeps working with files and the demo."
CAMERA_INDEXES = range(4)


def _names(devices: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for device in devices:
        name = str(device.get("name", "")).strip()
        if name and name not in names:
            names.append(name)
    return names


def probe_microphones() -> list[str]:
    """Input device names PortAudio sees, without duplicates. Raises when PortAudio is missing."""
    return _names(audio_device.list_input_devices())


def probe_speakers() -> list[str]:
    """Output device names PortAudio sees, without duplicates."""
    return _names(audio_device.list_output_devices())


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
