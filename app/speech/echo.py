"""Acoustic echo cancellation: Daybook's own voice taken out of the microphone.

The speaker's callback writes every block it sends to the device into `FarEnd`, stamped with
`time.monotonic()`; the microphone's capture thread hands each block it records, stamped the
same way, to `EchoCanceller.process`, which pairs it with the far-end samples sent up to that
moment and runs WebRTC's AEC3 (the `pywebrtc-audio` wheel: Apache-2.0, statically linked, on
Linux, Windows and macOS). Pairing by time, not by count, keeps the reference ahead of its echo
however the two queues fill: the echo of a sample comes back through the speaker's and the
microphone's buffers and the room, always after it was written, and AEC3 finds that delay.

While nothing has been played for `TAIL_S`, or from the moment Daybook is cut off, the
microphone's audio is passed through untouched (bit-identical): AEC3 is only at work while
Daybook speaks and just after, never on the words of a user who has taken over.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

log = logging.getLogger(__name__)

RATE_HZ = 16_000
FRAME = RATE_HZ // 100  # AEC3 works in 10 ms frames
RING_S = 4.0  # far-end history kept
TAIL_S = 0.3  # AEC3 runs this long after the last sound played (the echo tail)


class FarEnd:
    """The samples sent to the speaker, with when they were sent (thread-safe: written from the
    audio output callback, read from the capture thread)."""

    def __init__(self, rate_hz: int = RATE_HZ, ring_s: float = RING_S) -> None:
        self.rate_hz = rate_hz
        self._ring = np.zeros(int(rate_hz * ring_s), dtype=np.int16)
        self._written = 0  # samples written since the start
        self._anchor_t = 0.0  # monotonic time of the latest write's end
        self._last_sound_t = -1e9  # when a non-silent block was last written
        self._lock = threading.Lock()

    def write(self, block: np.ndarray, t_s: float | None = None) -> None:
        """Record a block sent to the device (int16), at `t_s` (monotonic; now by default)."""
        t = time.monotonic() if t_s is None else t_s
        n = len(block)
        size = len(self._ring)
        with self._lock:
            start = self._written % size
            if n >= size:
                self._ring[:] = block[-size:]
            elif start + n <= size:
                self._ring[start:start + n] = block
            else:
                first = size - start
                self._ring[start:] = block[:first]
                self._ring[:n - first] = block[first:]
            self._written += n
            self._anchor_t = t
            if n and np.any(block):
                self._last_sound_t = t

    def cut(self) -> None:
        """Daybook was silenced (barge-in, Stop): the echo canceller stands aside at once. Its
        suppression would mangle the user's words that follow (measured: "Stop, that is enough
        for now" heard as "In the left for now"); what is left of the echo is a fading tail."""
        with self._lock:
            self._last_sound_t = -1e9

    def active(self, t_s: float) -> bool:
        """Whether something was played within TAIL_S before `t_s`."""
        return t_s - self._last_sound_t <= TAIL_S

    def read(self, t_end_s: float, n: int) -> np.ndarray:
        """The `n` samples sent up to time `t_end_s` (zeros for what was not sent or is gone)."""
        out = np.zeros(n, dtype=np.int16)
        size = len(self._ring)
        with self._lock:
            # Samples after the latest write were not sent yet: the index stops there.
            ahead = round((t_end_s - self._anchor_t) * self.rate_hz)
            end = self._written + min(ahead, 0)
            start = max(end - n, self._written - size, 0)
            if end <= start:
                return out
            idx = np.arange(start, end) % size
            out[n - (end - start):] = self._ring[idx]
        return out


class EchoCanceller:
    """AEC3 on the microphone path, fed from `far` (from the capture thread only)."""

    def __init__(self, far: FarEnd) -> None:
        from pywebrtc_audio import EchoCanceller as Aec3  # imported here: an optional wheel

        self.far = far
        self._aec = Aec3(RATE_HZ, 1, 0)
        self._pending = np.zeros(0, dtype=np.int16)  # near samples short of a 10 ms frame
        self.frames_processed = 0
        self.frames_passed = 0
        self.energy_in = 0.0  # sums of squares over the processed frames (echo reduction)
        self.energy_out = 0.0

    def process(self, near: np.ndarray, t_end_s: float) -> np.ndarray:
        """The near-end block (int16, 16 kHz) recorded up to `t_end_s` (monotonic), with the
        echo of what was played removed. The same length as what came in, except that a block
        that is not a whole number of 10 ms frames is held back in part until the next one."""
        if len(self._pending):
            near = np.concatenate([self._pending, near])
        if not self.far.active(t_end_s):
            self._pending = np.zeros(0, dtype=np.int16)
            self.frames_passed += len(near) // FRAME
            return near
        n = len(near) // FRAME * FRAME
        self._pending = near[n:].copy()
        if n == 0:
            return near[:0]
        # The last of `near` was recorded at t_end_s; the held-back part is not processed yet.
        held_s = (len(near) - n) / RATE_HZ
        far = self.far.read(t_end_s - held_s, n)
        block = np.ascontiguousarray(near[:n])
        out = np.asarray(self._aec.process(block, far), dtype=np.int16)
        self.frames_processed += n // FRAME
        self.energy_in += float(np.dot(block.astype(np.float64), block.astype(np.float64)))
        self.energy_out += float(np.dot(out.astype(np.float64), out.astype(np.float64)))
        return out

    @property
    def reduction_db(self) -> float | None:
        """How much quieter the microphone was made while Daybook spoke (None before)."""
        if not self.frames_processed or self.energy_out <= 0:
            return None
        return 10.0 * float(np.log10(self.energy_in / self.energy_out))


def echo_reduction_db(before: np.ndarray, after: np.ndarray) -> float:
    """How much quieter `after` is than `before`, in dB (power over the whole of each)."""
    def power(x: np.ndarray) -> float:
        return float(np.mean(x.astype(np.float64) ** 2)) + 1e-9

    return 10.0 * float(np.log10(power(before) / power(after)))


def aec_available() -> str | None:
    """None when AEC3 can run here, else why not."""
    try:
        import pywebrtc_audio  # noqa: F401
    except ImportError as exc:
        return f"the echo canceller (pywebrtc-audio) is not installed ({exc})"
    return None
