"""The OpenCV frame source on real media: a file made with ffmpeg, an HTTP stream on loopback,
and a camera index with no camera behind it."""

from __future__ import annotations

import functools
import http.server
import queue
import socket
import subprocess
import threading
import time
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


# --- a live stream lost and recovered ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_stream(url: str) -> subprocess.Popen[bytes]:
    """ffmpeg as a live camera on loopback: a test pattern at real-time pace, MPEG-TS over HTTP
    (it serves one client, then exits)."""
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=10", "-c:v", "libx264", "-preset", "ultrafast", "-tune",
         "zerolatency", "-g", "10", "-f", "mpegts", "-listen", "1", url],
        stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_stream_killed_and_restarted_is_recovered_with_the_gap_in_the_timeline() -> None:
    from app.core.config import VideoConfig
    from app.core.events import ClipClosed, SourceEnded, SourceLost, SourceRecovered
    from app.memory.base import Moment
    from app.perception.clips import ClipBuilder
    from app.pipeline.runtime import EventBus, Inbox
    from app.pipeline.workers import CaptureThread
    from app.ui.timeline_model import group_by_hour

    url = f"http://127.0.0.1:{_free_port()}/live.ts"
    server = _serve_stream(url)
    events: list[object] = []
    bus, inbox, stop = EventBus(), Inbox[object]("clips", 10_000), threading.Event()
    bus.subscribe(events.append)
    try:
        deadline = time.monotonic() + 10
        while True:  # the server listens a moment after it starts
            try:
                source = Cv2FrameSource(url, max_fps=1.0)
                break
            except InputError:
                assert time.monotonic() < deadline, "the loopback stream never opened"
                time.sleep(0.2)
        capture = CaptureThread("capture-video", source, inbox, bus, stop, threading.Event())
        capture.retry_delays_s = (0.2, 0.5, 1.0)
        capture.start()
        builder, clips, frames = ClipBuilder(VideoConfig()), [], []

        def take(until_s: float) -> None:
            while time.monotonic() < until_s:
                try:
                    item = inbox.get(0.1)
                except queue.Empty:
                    continue
                if not isinstance(item, SourceEnded):
                    frames.append(item)
                    clips.extend([c] if (c := builder.push(item)) else [])

        take(time.monotonic() + 4.0)
        server.kill()  # the camera goes away mid-recording
        server.wait()
        killed_at = time.time()
        take(time.monotonic() + 4.0)
        assert any(isinstance(e, SourceLost) for e in events), "the loss was not noticed"
        server = _serve_stream(url)  # and comes back
        restarted_at = time.time()
        deadline = time.monotonic() + 20
        while not any(isinstance(e, SourceRecovered) for e in events):
            take(time.monotonic() + 0.2)
            assert time.monotonic() < deadline, "the stream was not recovered"
        take(time.monotonic() + 4.0)
        stop.set()
        capture.join(10)
        clips.extend([c] if (c := builder.flush()) else [])
    finally:
        stop.set()
        server.kill()
        server.wait()
    lost = next(e for e in events if isinstance(e, SourceLost))
    assert "stopped delivering frames" in lost.message
    assert source.reconnects == 1 and not capture.failed
    before = [f for f in frames if f.t_s < killed_at]
    after = [f for f in frames if f.t_s > restarted_at]
    assert len(before) >= 3 and len(after) >= 3
    assert all(isinstance(c, ClipClosed) for c in clips)
    # No clip spans the time the camera was away; the timeline shows it as a gap.
    assert not any(c.t0_s < killed_at and c.t1_s > restarted_at for c in clips)
    moments = [Moment(c.id, "clip", c.t0_s, c.t1_s, n_frames=c.n_frames) for c in clips]
    lanes = group_by_hour(moments)
    gap_s = sum(lane.gap_s for lane in lanes)
    assert restarted_at - killed_at - 1.0 <= gap_s <= restarted_at - killed_at + 8.0, gap_s
