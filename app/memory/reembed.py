"""Re-embedding in the background: every stored text moment gets a vector from the configured
embedder, while searches go on using the old vectors (app/memory/chroma_store.py switches to the
new set in one step once it is complete).

Resumable by construction: the store says which moments still lack a vector (`embedding_todo`),
so a restart, a killed process or a store that went away picks up where it stopped. The thread
uses at most about half of one core (it sleeps as long as it worked, times `1 / duty - 1`) so
capture and questions keep their pace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from app.core.events import MemoryReembedding
from app.memory.base import Embedder, EmbedderState, MemoryStore

log = logging.getLogger(__name__)

BATCH = 32
RETRY_S = 2.0


class Reembedder(threading.Thread):
    def __init__(self, store: MemoryStore, embedder: Embedder, emit: Callable[[object], None],
                 *, duty: float = 0.5, batch: int = BATCH) -> None:
        super().__init__(name="reembed", daemon=True)
        self.store = store
        self.embedder = embedder
        self.emit = emit
        self.duty = duty
        self.batch = batch
        self.stop_event = threading.Event()
        self.state: EmbedderState | None = None
        self.embedded = 0

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        name = self.embedder.name
        while not self.stop_event.is_set():
            try:
                if self._step(name):
                    return
            except Exception as exc:
                log.warning("memory: re-embedding paused (%s); trying again", exc)
                self.stop_event.wait(RETRY_S)

    def _step(self, name: str) -> bool:
        """One batch; True when there is nothing (more) to do."""
        if self.state is None:
            self.state = self.store.embedder_state(name)
            if self.state.building == name:
                log.warning("memory: giving %d stored moments vectors from %s (searches use %s "
                            "until then)", self.state.total - self.state.done, name,
                            self.state.active)
        if self.state.building != name:
            return True
        todo = self.store.embedding_todo(name, self.batch)
        started = time.monotonic()
        vectors = list(self.embedder.embed([text for _, text in todo])) if todo else []
        worked = time.monotonic() - started
        state = self.store.add_vectors(name, [(i, v) for (i, _), v in zip(todo, vectors,
                                                                          strict=True)])
        self.embedded += len(todo)
        finished = state.building != name
        if finished or self._tenth(state) != self._tenth(self.state):
            log.info("memory: re-embedding with %s: %d of %d", name,
                     state.total if finished else state.done, state.total)
        self.state = state
        self.emit(MemoryReembedding(name, state.total if finished else state.done, state.total,
                                    finished))
        if finished:
            return True
        if not todo:  # moments arriving without vectors of this set: look again soon
            self.stop_event.wait(RETRY_S)
        elif self.duty < 1.0:
            self.stop_event.wait(worked * (1.0 / self.duty - 1.0))
        return False

    @staticmethod
    def _tenth(state: EmbedderState) -> int:
        return state.done * 10 // max(1, state.total)
