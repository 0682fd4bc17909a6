"""Text to speech samples with pyttsx3 (espeak-ng on Linux, SAPI5 on Windows, NSSpeech on macOS).

pyttsx3's own playback cannot be interrupted, so each sentence is rendered to a file instead
(`save_to_file`, then `runAndWait`, which returns once the engine has finished the utterance)
and read back as 16 kHz int16 for `AudioOutput`. Every call must come from the thread that made
the voice (pyttsx3 engines are not thread-safe): the speaker's render thread.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from app.capture.resample import StreamResampler
from app.core.errors import BackendUnavailableError
from app.speech.echo import RATE_HZ

log = logging.getLogger(__name__)

FILE_WAIT_S = 2.0  # a driver may return a moment before its file is complete


class Pyttsx3Voice:
    """Renders sentences to samples; raises BackendUnavailableError when no engine works."""

    def __init__(self, voice: str = "", rate_wpm: int = 175) -> None:
        try:
            import pyttsx3
        except ImportError as exc:
            raise BackendUnavailableError(
                "pyttsx3 is not installed, so answers cannot be spoken") from exc
        try:
            self._engine = pyttsx3.init()
        except Exception as exc:  # RuntimeError, OSError: no espeak-ng library, no SAPI5
            raise BackendUnavailableError(
                f"no speech engine could be started ({type(exc).__name__}: {exc}); "
                "on Debian/Ubuntu: sudo apt install espeak-ng") from exc
        module = type(getattr(self._engine.proxy, "_driver", None)).__module__
        driver = module.rsplit(".", 1)[-1]
        # The espeak driver prints "Audio saved to …" for every file. Silenced in that module
        # alone: redirecting sys.stdout would swallow every thread's output meanwhile (the
        # command line's answers went missing that way).
        if module in sys.modules:
            sys.modules[module].print = _log_print  # type: ignore[attr-defined]
        self.name = f"pyttsx3 ({driver})"
        self._engine.setProperty("rate", rate_wpm)
        if voice:
            ids = {str(v.id) for v in self._engine.getProperty("voices")}
            if voice in ids:
                self._engine.setProperty("voice", voice)
            else:
                log.warning("voice %r is not installed; the system default is used", voice)
        self._dir = tempfile.TemporaryDirectory(prefix="daybook-tts-")
        self._n = 0

    def render(self, text: str) -> np.ndarray:
        """The sentence as 16 kHz mono int16 samples (empty for nothing to say)."""
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        self._n += 1
        path = Path(self._dir.name) / f"s{self._n}.wav"
        self._engine.save_to_file(text, str(path))
        self._engine.runAndWait()
        try:
            return _read_audio(path)
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._engine.stop()
        self._dir.cleanup()


def _log_print(*args: object, **_kw: object) -> None:
    log.debug("speech engine: %s", " ".join(str(a) for a in args))


def _read_audio(path: Path) -> np.ndarray:
    deadline = time.monotonic() + FILE_WAIT_S
    while True:
        try:
            return _read_wav(path)
        except (OSError, EOFError, wave.Error) as exc:
            if time.monotonic() >= deadline:
                try:  # NSSpeech writes AIFF
                    import soundfile

                    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
                except Exception:
                    raise BackendUnavailableError(
                        f"the speech engine wrote no readable audio ({exc})") from exc
                return _to_16k(data.mean(axis=1), int(rate))
            time.sleep(0.01)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise wave.Error(f"{w.getsampwidth() * 8}-bit audio")
        rate, channels = w.getframerate(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    pcm = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return _to_16k(pcm, rate)


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    out = samples if rate == RATE_HZ else StreamResampler(rate, RATE_HZ).process(samples)
    return np.clip(np.rint(out * 32767.0), -32768, 32767).astype(np.int16)
