"""The memory store in its own process.

Chroma's calls hold the GIL for their whole run (an upsert of 32 rows: 20–40 ms, measured), which
freezes the GUI thread and delays capture. Here the real ChromaMemoryStore lives in a child
process that owns the database; this proxy forwards each call over a pipe and waits without
holding the GIL. It is still one process owning the database (the child), and the child exits
when the pipe closes, including when the parent is killed.
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

from app.core.errors import DaybookError
from app.memory.base import Hit, Moment

log = logging.getLogger(__name__)


def _serve(conn: Connection, path: str) -> None:
    try:
        from app.memory.chroma_store import ChromaMemoryStore

        store = ChromaMemoryStore(Path(path))
    except Exception as exc:
        conn.send(("error", exc))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        method, args = request
        try:
            conn.send(("ok", getattr(store, method)(*args)))
        except Exception as exc:
            try:
                conn.send(("error", exc))
            except Exception:  # an exception that does not pickle
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class ProcessMemoryStore:
    """A MemoryStore whose Chroma database is opened and used by a child process."""

    def __init__(self, path: Path, *, start_timeout_s: float = 60.0) -> None:
        ctx = mp.get_context("spawn")  # no fork: the parent has threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, str(path)), name="memory-store",
                                 daemon=True)
        self._proc.start()
        child.close()
        self._lock = threading.Lock()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise DaybookError(f"the memory store at {path} did not open in {start_timeout_s} s")
        try:
            status, detail = self._conn.recv()
        except EOFError as exc:
            self.close()
            raise DaybookError(f"the memory store process crashed opening {path}") from exc
        if status != "ready":
            self.close()
            raise DaybookError(f"cannot open the memory store at {path}: {detail}")

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            try:
                self._conn.send((method, args))
                status, value = self._conn.recv()
            except (EOFError, OSError) as exc:
                code = self._proc.exitcode
                raise OSError(f"the memory store process is gone (exit code {code})") from exc
        if status == "error":
            raise value
        return value

    def add(self, items: list[tuple[Moment, np.ndarray]]) -> None:
        self._call("add", items)

    def search(self, vector: np.ndarray, k: int, days: list[str] | None = None) -> list[Hit]:
        return list(self._call("search", vector, k, days))

    def moments_on_day(self, day: str) -> list[Moment]:
        return list(self._call("moments_on_day", day))

    def delete(self, ids: list[str]) -> None:
        self._call("delete", ids)

    def delete_before(self, t_s: float) -> list[Moment]:
        return list(self._call("delete_before", t_s))

    def count(self) -> dict[str, int]:
        return dict(self._call("count"))

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(None)
            self._conn.close()
        self._proc.join(10)
        if self._proc.is_alive():
            log.warning("memory store process did not exit; killing it")
            self._proc.kill()
            self._proc.join(5)
