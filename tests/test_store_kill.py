"""SIGKILL while the store writes: everything whose write returned is there after a restart,
and Chroma, the side file (records, full text) and the time index agree — nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.memory.chroma_store import ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
from tests.conftest import ROOT

LEX = LexicalEmbedder()
DAY = 1_795_165_200.0

_WRITER = r"""
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
import numpy as np
from app.memory.base import Moment
from app.memory.chroma_store import ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
lex = LexicalEmbedder()
store = ChromaMemoryStore(Path(sys.argv[1]))
for b in range(10_000):
    items = []
    for i in range(16):
        n = b * 16 + i
        t = 1_795_165_200.0 + 7 * n
        text = f"moment {n} about the walrus number {n % 7}"
        items.append((Moment(f"utt-{n:06d}", "utterance", t, t + 2, text), lex.embed([text])[0]))
    items.append((Moment(f"clip-{b:06d}", "clip", 1_795_165_200.0 + 112 * b, 1_795_165_200.0
                         + 112 * b + 5), np.ones(256, np.float32) / 16))
    store.add(items, lex.name)
    if b % 3 == 2:  # deletions too
        store.delete([f"utt-{b * 16 - 5:06d}"])
    print(b, flush=True)
"""


@pytest.mark.parametrize("after", [7, 19])
def test_kill_during_writes(tmp_path: Path, after: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "c"), str(ROOT)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    done = -1
    for line in proc.stdout:
        done = int(line)
        if done >= after:
            os.kill(proc.pid, signal.SIGKILL)  # while the next batch is being written
            break
    proc.wait(30)
    store = ChromaMemoryStore(tmp_path / "c")
    counts = store.count()
    # Every batch whose add returned is there (the one in flight may be, whole or not at all).
    assert counts["clip"] in (done + 1, done + 2)
    gone = {f"utt-{b * 16 - 5:06d}" for b in range(done + 1) if b % 3 == 2}
    maybe_gone = {f"utt-{(done + 1) * 16 - 5:06d}"}  # the batch in flight deletes one too
    must = {f"utt-{n:06d}" for n in range((done + 1) * 16)} - gone - maybe_gone
    allowed = {f"utt-{n:06d}" for n in range((done + 2) * 16)} - gone
    ids = {m.id for m in store.moments_between(0, 2e9, kinds=("utterance",))}
    assert must <= ids <= allowed
    # The indexes agree with Chroma, moment by moment.
    chroma_ids = set(store._col(LEX.name).get(include=[])["ids"])
    assert chroma_ids == ids
    assert len(store._index[LEX.name]) == len(ids) == store.side.vec_count(LEX.name)
    walrus = store.keyword_search("walrus", 10_000)
    assert {h.moment.id for h in walrus} == ids
    q = LEX.embed(["the walrus number 3"])[0]
    hits = store.search(q, 10_000, DAY, DAY + 1e7, embedder=LEX.name)
    assert {h.moment.id for h in hits} == ids
    assert all(np.isfinite(h.similarity) for h in hits)
    assert store.side.get_state("pending") is None
