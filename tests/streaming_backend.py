"""A backend for the engine's streaming tests, built in the child process by EngineProcess."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator


class Counter:
    name = "counter"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.made = 0

    def count(self, n: int) -> Iterator[int]:
        for i in range(n):
            time.sleep(self.delay_s)
            self.made += 1
            yield i

    def fail_after(self, n: int) -> Iterator[int]:
        yield from range(n)
        raise ValueError(f"broke after {n}")

    def crash_after(self, n: int) -> Iterator[int]:
        yield from range(n)
        os._exit(3)

    def total(self) -> int:
        return self.made


def make(delay_s: float) -> Counter:
    return Counter(delay_s)
