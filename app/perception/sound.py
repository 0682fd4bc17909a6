"""A cheap sound class for a voiced segment: speech, music, noise or silence.

No model: speech has a strongly modulated energy envelope (syllables and pauses at ~4 Hz), music
and steady noise do not; noise has a flat spectrum, music a peaky one.
"""

from __future__ import annotations

import numpy as np

from app.core.events import SoundClass

SILENCE_DBFS = -50.0


def classify_sound(pcm: np.ndarray, sample_rate_hz: int = 16_000) -> SoundClass:
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
