"""The OpenCV frame source on real media: a file made with ffmpeg, an HTTP stream on loopback,
and a camera index with no camera behind it."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path

import pytest

from app.capture.video import Cv2FrameSource
from app.core.errors import InputError
from tests.conftest import SCENE_S, Media


def test_file_replay_samples_one_frame_per_second_with_wall_clock_times(media: Media) -> None:
    src = Cv2FrameSource(str(media.video), max_fps=1.0, start_s=1000.0)
    assert not src.live and src.fps == 10.0
    assert src.duration_s == pytest.approx(sum(SCENE_S), abs=0.2)
    frames = list(src.frames(threading.Event()))
    assert [round(f.t_s - 1000.0, 3) for f in frames] == [float(i) for i in range(26)]
    assert [f.index for f in frames[:3]] == [0, 10, 20]
    assert frames[0].image.shape == (240, 320, 3)


def test_higher_sampling_rate_and_stop(media: Media) -> None:
    src = Cv2FrameSource(str(media.video), max_fps=2.0, start_s=0.0)
    stop = threading.Event()
    got = []
    for f in src.frames(stop):
        got.append(f.t_s)
        if len(got) == 5:
            stop.set()
    assert got == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_no_camera_at_that_index() -> None:
    with pytest.raises(InputError, match="no camera at index 7"):
        Cv2FrameSource("7")


@pytest.fixture
def http_server(media: Media):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(media.dir))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_stream_url_is_live(http_server: str, media: Media) -> None:
    # MPEG-TS: a format made for streaming (an MP4 needs seeking, which this server lacks).
    ts = media.dir / "scenes.ts"
    if not ts.exists():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(media.video), "-c",
                        "copy", "-f", "mpegts", str(ts)], check=True)
    src = Cv2FrameSource(f"{http_server}/scenes.ts", max_fps=30.0)
    assert src.live and src.kind == "stream"
    frames = []
    for f in src.frames(threading.Event()):
        frames.append(f)
        if len(frames) == 3:
            break
    assert len(frames) == 3 and frames[0].image.shape == (240, 320, 3)
    assert frames[0].t_s <= frames[1].t_s <= frames[2].t_s


def test_stream_that_does_not_answer(http_server: str) -> None:
    with pytest.raises(InputError, match="cannot open stream"):
        Cv2FrameSource(f"{http_server}/missing.mp4")


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        Cv2FrameSource(str(tmp_path))
