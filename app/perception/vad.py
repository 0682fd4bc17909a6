"""Voice activity: webrtcvad frames → speech segments with pre-roll and hangover."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

import numpy as np

from app.core.config import VadConfig
from app.core.events import AudioCaptured, SpeechEnded, SpeechStarted
from app.perception.base import Vad

log = logging.getLogger(__name__)


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
class _Frame:
    pcm: np.ndarray  # what the VAD heard
    t_s: float
    voiced: bool
    raw: np.ndarray | None = None  # the microphone's own samples, while Daybook's voice is cancelled
    voice: bool = False  # Daybook's voice was playing


@dataclass
class _Open:
    t0_s: float
    first_voiced_s: float
    frames: list[_Frame]
    voiced_ms: int
    last_voiced_end_s: float
    silence_ms: int


class SpeechSegmenter:
    """Turns a stream of audio chunks into SpeechStarted / SpeechEnded events.

    Speech starts when 3 of the last 5 frames are voiced (so one noisy frame does not trigger),
    and ends after `hangover_ms` of unvoiced frames. The segment keeps `preroll_ms` of audio from
    before the trigger so the first syllable is not clipped. Bursts shorter than `min_speech_ms`
    of voiced audio are dropped; long talk is cut at `max_utterance_s`.

    Someone who talks over Daybook (a barge-in) is heard by the VAD through the echo canceller,
    whose suppressor cuts into their first words. When Daybook's voice stopped within
    `QUIET_AFTER_S` of their first voiced frame, their utterance is therefore made of the
    microphone's own samples from `RAW_LEAD_S` before that frame: it then holds all of the
    user's speech and a few hundred ms of Daybook's echo under its start (bench/voice.py counts
    the word errors, beside those of the echo canceller's output). When Daybook went on talking,
    the echo canceller's output is kept.
    """

    RAW_LEAD_S = 0.1  # AEC3 holds back a user's first 30–150 ms: the VAD's first voiced frame is late
    QUIET_AFTER_S = 0.4  # a barge-in silences Daybook ≈0.1–0.2 s after the first voiced frame
    REJOIN_S = 1.0  # a short burst over Daybook's voice starts the next segment this soon after

    START_WINDOW = 5
    START_VOICED = 3

    def __init__(self, vad: Vad, cfg: VadConfig, sample_rate_hz: int = 16_000) -> None:
        self.vad = vad
        self.cfg = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = sample_rate_hz * vad.frame_ms // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_raw: np.ndarray | None = None  # the raw samples of `_pending`, if any
        self._pending_t0_s: float | None = None
        # Room for the pre-roll before the first voiced frame plus the trigger window itself.
        n_preroll = self.START_WINDOW + -(-cfg.preroll_ms // vad.frame_ms)
        self._history: collections.deque[_Frame] = collections.deque(maxlen=n_preroll)
        self._probs: collections.deque[float] = collections.deque(maxlen=self.START_WINDOW)
        self._open: _Open | None = None
        # A burst too short to keep that began over Daybook's voice, with the frames since: the
        # echo canceller may have left only a fragment of a first word ("Wait, I have…"), which
        # then opens the next segment (see REJOIN_S).
        self._carry: _Open | None = None
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
                self._pending_raw = None
        if self._pending_t0_s is None or len(self._pending) == 0:
            self._pending_t0_s = chunk.t0_s - len(self._pending) / self.sample_rate_hz
        data = np.concatenate([self._pending, chunk.pcm]) if len(self._pending) else chunk.pcm
        raw = None
        if chunk.raw is not None or self._pending_raw is not None:
            before = self._pending if self._pending_raw is None else self._pending_raw
            raw = np.concatenate([before, chunk.pcm if chunk.raw is None else chunk.raw])
        n_frames = len(data) // self.frame_len
        t0 = self._pending_t0_s
        for i in range(n_frames):
            cut = slice(i * self.frame_len, (i + 1) * self.frame_len)
            out.extend(self._frame(data[cut], t0 + i * self.frame_len / self.sample_rate_hz,
                                   None if raw is None else raw[cut], chunk.voice))
        self._pending = data[n_frames * self.frame_len :]
        self._pending_raw = None if raw is None else raw[n_frames * self.frame_len :]
        self._pending_t0_s = t0 + n_frames * self.frame_len / self.sample_rate_hz
        return out

    def flush(self) -> list[SpeechEnded]:
        """End of stream: close an open segment."""
        self._drop_carry()
        if self._open is None:
            return []
        return self._close()

    def _drop_carry(self) -> None:
        if self._carry is not None:
            self.discarded_bursts += 1
            self._carry = None

    def _frame(self, pcm: np.ndarray, t_s: float, raw: np.ndarray | None = None,
               voice: bool = False) -> list[SpeechStarted | SpeechEnded]:
        voiced = self.vad.is_speech(pcm)
        frame = _Frame(pcm, t_s, voiced, raw, voice)
        frame_s = self.vad.frame_ms / 1000
        seg = self._open
        if seg is None:
            self._history.append(frame)
            if self._carry is not None:
                if t_s - self._carry.last_voiced_end_s > self.REJOIN_S:
                    self._drop_carry()
                else:
                    self._carry.frames.append(frame)
            # A VAD with probabilities (Silero) says how sure it is; others are sure.
            self._probs.append(float(getattr(self.vad, "last_probability", float(voiced))))
            recent = list(self._history)[-self.START_WINDOW :]
            if sum(f.voiced for f in recent) < self.START_VOICED:
                return []
            first_voiced = next(f.t_s for f in recent if f.voiced)
            preroll_from = first_voiced - self.cfg.preroll_ms / 1000 - 1e-6
            kept = [f for f in self._history if f.t_s >= preroll_from]
            self._open = _Open(
                t0_s=kept[0].t_s,
                first_voiced_s=first_voiced,
                frames=kept,
                voiced_ms=sum(self.vad.frame_ms for f in recent if f.voiced),
                last_voiced_end_s=t_s + frame_s,
                silence_ms=0,
            )
            carried = self._carry
            if carried is not None:  # the fragment before it starts it
                before = [f for f in carried.frames if f.t_s < kept[0].t_s]
                self._open.t0_s = carried.t0_s
                self._open.first_voiced_s = carried.first_voiced_s
                self._open.frames = before + kept
                self._open.voiced_ms += carried.voiced_ms
                self._carry = None
            self._history.clear()
            n = min(len(self._probs), len(recent))
            probs = [p for p, f in zip(list(self._probs)[-n:], recent[-n:], strict=True)
                     if f.voiced]
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
            if any(f.raw is not None for f in seg.frames):
                self._carry = seg
            else:
                self.discarded_bursts += 1
            return []
        return [
            SpeechEnded(
                pcm=self._audio(seg),
                t0_s=seg.t0_s,
                t1_s=seg.last_voiced_end_s,
                sample_rate_hz=self.sample_rate_hz,
            )
        ]

    def _audio(self, seg: _Open) -> np.ndarray:
        """The utterance's samples: what the VAD heard, or for a barge-in the microphone's own
        from just before the first voiced frame (see the class's note)."""
        frames = seg.frames
        if all(f.raw is None for f in frames):
            return np.concatenate([f.pcm for f in frames])
        if any(f.voice for f in frames if f.t_s >= seg.first_voiced_s + self.QUIET_AFTER_S):
            last = max(f.t_s for f in frames if f.voice)
            log.debug("speech over Daybook's voice, which went on %.2f s after it: heard through "
                      "the echo canceller", last - seg.first_voiced_s)
            return np.concatenate([f.pcm for f in frames])
        switch_s = seg.first_voiced_s - self.RAW_LEAD_S - 1e-6
        log.debug("speech over Daybook's voice, which stopped: heard from the microphone's own "
                  "samples from %.2f s", switch_s)
        return np.concatenate([f.raw if f.raw is not None and f.t_s >= switch_s else f.pcm
                               for f in frames])
