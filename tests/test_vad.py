from __future__ import annotations

import numpy as np
import pytest

from app.core.config import VadConfig
from app.core.events import AudioCaptured, SpeechEnded, SpeechStarted
from app.perception.fakes import EnergyVad
from app.perception.vad import SpeechSegmenter, WebRtcVad
from tests import mediagen

RATE = 16000


def _signal(bursts: list[tuple[float, float]], total_s: float) -> np.ndarray:
    """Loud 300 Hz bursts at (start, end) seconds over silence."""
    x = np.zeros(int(total_s * RATE), np.int16)
    t = np.arange(len(x)) / RATE
    for a, b in bursts:
        sel = (t >= a) & (t < b)
        x[sel] = (8000 * np.sin(2 * np.pi * 300 * t[sel])).astype(np.int16)
    return x


def _run(seg: SpeechSegmenter, pcm: np.ndarray, block: int = 480, start_s: float = 100.0
         ) -> list[SpeechStarted | SpeechEnded]:
    events: list[SpeechStarted | SpeechEnded] = []
    for i in range(0, len(pcm), block):
        events += seg.push(AudioCaptured(pcm[i:i + block], start_s + i / RATE, RATE))
    return events + seg.flush()


def test_segments_have_preroll_and_end_after_hangover() -> None:
    cfg = VadConfig(hangover_ms=300, preroll_ms=300, min_speech_ms=240)
    events = _run(SpeechSegmenter(EnergyVad(), cfg), _signal([(1.0, 2.5), (4.0, 5.0)], 6.0))
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    frame = 0.03  # the VAD's resolution
    assert [e.t0_s - 100 for e in starts] == pytest.approx([1.0, 4.0], abs=frame)
    assert [e.t0_s - 100 for e in ends] == pytest.approx([0.7, 3.7], abs=frame)  # 300 ms pre-roll
    assert [e.t1_s - 100 for e in ends] == pytest.approx([2.5, 5.0], abs=frame)
    # The PCM covers pre-roll + speech + the hangover that confirmed the end.
    assert len(ends[0].pcm) / RATE == pytest.approx(0.3 + 1.5 + 0.3, abs=0.07)
    assert isinstance(events[0], SpeechStarted) and isinstance(events[1], SpeechEnded)


@pytest.mark.parametrize("block", [160, 480, 1000, 4096])
def test_chunking_does_not_change_segments(block: int) -> None:
    pcm = _signal([(0.5, 1.2), (2.0, 3.3)], 4.0)
    ref = [(round(e.t0_s, 3), round(e.t1_s, 3), len(e.pcm))
           for e in _run(SpeechSegmenter(EnergyVad(), VadConfig()), pcm) if isinstance(e, SpeechEnded)]
    got = [(round(e.t0_s, 3), round(e.t1_s, 3), len(e.pcm))
           for e in _run(SpeechSegmenter(EnergyVad(), VadConfig()), pcm, block)
           if isinstance(e, SpeechEnded)]
    assert got == ref and len(ref) == 2


def test_short_bursts_are_dropped_and_counted() -> None:
    seg = SpeechSegmenter(EnergyVad(), VadConfig(min_speech_ms=240))
    events = _run(seg, _signal([(1.0, 1.12)], 2.0))
    assert [e for e in events if isinstance(e, SpeechEnded)] == []
    assert seg.discarded_bursts == 1


def test_single_noisy_frames_do_not_trigger() -> None:
    pcm = _signal([(1.0, 1.03), (1.2, 1.23), (1.5, 1.53)], 2.0)
    assert _run(SpeechSegmenter(EnergyVad(), VadConfig()), pcm) == []


def test_long_talk_is_cut_at_max_utterance() -> None:
    seg = SpeechSegmenter(EnergyVad(), VadConfig(max_utterance_s=2.0))
    ends = [e for e in _run(seg, _signal([(0.0, 5.0)], 5.5)) if isinstance(e, SpeechEnded)]
    assert len(ends) == 3
    assert all(len(e.pcm) / RATE <= 2.0 + 0.31 for e in ends)


def test_open_segment_is_flushed_at_end_of_stream() -> None:
    ends = [e for e in _run(SpeechSegmenter(EnergyVad(), VadConfig()), _signal([(0.5, 2.0)], 2.0))
            if isinstance(e, SpeechEnded)]
    assert len(ends) == 1


def test_webrtcvad_finds_espeak_speech() -> None:
    speech = mediagen.speak("good morning, this is a test of the voice detector")
    pcm = np.concatenate([np.zeros(RATE, np.int16), speech, np.zeros(RATE, np.int16)])
    ends = [e for e in _run(SpeechSegmenter(WebRtcVad(2), VadConfig()), pcm, start_s=0.0)
            if isinstance(e, SpeechEnded)]
    assert len(ends) >= 1
    assert ends[0].t0_s == pytest.approx(1.0 - 0.3, abs=0.25)
    assert ends[-1].t1_s == pytest.approx(1.0 + len(speech) / RATE, abs=0.4)


def test_a_gap_in_the_audio_ends_what_was_open_and_restarts_time() -> None:
    """A microphone that came back (or recording resumed): speech cut by the gap ends where
    the audio stopped, and what follows is timed from its own chunks."""
    from app.core.config import VadConfig
    from app.perception.fakes import EnergyVad

    seg = SpeechSegmenter(EnergyVad(), VadConfig())
    before = _signal([(0.5, 2.0)], 2.0)  # still talking when the audio stops
    after = _signal([(0.5, 1.5)], 3.0)
    events = _run(seg, before, start_s=100.0) + _run(seg, after, start_s=160.0)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 2
    assert ended[0].t1_s == pytest.approx(102.0, abs=0.05)
    assert ended[1].t0_s == pytest.approx(160.5 - 0.3, abs=0.1)  # with its pre-roll
    assert ended[1].t1_s == pytest.approx(161.5, abs=0.05)
