"""Short-term visual memory: sampled frames → clips, each with a key frame and a global vector.

A clip is cut when a frame's similarity to the clip's first frame drops under a threshold (a scene
change), or when it reaches `max_clip_frames` / `max_clip_s`. The global vector is a cheap
appearance descriptor: a mean-centred 16×12 grey thumbnail (layout) and a 4×4×4 colour histogram
(palette), each L2-normalised, so cosine similarity compares scenes.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.core.config import VideoConfig
from app.core.events import ClipClosed, FrameCaptured

GLOBAL_VECTOR_DIM = 16 * 12 + 64
_LAYOUT_WEIGHT = 0.8
_COLOUR_WEIGHT = 0.6


def global_vector(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA)
    grey = (
        cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (16, 12), interpolation=cv2.INTER_AREA)
        .astype(np.float32)
        .reshape(-1)
    )
    grey -= grey.mean()
    grey /= float(np.linalg.norm(grey)) + 1.0  # +1: a flat frame stays near zero, not noise
    bins = (small // 64).reshape(-1, 3).astype(np.int32)
    hist = np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64)
    colour = hist.astype(np.float32)
    colour /= float(np.linalg.norm(colour)) or 1.0
    vec = np.concatenate([grey * _LAYOUT_WEIGHT, colour * _COLOUR_WEIGHT])
    return vec / (float(np.linalg.norm(vec)) or 1.0)


class ClipBuilder:
    def __init__(self, cfg: VideoConfig) -> None:
        self.cfg = cfg
        self._frames: list[FrameCaptured] = []
        self._first_vec: np.ndarray | None = None
        self._vecs: list[np.ndarray] = []

    def push(self, frame: FrameCaptured) -> ClipClosed | None:
        vec = global_vector(frame.image)
        closed = None
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
