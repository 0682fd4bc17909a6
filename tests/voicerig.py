"""Daybook's whole voice loop on real parts, for tests/test_voice_pulse.py and bench/voice.py.

A private PulseAudio daemon (tests/pulse.py): its FIFO is the microphone, its null sink the
speaker, whose monitor is recorded (tests/room.py) and, with `room_ir`, played back into the
microphone through a simulated room. The service is the app's own (`DaybookService`): Silero
VAD, Moonshine, MiniLM, the extractive answer, pyttsx3/espeak-ng, AEC3 — nothing downloaded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.capture.audio_device import SoundDeviceSource
from app.core.config import Config
from app.core.paths import DataPaths
from tests import pulse
from tests.room import SinkRecorder

RATE = pulse.RATE_HZ
WARM_S = 2.5  # the null sink's first stream stalls about this long after the daemon starts


class Events:
    """Every bus event with its monotonic arrival time."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._cond:
            self.items.append((time.monotonic(), event))
            self._cond.notify_all()

    def of(self, kind: type | tuple[type, ...], since: int = 0) -> list[Any]:
        with self._cond:
            return [e for _, e in self.items[since:] if isinstance(e, kind)]

    def timed(self, kind: type, since: int = 0) -> list[tuple[float, Any]]:
        with self._cond:
            return [(t, e) for t, e in self.items[since:] if isinstance(e, kind)]

    def wait_for(self, kind: type, timeout_s: float, since: int = 0,
                 where: Any = None) -> Any:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for _, e in self.items[since:]:
                    if isinstance(e, kind) and (where is None or where(e)):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [type(e).__name__ for _, e in self.items[since:]]
                    raise AssertionError(f"no {kind.__name__} within {timeout_s} s: {kinds}")
                self._cond.wait(left)

    @property
    def index(self) -> int:
        with self._cond:
            return len(self.items)


class VoiceRig:
    """`with VoiceRig(tmp_path, room_ir=…) as rig:` the service listens on the FIFO microphone
    and speaks on the null sink (recorded in `rig.sink`)."""

    def __init__(self, tmp_path: Path, *, room_ir: np.ndarray | None = None,
                 speak: str = "spoken", echo_cancellation: bool = True,
                 assistant: dict[str, Any] | None = None) -> None:
        self.pulse = pulse.PulseServer(tmp_path, room_ir=room_ir)
        self.cfg = Config().replace(
            memory={"summaries": False},
            assistant={"speak": speak, "echo_cancellation": echo_cancellation,
                       **(assistant or {})})
        self.paths = DataPaths(tmp_path / "data").ensure()
        self.events = Events()
        self.service: Any = None
        self.sink: SinkRecorder | None = None
        self.source: SoundDeviceSource | None = None

    def __enter__(self) -> VoiceRig:
        from app.pipeline.runtime import EventBus
        from app.pipeline.service import DaybookService

        self.pulse.start()
        try:
            self.sink = SinkRecorder(self.pulse)
            bus = EventBus()
            bus.subscribe(self.events)  # first: times are taken before the service reacts
            self.service = DaybookService(self.cfg, self.paths, bus=bus)
            speaker = self.service.open_voice()
            assert speaker.available, speaker.reason
            self.source = SoundDeviceSource("default")
            self.service.start(audio=self.source, video=None)
            time.sleep(WARM_S)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.service is not None:
            self.service.close()
        if self.sink is not None:
            self.sink.close()
        self.pulse.close()

    def feed(self, *pieces: np.ndarray) -> float:
        """Queue audio into the microphone; returns when (monotonic, roughly) it starts."""
        t = time.monotonic()
        for pcm in pieces:
            self.pulse.feed(pcm)
        return t

    @property
    def echo(self) -> Any:
        assert self.source is not None
        return self.source.echo


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def sound_spans(pcm: np.ndarray, times: np.ndarray, threshold: int = 200,
                gap_s: float = 0.6) -> list[tuple[float, float]]:
    """(start, end) monotonic times of the stretches of sound, split at gaps over `gap_s`."""
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > threshold)[0]
    spans: list[tuple[float, float]] = []
    for i in loud:
        t = float(times[i])
        if spans and t - spans[-1][1] <= gap_s:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((t, t))
    return spans
