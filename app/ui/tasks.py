"""Background work for the GUI: store queries, exports, key-frame decoding and starting and
stopping the pipeline, all off the GUI thread, with results delivered back on it."""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QThread,
    QThreadPool,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QImage,
    QImageReader,
    QPixmap,
)
from shiboken6 import isValid

from app.core.errors import DaybookError

log = logging.getLogger(__name__)

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


class BackgroundTasks(QObject):
    """Runs work off the GUI thread and hands results back in it. One per application.

    `store_pool` has one thread, so the UI's store calls (day loads, searches, deletes, exports)
    run one at a time, in the order asked; `image_pool` decodes key frames; `control_pool` has one
    thread of its own for starting and stopping the pipeline (`PipelineControl`), which blocks
    for seconds and must neither wait behind nor hold up the store calls. Do not call UI
    routines from the work functions: only the `done`/`failed` callbacks run in the GUI thread,
    and only while their owner QObject is alive.
    """

    _delivered = Signal(object)  # (owner, callable, args): run in the GUI thread
    _instance: ClassVar[BackgroundTasks | None] = None

    @classmethod
    def instance(cls) -> BackgroundTasks:
        """The application's instance (create it from the GUI thread)."""
        if cls._instance is None or not isValid(cls._instance):
            cls._instance = cls(QCoreApplication.instance())
        return cls._instance

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store_pool = QThreadPool()
        self.store_pool.setMaxThreadCount(1)
        self.image_pool = QThreadPool()
        self.image_pool.setMaxThreadCount(max(1, min(2, QThread.idealThreadCount() - 1)))
        self.control_pool = QThreadPool()
        self.control_pool.setMaxThreadCount(1)
        self._delivered.connect(self._deliver)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def run(self, owner: QObject, work: Callable[[], T], done: Callable[[T], None],
            failed: Callable[[Exception], None] | None = None, *,
            pool: QThreadPool | None = None) -> None:
        """Run `work` on the store thread (or `pool`); `done(result)` or `failed(error)` in the
        GUI thread."""

        def job() -> None:
            try:
                result = work()
            except Exception as exc:
                if isinstance(exc, DaybookError):
                    log.error("background task failed: %s", exc)
                else:
                    log.exception("background task failed")
                if failed is not None:
                    self.post(owner, failed, exc)
                return
            self.post(owner, done, result)

        (pool or self.store_pool).start(job)

    def post(self, owner: QObject, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread: call `fn(*args)` in the GUI thread, unless `owner` is gone by then."""
        self._delivered.emit((owner, fn, args))

    @Slot(object)
    def _deliver(self, item: tuple[QObject, Callable[..., Any], tuple[Any, ...]]) -> None:
        owner, fn, args = item
        if not isValid(owner):
            return
        try:
            fn(*args)
        except Exception:
            log.exception("delivering a background result failed")

    @Slot()
    def shutdown(self) -> None:
        """At exit: drop queued store and image work, wait for running work. The pipeline's
        queued stops are not dropped (the app quits once `PipelineControl` has closed)."""
        for pool in (self.store_pool, self.image_pool):
            pool.clear()
        self.wait()
        self.control_pool.waitForDone(5000)

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Wait until all queued and running store and image work is done (results are
        delivered later). Not the pipeline's start and stop: they may take many seconds."""
        return all(pool.waitForDone(timeout_ms) for pool in (self.store_pool, self.image_pool))


Report = Callable[[object], None]


class TaskGroup(QObject):
    """Long-running named jobs (downloads, imports, probing devices, measuring a folder), each on
    its own daemon thread so they neither queue behind the store thread nor behind each other.

    `work(report)` runs on the job's thread (no UI calls there); `report(payload)` reaches
    `on_progress`, and the result `on_done` or `on_error`, in the GUI thread through
    `BackgroundTasks.post`. After `shutdown()` (the dialog that owns the group is gone) results
    and progress are dropped.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._post = BackgroundTasks.instance().post
        self.closed = False

    def run(self, name: str, work: Callable[[Report], Any], on_done: Callable[[Any], None],
            on_error: Callable[[BaseException], None],
            on_progress: Callable[[Any], None] | None = None) -> None:
        task_id = next(self._ids)
        self._running[task_id] = name

        def progress(payload: object) -> None:
            if on_progress is not None and not self.closed:
                on_progress(payload)

        def finish(callback: Callable[[Any], None], value: object) -> None:
            self._running.pop(task_id, None)
            if not self.closed:
                callback(value)

        def target() -> None:
            try:
                result = work(lambda payload: self._post(self, progress, payload))
            except Exception as exc:
                if not isinstance(exc, DaybookError):
                    log.exception("background job %s failed", name)
                self._post(self, finish, on_error, exc)
            else:
                self._post(self, finish, on_done, result)

        threading.Thread(target=target, name=f"job-{name}", daemon=True).start()

    def running(self) -> list[str]:
        return list(self._running.values())

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def shutdown(self) -> None:
        self.closed = True


def _decode(path: Path, box_px: QSize) -> QImage | None:
    """Read a JPEG scaled to fit `box_px` (libjpeg scales while decoding: fast)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid():
        reader.setScaledSize(size.scaled(box_px, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return None if image.isNull() else image


class ThumbnailLoader(QObject):
    """Key frames as QPixmaps: decoded off the GUI thread, kept in a small LRU cache.

    `get` answers from the cache at once, or asks for a decode and answers None; `loaded(key)`
    follows in the GUI thread. The newest requests run first, and only the newest `max_pending`
    are still wanted when their turn comes (older ones are skipped), so fast scrolling through
    thousands of rows decodes only what is (nearly) on screen.
    """

    loaded = Signal(str)  # cache key; the pixmap is in the cache
    missing = Signal(str)  # cache key; no image (no file, or it could not be read)

    def __init__(self, parent: QObject | None = None, *, max_bytes: int = 48 << 20,
                 max_pending: int = 160) -> None:
        super().__init__(parent)
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self._tasks = BackgroundTasks.instance()
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._bytes = 0
        # key → request number; read by the decoding threads to skip requests no longer wanted
        self._pending: OrderedDict[str, int] = OrderedDict()
        self._missing: set[str] = set()
        self._requests = itertools.count(1)
        self.decode_threads: set[int] = set()  # idents of the threads that decoded (tests)
        self.decoded = 0

    @staticmethod
    def key(moment_id: str, box: QSize) -> str:
        return f"{moment_id}@{box.width()}x{box.height()}"

    def get(self, key: str, locate: Callable[[], Path | None], box: QSize,
            dpr: float = 1.0) -> QPixmap | None:
        """The cached pixmap, or None (a decode is queued unless one is, or the file is missing).

        `locate` runs on the decoding thread (it may scan a folder)."""
        pixmap = self._cache.get(key)
        if pixmap is not None:
            self._cache.move_to_end(key)
            return pixmap
        if key not in self._pending and key not in self._missing:
            self._request(key, locate, box, dpr)
        return None

    def is_missing(self, key: str) -> bool:
        return key in self._missing

    @property
    def pending(self) -> int:
        return len(self._pending)

    def forget(self, moment_ids: Iterable[str]) -> None:
        prefixes = tuple(f"{i}@" for i in moment_ids)
        for key in [k for k in self._cache if k.startswith(prefixes)]:
            self._bytes -= self._cost(self._cache.pop(key))
        self._missing = {k for k in self._missing if not k.startswith(prefixes)}

    def _request(self, key: str, locate: Callable[[], Path | None], box: QSize,
                 dpr: float) -> None:
        box_px = QSize(round(box.width() * dpr), round(box.height() * dpr))
        threads, pending, tasks = self.decode_threads, self._pending, self._tasks
        number = next(self._requests)

        def work() -> None:
            if pending.get(key) != number:
                return  # scrolled past (or asked again since)
            threads.add(threading.get_ident())
            image = None
            try:
                path = locate()
                image = _decode(path, box_px) if path is not None else None
            except Exception:
                log.exception("decoding the key frame for %s failed", key)
            tasks.post(self, self._decoded, key, number, image, dpr)

        pending[key] = number
        while len(pending) > self.max_pending:
            pending.popitem(last=False)
        tasks.image_pool.start(work, number % (1 << 30))  # higher runs first: the newest

    def _decoded(self, key: str, number: int, image: QImage | None, dpr: float) -> None:
        if self._pending.get(key) == number:
            del self._pending[key]
        if image is None:
            self._missing.add(key)
            self.missing.emit(key)
            return
        self.decoded += 1
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(dpr)
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= self._cost(old)
        self._cache[key] = pixmap
        self._bytes += self._cost(pixmap)
        while self._bytes > self.max_bytes and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._bytes -= self._cost(evicted)
        self.loaded.emit(key)

    @staticmethod
    def _cost(pixmap: QPixmap) -> int:
        return pixmap.width() * pixmap.height() * 4


# --- formatting ----------------------------------------------------------------------------


