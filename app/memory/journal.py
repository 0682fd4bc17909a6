"""Moments that could not be stored yet, kept on disk until the store takes them.

The memory worker appends a batch here (one JSON line per moment, flushed and fsynced) as soon
as the store refuses it, so a killed process or a store that stays down loses nothing; the
journal is replayed into the store at the next start and emptied once everything in it is stored.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.memory.base import Moment

log = logging.getLogger(__name__)


class MomentJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, items: list[tuple[Moment, np.ndarray]]) -> None:
        """Raises OSError (e.g. a full disk): the caller then still has them in RAM."""
        lines = [
            json.dumps({"moment": dataclasses.asdict(m),
                        "vector": base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()})
            + "\n"
            for m, v in items
        ]
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())

    def load(self) -> list[tuple[Moment, np.ndarray]]:
        """Every moment in the journal (the last copy of an id wins); a torn last line, left by
        a process killed mid-write, is skipped."""
        if not self.path.exists():
            return []
        items: dict[str, tuple[Moment, np.ndarray]] = {}
        bad = 0
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                moment = Moment(**rec["moment"])
                vector = np.frombuffer(base64.b64decode(rec["vector"]), "<f4").copy()
            except (ValueError, TypeError, KeyError):
                bad += 1
                continue
            items[moment.id] = (moment, vector)
        if bad:
            log.warning("memory journal: %d unreadable line(s) skipped", bad)
        return list(items.values())

    def forget(self, doomed: Callable[[Moment], bool]) -> int:
        """Remove the moments the user deleted (a range, retention); returns how many."""
        items = self.load()
        keep = [(m, v) for m, v in items if not doomed(m)]
        if len(keep) == len(items):
            return 0
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        if keep:
            MomentJournal(tmp).append(keep)
            os.replace(tmp, self.path)
        else:
            self.clear()
        return len(items) - len(keep)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self.load())
