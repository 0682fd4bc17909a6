"""Seeing benchmark: what the camera half costs, and what it keeps.

  real time   a 640×480, 30 fps input (MJPEG, as most webcams send it) replayed at its own pace
              through the real path: OpenCV capture (every frame grabbed, one a second decoded
              to BGR), sampling, the frame encoder and clip cutting, key frames written as JPEG;
              CPU % of one core over the run (target ≤ 5 %)
  flat out    the same input with every frame decoded and encoded, as fast as it goes (frames
              per second)
  key frames  JPEG bytes written per recorded hour, for a steady scene (a clip every 16 s) and
              for the busy test video (a scene change every 6–8 s)
  captions    latency per key frame in the captioner's child process: a tiny generated model
              pair (random weights: the path's own cost), and the vision model installed in a
              model manager's folder (--models-dir DATA_DIR/models); none ships by default
Writes bench/out/seeing.json.

    python bench/seeing.py [--seconds 60] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.capture.video import Cv2FrameSource  # noqa: E402
from app.core.config import VideoConfig  # noqa: E402
from app.memory.keyframes import KeyFrameDir  # noqa: E402
from app.perception.clips import ClipBuilder  # noqa: E402
from tests import mediagen  # noqa: E402

OUT = ROOT / "bench" / "out"
BUSY = [("testsrc2", mediagen.SENSOR_NOISE, 7.0), ("color=c=0x808080", mediagen.SENSOR_NOISE, 6.0),
        ("smptebars", mediagen.SENSOR_NOISE, 8.0), ("color=c=0x1c1c1c", mediagen.SENSOR_NOISE, 6.0),
        ("rgbtestsrc", mediagen.SENSOR_NOISE, 7.0), ("pal75bars", mediagen.SENSOR_NOISE, 6.0)]


def _mjpeg(path: Path, scenes: list[tuple[str, str, float]], seconds: float) -> Path:
    """`scenes` repeated to `seconds`, 640×480 at 30 fps, MJPEG in AVI (a webcam's format)."""
    reps: list[tuple[str, str, float]] = []
    while sum(s for _, _, s in reps) < seconds:
        reps += scenes
    h264 = mediagen.video(path.with_suffix(".mp4"), reps, size="640x480", fps=30)
    import subprocess

    subprocess.run([mediagen.require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(h264),
                    "-t", str(seconds), "-c:v", "mjpeg", "-q:v", "5", str(path)], check=True)
    return path


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_real_time(video: Path, key_dir: Path) -> dict[str, Any]:
    cfg = VideoConfig()
    builder, keys = ClipBuilder(cfg), KeyFrameDir(key_dir, max_width=cfg.key_frame_max_width,
                                                  jpeg_quality=cfg.jpeg_quality)
    source = Cv2FrameSource(str(video), max_fps=cfg.sample_fps, start_s=0.0, realtime=True)
    clips, jpeg_bytes = 0, 0
    wall0, cpu0 = time.monotonic(), _cpu_s()
    for frame in source.frames(threading.Event()):
        clip = builder.push(frame)
        for c in [clip] if clip else []:
            rel = keys.write(c.key_frame, c.t0_s + 1e9, c.t1_s + 1e9)
            jpeg_bytes += (key_dir / rel).stat().st_size
            clips += 1
    wall, cpu = time.monotonic() - wall0, _cpu_s() - cpu0
    seconds = source.duration_s or wall
    return {"seconds": round(seconds, 1), "cpu_percent_of_one_core": round(100 * cpu / wall, 2),
            "target_percent": 5.0, "clips": clips,
            "key_frame_bytes_per_hour": round(jpeg_bytes / seconds * 3600)}


def run_flat_out(video: Path) -> dict[str, Any]:
    builder = ClipBuilder(VideoConfig())
    source = Cv2FrameSource(str(video), max_fps=1000.0, start_s=0.0)
    n = 0
    t0 = time.monotonic()
    for frame in source.frames(threading.Event()):
        builder.push(frame)
        n += 1
    return {"frames": n, "frames_per_s": round(n / (time.monotonic() - t0), 1)}


def _caption_latency(captioner: Any, frames: list[Any]) -> dict[str, Any]:
    captioner.caption(frames[0])  # the model loads in the child at its first call
    times, words = [], []
    for frame in frames:
        t0 = time.monotonic()
        words.append(captioner.caption(frame))
        times.append(time.monotonic() - t0)
    times.sort()
    return {"name": captioner.name, "frames": len(frames),
            "p50_s": round(times[len(times) // 2], 3), "max_s": round(times[-1], 3),
            "example": words[-1]}


def captions(models_dir: Path | None, tmp: Path) -> dict[str, Any]:
    """Caption latency per key frame, in the child process: the tiny generated pair (random
    weights: the path's own cost) and the vision model installed in `models_dir`, if any."""
    import numpy as np

    from app.core.config import Config
    from app.models.catalog import load_catalog
    from app.models.manager import ModelManager
    from app.perception.caption import LlamaCaptioner
    from app.pipeline.factory import make_captioner
    from tests.vision_model import tiny_vision_pair

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (480, 640, 3), np.uint8) for _ in range(5)]
    out: dict[str, Any] = {}
    text, mmproj, _ = tiny_vision_pair(tmp / "tiny-vision")
    tiny = LlamaCaptioner(text, mmproj, label="tiny generated pair (random weights)")
    try:
        out["tiny_generated_pair"] = _caption_latency(tiny, frames)
    finally:
        tiny.close()
    real = make_captioner(Config(), ModelManager(models_dir, load_catalog())) \
        if models_dir is not None else None
    if real is None:
        out["installed"] = "no vision model installed (none ships by default)"
    else:
        try:
            out["installed"] = _caption_latency(real, frames)
        finally:
            real.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(),
                                          "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as tmp:
        busy = _mjpeg(Path(tmp) / "busy.avi", BUSY, args.seconds)
        steady = _mjpeg(Path(tmp) / "steady.avi", [("color=c=0xd8c8a8", mediagen.SENSOR_NOISE,
                                                    args.seconds)], args.seconds)
        for name, video in (("busy", busy), ("steady", steady)):
            print(f"real time, {name} scene ({args.seconds:.0f} s)…", flush=True)
            result[f"real_time_{name}"] = run_real_time(video, Path(tmp) / f"keys-{name}")
            print(json.dumps(result[f"real_time_{name}"]), flush=True)
        print("flat out…", flush=True)
        result["flat_out"] = run_flat_out(busy)
        print(json.dumps(result["flat_out"]), flush=True)
        print("captions…", flush=True)
        result["captions"] = captions(args.models_dir, Path(tmp))
        print(json.dumps(result["captions"]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "seeing.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT / 'seeing.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
