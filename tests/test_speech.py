"""The speech module's logic, without a sound device: the echo canceller's pairing of speaker and
microphone samples (real AEC3), the speaker's order and cut-off (app/speech/fakes.py: an output
that plays in real time), barge-in decisions, the real pyttsx3 voice heard back by the real recogniser, and
text-only mode when there is no speaker.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from app.core.config import AssistantConfig, Config
from app.core.events import (
    AnswerFinished,
    AnswerSentence,
    AnswerSpoken,
    AnswerStarted,
    BargeIn,
    SpeechStarted,
)
from app.speech.control import VoiceControl
from app.speech.echo import FRAME, RATE_HZ, EchoCanceller, FarEnd
from app.speech.fakes import FakeOutput, FakeVoice
from app.speech.output import Segment
from app.speech.speaker import TextOnly, VoiceSpeaker, heard_of
from tests import mediagen

# --- the far end and the echo canceller --------------------------------------------------------


def test_far_end_reads_what_was_sent_by_a_time_and_by_index() -> None:
    far = FarEnd(ring_s=0.1)  # 1600 samples: the writes below wrap around
    blocks = [np.full(320, i + 1, np.int16) for i in range(8)]
    for i, b in enumerate(blocks):
        far.write(b, t_s=10.0 + 0.02 * (i + 1))
    assert far.index_at(10.16) == 8 * 320
    assert far.index_at(10.10) == 5 * 320  # 60 ms before the last write: three blocks fewer
    assert far.index_at(11.0) == 8 * 320  # nothing sent after the last write
    got = far.read_to(far.index_at(10.16), 640)
    assert list(got[:320]) == [7] * 320 and list(got[320:]) == [8] * 320
    assert not far.read_to(2 * 320, 320).any()  # overwritten: zeros, not stale samples
    far.unsent(320)  # the device dropped the last block unplayed
    assert far.index_at(11.0) == 7 * 320
    far.write(np.full(320, 9, np.int16), t_s=10.2)
    assert list(far.read_to(8 * 320, 320)) == [9] * 320


def _room(far: np.ndarray, delay: int, gain: float) -> np.ndarray:
    echo = np.zeros(len(far))
    echo[delay:] = far[:-delay] * gain
    echo[delay + 200:] += far[:-(delay + 200)] * gain * 0.3
    return echo


def test_echo_is_removed_though_block_times_come_in_bursts() -> None:
    """The speaker writes 20 ms blocks on time; the microphone's 30 ms blocks arrive three at
    a time with the same time stamp (as PulseAudio delivers them). Pairing by sample count keeps
    AEC3's reference steady: the echo (180 ms later, gain 0.5) is cut by more than 25 dB, and
    with nothing played the microphone passes untouched."""
    speech = mediagen.speak("You left your passport in the kitchen drawer this morning, and "
                            "then you went out to buy bread and milk.", speed_wpm=175)
    far_pcm = np.concatenate([speech, speech])
    n = len(far_pcm) // 1440 * 1440
    far_pcm = far_pcm[:n]
    rng = np.random.default_rng(0)
    near_pcm = np.clip(_room(far_pcm.astype(float), 2880, 0.5) + rng.normal(0, 20, n),
                       -32768, 32767).astype(np.int16)
    far = FarEnd()
    aec = EchoCanceller(far)
    t0 = 100.0
    out = []
    written = 0
    for k in range(0, n, 1440):  # every 90 ms: the speaker's blocks, then 3 microphone blocks
        t_burst = t0 + (k + 1440) / RATE_HZ + 0.004
        while written < k + 1440 + 1600:  # the speaker runs 100 ms ahead of the sound
            block = far_pcm[written:written + 320] if written < n else np.zeros(320, np.int16)
            far.write(block, t_s=t0 + (written + 320 - 1600) / RATE_HZ)
            written += 320
        for j in range(3):
            out.append(aec.process(near_pcm[k + 480 * j:k + 480 * (j + 1)], t_burst))
    cleaned = np.concatenate(out)
    half = slice(n // 2, n)
    before = float(np.mean(near_pcm[half].astype(float) ** 2))
    after = float(np.mean(cleaned[half].astype(float) ** 2))
    assert 10 * np.log10(before / after) > 25
    assert aec.reduction_db is not None and aec.reduction_db > 10  # with its convergence

    assert aec.settled
    quiet = EchoCanceller(FarEnd())  # nothing ever played: bit-identical
    block = near_pcm[:480]
    assert np.array_equal(quiet.process(block, 5.0), block)
    assert quiet.frames_processed == 0 and quiet.frames_passed == 3 and not quiet.settled


def test_the_echo_canceller_hands_on_the_microphones_own_samples_and_whether_it_spoke() -> None:
    far = FarEnd()
    far.write(np.full(1600, 3000, np.int16), t_s=1.0)  # Daybook's voice, just sent
    aec = EchoCanceller(far)
    near = (np.arange(480) % 50 * 100).astype(np.int16)
    got = aec.process_both(near, 1.0)
    assert np.array_equal(got.raw, near) and len(got.out) == len(near) and got.voice
    far.write(np.zeros(1600, np.int16), t_s=1.1)  # silence sent since: still cancelled, no voice
    got = aec.process_both(near, 1.1)
    assert got.raw is not got.out and not got.voice
    quiet = EchoCanceller(FarEnd())  # nothing played: the block itself, three times over
    got = quiet.process_both(near, 5.0)
    assert got.out is got.raw is near and not got.voice


def test_a_block_short_of_whole_frames_is_held_back_not_lost() -> None:
    far = FarEnd()
    far.write(np.full(1600, 1000, np.int16), t_s=1.0)
    aec = EchoCanceller(far)
    first = aec.process(np.zeros(250, np.int16), 1.0)
    second = aec.process(np.zeros(230, np.int16), 1.01)
    assert len(first) == FRAME and len(second) == 2 * FRAME  # 480 in, 480 out


# --- the speaker ------------------------------------------------------------------------------


def _speaker() -> tuple[VoiceSpeaker, FakeOutput, FakeVoice, list[tuple[Any, ...]]]:
    out, voice, reports = FakeOutput(), FakeVoice(), []
    speaker = VoiceSpeaker(lambda: voice, out)  # type: ignore[arg-type]
    speaker.on_started = lambda tag, t: reports.append(("started", tag))
    speaker.on_spoken = lambda *a: reports.append(("spoken", *a))
    return speaker, out, voice, reports


def _wait(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sentences_are_said_in_order_and_reported_when_played_out() -> None:
    speaker, _out, voice, reports = _speaker()
    try:
        speaker.say(1, "One two three.")
        speaker.say(1, "Four five.")
        speaker.finish(1)
        _wait(lambda: any(r[0] == "spoken" for r in reports))
        assert voice.said == ["One two three.", "Four five."]
        assert reports[0] == ("started", 1)
        assert reports[-1] == ("spoken", 1, "One two three. Four five.", False, None)
        assert not speaker.speaking
    finally:
        speaker.close()


def test_a_stopped_answer_keeps_what_was_heard_of_it() -> None:
    speaker, _out, _voice, reports = _speaker()
    try:
        speaker.say(7, "one two three four five six seven eight nine ten.")  # 1 s
        speaker.say(7, "Never said.")
        _wait(lambda: speaker.output.queue and speaker.output.queue[0].played > 8000)
        delay = speaker.stop()
        assert delay is not None and delay < 0.05
        (_, tag, said, interrupted, _delay), = [r for r in reports if r[0] == "spoken"]
        assert tag == 7 and interrupted
        words = said.rstrip("…").split()
        assert said.endswith("…") and 5 <= len(words) < 10, said
        assert "Never" not in said
        assert speaker.stop() is None  # nothing more to stop
    finally:
        speaker.close()


def test_a_new_answer_cuts_off_the_one_being_said() -> None:
    speaker, _out, _voice, reports = _speaker()
    try:
        speaker.say(1, "one two three four five six seven eight nine ten.")
        _wait(lambda: any(r[0] == "started" for r in reports))
        speaker.say(2, "Two.")
        speaker.finish(2)
        _wait(lambda: any(r[0] == "spoken" and r[1] == 2 for r in reports))
        first = next(r for r in reports if r[0] == "spoken" and r[1] == 1)
        assert first[3] is True  # interrupted
    finally:
        speaker.close()


def test_heard_of_cuts_at_a_word() -> None:
    seg = Segment(np.ones(1000, np.int16), 1, "alpha beta gamma delta")
    assert heard_of(seg) == ""
    seg.played = 500
    assert heard_of(seg) == "alpha beta…"
    seg.played = 1000
    assert heard_of(seg) == "alpha beta gamma delta"


# --- barge-in decisions ------------------------------------------------------------------------


class FakeSpeaker:
    available = True
    reason = ""
    name = "fake"

    def __init__(self) -> None:
        self.on_started: Any = None
        self.on_spoken: Any = None
        self.said: list[tuple[int, str]] = []
        self.finished: list[int] = []
        self.stops = 0
        self.playing = False

    def say(self, tag: int, text: str) -> None:
        self.said.append((tag, text))
        self.playing = True

    def finish(self, tag: int) -> None:
        self.finished.append(tag)

    def stop(self) -> float | None:
        self.stops += 1
        was, self.playing = self.playing, False
        return 0.001 if was else None

    @property
    def speaking(self) -> bool:
        return self.playing

    def close(self) -> None:
        pass


def _control(**cfg: Any) -> tuple[VoiceControl, FakeSpeaker, list[object], list[int]]:
    speaker, emitted, stopped = FakeSpeaker(), [], []
    control = VoiceControl(speaker, emitted.append, lambda: stopped.append(1) or True,
                           AssistantConfig(**cfg))
    return control, speaker, emitted, stopped


@pytest.mark.parametrize("mode, spoken, said", [
    ("spoken", True, True), ("spoken", False, False), ("always", False, True),
    ("never", True, False)])
def test_which_answers_are_said(mode: str, spoken: bool, said: bool) -> None:
    control, speaker, _, _ = _control(speak=mode)
    for event in (AnswerStarted(1, "q", spoken), AnswerSentence(1, "Yes."),
                  AnswerFinished(1, None)):
        control.on_event(event)
    assert (speaker.said == [(1, "Yes.")]) is said
    assert (speaker.finished == [1]) is said


def test_speech_over_an_answer_stops_it_and_idle_speech_does_not() -> None:
    control, speaker, emitted, stopped = _control()
    control.on_event(SpeechStarted(1.0))  # nothing being answered: an ordinary utterance
    assert not stopped and not any(isinstance(e, BargeIn) for e in emitted)
    control.on_event(AnswerStarted(3, "q", True))
    control.on_event(AnswerSentence(3, "It was in the drawer."))
    control.on_event(SpeechStarted(2.0, confidence=0.9))
    assert stopped == [1] and speaker.stops == 1
    assert [e for e in emitted if isinstance(e, BargeIn)] == [BargeIn(3, 2.0)]
    assert control.barge_ins == 1
    control.heard_live = False  # a recording replayed: its speech is nobody talking over it
    control.on_event(AnswerStarted(4, "q", True))
    control.on_event(AnswerSentence(4, "It was in the drawer."))
    control.on_event(SpeechStarted(3.0))
    assert control.barge_ins == 1 and stopped == [1]


def test_while_speaking_an_unsure_start_is_not_a_barge_in() -> None:
    control, speaker, emitted, stopped = _control(barge_in_confidence=0.8)
    control.on_event(AnswerStarted(4, "q", True))
    control.on_event(AnswerSentence(4, "Said."))
    control.on_event(SpeechStarted(1.0, confidence=0.55))
    assert not stopped and control.ignored_starts == 1 and speaker.stops == 0
    assert not any(isinstance(e, BargeIn) for e in emitted)
    control, speaker, emitted, stopped = _control()
    control.echo_settled = lambda: False  # the echo canceller has not learnt the room yet
    control.on_event(AnswerStarted(6, "q", True))
    control.on_event(AnswerSentence(6, "Said."))
    control.on_event(SpeechStarted(1.0, confidence=0.99))
    assert not stopped and speaker.stops == 0
    control.echo_settled = lambda: True
    control.on_event(SpeechStarted(2.0, confidence=0.99))
    assert stopped == [1]
    control, _speaker, _emitted, stopped = _control(barge_in=False)
    control.on_event(AnswerStarted(5, "q", True))
    control.on_event(AnswerSentence(5, "Said."))
    control.on_event(SpeechStarted(1.0))
    assert not stopped


def test_the_spoken_report_becomes_an_event() -> None:
    _, speaker, emitted, _ = _control()
    speaker.on_spoken(9, "Half…", True, 0.002)
    assert emitted == [AnswerSpoken(9, "Half…", True, 0.002)]


# --- the real voice, and no voice ---------------------------------------------------------------


def test_the_system_voice_is_heard_back_by_the_recogniser() -> None:
    from app.perception.asr_moonshine import MoonshineTranscriber
    from app.speech.tts import Pyttsx3Voice

    result: dict[str, Any] = {}

    def render() -> None:  # in a thread of its own, as the speaker does
        voice = Pyttsx3Voice(rate_wpm=160)
        try:
            result["pcm"] = voice.render("The plumber is coming on Thursday morning.")
            result["empty"] = voice.render("  ")
            result["name"] = voice.name
        finally:
            voice.close()

    t = threading.Thread(target=render)
    t.start()
    t.join(30)
    pcm = result["pcm"]
    assert pcm.dtype == np.int16 and 1.5 < len(pcm) / RATE_HZ < 5
    assert len(result["empty"]) == 0
    assert result["name"].startswith("pyttsx3")
    heard = MoonshineTranscriber().transcribe(pcm, RATE_HZ)
    assert mediagen.word_errors("the plumber is coming on thursday morning", heard) <= 1, heard


def test_without_a_speaker_answers_are_text_only_and_say_why(monkeypatch: Any) -> None:
    from app.core.errors import InputError
    from app.speech import factory

    off = factory.make_speaker(AssistantConfig(output=""), None)
    assert isinstance(off, TextOnly) and "no speaker" in off.reason

    def no_device(*_a: Any, **_k: Any) -> Any:
        raise InputError("no speaker 'default' is available (Error querying device -1)")

    monkeypatch.setattr(factory, "AudioOutput", no_device)
    none = factory.make_speaker(Config().assistant, None)
    assert isinstance(none, TextOnly) and not none.available
    assert "no speaker 'default'" in none.reason
    assert none.stop() is None and not none.speaking


def test_the_first_sentence_plays_while_the_rest_is_still_being_written() -> None:
    """Through the controller and the speaker: the answer's first sentence is heard before its
    second exists (the model is still generating)."""
    from app.core.events import SpeakingStarted

    out, emitted = FakeOutput(), []
    speaker = VoiceSpeaker(lambda: FakeVoice(), out)  # type: ignore[arg-type]
    control = VoiceControl(speaker, emitted.append, lambda: True, AssistantConfig())
    try:
        control.on_event(AnswerStarted(1, "where are my keys", True))
        control.on_event(AnswerSentence(1, "They are in the kitchen drawer."))
        _wait(lambda: any(isinstance(e, SpeakingStarted) for e in emitted))
        assert not any(isinstance(e, AnswerSpoken) for e in emitted)  # still speaking
        control.on_event(AnswerSentence(1, "You put them there at nine."))
        control.on_event(AnswerFinished(1, None))
        _wait(lambda: any(isinstance(e, AnswerSpoken) for e in emitted))
        spoken = next(e for e in emitted if isinstance(e, AnswerSpoken))
        assert spoken.said == "They are in the kitchen drawer. You put them there at nine."
        assert not spoken.interrupted
    finally:
        speaker.close()


def test_after_a_stop_barge_in_waits_until_the_echo_is_found_again() -> None:
    """A stop drops what the device held, so the echo moves against the reference by an amount
    only estimated: AEC3 starts afresh and the canceller counts as settled again once RELEARN_S
    of Daybook's voice has gone through it. The pairing is taken from the earliest of the first
    PAIR_BLOCKS times (a late first block does not set it)."""
    from app.speech.echo import LEARN_S, RELEARN_S, SETTLE_S

    far = FarEnd()
    aec = EchoCanceller(far)
    voice = (np.sin(np.arange(480) / 3.0) * 3000).astype(np.int16)
    t = 100.0
    blocks = 0

    def step(sound: bool) -> None:  # the first microphone block's time is 20 ms later
        nonlocal t, blocks
        t += 0.03
        far.write(voice if sound else np.zeros(480, np.int16), t_s=t)
        aec.process(np.zeros(480, np.int16), t - (0.02 if blocks else 0.0))
        blocks += 1

    step(False)
    first = aec._offset
    for _ in range(EchoCanceller.PAIR_BLOCKS - 1):
        step(False)
    assert aec._offset == first - 320  # the earliest estimate: 20 ms less than the late one
    n_learn = int(LEARN_S / 0.03) + 1
    for _ in range(n_learn):
        step(True)
    assert aec.settled
    far.unsent(480, t_s=t)  # a barge-in: the device dropped a block
    assert not aec.settled
    for _ in range(int(SETTLE_S / 0.03) + 1):
        step(False)
    assert not aec.settled  # no voice since the stop
    for _ in range(int(RELEARN_S / 0.03) - 1):
        step(True)
    assert not aec.settled
    for _ in range(2):
        step(True)
    assert aec.settled
