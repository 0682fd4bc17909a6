"""The recogniser's child process: real pocketsphinx and whisper.cpp, crash containment."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BackendUnavailableError
from app.perception.asr_process import ProcessTranscriber
from tests import mediagen, tinymodels


def test_pocketsphinx_in_a_child_does_not_hold_our_gil() -> None:
    asr = ProcessTranscriber("pocketsphinx")
    try:
        speech = mediagen.conversation([(0.3, "remember to water the tomato plants")], 3.5)
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


def test_a_crashed_child_costs_one_utterance_then_restarts() -> None:
    asr = ProcessTranscriber("pocketsphinx")
    try:
        os.kill(asr._proc.pid, signal.SIGKILL)
        asr._proc.join(5)
        with pytest.raises(RuntimeError, match="crashed"):
            asr.transcribe(np.zeros(16000, np.int16), 16000)
        assert isinstance(asr.transcribe(np.zeros(16000, np.int16), 16000), str)
        assert asr.restarts == 1
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
