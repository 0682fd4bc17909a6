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
from app.memory.base import LIVE_KINDS, EmbedderState, Hit, Kind, Moment

log = logging.getLogger(__name__)


def make_backend(path: str, url: str = "", index_dir: str = "") -> Any:
    """Runs in the child: the real store."""
    from app.memory.chroma_store import ChromaMemoryStore

    return ChromaMemoryStore(Path(path), url=url, index_dir=Path(index_dir) if index_dir else None)


class ProcessMemoryStore:
    """A MemoryStore whose Chroma database is opened and used by a child process."""

    engine_name = "memory store"

    def __init__(self, path: Path, *, url: str = "", index_dir: Path | None = None,
                 start_timeout_s: float = 60.0, timeout_s: float = 30.0,
                 on_event: Callable[[object], None] | None = None, wait: bool = True) -> None:
        """`wait=False`: the database opens in the background (the window shows meanwhile);
        the first call waits for it, and a failure to open is an EngineFailed event."""
        try:
            self.engine = EngineProcess(
                self.engine_name, "app.memory.store_process:make_backend",
                (str(path), url, str(index_dir or "")),
                start_timeout_s=start_timeout_s, call_timeout_s=timeout_s, on_event=on_event,
                wait=wait)
        except EngineError as exc:
            where = "" if url else f" at {path}"  # a server's error names its address itself
            raise DaybookError(f"cannot open the memory store{where}: {exc}") from exc

    def _call(self, method: str, *args: Any) -> Any:
        return self.engine.call(method, *args)

    def add(self, items: list[tuple[Moment, np.ndarray]], embedder: str,
            captions: dict[str, np.ndarray] | None = None) -> None:
        self._call("add", items, embedder, captions)

    def search(self, vector: np.ndarray, k: int, t0_s: float | None = None,
               t1_s: float | None = None, *, embedder: str) -> list[Hit]:
        return list(self._call("search", vector, k, t0_s, t1_s, embedder))

    def keyword_search(self, query: str, k: int, t0_s: float | None = None,
                       t1_s: float | None = None) -> list[Hit]:
        return list(self._call("keyword_search", query, k, t0_s, t1_s))

    def moments_between(self, t0_s: float, t1_s: float,
                        kinds: tuple[Kind, ...] = LIVE_KINDS) -> list[Moment]:
        return list(self._call("moments_between", t0_s, t1_s, kinds))

    def moments_on_day(self, day: str) -> list[Moment]:
        return list(self._call("moments_on_day", day))

    def get(self, ids: list[str]) -> list[Moment]:
        return list(self._call("get", ids))

    def delete(self, ids: list[str]) -> list[Moment]:
        return list(self._call("delete", ids))

    def delete_before(self, t_s: float) -> list[Moment]:
        return list(self._call("delete_before", t_s))

    def count(self) -> dict[str, int]:
        return dict(self._call("count"))

    def span(self) -> tuple[float, float] | None:
        span: tuple[float, float] | None = self._call("span")
        return span

    def embedder_state(self, wanted: str) -> EmbedderState:
        state: EmbedderState = self._call("embedder_state", wanted)
        return state

    def embedding_todo(self, embedder: str, limit: int) -> list[tuple[str, str]]:
        return list(self._call("embedding_todo", embedder, limit))

    def add_vectors(self, embedder: str, vectors: list[tuple[str, np.ndarray]]) -> EmbedderState:
        state: EmbedderState = self._call("add_vectors", embedder, vectors)
        return state

    def close(self) -> None:
        self.engine.close()
