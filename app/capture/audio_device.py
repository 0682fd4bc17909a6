"""A real microphone through PortAudio (sounddevice).

The PortAudio callback only copies the block into a bounded queue and never blocks. If that queue
is ever full the block is *not* silently lost: it is counted in `dropped_chunks` and logged as an
error (audio is never dropped silently).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from app.capture.base import TARGET_SAMPLE_RATE_HZ
from app.capture.resample import StreamResampler, float_to_int16
from app.core.errors import InputError
from app.core.events import AudioCaptured

log = logging.getLogger(__name__)

_POLL_S = 0.1


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # the Python package is there, the PortAudio library is not
        raise InputError(
            "PortAudio is not installed, so no microphone can be opened "
            "(Debian/Ubuntu: sudo apt install libportaudio2)"
        ) from exc
    return sd


def list_input_devices() -> list[dict[str, Any]]:
    """Input devices PortAudio can see; empty when there is no sound server or card."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError:
        return []
    return [dict(d) for d in devices if d.get("max_input_channels", 0) > 0]


class SoundDeviceSource:
    """Records from an input device and yields 16 kHz mono int16 chunks with wall-clock times."""

    live = True
    duration_s: float | None = None

    def __init__(
        self,
        device: str = "default",
        *,
        block_ms: int = 30,
        queue_chunks: int = 500,
        stall_timeout_s: float = 3.0,
    ) -> None:
        self.sd = _sounddevice()
        self.device: int | str = int(device) if device.isdigit() else device
        self.name = f"microphone {device}"
        self.block_ms = block_ms
        self.stall_timeout_s = stall_timeout_s  # a live device calls back every block_ms
        self.dropped_chunks = 0
        self.overflows = 0
        self._queue: queue.Queue[tuple[np.ndarray, int]] = queue.Queue(maxsize=queue_chunks)
        try:
            info = self.sd.query_devices(self.device, "input")
        except (self.sd.PortAudioError, ValueError) as exc:
            raise InputError(
                f"no microphone '{device}' is available ({exc})"
            ) from exc
        self.device_name = str(info["name"])
        self._stream: Any = None
        self.started = threading.Event()  # set once the stream really records
        self._rate = TARGET_SAMPLE_RATE_HZ
        self._open(float(info.get("default_samplerate") or TARGET_SAMPLE_RATE_HZ))

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and status.input_overflow:
            self.overflows += 1  # PortAudio lost input before we saw it: counted, reported
        try:
            self._queue.put_nowait((indata[:, 0].copy(), frames))
        except queue.Full:
            self.dropped_chunks += 1

    def _open(self, default_rate: float) -> None:
        blocksize = TARGET_SAMPLE_RATE_HZ * self.block_ms // 1000
        try:
            self._stream = self.sd.InputStream(
                device=self.device,
                samplerate=TARGET_SAMPLE_RATE_HZ,
                channels=1,
                dtype="float32",
                blocksize=blocksize,
                callback=self._callback,
            )
        except self.sd.PortAudioError:
            # Some hardware only does its native rate: record at that and resample.
            self._rate = int(default_rate)
            try:
                self._stream = self.sd.InputStream(
                    device=self.device,
                    samplerate=self._rate,
                    channels=1,
                    dtype="float32",
                    blocksize=self._rate * self.block_ms // 1000,
                    callback=self._callback,
                )
            except self.sd.PortAudioError as exc:
                raise InputError(f"cannot open microphone '{self.device_name}': {exc}") from exc

    def chunks(self, stop: threading.Event) -> Iterator[AudioCaptured]:
        resampler = StreamResampler(self._rate, TARGET_SAMPLE_RATE_HZ)
        self._stream.start()
        self.started.set()
        # One continuous clock: start time + samples so far (callback times jitter).
        start_s = time.time()
        empty_polls = 0
        emitted = 0
        reported_drops = 0
        reported_overflows = 0
        try:
            while not stop.is_set():
                try:
                    block, _frames = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    # Counted in polls, not wall time: a long GIL hold (pocketsphinx keeps it
                    # while decoding) stalls the callback too, and is not a dead device.
                    empty_polls += 1
                    self._check_alive(empty_polls * _POLL_S)
                    continue
                empty_polls = 0
                if self.dropped_chunks != reported_drops:
                    log.error(
                        "microphone: %d audio blocks lost (pipeline too slow)",
                        self.dropped_chunks - reported_drops,
                    )
                    reported_drops = self.dropped_chunks
                if self.overflows != reported_overflows:
                    log.error("microphone: input overflowed %d time(s); audio was lost",
                              self.overflows - reported_overflows)
                    reported_overflows = self.overflows
                pcm = float_to_int16(resampler.process(block))
                yield AudioCaptured(
                    pcm=pcm,
                    t0_s=start_s + emitted / TARGET_SAMPLE_RATE_HZ,
                    sample_rate_hz=TARGET_SAMPLE_RATE_HZ,
                )
                emitted += len(pcm)
        finally:
            self.close()

    def _check_alive(self, silent_s: float) -> None:
        """Raise InputError when the device is gone, instead of waiting for audio forever.

        PortAudio ends the stream on some device errors (the sound server died); on others it
        just stops calling back (a PulseAudio source unplugged: the stream stays "active")."""
        stream = self._stream
        if stream is not None and not stream.active:
            reason = "the stream ended"
        elif silent_s >= self.stall_timeout_s:
            reason = f"no audio for {silent_s:.1f} s"
        else:
            return
        raise InputError(
            f"microphone '{self.device_name}' stopped delivering audio ({reason}); "
            "was it disconnected, or did its sound server stop?"
        )

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except self.sd.PortAudioError as exc:
                log.warning("closing microphone: %s", exc)
            self._stream = None
