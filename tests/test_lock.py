from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.errors import DataDirLockedError
from app.core.lock import DataDirLock
from tests.conftest import ROOT

HOLD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from app.core.lock import DataDirLock
    lock = DataDirLock(Path({path!r})).acquire()
    print("held", flush=True)
    time.sleep(60)
""")


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(root=str(ROOT), path=str(path))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_lock_records_the_holder_and_releases(tmp_path: Path) -> None:
    path = tmp_path / "daybook.lock"
    with DataDirLock(path):
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid()
    assert path.read_text() == ""
    with DataDirLock(path):  # free again
        pass


def test_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "daybook.lock"
    proc = _holder(path)
    try:
        with pytest.raises(DataDirLockedError, match=f"in use by process {proc.pid}"):
            DataDirLock(path).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "daybook.lock"
    proc = _holder(path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(path.read_text())["pid"] == proc.pid  # the file is still there
    lock = DataDirLock(path).acquire()
    try:
        assert lock.took_over_from == proc.pid
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
