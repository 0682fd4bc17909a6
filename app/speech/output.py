"""The speaker: a sounddevice OutputStream that plays queued segments and stops at once.

One stream stays open while Daybook can speak (16 kHz mono int16, 20 ms blocks), playing
silence when there is nothing to say, so that the echo canceller's reference (`FarEnd`) is one
continuous clock and the first sentence starts without opening a device. Its callback only
copies queued samples out, and the same samples into `FarEnd`: exactly what the device was
given. `stop()` empties the queue and aborts the stream (PortAudio drops what the device still
buffers; 1–5 ms), takes what was dropped unplayed back out of `FarEnd`, and starts it again.

Each segment (a rendered sentence) counts the samples played, so what was heard of an answer cut
off mid-sentence is known.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.capture import audio_device
from app.core.errors import InputError
from app.speech.echo import RATE_HZ, FarEnd

log = logging.getLogger(__name__)

BLOCK = RATE_HZ // 50  # 20 ms
# The device buffer. Through PulseAudio's ALSA plugin 40 ms ("low") starves a non-realtime
# sound server (measured: 0.7 s played in 2 s); 100 ms keeps up. A first sentence after
# silence starts after it; `stop` drops it. (Dropping it for a first sentence too, taking the
# dropped silence back out of the echo canceller's reference, made AEC3 lose the echo at the
# start of nearly every answer through the simulated room: 16 of 20 cut themselves off.)
LATENCY_S = 0.1


@dataclass(eq=False)
class Segment:
    pcm: np.ndarray  # int16, 16 kHz
    tag: int  # the question id
    text: str = ""
    played: int = 0  # samples handed to the device
    started_s: float | None = None  # monotonic time of its first block
    done: threading.Event = field(default_factory=threading.Event)


class AudioOutput:
    """Plays segments on an output device; raises InputError when it cannot be opened."""

    def __init__(self, device: str = "default", far: FarEnd | None = None,
                 volume: float = 1.0) -> None:
        self.sd = audio_device._sounddevice()
        self.device: int | str = int(device) if device.isdigit() else device
        self.far = far
        self.volume = volume
        self._queue: collections.deque[Segment] = collections.deque()
        self._lock = threading.Lock()
        self._stream: Any = None
        self.underflows = 0
        self.on_start: Any = None  # called (segment) from the callback at a segment's first block
        self._latency = LATENCY_S
        self._ahead = LATENCY_S
        self._callback_t = 0.0
        with audio_device._PA_LOCK:
            try:
                info = dict(self.sd.query_devices(self.device, "output"))
            except (self.sd.PortAudioError, ValueError) as exc:
                raise InputError(f"no speaker '{device}' is available ({exc})") from exc
            self.device_name = str(info["name"])
            try:
                self._stream = self.sd.OutputStream(
                    device=self.device, samplerate=RATE_HZ, channels=1, dtype="int16",
                    blocksize=BLOCK, latency=LATENCY_S, callback=self._callback)
                self._stream.start()
            except self.sd.PortAudioError as exc:
                self._stream = None
                raise InputError(f"cannot open speaker '{self.device_name}': {exc}") from exc
            audio_device._open_streams += 1
        self._latency = float(self._stream.latency)
        log.info("speaker '%s' open (%d Hz, latency %.0f ms)", self.device_name, RATE_HZ,
                 1000 * self._latency)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and status.output_underflow:
            self.underflows += 1
        # How far ahead of the sound this block is (what a stop drops unplayed).
        ahead = float(time_info.outputBufferDacTime - time_info.currentTime)
        self._ahead = (ahead if 0 < ahead < 2 else self._latency) + frames / RATE_HZ
        self._callback_t = time.monotonic()
        out = outdata[:, 0]
        filled = 0
        started: list[Segment] = []
        with self._lock:
            while filled < frames and self._queue:
                seg = self._queue[0]
                if seg.started_s is None:
                    seg.started_s = time.monotonic()
                    started.append(seg)
                take = min(frames - filled, len(seg.pcm) - seg.played)
                out[filled:filled + take] = seg.pcm[seg.played:seg.played + take]
                seg.played += take
                filled += take
                if seg.played >= len(seg.pcm):
                    self._queue.popleft()
                    seg.done.set()
        out[filled:] = 0
        if self.volume != 1.0 and filled:
            out[:filled] = (out[:filled] * self.volume).astype(np.int16)
        if self.far is not None:
            self.far.write(out)
        if self.on_start is not None:
            for seg in started:
                self.on_start(seg)

    def play(self, segment: Segment) -> None:
        if self._stream is None:
            segment.done.set()
            return
        with self._lock:  # it plays after the silence the device holds already (≤ LATENCY_S):
            self._queue.append(segment)  # dropping that moved the echo canceller's timing

    def stop(self) -> list[Segment]:
        """Silence now: the queue is dropped and the device's buffer with it. Returns the
        segments that were queued (the first one perhaps partly played)."""
        with self._lock:
            dropped = list(self._queue)
            self._queue.clear()
        if dropped:
            self._drop_buffered()
        for seg in dropped:
            seg.done.set()
        return dropped

    def _drop_buffered(self) -> None:
        """Abort and restart the stream: what PortAudio and the sound server still hold is
        dropped (1–5 ms), and taken back out of the far-end (it was never played)."""
        stream = self._stream
        if stream is None:
            return
        try:
            stream.abort()
            now = time.monotonic()
            unplayed = max(0.0, self._ahead - (now - self._callback_t))
            if self.far is not None:
                self.far.unsent(round(unplayed * RATE_HZ), now)
            stream.start()
        except self.sd.PortAudioError as exc:
            log.warning("speaker '%s': %s", self.device_name, exc)

    def close(self) -> None:
        self.stop()
        with audio_device._PA_LOCK:
            stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()
            stream.close()
        except self.sd.PortAudioError as exc:
            log.warning("closing speaker: %s", exc)
        with audio_device._PA_LOCK:
            audio_device._open_streams -= 1
