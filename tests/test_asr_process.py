"""The recogniser's child process: real pocketsphinx and whisper.cpp, crash containment."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from app.core.engine import EngineError
from app.core.errors import BackendUnavailableError
from app.core.events import EngineFailed, EngineRecovered
from app.perception.asr_process import ProcessTranscriber
from tests import mediagen, tinymodels


def test_pocketsphinx_in_a_child_does_not_hold_our_gil() -> None:
    asr = ProcessTranscriber("pocketsphinx")
    try:
        speech = mediagen.conversation([(0.3, "remember to water the tomato plants")], 3.5,
                                        voice="en-us")
        ticks: list[float] = []
        done = threading.Event()

        def ticker() -> None:
            while not done.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.005)

        t = threading.Thread(target=ticker)
        t.start()
        text = asr.transcribe(speech, 16000)
        done.set()
        t.join()
        assert "water" in text
        gaps = np.diff(ticks)
        assert gaps.max() < 0.1  # in-process pocketsphinx blocks this thread for ~0.5 s
    finally:
        asr.close()


def test_a_crashed_child_costs_one_call_then_restarts() -> None:
    events: list[object] = []
    asr = ProcessTranscriber("pocketsphinx", on_event=events.append)
    try:
        # Killed in the middle of a call: that call fails at once, saying why.
        long_speech = np.tile(mediagen.conversation([(0.3, "water the plants")], 3.0), 8)
        pid = asr.engine.pid
        threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(EngineError, match="exited"):
            asr.transcribe(long_speech, 16000)
        # The next call gets a new child.
        assert isinstance(asr.transcribe(np.zeros(16000, np.int16), 16000), str)
        assert asr.restarts == 1 and asr.engine.pid != pid
        # Killed while idle: noticed at once, replaced on the next call.
        os.kill(asr.engine.pid, signal.SIGKILL)
        time.sleep(0.5)
        assert isinstance(asr.transcribe(np.zeros(16000, np.int16), 16000), str)
        assert asr.restarts == 2
        assert [type(e) for e in events] == [EngineFailed, EngineRecovered] * 2
    finally:
        asr.close()


def test_a_hung_child_is_killed_and_replaced() -> None:
    asr = ProcessTranscriber("pocketsphinx", timeout_s=2.0)
    try:
        hung = asr.engine.pid
        os.kill(hung, signal.SIGSTOP)  # it stops answering, as a deadlocked native call would
        t0 = time.monotonic()
        with pytest.raises(EngineError, match="did not answer"):
            asr.transcribe(np.zeros(16000, np.int16), 16000)
        assert time.monotonic() - t0 < 6
        assert not psutil.pid_exists(hung) or psutil.Process(hung).status() == "zombie"
        speech = mediagen.conversation([(0.3, "remember to water the tomato plants")], 3.5,
                                        voice="en-us")
        assert "water" in asr.transcribe(speech, 16000)
        assert asr.engine.pid != hung
    finally:
        asr.close()


def test_whisper_child_on_a_tiny_model(tmp_path: Path) -> None:
    model = tinymodels.make_tiny_whisper_ggml(tmp_path / "tiny.bin")
    asr = ProcessTranscriber("whisper", model)
    try:
        assert asr.name == "whisper.cpp (tiny.bin)"
        noise = np.random.default_rng(0).normal(0, 2000, 32000).astype(np.int16)
        assert isinstance(asr.transcribe(noise, 16000), str)
    finally:
        asr.close()


def test_backend_that_cannot_load_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="whisper model file not found|not found"):
        ProcessTranscriber("whisper", tmp_path / "missing.bin")


def test_moonshine_child_hears_the_name_the_text_bent() -> None:
    """The name check runs in the child: the question comes back beside the text as heard; a
    recogniser without the check (pocketsphinx) gives the text and no question."""
    asr = ProcessTranscriber("moonshine")
    try:
        said = mediagen.conversation([(0.3, "Daybook, where are my keys?")], 3.0, voice="en-gb")
        text, question = asr.transcribe_addressed(said, 16000, "Daybook")
        assert "where are my keys" in text.lower() and question == "where are my keys", text
        plain = mediagen.conversation([(0.3, "the keys are in the kitchen drawer")], 3.0,
                                      voice="en-gb")
        text, question = asr.transcribe_addressed(plain, 16000, "Daybook")
        assert "kitchen drawer" in text.lower() and question == "", text
    finally:
        asr.close()
    sphinx = ProcessTranscriber("pocketsphinx")
    try:
        assert sphinx.transcribe_addressed(plain, 16000, "Daybook")[1] == ""
    finally:
        sphinx.close()
