"""The start of every front end (command line, window): the config, the data dir, logging —
in that order, in one place. The data-dir lock comes next, taken by the caller."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app import __version__
from app.core.config import Config, load_config
from app.core.logs import setup_logging
from app.core.paths import DataPaths, default_config_path, resolve_data_dir

log = logging.getLogger("daybook")


@dataclass(frozen=True)
class Boot:
    cfg: Config
    config_path: Path
    paths: DataPaths


def boot(config: str | None, data_dir: str | None, *, verbose: bool = False,
         records: bool = True) -> Boot:
    """Load the config (`config`: a path, else $DAYBOOK_CONFIG or the platform's), make the
    data dir ready and start logging. Something that only reads (`records=False`) still works
    on a full disk. Raises DaybookError with a message for the user."""
    config_path = default_config_path(config)
    cfg = load_config(config_path)
    paths = resolve_data_dir(data_dir, cfg.storage.data_dir).ensure(
        **({} if records else {"min_free_bytes": 0}))
    setup_logging(cfg.logging, paths.logs, console_level="INFO" if verbose else "WARNING")
    log.info("daybook %s, data dir %s, config %s", __version__, paths.root, cfg.source)
    return Boot(cfg, config_path, paths)
