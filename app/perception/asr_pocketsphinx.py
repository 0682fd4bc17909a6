"""Speech recognition with pocketsphinx's bundled en-us model: the last fallback (rough, but
needs nothing more than its wheel). Daybook's default is Moonshine (asr_moonshine.py).

There is no wake-name spotting here any more: a keyphrase pass biased the recogniser towards the
name and made it up in ordinary speech ("I put the car keys…" → "i daybook the car keys…").
Instruction prediction matches the name only in what was really heard.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from app.core.errors import BackendUnavailableError

log = logging.getLogger(__name__)


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
            d = self._decoder
            d.start_utt()
            d.process_raw(pcm.astype(np.int16).tobytes(), full_utt=True)
            d.end_utt()
            hyp = d.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""
