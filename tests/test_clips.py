from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from app.core.config import VideoConfig
from app.core.events import ClipClosed, FrameCaptured
from app.perception.clips import GLOBAL_VECTOR_DIM, ClipBuilder, global_vector
from tests import mediagen


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


# --- on video made with ffmpeg, through the real frame source --------------------------------

GREY, DIM = "color=c=0x808080", "color=c=0x1c1c1c"
DARK_BOX = "drawbox=x=240:y=160:w=160:h=160:color=0x303030:t=fill"  # a book on the wall
LAMP = "drawbox=x=60:y=60:w=120:h=120:color=0xe0e0d0:t=fill"  # a lamp lit in the dim room


def _clips_of(path: Path) -> list[ClipClosed]:
    from app.capture.video import Cv2FrameSource

    builder = ClipBuilder(VideoConfig())
    source = Cv2FrameSource(str(path), max_fps=1.0, start_s=0.0)
    clips = [c for f in source.frames(threading.Event()) if (c := builder.push(f))]
    last = builder.flush()
    return clips + ([last] if last else [])


@pytest.mark.slow
@pytest.mark.parametrize("scene", [GREY, DIM, "color=c=0xd8c8a8"])
def test_a_steady_plain_noisy_surface_is_not_cut(tmp_path: Path, scene: str) -> None:
    """30 s of a plain, evenly lit wall seen by a noisy camera (before: 30 clips, one a second,
    a similarity of ≈0.4 between two frames of it): cut only where a clip reaches its
    16 frames."""
    clips = _clips_of(mediagen.video(tmp_path / "wall.mp4", [(scene, mediagen.SENSOR_NOISE, 30)]))
    assert [c.n_frames for c in clips] == [16, 14]


@pytest.mark.slow
def test_clips_are_cut_at_the_scene_changes_of_a_video(tmp_path: Path) -> None:
    """Low-texture changes among busy ones: a book put on a plain wall, the light going out, a
    lamp lit in the dark, then two test patterns. Each cut within two sampled frames of its
    change, none inside a scene."""
    scenes = [(GREY, mediagen.SENSOR_NOISE, 7.0),
              (GREY, f"{DARK_BOX},{mediagen.SENSOR_NOISE}", 6.0),
              (DIM, mediagen.SENSOR_NOISE, 8.0),
              (DIM, f"{LAMP},{mediagen.SENSOR_NOISE}", 6.0),
              ("testsrc2", "", 5.0),
              ("smptebars", mediagen.SENSOR_NOISE, 6.0)]
    changes = list(itertools.accumulate(s for _, _, s in scenes))[:-1]
    clips = _clips_of(mediagen.video(tmp_path / "day.mp4", scenes))
    starts = [c.t0_s for c in clips[1:]]
    assert len(starts) == len(changes), [(c.t0_s, c.n_frames) for c in clips]
    for change, start in zip(changes, starts, strict=True):
        assert change <= start <= change + 2.0, (changes, starts)


@pytest.mark.slow
def test_near_identical_scenes_match_better_than_different_ones(tmp_path: Path) -> None:
    """The key frames of the same wall filmed twice (fresh noise) match each other better than
    any of them matches another scene."""
    video = mediagen.video(tmp_path / "v.mp4", [
        (GREY, mediagen.SENSOR_NOISE, 4.0), (DIM, mediagen.SENSOR_NOISE, 4.0),
        (GREY, mediagen.SENSOR_NOISE, 4.0), ("testsrc2", "", 4.0),
        (GREY, f"{DARK_BOX},{mediagen.SENSOR_NOISE}", 4.0), ("testsrc2", "", 4.0)])
    v = [global_vector(c.key_frame) for c in _clips_of(video)]
    assert len(v) == 6
    same = [(0, 2), (3, 5)]
    different = [(i, j) for i in range(6) for j in range(i + 1, 6) if (i, j) not in same]
    worst_same = min(float(v[i] @ v[j]) for i, j in same)
    best_different = max(float(v[i] @ v[j]) for i, j in different)
    assert worst_same > 0.95 and best_different < worst_same - 0.2, (worst_same, best_different)
