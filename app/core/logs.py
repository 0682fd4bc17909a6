"""Logging: a rotating file in the data dir plus the console (stderr, so stdout stays clean)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from app.core.config import LoggingConfig

_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)-14s %(name)s: %(message)s"


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
