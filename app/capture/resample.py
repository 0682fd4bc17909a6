"""Sample-rate and channel conversion for capture (no SciPy needed)."""

from __future__ import annotations

import cv2
import numpy as np


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(n, channels) or (n,) float32 → (n,) float32 by averaging channels."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, out_len: int) -> np.ndarray:
    """Resample a 1-D float32 block to exactly `out_len` samples.

    Downsampling averages over each output sample's span (an anti-aliasing box filter, via
    cv2's INTER_AREA); upsampling interpolates linearly. Good enough for VAD and speech recognition.
    """
    if out_len == len(samples):
        return samples.astype(np.float32, copy=False)
    if out_len <= 0 or len(samples) == 0:
        return np.zeros(max(out_len, 0), dtype=np.float32)
    row = samples.astype(np.float32, copy=False).reshape(1, -1)
    interp = cv2.INTER_AREA if out_len < len(samples) else cv2.INTER_LINEAR
    return cv2.resize(row, (out_len, 1), interpolation=interp).reshape(-1)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)


class StreamResampler:
    """Resamples consecutive blocks so the total output length tracks the input exactly."""

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._in_total = 0
        self._out_total = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        self._in_total += len(block)
        target_total = (self._in_total * self.out_rate_hz) // self.in_rate_hz
        out_len = target_total - self._out_total
        self._out_total = target_total
        return resample(block, out_len)
