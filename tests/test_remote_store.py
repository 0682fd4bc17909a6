"""The memory store against a real Chroma server (`chroma run` on 127.0.0.1, a temp path): the
same answers as the embedded database, a clear error naming the server when it goes away or was
never there, and the memory writer losing nothing (and storing nothing twice) across an outage."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.config import config_from_dict
from app.core.errors import ConfigError, DaybookError
from app.core.events import ClipClosed, MomentsKept, MomentsStored, SoundClass, UtteranceTranscribed
from app.memory import chroma_store
from app.memory.chroma_store import ChromaMemoryStore, ChromaUnreachableError
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.journal import MomentJournal
from app.memory.keyframes import KeyFrameDir
from app.memory.store_process import ProcessMemoryStore
from app.memory.writer import MemoryWriter
from tests.conftest import ROOT
from tests.test_store import COUNTS, DAY1, DAY2, LEX, _items

pytestmark = pytest.mark.slow

CHROMA = Path(sys.executable).with_name("chroma")  # the CLI of the installed chromadb
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """`chroma run` on 127.0.0.1: started, stopped and started again on the same path and port."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port
        self.url = f"http://{HOST}:{port}"
        self.log = path.with_name(path.name + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 60.0) -> None:
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self.log.open("ab") as out:  # a file, not a pipe: a full pipe would stall the server
            self.proc = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", HOST,
                 "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + wait_s
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {self.proc.returncode}" if self.proc.poll() is not None
                       else f"no heartbeat in {wait_s:g} s")
                self.stop()
                pytest.fail(f"chroma run {why}; its output:\n{self.output()}")
            time.sleep(0.1)

    def answers(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=1.0)  # no proxy, ever
        try:
            conn.request("GET", "/api/v2/heartbeat")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    if not CHROMA.exists():
        pytest.skip(f"no chroma CLI at {CHROMA} (install chromadb)")
    srv = ChromaServer(tmp_path / "server-db", _free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _remote(how: str, tmp_path: Path, url: str) -> Any:
    """The store at `url`, in this process ("direct") or in its own ("process", as the app does)."""
    if how == "direct":
        return ChromaMemoryStore(tmp_path / "unused", url=url, index_dir=tmp_path / "index")
    return ProcessMemoryStore(tmp_path / "unused", url=url, index_dir=tmp_path / "index")


def _ids(hits: list[Any]) -> list[tuple[str, float]]:
    return [(h.moment.id, round(h.similarity, 4)) for h in hits]


def _answers(store: Any) -> dict[str, Any]:
    """Everything a store answers about the standard moments (tests/test_store.py), one delete."""
    q = LexicalEmbedder().embed(["what was for breakfast"])[0]
    return {
        "count": store.count(),
        "search": _ids(store.search(q, 3, embedder=LEX)),
        "search day 1": _ids(store.search(q, 5, DAY1, DAY2, embedder=LEX)),
        "keyword": _ids(store.keyword_search("what about the tomatoes?", 5)),
        "keyword day 2": _ids(store.keyword_search("breakfast", 5, DAY2, None)),
        "between": store.moments_between(DAY1, DAY2 + 86_400),
        "day": store.moments_on_day("2026-11-20"),
        "span": store.span(),
        "deleted": store.delete(["utt-1", "clip-1"]),
        "after delete": store.count(),
        "search after delete": _ids(store.search(q, 5, DAY1, DAY2, embedder=LEX)),
    }


@pytest.mark.parametrize("how", ["direct", "process"])
def test_a_server_answers_as_the_embedded_database_does(
        server: ChromaServer, tmp_path: Path, how: str) -> None:
    embedded = ChromaMemoryStore(tmp_path / "embedded")
    remote = _remote(how, tmp_path, server.url)
    try:
        embedded.add(_items(), LEX)
        remote.add(_items(), LEX)
        want, got = _answers(embedded), _answers(remote)
        assert got == want
        assert got["count"] == COUNTS and got["keyword"][0][0] == "utt-2"
        assert {i for i, _ in got["search"][:2]} == {"utt-0", "utt-3"}
        assert {m.id for m in got["deleted"]} == {"clip-1", "utt-1"}
        assert got["after delete"] == {"utterance": 3, "clip": 0, "summary": 0}
    finally:
        embedded.close()
        remote.close()


def test_searches_at_scale_go_to_the_server(server: ChromaServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EXACT_ROWS a search is Chroma's HNSW query: here on the server."""
    monkeypatch.setattr(chroma_store, "EXACT_ROWS", 0)
    embedded = ChromaMemoryStore(tmp_path / "embedded")
    remote = _remote("direct", tmp_path, server.url)
    try:
        q = LexicalEmbedder().embed(["breakfast pancakes"])[0]
        for store in (embedded, remote):
            store.add(_items(), LEX)
        for t0, t1 in ((None, None), (DAY2, None)):
            want = embedded.search(q, 3, t0, t1, embedder=LEX)
            got = remote.search(q, 3, t0, t1, embedder=LEX)
            assert [h.moment for h in got] == [h.moment for h in want] and got
            assert [h.similarity for h in got] == pytest.approx([h.similarity for h in want],
                                                                 abs=1e-4)
        assert got[0].moment.id == "utt-3"
    finally:
        embedded.close()
        remote.close()


def test_the_local_indexes_are_rebuilt_from_the_server(server: ChromaServer,
                                                       tmp_path: Path) -> None:
    store = _remote("direct", tmp_path, server.url)
    store.add(_items(), LEX)
    want = _answers(store)
    store.close()
    shutil.rmtree(tmp_path / "index")  # a new machine, or a lost data dir: the server has it all
    store = _remote("direct", tmp_path, server.url)
    try:
        store.add([(m, v) for m, v in _items() if m.id in ("utt-1", "clip-1")], LEX)  # deleted
        assert _answers(store) == want
    finally:
        store.close()


@pytest.mark.parametrize("how", ["direct", "process"])
def test_a_server_that_goes_away_is_named_in_the_error(
        server: ChromaServer, tmp_path: Path, how: str) -> None:
    store = _remote(how, tmp_path, server.url)
    items = _items()
    try:
        store.add(items[:2], LEX)
        server.stop()
        with pytest.raises(ChromaUnreachableError) as caught:
            store.add(items[2:], LEX)
        assert str(caught.value) == (
            f"the Chroma server at {server.url} cannot be reached: Connection refused")
        assert store.count()["utterance"] == 2  # what the server has; nothing half-written
        server.start()
        store.add(items[2:], LEX)  # the same store object: no restart, no reopen needed
        assert store.count() == COUNTS
        if how == "process":
            assert store.engine.failures == 0  # an error answered, not a crash
    finally:
        store.close()


def test_opening_where_nothing_listens_fails_at_once_naming_the_url(tmp_path: Path) -> None:
    url = f"http://{HOST}:{_free_port()}"
    t = time.monotonic()
    with pytest.raises(ChromaUnreachableError, match=f"^the Chroma server at {url} cannot be "
                       "reached: Connection refused$"):
        _remote("direct", tmp_path, url)
    with pytest.raises(DaybookError) as caught:
        ProcessMemoryStore(tmp_path / "unused", url=url, index_dir=tmp_path / "index",
                           start_timeout_s=30)
    assert f"the Chroma server at {url} cannot be reached" in str(caught.value)
    assert str(caught.value).count(url) == 1, caught.value  # said once, by the server's error
    assert time.monotonic() - t < 30


def _said(i: int) -> UtteranceTranscribed:
    return UtteranceTranscribed(id=f"utt-{i}", text=f"moment number {i}", t0_s=DAY1 + 10 * i,
                                t1_s=DAY1 + 10 * i + 2, sound=SoundClass.SPEECH, backend="test")


def test_the_writer_keeps_what_a_stopped_server_refused_and_stores_it_once_when_back(
        server: ChromaServer, tmp_path: Path) -> None:
    store = _remote("process", tmp_path, server.url)
    journal = MomentJournal(tmp_path / "journal.jsonl")
    events: list[object] = []
    writer = MemoryWriter(store, LexicalEmbedder(), KeyFrameDir(tmp_path / "kf"), batch_size=2,
                          flush_interval_s=0.05, journal=journal, emit=events.append,
                          abort=threading.Event())
    clip = ClipClosed(id="clip-0", t0_s=DAY1 + 35, t1_s=DAY1 + 45, n_frames=4,
                      key_frame=np.full((48, 64, 3), 128, np.uint8),
                      global_vector=np.ones(256, np.float32) / 16)
    try:
        writer.begin()
        for i in range(4):
            writer.handle(_said(i))
        assert writer.kept == 0 and store.count()["utterance"] == 4
        server.stop()
        for i in range(4, 7):
            writer.handle(_said(i))
        writer.handle(clip)
        writer.flush()
        assert writer.kept == 4 and writer.journaled == 4
        assert len(journal.path.read_text().splitlines()) == 4
        kept = [e for e in events if isinstance(e, MomentsKept)]
        assert kept[-1].count == 4 and kept[-1].journaled
        assert f"the Chroma server at {server.url} cannot be reached" in kept[-1].message
        time.sleep(writer.retry_every_s + 0.1)
        writer.idle()  # a retry while it is still down: still kept, not journaled twice
        assert writer.kept == 4 and len(journal.path.read_text().splitlines()) == 4

        server.start()
        deadline = time.monotonic() + 30
        while writer.kept and time.monotonic() < deadline:
            writer.idle()
            time.sleep(0.1)
        assert writer.kept == 0 and writer.last_error is None
        assert not journal.path.exists()
        assert [e.count for e in events if isinstance(e, MomentsKept)][-1] == 0
        stored = [i for e in events if isinstance(e, MomentsStored) for i in e.ids]
        assert sorted(stored) == sorted([f"utt-{i}" for i in range(7)] + ["clip-0"])
        assert store.count() == {"utterance": 7, "clip": 1, "summary": 0}
    finally:
        store.close()
    # The server itself holds each moment once.
    import chromadb
    from chromadb.config import Settings

    client = chromadb.HttpClient(host=HOST, port=server.port,
                                 settings=Settings(anonymized_telemetry=False))
    assert client.get_collection("utterances").count() == 7
    assert client.get_collection("clips").count() == 1


_AUDIT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    seen = []
    def hook(event, args):
        if event == "socket.connect":
            seen.append(["connect", repr(args[1])])
        elif event in ("socket.getaddrinfo", "socket.gethostbyname"):
            seen.append([event, repr(args[0])])
    sys.addaudithook(hook)
    import time
    from app.memory import chroma_store
    from tests.test_store import LEX, _items
    chroma_store.EXACT_ROWS = 0  # searches go to the server too
    tmp = Path({tmp!r})
    store = chroma_store.ChromaMemoryStore(tmp / "unused", url={url!r}, index_dir=tmp / "index")
    items = _items()
    store.add(items, LEX)
    store.search(items[0][1], 3, embedder=LEX)
    store.delete(["utt-0"])
    store.close()
    time.sleep(1.0)  # a telemetry thread would have sent by now
    print("RESULT" + json.dumps(seen))
""")


def test_the_client_contacts_only_the_server(server: ChromaServer, tmp_path: Path) -> None:
    """An audit hook sees every connect and DNS lookup made through Python (telemetry, a
    version check): with a server configured, only the server is contacted."""
    script = _AUDIT.format(root=str(ROOT), tmp=str(tmp_path), url=server.url)
    env = {k: v for k, v in os.environ.items() if k not in ("ANONYMIZED_TELEMETRY",
                                                            "CHROMA_TELEMETRY_IMPL")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line is not None, proc.stderr[-3000:]
    seen = json.loads(line[len("RESULT"):])
    connects = {target for event, target in seen if event == "connect"}
    assert connects == {repr((HOST, server.port))}
    assert {target for event, target in seen if event != "connect"} <= {repr(HOST)}


@pytest.mark.parametrize("url", ["", "http://127.0.0.1:8000", "https://chroma.example:443",
                                 "http://[::1]:8000", "http://[::1]",
                                 "http://chroma.lan/"])
def test_chroma_url_accepted(url: str) -> None:
    assert config_from_dict({"memory": {"chroma_url": url}}).memory.chroma_url == url


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host:21", "http://", "http://h:99999",
                                 "http://host:8000/some/path", "http://h:port",
                                 "http://h:"])
def test_chroma_url_refused_at_load(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^daybook.toml: \[memory\] chroma_url: .*http"):
        config_from_dict({"memory": {"chroma_url": url}}, "daybook.toml")
