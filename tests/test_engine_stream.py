"""Streaming calls of the native-engine helper (the language model's path): items arrive as they
are made, a cancel stops the child between two items, errors and crashes come back as
exceptions, and the child goes on serving afterwards."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.engine import EngineError, EngineProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def engine():  # type: ignore[no-untyped-def]
    e = EngineProcess("counter", "tests.streaming_backend:make", (0.05,), call_timeout_s=5.0)
    yield e
    e.close()


def test_items_stream_as_they_are_made(engine: EngineProcess) -> None:
    arrivals = []
    t0 = time.monotonic()
    for item in engine.stream("count", 6):
        arrivals.append((item, time.monotonic() - t0))
    assert [i for i, _ in arrivals] == list(range(6))
    # The first came long before the last was made (not all at the end).
    assert arrivals[0][1] < arrivals[-1][1] - 0.15


def test_cancel_stops_the_child_within_one_item(engine: EngineProcess) -> None:
    cancel = threading.Event()
    got = []
    gen = engine.stream("count", 1000, cancel=cancel)
    made = None
    try:
        while True:
            got.append(next(gen))
            if len(got) == 3:
                cancel.set()
    except StopIteration as stop:
        made = stop.value
    assert got == [0, 1, 2]
    # The child made the three it sent and at most the one it was making when told.
    assert made is not None and 3 <= made <= 4
    assert engine.call("total") == made  # it stopped there, and serves the next call


def test_leaving_the_loop_stops_the_child_too(engine: EngineProcess) -> None:
    for item in engine.stream("count", 1000):
        if item == 2:
            break
    time.sleep(0.3)
    assert engine.call("total") <= 4


def test_an_error_in_the_generator_comes_back(engine: EngineProcess) -> None:
    got = []
    with pytest.raises(ValueError, match="broke after 2"):
        for item in engine.stream("fail_after", 2):
            got.append(item)
    assert got == [0, 1]
    assert list(engine.stream("count", 2)) == [0, 1]


def test_a_crash_mid_stream_is_an_engine_error_and_the_child_restarts(
        engine: EngineProcess) -> None:
    got = []
    with pytest.raises(EngineError, match="exited"):
        for item in engine.stream("crash_after", 2):
            got.append(item)
    assert got == [0, 1]
    assert list(engine.stream("count", 3)) == [0, 1, 2]
    assert engine.restarts == 1


def test_a_stream_that_goes_silent_is_hung() -> None:
    slow = EngineProcess("counter", "tests.streaming_backend:make", (2.0,), call_timeout_s=5.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(EngineError, match="did not answer in 0.5 s"):
            list(slow.stream("count", 3, first_timeout_s=0.5))
        assert time.monotonic() - t0 < 3.0
    finally:
        slow.close()
