"""Validating a Config built in memory (by the settings dialog) before it is saved. It applies
the checks `load_config` makes, through `config_from_dict`, plus a few of the dialog's own: the
wake name must not be empty and folders must be full paths to folders. Errors name the section
and field, e.g. `[assistant] wake_name: ...`, so the dialog can point at the widget.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.core.config import Config, config_from_dict
from app.core.errors import ConfigError


def validate_config(cfg: Config, source: str = "Settings") -> Config:
    """The checks `load_config` makes (through `config_from_dict`) plus the dialog's own.

    Raises ConfigError naming the section and field, e.g. `[assistant] wake_name: ...`.
    """
    data = {f.name: dataclasses.asdict(getattr(cfg, f.name))
            for f in dataclasses.fields(Config) if f.name != "source"}
    checked = config_from_dict(data, source)
    if not checked.assistant.wake_name.strip():
        raise ConfigError(f"{source}: [assistant] wake_name: must not be empty (questions "
                          "start with this name)")
    for section, key in (("models", "dir"), ("storage", "data_dir")):
        value = getattr(getattr(checked, section), key)
        if not value:
            continue
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            raise ConfigError(f"{source}: [{section}] {key}: {value!r} is not a full path "
                              "(choose a folder with Browse…)")
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{source}: [{section}] {key}: {value} is a file, not a folder")
    return dataclasses.replace(checked, source=cfg.source)
