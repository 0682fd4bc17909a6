"""The spoken half on real parts: a question said into the microphone is answered out loud,
and an answer is cut off when the user talks over it.

PulseAudio (tests/pulse.py) gives a FIFO microphone and a null-sink speaker whose monitor is
recorded; the service is the app's own with nothing downloaded (tests/voicerig.py). What the
speaker played is transcribed back with Daybook's own recogniser (Moonshine).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.core.events import (
    AnswerFinished,
    AnswerSpoken,
    BargeIn,
    SpeakingStarted,
    SpeechStarted,
    UtteranceTranscribed,
)
from tests import mediagen, pulse
from tests.voicerig import RATE, VoiceRig, silence, sound_spans

pytestmark = [pytest.mark.pulse, pytest.mark.slow,
              pytest.mark.skipif(not pulse.available(), reason=pulse.SKIP_REASON)]

FACT = "I left my passport in the kitchen drawer."
QUESTION = "Daybook, where is my passport?"
INTERRUPTION = "Stop, that is enough for now."


def _transcribe(pcm: np.ndarray) -> str:
    from app.perception.asr_moonshine import MoonshineTranscriber

    return MoonshineTranscriber().transcribe(pcm, RATE)


def _words(text: str) -> set[str]:
    return {w.strip(".,?!;:\"'").lower() for w in text.split()}


def test_a_spoken_question_is_answered_out_loud(tmp_path: Path) -> None:
    with VoiceRig(tmp_path) as rig:
        rig.feed(mediagen.speak(FACT), silence(1.5), mediagen.speak(QUESTION), silence(0.5))
        finished = rig.events.wait_for(AnswerFinished, 40)
        started = rig.events.wait_for(SpeakingStarted, 10)
        spoken = rig.events.wait_for(AnswerSpoken, 30)
        time.sleep(0.5)
        assert rig.sink is not None
        heard_back = _transcribe(rig.sink.between(started.t_s - 0.2, time.monotonic()))
        utterances = [e.text for e in rig.events.of(UtteranceTranscribed)]
    assert finished.answer.text and not finished.answer.interrupted, finished.answer
    assert "drawer" in finished.answer.text.lower(), finished.answer.text
    assert not spoken.interrupted and spoken.said, spoken
    # The fact came back out of the speaker, in words Daybook's own recogniser hears.
    assert {"passport", "kitchen", "drawer"} <= _words(heard_back), (heard_back, utterances)
    assert not rig.events.of(BargeIn)


def test_talking_over_an_answer_stops_it(tmp_path: Path) -> None:
    with VoiceRig(tmp_path, speak="always") as rig:
        rig.feed(mediagen.speak(FACT), silence(1.0))
        rig.events.wait_for(UtteranceTranscribed, 20)
        # One answer said in full first.
        mark = rig.events.index
        rig.service.ask("Where is my passport?")
        rig.events.wait_for(AnswerSpoken, 30, since=mark)
        time.sleep(0.5)
        mark = rig.events.index
        # A long answer: the fact and more, said sentence by sentence.
        rig.service.ask("What did I say about my passport and the kitchen?")
        started = rig.events.wait_for(SpeakingStarted, 20, since=mark)
        time.sleep(0.8)
        interruption = mediagen.speak(INTERRUPTION)
        rig.feed(interruption, silence(1.0))
        barge = rig.events.wait_for(BargeIn, 10, since=mark)
        spoken = rig.events.wait_for(AnswerSpoken, 5, since=mark)
        heard = rig.events.wait_for(UtteranceTranscribed, 20, since=mark)
        t_barge = next(t for t, e in rig.events.timed(BargeIn, mark))
        t_vad = next(t for t, e in rig.events.timed(SpeechStarted, mark))
        time.sleep(1.0)
        assert rig.sink is not None
        pcm, times = rig.sink.audio()
        last = rig.sink.last_sound_s(started.t_s)
        finished = rig.events.wait_for(AnswerFinished, 5, since=mark)
    assert spoken.interrupted and barge.question_id == spoken.question_id
    assert finished.answer.interrupted or finished.answer.text
    # What had been said is kept with it: a start of the answer, not all of it.
    full = finished.answer.text
    assert len(spoken.said) < len(full), (spoken.said, full)
    # The recorded speaker shows the cut: silent soon after the VAD heard the user.
    assert last is not None
    stop_delay_s = last - t_vad
    assert stop_delay_s < 0.15, f"silent {1000 * stop_delay_s:.0f} ms after the speech start"
    assert t_barge - t_vad < 0.1
    assert spoken.stop_delay_s is not None and spoken.stop_delay_s < 0.05
    # The user's speech became an utterance. Its words are not checked: they are not yet heard
    # whole when they start over Daybook's voice (known, open in issue 12; see README, Voice).
    assert heard.text and heard.t1_s - heard.t0_s > 0.5, heard
    spans = sound_spans(pcm, times)
    assert spans and spans[-1][1] <= last + 0.05
