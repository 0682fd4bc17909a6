"""OpenAIReasoner against a fake OpenAI-compatible server on 127.0.0.1 that each test tells
how to answer (stream, refuse, stall, break off, send nonsense)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.reasoning.base import Prompt, ReasonerError, Request
from app.reasoning.llm_openai import OpenAIReasoner

KEY = "sk-test-5ecret-value-123"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
PROMPT = Prompt(Request("hi", [], None, 1_795_165_200.0), MESSAGES, [])


@dataclass
class Seen:
    method: str
    path: str
    auth: str | None
    body: Any


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server
        fake.threads.append(threading.current_thread())
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        fake.seen.append(Seen(self.command, self.path, self.headers.get("Authorization"),
                              json.loads(raw) if raw else None))
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client went away: some tests do it on purpose
            fake.behaviour(self)

    # --- what a behaviour sends -------------------------------------------------------------

    def start_stream(self, chunked: bool = True) -> None:
        self.chunked = chunked
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding" if chunked else "Connection",
                         "chunked" if chunked else "close")
        self.end_headers()
        self.wfile.flush()

    def send(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw) if self.chunked else raw)
        self.wfile.flush()

    def event(self, obj: Any) -> None:
        self.send(f"data: {json.dumps(obj)}\n\n")

    def piece(self, text: str, finish: str | None = None) -> None:
        self.event({"choices": [{"index": 0, "delta": {"content": text},
                                 "finish_reason": finish}]})

    def end_stream(self) -> None:
        self.send("data: [DONE]\n\n")
        if self.chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def reply(self, status: int, body: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def wait_for_close(self, within_s: float = 10.0) -> None:
        """Keep the connection open until the client closes it (or the test ends)."""
        self.connection.settimeout(0.05)
        end = time.monotonic() + within_s
        while time.monotonic() < end and not self.server.stopping.is_set():
            try:
                if self.connection.recv(1) == b"":
                    self.server.client_closed.set()
                    return
            except TimeoutError:
                continue
            except OSError:
                self.server.client_closed.set()
                return

    def hold(self) -> None:
        """Say nothing more until the test ends."""
        self.server.stopping.wait(10)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.behaviour: Callable[[Handler], None] = lambda h: h.reply(200, {})
        self.seen: list[Seen] = []
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.client_closed = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    loop = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02})
    loop.start()
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()
    loop.join(5)
    for t in [loop, *srv.threads]:
        t.join(5)
        assert not t.is_alive(), "a fake server thread did not end"


@pytest.fixture(autouse=True)
def sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[socket.socket]]:
    """Every connection the reasoner opens; each must be closed when the test ends."""
    monkeypatch.delenv("DAYBOOK_LLM_API_KEY", raising=False)
    opened: list[socket.socket] = []
    real = socket.create_connection

    def recording(*args: Any, **kw: Any) -> socket.socket:
        s = real(*args, **kw)
        opened.append(s)
        return s

    monkeypatch.setattr(socket, "create_connection", recording)
    yield opened
    assert all(s.fileno() == -1 for s in opened), "a socket was left open"


def reasoner(srv: FakeServer, **kw: Any) -> OpenAIReasoner:
    return OpenAIReasoner(srv.url, kw.pop("model", "qwen"), **kw)


def answer(r: OpenAIReasoner, cancel: threading.Event | None = None) -> list[str]:
    return list(r.stream(PROMPT, cancel or threading.Event()))


def failure(r: OpenAIReasoner, *, pieces: list[str] | None = None) -> str:
    got = pieces if pieces is not None else []
    with pytest.raises(ReasonerError) as e:
        for p in r.stream(PROMPT, threading.Event()):
            got.append(p)
    assert KEY not in str(e.value)
    return str(e.value)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


# --- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "until-close"])
def test_streams_the_pieces_and_sends_the_request(server: FakeServer, chunked: bool) -> None:
    def talk(h: Handler) -> None:
        h.start_stream(chunked)
        h.event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        h.send(": keepalive\n\n")
        h.piece("Hel")
        line = "data: " + json.dumps({"choices": [{"delta": {"content": "lo, café ☕"}}]},
                                     ensure_ascii=False)
        raw = (line + "\r\n\r\n").encode()
        cut = raw.index("☕".encode()) + 1  # a line, and a character, split between reads
        h.send(raw[:cut])
        time.sleep(0.02)
        h.send(raw[cut:])
        h.send("event: ignored\nid: 7\n\n")
        h.piece(" today.", finish="stop")
        h.event({"choices": [], "usage": {"completion_tokens": 3}})
        h.end_stream()

    server.behaviour = talk
    r = reasoner(server, max_tokens=77, temperature=0.5)
    assert answer(r) == ["Hel", "lo, café ☕", " today."]
    seen = server.seen[-1]
    assert (seen.method, seen.path, seen.auth) == ("POST", "/v1/chat/completions", None)
    assert seen.body == {"model": "qwen", "messages": MESSAGES, "stream": True,
                         "max_tokens": 77, "temperature": 0.5}


def test_api_key_is_sent_when_set(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def talk(h: Handler) -> None:
        h.start_stream()
        h.piece("ok", finish="stop")
        h.end_stream()

    server.behaviour = talk
    monkeypatch.setenv("DAYBOOK_LLM_API_KEY", KEY)
    r = reasoner(server, model="")
    assert answer(r) == ["ok"]
    assert server.seen[-1].auth == f"Bearer {KEY}"
    assert server.seen[-1].body["model"] == "default"
    monkeypatch.setenv("MY_KEY", "other")  # another variable, read at each request
    assert answer(reasoner(server, api_key_env="MY_KEY")) == ["ok"]
    assert server.seen[-1].auth == "Bearer other"


def test_finish_reason_without_done_is_a_whole_answer(server: FakeServer) -> None:
    def talk(h: Handler) -> None:
        h.start_stream(chunked=False)
        h.piece("all")
        h.piece(" done", finish="length")

    server.behaviour = talk
    assert answer(reasoner(server)) == ["all", " done"]


# --- cancelling --------------------------------------------------------------------------------


def test_cancel_between_pieces_closes_the_connection(server: FakeServer) -> None:
    def talk(h: Handler) -> None:
        h.start_stream()
        h.piece("first")
        h.piece("second")
        h.wait_for_close()

    server.behaviour = talk
    cancel = threading.Event()
    got = []
    for p in reasoner(server).stream(PROMPT, cancel):
        got.append(p)
        cancel.set()
    assert got == ["first"]
    assert server.client_closed.wait(2)


@pytest.mark.parametrize("when", ["before-headers", "after-first-piece"])
def test_cancel_while_the_server_is_silent(server: FakeServer, when: str) -> None:
    def talk(h: Handler) -> None:
        if when == "after-first-piece":
            h.start_stream()
            h.piece("first")
        h.wait_for_close()

    server.behaviour = talk
    cancel = threading.Event()
    got: list[str] = []
    set_at: list[float] = []

    def fire() -> None:
        set_at.append(time.monotonic())
        cancel.set()

    timer = threading.Timer(0.3, fire)
    timer.start()
    try:
        got.extend(reasoner(server).stream(PROMPT, cancel))  # ends, without an error
        ended = time.monotonic()
    finally:
        timer.join()
    assert got == (["first"] if when == "after-first-piece" else [])
    assert set_at and ended - set_at[0] < 0.5
    assert server.client_closed.wait(2)


def test_cancel_set_before_asking_opens_nothing(server: FakeServer,
                                                sockets: list[socket.socket]) -> None:
    cancel = threading.Event()
    cancel.set()
    assert answer(reasoner(server), cancel) == []
    assert sockets == []


# --- failures ----------------------------------------------------------------------------------


def test_connection_refused() -> None:
    port = closed_port()
    r = OpenAIReasoner(f"http://127.0.0.1:{port}/v1")
    want = f"cannot reach the language model server at 127.0.0.1:{port} (connection refused)"
    assert failure(r) == want
    with pytest.raises(ReasonerError) as e:
        r.check()
    assert str(e.value) == want


def test_unknown_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: Any, **kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # no real lookup
    assert failure(OpenAIReasoner("http://llm.example:8080")) == (
        "cannot reach the language model server at llm.example:8080 (cannot look up the name "
        "'llm.example': Name or service not known)")


@pytest.mark.parametrize("status", [401, 403])
def test_key_refused(server: FakeServer, monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    server.behaviour = lambda h: h.reply(status, {"error": {"message": f"bad key {KEY}"}})
    monkeypatch.setenv("DAYBOOK_LLM_API_KEY", KEY)
    r = reasoner(server)
    assert failure(r) == (f"the language model server at 127.0.0.1:{server.port} refused the "
                          f"API key ({status}); set DAYBOOK_LLM_API_KEY")
    monkeypatch.delenv("DAYBOOK_LLM_API_KEY")
    assert failure(r).endswith(f"wants an API key ({status}); set DAYBOOK_LLM_API_KEY")


def test_server_error_with_json_body(server: FakeServer) -> None:
    server.behaviour = lambda h: h.reply(500, {"error": {"message": "CUDA out of memory",
                                                         "type": "server_error"}})
    assert failure(reasoner(server)) == (f"the language model server at 127.0.0.1:"
                                         f"{server.port} had a server error 500: CUDA out of "
                                         "memory")


def test_not_found_names_the_model_and_cuts_the_message(server: FakeServer) -> None:
    server.behaviour = lambda h: h.reply(404, {"error": {"message": "model missing " + "x" * 400}})
    msg = failure(reasoner(server, model="llama-9"))
    head = (f"the language model server at 127.0.0.1:{server.port} has no /v1/chat/completions "
            "or the model 'llama-9' (404 not found): model missing xxx")
    assert msg.startswith(head) and msg.endswith("x…")
    assert len(msg.split(": ", 1)[1]) == 200


def test_other_status_says_what_the_server_said(server: FakeServer) -> None:
    server.behaviour = lambda h: h.reply(400, {"detail": "context too long"})
    assert failure(reasoner(server)).endswith("rejected the request (400 Bad Request): "
                                              "context too long")


def test_stalled_stream(server: FakeServer) -> None:
    def talk(h: Handler) -> None:
        h.start_stream()
        h.piece("one")
        h.hold()

    server.behaviour = talk
    got: list[str] = []
    start = time.monotonic()
    msg = failure(reasoner(server, stall_timeout_s=0.5), pieces=got)
    assert time.monotonic() - start < 2.0
    assert got == ["one"]
    assert msg == (f"the language model server at 127.0.0.1:{server.port} stopped answering "
                   "(no data for 0.5 s)")


@pytest.mark.parametrize("headers", [False, True], ids=["no-headers", "headers-only"])
def test_no_first_token(server: FakeServer, headers: bool) -> None:
    def talk(h: Handler) -> None:
        if headers:
            h.start_stream()
        h.hold()

    server.behaviour = talk
    start = time.monotonic()
    msg = failure(reasoner(server, first_token_timeout_s=0.3, stall_timeout_s=0.05))
    assert 0.3 <= time.monotonic() - start < 2.0
    assert msg.endswith("did not start answering (no data for 0.3 s)")


@pytest.mark.parametrize(("line", "why"), [
    ("data: {not json\n\n", "a data line that is not JSON"),
    ('data: {"id": "x", "object": "chat.completion.chunk"}\n\n', "a message without choices"),
])
def test_malformed_stream(server: FakeServer, line: str, why: str) -> None:
    def talk(h: Handler) -> None:
        h.start_stream()
        h.piece("fine")
        h.send(line)
        h.end_stream()

    server.behaviour = talk
    got: list[str] = []
    msg = failure(reasoner(server), pieces=got)
    assert got == ["fine"]
    assert msg.startswith(f"the language model server at 127.0.0.1:{server.port} sent a "
                          f"malformed stream: {why}")


@pytest.mark.parametrize("line", [
    'data: {"error": {"code": 500, "message": "the context is full"}}\n\n',
    'error: {"code": 500, "message": "the context is full"}\n\n',  # older llama.cpp
])
def test_error_in_the_stream(server: FakeServer, line: str) -> None:
    def talk(h: Handler) -> None:
        h.start_stream()
        h.send(line)

    server.behaviour = talk
    assert failure(reasoner(server)).endswith("reported an error: the context is full")


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "until-close"])
def test_connection_dropped_mid_answer(server: FakeServer, chunked: bool) -> None:
    def talk(h: Handler) -> None:
        h.start_stream(chunked)
        h.piece("half an")
        h.send('data: {"choices": [{"delta": {"content": " ans')  # cut off mid-line

    server.behaviour = talk
    got: list[str] = []
    msg = failure(reasoner(server), pieces=got)
    assert got == ["half an"]
    assert msg == (f"the language model server at 127.0.0.1:{server.port} closed the "
                   "connection in the middle of the answer")


def test_not_http(server: FakeServer) -> None:
    def talk(h: Handler) -> None:
        h.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        h.wfile.flush()

    server.behaviour = talk
    assert "did not answer in HTTP" in failure(reasoner(server))


@pytest.mark.parametrize("behaviour", [
    lambda h: h.reply(401, {"error": {"message": f"key {KEY} is wrong"}}),
    lambda h: h.reply(500, {"error": {"message": f"crashed while using {KEY}"}}),
    lambda h: h.reply(404, f"no such key {KEY}".encode()),
    lambda h: (h.start_stream(), h.send(f"data: {KEY}\n\n")),
    lambda h: (h.start_stream(), h.event({"error": f"echo {KEY}"})),
    lambda h: (h.start_stream(), h.event({"echo": KEY})),
], ids=["401", "500", "404-text", "not-json", "stream-error", "no-choices"])
def test_the_key_never_appears_in_a_message(server: FakeServer,
                                            monkeypatch: pytest.MonkeyPatch,
                                            behaviour: Callable[[Handler], None]) -> None:
    monkeypatch.setenv("DAYBOOK_LLM_API_KEY", KEY)
    server.behaviour = behaviour
    failure(reasoner(server))  # asserts KEY is not in the message
    assert server.seen[-1].auth == f"Bearer {KEY}"


# --- check -------------------------------------------------------------------------------------


def test_check_lists_the_first_model(server: FakeServer) -> None:
    server.behaviour = lambda h: h.reply(200, {"object": "list", "data": [
        {"id": "qwen2.5-1.5b", "object": "model"}, {"id": "other"}]})
    assert reasoner(server).check() == "qwen2.5-1.5b"
    assert (server.seen[-1].method, server.seen[-1].path) == ("GET", "/v1/models")
    server.behaviour = lambda h: h.reply(200, {"object": "list", "data": []})
    assert reasoner(server).check() == ""
    server.behaviour = lambda h: h.reply(200, b"<html>hello</html>")
    with pytest.raises(ReasonerError, match="malformed model list"):
        reasoner(server).check()
    server.behaviour = lambda h: h.reply(401, {})
    with pytest.raises(ReasonerError, match=r"wants an API key \(401\)"):
        reasoner(server).check()


def test_check_of_a_silent_server(server: FakeServer) -> None:
    server.behaviour = lambda h: h.hold()
    start = time.monotonic()
    with pytest.raises(ReasonerError, match=r"stopped answering \(no data for 0.3 s\)"):
        reasoner(server, connect_timeout_s=0.3).check()
    assert time.monotonic() - start < 2.0


# --- the address -------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "base"), [
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
    (" HTTP://localhost:11434 ", "http://localhost:11434/v1"),
    ("http://localhost/llm", "http://localhost:80/llm/v1"),
    ("https://example.org/api/v1", "https://example.org:443/api/v1"),
    ("http://[::1]:8000", "http://[::1]:8000/v1"),
])
def test_base_url_normalisation(given: str, base: str) -> None:
    r = OpenAIReasoner(given, "m")
    assert r.base_url == base
    assert r.name == f"OpenAI-compatible server {base.split('//')[1].split('/')[0]} (m)"


def test_name_without_model() -> None:
    assert OpenAIReasoner("http://127.0.0.1:8080").name == "OpenAI-compatible server 127.0.0.1:8080"


def test_base_url_without_v1_reaches_the_api(server: FakeServer) -> None:
    server.behaviour = lambda h: h.reply(200, {"data": [{"id": "m"}]})
    assert OpenAIReasoner(f"http://127.0.0.1:{server.port}").check() == "m"
    assert server.seen[-1].path == "/v1/models"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8080/v1", "file:///tmp/model",
                                 "127.0.0.1:8080", "localhost:8080/v1", "http://", "",
                                 "http://127.0.0.1:99999/v1"])
def test_bad_address(url: str) -> None:
    with pytest.raises(ValueError, match="language model server address"):
        OpenAIReasoner(url)


def test_prepare_fits_the_context() -> None:
    r = OpenAIReasoner("http://127.0.0.1:8080", context_tokens=512, max_tokens=100)
    prompt = r.prepare(Request("what did I eat", [], None, 1_795_165_200.0))
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert "what did I eat" in prompt.messages[1]["content"]
    r.close()
