"""Logging: a rotating file in the data dir plus the console (stderr, so stdout stays clean).

Privacy: at INFO and above nothing that was said, heard or asked is logged (questions appear as
their length and id, moments as their ids). Only `[logging] level = "DEBUG"` writes question text
to the file. Deleting moments also deletes the log lines that name them or that were written in
the deleted time range, and retention deletes log lines older than it keeps (`forget_logged`), so
the log never outlives what was forgotten, whatever the level.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from app.core.config import LoggingConfig
from app.core.paths import take_pending_warnings

_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)-14s %(name)s: %(message)s"
_STAMP_LEN = len("2026-11-24 09:00:00,000")

log = logging.getLogger(__name__)


def setup_logging(
    cfg: LoggingConfig, log_dir: Path | None, *, console_level: str = "WARNING"
) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("daybook: %(levelname)s: %(message)s"))
    # Records logged with extra={"console": False} were already shown to the user another way.
    console.addFilter(lambda record: getattr(record, "console", True))
    root.addHandler(console)
    if log_dir is not None:
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / "daybook.log",
            maxBytes=cfg.max_file_bytes,
            backupCount=cfg.backup_count,
            encoding="utf-8",
        )
        file_handler.setLevel(cfg.level)
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(file_handler)
    # Third-party chatter stays out of the user's console.
    for noisy in ("chromadb", "httpx", "urllib3", "opentelemetry"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for message in take_pending_warnings():  # found while the data dir was checked
        log.warning("%s", message)


def _file_handlers() -> list[logging.handlers.RotatingFileHandler]:
    return [h for h in logging.getLogger().handlers
            if isinstance(h, logging.handlers.RotatingFileHandler)]


def _stamp_s(line: str) -> float | None:
    """The time a log line was written (local time, as `_FORMAT` writes it); None for a
    continuation line (a traceback)."""
    try:
        when = dt.datetime.strptime(line[:_STAMP_LEN], "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return when.timestamp()


def _forget_in_file(
    path: Path, t0_s: float, t1_s: float, ids: re.Pattern[str] | None,
    handler: logging.FileHandler,
) -> int:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    kept: list[str] = []
    dropped = 0
    dropping = False
    for line in lines:
        stamp = _stamp_s(line)
        if stamp is not None:  # a new record: its continuation lines share its fate
            # Stamps are cut to the millisecond: a record near an end errs towards forgetting.
            dropping = t0_s - 0.001 < stamp < t1_s or bool(ids and ids.search(line))
            dropped += dropping
        if not dropping:
            kept.append(line)
    if dropped:
        if path == Path(handler.baseFilename) and handler.stream is not None:
            handler.stream.close()  # the next record reopens the rewritten file
            handler.stream = None
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


def forget_logged(
    t0_s: float = 0.0, t1_s: float = 0.0, *, ids: Iterable[str] = ()
) -> int:
    """Delete the log records written in [t0_s, t1_s) and those naming any of `ids` (moment ids),
    from the log file and its rotated copies; returns how many records. A no-op without a log
    file (logging not set up)."""
    names = sorted({i for i in ids if i}, key=len, reverse=True)
    if t1_s <= t0_s and not names:
        return 0
    pattern = (re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w-])")
               if names else None)
    dropped = 0
    for handler in _file_handlers():
        base = Path(handler.baseFilename)
        handler.acquire()  # no record is written (or rotated) while the files are rewritten
        try:
            handler.flush()
            paths = [base] + [base.with_name(f"{base.name}.{n}")
                              for n in range(1, handler.backupCount + 1)]
            for path in paths:
                dropped += _forget_in_file(path, t0_s, t1_s, pattern, handler)
        finally:
            handler.release()
    return dropped
