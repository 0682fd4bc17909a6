"""Frames from a camera index, a video file or a stream URL (RTSP, HTTP: a phone or an IP
camera), through OpenCV.

A live source that stops delivering (a camera unplugged, a stream whose sender went away or fell
silent for `STREAM_TIMEOUT_S`) raises InputError; the capture thread (app/pipeline/workers.py)
reports it lost and calls `reopen` with back-off until it delivers again. A file ends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# FFmpeg inside OpenCV prints every failed connection while a lost stream is retried
# ("[tcp @ 0x…] Connection refused"), and OpenCV a warning for each source it cannot open
# ("[ WARN:0@0.025] global cap.cpp:212 open VIDEOIO(FFMPEG): …"); the capture thread says the
# loss once, itself. FFmpeg quiet (AV_LOG_QUIET; read when OpenCV first opens a stream) unless
# the user set it, OpenCV's warnings off.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2

from app.core.errors import InputError
from app.core.events import FrameCaptured

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

log = logging.getLogger(__name__)

# How long a stream may take to open, or go without a frame, before it counts as lost. OpenCV's
# FFmpeg backend otherwise waits 30 s to open and, on a stream that stops sending, for ever.
STREAM_TIMEOUT_S = 5.0


def _kind(spec: str) -> str:
    if spec.isdigit():
        return "camera"
    if "://" in spec:
        return "stream"
    return "file"


class Cv2FrameSource:
    """Yields at most `max_fps` frames per second of media.

    Skipped frames are only grabbed, not decoded to BGR, which keeps replay ingest cheap.
    Files replay with wall-clock times `start_s + position`; cameras and streams are live and
    stamped with the time they were read.
    """

    def __init__(
        self,
        spec: str,
        *,
        max_fps: float = 1.0,
        start_s: float | None = None,
        realtime: bool = False,
    ) -> None:
        self.spec = spec
        self.kind = _kind(spec)
        self.live = self.kind != "file"
        self.max_fps = max_fps
        self.realtime = realtime
        self.start_s = time.time() if start_s is None else start_s
        self.name = f"{self.kind} {Path(spec).name if self.kind == 'file' else spec}"
        self.reconnects = 0  # times it delivered again after it was lost
        self._reopened = False
        if self.kind == "file":
            path = Path(spec)
            if not path.exists():
                raise InputError(f"video file not found: {spec}")
            if path.is_dir():
                raise InputError(f"video path is a directory, not a video file: {spec}")
            if path.stat().st_size == 0:
                raise InputError(f"video file is empty: {spec}")
            try:
                with path.open("rb"):
                    pass
            except PermissionError as exc:
                raise InputError(f"cannot read video file {spec}: permission denied") from exc
        self._cap: Any = self._capture()
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 30.0
        count = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        self.duration_s: float | None = (
            count / self.fps if self.kind == "file" and count > 0 else None
        )
        if self.kind == "file":
            ok, first = self._cap.read()
            if not ok or first is None:
                self._cap.release()
                raise InputError(f"video file has no readable frames: {spec}")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def _capture(self) -> Any:
        """An opened cv2.VideoCapture of the source; InputError when it cannot be opened."""
        spec = self.spec
        if self.kind == "stream":
            ms = int(STREAM_TIMEOUT_S * 1000)
            cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(int(spec) if self.kind == "camera" else spec)
        if not cap.isOpened():
            cap.release()
            what = {
                "camera": f"no camera at index {spec}",
                "stream": f"cannot open stream {spec}",
                "file": f"cannot decode video file {spec} (not a video, or a codec OpenCV lacks)",
            }[self.kind]
            raise InputError(what)
        return cap

    def reopen(self) -> None:
        """Open the lost camera or stream again (from the capture thread, between tries).
        Raises InputError while it cannot be opened."""
        self.close()
        self._cap = self._capture()
        self._reopened = True
        log.info("%s opened again", self.name)

    def frames(self, stop: threading.Event) -> Iterator[FrameCaptured]:
        min_gap_s = 1.0 / self.max_fps
        next_due_s = 0.0
        index = -1
        wall_start = time.monotonic()
        try:
            while not stop.is_set():
                if not self._cap.grab():
                    if self.live and not stop.is_set():
                        what = "camera" if self.kind == "camera" else "stream"
                        raise InputError(f"the {what} {self.spec} stopped delivering frames")
                    break
                if self._reopened:
                    self._reopened = False
                    self.reconnects += 1
                index += 1
                if self.live:
                    t_s = time.time()
                    offset_s = t_s - self.start_s
                else:
                    offset_s = index / self.fps
                    t_s = self.start_s + offset_s
                # Half a frame of slack so 1 fps from 30 fps lands on every 30th frame.
                if offset_s + 0.5 / self.fps < next_due_s:
                    continue
                ok, image = self._cap.retrieve()
                if not ok or image is None:
                    continue
                next_due_s = max(next_due_s + min_gap_s, offset_s + 0.5 * min_gap_s)
                if self.realtime and not self.live:
                    delay = wall_start + offset_s - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                yield FrameCaptured(image=image, t_s=t_s, index=index)
        finally:
            if not self.live:
                self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
