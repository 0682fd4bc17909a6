"""The one writer of the memory store: perception's events become moments, in batches, with
retries, and nothing is lost when the store fails.

The memory worker (app/pipeline/workers.py) feeds it from the pipeline; everything that is
written to the memory (utterances, clips with their key frames; later captions) goes through
here, so the store's derived indexes (full text, time) stay in step with it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from app.core.events import ClipClosed, MomentsKept, MomentsStored, UtteranceTranscribed
from app.memory.base import Embedder, MemoryStore, Moment
from app.memory.journal import MomentJournal
from app.memory.keyframes import KeyFrameDir

log = logging.getLogger(__name__)


class MemoryWriter:
    """The one writer of the memory store: what perception found becomes moments here.

    Writes key frames at once, and commits records in batches (`batch_size`, or after
    `flush_interval_s`). Nothing is dropped when the store fails (a full disk, a crashed or hung
    store process): the batch stays in RAM, goes to the journal on disk at once, and is committed
    when the store answers again, or at the next start from the journal.
    """

    final_retry_s = 10.0  # at end of stream, keep retrying a failing store this long
    retry_every_s = 1.0
    max_add = 256  # rows per store call (a long outage leaves many)

    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder,
        key_frames: KeyFrameDir,
        *,
        batch_size: int,
        flush_interval_s: float,
        journal: MomentJournal | None = None,
        emit: Callable[[object], None],
        abort: threading.Event,
    ) -> None:
        self.emit = emit
        self.abort = abort
        self.store = store
        self.embedder = embedder
        self.key_frames = key_frames
        self.journal = journal
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._pending: list[tuple[Moment, np.ndarray | None]] = []
        self._updates: set[str] = set()  # pending ids that update a stored moment
        self._captions: dict[str, tuple[str, np.ndarray]] = {}  # clip id → (caption, vector)
        self._journaled: set[str] = set()
        self._from_journal: set[str] = set()  # kept by an earlier run
        self._oldest_pending = 0.0
        self._retry_at = 0.0
        self._soon = threading.Event()  # commit at the next turn, not after flush_interval_s
        self._forget: list[Callable[[Moment], bool]] = []  # deletions asked from other threads
        self._forgotten = 0  # how many of them are applied
        self.stored = {"utterance": 0, "clip": 0}
        self.recovered = 0  # moments from an earlier run's journal, now stored
        self.kept_reported = 0
        self.last_error: str | None = None

    @property
    def kept(self) -> int:
        """Moments not stored yet (in RAM, and in the journal where it could be written)."""
        return len(self._pending)

    @property
    def journaled(self) -> int:
        return len(self._journaled)

    def begin(self) -> None:
        if self.journal is None:
            return
        try:
            items = self.journal.load()
        except OSError as exc:
            self._report(f"cannot read the journal {self.journal.path}: {exc}")
            return
        if items:
            log.warning("memory: %d moments from the journal of an earlier run", len(items))
            self._pending[:0] = items
            self._journaled.update(m.id for m, _ in items)
            self._from_journal.update(m.id for m, _ in items)  # counted by the run that kept them
            self._oldest_pending = time.monotonic()
            self.flush()

    def handle(self, item: UtteranceTranscribed | ClipClosed) -> None:
        if isinstance(item, UtteranceTranscribed):
            moment = Moment(
                id=item.id,
                kind="utterance",
                t0_s=item.t0_s,
                t1_s=item.t1_s,
                text=item.text,
                sound=str(item.sound),
                question=item.question,
            )
            vector = None  # embedded with the batch
            if item.retry and not any(m.id == item.id for m, _ in self._pending):
                self._updates.add(item.id)  # its first version is stored already
        else:
            try:
                rel = self.key_frames.write(item.key_frame, item.t0_s, item.t1_s)
            except OSError as exc:
                rel = None
                self._report(f"could not save a key frame ({exc}); the clip is kept without it")
            moment = Moment(
                id=item.id,
                kind="clip",
                t0_s=item.t0_s,
                t1_s=item.t1_s,
                text=item.caption,
                key_frame=rel,
                n_frames=item.n_frames,
            )
            vector = item.global_vector
            if item.update and not any(m.id == item.id for m, _ in self._pending):
                self._updates.add(item.id)  # stored already, without its caption
        if not self._pending:
            self._oldest_pending = time.monotonic()
        self._pending = [(m, v) for m, v in self._pending if m.id != moment.id]
        self._pending.append((moment, vector))
        if ((len(self._pending) >= self.batch_size or self._soon.is_set())
                and time.monotonic() >= self._retry_at):
            self.flush()

    def idle(self) -> None:
        self._apply_forget()
        if (self._pending and time.monotonic() >= self._retry_at
                and (self._soon.is_set() or self.kept_reported
                     or time.monotonic() - self._oldest_pending >= self.flush_interval_s)):
            self.flush()

    def forget(self, doomed: Callable[[Moment], bool]) -> None:
        """From any thread: the user deleted these moments; drop them from what is pending and
        from the journal (and from the store, if a commit was under way at the time)."""
        self._forget.append(doomed)

    def _apply_forget(self) -> None:
        requests = self._forget[self._forgotten:]
        if not requests:
            return
        self._forgotten += len(requests)

        def doomed(m: Moment) -> bool:
            return any(request(m) for request in requests)

        before = len(self._pending)
        self._pending = [(m, v) for m, v in self._pending if not doomed(m)]
        if self.journal is not None and self._journaled:
            try:
                self.journal.forget(doomed)
            except OSError as exc:
                self._report(f"cannot remove deleted moments from the journal: {exc}")
        self._journaled = {m.id for m, _ in self._pending} & self._journaled
        pending = {m.id for m, _ in self._pending}
        self._captions = {i: c for i, c in self._captions.items() if i in pending}
        if before != len(self._pending):
            log.info("memory: %d pending moments deleted before they were stored",
                     before - len(self._pending))

    def flush_soon(self) -> None:
        """From any thread: commit what is pending (and what arrives next) without waiting for
        the batch to fill: a spoken question is about to be answered from the memory."""
        self._soon.set()

    def finish(self) -> None:
        self.flush()
        deadline = time.monotonic() + self.final_retry_s
        while self._pending and time.monotonic() < deadline and not self.abort.wait(0.25):
            self.flush()
        if self._pending:  # what still fails is said loudly
            where = (f"kept in the journal {self.journal.path}; stored at the next start"
                     if self.journal is not None and self.journaled == len(self._pending)
                     else "LOST when this process exits (the journal could not be written)")
            log.error("memory: %d moments could not be stored (%s): %s", len(self._pending),
                      self.last_error, where)

    def flush(self) -> None:
        self._apply_forget()
        if not self._pending:
            return
        texts = [
            (i, m.text or f"({m.sound})") for i, (m, v) in enumerate(self._pending) if v is None
        ]
        if texts:
            vectors = self.embedder.embed([t for _, t in texts])
            for (i, _), vec in zip(texts, vectors, strict=True):
                self._pending[i] = (self._pending[i][0], vec)
        # A caption's text vector, kept until its clip is stored (the journal keeps only the
        # clip's visual vector: a journaled caption is embedded again at the next start).
        fresh = [m for m, _ in self._pending if m.kind == "clip" and m.text
                 and self._captions.get(m.id, ("",))[0] != m.text]
        if fresh:
            for m, vec in zip(fresh, self.embedder.embed([m.text for m in fresh]), strict=True):
                self._captions[m.id] = (m.text, vec)
        while self._pending:
            batch = [(m, v) for m, v in self._pending[: self.max_add] if v is not None]
            asked = len(self._forget)
            try:
                with_captions = {m.id: self._captions[m.id][1] for m, _ in batch
                                 if m.id in self._captions}
                if with_captions:
                    self.store.add(batch, self.embedder.name, with_captions)
                else:
                    self.store.add(batch, self.embedder.name)
            except Exception as exc:
                self._keep(exc)
                return
            del self._pending[: len(batch)]
            for m, _ in batch:
                self._captions.pop(m.id, None)
            late = [m.id for m, _ in batch for request in self._forget[asked:] if request(m)]
            if late:  # deleted while this commit was under way
                with contextlib.suppress(Exception):
                    self.store.delete(late)
                batch = [(m, v) for m, v in batch if m.id not in late]
                if not batch:
                    continue
            self._committed(batch)
        self._soon.clear()
        if self._journaled and self.journal is not None:
            try:
                self.journal.clear()
            except OSError as exc:  # replayed again at the next start: upserts, no duplicates
                log.warning("memory: cannot empty the journal: %s", exc)
            self._journaled.clear()
        if self.kept_reported:
            log.warning("memory: the store answers again; all %d kept moments are stored",
                        self.kept_reported)
            self.kept_reported = 0
            self.last_error = None
            self.emit(MomentsKept(0, False, "all kept moments are stored"))

    def _committed(self, batch: list[tuple[Moment, np.ndarray]]) -> None:
        for m, _ in batch:
            if m.id in self._from_journal:
                self._from_journal.discard(m.id)
                self.recovered += 1
            elif m.id in self._updates:
                self._updates.discard(m.id)
            else:
                self.stored[m.kind] += 1
        ids = tuple(m.id for m, _ in batch)
        log.info("stored %d moments: %s", len(ids), " ".join(ids))
        self.emit(
            MomentsStored(
                ids=ids, kinds=tuple(m.kind for m, _ in batch), t1_s=max(m.t1_s for m, _ in batch)
            )
        )

    def _keep(self, exc: Exception) -> None:
        """The store refused: keep everything pending, on disk too, and retry later."""
        self._retry_at = time.monotonic() + self.retry_every_s
        fresh = [(m, v) for m, v in self._pending if m.id not in self._journaled
                 and v is not None]
        journal_error = ""
        if fresh and self.journal is not None:
            try:
                self.journal.append(fresh)
                self._journaled.update(m.id for m, _ in fresh)
            except OSError as err:
                journal_error = f"; the journal cannot be written either ({err})"
        journaled = self.journal is not None and self.journaled >= len(self._pending)
        message = (f"could not write to the memory store ({exc}); {len(self._pending)} moments "
                   f"kept{' in the journal' if journaled else ' in RAM'}, will retry"
                   f"{journal_error}")
        self._report(message)
        if len(self._pending) != self.kept_reported:
            self.kept_reported = len(self._pending)
            self.emit(MomentsKept(len(self._pending), journaled, message))

    def _report(self, message: str) -> None:
        if message != self.last_error:
            log.error("memory: %s", message)
        self.last_error = message
