"""Where Daybook keeps its files: platform user dirs, overridable, created private (0700)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "daybook"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


@dataclass(frozen=True)
class DataPaths:
    """The data directory's layout. `ensure()` creates it with private permissions."""

    root: Path

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def chroma(self) -> Path:
        return self.memory / "chroma"

    @property
    def key_frames(self) -> Path:
        return self.memory / "keyframes"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lock_file(self) -> Path:
        return self.root / "daybook.lock"

    def ensure(self) -> DataPaths:
        for path in (self.root, self.memory, self.chroma, self.key_frames, self.models, self.logs):
            _private_dir(path)
        return self


def resolve_data_dir(cli_value: str | None, config_value: str = "") -> DataPaths:
    """--data-dir wins, then $DAYBOOK_DATA_DIR, then the config's [storage] data_dir, then the
    platform's user data dir."""
    value = cli_value or os.environ.get("DAYBOOK_DATA_DIR") or config_value
    root = Path(value).expanduser() if value else Path(platformdirs.user_data_dir(APP_NAME))
    return DataPaths(root.resolve())


def default_config_path(cli_value: str | None = None) -> Path:
    """--config wins, then $DAYBOOK_CONFIG, then config.toml in the platform's user config dir."""
    value = cli_value or os.environ.get("DAYBOOK_CONFIG")
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"
