"""Short-term visual memory: sampled frames → clips, each with a key frame and a global vector.

A clip is cut when a frame's similarity to the clip's first frame drops under a threshold (a scene
change; the paper: 0.9), or when it reaches `max_clip_frames` (the paper: 16) / `max_clip_s`.
Frames are compared through a `FrameEncoder`. The default, `AppearanceEncoder`, is a cheap
appearance descriptor (≈1 ms a 640×480 frame): a mean-centred 16×12 grey thumbnail (layout) and a
soft 4×4×4 colour histogram (palette), so cosine similarity compares scenes.

Both parts are made to hold on a plain, evenly lit surface with ordinary sensor noise, where the
first version cut a new clip every second (a similarity of ≈0.4 between two frames of the same
wall): the layout is divided by its contrast only down to `LAYOUT_FLOOR` (a featureless frame's
noise stays a small vector instead of being blown up to a random unit one), and each pixel's
colour is shared between its two nearest bins per channel (a surface whose colour sits on a bin
edge no longer jumps from bin to bin with the noise).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from app.core.config import VideoConfig
from app.core.events import ClipClosed, FrameCaptured

GLOBAL_VECTOR_DIM = 16 * 12 + 64
_LAYOUT_WEIGHT = 0.8
_COLOUR_WEIGHT = 0.6
# The layout's contrast (RMS over the 16×12 cells, in grey levels) below which a frame counts
# as featureless: 4 grey levels a cell. Sensor noise averaged over a cell (40×40 pixels at
# 640×480) is a fraction of a level; a hand, a book or a doorway on a wall is tens of levels.
LAYOUT_FLOOR = 4.0 * float(np.sqrt(16 * 12))
_BIN_WIDTH = 64.0
GAP_FRAMES = 3  # this many sampled frames missing (and at least GAP_MIN_S) end a clip
GAP_MIN_S = 2.0  # 4 bins per channel, centred on 32, 96, 160, 224


class FrameEncoder(Protocol):
    """A frame (BGR uint8) → a unit vector whose dot products compare scenes."""

    name: str
    dim: int

    def encode(self, image: np.ndarray) -> np.ndarray: ...


def _soft_histogram(small: np.ndarray) -> np.ndarray:
    """A 4×4×4 colour histogram where each pixel is shared, per channel, between the two bins
    whose centres are nearest (linear weights), L2-normalised."""
    x = small.reshape(-1, 3).astype(np.float32) / _BIN_WIDTH - 0.5
    x = np.clip(x, 0.0, 3.0)
    lo = np.minimum(np.floor(x).astype(np.int32), 2)
    hi_w = x - lo  # the weight of bin lo + 1
    hist = np.zeros(64, np.float32)
    for corner in range(8):
        pick = [(corner >> c) & 1 for c in range(3)]
        idx = np.zeros(len(x), np.int32)
        w = np.ones(len(x), np.float32)
        for c in range(3):
            idx = idx * 4 + lo[:, c] + pick[c]
            w *= hi_w[:, c] if pick[c] else 1.0 - hi_w[:, c]
        hist += np.bincount(idx, weights=w, minlength=64).astype(np.float32)
    return hist / (float(np.linalg.norm(hist)) or 1.0)


def global_vector(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA)
    # In float from here: rounding the 16×12 thumbnail to whole grey levels alone gave a plain
    # surface a layout of ±0.5 levels a cell, 12 % of the floor.
    grey = np.asarray(cv2.resize(cv2.cvtColor(small.astype(np.float32), cv2.COLOR_BGR2GRAY),
                                 (16, 12), interpolation=cv2.INTER_AREA), np.float32).reshape(-1)
    grey = (grey - grey.mean()) / max(float(np.linalg.norm(grey - grey.mean())), LAYOUT_FLOOR)
    vec = np.concatenate([grey * _LAYOUT_WEIGHT, _soft_histogram(small) * _COLOUR_WEIGHT])
    return vec / (float(np.linalg.norm(vec)) or 1.0)


class AppearanceEncoder:
    """The default frame encoder: layout and palette (`global_vector`)."""

    name = "appearance (layout + colour)"
    dim = GLOBAL_VECTOR_DIM

    def encode(self, image: np.ndarray) -> np.ndarray:
        return global_vector(image)


class ClipBuilder:
    def __init__(self, cfg: VideoConfig, encoder: FrameEncoder | None = None) -> None:
        self.cfg = cfg
        self.encoder = encoder or AppearanceEncoder()
        self._frames: list[FrameCaptured] = []
        self._first_vec: np.ndarray | None = None
        self._vecs: list[np.ndarray] = []

    def push(self, frame: FrameCaptured) -> ClipClosed | None:
        vec = self.encoder.encode(frame.image)
        closed = None
        if self._frames and frame.t_s - self._frames[-1].t_s > self._gap_s():
            # No frames for a while (the camera lost, the recording paused): the clip ends
            # where its frames did, so the time nothing was seen stays a gap between clips.
            closed = self.flush()
        if self._frames:
            assert self._first_vec is not None
            similarity = float(vec @ self._first_vec)
            span_s = frame.t_s - self._frames[0].t_s
            if (
                similarity < self.cfg.clip_similarity_threshold
                or len(self._frames) >= self.cfg.max_clip_frames
                or span_s >= self.cfg.max_clip_s
            ):
                closed = self._close(end_s=frame.t_s)
        if not self._frames:
            self._first_vec = vec
        self._frames.append(frame)
        self._vecs.append(vec)
        return closed

    def _gap_s(self) -> float:
        return max(GAP_FRAMES / self.cfg.sample_fps, GAP_MIN_S)

    def flush(self) -> ClipClosed | None:
        if not self._frames:
            return None
        gap_s = 1.0 / self.cfg.sample_fps
        return self._close(end_s=self._frames[-1].t_s + gap_s)

    def _close(self, end_s: float) -> ClipClosed:
        frames, vecs = self._frames, self._vecs
        self._frames, self._vecs, self._first_vec = [], [], None
        mean = np.mean(vecs, axis=0)
        mean /= float(np.linalg.norm(mean)) or 1.0
        # The key frame is the most typical one: closest to the clip's mean appearance.
        key = frames[int(np.argmax([v @ mean for v in vecs]))]
        t0 = frames[0].t_s
        return ClipClosed(
            id=f"clip-{round(t0 * 1000)}",
            t0_s=t0,
            t1_s=end_s,
            n_frames=len(frames),
            key_frame=key.image,
            global_vector=mean,
        )
