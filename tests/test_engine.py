"""The native-engine helper on the real memory store's child process: Ctrl-C ignored, no orphan
left holding the database when the parent dies (even while the child is busy), calls that time
out without blocking other callers, and a clear error when the engine cannot start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from app.core.engine import EngineError
from app.core.errors import DaybookError
from app.core.events import EngineFailed, EngineRecovered
from app.memory.base import Moment
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.store_process import ProcessMemoryStore
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _moment(i: int) -> tuple[Moment, np.ndarray]:
    vec = np.zeros(8, np.float32)
    vec[i % 8] = 1.0
    return Moment(f"utt-{i}", "utterance", 1_795_165_200.0 + i, 1_795_165_201.0 + i, f"m {i}"), vec


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie":
            return True
        time.sleep(0.05)
    return False


def test_the_child_ignores_ctrl_c(tmp_path: Path) -> None:
    store = ProcessMemoryStore(tmp_path / "chroma")
    try:
        pid = store.engine.pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        store.add([_moment(1)], LexicalEmbedder.name)
        assert store.count() == {"utterance": 1, "clip": 0, "summary": 0}
        assert store.engine.pid == pid and store.engine.failures == 0
    finally:
        store.close()


_PARENT = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from app.memory.store_process import ProcessMemoryStore
store = ProcessMemoryStore(Path(sys.argv[1]))
print(store.engine.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("busy", [False, True])
def test_no_orphan_when_the_parent_is_killed(tmp_path: Path, busy: bool) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path / "chroma"), str(ROOT)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        if busy:  # as if stuck in a native call: it cannot run any code of its own
            os.kill(child, signal.SIGSTOP)
        parent.kill()
        parent.wait(5)
        assert _gone(child, 5), "the store's child outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
    # The database opens again at once (nothing holds it).
    store = ProcessMemoryStore(tmp_path / "chroma", start_timeout_s=20)
    store.close()


def test_a_hung_call_does_not_block_other_callers(tmp_path: Path) -> None:
    events: list[object] = []
    store = ProcessMemoryStore(tmp_path / "chroma", timeout_s=2.0, on_event=events.append)
    try:
        store.add([_moment(1)], LexicalEmbedder.name)
        hung = store.engine.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                store.count()
            except EngineError as exc:
                errors.append(exc)

        t0 = time.monotonic()
        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # All three gave up together after one timeout (none waited behind another's lock).
        assert len(errors) == 3 and time.monotonic() - t0 < 4.5, errors
        assert "did not answer" in str(errors[0])
        assert _gone(hung, 5)
        # The next call opens the database in a new child; what was stored is there.
        assert store.count() == {"utterance": 1, "clip": 0, "summary": 0}
        assert [type(e) for e in events] == [EngineFailed, EngineRecovered]
    finally:
        store.close()


def test_a_store_that_cannot_open_says_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DaybookError, match="cannot open the memory store"):
        ProcessMemoryStore(tmp_path / "file" / "chroma", start_timeout_s=20)


def test_opening_in_the_background(tmp_path: Path) -> None:
    """The window's service: the constructor returns at once, the first call waits for the
    database; one that cannot open is an event (shown in the window) and a clear error."""
    t0 = time.monotonic()
    store = ProcessMemoryStore(tmp_path / "chroma", wait=False)
    try:
        assert time.monotonic() - t0 < 0.5
        assert store.count() == {"utterance": 0, "clip": 0, "summary": 0}
    finally:
        store.close()
    (tmp_path / "file").write_text("not a folder")
    events: list[object] = []
    bad = ProcessMemoryStore(tmp_path / "file" / "chroma", wait=False, on_event=events.append)
    try:
        with pytest.raises(EngineError, match="could not start|next restart"):
            bad.count()
        assert [type(e) for e in events] == [EngineFailed]
        assert "could not start" in events[0].message  # type: ignore[attr-defined]
    finally:
        bad.close()
