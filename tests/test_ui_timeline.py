"""The memory timeline window, offscreen, on a real service (Chroma on a temp dir, key-frame JPEGs).

Moments are written straight into the store; the window reads them back through the service the
way the app does. Live updates arrive as events emitted from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import PySide6
import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QAbstractItemView

from app.core.config import Config
from app.core.events import MomentsDeleted, MomentsStored
from app.core.paths import DataPaths
from app.core.timefmt import day_bounds
from app.memory.base import Moment
from app.pipeline.service import DaybookService
from app.ui.timeline import TimelineWindow
from app.ui.timeline_model import COMPACT_THUMB, HourRole, moment_t0_from_id

DAY = "2026-11-24"  # a Tuesday
NEXT_DAY = "2026-11-25"
START_S = day_bounds(DAY)[0]  # local midnight


def at(hour: int, minute: int = 0, second: int = 0, day_start_s: float = START_S) -> float:
    return day_start_s + hour * 3600 + minute * 60 + second


def picture(seed: int, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(30, 220, 3)
    for _ in range(3):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(img, center, int(rng.integers(15, 80)), color, -1)
    return img


def clip(service: DaybookService, t0_s: float, text: str = "", seed: int = 0,
         key_frame: str | None = None) -> tuple[Moment, np.ndarray]:
    rel = key_frame or service.key_frames.write(picture(seed), t0_s, t0_s + 8)
    m = Moment(f"clip-{round(t0_s * 1000)}", "clip", t0_s, t0_s + 8, text=text, key_frame=rel,
               n_frames=8)
    return m, np.ones(256, np.float32) / 16


def utterance(service: DaybookService, t0_s: float, text: str,
              sound: str = "speech") -> tuple[Moment, np.ndarray]:
    m = Moment(f"utt-{round(t0_s * 1000)}", "utterance", t0_s, t0_s + 3, text=text, sound=sound)
    return m, service.embedder.embed([text or "-"])[0]


def store(service: DaybookService, items: list[tuple[Moment, np.ndarray]]) -> None:
    """Into the memory as the memory worker puts them: a captioned clip with its caption's text
    vector."""
    captions = {m.id: service.embedder.embed([m.text])[0] for m, _ in items
                if m.kind == "clip" and m.text}
    service.store.add(items, service.embedder.name, captions)


@pytest.fixture
def service(tmp_path: Path):
    svc = DaybookService(Config(), DataPaths(tmp_path / "data").ensure())
    yield svc
    svc.close()


@pytest.fixture
def window(qtbot, service: DaybookService) -> TimelineWindow:
    win = TimelineWindow(service)
    win.confirm = lambda question: True
    qtbot.addWidget(win)  # closed at teardown: closeEvent waits for background work
    win.resize(1200, 800)
    return win


@pytest.fixture
def day_moments(service: DaybookService) -> list[Moment]:
    """Eight moments over three hours of DAY, added out of order."""
    items = [
        utterance(service, at(14, 5), "remember to water the tomato plants"),
        clip(service, at(9, 0, 12), seed=1),
        utterance(service, at(9, 0, 25), "I had scrambled eggs and coffee for breakfast"),
        clip(service, at(11, 30), text="a person at a desk", seed=2),
        utterance(service, at(11, 31), "", sound="music"),
        clip(service, at(14, 0), seed=3),
        utterance(service, at(9, 45), "the meeting with Alice is at three o'clock"),
        clip(service, at(9, 50), seed=4),
    ]
    store(service, items)
    return sorted((m for m, _ in items), key=lambda m: m.t0_s)


def show(qtbot, win: TimelineWindow, day: str, timeout_ms: int = 10_000) -> None:
    with qtbot.waitSignal(win.dayLoaded, timeout=timeout_ms) as blocker:
        win.show_day(day)
    assert blocker.args == [day]


def test_day_in_hour_lanes_in_time_order(qtbot, window, day_moments):
    show(qtbot, window, DAY)
    model = window.model
    assert window.current_day() == DAY
    assert [lane.hour for lane in model.lanes()] == [9, 11, 14]
    assert model.rowCount() == 3
    assert [model.rowCount(model.index(r, 0)) for r in range(3)] == [4, 2, 2]
    shown = [model.moment(model.index(r, 0, model.index(h, 0)))
             for h in range(3) for r in range(model.rowCount(model.index(h, 0)))]
    assert [m.id for m in shown if m] == [m.id for m in day_moments]
    assert model.hour_of(model.index(0, 0)) == 9
    assert model.hour_of(model.index(0, 0, model.index(0, 0))) == 9
    assert model.index(0, 0).data(HourRole) == 9  # for Qt's side too
    assert window.day_title.text() == "Tuesday 24 November 2026"
    assert window.day_counts.text() == "8 moments · 4 seen · 4 heard"
    assert window.pages.currentWidget() is window.tree
    assert [window.zoom_box.itemText(i) for i in range(window.zoom_box.count())] == [
        "Whole day", "09:00–10:00 (4)", "11:00–12:00 (2)", "14:00–15:00 (2)"]


def test_thumbnails_load_off_the_gui_thread(qtbot, window, day_moments):
    window.show()
    show(qtbot, window, DAY)
    loader = window.model.loader
    clips = [m for m in day_moments if m.kind == "clip"]
    # Painting asks for the thumbnails; they arrive through `loaded`.
    qtbot.waitUntil(lambda: loader.decoded >= len(clips), timeout=10_000)
    assert loader.decode_threads
    assert threading.main_thread().ident not in loader.decode_threads
    for m in clips:
        pixmap = window.model.thumbnail(window.model.index_of(m.id))
        assert isinstance(pixmap, QPixmap) and not pixmap.isNull()
        # Decoded small (4:3 key frame into the 56x40 box), not at full size.
        assert pixmap.height() == COMPACT_THUMB.height() * pixmap.devicePixelRatio()
        assert pixmap.width() <= COMPACT_THUMB.width() * pixmap.devicePixelRatio()
    assert window.model.thumbnail(window.model.index_of(day_moments[1].id)) is None  # said


def test_search_hit_opens_its_moment_on_its_day(qtbot, window, service, day_moments):
    window.show()
    show(qtbot, window, NEXT_DAY)
    assert window.pages.currentWidget() is window.empty_page
    target = next(m for m in day_moments if "tomato" in m.text)

    with qtbot.waitSignal(window.searchFinished, timeout=10_000) as found:
        window.search("tomato plants")
    assert found.args[0] >= 1
    first = window.hits.index(0, 0)
    assert window.hits.citations[0].moment.id == target.id
    assert window.current_day() == NEXT_DAY  # searching does not move the day

    opened: list[str] = []
    window.momentOpened.connect(opened.append)
    rect = window.hits_view.visualRect(first)
    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        qtbot.mouseClick(window.hits_view.viewport(), Qt.MouseButton.LeftButton,
                         pos=rect.center())
    assert opened == [target.id]  # shown at once, selected in its day once that loaded
    assert window.current_day() == DAY
    assert window.open_moment_id() == target.id
    current = window.model.moment(window.tree.currentIndex())
    assert current is not None and current.id == target.id
    view = window.moment_view
    assert view.title.text() == "14:05:00–14:05:03"
    assert "tomato plants" in view.heard.text()
    assert view.kind.text().endswith("Heard (speech)")


def test_open_moment_by_id_goes_to_its_day(qtbot, window, day_moments):
    show(qtbot, window, NEXT_DAY)
    target = day_moments[3]  # the 09:50 clip
    assert moment_t0_from_id(target.id) == pytest.approx(target.t0_s)
    with qtbot.waitSignal(window.momentOpened, timeout=10_000) as opened:
        window.open_moment(target.id)
    assert opened.args == [target.id]
    assert window.current_day() == DAY
    assert window.moment_view.title.text() == "09:50:00–09:50:08"
    # Opening another moment of the shown day happens at once.
    with qtbot.waitSignal(window.momentOpened, timeout=1000) as again:
        window.open_moment(day_moments[0].id)
    assert again.args == [day_moments[0].id]
    # A moment that is not in memory says so.
    window.open_moment(f"utt-{round(at(20) * 1000)}")
    qtbot.waitUntil(lambda: "no longer" in window.moment_view.placeholder.text(), timeout=5000)
    assert window.open_moment_id() is None


def test_clicking_a_row_opens_it(qtbot, window, day_moments):
    window.show()
    show(qtbot, window, DAY)
    index = window.model.index_of(day_moments[4].id)  # the 11:30 clip with a caption
    window.tree.scrollTo(index)
    rect = window.tree.visualRect(index)
    with qtbot.waitSignal(window.momentOpened, timeout=2000) as opened:
        qtbot.mouseClick(window.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args == [day_moments[4].id]
    assert window.moment_view.caption.text() == "a person at a desk"
    assert window.moment_view.kind.text().endswith("Seen (camera clip, 8 frames)")
    # The key frame arrives in the side panel.
    qtbot.waitUntil(lambda: not window.moment_view.image.pixmap().isNull(), timeout=5000)


def test_episodes_list_mark_and_open(qtbot, window, service, day_moments):
    """The day's episodes: listed in the side panel while no moment is open, drawn as bands on
    the hour strips, named in the moment view; clicking one opens its first moment."""
    window.show()
    show(qtbot, window, DAY)
    view = window.moment_view
    assert view.stack.currentWidget() is view.overview
    assert view.overview_title.text() == "4 episodes"
    items = [view.episode_list.item(i).text() for i in range(view.episode_list.count())]
    assert [line.split("\n")[0] for line in items] == [
        "09:00–09:00  ·  scrambled, coffee, breakfast",
        "09:45–09:50  ·  meeting, alice, o'clock",
        "11:30–11:31  ·  person, desk",  # the clip's caption counts; the music has no words
        "14:00–14:05  ·  remember, water, tomato",
    ]
    assert items[3].split("\n")[1] == "5 min · 1 seen · 1 heard"
    nine = window.model.lanes()[0]
    assert nine.hour == 9 and len(nine.bands) == 2
    assert nine.bands[1][0] == pytest.approx(0.75)  # 09:45

    last = view.episode_list.item(3)
    rect = view.episode_list.visualItemRect(last)
    with qtbot.waitSignal(window.momentOpened, timeout=2000) as opened:
        qtbot.mouseClick(view.episode_list.viewport(), Qt.MouseButton.LeftButton,
                         pos=rect.center())
    assert opened.args == [day_moments[6].id]  # the 14:00 clip begins it
    assert view.stack.currentWidget() is view.details
    assert view.episode.text() == "Episode 14:00–14:05: remember, water, tomato (2 moments)"
    assert view.caption.text().startswith("No caption")  # and says why: no vision model
    assert "Install one in Settings › Models" in view.caption.text()

    qtbot.mouseClick(view.back_button, Qt.MouseButton.LeftButton)
    assert view.stack.currentWidget() is view.overview
    assert window.open_moment_id() is None
    assert not window.tree.selectionModel().hasSelection()

    # Forgetting the breakfast talk leaves that episode as the camera clip alone.
    window.open_moment(day_moments[1].id)
    window.confirm = lambda question: True
    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):  # re-read after the delete
        window.delete_moment()
    assert view.episode_list.item(0).text().startswith("09:00–09:00  ·  camera only")


def test_delete_removes_from_view_store_and_disk(qtbot, window, service, day_moments):
    show(qtbot, window, DAY)
    doomed = day_moments[0]  # the 09:00 clip
    frame = service.key_frames.absolute(doomed.key_frame or "")
    assert frame.is_file()
    window.open_moment(doomed.id)
    assert window.open_moment_id() == doomed.id

    asked: list[str] = []
    window.confirm = lambda question: asked.append(question) is not None  # says no
    assert window.delete_moment() is False
    assert "09:00:12" in asked[0]
    assert window.model.index_of(doomed.id).isValid()

    window.confirm = lambda question: True
    with qtbot.waitSignal(window.momentsRemoved, timeout=10_000):
        assert window.delete_moment() is True
    assert not window.model.index_of(doomed.id).isValid()
    assert window.model.moment_count() == len(day_moments) - 1
    assert doomed.id not in {m.id for m in service.moments_on_day(DAY)}
    assert not frame.exists()
    # Like a mail client, the view moves on to the next moment.
    assert window.open_moment_id() == day_moments[1].id
    assert window.day_counts.text() == "7 moments · 3 seen · 4 heard"


def export(qtbot, window: TimelineWindow, out: Path, moment_id: str | None = None) -> list[Path]:
    with qtbot.waitSignal(window.exported, timeout=10_000) as done:
        assert window.export_moment(out, moment_id)
    return done.args[0]


def test_export_writes_jpeg_and_json(qtbot, window, service, day_moments, tmp_path):
    show(qtbot, window, DAY)
    target = day_moments[4]  # a clip with a caption
    window.open_moment(target.id)
    out = tmp_path / "export"
    files = export(qtbot, window, out)
    assert sorted(p.name for p in files) == [f"{target.id}.jpg", f"{target.id}.json"]
    assert window.moment_view.status.text().startswith("Saved ")
    image = cv2.imread(str(out / f"{target.id}.jpg"))
    assert image is not None and image.shape == (360, 480, 3)
    info = json.loads((out / f"{target.id}.json").read_text())
    assert info["id"] == target.id and info["kind"] == "clip" and info["day"] == DAY
    assert info["text"] == "a person at a desk"
    assert info["key_frame"] == f"{target.id}.jpg"
    assert dt.datetime.fromisoformat(info["start"]).timestamp() == pytest.approx(target.t0_s)

    said = day_moments[1]  # 09:00:25, just after the 09:00:12 clip: a camera frame near it
    files = export(qtbot, window, out, said.id)
    assert sorted(p.name for p in files) == [f"{said.id}-nearby.jpg", f"{said.id}.json"]
    info = json.loads((out / f"{said.id}.json").read_text())
    assert info["text"] == said.text and info["sound"] == "speech"


def test_export_runs_off_the_gui_thread(qtbot, window, service, day_moments, tmp_path,
                                        monkeypatch):
    """Copying files (a slow disk, a network folder) never holds up the window."""
    import shutil

    from PySide6.QtCore import QTimer

    import app.ui.timeline as timeline

    copied_on: list[int] = []
    copy = shutil.copyfile

    def slow_copy(src, dst):  # type: ignore[no-untyped-def]
        copied_on.append(threading.get_ident())
        time.sleep(0.5)
        return copy(src, dst)

    monkeypatch.setattr(timeline.shutil, "copyfile", slow_copy)
    show(qtbot, window, DAY)
    target = day_moments[4]
    window.open_moment(target.id)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.exported, timeout=10_000):
        assert window.export_moment(tmp_path / "out")
        asked_s = time.perf_counter() - t0
        assert window.moment_view.status.text() == "Exporting\u2026"
    timer.stop()
    assert asked_s < 0.1, f"export_moment took {asked_s:.2f} s on the GUI thread"
    assert copied_on and copied_on[0] != threading.get_ident()
    gaps = np.diff([t0, *ticks])
    assert len(ticks) >= 20 and gaps.max() < 0.2  # the event loop ran all along
    assert (tmp_path / "out" / f"{target.id}.jpg").exists()


def test_export_failure_is_shown(qtbot, window, service, day_moments, tmp_path):
    show(qtbot, window, DAY)
    window.open_moment(day_moments[4].id)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with qtbot.waitSignal(window.exportFailed, timeout=10_000) as failed:
        window.export_moment(blocker / "export")
    assert failed.args[0].startswith("Could not export:")
    assert window.moment_view.status.text() == failed.args[0]


def test_day_navigation(qtbot, window, day_moments):
    show(qtbot, window, DAY)
    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        qtbot.mouseClick(window.next_button, Qt.MouseButton.LeftButton)
    assert window.current_day() == NEXT_DAY
    assert window.date_edit.date().toString("yyyy-MM-dd") == NEXT_DAY
    assert window.pages.currentWidget() is window.empty_page
    assert window.empty_title.text() == "Nothing remembered on Wednesday 25 November"
    assert window.empty_hint.text()

    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        qtbot.mouseClick(window.prev_button, Qt.MouseButton.LeftButton)
    assert window.current_day() == DAY
    assert window.model.moment_count() == len(day_moments)
    assert window.pages.currentWidget() is window.tree

    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        window.previous_day()
    assert window.current_day() == "2026-11-23"
    assert window.empty_title.text() == "Nothing remembered on Monday 23 November"

    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        qtbot.mouseClick(window.today_button, Qt.MouseButton.LeftButton)
    assert window.current_day() == dt.date.today().isoformat()

    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        window.date_edit.setDate(window.date_edit.date().fromString(DAY, "yyyy-MM-dd"))
    assert window.current_day() == DAY
    with pytest.raises(ValueError):
        window.show_day("24/11/2026")


def test_zoom_into_an_hour_and_back(qtbot, window, day_moments):
    window.show()
    show(qtbot, window, DAY)
    hour_11 = window.model.hour_index(11)
    rect = window.tree.visualRect(hour_11)
    # A real double-click is a press/release, then the double-click (Qt checks the press).
    qtbot.mouseClick(window.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(window.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.zoomed_hour() == 11
    assert window.tree.rootIndex() == hour_11
    assert window.delegate.large
    assert window.zoom_box.currentText() == "11:00–12:00 (2)"
    assert window.day_title.text().endswith("11:00–12:00")
    assert window.day_counts.text() == "2 moments · 1 seen · 1 heard"
    first = window.model.index(0, 0, hour_11)
    assert window.tree.visualRect(first).height() > 100  # larger rows

    # Opening a moment in another hour follows it there.
    window.open_moment(day_moments[0].id)
    assert window.zoomed_hour() == 9
    window.zoom_box.setCurrentIndex(0)
    window.zoom_box.activated.emit(0)
    assert window.zoomed_hour() is None
    assert window.tree.rootIndex() == QModelIndex()
    assert window.tree.visualRect(window.model.index(0, 0)).height() < 60


def test_live_updates_from_worker_threads(qtbot, window, service, day_moments):
    window.show()
    show(qtbot, window, DAY)
    kept = day_moments[2]  # 09:45
    window.open_moment(kept.id)
    new = [utterance(service, at(9, 30), "the keys are in the kitchen drawer"),
           clip(service, at(16, 20), seed=9)]
    store(service, new)
    ids = tuple(m.id for m, _ in new)

    def memory_worker() -> None:  # events come from worker threads, as in the pipeline
        service.bus.emit(MomentsStored(ids=ids, kinds=("utterance", "clip"), t1_s=at(16, 20, 8)))

    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        threading.Thread(target=memory_worker).start()
    assert all(window.model.index_of(i).isValid() for i in ids)
    assert [lane.hour for lane in window.model.lanes()] == [9, 11, 14, 16]
    assert window.tree.isExpanded(window.model.hour_index(16))
    assert window.model.moment_count() == len(day_moments) + 2
    # Merged, not reset: the open moment is still the current row.
    assert window.model.moment(window.tree.currentIndex()) == kept

    # Moments of another day do not reload this one.
    loads: list[str] = []
    window.dayLoaded.connect(loads.append)
    other = f"utt-{round(at(10, day_start_s=day_bounds(NEXT_DAY)[0]) * 1000)}"
    service.bus.emit(MomentsStored(ids=(other,), kinds=("utterance",), t1_s=at(34)))
    qtbot.wait(700)
    assert loads == []

    gone = threading.Thread(target=lambda: service.bus.emit(MomentsDeleted((kept.id,))))
    with qtbot.waitSignal(window.momentsRemoved, timeout=5000):
        gone.start()
    assert not window.model.index_of(kept.id).isValid()
    assert window.open_moment_id() != kept.id


def test_empty_day_says_so(qtbot, window):
    show(qtbot, window, DAY)
    assert window.pages.currentWidget() is window.empty_page
    assert window.empty_title.text() == "Nothing remembered on Tuesday 24 November"
    assert "recording" in window.empty_hint.text()
    assert window.model.rowCount() == 0


def test_a_day_with_5000_moments(qtbot, window, service):
    window.show()
    frames = [service.key_frames.write(picture(i, (320, 240)), at(0, i), at(0, i, 8))
              for i in range(20)]
    items = []
    for i in range(5000):
        t0 = START_S + 6 * 3600 + i * 10.0  # 06:00 to about 19:53, every 10 s
        if i % 2:
            items.append(clip(service, t0, key_frame=frames[i % len(frames)]))
        else:
            m = Moment(f"utt-{round(t0 * 1000)}", "utterance", t0, t0 + 3, text=f"line {i}",
                       sound="speech")
            items.append((m, np.ones(384, np.float32) / np.sqrt(384)))
    for start in range(0, len(items), 1000):
        store(service, items[start:start + 1000])

    show(qtbot, window, DAY, timeout_ms=60_000)
    model = window.model
    assert model.moment_count() == 5000
    assert [lane.hour for lane in model.lanes()] == list(range(6, 20))
    assert sum(model.rowCount(model.index(r, 0)) for r in range(model.rowCount())) == 5000
    assert window.day_counts.text() == "5000 moments · 2500 seen · 2500 heard"

    window.tree.scrollToBottom()
    qtbot.wait(50)
    bottom = window.tree.indexAt(QPoint(40, window.tree.viewport().height() - 5))
    last = model.moment(bottom)
    assert last is not None and last.id == items[-1][0].id
    # Only what was on screen was decoded, not 2500 key frames.
    qtbot.waitUntil(lambda: window.loader.pending == 0, timeout=10_000)
    assert 0 < window.loader.decoded < 200
    assert window.tree.selectionMode() == QAbstractItemView.SelectionMode.SingleSelection

    # Asked for a moment while the day is still loading (and then laid out hour by hour), the
    # window opens it once everything is in place, and it is on screen.
    show(qtbot, window, NEXT_DAY)
    target = items[2500][0]
    with qtbot.waitSignal(window.momentOpened, timeout=60_000) as opened:
        window.show_day(DAY)
        window.open_moment(target.id)
    assert opened.args == [target.id]
    assert model.moment(window.tree.currentIndex()) == target
    assert window.tree.viewport().rect().contains(window.tree.visualRect(
        window.tree.currentIndex()))


def test_painting_keeps_references_to_none(qtbot, window, day_moments):
    """PySide6 6.12.0 on Python 3.11 returns None from every void C++ call without taking a
    reference (QPainter.setPen, save, drawText, …); a delegate painting rows then drives None's
    reference count to zero and the interpreter aborts ("deallocating None") after some scrolling.
    Python 3.12+ (immortal None) and PySide6 ≤ 6.11 are not affected."""
    window.show()
    show(qtbot, window, DAY)
    window.grab()
    before = sys.getrefcount(None)
    for _ in range(20):
        window.tree.viewport().grab()
    lost = before - sys.getrefcount(None)
    assert lost < 200, (
        f"painting 20 times lost {lost} references to None: a PySide6 refcount bug "
        f"(PySide6 {PySide6.__version__}, Python {sys.version.split()[0]}); use PySide6 < 6.12")


# --- the day's export and summaries -------------------------------------------------------------


IMAGE_LINK = r"!\[[^\]]*\]\(([^)]+)\)"


def summaries_of(service: DaybookService, day_start_s: float = START_S) -> list[Moment]:
    """Summaries as app/memory/integrate.py writes them: of hours 9 and 14, and of the day."""
    from app.memory.integrate import day_id, hour_id

    day = DAY if day_start_s == START_S else NEXT_DAY
    hours = [
        Moment(hour_id(at(9, day_start_s=day_start_s)), "summary", at(9, day_start_s=day_start_s),
               at(10, day_start_s=day_start_s),
               text="09:00–10:00: about breakfast, eggs, alice. 2 things said and 2 scenes seen. "
                    "09:00 “I had scrambled eggs and coffee for breakfast”"),
        Moment(hour_id(at(14, day_start_s=day_start_s)), "summary",
               at(14, day_start_s=day_start_s), at(15, day_start_s=day_start_s),
               text="14:00–15:00: about tomato, plants. 1 thing said and 1 scene seen."),
    ]
    whole = Moment(day_id(day), "summary", day_start_s, day_start_s + 86_400,
                   text=f"{dt.date.fromisoformat(day):%A %d %B %Y}, 09:00–15:00, 3 hours "
                        "remembered: about breakfast, eggs, tomato.")
    items = [*hours, whole]
    service.store.add(list(zip(items, service.embedder.embed([m.text for m in items]),
                               strict=True)), service.embedder.name)
    return items


def test_export_day_writes_the_day_book(qtbot, window, service, day_moments, tmp_path,
                                        monkeypatch):
    import re

    from app.ui import timeline

    show(qtbot, window, DAY)
    out = tmp_path / "books"
    asked: list[str] = []

    def choose(parent, caption, start):
        asked.append(caption)
        return str(out)

    monkeypatch.setattr(timeline.QFileDialog, "getExistingDirectory", choose)
    with qtbot.waitSignal(window.exported, timeout=20_000) as done:
        window.export_day_button.click()
    assert asked == ["Export Tuesday 24 November 2026 to a folder"]
    md_path, json_path = done.args[0]
    assert md_path == out / f"daybook-{DAY}.md" and json_path == out / f"daybook-{DAY}.json"
    assert not window.day_message.isHidden()
    assert window.day_message.text() == (
        f"Exported 8 moments to {md_path} (and daybook-{DAY}.json, keyframes/)")
    md = md_path.read_text(encoding="utf-8")
    for m in day_moments:
        if m.text:
            assert m.text in md
    links = re.findall(IMAGE_LINK, md)
    clips = [m for m in day_moments if m.kind == "clip"]
    assert len(links) == len(clips)
    for link, m in zip(links, clips, strict=True):
        assert (out / link).read_bytes() == service.key_frames.absolute(m.key_frame).read_bytes()
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert [d["id"] for d in doc["moments"]] == [m.id for m in day_moments]

    # Again into the same folder: replaced only when the user says so.
    md_path.write_text("kept", encoding="utf-8")
    window.confirm_replace = lambda question: False
    with qtbot.waitSignal(window.exportFailed, timeout=20_000) as failed:
        window.export_day_button.click()
    assert "already holds this day's export" in failed.args[0]
    assert md_path.read_text(encoding="utf-8") == "kept"
    window.confirm_replace = lambda question: True
    with qtbot.waitSignal(window.exported, timeout=20_000):
        window.export_day_button.click()
    assert md_path.read_text(encoding="utf-8").startswith("# Daybook — Tuesday 24 November 2026")


def test_summaries_of_the_day_and_its_hours(qtbot, window, service, day_moments):
    from app.reasoning.base import Citation
    from app.ui.timeline_model import LaneRole

    hours = summaries_of(service)
    window.show()
    show(qtbot, window, DAY)
    model = window.model
    # The day's line above the hours.
    assert not window.day_summary.isHidden()
    assert window.day_summary.text() == (
        "Summary: 09:00–15:00, 3 hours remembered: about breakfast, eggs, tomato.")
    # Each hour's own, on its row (drawn without the hour, which the row says) and tooltip.
    lanes = model.lanes()
    assert [(lane.hour, lane.summary) for lane in lanes] == [
        (9, hours[0].text), (11, ""), (14, hours[1].text)]
    assert hours[0].text in model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(2, 0).data(LaneRole).summary == hours[1].text
    # Summaries are no moment rows: the day still has its eight moments, and no summary id.
    assert model.moment_count() == 8
    assert not [m for m in model.moments() if m.kind == "summary"]
    assert window.day_counts.text() == "8 moments · 4 seen · 4 heard"

    loader = window.model.loader
    qtbot.waitUntil(lambda: loader.decoded >= 4, timeout=10_000)  # the thumbnails, for the look
    qtbot.wait(50)
    window.grab().save("/tmp/timeline_summaries.png")
    window.zoom_to_hour(9)  # the hour's row is not shown: its summary is, under the title
    assert window.day_summary.text() == "Summary: " + hours[0].text.removeprefix("09:00–10:00: ")
    qtbot.waitUntil(lambda: loader.decoded >= 6, timeout=10_000)  # larger thumbnails
    qtbot.wait(50)  # let the labels' layout follow their new text
    window.grab().save("/tmp/timeline_summaries_hour.png")
    window.zoom_to_hour(11)
    assert window.day_summary.isHidden()  # 11:00 has none
    window.zoom_to_hour(None)
    assert window.day_summary.text().startswith("Summary: 09:00–15:00, 3 hours")

    # A summary found by a search opens as its text: no picture, nothing to delete.
    window.hits.set_citations([Citation(hours[0], 1.0, service.key_frames.near(at(9), at(10)))])
    window.hits_view.activated.emit(window.hits.index(0, 0))
    view = window.moment_view
    assert view.moment == hours[0] and window.open_moment_id() == hours[0].id
    assert view.heard.text() == hours[0].text
    assert view.kind.text() == "Summary of the hour"
    assert view.image.isHidden() and view.delete_button.isHidden()
    assert window.hits.thumbnail(window.hits.index(0, 0)) is None


def test_summaries_written_later_show_up(qtbot, window, service, day_moments):
    show(qtbot, window, DAY)
    assert window.day_summary.isHidden()
    assert all(not lane.summary for lane in window.model.lanes())
    hours = summaries_of(service)
    from app.core.events import MemoryIntegrated

    def integrator() -> None:  # as app/memory/integrate.py announces them, from its thread
        service.bus.emit(MemoryIntegrated(tuple(m.id for m in hours)))

    with qtbot.waitSignal(window.dayLoaded, timeout=10_000):
        threading.Thread(target=integrator).start()
    assert window.day_summary.text().endswith("about breakfast, eggs, tomato.")
    assert window.model.lanes()[0].summary == hours[0].text


def test_summary_ids_carry_no_start_time():
    assert moment_t0_from_id("sum-day-2026-11-24") is None
    assert moment_t0_from_id("sum-hour-2026-11-24T09") is None
    assert moment_t0_from_id("utt-1795165200000") == 1_795_165_200.0
