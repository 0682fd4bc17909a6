"""A real microphone through PortAudio (sounddevice).

The PortAudio callback only copies the block into a bounded queue and never blocks. If that queue
is ever full the block is *not* silently lost: it is counted in `dropped_chunks` and logged as an
error (audio is never dropped silently).

A device that stops delivering raises InputError from `chunks`; the capture thread then calls
`reopen` between tries until the device is back (see CaptureThread). PortAudio scans devices only
when it is initialised, so `reopen` re-initialises it first, but only while no stream of this
process is open (every PortAudio stream is opened here, under `_PA_LOCK`).
"""

from __future__ import annotations

import contextlib
import logging
import os
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
# The most one empty poll adds to a stall: a long GIL hold (pocketsphinx keeps it while
# decoding) stalls the callback too, is not a dead device, and shows as one late poll; a busy
# CPU makes every poll a little late, and that time counts.
_POLL_CAP_S = 0.5

# PortAudio calls that must not meet a re-initialisation (device queries, opening streams), and
# how many streams are open: PortAudio is re-initialised only when none is.
_PA_LOCK = threading.RLock()
_open_streams = 0


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # the Python package is there, the PortAudio library is not
        raise InputError(
            "PortAudio is not installed, so no microphone can be opened "
            "(Debian/Ubuntu: sudo apt install libportaudio2)"
        ) from exc
    return sd


def _list_devices(channels: str) -> list[dict[str, Any]]:
    sd = _sounddevice()
    try:
        with _PA_LOCK:
            devices = sd.query_devices()
    except sd.PortAudioError:
        return []
    return [dict(d) for d in devices if d.get(channels, 0) > 0]


def list_input_devices() -> list[dict[str, Any]]:
    """Input devices PortAudio can see; empty when there is no sound server or card."""
    return _list_devices("max_input_channels")


def list_output_devices() -> list[dict[str, Any]]:
    """Output devices PortAudio can see; empty when there is no sound server or card."""
    return _list_devices("max_output_channels")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """ALSA and PortAudio print a few lines on stderr for every device that cannot be opened:
    while a lost microphone is retried that would be a screenful every few seconds. Silenced
    (fd 2, for the process: the few milliseconds of a try) as sounddevice silences Pa_Initialize."""
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _rescan(sd: Any) -> None:
    """Re-initialise PortAudio so that its device list is fresh (a device plugged back, a sound
    server restarted). Only with no stream open: Pa_Terminate closes them all."""
    if sd._initialized:  # not public in sounddevice; there is no other way to rescan
        sd._terminate()
    sd._initialize()


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
        self.reconnects = 0  # times the device delivered again after it was lost
        self._reopened = False  # opened again; counted in `reconnects` at its first block
        # (block, frames, time.monotonic() at the callback: when the block's end was recorded)
        self._queue: queue.Queue[tuple[np.ndarray, int, float]] = queue.Queue(
            maxsize=queue_chunks)
        # Echo cancellation (app/speech/echo.py), set by the service while Daybook can speak.
        self.echo: Any = None
        self.device_name = str(device)
        self._stream: Any = None
        self.started = threading.Event()  # set once the stream really records
        self._rate = TARGET_SAMPLE_RATE_HZ
        with _PA_LOCK:
            self._open()

    def _query(self) -> dict[str, Any]:
        try:
            return dict(self.sd.query_devices(self.device, "input"))
        except (self.sd.PortAudioError, ValueError) as exc:
            raise InputError(f"no microphone '{self.device}' is available ({exc})") from exc

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and status.input_overflow:
            self.overflows += 1  # PortAudio lost input before we saw it: counted, reported
        try:
            self._queue.put_nowait((indata[:, 0].copy(), frames, time.monotonic()))
        except queue.Full:
            self.dropped_chunks += 1

    def _open(self) -> None:
        """Find the device by its name (or index) in PortAudio's list and open it; under
        _PA_LOCK."""
        global _open_streams
        info = self._query()
        self.device_name = str(info["name"])
        default_rate = float(info.get("default_samplerate") or TARGET_SAMPLE_RATE_HZ)
        self._rate = TARGET_SAMPLE_RATE_HZ
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
        _open_streams += 1

    def reopen(self) -> None:
        """Open the same device again after it was lost (from the capture thread, between
        tries): PortAudio is re-initialised first when no stream is open, so a device that came
        back is found again by its name. Raises InputError while it cannot be opened."""
        self.close()
        with _PA_LOCK, _quiet_stderr():
            if _open_streams == 0:
                try:
                    _rescan(self.sd)
                except self.sd.PortAudioError as exc:
                    raise InputError(f"cannot re-initialise PortAudio: {exc}") from exc
            else:
                log.debug("microphone: another stream is open; PortAudio is not re-initialised")
            self._open()
        while True:  # nothing of the lost stream is delivered after the new one's first block
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._reopened = True
        log.info("microphone '%s' opened again (%d Hz)", self.device_name, self._rate)

    def chunks(self, stop: threading.Event) -> Iterator[AudioCaptured]:
        resampler = StreamResampler(self._rate, TARGET_SAMPLE_RATE_HZ)
        if self._stream is None:
            raise InputError(f"microphone '{self.device_name}' is closed")
        try:
            self._stream.start()
        except self.sd.PortAudioError as exc:
            raise InputError(f"cannot start microphone '{self.device_name}': {exc}") from exc
        self.started.set()
        # One continuous clock: start time + samples so far (callback times jitter).
        start_s = time.time()
        silent_s = 0.0  # wall time without audio, each poll's share capped at _POLL_CAP_S
        polled = time.monotonic()
        emitted = 0
        reported_drops = 0
        reported_overflows = 0
        try:
            while not stop.is_set():
                try:
                    block, _frames, t_block_s = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    now = time.monotonic()
                    silent_s += min(now - polled, _POLL_CAP_S)
                    polled = now
                    self._check_alive(silent_s)
                    continue
                silent_s, polled = 0.0, time.monotonic()
                if self._reopened:
                    self._reopened = False
                    self.reconnects += 1
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
                raw, voice = None, False
                echo = self.echo
                if echo is not None:
                    try:
                        pcm, raw, voice = echo.process_both(pcm, t_block_s)
                    except Exception:  # never lose the microphone to the echo canceller
                        log.exception("echo cancellation failed; the microphone goes on without")
                        self.echo = None
                yield AudioCaptured(
                    pcm=pcm,
                    t0_s=start_s + emitted / TARGET_SAMPLE_RATE_HZ,
                    sample_rate_hz=TARGET_SAMPLE_RATE_HZ,
                    raw=raw if raw is not pcm else None,
                    voice=voice,
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
        global _open_streams
        with _PA_LOCK:
            stream, self._stream = self._stream, None
        if stream is None:
            return
        try:  # not under the lock: a stream whose sound server died can take a while to abort
            stream.abort()
            stream.close()
        except self.sd.PortAudioError as exc:
            log.warning("closing microphone: %s", exc)
        with _PA_LOCK:
            _open_streams -= 1
