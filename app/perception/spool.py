"""Utterances whose recognition failed, kept (audio and all) to be transcribed again.

With a folder, each one is a WAV plus a small JSON beside it, so they survive a restart; without
one (tests, a pipeline with no data dir) they are kept in RAM for this run.
"""

from __future__ import annotations

import json
import logging
import os
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Untranscribed:
    id: str
    t0_s: float
    t1_s: float
    sound: str
    sample_rate_hz: int
    pcm: np.ndarray


class UntranscribedSpool:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._items: dict[str, Untranscribed] = {}
        if folder is not None and folder.is_dir():  # left by an earlier run
            for meta_path in folder.glob("*.json"):
                try:
                    meta = json.loads(meta_path.read_text(encoding="utf-8"))
                    with wave.open(str(meta_path.with_suffix(".wav")), "rb") as w:
                        rate = w.getframerate()
                        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").copy()
                    self._items[meta["id"]] = Untranscribed(
                        str(meta["id"]), float(meta["t0_s"]), float(meta["t1_s"]),
                        str(meta["sound"]), rate, pcm)
                except (OSError, ValueError, KeyError, EOFError, wave.Error) as exc:
                    log.warning("skipping unreadable %s: %s", meta_path, exc)
            if self._items:
                log.info("%d untranscribed utterance(s) from an earlier run", len(self._items))

    def add(self, item: Untranscribed) -> None:
        self._items[item.id] = item
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            wav = self.folder / f"{item.id}.wav"
            with wave.open(str(wav), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(item.sample_rate_hz)
                w.writeframes(item.pcm.astype("<i2").tobytes())
            meta = {"id": item.id, "t0_s": item.t0_s, "t1_s": item.t1_s, "sound": item.sound}
            tmp = wav.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, wav.with_suffix(".json"))
        except OSError as exc:  # kept in RAM for this run all the same
            log.error("could not save an untranscribed utterance to %s: %s", self.folder, exc)

    def pending(self) -> list[Untranscribed]:
        """Oldest first."""
        return sorted(self._items.values(), key=lambda u: u.t0_s)

    def done(self, id_: str) -> None:
        self._items.pop(id_, None)
        if self.folder is not None:
            for suffix in (".json", ".wav"):
                (self.folder / f"{id_}{suffix}").unlink(missing_ok=True)

    def forget(self, doomed: Callable[[float, str], bool]) -> int:
        """Drop kept utterances the user deleted, `doomed(t0_s, id)`; returns how many."""
        gone = [u.id for u in list(self._items.values()) if doomed(u.t0_s, u.id)]
        for id_ in gone:
            self.done(id_)
        return len(gone)

    def __contains__(self, id_: str) -> bool:
        return id_ in self._items

    def __len__(self) -> int:
        return len(self._items)
