"""Replay a WAV file as an audio source, at real-time pace or as fast as the pipeline takes it."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from app.capture.base import TARGET_SAMPLE_RATE_HZ
from app.capture.resample import StreamResampler, float_to_int16, to_mono
from app.core.errors import InputError
from app.core.events import AudioCaptured

_CONVERT_HINT = "convert it with: ffmpeg -i INPUT -ac 1 -ar 16000 output.wav"
# Telephone audio is 8 kHz and studio audio at most 384 kHz; a header outside this range is
# damaged (0 Hz would divide by zero, 2 GHz would resample for hours).
MIN_SAMPLE_RATE_HZ = 1_000
MAX_SAMPLE_RATE_HZ = 384_000


def _decode(raw: bytes, sample_width: int, channels: int) -> np.ndarray:
    """PCM bytes → (frames, channels) float32 in [-1, 1]."""
    if sample_width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif sample_width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif sample_width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    else:
        data = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    return data.reshape(-1, channels)


class WavFileSource:
    """Any PCM WAV (8/16/24/32-bit, any rate, any channel count) → 16 kHz mono int16 chunks."""

    live = False

    def __init__(
        self, path: Path, *, start_s: float, realtime: bool = False, block_ms: int | None = None
    ) -> None:
        self.path = Path(path)
        self.name = f"audio file {self.path.name}"
        self.start_s = start_s
        self.realtime = realtime
        # Real-time replay stands in for a microphone: 30 ms blocks, as a sound card delivers.
        # Flat out, big blocks: every block is a queue hand-off between two Python threads, and
        # at 30 ms those hand-offs (≈2,000 a second) kept the GIL so busy that the GUI thread
        # waited up to 50–100 ms for it (bench/gui.py); at 500 ms the worst wait is ≈10 ms.
        self.block_ms = block_ms or (30 if realtime else 500)
        if not self.path.exists():
            raise InputError(f"audio file not found: {self.path}")
        if self.path.is_dir():
            raise InputError(f"audio path is a directory, not a WAV file: {self.path}")
        try:
            with self.path.open("rb") as fh, wave.open(fh, "rb") as wav:
                self.sample_rate_hz = wav.getframerate()
                self.channels = wav.getnchannels()
                self.sample_width = wav.getsampwidth()
                self.n_frames = wav.getnframes()
                # Opening stops right after the data chunk's header: the samples start here.
                data_offset = fh.tell()
        except PermissionError as exc:
            raise InputError(f"cannot read audio file {self.path}: permission denied") from exc
        except OSError as exc:
            raise InputError(f"cannot read audio file {self.path}: {exc.strerror}") from exc
        except Exception as exc:  # wave raises wave.Error, EOFError or RuntimeError on junk
            if self.path.stat().st_size == 0:
                raise InputError(f"audio file is empty: {self.path}") from exc
            detail = str(exc) or "corrupt header"
            raise InputError(f"not a PCM WAV file ({detail}): {self.path}; {_CONVERT_HINT}") from exc
        if not MIN_SAMPLE_RATE_HZ <= self.sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
            raise InputError(
                f"audio file {self.path} says its sample rate is {self.sample_rate_hz} Hz; "
                f"Daybook reads {MIN_SAMPLE_RATE_HZ // 1000} kHz to {MAX_SAMPLE_RATE_HZ // 1000} kHz "
                f"(the header is probably damaged); {_CONVERT_HINT}"
            )
        if self.sample_width not in (1, 2, 3, 4):
            raise InputError(
                f"unsupported sample width {self.sample_width} bytes in {self.path}; "
                f"{_CONVERT_HINT}"
            )
        if self.n_frames == 0:
            raise InputError(f"audio file contains no audio: {self.path}")
        self.frame_bytes = self.sample_width * self.channels
        self.n_frames = min(self.n_frames, self._frames_in_file(data_offset))
        if self.n_frames == 0:
            raise InputError(f"audio file contains no audio: {self.path}")
        self.duration_s: float | None = self.n_frames / self.sample_rate_hz

    def _frames_in_file(self, data_offset: int) -> int:
        """Whole frames actually present: a header may claim more data than the file holds (a
        recording cut short); a partial last frame is not a sample."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return self.n_frames
        return max(0, size - data_offset) // self.frame_bytes

    @property
    def converted(self) -> bool:
        return self.sample_rate_hz != TARGET_SAMPLE_RATE_HZ or self.channels != 1

    def chunks(self, stop: threading.Event) -> Iterator[AudioCaptured]:
        block_in = max(1, self.sample_rate_hz * self.block_ms // 1000)
        resampler = StreamResampler(self.sample_rate_hz, TARGET_SAMPLE_RATE_HZ)
        emitted = 0
        wall_start = time.monotonic()
        left = self.n_frames
        with wave.open(str(self.path), "rb") as wav:
            while left > 0 and not stop.is_set():
                raw = wav.readframes(min(block_in, left))
                # A truncated file ends in a partial frame: trim it, keep every whole one.
                raw = raw[: len(raw) - len(raw) % self.frame_bytes]
                if not raw:
                    break
                left -= len(raw) // self.frame_bytes
                block = to_mono(_decode(raw, self.sample_width, self.channels))
                pcm = float_to_int16(resampler.process(block))
                if len(pcm) == 0:
                    continue
                offset_s = emitted / TARGET_SAMPLE_RATE_HZ
                if self.realtime:
                    delay = wall_start + offset_s - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                yield AudioCaptured(
                    pcm=pcm, t0_s=self.start_s + offset_s, sample_rate_hz=TARGET_SAMPLE_RATE_HZ
                )
                emitted += len(pcm)

    def close(self) -> None:
        pass
