"""The real microphone path: PortAudio recording from a private PulseAudio daemon.

The daemon's default source is a FIFO (see tests/pulse.py), so espeak-ng speech written into it
reaches `SoundDeviceSource("default")` exactly as a microphone would: through libpulse, the ALSA
pulse plugin and PortAudio's callback thread, at real-time pace.
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
from app.core.events import (
    SourceFailed,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
    WorkerFailed,
)
from app.memory.fakes import InMemoryStore
from app.memory.keyframes import KeyFrameDir
from app.pipeline.factory import build_pipeline
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
def test_pipeline_on_a_real_microphone(pulse_server: pulse.PulseServer, tmp_path: Path) -> None:
    speech = [mediagen.speak(text) for text in SENTENCES]
    events: list[tuple[float, Any]] = []
    got_two = threading.Event()

    def listen(event: Any) -> None:
        events.append((time.monotonic(), event))
        if sum(isinstance(e, UtteranceTranscribed) for _, e in events) >= 2:
            got_two.set()

    source = SoundDeviceSource("default")
    pipeline = build_pipeline(
        Config(), store=InMemoryStore(), key_frames=KeyFrameDir(tmp_path / "frames"), audio=source
    )
    assert pipeline.backends["asr"].startswith("moonshine"), pipeline.backends
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
    for utt, seg in zip(utterances, ended, strict=True):
        assert utt.text.strip(), utt
        assert (utt.t0_s, utt.t1_s) == (seg.t0_s, seg.t1_s)
        assert utt.backend.startswith("moonshine")

    assert pipeline.memory.stored == {"utterance": 2, "clip": 0}
    assert pipeline.memory.store.count() == {"utterance": 2, "clip": 0}
    assert source.dropped_chunks == 0
    counters = pipeline.counters()
    assert all(v == 0 for k, v in counters.items() if k.endswith((".dropped", ".errors"))), counters


@needs_pulse
@pytest.mark.parametrize("how", ["unplugged", "server crashed"])
def test_microphone_lost_while_recording(tmp_path: Path, how: str) -> None:
    """The microphone goes away mid-recording: the source fails loudly (SourceFailed), what was
    already heard is still stored, and the pipeline ends on its own instead of waiting forever
    for audio that will never come.

    Unplugged: PulseAudio kills the recording stream, PortAudio just stops calling back (its
    stream stays "active"). Server crashed: PortAudio ends the stream with an error."""
    speech = mediagen.speak("remember to water the plants")
    events: list[Any] = []
    heard = threading.Event()

    def listen(event: Any) -> None:
        events.append(event)
        if isinstance(event, UtteranceTranscribed):
            heard.set()

    # shm off when the daemon is killed: see PulseServer (a libpulse deadlock, not Daybook's).
    with _private_pulse(shm=how == "unplugged") as server:
        source = SoundDeviceSource("default", stall_timeout_s=1.5)
        pipeline = build_pipeline(
            Config(), store=InMemoryStore(), key_frames=KeyFrameDir(tmp_path / "frames"),
            audio=source,
        )
        pipeline.bus.subscribe(listen)
        pipeline.start()
        try:
            for pcm in (_silence(0.5), speech, _silence(0.8)):
                server.feed(pcm)
            assert heard.wait(timeout=len(speech) / RATE + 8), events
            lost_at = time.monotonic()
            if how == "unplugged":
                server.unplug()
            else:
                server.kill()
            ended = pipeline.wait(timeout_s=10)
            noticed_s = time.monotonic() - lost_at
        finally:
            drained = pipeline.stop(drain_timeout_s=10)
    assert ended, "the pipeline kept waiting for a microphone that is gone"
    assert drained
    assert noticed_s < 4.0, noticed_s  # the 1.5 s stall timeout, then the drain
    failed = [e for e in events if isinstance(e, SourceFailed)]
    assert len(failed) == 1, events
    assert failed[0].source == source.name
    assert "stopped delivering audio" in failed[0].message, failed[0].message
    assert pipeline.memory.stored == {"utterance": 1, "clip": 0}


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
