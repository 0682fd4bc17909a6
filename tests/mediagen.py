"""Test media made on the spot: speech with espeak-ng, video with ffmpeg (both real tools)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE_HZ = 16_000

# ffmpeg lavfi sources that look clearly different from each other (scene changes).
SCENES = ["testsrc2", "smptebars", "color=c=darkgreen", "rgbtestsrc", "testsrc", "pal75bars",
          "color=c=navy", "yuvtestsrc"]


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed (Debian: apt install {tool})")
    return path


def speak(text: str, *, voice: str = "en-us", speed_wpm: int = 150) -> np.ndarray:
    """espeak-ng speech as 16 kHz mono int16."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "s.wav"
        subprocess.run([require("espeak-ng"), "-v", voice, "-s", str(speed_wpm), "-w", str(raw),
                        text], check=True, capture_output=True)
        out = Path(tmp) / "s16.wav"
        subprocess.run([require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(raw), "-ac", "1",
                        "-ar", str(RATE_HZ), "-sample_fmt", "s16", str(out)], check=True)
        return read_wav(out)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").copy()


def write_wav(path: Path, pcm: np.ndarray, rate_hz: int = RATE_HZ, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def conversation(lines: list[tuple[float, str]], total_s: float, *, noise: float = 30.0,
                 seed: int = 0, voice: str = "en-gb") -> np.ndarray:
    """Speech placed at the given offsets (seconds) over quiet room noise. The default voice is
    the espeak-ng accent the default recogniser (Moonshine) hears best; tests of other voices
    say so."""
    rng = np.random.default_rng(seed)
    track = rng.normal(0, noise, int(total_s * RATE_HZ)).astype(np.float32)
    for offset_s, text in lines:
        pcm = speak(text, voice=voice).astype(np.float32)
        i = int(offset_s * RATE_HZ)
        end = min(len(track), i + len(pcm))
        track[i:end] += pcm[: end - i]
    return np.clip(track, -32768, 32767).astype(np.int16)


def scenes_video(path: Path, scene_s: list[float], *, size: str = "320x240", fps: int = 10) -> Path:
    """A video of consecutive, visibly different scenes (one lavfi source each)."""
    args = [require("ffmpeg"), "-loglevel", "error", "-y"]
    for i, dur in enumerate(scene_s):
        src = SCENES[i % len(SCENES)]
        sep = ":" if "=" in src else "="
        args += ["-f", "lavfi", "-t", str(dur), "-i", f"{src}{sep}size={size}:rate={fps}"]
    n = len(scene_s)
    chain = "".join(f"[{i}:v]format=yuv420p,setsar=1[v{i}];" for i in range(n))
    chain += "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[out]"
    args += ["-filter_complex", chain, "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True)
    return path
