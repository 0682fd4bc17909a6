"""Errors the user can act on, and the process exit codes they map to."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    CONFIG = 3
    DATA_DIR_LOCKED = 4
    INPUT = 5
    INCOMPLETE = 6  # finished, but some moments are not stored (or transcribed) yet: kept
    INTERRUPTED = 130


class DaybookError(Exception):
    """An error with a message meant for the user."""

    exit_code: ExitCode = ExitCode.FAILURE


class ConfigError(DaybookError):
    exit_code = ExitCode.CONFIG


class DataDirLockedError(DaybookError):
    exit_code = ExitCode.DATA_DIR_LOCKED


class InputError(DaybookError):
    """A source (file, device, stream) could not be opened or read."""

    exit_code = ExitCode.INPUT


class BackendUnavailableError(DaybookError):
    """A backend's library or model is missing; the factory falls back and says so."""
