"""Silero VAD (ONNX, via onnxruntime): more robust to noise than webrtcvad.

The v5 model takes 512 new samples plus the last 64 of the previous call (576 in all), a
recurrent state of shape (2, 1, 128) and the sample rate, and returns a speech probability.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.errors import BackendUnavailableError
from app.core.ort import new_session

WINDOW = 512
CONTEXT = 64


class SileroVad:
    frame_ms = 32  # 512 samples at 16 kHz

    def __init__(self, model_path: Path, threshold: float = 0.5) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed") from exc
        ort.disable_telemetry_events()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = new_session(ort, str(model_path), options)
        self.name = f"silero ({model_path.name})"
        self.threshold = threshold
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._sr = np.array(16000, dtype=np.int64)
        self.last_probability = 0.0  # of the latest frame (SpeechStarted's confidence)

    def probability(self, frame: np.ndarray) -> float:
        x = frame.astype(np.float32) / 32768.0
        window = np.concatenate([self._context, x])[None, :]
        out, self._state = self._session.run(
            None, {"input": window, "state": self._state, "sr": self._sr})
        self._context = x[-CONTEXT:]
        self.last_probability = float(np.asarray(out).reshape(-1)[0])
        return self.last_probability

    def is_speech(self, frame: np.ndarray) -> bool:
        return self.probability(frame) >= self.threshold
