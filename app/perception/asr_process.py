"""Speech recognition in a child process.

pocketsphinx holds the GIL for a whole decode (≈0.6 s measured), which would freeze the GUI and
delay capture threads; a native crash in whisper.cpp would take the whole app down. Running the
backend in its own process fixes both: the parent only waits on a pipe (no GIL held), and a crash
costs one utterance, reported, after which the child is restarted.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import BackendUnavailableError

log = logging.getLogger(__name__)


def _make(kind: str, model_path: str | None, wake_name: str = "") -> Any:
    if kind == "whisper":
        from app.perception.asr_whisper import WhisperTranscriber

        return WhisperTranscriber(Path(model_path or ""))
    from app.perception.asr_pocketsphinx import PocketSphinxTranscriber

    return PocketSphinxTranscriber(wake_name)


def _serve(conn: Connection, kind: str, model_path: str | None, wake_name: str = "") -> None:
    try:
        backend = _make(kind, model_path, wake_name)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", backend.name))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        pcm, rate = msg
        try:
            conn.send(("ok", backend.transcribe(np.frombuffer(pcm, np.int16), rate)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessTranscriber:
    """A Transcriber whose backend ("pocketsphinx" or "whisper") runs in a child process."""

    def __init__(self, kind: str, model_path: Path | None = None, *,
                 start_timeout_s: float = 60.0, wake_name: str = "") -> None:
        self.kind = kind
        self.model_path = str(model_path) if model_path else None
        self.wake_name = wake_name  # pocketsphinx spots it (whisper hears names by itself)
        self.start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self.restarts = 0
        self.name = self._start()

    def _start(self) -> str:
        ctx = mp.get_context("spawn")  # no fork: the parent has threads
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve,
                                 args=(child, self.kind, self.model_path, self.wake_name),
                                 name=f"asr-{self.kind}", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(self.start_timeout_s):
            self.close()
            raise BackendUnavailableError(f"the {self.kind} speech recogniser did not start")
        try:
            status, detail = parent.recv()
        except EOFError as exc:
            self.close()
            raise BackendUnavailableError(
                f"the {self.kind} speech recogniser crashed while loading") from exc
        if status != "ready":
            self.close()
            raise BackendUnavailableError(detail)
        return str(detail)

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        with self._lock:
            if self._conn is None:
                self.restarts += 1
                self._start()
            assert self._conn is not None
            try:
                self._conn.send((pcm.astype(np.int16).tobytes(), sample_rate_hz))
                status, detail = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                code = self._proc.exitcode if self._proc is not None else None
                self.close()
                raise RuntimeError(f"the speech recogniser crashed (exit code {code}); it "
                                   "restarts for the next utterance") from exc
        if status != "ok":
            raise RuntimeError(detail)
        return str(detail)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self._conn.send(None)
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(2)
            if self._proc.is_alive():
                self._proc.kill()
            self._proc = None
