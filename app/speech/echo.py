"""Acoustic echo cancellation: Daybook's own voice taken out of the microphone.

The speaker's callback writes every block it sends to the device into `FarEnd`, stamped with
`time.monotonic()`; the microphone's capture thread hands each block it records, stamped the
same way, to `EchoCanceller.process`, which pairs it with the far-end samples sent up to that
moment and runs WebRTC's AEC3 (the `pywebrtc-audio` wheel: Apache-2.0, statically linked, on
Linux, Windows and macOS). Pairing by time, not by count, keeps the reference ahead of its echo
however the two queues fill: the echo of a sample comes back through the speaker's and the
microphone's buffers and the room, always after it was written, and AEC3 finds that delay.

While nothing has been played for `TAIL_S` the microphone's audio is passed through untouched
(bit-identical): AEC3 is only at work while Daybook speaks and just after.

AEC3's output is what the VAD hears: it leaves almost nothing of Daybook's voice, so Daybook
does not interrupt itself. But its suppressor also cuts into a user who starts talking over the
echo: their first ~100 ms, and again as the echo stops ("Wait, I have another question" was
heard as "I played. I have an underquenchion."). So `process_both` also hands on the
microphone's own samples and whether Daybook's voice was in the reference, and the VAD's
segmenter recognises a barge-in utterance from those (app/perception/vad.py).

A barge-in's stop drops what the device held: the echo then moves against the reference by an
amount only estimated, and AEC3, converged on the old path, let Daybook's voice through for
answers on end under CPU load (ERLE 10–17 dB, a false barge-in; 57–70 dB otherwise). So after a
stop the pairing is taken again and AEC3 starts afresh: barge-in waits for RELEARN_S of Daybook's
voice, as at the start.

Measured (tests, bench/voice.py): through an echo path AEC3 removes 27–35 dB of echo and takes
≈2 dB off a user talking over it. Without any echo path (headphones) it needs some 10–20 s of
Daybook's speech to learn that nothing comes back; until then it takes ≈14 dB off a user
talking over an answer, so barge-in comes later there at first.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, NamedTuple

import numpy as np

log = logging.getLogger(__name__)

RATE_HZ = 16_000
FRAME = RATE_HZ // 100  # AEC3 works in 10 ms frames
RING_S = 4.0  # far-end history kept
TAIL_S = 0.5  # AEC3 runs this long after the last sound played (the echo tail)
SETTLE_S = 0.3  # after a stop, block times are not used to pair (the device refills)
LEARN_S = 3.0  # AEC3 has converged after this much of Daybook's speech (offline: −32 dB at 3 s)
# After a stop (barge-in) AEC3 starts afresh, and has learnt the room again after this much of
# Daybook's voice.
RELEARN_S = LEARN_S
VOICE_RMS = 100.0  # a reference block this loud holds Daybook's voice (espeak-ng: ≈3000)


class Cancelled(NamedTuple):
    """One block through the echo canceller."""

    out: np.ndarray  # AEC3's output: what the VAD hears
    raw: np.ndarray  # the microphone's own samples, the same span (`out` itself when passed)
    voice: bool  # whether Daybook's voice was in the reference paired with them


class FarEnd:
    """The samples sent to the speaker, with when they were sent (thread-safe: written from the
    audio output callback, read from the capture thread)."""

    def __init__(self, rate_hz: int = RATE_HZ, ring_s: float = RING_S) -> None:
        self.rate_hz = rate_hz
        self._ring = np.zeros(int(rate_hz * ring_s), dtype=np.int16)
        self._written = 0  # samples written since the start
        self._anchor_t = 0.0  # monotonic time of the latest write's end
        self._last_sound_t = -1e9  # when a non-silent block was last written
        self.settle_until_s = 0.0  # see `unsent`
        self.stops = 0  # times the device dropped what it held (see `unsent`)
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

    def unsent(self, n: int, t_s: float | None = None) -> None:
        """The device dropped the last `n` samples written (a stop): they were never played, so
        they are taken back and what is written next follows what was really played. The
        times of the next SETTLE_S are not used to pair (the device refills its buffer)."""
        with self._lock:
            self._written = max(0, self._written - max(0, n))
            self.settle_until_s = (time.monotonic() if t_s is None else t_s) + SETTLE_S
            self.stops += 1

    def active(self, t_s: float) -> bool:
        """Whether something was played within TAIL_S before `t_s`."""
        return t_s - self._last_sound_t <= TAIL_S

    def index_at(self, t_s: float) -> int:
        """How many samples had been sent by time `t_s` (monotonic)."""
        with self._lock:
            ahead = round((t_s - self._anchor_t) * self.rate_hz)
            return self._written + min(ahead, 0)

    def read_to(self, end: int, n: int) -> np.ndarray:
        """The `n` samples before sample index `end` (zeros for what was not sent or is gone)."""
        out = np.zeros(n, dtype=np.int16)
        size = len(self._ring)
        with self._lock:
            end = min(end, self._written)
            start = max(end - n, self._written - size, 0)
            if end <= start:
                return out
            idx = np.arange(start, end) % size
            out[n - (end - start):] = self._ring[idx]
        return out


class EchoCanceller:
    """AEC3 on the microphone path, fed from `far` (from the capture thread only).

    Microphone and speaker run on one sample clock each, but their callbacks come in bursts, so
    a block's time is late by up to a burst. The far-end is therefore read by sample count:
    microphone sample k pairs with speaker sample k + offset, the offset taken from the times
    once (and again when the earliest recent estimate moved more than REANCHOR_S: a clock that
    drifts, a device opened again; samples the speaker dropped unplayed are taken back out of
    the far-end, so a stop moves nothing). A late time only
    pairs a microphone sample with a newer far-end one: the echo still comes after its
    reference, as AEC3 needs."""

    REANCHOR_S = 0.06
    WINDOW_BLOCKS = 64
    PAIR_BLOCKS = 16

    def __init__(self, far: FarEnd) -> None:
        self.far = far
        self._aec = self._new_aec()
        self._pending = np.zeros(0, dtype=np.int16)  # near samples short of a 10 ms frame
        self._near_total = 0  # microphone samples received
        self._offset: int | None = None
        self._estimates: collections.deque[int] = collections.deque(maxlen=self.WINDOW_BLOCKS)
        self._provisional = True  # the offset is set from the first PAIR_BLOCKS, whatever it is
        self._stops_seen = 0
        self._voice_since_stop = 0  # samples with Daybook's voice in the reference, since a stop
        self.frames_processed = 0
        self.frames_passed = 0
        self.reanchored = 0
        self.energy_in = 0.0  # sums of squares over the processed frames (echo reduction)
        self.energy_out = 0.0

    @staticmethod
    def _new_aec() -> Any:
        from pywebrtc_audio import EchoCanceller as Aec3  # imported here: an optional wheel

        return Aec3(RATE_HZ, 1, 0)

    def _pair(self, t_end_s: float) -> int:
        """The offset from microphone sample index to speaker sample index."""
        if self._offset is not None and t_end_s < self.far.settle_until_s:
            return self._offset
        if self.far.stops != self._stops_seen:  # learnt afresh after a stop (see `settled`)
            self._stops_seen = self.far.stops
            self._voice_since_stop = 0
            self._aec = self._new_aec()
            self._estimates.clear()
            self._provisional = True
        estimate = self.far.index_at(t_end_s) - self._near_total
        self._estimates.append(estimate)
        if self._offset is None:
            self._offset = estimate
        elif self._provisional and len(self._estimates) == self.PAIR_BLOCKS:
            self._provisional = False
            earliest = min(self._estimates)
            if earliest != self._offset:
                log.debug("echo canceller: paired from %d blocks (%+d samples)",
                          self.PAIR_BLOCKS, earliest - self._offset)
                self._offset = earliest
        elif len(self._estimates) == self.WINDOW_BLOCKS and not self.far.active(t_end_s):
            # Not while Daybook speaks: a jump of the reference mid-answer lets its echo through
            # until AEC3 has found it again (under load, the estimates move by tens of ms).
            earliest = min(self._estimates)
            if abs(earliest - self._offset) > self.REANCHOR_S * RATE_HZ:
                log.debug("echo canceller: re-paired by %+d ms",
                          (earliest - self._offset) * 1000 // RATE_HZ)
                self._offset = earliest
                self.reanchored += 1
        return self._offset

    def process(self, near: np.ndarray, t_end_s: float) -> np.ndarray:
        """The near-end block (int16, 16 kHz) recorded up to `t_end_s` (monotonic), with the
        echo of what was played removed. The same length as what came in, except that a block
        that is not a whole number of 10 ms frames is held back in part until the next one."""
        return self.process_both(near, t_end_s).out

    def process_both(self, near: np.ndarray, t_end_s: float) -> Cancelled:
        """`process`, with the microphone's samples for the same span and whether Daybook's
        voice was in their reference."""
        self._near_total += len(near)
        offset = self._pair(t_end_s)
        if len(self._pending):
            near = np.concatenate([self._pending, near])
        if not self.far.active(t_end_s):
            self._pending = np.zeros(0, dtype=np.int16)
            self.frames_passed += len(near) // FRAME
            return Cancelled(near, near, False)
        n = len(near) // FRAME * FRAME
        self._pending = near[n:].copy()
        if n == 0:
            return Cancelled(near[:0], near[:0], False)
        end = self._near_total - len(self._pending)  # index after the last sample processed
        far = self.far.read_to(end + offset, n)
        block = np.ascontiguousarray(near[:n])
        out = np.asarray(self._aec.process(block, far), dtype=np.int16)
        self.frames_processed += n // FRAME
        self.energy_in += float(np.dot(block.astype(np.float64), block.astype(np.float64)))
        self.energy_out += float(np.dot(out.astype(np.float64), out.astype(np.float64)))
        far64 = far.astype(np.float64)
        voice = float(far64 @ far64) >= VOICE_RMS ** 2 * n
        if voice:
            self._voice_since_stop += n
        return Cancelled(out, block, voice)

    @property
    def settled(self) -> bool:
        """Whether AEC3 has heard enough of Daybook's voice to have learnt the echo path: at
        first LEARN_S of it, and RELEARN_S of its voice again after each stop (the stop moves
        the echo against the reference by an amount only estimated, and AEC3 has to find it)."""
        return (self.frames_processed * FRAME >= LEARN_S * RATE_HZ
                and (self.far.stops == 0 or (self.far.stops == self._stops_seen and
                                             self._voice_since_stop >= RELEARN_S * RATE_HZ)))

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
