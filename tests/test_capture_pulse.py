"""The real microphone path: PortAudio recording from a private PulseAudio daemon.

The daemon's default source is a FIFO (see tests/pulse.py), so speech written into it (espeak-ng
voices, and Piper's natural one) reaches `SoundDeviceSource("default")` exactly as a microphone
would: through libpulse, the ALSA pulse plugin and PortAudio's callback thread, at real-time pace.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.capture.audio_device import SoundDeviceSource, list_input_devices
from app.core.config import Config
from app.core.errors import InputError
from app.core.events import (
    AudioCaptured,
    SourceEnded,
    SourceFailed,
    SourceLost,
    SourceRecovered,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
    WorkerFailed,
)
from app.memory.fakes import InMemoryStore
from app.memory.keyframes import KeyFrameDir
from app.pipeline.factory import build_pipeline
from app.pipeline.runtime import EventBus, Inbox
from app.pipeline.workers import CaptureThread
from tests import mediagen, pulse

ROOT = Path(__file__).resolve().parent.parent
RATE = pulse.RATE_HZ

pytestmark = [pytest.mark.pulse, pytest.mark.slow]
needs_pulse = pytest.mark.skipif(not pulse.available(), reason=pulse.SKIP_REASON)

SENTENCES = (
    "the quarterly budget meeting moved to thursday afternoon",
    "please remember to buy milk and fresh bread",
)
LEAD_S, GAP_S, TAIL_S = 1.0, 1.5, 1.2


@contextlib.contextmanager
def _private_pulse(**kw: Any) -> Iterator[pulse.PulseServer]:
    # A short directory of its own: the daemon's unix socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="daybook-pulse-") as d, \
            pulse.PulseServer(Path(d), **kw) as server:
        yield server


@pytest.fixture
def pulse_server() -> Iterator[pulse.PulseServer]:
    with _private_pulse() as server:
        yield server


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def _onset_s(pcm: np.ndarray, threshold: int = 300) -> float:
    """Where espeak's speech starts inside its clip (it has some leading silence)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return float(loud[0]) / RATE if len(loud) else 0.0


@needs_pulse
def test_lists_the_pulse_microphone(pulse_server: pulse.PulseServer) -> None:
    devices = list_input_devices()
    names = [d["name"] for d in devices]
    assert "pulse" in names, names  # the ALSA pulse plugin's device
    assert "default" in names, names  # ALSA's default, routed to PulseAudio's default source
    for d in devices:
        assert d["max_input_channels"] > 0
    source = SoundDeviceSource("default")
    try:
        assert source.device_name == "default"
    finally:
        source.close()


@needs_pulse
@pytest.mark.parametrize("asr", ["default", "tiny whisper installed"])
def test_pipeline_on_a_real_microphone(pulse_server: pulse.PulseServer, tmp_path: Path,
                                       asr: str) -> None:
    """The default path (Silero VAD, Moonshine from its wheel: nothing downloaded), and the same
    with a whisper.cpp model installed, which then wins: a generated tiny one (random weights,
    so its words are not checked; the times and the path are)."""
    speech = [mediagen.speak(text) for text in SENTENCES]
    models = None
    if asr != "default":
        from app.models.catalog import load_catalog
        from app.models.manager import ModelManager
        from tests import tinymodels

        models = ModelManager(tmp_path / "models", load_catalog())
        models.import_file(tinymodels.make_tiny_whisper_ggml(tmp_path / "tiny.bin"), "asr")
    events: list[tuple[float, Any]] = []
    got_two = threading.Event()

    def listen(event: Any) -> None:
        events.append((time.monotonic(), event))
        if sum(isinstance(e, UtteranceTranscribed) for _, e in events) >= 2:
            got_two.set()

    source = SoundDeviceSource("default")
    pipeline = build_pipeline(
        Config(), store=InMemoryStore(), key_frames=KeyFrameDir(tmp_path / "frames"), audio=source,
        models=models,
    )
    backend = "moonshine" if asr == "default" else "whisper.cpp"
    assert pipeline.backends["asr"].startswith(backend), pipeline.backends
    pipeline.bus.subscribe(listen)
    pipeline.start()
    try:
        fed_at_s = time.time()
        for pcm in (_silence(LEAD_S), speech[0], _silence(GAP_S), speech[1], _silence(TAIL_S)):
            pulse_server.feed(pcm)
        fed_s = pulse_server.samples_fed / RATE
        pulse_server.wait_played(timeout_s=fed_s + 5)
        got_two.wait(timeout=10)
    finally:
        # The feeder keeps writing silence until the server closes, so the stream stops cleanly.
        drained = pipeline.stop(drain_timeout_s=15)
    assert drained, "the pipeline did not drain"

    kinds = [e for _, e in events]
    failures = [e for e in kinds if isinstance(e, SourceFailed | WorkerFailed)]
    assert not failures, failures
    speech_events = [e for e in kinds if isinstance(e, SpeechStarted | SpeechEnded)]
    assert [type(e) for e in speech_events] == [SpeechStarted, SpeechEnded] * 2, speech_events
    started = [e for e in speech_events if isinstance(e, SpeechStarted)]
    ended = [e for e in speech_events if isinstance(e, SpeechEnded)]

    for seg, pcm in zip(ended, speech, strict=True):
        spoken_s = len(pcm) / RATE
        assert abs((seg.t1_s - seg.t0_s) - spoken_s) < 0.6, (seg.t1_s - seg.t0_s, spoken_s)
        assert seg.t0_s <= seg.t1_s

    # Chunk times are wall-clock: the first word is heard about when it was fed.
    expected_s = fed_at_s + LEAD_S + _onset_s(speech[0])
    assert abs(started[0].t0_s - expected_s) < 0.35, started[0].t0_s - expected_s

    # Start to start, as fed: the first sentence, the gap, and the espeak lead-in difference.
    fed_gap_s = len(speech[0]) / RATE + GAP_S + _onset_s(speech[1]) - _onset_s(speech[0])
    measured_gap_s = started[1].t0_s - started[0].t0_s
    assert abs(measured_gap_s - fed_gap_s) < 0.4, (measured_gap_s, fed_gap_s)
    assert ended[0].t1_s < started[1].t0_s < ended[1].t1_s

    utterances = [e for e in kinds if isinstance(e, UtteranceTranscribed)]
    assert len(utterances) == 2, utterances
    for utt, seg, said in zip(utterances, ended, SENTENCES, strict=True):
        if asr == "default":
            assert mediagen.word_errors(said, utt.text) <= 1, (said, utt.text)
        assert (utt.t0_s, utt.t1_s) == (seg.t0_s, seg.t1_s)
        assert utt.backend.startswith(backend)

    assert pipeline.memory.stored == {"utterance": 2, "clip": 0}
    assert pipeline.memory.store.count() == {"utterance": 2, "clip": 0, "summary": 0}
    assert source.dropped_chunks == 0
    counters = pipeline.counters()
    assert all(v == 0 for k, v in counters.items() if k.endswith((".dropped", ".errors"))), counters


# One sentence a line, by three voices: the natural neural one (Piper) and two espeak-ng accents.
# Each was heard word for word by Moonshine with 5 noise seeds of 5 (room noise 30 and 300, the
# recogniser alone), and so was the whole set with seeds 0-5 through this microphone test.
VOICE_LINES = (
    (mediagen.PIPER, "The plumber is coming on Thursday morning."),
    ("en-gb", "The quarterly budget meeting moved to Thursday afternoon."),
    ("en-gb-x-rp", "Call the dentist about Monday."),
    (mediagen.PIPER, "My sister moved to a new flat last week."),
)
VOICES_GAP_S = 1.5
VOICES_SEED = 0


def _hear_voices(tmp_path: Path, seed: int = VOICES_SEED
                 ) -> list[tuple[str, str, float, float, UtteranceTranscribed | None]]:
    """VOICE_LINES over seeded room noise, fed at real pace into the PulseAudio microphone of a
    default pipeline; for each line: its voice, text, and when its speech started and ended
    (wall clock, from where it was placed in what was fed), with what the pipeline heard then
    (UtteranceTranscribed, or None)."""
    clips = [mediagen.speak(text, voice=voice) for voice, text in VOICE_LINES]
    lines: list[tuple[float, str, str]] = []
    at_s = LEAD_S
    for (voice, text), pcm in zip(VOICE_LINES, clips, strict=True):
        lines.append((at_s, text, voice))
        at_s += len(pcm) / RATE + VOICES_GAP_S
    track = mediagen.conversation(lines, at_s - VOICES_GAP_S + TAIL_S, seed=seed)

    rec = _Recorder()
    with _private_pulse() as server:
        source = SoundDeviceSource("default")
        pipeline = build_pipeline(
            Config(), store=InMemoryStore(), key_frames=KeyFrameDir(tmp_path / "frames"),
            audio=source,
        )
        assert pipeline.backends["asr"].startswith("moonshine"), pipeline.backends
        pipeline.bus.subscribe(rec)
        pipeline.start()
        try:
            assert pipeline.wait_started(timeout_s=15)
            # Fed once the microphone delivers, so that all of it reaches the pipeline.
            _wait_until(lambda: pipeline.captures[0].items > 10, 10, "the microphone delivers")
            fed_at_s = time.time()
            server.feed(track)
            server.wait_played(timeout_s=len(track) / RATE + 5)
            _wait_until(lambda: len(rec.of(UtteranceTranscribed)) >= len(VOICE_LINES), 30,
                        "a transcript of every line")
        finally:
            drained = pipeline.stop(drain_timeout_s=15)
    assert drained, "the pipeline did not drain"
    assert not rec.of((SourceFailed, WorkerFailed)), rec.events
    assert source.dropped_chunks == 0

    heard = rec.of(UtteranceTranscribed)
    assert len(heard) == len(VOICE_LINES), [(u.t0_s - fed_at_s, u.text) for u in heard]
    out: list[tuple[str, str, float, float, UtteranceTranscribed | None]] = []
    for (at, text, voice), pcm in zip(lines, clips, strict=True):
        on_s, off_s = mediagen.speech_span_s(pcm)
        t0_s, t1_s = fed_at_s + at + on_s, fed_at_s + at + off_s
        # The transcript of this line: the one whose span overlaps the line's speech most.
        overlaps = [(min(u.t1_s, t1_s) - max(u.t0_s, t0_s), u) for u in heard]
        overlap_s, best = max(overlaps, key=lambda o: o[0])
        out.append((voice, text, t0_s, t1_s, best if overlap_s > 0 else None))
    return out


@needs_pulse
def test_several_voices_heard_on_a_real_microphone(tmp_path: Path) -> None:
    """A natural neural voice (Piper) and two espeak-ng accents, fed at real pace through the
    PulseAudio microphone to the default, zero-download pipeline (Silero VAD, Moonshine): each
    sentence is one transcript, with its words (at most one wrong), at the time it was said."""
    preroll_s = Config().vad.preroll_ms / 1000
    for voice, text, t0_s, t1_s, utt in _hear_voices(tmp_path):
        assert utt is not None, f"{voice}: nothing heard for {text!r}"
        errors = mediagen.word_errors(text, utt.text)
        assert errors <= 1, (f"{voice}: {errors} words wrong (at most 1 a sentence): said {text!r}, "
                             f"heard {utt.text!r}")
        # The transcript starts with the VAD's pre-roll before the first word, and ends where
        # the last voiced frame ends; wall-clock times, from where the line was in the feed.
        assert abs(utt.t0_s - (t0_s - preroll_s)) < 0.35, (voice, utt.t0_s - t0_s)
        assert abs(utt.t1_s - t1_s) < 0.5, (voice, utt.t1_s - t1_s)
        assert utt.backend.startswith("moonshine"), utt.backend


class _Recorder:
    """Bus listener: every event with its monotonic time; `wait_for` blocks until one of a
    type has arrived (after `since`, an index into `events`)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> None:
        if isinstance(event, AudioCaptured):
            return
        with self._cond:
            self.events.append((time.monotonic(), event))
            self._cond.notify_all()

    def of(self, kind: type | tuple[type, ...], since: int = 0) -> list[Any]:
        with self._cond:
            return [e for _, e in self.events[since:] if isinstance(e, kind)]

    def wait_for(self, kind: type, timeout_s: float, since: int = 0) -> Any:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not (found := [e for _, e in self.events[since:] if isinstance(e, kind)]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind.__name__} within {timeout_s} s: "
                                         f"{[e for _, e in self.events]}")
                self._cond.wait(left)
            return found[0]

    def index(self) -> int:
        with self._cond:
            return len(self.events)


def _listening(tmp_path: Path, source: Any, rec: _Recorder) -> tuple[Any, Any]:
    """The default pipeline on `source`, its events recorded; and its audio capture."""
    pipeline = build_pipeline(
        Config(), store=InMemoryStore(), key_frames=KeyFrameDir(tmp_path / "frames"),
        audio=source,
    )
    pipeline.bus.subscribe(rec)
    return pipeline, pipeline.captures[0]


def _wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.02)


class _FlakyMic:
    """A live source that can be reopened. `sessions`: for each opening, how many chunks it
    delivers before its device is lost (None: until stopped); `failing_tries`: how many
    `reopen` calls fail before one succeeds."""

    name = "microphone flaky"
    duration_s = None

    def __init__(self, sessions: list[int | None], failing_tries: int = 0,
                 live: bool = True) -> None:
        self.live = live
        self.sessions = list(sessions)
        self.failing_tries = failing_tries
        self.reconnects = 0  # as SoundDeviceSource counts them: delivering again
        self.reopened_at: list[float] = []
        self._reopened = False
        self.closed = 0

    def chunks(self, stop: threading.Event) -> Iterator[AudioCaptured]:
        n = self.sessions.pop(0)
        start_s = time.time()
        i = 0
        while not stop.is_set() and (n is None or i < n):
            if self._reopened:
                self._reopened = False
                self.reconnects += 1
            yield AudioCaptured(pcm=np.zeros(480, dtype=np.int16), t0_s=start_s + i * 0.03,
                                sample_rate_hz=RATE)
            i += 1
            time.sleep(0.005)
        if not stop.is_set():
            raise InputError("microphone 'flaky' stopped delivering audio (unplugged)")

    def reopen(self) -> None:
        self.reopened_at.append(time.monotonic())
        if self.failing_tries > 0:
            self.failing_tries -= 1
            raise InputError("no microphone 'flaky' is available")
        self._reopened = True

    def close(self) -> None:
        self.closed += 1


def _capture(source: Any, delays_s: tuple[float, ...] = (0.05, 0.1, 0.2)
             ) -> tuple[CaptureThread, _Recorder, Inbox[Any], threading.Event]:
    bus, rec, inbox, stop = EventBus(), _Recorder(), Inbox[Any]("vad", 10_000), threading.Event()
    bus.subscribe(rec)
    capture = CaptureThread("capture-audio", source, inbox, bus, stop, threading.Event())
    capture.retry_delays_s = delays_s
    capture.start()
    return capture, rec, inbox, stop


def test_a_lost_live_source_is_opened_again_with_back_off() -> None:
    mic = _FlakyMic([5, 0, 3, None], failing_tries=2)
    capture, rec, _inbox, stop = _capture(mic, delays_s=(0.1, 0.4, 0.8))
    rec.wait_for(SourceRecovered, timeout_s=10)
    _wait_until(lambda: capture.items >= 11, 10, "chunks after the recovery")
    stop.set()
    capture.join(5)
    assert not capture.is_alive()
    kinds = [type(e) for e in rec.of((SourceLost, SourceRecovered, SourceFailed, SourceEnded))]
    # An opening that is lost again before it delivers anything (0 chunks) is still the same
    # lost spell; one that delivered (3 chunks) was a recovery, and its loss a new spell.
    assert kinds == [SourceLost, SourceRecovered, SourceLost, SourceRecovered, SourceEnded], kinds
    assert rec.of(SourceLost)[0].message == "microphone 'flaky' stopped delivering audio " \
        "(unplugged)"
    assert capture.lost is None and not capture.failed
    assert mic.reconnects == 2  # opened 3 times: 0 chunks, 3 chunks, until stopped
    # The first spell: 2 failing tries, 1 that opened but delivered nothing, 1 that delivered,
    # after 0.1, 0.4, 0.8 and 0.8 s (the last delay repeats); the next spell starts again at
    # 0.1 s. (Lower bounds: a loaded machine only makes the waits longer.)
    gaps = [b - a for a, b in zip(mic.reopened_at, mic.reopened_at[1:], strict=False)]
    assert len(gaps) == 4, gaps
    assert 0.4 <= gaps[0] < 0.75 and gaps[1] >= 0.8 and gaps[2] >= 0.8, gaps
    assert gaps[3] < 0.4, gaps


def test_stopping_while_the_device_is_away_is_prompt() -> None:
    mic = _FlakyMic([2], failing_tries=10**6)
    capture, rec, _inbox, stop = _capture(mic, delays_s=(0.05, 5.0))
    rec.wait_for(SourceLost, timeout_s=10)
    _wait_until(lambda: mic.reopened_at, 10, "a first try")  # it failed: now waiting 5 s
    stopped_at = time.monotonic()
    stop.set()
    capture.join(5)
    assert time.monotonic() - stopped_at < 1.0
    assert not capture.is_alive() and not capture.failed
    assert [type(e) for e in rec.of((SourceLost, SourceRecovered, SourceFailed, SourceEnded))
            ] == [SourceLost, SourceEnded]
    assert mic.reconnects == 0 and mic.closed >= 1


@pytest.mark.parametrize("why", ["replayed", "not an input error"])
def test_what_is_never_retried(why: str) -> None:
    """A replayed file is never retried (it failed: it does not come back); neither is a live
    source that raised something else than InputError (a bug, not a lost device)."""
    mic = _FlakyMic([3, None], live=why != "replayed")
    if why == "not an input error":
        def broken(stop: threading.Event) -> Iterator[AudioCaptured]:
            raise RuntimeError("resampler bug")
            yield  # pragma: no cover
        mic.chunks = broken  # type: ignore[method-assign]
    capture, rec, _inbox, _stop = _capture(mic)
    capture.join(5)
    assert not capture.is_alive()
    assert mic.reopened_at == []
    assert [type(e) for e in rec.of((SourceLost, SourceRecovered, SourceFailed, SourceEnded))
            ] == [SourceFailed, SourceEnded]
    assert capture.failed


@needs_pulse
@pytest.mark.parametrize("how", ["unplugged", "server restarted"])
def test_microphone_comes_back(tmp_path: Path, how: str) -> None:
    """The microphone goes away mid-recording and comes back: SourceLost, the capture goes on
    trying to open it again (no restart), SourceRecovered once it delivers again, and speech
    after that is heard, with wall-clock times (the time it was away is simply missing).

    Unplugged: the pipe source is unloaded and loaded again (same name, the default again).
    Server restarted: the daemon is killed and started again on the same socket. Either way
    PortAudio has to be re-initialised to find "default" again, which the source does itself.
    There is no sink (so no monitor source "default" could fall back to meanwhile)."""
    speech = mediagen.speak(SENTENCES[1])
    rec = _Recorder()
    # shm off when the daemon is killed: see PulseServer (a libpulse deadlock, not Daybook's).
    with _private_pulse(sink=False, shm=how == "unplugged") as server:
        source = SoundDeviceSource("default", stall_timeout_s=1.5)
        pipeline, capture = _listening(tmp_path, source, rec)
        pipeline.start()
        try:
            assert pipeline.wait_started(timeout_s=15)
            _wait_until(lambda: capture.items > 10, 10, "the microphone delivers")
            if how == "unplugged":
                server.unplug()
            else:
                server.kill()
            lost = rec.wait_for(SourceLost, timeout_s=10)
            # It keeps trying while the device is away: two tries, so the first one failed.
            _wait_until(lambda: capture.tries >= 2, 10, "a second try to open it again")
            assert capture.is_alive() and capture.lost and not capture.failed
            assert source.reconnects == 0
            before = rec.index()
            if how == "unplugged":
                server.plug()
            else:
                server.restart()
            rec.wait_for(SourceRecovered, timeout_s=15, since=before)
            after = rec.index()
            fed_at_s = time.time()
            for pcm in (_silence(LEAD_S), speech, _silence(TAIL_S)):
                server.feed(pcm)
            heard = rec.wait_for(UtteranceTranscribed, since=after,
                                 timeout_s=len(speech) / RATE + LEAD_S + TAIL_S + 20)
        finally:
            stop_at = time.monotonic()
            pipeline.stop_event.set()
            capture.join(5)
            capture_stop_s = time.monotonic() - stop_at
            drained = pipeline.stop(drain_timeout_s=15)
    assert drained
    assert capture_stop_s < 1.0, capture_stop_s
    assert lost.source == source.name
    assert "stopped delivering audio" in lost.message, lost.message
    assert not rec.of((SourceFailed, WorkerFailed)), rec.events
    assert [type(e) for e in rec.of((SourceLost, SourceRecovered))] == [
        SourceLost, SourceRecovered]
    assert capture.lost is None and capture.tries == 0
    assert source.reconnects == 1
    assert pipeline.counters()["capture-audio.reconnects"] == 1

    # Speech after the recovery is heard, at the wall-clock time it was spoken.
    started = rec.of(SpeechStarted, since=after)
    ended = rec.of(SpeechEnded, since=after)
    assert len(started) == len(ended) == 1, rec.events[after:]
    expected_s = fed_at_s + LEAD_S + _onset_s(speech)
    assert abs(started[0].t0_s - expected_s) < 0.35, started[0].t0_s - expected_s
    assert abs((ended[0].t1_s - ended[0].t0_s) - len(speech) / RATE) < 0.6
    assert heard.text.strip(), heard
    assert (heard.t0_s, heard.t1_s) == (ended[0].t0_s, ended[0].t1_s)
    assert pipeline.memory.stored == {"utterance": 1, "clip": 0}


@needs_pulse
@pytest.mark.parametrize("how", ["unplugged", "server crashed"])
def test_microphone_lost_while_recording(tmp_path: Path, how: str) -> None:
    """The microphone goes away mid-recording and does not come back: SourceLost (never
    SourceFailed), what was already heard is stored, the capture keeps trying without ending the
    pipeline, and stopping is still prompt.

    Unplugged, with no other source to move its recording to: PulseAudio kills the recording
    stream and PortAudio just stops calling back (its stream stays "active"), so the stall
    timeout tells. (With another source there, PulseAudio moves the recording to it instead:
    `test_an_unplugged_microphone_is_followed_to_the_new_default_source`.) Server crashed:
    PortAudio ends the stream with an error. Either way every try fails until the pipeline
    stops."""
    speech = mediagen.speak("remember to water the plants")
    rec = _Recorder()

    with _private_pulse(sink=False, shm=how == "unplugged") as server:
        source = SoundDeviceSource("default", stall_timeout_s=1.5)
        pipeline, capture = _listening(tmp_path, source, rec)
        pipeline.start()
        try:
            _wait_until(lambda: capture.position_s > 0, 10, "the microphone delivering")
            fed_until_s = capture.position_s
            for pcm in (_silence(0.5), speech, _silence(0.8)):
                server.feed(pcm)
                fed_until_s += len(pcm) / RATE
            rec.wait_for(UtteranceTranscribed, timeout_s=len(speech) / RATE + 15)
            # Gone once the microphone has delivered all that was fed (nothing is lost with it).
            _wait_until(lambda: capture.position_s >= fed_until_s, 15, "the fed audio delivered")
            lost_at = time.monotonic()
            if how == "unplugged":
                server.unplug()
            else:
                server.kill()
            rec.wait_for(SourceLost, timeout_s=10)
            noticed_s = time.monotonic() - lost_at
            # It keeps trying while the device is away: two tries, so the first one failed.
            _wait_until(lambda: capture.tries >= 2, 10, "a second try to open it again")
            assert capture.lost and source.reconnects == 0
            assert capture.is_alive() and not capture.failed
            assert not pipeline.wait(timeout_s=0.5), "the pipeline ended without its microphone"
        finally:
            stop_at = time.monotonic()
            pipeline.stop_event.set()
            capture.join(5)
            capture_stop_s = time.monotonic() - stop_at
            drained = pipeline.stop(drain_timeout_s=10)
    assert drained
    assert noticed_s < 4.0, noticed_s  # the 1.5 s stall timeout at most
    assert capture_stop_s < 1.0, capture_stop_s
    assert not rec.of(SourceFailed), rec.events
    lost = rec.of(SourceLost)
    assert len(lost) == 1, rec.events
    assert lost[0].source == source.name
    assert "stopped delivering audio" in lost[0].message, lost[0].message
    assert pipeline.memory.stored == {"utterance": 1, "clip": 0}
    assert pipeline.counters()["capture-audio.reconnects"] == 0


@needs_pulse
def test_an_unplugged_microphone_is_followed_to_the_new_default_source(tmp_path: Path) -> None:
    """A desktop has other sources: PulseAudio moves a recording whose source is unplugged to
    the new default source (here the speaker's monitor; ≈1.9 s without audio meanwhile). The
    microphone "default" (as the app opens it, with its own stall timeout) records on from it:
    speech played into the speaker afterwards is heard, and nothing failed. A hole that long is
    not a lost microphone at the app's stall timeout; had it been longer, the source would have
    been lost and opened again on the new default."""
    speech = mediagen.speak(SENTENCES[1])
    rec = _Recorder()
    with _private_pulse(shm=True) as server:
        source = SoundDeviceSource("default")
        pipeline, capture = _listening(tmp_path, source, rec)
        pipeline.start()
        try:
            _wait_until(lambda: capture.position_s > 0.5, 10, "the microphone delivering")
            server.unplug()
            assert "spk.monitor" in server.pactl("info")  # the new default source
            at = capture.position_s
            _wait_until(lambda: capture.position_s > at + 1.0, 15, "audio from the new default")
            before = rec.index()
            server.play(np.concatenate([_silence(LEAD_S), speech, _silence(TAIL_S)]))
            heard = rec.wait_for(UtteranceTranscribed, since=before,
                                 timeout_s=len(speech) / RATE + LEAD_S + TAIL_S + 20)
            assert capture.is_alive() and not capture.failed
        finally:
            drained = pipeline.stop(drain_timeout_s=15)
    assert drained
    assert not rec.of((SourceFailed, WorkerFailed)), rec.events
    errors = mediagen.word_errors(SENTENCES[1], heard.text)
    assert errors <= 1, (SENTENCES[1], heard.text)
    # Lost only if the hole outlasted the stall timeout, and then found again on the monitor.
    assert [type(e) for e in rec.of((SourceLost, SourceRecovered))] in ([], [SourceLost,
                                                                          SourceRecovered])


@needs_pulse
def test_record_says_when_the_microphone_is_lost_and_back(tmp_path: Path) -> None:
    """`main.py record`: one line on stderr when the microphone is lost, one when it is back;
    what is said after that is recorded; the tries in between print nothing (ALSA's and
    PortAudio's complaints about a device that cannot be opened are silenced)."""
    speech = mediagen.speak(SENTENCES[0])
    with _private_pulse(sink=False) as server:
        env = {**server.env, "DAYBOOK_CONFIG": str(tmp_path / "none.toml")}
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "record", "--camera", "", "--duration", "20",
             "--json", "--data-dir", str(tmp_path / "data")],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        said = threading.Condition()

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                with said:
                    lines.append(line)
                    said.notify_all()
            with said:
                lines.append("")  # the end
                said.notify_all()

        def wait_for(text: str, timeout_s: float) -> None:
            with said:
                ok = said.wait_for(lambda: any(text in x for x in lines) or "" in lines,
                                   timeout=timeout_s)
            assert ok and any(text in x for x in lines), (text, "".join(lines))

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            wait_for("recording from microphone", 120)
            server.unplug()
            wait_for("lost", 15)
            time.sleep(2.0)  # not a synchronisation: lets a try or two fail while it is away
            server.plug()
            wait_for("is back", 20)
            server.feed(np.concatenate([_silence(LEAD_S), speech, _silence(TAIL_S)]))
            out, _ = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(5)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    lost = [x for x in lines if "lost" in x]
    back = [x for x in lines if "is back" in x]
    assert len(lost) == 1 and len(back) == 1, err
    assert lost[0].startswith("daybook: microphone default lost: microphone 'default' stopped "
                              "delivering audio"), lost[0]
    assert lost[0].rstrip().endswith("; retrying"), lost[0]
    assert back[0].strip() == "daybook: microphone default is back; recording again", back[0]
    assert "Unable to create stream" not in err, err  # the failed tries said nothing
    summary = json.loads(out)
    assert summary["utterances"] == 1, summary
    assert summary["sources_failed"] == 0 and not summary["errors"], summary
    assert summary["counters"]["capture-audio.reconnects"] == 1, summary


@needs_pulse
def test_a_long_gil_hold_is_not_a_lost_microphone(pulse_server: pulse.PulseServer) -> None:
    """pocketsphinx holds the GIL for a whole decode (seconds, on a loaded machine). That stalls
    the PortAudio callback as well, and must not be mistaken for a microphone that is gone; the
    audio recorded meanwhile is delivered afterwards, none of it lost."""
    source = SoundDeviceSource("default", stall_timeout_s=1.0)
    stop = threading.Event()
    got: list[Any] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            got.extend(source.chunks(stop))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    time.sleep(0.5)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(5.0)  # no other thread gets the GIL while this one spins
    try:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(switch)
    time.sleep(0.5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert not errors, errors
    recorded_s = sum(len(c.pcm) for c in got) / RATE
    assert recorded_s > 2.7, recorded_s  # ≈3 s ran; the stalled part came late, not lost
    assert source.dropped_chunks == 0


_NO_DEVICE_PROBE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from app.capture.audio_device import SoundDeviceSource, list_input_devices
    from app.core.errors import InputError

    result = {"devices": [d["name"] for d in list_input_devices()]}
    try:
        SoundDeviceSource("default").close()
        result["error"] = None
    except InputError as exc:
        result["error"] = str(exc)
    print(json.dumps(result))
""")


def _has_sound_cards() -> bool:
    try:
        text = Path("/proc/asound/cards").read_text()
    except OSError:
        return False
    return "no soundcards" not in text and bool(text.strip())


def test_no_microphone_is_an_input_error(tmp_path: Path) -> None:
    """No sound server and no sound card: a clear InputError, not a crash or a hang.

    In a fresh process, since PortAudio scans devices once, when it is initialised. (Hiding real
    cards with an empty ALSA_CONFIG_PATH is no way round that: PortAudio 19.6 then aborts in
    Pa_Initialize, "devIdx < numDeviceNames".)"""
    if _has_sound_cards():
        pytest.skip("this machine has ALSA sound cards, so PortAudio lists them")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PULSE_", "ALSA_", "PIPEWIRE_", "JACK_"))}
    # Every sound server ALSA's default device may route to is unreachable.
    env["PULSE_SERVER"] = f"unix:{tmp_path / 'no-such-server' / 'native'}"
    env["PIPEWIRE_REMOTE"] = str(tmp_path / "no-such-pipewire")
    env["JACK_NO_START_SERVER"] = "1"
    proc = subprocess.run([sys.executable, "-c", _NO_DEVICE_PROBE, str(ROOT)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"status {proc.returncode}: {proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == []
    assert result["error"] is not None, "SoundDeviceSource opened a device that should not exist"
    assert "no microphone" in result["error"]
    assert "'default'" in result["error"]
