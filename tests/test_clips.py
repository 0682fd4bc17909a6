from __future__ import annotations

import numpy as np

from app.core.config import VideoConfig
from app.core.events import FrameCaptured
from app.perception.clips import GLOBAL_VECTOR_DIM, ClipBuilder, global_vector


def _scene(seed: int, noise: float = 0.0, frame: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    img = np.kron(base, np.ones((60, 80, 1), np.uint8))  # 360x640 blocks
    if noise:
        jitter = np.random.default_rng(1000 + frame).normal(0, noise, img.shape)
        img = np.clip(img + jitter, 0, 255).astype(np.uint8)
    return img


def test_global_vector_is_unit_and_separates_scenes() -> None:
    a, a2, b = global_vector(_scene(1)), global_vector(_scene(1, noise=8, frame=3)), \
        global_vector(_scene(2))
    assert a.shape == (GLOBAL_VECTOR_DIM,)
    assert np.linalg.norm(a) == np.float32(1.0) or abs(np.linalg.norm(a) - 1) < 1e-5
    assert a @ a2 > 0.95  # sensor noise does not look like a new scene
    assert a @ b < 0.8


def test_global_vector_of_flat_frames_is_finite() -> None:
    v = global_vector(np.zeros((240, 320, 3), np.uint8))
    assert np.all(np.isfinite(v))


def _frames(seeds: list[int]) -> list[FrameCaptured]:
    return [FrameCaptured(_scene(s, noise=5, frame=i), t_s=100.0 + i, index=i)
            for i, s in enumerate(seeds)]


def test_clips_cut_at_scene_changes_with_times_and_key_frames() -> None:
    builder = ClipBuilder(VideoConfig())
    clips = [c for f in _frames([1] * 5 + [2] * 4 + [3] * 3) if (c := builder.push(f))]
    last = builder.flush()
    assert last is not None
    clips.append(last)
    assert [c.n_frames for c in clips] == [5, 4, 3]
    assert [(c.t0_s, c.t1_s) for c in clips] == [(100.0, 105.0), (105.0, 109.0), (109.0, 112.0)]
    assert clips[0].id == "clip-100000"
    # the key frame comes from the clip's own scene
    assert float(global_vector(clips[1].key_frame) @ global_vector(_scene(2))) > 0.95
    assert builder.flush() is None


def test_clips_cut_at_max_frames_and_max_seconds() -> None:
    builder = ClipBuilder(VideoConfig(max_clip_frames=4))
    sizes = [c.n_frames for f in _frames([1] * 10) if (c := builder.push(f))]
    assert sizes == [4, 4]
    builder = ClipBuilder(VideoConfig(max_clip_s=3.0))
    spans = [c.t1_s - c.t0_s for f in _frames([1] * 10) if (c := builder.push(f))]
    assert spans == [3.0, 3.0, 3.0]
