"""The memory store in its own process (see app/core/engine.py for why and how).

Chroma's calls hold the GIL for their whole run (an upsert of 32 rows: 20–40 ms, measured), which
freezes the GUI thread and delays capture. Here the real ChromaMemoryStore lives in a child
process that owns the database; this proxy forwards each call. It is still one process owning the
database (the child), and the child exits when its parent does. A dead or hung child is killed
and a new one opens the database on the next call; meanwhile calls raise `EngineError` and the
memory worker keeps what it could not store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.core.engine import EngineError, EngineProcess
from app.core.errors import DaybookError
from app.memory.base import Hit, Moment

log = logging.getLogger(__name__)


def make_backend(path: str) -> Any:
    """Runs in the child: the real store."""
    from app.memory.chroma_store import ChromaMemoryStore

    return ChromaMemoryStore(Path(path))


class ProcessMemoryStore:
    """A MemoryStore whose Chroma database is opened and used by a child process."""

    engine_name = "memory store"

    def __init__(self, path: Path, *, start_timeout_s: float = 60.0, timeout_s: float = 30.0,
                 on_event: Callable[[object], None] | None = None, wait: bool = True) -> None:
        """`wait=False`: the database opens in the background (the window shows meanwhile);
        the first call waits for it, and a failure to open is an EngineFailed event."""
        try:
            self.engine = EngineProcess(
                self.engine_name, "app.memory.store_process:make_backend", (str(path),),
                start_timeout_s=start_timeout_s, call_timeout_s=timeout_s, on_event=on_event,
                wait=wait)
        except EngineError as exc:
            raise DaybookError(f"cannot open the memory store at {path}: {exc}") from exc

    def _call(self, method: str, *args: Any) -> Any:
        return self.engine.call(method, *args)

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
        self.engine.close()
