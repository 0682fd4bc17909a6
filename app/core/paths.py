"""Where Daybook keeps its files: platform user dirs, overridable.

Folders Daybook creates are private (0700); a folder that already exists keeps its mode (a
warning says when others can read it). A data dir that cannot be used (not a folder, another
user's, not writable, a full disk) is refused at start-up with `DataDirError`, before anything is
captured that could not be stored.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.core.errors import DaybookError, ExitCode
from app.core.units import fmt_bytes

APP_NAME = "daybook"
# Less free space than this at start-up is refused: a recording (≈6 MB an hour) and Chroma's
# database growth must fit, or what is captured would be lost.
MIN_FREE_BYTES = 64_000_000
_CHOOSE = "choose another with --data-dir (or [storage] data_dir)"
_PROBE = ".write-check-"

log = logging.getLogger(__name__)
# Warnings from before logging is set up; `take_pending_warnings` hands them to the log.
_pending_warnings: list[str] = []


class DataDirError(DaybookError):
    """The data dir cannot be used: not a folder, another user's, not writable, disk full."""

    exit_code = ExitCode.FAILURE


def _warn(message: str) -> None:
    if logging.getLogger().handlers:
        log.warning("%s", message)
    else:
        _pending_warnings.append(message)


def take_pending_warnings() -> list[str]:
    """Warnings found before logging was set up (setup_logging logs them)."""
    taken = list(_pending_warnings)
    _pending_warnings.clear()
    return taken


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "part of the path is a file, not a folder"
    return exc.strerror or str(exc)


def _private_dir(path: Path) -> Path:
    """Create `path` private (0700) if it is missing; an existing folder keeps its mode."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise DataDirError(f"{path} is a file, not a folder; {_CHOOSE}") from None
        return path
    if os.name == "posix":
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    return path


def _check_usable(root: Path, *, existed: bool, min_free_bytes: int) -> None:
    if os.name == "posix" and existed:
        st = root.stat()
        if st.st_uid != os.geteuid():
            raise DataDirError(
                f"the data dir {root} belongs to another user (uid {st.st_uid}); Daybook keeps "
                f"your private memory only in a folder you own: {_CHOOSE}"
            )
        if st.st_mode & 0o077:
            _warn(f"the data dir {root} can be read by other users (mode "
                  f"{st.st_mode & 0o777:o}); `chmod 700 {root}` makes it private")
    # Writing is the only sure test (a read-only mount, ACLs, root or not).
    try:
        fd, probe = tempfile.mkstemp(prefix=_PROBE, dir=root)
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        if exc.errno != errno.ENOSPC or min_free_bytes:
            raise
        _warn(f"the disk that holds the data dir {root} is full")  # reading still works
    free = shutil.disk_usage(root).free
    if free < min_free_bytes:
        raise DataDirError(
            f"the disk that holds the data dir {root} is full: {fmt_bytes(free)} free; Daybook "
            f"needs at least {fmt_bytes(min_free_bytes)} to store what it captures; free some "
            f"space or {_CHOOSE}"
        )


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

    def ensure(self, *, min_free_bytes: int = MIN_FREE_BYTES) -> DataPaths:
        """Create the layout and check the data dir can be used; raises DataDirError (exit 1)
        naming the problem."""
        root = self.root
        try:
            existed = root.exists()
            if not existed:
                root.parent.mkdir(parents=True, exist_ok=True)
            _private_dir(root)
            _check_usable(root, existed=existed, min_free_bytes=min_free_bytes)
            for path in (self.memory, self.chroma, self.key_frames, self.models, self.logs):
                _private_dir(path)
        except OSError as exc:
            name = str(exc.filename or "")
            where = f" ({name})" if name and name != str(root) and _PROBE not in name else ""
            raise DataDirError(
                f"cannot use the data dir {root}: {_why(exc)}{where}; {_CHOOSE}"
            ) from exc
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
