"""The reasoning module on real parts: llama-cpp-python running the real SmolLM2-135M-Instruct
(from its wheel) in a child process answers from a real Chroma memory built by ingesting
generated speech; the answer streams and cites the moments it was given; a cancel stops the
generation within one token; a bad GGUF is refused before llama.cpp sees it; a killed model
process is restarted; and llama.cpp's own OpenAI-compatible server answers over HTTP, with a
refused key or a server gone giving the extractive answer and a clear reason.

The small model's words are not asserted (it is not good enough to answer users: see
notes/ZERO_DOWNLOAD.md); that it ran, streamed, and what it was given, are."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.core.config import Config
from app.core.errors import BackendUnavailableError
from app.core.events import AnswerSentence, EngineFailed, EngineRecovered
from app.core.paths import DataPaths
from app.memory.base import Moment
from app.reasoning.base import Citation, Request
from tests import mediagen
from tests.conftest import ROOT, run_cli
from tests.llm_model import smollm2
from tests.tinymodels import make_tiny_llama_gguf

pytestmark = pytest.mark.slow

LINES = [(1.0, "I lent my blue umbrella to Peter"),
         (7.0, "we need to buy milk and eggs at the shop"),
         (13.0, "the dentist appointment is on Friday at ten")]
START = "2026-11-24T14:00:00"


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose memory holds the three lines, heard by the default recogniser."""
    d = tmp_path_factory.mktemp("llm-data")
    wav = mediagen.write_wav(d / "talk.wav", mediagen.conversation(LINES, 19.0))
    res = run_cli("ingest", "--audio", str(wav), "--start", START, "--json", data_dir=d / "data")
    assert res.code == 0, res.err
    assert res.json()["utterances"] == 3
    return d / "data"


def llama_cfg(**reasoning: object) -> Config:
    return Config().replace(reasoning={"backend": "llama", "model": str(smollm2()),
                                       "context_tokens": 2048, "max_tokens": 48, "threads": 2,
                                       **reasoning})


@pytest.fixture
def service(memory: Path) -> Iterator[object]:
    from app.pipeline.service import DaybookService

    svc = DaybookService(llama_cfg(), DataPaths(memory).ensure(), background=False)
    yield svc
    svc.close()


def test_the_model_answers_from_memory_streaming_and_citing(service) -> None:  # type: ignore[no-untyped-def]
    events: list[object] = []
    service.bus.subscribe(events.append)
    chunks: list[str] = []
    answer = service.ask_and_wait("who has my umbrella?", on_chunk=chunks.append,
                                  timeout_s=120)
    assert answer.reasoner == "SmolLM2-135M-Instruct.Q4_1 (llama.cpp)"
    assert answer.note is None and not answer.interrupted
    assert len(chunks) >= 3 and "".join(chunks).strip() == answer.text  # token by token
    assert answer.text and any(isinstance(e, AnswerSentence) for e in events)
    # It cites the moments the prompt gave it; the umbrella line first.
    assert "umbrella" in answer.citations[0].moment.text
    assert {c.moment.kind for c in answer.citations} == {"utterance"}
    assert not any(isinstance(e, EngineFailed) for e in events)


def test_cancelling_stops_the_generation_within_one_token() -> None:
    from app.reasoning.llm_llama import LlamaReasoner

    r = LlamaReasoner(smollm2(), context_tokens=2048, threads=2, max_tokens=400)
    try:
        t = time.time() - 60
        cites = [Citation(Moment("u1", "utterance", t, t + 3, "I lent my umbrella to Peter"),
                          1.0, None)]
        prompt = r.prepare(Request("Tell me a long story about umbrellas and Peter, in many "
                                   "sentences.", cites, None, time.time()))
        cancel = threading.Event()
        got = []
        for piece in r.stream(prompt, cancel):
            got.append(piece)
            if len(got) == 5:
                cancel.set()
        assert len(got) == 5
        assert 5 <= r.last_generated <= 6  # the five sent, and at most the one under way
        # The model process goes on answering.
        assert "".join(r.stream(r.prepare(Request("Who has the umbrella?", cites, None,
                                                      time.time())), threading.Event()))
    finally:
        r.close()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.parametrize("damage", ["truncated", "garbage", "vision projector"])
def test_a_bad_gguf_is_refused_before_llama_cpp_sees_it(tmp_path: Path, damage: str) -> None:
    from app.pipeline.factory import make_reasoner
    from app.reasoning.llm_llama import LlamaReasoner

    bad = tmp_path / "model.gguf"
    if damage == "truncated":
        with smollm2().open("rb") as fh:
            bad.write_bytes(fh.read(40_000_000))
        why = "truncated"
    elif damage == "garbage":
        bad.write_bytes(b"GGUF" + os.urandom(4096))
        why = "GGUF"
    else:
        make_tiny_llama_gguf(bad, architecture="clip")
        why = "not a language model"
    before = _children()
    with pytest.raises(BackendUnavailableError, match=why):
        LlamaReasoner(bad)
    assert _children() == before  # no process was started for it
    reasoner = make_reasoner(llama_cfg(model=str(bad)))
    assert reasoner.name == "extractive (no language model)"


def test_a_killed_model_process_is_restarted_and_answers(service) -> None:  # type: ignore[no-untyped-def]
    events: list[object] = []
    service.bus.subscribe(events.append)
    first = service.ask_and_wait("who has my umbrella?", timeout_s=120)
    assert first.reasoner.endswith("(llama.cpp)")
    pid = service.reasoner.engine.pid
    os.kill(pid, signal.SIGKILL)
    answers = [service.ask_and_wait("what should I buy at the shop?", timeout_s=120)
               for _ in range(2)]
    # The one asked as it died may be answered from memory (with the reason); then the model
    # process is back and answers.
    assert answers[-1].reasoner.endswith("(llama.cpp)") and answers[-1].note is None
    assert service.reasoner.engine.pid not in (None, pid)
    assert any(isinstance(e, EngineFailed) and e.engine == "language model" for e in events)
    assert any(isinstance(e, EngineRecovered) and e.engine == "language model" for e in events)
    for a in answers:
        assert "milk" in a.citations[0].moment.text  # nothing lost either way


# --- over HTTP: llama.cpp's OpenAI-compatible server ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")  # not a pipe: it fills
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2()), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--api_key", "test-key-123", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/models", timeout=1)
        except urllib.error.HTTPError:
            break  # 401: it is up
        except OSError:
            time.sleep(0.3)
            continue
        break
    else:
        proc.kill()
        raise AssertionError("the server did not start in 90 s")
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def test_the_server_streams_an_answer(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.reasoning.llm_openai import OpenAIReasoner

    monkeypatch.setenv("DAYBOOK_LLM_API_KEY", "test-key-123")
    r = OpenAIReasoner(server, "smollm2", max_tokens=40, context_tokens=2048)
    assert r.check() == "smollm2"
    t = time.time() - 60
    cites = [Citation(Moment("u1", "utterance", t, t + 3, "I lent my umbrella to Peter"), 1.0,
                      None)]
    pieces = list(r.stream(r.prepare(Request("Who has my umbrella?", cites, None, time.time())),
                           threading.Event()))
    assert len(pieces) >= 2 and "".join(pieces).strip()  # token by token


@pytest.mark.parametrize("case", ["no key", "server gone"])
def test_a_refused_or_missing_server_gives_the_memorys_answer(
        server: str, memory: Path, case: str) -> None:
    url = server if case == "no key" else f"http://127.0.0.1:{_free_port()}/v1"
    config = memory.parent / f"openai-{case.replace(' ', '-')}.toml"
    config.write_text(f'[reasoning]\nbackend = "openai"\nbase_url = "{url}"\n'
                      'model = "smollm2"\n')
    res = run_cli("ask", "who has my umbrella?", "--json", data_dir=memory,
                  env={"DAYBOOK_CONFIG": str(config), "DAYBOOK_LLM_API_KEY": ""})
    assert res.code == 0, res.err
    answer = res.json()
    assert answer["reasoner"] == "extractive (no language model)"
    assert "umbrella" in answer["answer"] and " you said: " in answer["answer"]
    assert "umbrella" in answer["citations"][0]["text"]
    port = url.split(":")[2].split("/")[0]
    want = ("wants an API key (401); set DAYBOOK_LLM_API_KEY" if case == "no key"
            else f"cannot reach the language model server at 127.0.0.1:{port} "
                 "(connection refused)")
    assert want in answer["note"]


def test_a_model_imported_through_the_model_manager_is_used(tmp_path: Path) -> None:
    """`backend = "auto"`: the extractive answer until a language model is installed, then
    that model, without a restart (the window reloads after its Settings dialog)."""
    from app.pipeline.service import DaybookService

    svc = DaybookService(Config(), DataPaths(tmp_path / "data").ensure(), background=False)
    try:
        assert svc.reasoner.name == "extractive (no language model)"
        assert not svc.reload_reasoner()  # nothing changed
        svc.models.import_file(smollm2(), "llm", "smollm2-135m")
        assert svc.reload_reasoner()
        answer = svc.ask_and_wait("what did I say?", timeout_s=120)
        assert answer.reasoner == "smollm2-135m (llama.cpp)" and answer.note is None
        assert answer.citations == []  # an empty memory: nothing to cite
    finally:
        svc.close()
