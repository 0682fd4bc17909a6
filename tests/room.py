"""A simulated room and a recording of the speaker, for the voice tests and bench/voice.py.

`room_ir` is the path from Daybook's speaker back into its microphone: a delay, the direct
sound at a gain, and a reverberant tail that decays exponentially (RT60). `PulseServer(room_ir=…)`
plays what the sink plays back into the FIFO microphone through it. `SinkRecorder` records the
sink's monitor (`parec`), each block stamped with `time.monotonic()` when it arrived.
"""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np

from tests import pulse

RATE = pulse.RATE_HZ


def room_ir(delay_ms: float = 30.0, gain: float = 0.6, rt60_ms: float = 250.0,
            seed: int = 0) -> np.ndarray:
    """An impulse response: `delay_ms` of nothing, the direct sound at `gain`, early
    reflections and a diffuse tail falling by 60 dB over `rt60_ms`."""
    rng = np.random.default_rng(seed)
    d = int(delay_ms * RATE / 1000)
    n_tail = int(rt60_ms * RATE / 1000)
    ir = np.zeros(d + n_tail + 1)
    ir[d] = gain
    for k, (ms, g) in enumerate(((7.0, 0.45), (13.0, 0.3), (23.0, 0.2))):
        ir[d + int(ms * RATE / 1000)] += gain * g * (-1) ** k
    t = np.arange(n_tail) / RATE
    tail = rng.normal(0.0, 1.0, n_tail) * np.exp(-6.91 * t / (rt60_ms / 1000))
    ir[d + 1:] += gain * 0.08 * tail
    return ir


class SinkRecorder:
    """Records what Daybook's speaker (the sink `spk`) plays, from its monitor."""

    def __init__(self, server: pulse.PulseServer) -> None:
        self._proc = subprocess.Popen(
            ["parec", "-d", "spk.monitor", "--raw", "--format=s16le", f"--rate={RATE}",
             "--channels=1", "--latency-msec=10"],
            stdout=subprocess.PIPE, env=server.env)
        self._blocks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="sink-recorder", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while data := self._proc.stdout.read1(4096):
            with self._lock:
                self._blocks.append((time.monotonic(), data))

    def audio(self) -> tuple[np.ndarray, np.ndarray]:
        """(samples, the monotonic time of each sample) recorded so far."""
        with self._lock:
            blocks = list(self._blocks)
        raw = b"".join(b for _, b in blocks)
        pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16)
        times = np.zeros(len(pcm))
        end = 0
        carry = 0
        for t, b in blocks:  # each block's last sample arrived at t
            n = (len(b) + carry) // 2
            carry = (len(b) + carry) % 2
            times[end:end + n] = t - (n - 1 - np.arange(n)) / RATE
            end += n
        return pcm, times[: len(pcm)]

    def between(self, t0: float, t1: float) -> np.ndarray:
        pcm, times = self.audio()
        return pcm[(times >= t0) & (times < t1)]

    def last_sound_s(self, after_s: float, threshold: int = 200) -> float | None:
        """Monotonic time of the last sample above `threshold` after `after_s`."""
        pcm, times = self.audio()
        loud = np.nonzero((np.abs(pcm.astype(np.int32)) > threshold) & (times >= after_s))[0]
        return float(times[loud[-1]]) if len(loud) else None

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._thread.join(2)
