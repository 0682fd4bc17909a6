"""Speech recognition with pocketsphinx's bundled en-us model: rough, but needs no download."""

from __future__ import annotations

import threading

import numpy as np

from app.core.errors import BackendUnavailableError


class PocketSphinxTranscriber:
    name = "pocketsphinx (bundled en-us)"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise BackendUnavailableError(
                "pocketsphinx is not installed (pip install pocketsphinx)"
            ) from exc
        self._decoder = Decoder(loglevel="FATAL")
        self._lock = threading.Lock()

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        if sample_rate_hz != 16_000:
            raise ValueError("pocketsphinx expects 16 kHz audio")
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(pcm.astype(np.int16).tobytes(), full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""
