"""Single owner of a data directory.

Chroma is not safe for two processes on one database, so a process must hold an exclusive OS lock
on `daybook.lock` for as long as it uses the data dir. The OS drops the lock when the holder dies
(even by SIGKILL), so a stale lock file is simply taken over; its recorded pid is only used to say
what happened.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from app.core.errors import DataDirLockedError

log = logging.getLogger(__name__)

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fh: IO[str]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class DataDirLock:
    """Exclusive, process-wide lock on a data directory. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self.took_over_from: int | None = None

    def acquire(self) -> DataDirLock:
        fh = self.path.open("a+", encoding="utf-8")
        if not _try_lock(fh):
            fh.seek(0)
            holder = _read_holder(fh.read())
            fh.close()
            who = (
                (
                    f"process {holder.get('pid')} on {holder.get('host')} "
                    f"(since {holder.get('since')})"
                )
                if holder
                else "another process"
            )
            raise DataDirLockedError(
                f"the data directory {self.path.parent} is in use by {who}. "
                "Close the other Daybook first, or pass a different --data-dir."
            )
        fh.seek(0)
        previous = _read_holder(fh.read())
        if previous and previous.get("pid") != os.getpid():
            pid = int(str(previous.get("pid") or 0))
            self.took_over_from = pid
            state = "no longer running" if pid and not _pid_alive(pid) else "not holding the lock"
            log.warning(
                "took over a stale lock on %s from process %s (%s)", self.path.parent, pid, state
            )
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
        )
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
            _unlock(self._fh)
        finally:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
