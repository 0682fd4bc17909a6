"""Native engines (speech recogniser, memory store, later the LLM and vision models) in child
processes, with calls that time out, and a child that is restarted when it dies or hangs.

Why a child process: native libraries hold the GIL for whole calls (pocketsphinx ≈0.6 s, a Chroma
upsert 20–40 ms), which would freeze the GUI and delay capture, and a native crash would take the
whole app down. Here the parent only waits on a pipe.

How a call works: the caller queues `(id, method, args)` for the writer thread and waits on its
own reply slot with a timeout; the reader thread fills reply slots as answers arrive. No lock is
held while waiting, so a hung child blocks nobody forever: a call that is not answered in time
marks the child hung, the child is killed, every call in flight fails with `EngineError`, and the
next call starts a new child (with back-off when starting fails again and again).

The child ignores the terminal's SIGINT (Ctrl-C reaches the whole process group; the parent
decides how to stop) and exits when its parent is gone, even when it is busy in native code at the
time (so an orphan never keeps the database open).
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import contextlib
import importlib
import itertools
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from app.core.errors import DaybookError
from app.core.events import EngineFailed, EngineRecovered

log = logging.getLogger(__name__)

_PARENT_POLL_S = 0.5
_CLOSE = "close"  # in the writer's outbox: tell the child to exit, then stop writing
_STREAM = "__stream__"  # a call whose backend method is a generator: its items come as chunks
_CANCEL = "__cancel__"  # stop that stream between two items
_POLL_S = 0.02  # how often a stream's reader looks at its cancel event
_BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # before start attempt n after a failure


class EngineError(DaybookError):
    """The engine's child process died, hung or could not start. What was asked is not done;
    the caller keeps its data and may try again (the engine restarts itself)."""


# --- the child ----------------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """Exit when the parent is gone, even in the middle of a native call: the kernel's parent-
    death signal on Linux (the parent spawns from a thread that lives as long as it does), and a
    watchdog thread elsewhere."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before that took effect
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent",
                     daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    import psutil

    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent_pid or not psutil.pid_exists(parent_pid):
            os._exit(0)


def _serve(conn: Connection, factory: str, args: tuple[Any, ...], parent_pid: int) -> None:
    """The child's main loop: build the backend, then answer requests one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked in the parent around the spawn
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent(parent_pid)
    try:
        module, _, attr = factory.partition(":")
        backend = getattr(importlib.import_module(module), attr)(*args)
    except Exception as exc:
        conn.send((0, "error", _picklable(exc)))
        return
    conn.send((0, "ready", str(getattr(backend, "name", factory))))
    waiting: collections.deque[Any] = collections.deque()  # arrived during a stream
    while True:
        try:
            request = waiting.popleft() if waiting else conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        req_id, method, call_args = request
        if method == _CANCEL:
            continue  # a stream that had ended already
        try:
            if method == _STREAM:
                name, gen_args = call_args
                reply: tuple[Any, str, Any] = (
                    req_id, "ok", _stream(conn, backend, req_id, name, gen_args, waiting))
            else:
                reply = (req_id, "ok", getattr(backend, method)(*call_args))
        except _Closed:
            return
        except Exception as exc:
            reply = (req_id, "error", _picklable(exc))
        try:
            conn.send(reply)
        except Exception as exc:  # a result that does not pickle
            conn.send((req_id, "error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Closed(Exception):
    """The parent said close (or went away) during a stream."""


def _stream(conn: Connection, backend: Any, req_id: int, method: str, args: tuple[Any, ...],
            waiting: collections.deque[Any]) -> int:
    """Send each item the backend's generator yields as a chunk; between items, read what the
    parent sent meanwhile: a cancel for this stream ends it there (within one item). Returns
    how many items were produced."""
    items = 0
    generator = getattr(backend, method)(*args)
    try:
        for item in generator:
            items += 1
            conn.send((req_id, "chunk", item))
            cancelled = False
            while conn.poll(0):
                try:
                    message = conn.recv()
                except (EOFError, OSError) as exc:
                    raise _Closed from exc
                if message is None:
                    raise _Closed
                if message[1] == _CANCEL:
                    cancelled = cancelled or message[0] == req_id
                else:
                    waiting.append(message)
            if cancelled:
                break
    finally:
        generator.close()
    return items


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# --- the parent ---------------------------------------------------------------------------------

_exiting = threading.Event()  # the interpreter is exiting: children die with it, unreported
atexit.register(_exiting.set)  # runs before multiprocessing's own exit handler stops children
_keeper_pool: concurrent.futures.ThreadPoolExecutor | None = None
_keeper_lock = threading.Lock()


def _block_sigint() -> None:
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _keeper() -> concurrent.futures.ThreadPoolExecutor:
    """The one thread that starts every child. It lives as long as the process, so the Linux
    parent-death signal (tied to the spawning thread) fires only when the process ends; and it
    blocks SIGINT, a mask the children inherit, so a Ctrl-C that arrives while a child boots
    (before it ignores SIGINT itself) does not kill it."""
    global _keeper_pool
    with _keeper_lock:
        if _keeper_pool is None:
            _keeper_pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="engine-keeper", initializer=_block_sigint)
        return _keeper_pool



@dataclass
class _Reply:
    done: threading.Event = field(default_factory=threading.Event)
    status: str = ""
    value: Any = None
    chunks: queue.SimpleQueue[Any] | None = None  # a stream's items, as they arrive

    def finish(self, status: str, value: Any) -> None:
        self.status, self.value = status, value
        self.done.set()
        if self.chunks is not None:
            self.chunks.put(_END)


_END = object()  # in a stream's chunk queue: the final reply has arrived


class _Child:
    """One generation of the child process, with its writer and reader threads."""

    def __init__(self, engine: EngineProcess) -> None:
        self.engine = engine
        ctx = mp.get_context("spawn")  # no fork: the parent has threads
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve, args=(child_conn, engine.factory, engine.args, os.getpid()),
            name=f"engine-{engine.name}", daemon=True)
        _keeper().submit(self.proc.start).result()
        child_conn.close()
        self.pid = self.proc.pid
        self.replies: dict[int, _Reply] = {}
        self.replies_lock = threading.Lock()
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.dead: str | None = None  # why, once it is

    def handshake(self, timeout_s: float) -> str:
        if not self.conn.poll(timeout_s):
            raise EngineError(f"the {self.engine.name} did not start in {timeout_s:g} s")
        try:
            _, status, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise EngineError(f"the {self.engine.name} crashed while starting "
                              f"(exit code {self._exitcode()})") from exc
        if status != "ready":
            raise EngineError(f"the {self.engine.name} could not start: {value}")
        threading.Thread(target=self._write, name=f"{self.engine.name}-writer",
                         daemon=True).start()
        threading.Thread(target=self._read, name=f"{self.engine.name}-reader",
                         daemon=True).start()
        return str(value)

    def _write(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            try:
                self.conn.send(None if item == _CLOSE else item)
            except (OSError, ValueError):
                return  # the reader (or kill) reports the death
            if item == _CLOSE:
                return

    def _read(self) -> None:
        while True:
            try:
                req_id, status, value = self.conn.recv()
            except (EOFError, OSError, ValueError):
                if self.dead is None:  # not closed or killed by us: it died
                    self.engine._died(self, f"the {self.engine.name} process exited "
                                            f"(exit code {self._exitcode()})")
                return
            except Exception as exc:  # an answer that does not unpickle
                req_id, status, value = -1, "error", exc
            with self.replies_lock:
                reply = (self.replies.get(req_id) if status == "chunk"
                         else self.replies.pop(req_id, None))
            if reply is None:
                continue
            if status == "chunk":
                if reply.chunks is not None:
                    reply.chunks.put(value)
            else:
                reply.finish(status, value)

    def _running(self) -> bool:
        """Whether the process still runs (is_alive() can say so wrongly when another thread
        reaped it at the same moment: waitpid then fails with ECHILD)."""
        import psutil

        if self.proc.exitcode is not None:
            return False
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def _exitcode(self) -> int | None:
        self.proc.join(0.5)
        return self.proc.exitcode

    def fail_all(self, why: str) -> None:
        self.dead = self.dead or why
        with self.replies_lock:
            pending, self.replies = list(self.replies.values()), {}
        for reply in pending:
            reply.finish("dead", why)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        self.outbox.put(None)
        with contextlib.suppress(OSError):
            self.conn.close()
        self.proc.join(5)

    def close(self, timeout_s: float) -> None:
        """Ask the child to exit after what it is doing; kill it if it does not."""
        self.outbox.put(_CLOSE)
        self.proc.join(timeout_s)
        if self._running():
            log.warning("%s did not exit in %.0f s; killing it", self.engine.name, timeout_s)
            self.proc.kill()
            self.proc.join(5)
        with contextlib.suppress(OSError):
            self.conn.close()


class EngineProcess:
    """A backend built in a child process by `factory` ("module:function") from `args`.

    `call(method, *args)` runs `backend.method(*args)` there and returns its result, raises the
    backend's own exception, or raises `EngineError` when the child died, hung past `timeout_s`
    or cannot be started. The first start happens in the constructor and raises `EngineError`
    on failure (with `wait=False` it goes on in the background: the first call waits for it,
    and a failure is reported as an event); later starts happen on the next call. `on_event`
    receives EngineFailed and EngineRecovered (from whichever thread noticed).
    """

    def __init__(self, name: str, factory: str, args: tuple[Any, ...] = (), *,
                 start_timeout_s: float = 60.0, call_timeout_s: float = 30.0,
                 on_event: Callable[[object], None] | None = None, wait: bool = True) -> None:
        self.name = name
        self.factory = factory
        self.args = args
        self.start_timeout_s = start_timeout_s
        self.call_timeout_s = call_timeout_s
        self.on_event = on_event
        self.failures = 0  # deaths, hangs and failed starts
        self.restarts = 0  # successful starts after the first
        self.backend_name = ""
        self._ids = itertools.count(1)
        self._child: _Child | None = None
        self._start_lock = threading.Lock()
        self._failed_starts = 0
        self._next_start_s = 0.0
        self._unhealthy = False  # a failure was reported and no recovery yet
        self._closed = False
        if wait:
            self.backend_name = self._start()
        else:
            self._start_lock.acquire()  # released by the starting thread
            threading.Thread(target=self._first_start, name=f"{name}-start",
                             daemon=True).start()

    def _first_start(self) -> None:
        try:
            self.backend_name = self._start()
        except EngineError as exc:
            self._failed_starts = 1
            self.failures += 1
            self._unhealthy = True
            self._next_start_s = time.monotonic() + _BACKOFF_S[1]
            log.error("%s", exc)
            self._emit(EngineFailed(self.name, str(exc), restarting=True))
        finally:
            self._start_lock.release()

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.dead is None else None

    @property
    def alive(self) -> bool:
        child = self._child
        return child is not None and child.dead is None

    def _start(self) -> str:
        child = _Child(self)
        try:
            backend = child.handshake(self.start_timeout_s)
        except EngineError:
            child.kill()
            raise
        if self._closed:  # closed while it started
            child.close(5.0)
            raise EngineError(f"the {self.name} is closed")
        self._child = child
        log.info("%s started (pid %d)", self.name, child.pid)
        return backend

    def _ensure(self) -> _Child:
        if self._closed:
            raise EngineError(f"the {self.name} is closed")
        child = self._child
        if child is not None and child.dead is None:
            return child
        if not self._start_lock.acquire(timeout=self.start_timeout_s + 5):
            raise EngineError(f"the {self.name} is restarting")
        try:
            child = self._child
            if child is not None and child.dead is None:
                return child
            wait_s = self._next_start_s - time.monotonic()
            if wait_s > 0:
                raise EngineError(f"the {self.name} is down; next restart in {wait_s:.0f} s")
            try:
                self.backend_name = self._start()
            except EngineError as exc:
                self._failed_starts += 1
                self.failures += 1
                delay = _BACKOFF_S[min(self._failed_starts, len(_BACKOFF_S) - 1)]
                self._next_start_s = time.monotonic() + delay
                log.error("%s (retrying in %.0f s)", exc, delay)
                self._emit(EngineFailed(self.name, str(exc), restarting=True))
                raise
            self._failed_starts = 0
            self.restarts += 1
            if self._unhealthy:
                self._unhealthy = False
                log.warning("%s recovered (restart %d)", self.name, self.restarts)
                self._emit(EngineRecovered(self.name))
            assert self._child is not None
            return self._child
        finally:
            self._start_lock.release()

    def call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        child = self._ensure()
        req_id = next(self._ids)
        reply = _Reply()
        with child.replies_lock:
            if child.dead is not None:
                raise EngineError(child.dead)
            child.replies[req_id] = reply
        child.outbox.put((req_id, method, args))
        limit = self.call_timeout_s if timeout_s is None else timeout_s
        if not reply.done.wait(limit):
            self._died(child, f"the {self.name} did not answer in {limit:g} s (hung); "
                              "it was stopped and restarts")
            raise EngineError(child.dead or "hung")
        if reply.status == "ok":
            return reply.value
        if reply.status == "dead":
            raise EngineError(str(reply.value))
        raise reply.value

    def stream(self, method: str, *args: Any, cancel: threading.Event | None = None,
               first_timeout_s: float | None = None, gap_timeout_s: float | None = None
               ) -> Generator[Any, None, int]:
        """Run the generator `backend.method(*args)` in the child and yield its items as they
        come. Once `cancel` is set the child is told to stop (it does, between two items) and
        the iteration ends without error; the generator's return value is how many items the
        child produced. No item within `first_timeout_s` (the first) or `gap_timeout_s` (later
        ones; both default to the call timeout) marks the child hung, as `call` does."""
        child = self._ensure()
        req_id = next(self._ids)
        reply = _Reply(chunks=queue.SimpleQueue())
        assert reply.chunks is not None
        with child.replies_lock:
            if child.dead is not None:
                raise EngineError(child.dead)
            child.replies[req_id] = reply
        child.outbox.put((req_id, _STREAM, (method, args)))
        try:
            return (yield from self._chunks(child, req_id, reply, cancel, first_timeout_s,
                                            gap_timeout_s))
        finally:
            if not reply.done.is_set():  # the caller stopped iterating: the child stops too
                child.outbox.put((req_id, _CANCEL, ()))

    def _chunks(self, child: _Child, req_id: int, reply: _Reply, cancel: threading.Event | None,
                first_timeout_s: float | None, gap_timeout_s: float | None
                ) -> Generator[Any, None, int]:
        assert reply.chunks is not None
        limit = first_timeout_s or self.call_timeout_s
        deadline = time.monotonic() + limit
        while True:
            if cancel is not None and cancel.is_set():
                child.outbox.put((req_id, _CANCEL, ()))
                # The child stops within one item; its final reply says how many it made.
                if reply.done.wait(gap_timeout_s or self.call_timeout_s):
                    return int(reply.value) if reply.status == "ok" else 0
                self._died(child, f"the {self.name} did not stop when asked (hung); it was "
                                  "stopped and restarts")
                return 0
            try:
                item = reply.chunks.get(timeout=_POLL_S)
            except queue.Empty:
                if time.monotonic() > deadline:
                    self._died(child, f"the {self.name} did not answer in {limit:g} s (hung); "
                                      "it was stopped and restarts")
                    raise EngineError(child.dead or "hung") from None
                continue
            if item is _END:
                break
            yield item
            limit = gap_timeout_s or self.call_timeout_s
            deadline = time.monotonic() + limit
        if reply.status == "ok":
            return int(reply.value)
        if reply.status == "dead":
            raise EngineError(str(reply.value))
        raise reply.value

    def _died(self, child: _Child, why: str) -> None:
        """The child is dead or hung: kill it, fail what was in flight, report once."""
        with child.replies_lock:
            first = child.dead is None
            child.dead = child.dead or why
        child.fail_all(why)
        if not first or self._closed or _exiting.is_set():
            return
        child.kill()
        self.failures += 1
        self._unhealthy = True
        log.error("%s", why)
        self._emit(EngineFailed(self.name, why, restarting=True))

    def _emit(self, event: object) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("engine event listener failed")

    def close(self, timeout_s: float = 10.0) -> None:
        self._closed = True
        child, self._child = self._child, None
        if child is None:
            return
        child.dead = child.dead or "closed"
        child.close(timeout_s)
        child.fail_all(f"the {self.name} is closed")
