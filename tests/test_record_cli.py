"""`main.py record` on a real PortAudio microphone (PulseAudio pipe source) and a "camera"
that is a video file replayed live; and with no devices at all."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from app.core.config import Config
from app.core.timefmt import parse_iso
from tests import mediagen, pulse
from tests.conftest import ROOT, Media, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.pulse,
              pytest.mark.skipif(not pulse.available(), reason="pulseaudio is not installed")]


def test_record_from_microphone_and_camera_file(media: Media, tmp_path: Path) -> None:
    # Speech over room noise, as a real microphone hears it (pocketsphinx does poorly on speech
    # cut out of digital silence).
    text, at_s = "remember to water the tomato plants", 0.5
    speech = mediagen.conversation([(at_s, text)], 4.0)
    on_s, off_s = mediagen.speech_span_s(mediagen.speak(text, voice="en-gb"))
    with tempfile.TemporaryDirectory(prefix="daybook-pulse-") as d, \
            pulse.PulseServer(Path(d)) as server:
        data_dir = tmp_path / "data"
        env = {**server.env, "DAYBOOK_CONFIG": str(Path(d) / "none.toml")}
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "record", "--camera", str(media.video),
             "--duration", "7", "--json", "--data-dir", str(data_dir)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        said = ""
        for _ in range(20):  # "recording" is said once the microphone really records
            said += proc.stderr.readline()
            if "recording from" in said or proc.poll() is not None:
                break
        assert "recording from microphone" in said, said
        fed_at_s = time.time()
        server.feed(speech)
        out, err = proc.communicate(timeout=60)
        err = said + err
    assert proc.returncode == 0, err
    import json

    summary = json.loads(out)
    assert summary["utterances"] == 1, err
    assert summary["clips"] >= 1
    assert summary["backends"]["audio"].startswith("microphone")
    assert summary["missing"] == []
    answer = run_cli("ask", "what should I water", "--json",
                     data_dir=data_dir).json()
    heard = run_cli("timeline", "--json", data_dir=data_dir).json()
    assert answer["citations"], [m["text"] for m in heard["moments"]]
    assert answer["citations"][0]["kind"] == "utterance"
    assert answer["citations"][0]["thumbnail"]  # the camera was recording at that moment
    # What was heard (the default recogniser, Moonshine), and when: the pre-roll before the
    # first word to the end of the last, in wall-clock time from when it was fed.
    utt = answer["citations"][0]
    assert mediagen.word_errors(text, utt["text"]) <= 1, (
        f"at most one word wrong: said {text!r}, heard {utt['text']!r}")
    preroll_s = Config().vad.preroll_ms / 1000
    t0_s, t1_s = parse_iso(utt["t0"]), parse_iso(utt["t1"])
    assert abs(t0_s - (fed_at_s + at_s + on_s - preroll_s)) < 0.35, t0_s - fed_at_s
    assert abs(t1_s - (fed_at_s + at_s + off_s)) < 0.5, t1_s - fed_at_s


def test_record_with_no_devices_says_so(tmp_path: Path) -> None:
    env = {"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket"}
    res = run_cli("record", "--camera", "9", "--duration", "1", data_dir=tmp_path, env=env)
    assert res.code == 5
    assert "no microphone" in res.err and "continuing without audio" in res.err
    assert "no camera at index 9" in res.err
    assert "nothing to record from" in res.err
    assert "Traceback" not in res.err


def test_record_without_microphone_keeps_the_camera(media: Media, tmp_path: Path) -> None:
    env = {"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket"}
    res = run_cli("record", "--camera", str(media.video), "--duration", "3", "--json",
                  data_dir=tmp_path, env={**os.environ, **env})
    assert res.code == 0, res.err
    summary = __import__("json").loads(res.out)
    assert summary["clips"] >= 1 and summary["utterances"] == 0
    assert "continuing without audio" in summary["missing"][0]
