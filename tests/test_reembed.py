"""Switching embedders on real data: a data dir from the lexical embedder migrates to MiniLM in
the background, searches keep working meanwhile, and a SIGKILL in the middle loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.config import Config, ReasoningConfig
from app.memory.base import Moment
from app.memory.chroma_store import ChromaMemoryStore
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.keyframes import KeyFrameDir
from app.memory.reembed import Reembedder
from app.pipeline.factory import make_embedder
from app.reasoning.retrieve import Retriever
from tests.conftest import ROOT

DAY = 1_795_165_200.0
LEX = LexicalEmbedder()
FACTS = ["Anna said we should watch Inception tonight", "the plumber comes on Thursday at ten",
         "I left the umbrella at Tom's flat", "buy oat milk and two lemons on the way home"]
FILLER = [f"note {i}: the weather was grey and the bus was late again" for i in range(116)]


@pytest.fixture(scope="module")
def minilm():
    e = make_embedder(Config())
    assert e.name == "minilm-l6-int8"  # the zero-download default
    return e


def _lexical_dir(path: Path) -> None:
    store = ChromaMemoryStore(path)
    texts = FACTS + FILLER
    items = [(Moment(f"utt-{i:03d}", "utterance", DAY + 60 * i, DAY + 60 * i + 3, t),
              LEX.embed([t])[0]) for i, t in enumerate(texts)]
    items.append((Moment("clip-0", "clip", DAY, DAY + 10, n_frames=4),
                  np.ones(256, np.float32) / 16))
    store.add(items, LEX.name)
    store.close()


def _retriever(store: ChromaMemoryStore, embedder) -> Retriever:
    return Retriever(store, embedder, KeyFrameDir(Path("/nonexistent")), ReasoningConfig(),
                     others=[LEX])


def test_a_lexical_data_dir_migrates_in_the_background(tmp_path: Path, minilm) -> None:
    _lexical_dir(tmp_path / "c")
    store = ChromaMemoryStore(tmp_path / "c")
    retriever = _retriever(store, minilm)
    # Before: the lexical vectors answer; a paraphrase sharing no word finds the fact only by
    # chance, a question with its words does.
    state = store.embedder_state(minilm.name)
    assert (state.active, state.building, state.done, state.total) == (LEX.name, minilm.name,
                                                                       0, 120)
    cites, _ = retriever.retrieve("where is my umbrella?")
    assert cites[0].moment.id == "utt-002"
    events: list[object] = []
    worker = Reembedder(store, minilm, events.append, duty=1.0)
    worker.run()  # in this thread: to the end
    assert store.embedder_state(minilm.name) == type(state)(minilm.name, None, 0, 120)
    assert [getattr(e, "done", None) for e in events][-1] == 120
    assert getattr(events[-1], "finished", False)
    cites, _ = retriever.retrieve("what film did Anna recommend?")
    assert cites[0].moment.id == "utt-000"  # by meaning now
    assert store.count() == {"utterance": 120, "clip": 1, "summary": 0}


_KILLED = r"""
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from app.core.config import Config
from app.memory.chroma_store import ChromaMemoryStore
from app.memory.reembed import Reembedder
from app.pipeline.factory import make_embedder
store = ChromaMemoryStore(Path(sys.argv[1]))
worker = Reembedder(store, make_embedder(Config()), lambda e: print("done", e.done, flush=True),
                    duty=1.0, batch=8)
worker.run()
"""


def test_a_kill_during_re_embedding_resumes_and_loses_nothing(tmp_path: Path, minilm) -> None:
    _lexical_dir(tmp_path / "c")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path / "c"), str(ROOT)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    reported = 0
    for line in proc.stdout:
        reported = int(line.split()[1])
        if reported >= 40:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    assert reported >= 40
    store = ChromaMemoryStore(tmp_path / "c")
    state = store.embedder_state(minilm.name)
    assert state.active == LEX.name and state.building == minilm.name
    assert reported <= state.done < 120  # nothing reported done was lost
    assert store.count() == {"utterance": 120, "clip": 1, "summary": 0}
    retriever = _retriever(store, minilm)
    cites, _ = retriever.retrieve("oat milk")  # meanwhile: still answering
    assert cites[0].moment.id == "utt-003"
    Reembedder(store, minilm, lambda e: None, duty=1.0).run()
    state = store.embedder_state(minilm.name)
    assert (state.active, state.building) == (minilm.name, None)
    q = minilm.embed(["groceries to pick up"])[0]
    assert store.search(q, 1, embedder=minilm.name)[0].moment.id == "utt-003"
    assert store.search(q, 1, DAY, DAY + 600, embedder=minilm.name)[0].moment.id == "utt-003"
