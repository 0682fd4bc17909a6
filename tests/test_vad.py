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


# --- speech over Daybook's voice (the echo canceller's two outputs) ----------------------------

def _barge_in(stops_at_s: float | None, block: int) -> tuple[SpeechEnded, np.ndarray, np.ndarray]:
    """The user talks 1.0–2.5 s; Daybook's voice plays until `stops_at_s` (None: throughout)
    and its echo comes back 0.15 s later. The echo canceller's output holds the user from
    1.15 s only (its suppressor took the first 150 ms) and no echo; the raw microphone holds
    the user from 1.0 s and the echo (a 1200 Hz tone)."""
    total = 4.0
    user = _signal([(1.0, 2.5)], total)
    t = np.arange(len(user)) / RATE
    end_echo = total if stops_at_s is None else stops_at_s + 0.15
    echo = np.where(t < end_echo, 3000 * np.sin(2 * np.pi * 1200 * t), 0).astype(np.int16)
    raw = (user.astype(np.int32) + echo).clip(-32768, 32767).astype(np.int16)
    out = np.where(t >= 1.15, user, 0).astype(np.int16)
    seg = SpeechSegmenter(EnergyVad(), VadConfig(hangover_ms=300, preroll_ms=300))
    ends = []
    for i in range(0, len(out), block):
        voice = stops_at_s is None or i / RATE < stops_at_s
        chunk = AudioCaptured(out[i:i + block], 100.0 + i / RATE, RATE,
                              raw=raw[i:i + block], voice=voice)
        ends += [e for e in seg.push(chunk) if isinstance(e, SpeechEnded)]
    assert len(ends) == 1
    return ends[0], out, raw


@pytest.mark.parametrize("block", [160, 480, 1000])
def test_a_barge_in_is_heard_from_the_microphone_itself_from_just_before_its_start(
        block: int) -> None:
    """Daybook stopped 0.15 s after the VAD heard the user (at 1.15 s, AEC3 having held back
    their first 150 ms): the utterance is the microphone's own samples from the frame at
    1.15 s − RAW_LEAD_S on, the user's onset with them, and the echo canceller's before."""
    end, out, raw = _barge_in(stops_at_s=1.3, block=block)
    i0 = round((end.t0_s - 100.0) * RATE)
    assert end.t0_s - 100.0 == pytest.approx(1.15 - 0.3, abs=0.03)  # the pre-roll, as ever
    frame = 480  # the fake VAD's 30 ms
    first_voiced = round(1.15 * RATE) // frame * frame  # the frame the user's audio starts in
    lead = round(SpeechSegmenter.RAW_LEAD_S * RATE)
    switch = -(-(first_voiced - lead) // frame) * frame  # the first frame from 0.1 s before
    k = switch - i0
    assert np.array_equal(end.pcm[:k], out[i0:switch])
    assert np.array_equal(end.pcm[k:], raw[switch:i0 + len(end.pcm)])
    assert np.any(end.pcm[k:k + 1600] != out[switch:switch + 1600])  # the onset is there


def test_speech_over_a_voice_that_went_on_keeps_the_echo_cancellers_output() -> None:
    """Daybook did not stop (barge-in off, or not sure enough): the raw microphone holds its
    voice all along, so the echo canceller's output is what is recognised."""
    end, out, _raw = _barge_in(stops_at_s=None, block=480)
    i0 = round((end.t0_s - 100.0) * RATE)
    assert np.array_equal(end.pcm, out[i0:i0 + len(end.pcm)])


def test_a_first_word_left_short_by_the_echo_canceller_starts_the_utterance_after_it() -> None:
    """Over Daybook's voice AEC3 may leave only 90 ms of a first word ("Wait,"): too short a
    burst to keep alone. The utterance that follows within REJOIN_S starts with it, from the
    microphone's own samples, and the burst is not counted as dropped."""
    user = _signal([(1.0, 1.3), (1.7, 2.7)], 4.0)  # "Wait," … "I have another question."
    t = np.arange(len(user)) / RATE
    echo = np.where(t < 1.35, 3000 * np.sin(2 * np.pi * 1200 * t), 0).astype(np.int16)
    raw = (user.astype(np.int32) + echo).clip(-32768, 32767).astype(np.int16)
    out = np.where((t >= 1.21) | (t < 1.0), user, 0).astype(np.int16)  # 90 ms of the first
    seg = SpeechSegmenter(EnergyVad(), VadConfig(hangover_ms=300, preroll_ms=300,
                                                 min_speech_ms=240))
    events: list[SpeechStarted | SpeechEnded] = []
    for i in range(0, len(out), 480):
        events += seg.push(AudioCaptured(out[i:i + 480], 100.0 + i / RATE, RATE,
                                         raw=raw[i:i + 480], voice=i / RATE < 1.2))
    events += seg.flush()
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) == 1 and seg.discarded_bursts == 0
    end = ends[0]
    assert end.t0_s - 100 == pytest.approx(1.2 - 0.3, abs=0.03)  # the first burst's pre-roll
    i0 = round((end.t0_s - 100) * RATE)
    k = round(1.2 * RATE) - i0  # from 1.2 s − 0.1 s on: the microphone's own samples
    assert np.array_equal(end.pcm[k:], raw[i0 + k:i0 + len(end.pcm)])
    assert end.t1_s - 100 == pytest.approx(2.7, abs=0.03)

    # With nothing to cancel (no raw samples), a burst that short is dropped, as ever.
    plain = SpeechSegmenter(EnergyVad(), VadConfig(hangover_ms=300, preroll_ms=300,
                                                   min_speech_ms=240))
    ends = [e for e in _run(plain, out) if isinstance(e, SpeechEnded)]
    assert len(ends) == 1 and plain.discarded_bursts == 1
    assert ends[0].t0_s - 100 > 1.3  # after the first word
