from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from app.capture.audio_file import WavFileSource
from app.capture.resample import StreamResampler


def _write(path: Path, data: np.ndarray, rate: int, width: int, channels: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def _tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


def _read_all(src: WavFileSource) -> tuple[np.ndarray, list[float]]:
    chunks = list(src.chunks(threading.Event()))
    return np.concatenate([c.pcm for c in chunks]), [c.t0_s for c in chunks]


def _peak_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * 16000 / len(pcm))


@pytest.mark.parametrize(("rate", "width", "channels"), [
    (16000, 2, 1), (44100, 2, 2), (48000, 2, 1), (8000, 2, 1), (22050, 1, 1), (44100, 3, 2),
    (32000, 4, 1),
])
def test_any_pcm_wav_becomes_16k_mono_with_same_pitch_and_length(
        tmp_path: Path, rate: int, width: int, channels: int) -> None:
    x = _tone(rate, 2.0)
    if width == 1:
        ints = (x * 127 + 128).astype(np.uint8)
    elif width == 2:
        ints = (x * 32767).astype("<i2")
    elif width == 3:
        v = (x * 8388607).astype("<i4")
        ints = np.stack([(v >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8)
    else:
        ints = (x * 2147483647).astype("<i4")
    if channels == 2:
        ints = np.repeat(ints[:, None] if ints.ndim == 1 else ints[:, None, :], 2, axis=1)
    path = _write(tmp_path / "t.wav", ints, rate, width, channels)
    src = WavFileSource(path, start_s=1000.0)
    assert src.converted == (rate != 16000 or channels != 1)
    pcm, t0s = _read_all(src)
    assert abs(len(pcm) - 32000) <= 1
    assert _peak_hz(pcm) == pytest.approx(440.0, abs=2.0)
    assert np.abs(pcm).max() == pytest.approx(16384, rel=0.05)
    assert t0s[0] == 1000.0
    assert np.all(np.diff(t0s) > 0)


def test_timestamps_follow_the_samples(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.wav", (_tone(16000, 1.0) * 30000).astype("<i2"), 16000, 2, 1)
    chunks = list(WavFileSource(path, start_s=50.0, block_ms=100).chunks(threading.Event()))
    assert [round(c.t0_s - 50.0, 3) for c in chunks] == [round(0.1 * i, 3) for i in range(10)]


def test_realtime_replay_takes_real_time(tmp_path: Path) -> None:
    import time

    path = _write(tmp_path / "t.wav", np.zeros(8000, "<i2"), 16000, 2, 1)
    start = time.monotonic()
    list(WavFileSource(path, start_s=0, realtime=True).chunks(threading.Event()))
    assert time.monotonic() - start >= 0.45


def test_stream_resampler_keeps_exact_totals() -> None:
    r = StreamResampler(44100, 16000)
    total = sum(len(r.process(np.zeros(n, np.float32))) for n in [441, 1000, 7, 44100, 3])
    assert total == (441 + 1000 + 7 + 44100 + 3) * 16000 // 44100


def _raw_wav(path: Path, rate: int, data: bytes, *, channels: int = 1, width: int = 2,
             claimed_bytes: int | None = None) -> Path:
    """A PCM WAV written byte by byte, so its header can say what no writer would."""
    import struct

    block = channels * width
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, width * 8)
    size = len(data) if claimed_bytes is None else claimed_bytes
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", size) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + body)
    return path


@pytest.mark.parametrize("rate", [0, 1, 999, 384_001, 2_000_000_000])
def test_nonsense_sample_rates_are_refused(tmp_path: Path, rate: int) -> None:
    from app.core.errors import InputError

    path = _raw_wav(tmp_path / "r.wav", rate, b"\0\0" * 1000)
    with pytest.raises(InputError, match=rf"sample rate is {rate} Hz; Daybook reads 1 kHz to "
                                         r"384 kHz"):
        WavFileSource(path, start_s=0)


@pytest.mark.parametrize("rate", [1000, 8000, 384_000])
def test_sample_rates_in_range_are_read(tmp_path: Path, rate: int) -> None:
    path = _raw_wav(tmp_path / "r.wav", rate, (_tone(rate, 0.5) * 30000).astype("<i2").tobytes())
    pcm, _ = _read_all(WavFileSource(path, start_s=0))
    assert abs(len(pcm) - 8000) <= 1


@pytest.mark.parametrize(("extra", "claimed"), [
    (b"\x01", None),            # the data size is not a multiple of the frame size
    (b"", 64_000),              # the header claims twice the data there is
    (b"\x01", 64_000),          # both: a recording cut off mid-sample
])
def test_a_truncated_file_keeps_every_whole_sample(
        tmp_path: Path, extra: bytes, claimed: int | None) -> None:
    samples = (np.arange(16000) - 8000).astype("<i2")  # 1 s, every sample different
    path = _raw_wav(tmp_path / "t.wav", 16000, samples.tobytes() + extra, claimed_bytes=claimed)
    src = WavFileSource(path, start_s=0)
    assert src.n_frames == 16000 and src.duration_s == 1.0
    pcm, _ = _read_all(src)
    assert np.array_equal(pcm, samples)  # all of them, unchanged, none invented


def test_a_truncated_stereo_24_bit_file_keeps_every_whole_frame(tmp_path: Path) -> None:
    frames = 44100 // 2  # 0.5 s of 6-byte frames, then 5 bytes of a frame that never finished
    path = _raw_wav(tmp_path / "t.wav", 44100, b"\x10" * (6 * frames + 5), channels=2, width=3)
    src = WavFileSource(path, start_s=0)
    assert src.n_frames == frames
    pcm, _ = _read_all(src)
    assert len(pcm) == frames * 16000 // 44100
