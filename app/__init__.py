"""Daybook: a local, private desktop assistant that remembers your day."""

import os

__version__ = "0.1.0"

# Before any library loads: no telemetry (Chroma, onnxruntime), and OpenCV keeps its
# device-probing chatter out of the user's console (Daybook reports missing devices itself).
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
