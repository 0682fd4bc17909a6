"""Capture interfaces: where audio chunks and video frames come from.

A source is iterated by one capture thread. `live` sources (a microphone, a camera) cannot be
slowed down, so the pipeline never blocks on them; replayed sources (files) can, so ingest applies
back-pressure instead of dropping anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from app.core.events import AudioCaptured, FrameCaptured

TARGET_SAMPLE_RATE_HZ = 16_000


@runtime_checkable
class AudioSource(Protocol):
    name: str
    live: bool
    duration_s: float | None

    def chunks(self, stop: threading.Event) -> Iterator[AudioCaptured]:
        """Mono int16 chunks at TARGET_SAMPLE_RATE_HZ until the source ends or `stop` is set."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSource(Protocol):
    name: str
    live: bool
    duration_s: float | None

    def frames(self, stop: threading.Event) -> Iterator[FrameCaptured]:
        """BGR frames, at most `max_fps` per second of media, until the end or `stop`."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Reopenable(Protocol):
    """A live source whose device can be opened again after it was lost (a microphone unplugged
    and plugged back, its sound server restarted). The capture thread calls `reopen` between
    tries, then iterates the source again."""

    reconnects: int  # times the device delivered again after it was lost

    def reopen(self) -> None:
        """Close what is left of the lost device and open it again (by name: "default" follows
        the system default). Raises InputError while it cannot be opened."""
        ...
