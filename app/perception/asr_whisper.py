"""Speech recognition with whisper.cpp (pywhispercpp), on a model from the model manager."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from app.core.errors import BackendUnavailableError
from app.models.validate import validate_model_file


class WhisperTranscriber:
    def __init__(self, model_path: Path, *, threads: int = 2) -> None:
        # pywhispercpp does not fail on a bad file: its next call segfaults. Check first.
        validate_model_file(model_path, "whisper-ggml")
        try:
            from pywhispercpp.model import Model
        except ImportError as exc:
            raise BackendUnavailableError(
                "pywhispercpp is not installed (pip install 'daybook[whisper]')") from exc
        self._model = Model(str(model_path), n_threads=threads, print_realtime=False,
                            print_progress=False, print_timestamps=False, redirect_whispercpp_logs_to=None)
        self.name = f"whisper.cpp ({model_path.name})"
        self._lock = threading.Lock()

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        if sample_rate_hz != 16_000:
            raise ValueError("whisper.cpp expects 16 kHz audio")
        audio = pcm.astype(np.float32) / 32768.0
        with self._lock:
            segments = self._model.transcribe(audio, language="en")
        return " ".join(s.text.strip() for s in segments).strip()
