"""Voice activity: webrtcvad frames → speech segments with pre-roll and hangover."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from app.core.config import VadConfig
from app.core.events import AudioCaptured, SpeechEnded, SpeechStarted
from app.perception.base import Vad


class WebRtcVad:
    """The WebRTC VAD (bundled C, no model download)."""

    name = "webrtcvad"

    def __init__(
        self, aggressiveness: int = 2, frame_ms: int = 30, sample_rate_hz: int = 16_000
    ) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)
        self.frame_ms = frame_ms
        self.sample_rate_hz = sample_rate_hz

    def is_speech(self, frame: np.ndarray) -> bool:
        return bool(self._vad.is_speech(frame.tobytes(), self.sample_rate_hz))


@dataclass
class _Open:
    t0_s: float
    frames: list[np.ndarray]
    voiced_ms: int
    last_voiced_end_s: float
    silence_ms: int


class SpeechSegmenter:
    """Turns a stream of audio chunks into SpeechStarted / SpeechEnded events.

    Speech starts when 3 of the last 5 frames are voiced (so one noisy frame does not trigger),
    and ends after `hangover_ms` of unvoiced frames. The segment keeps `preroll_ms` of audio from
    before the trigger so the first syllable is not clipped. Bursts shorter than `min_speech_ms`
    of voiced audio are dropped; long talk is cut at `max_utterance_s`.
    """

    START_WINDOW = 5
    START_VOICED = 3

    def __init__(self, vad: Vad, cfg: VadConfig, sample_rate_hz: int = 16_000) -> None:
        self.vad = vad
        self.cfg = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = sample_rate_hz * vad.frame_ms // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_t0_s: float | None = None
        # Room for the pre-roll before the first voiced frame plus the trigger window itself.
        n_preroll = self.START_WINDOW + -(-cfg.preroll_ms // vad.frame_ms)
        self._history: collections.deque[tuple[np.ndarray, float, bool]] = collections.deque(
            maxlen=n_preroll
        )
        self._probs: collections.deque[float] = collections.deque(maxlen=self.START_WINDOW)
        self._open: _Open | None = None
        self.discarded_bursts = 0

    @property
    def in_speech(self) -> bool:
        return self._open is not None

    def push(self, chunk: AudioCaptured) -> list[SpeechStarted | SpeechEnded]:
        out: list[SpeechStarted | SpeechEnded] = []
        if self._pending_t0_s is not None:
            expected_s = self._pending_t0_s + len(self._pending) / self.sample_rate_hz
            if abs(chunk.t0_s - expected_s) > self.vad.frame_ms / 1000:
                # A gap (a microphone that came back, recording resumed after a pause): what
                # was open ends where the audio stopped, and time restarts from this chunk.
                out.extend(self.flush())
                self._history.clear()
                self._probs.clear()
                self._pending = np.zeros(0, dtype=np.int16)
        if self._pending_t0_s is None or len(self._pending) == 0:
            self._pending_t0_s = chunk.t0_s - len(self._pending) / self.sample_rate_hz
        data = np.concatenate([self._pending, chunk.pcm]) if len(self._pending) else chunk.pcm
        n_frames = len(data) // self.frame_len
        t0 = self._pending_t0_s
        for i in range(n_frames):
            frame = data[i * self.frame_len : (i + 1) * self.frame_len]
            out.extend(self._frame(frame, t0 + i * self.frame_len / self.sample_rate_hz))
        self._pending = data[n_frames * self.frame_len :]
        self._pending_t0_s = t0 + n_frames * self.frame_len / self.sample_rate_hz
        return out

    def flush(self) -> list[SpeechEnded]:
        """End of stream: close an open segment."""
        if self._open is None:
            return []
        return self._close()

    def _frame(self, frame: np.ndarray, t_s: float) -> list[SpeechStarted | SpeechEnded]:
        voiced = self.vad.is_speech(frame)
        frame_s = self.vad.frame_ms / 1000
        seg = self._open
        if seg is None:
            self._history.append((frame, t_s, voiced))
            # A VAD with probabilities (Silero) says how sure it is; others are sure.
            self._probs.append(float(getattr(self.vad, "last_probability", float(voiced))))
            recent = list(self._history)[-self.START_WINDOW :]
            if sum(v for _, _, v in recent) < self.START_VOICED:
                return []
            first_voiced = next(t for _, t, v in recent if v)
            preroll_from = first_voiced - self.cfg.preroll_ms / 1000 - 1e-6
            kept = [(f, t) for f, t, _ in self._history if t >= preroll_from]
            self._open = _Open(
                t0_s=kept[0][1],
                frames=[f for f, _ in kept],
                voiced_ms=sum(self.vad.frame_ms for _, _, v in recent if v),
                last_voiced_end_s=t_s + frame_s,
                silence_ms=0,
            )
            self._history.clear()
            n = min(len(self._probs), len(recent))
            probs = [p for p, (_, _, v) in zip(list(self._probs)[-n:], recent[-n:], strict=True)
                     if v]
            confidence = sum(probs) / len(probs) if probs else 1.0
            self._probs.clear()
            return [SpeechStarted(t0_s=first_voiced, confidence=round(confidence, 3))]
        seg.frames.append(frame)
        if voiced:
            seg.voiced_ms += self.vad.frame_ms
            seg.last_voiced_end_s = t_s + frame_s
            seg.silence_ms = 0
        else:
            seg.silence_ms += self.vad.frame_ms
        too_long = len(seg.frames) * frame_s >= self.cfg.max_utterance_s
        if seg.silence_ms >= self.cfg.hangover_ms or too_long:
            return list(self._close())
        return []

    def _close(self) -> list[SpeechEnded]:
        seg = self._open
        assert seg is not None
        self._open = None
        if seg.voiced_ms < self.cfg.min_speech_ms:
            self.discarded_bursts += 1
            return []
        pcm = np.concatenate(seg.frames)
        return [
            SpeechEnded(
                pcm=pcm,
                t0_s=seg.t0_s,
                t1_s=seg.last_voiced_end_s,
                sample_rate_hz=self.sample_rate_hz,
            )
        ]
