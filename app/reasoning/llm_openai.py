"""Answers from a language model behind an OpenAI-compatible HTTP server: llama.cpp's
`llama-server` (or `python -m llama_cpp.server`), Ollama, vLLM, LM Studio.

POST {base}/chat/completions with "stream": true; the Server-Sent Events (`data: {json}`,
`data: [DONE]` last) are read as they come, with the standard library only. The socket is read
in 0.1 s slices, so a `cancel` (new question, Stop, barge-in) is seen at once even while the
server is quiet, and the silence is timed: `first_token_timeout_s` until the first piece of text
(the model reads the prompt first), `stall_timeout_s` after it. Every failure is a ReasonerError
naming the server and what happened (the caller then answers extractively), and closes the
socket. The API key is read from the variable named by `api_key_env` at each request and is in
no message. Proxy settings are not used (the server is local). Opening a connection may hold a
cancel up to `connect_timeout_s` (a listening server accepts at once)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from app.reasoning.base import Prompt, ReasonerError, Request
from app.reasoning.prompt import build_prompt, estimate_tokens

POLL_S = 0.1  # the longest a wait goes without looking at `cancel`
MAX_LINE = 1 << 20  # a header, chunk-size or SSE line longer than this is nonsense
MAX_BODY = 1 << 22  # the model list, or an error's body (only its start is used)


class _Cancelled(Exception):
    """`cancel` was set while waiting for the server."""


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class _Response:
    """An HTTP/1.1 response read from `sock` in short slices: `cancel` is looked at between them,
    and `limit_s` of silence (no byte at all) ends the wait with ReasonerError("{who} {silence}
    (no data for …)"). A connection that breaks reads as its end, with `broken` saying why."""

    def __init__(self, sock: socket.socket, who: str, cancel: threading.Event,
                 limit_s: float, silence: str) -> None:
        self.sock, self.who, self.cancel, self.limit_s, self.silence = (sock, who, cancel,
                                                                        limit_s, silence)
        self.buf, self.broken = bytearray(), ""
        first = self._line()
        if first is None:
            raise ReasonerError(f"{who} closed the connection without answering"
                                + (f" ({self.broken})" if self.broken else ""))
        parts = first.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ReasonerError(f"{who} did not answer in HTTP")
        self.status = int(parts[1])
        self.reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.partition(b":")
            self.headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if line is None:
            raise ReasonerError(f"{who} closed the connection in the middle of its headers")

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> bool:
        """Read what the server sends next into `buf`; False at the end of the connection."""
        since = time.monotonic()
        while True:
            if self.cancel.is_set():
                raise _Cancelled
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if time.monotonic() - since >= self.limit_s:
                    raise ReasonerError(f"{self.who} {self.silence} "
                                        f"(no data for {self.limit_s:g} s)") from None
                continue
            except OSError as e:
                self.broken = e.strerror or type(e).__name__
                return False
            if not data:
                return False
            self.buf += data
            return True

    def _line(self) -> bytes | None:
        """The next CRLF- or LF-ended line without its end; None at the end of the connection."""
        start = 0
        while (i := self.buf.find(b"\n", start)) < 0:
            if len(self.buf) > MAX_LINE:
                raise ReasonerError(f"{self.who} sent a malformed answer (a line over 1 MiB)")
            start = len(self.buf)
            if not self._fill():
                return None
        line = bytes(self.buf[:i]).rstrip(b"\r")
        del self.buf[: i + 1]
        return line

    def body(self) -> Iterator[bytes]:
        """The body's bytes as they arrive (chunked, Content-Length or up to the close)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while (line := self._line()) is not None:
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise ReasonerError(f"{self.who} sent a malformed answer (a bad chunk "
                                        "size)") from None
                if size == 0 or size > MAX_BODY:
                    return
                while len(self.buf) < size + 2:
                    if not self._fill():
                        return
                piece = bytes(self.buf[:size])
                del self.buf[: size + 2]
                yield piece
            return
        n = self.headers.get("content-length", "")
        left = int(n) if n.isdigit() else float("inf")  # else up to the close
        while left > 0 and (self.buf or self._fill()):
            piece = bytes(self.buf[: int(min(left, len(self.buf)))])
            del self.buf[: len(piece)]
            left -= len(piece)
            yield piece

    def read_all(self) -> bytes:
        out = bytearray()
        for piece in self.body():
            out += piece
            if len(out) >= MAX_BODY:
                break
        return bytes(out)

    def lines(self) -> Iterator[bytes]:
        """The body's lines as they arrive; a last line cut off by the close is dropped."""
        pending = bytearray()
        for piece in self.body():
            pending += piece
            while (i := pending.find(b"\n")) >= 0:
                yield bytes(pending[:i]).rstrip(b"\r")
                del pending[: i + 1]
            if len(pending) > MAX_LINE:
                raise ReasonerError(f"{self.who} sent a malformed stream (a line over 1 MiB)")


class OpenAIReasoner:
    """A Reasoner that asks an OpenAI-compatible chat server. `base_url` is the API's root,
    "http://127.0.0.1:8080/v1"; without "/v1" at the end of its path ("http://host:11434",
    "http://host/llm"), "/v1" is appended. Only http and https are accepted (ValueError)."""

    def __init__(self, base_url: str, model: str = "", *,
                 api_key_env: str = "DAYBOOK_LLM_API_KEY", context_tokens: int = 4096,
                 max_tokens: int = 160, temperature: float = 0.2,
                 connect_timeout_s: float = 5.0, first_token_timeout_s: float = 120.0,
                 stall_timeout_s: float = 30.0) -> None:
        url = urlsplit(base_url.strip())
        self._tls = url.scheme.lower() == "https"
        if url.scheme.lower() not in ("http", "https") or not url.hostname:
            raise ValueError("the language model server address must be an http:// or "
                             f"https:// address with a host, like http://127.0.0.1:8080/v1 "
                             f"(got {base_url!r})")
        try:
            port = url.port or (443 if self._tls else 80)
        except ValueError:
            raise ValueError(f"the language model server address has a bad port: {base_url!r}"
                             ) from None
        if min(connect_timeout_s, first_token_timeout_s, stall_timeout_s) <= 0:
            raise ValueError("the language model server's timeouts must be over 0 s")
        self._host, self._port = url.hostname, port
        self.where = f"[{self._host}]:{port}" if ":" in self._host else f"{self._host}:{port}"
        path = url.path.rstrip("/")
        self._path = path if path.endswith("/v1") else path + "/v1"
        self.base_url = f"{url.scheme.lower()}://{self.where}{self._path}"
        self.model, self.api_key_env, self.context_tokens = model, api_key_env, context_tokens
        self.max_tokens, self.temperature, self.connect_timeout_s = (max_tokens, temperature,
                                                                     connect_timeout_s)
        self.first_token_timeout_s, self.stall_timeout_s = first_token_timeout_s, stall_timeout_s
        self.who = f"the language model server at {self.where}"
        self.name = f"OpenAI-compatible server {self.where}" + (f" ({model})" if model else "")

    def prepare(self, request: Request) -> Prompt:
        return build_prompt(request, context_tokens=self.context_tokens,
                            answer_tokens=self.max_tokens, count=estimate_tokens)

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]:
        body = json.dumps({"model": self.model or "default", "messages": prompt.messages,
                           "stream": True, "max_tokens": self.max_tokens,
                           "temperature": self.temperature}).encode()
        try:
            resp = self._open("POST", "/chat/completions", body, cancel,
                              self.first_token_timeout_s, "did not start answering")
        except _Cancelled:
            return
        try:
            if resp.status != 200:
                raise self._http_error(resp, "/chat/completions")
            finished = answered = False
            for line in resp.lines():
                if line.startswith(b"error:"):  # llama.cpp's error event
                    raise ReasonerError(f"{self.who} reported an error: "
                                        f"{self._message(line[6:])}")
                if not line.startswith(b"data:") or not (data := line[5:].strip()):
                    continue  # comments (keepalives), blank lines, other SSE fields
                if data == b"[DONE]":
                    return
                piece, done = self._piece(data)
                finished |= done
                if piece:
                    answered = True
                    resp.limit_s, resp.silence = self.stall_timeout_s, "stopped answering"
                    yield piece
                    if cancel.is_set():
                        return
            if not finished:
                where = "in the middle of the answer" if answered else "before answering"
                raise ReasonerError(f"{self.who} closed the connection {where}"
                                    + (f" ({resp.broken})" if resp.broken else ""))
        except _Cancelled:
            return
        finally:
            resp.close()

    def close(self) -> None:
        """Nothing to free: each answer has its own connection, closed when it ends."""

    def check(self) -> str:
        """Whether the server is up: the first model id it lists ("" when none), else
        ReasonerError. Waits `connect_timeout_s` at most for each step."""
        resp = self._open("GET", "/models", None, threading.Event(), self.connect_timeout_s,
                          "stopped answering")
        try:
            if resp.status != 200:
                raise self._http_error(resp, "/models")
            try:
                listed = json.loads(resp.read_all()).get("data")
            except (ValueError, AttributeError):
                raise ReasonerError(f"{self.who} sent a malformed model list "
                                    f"({self._path}/models)") from None
            first = listed[0] if isinstance(listed, list) and listed else {}
            return str(first.get("id") or "") if isinstance(first, dict) else ""
        finally:
            resp.close()

    def _key(self) -> str:
        return os.environ.get(self.api_key_env, "").strip()

    def _said(self, text: str | bytes, n: int = 200) -> str:
        """What the server said, for a message: without the API key, at most `n` characters."""
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        if key := self._key():
            said = said.replace(key, "***")
        return _short(repr(said) if isinstance(text, bytes) else said, n)

    def _open(self, method: str, path: str, body: bytes | None, cancel: threading.Event,
              limit_s: float, silence: str) -> _Response:
        """Connect, send the request and read the response's head."""
        if cancel.is_set():
            raise _Cancelled
        key = self._key()
        if any(ord(c) < 32 or ord(c) > 126 for c in key):
            raise ReasonerError(f"{self.api_key_env} holds characters that cannot be sent as "
                                "an API key")
        head = [f"{method} {self._path}{path} HTTP/1.1", f"Host: {self.where}",
                "User-Agent: Daybook", "Accept: text/event-stream, application/json",
                "Connection: close"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if key:
            head.append(f"Authorization: Bearer {key}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((self._host, self._port),
                                            timeout=self.connect_timeout_s)
            if self._tls:
                sock = ssl.create_default_context().wrap_socket(sock,
                                                                server_hostname=self._host)
            sock.sendall(data)
        except OSError as e:
            if sock is not None:
                sock.close()
            raise ReasonerError(f"cannot reach {self.who} ({self._why(e)})") from e
        try:
            sock.settimeout(min(POLL_S, limit_s))
            return _Response(sock, self.who, cancel, limit_s, silence)
        except BaseException:
            sock.close()
            raise

    def _why(self, e: OSError) -> str:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, TimeoutError):
            return f"no answer within {self.connect_timeout_s:g} s"
        if isinstance(e, socket.gaierror):
            return f"cannot look up the name {self._host!r}: {e.strerror}"
        return e.strerror or str(e) or type(e).__name__

    def _message(self, raw: bytes) -> str:
        """The server's own words in an error body: JSON error.message (or error, detail,
        message), else the text unless it is HTML; at most 200 characters."""
        try:
            obj: Any = json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace").strip()
            return "" if text.startswith("<") else self._said(text)
        for k in ("error", "message", "detail"):
            v = obj.get(k) if isinstance(obj, dict) else None
            if isinstance(v, dict):
                v = v.get("message")
            if isinstance(v, str) and v.strip():
                return self._said(v)
        return ""

    def _http_error(self, resp: _Response, path: str) -> ReasonerError:
        resp.limit_s, resp.silence = self.stall_timeout_s, "stopped answering"
        try:
            said = self._message(resp.read_all())
        except ReasonerError:
            said = ""
        s, tail = resp.status, f": {said}" if said else ""
        if s in (401, 403):
            verb = "refused the API key" if self._key() else "wants an API key"
            return ReasonerError(f"{self.who} {verb} ({s}); set {self.api_key_env}")
        if s == 404:
            what = f"{self._path}{path}" + (f" or the model {self.model!r}" if self.model
                                             and path == "/chat/completions" else "")
            return ReasonerError(f"{self.who} has no {what} (404 not found){tail}")
        if s >= 500:
            return ReasonerError(f"{self.who} had a server error {s}{tail}")
        return ReasonerError(f"{self.who} rejected the request ({s} "
                             f"{self._said(resp.reason, 60)}){tail}")

    def _piece(self, data: bytes) -> tuple[str, bool]:
        """The text in one stream message, and whether it says the answer is finished."""
        try:
            obj: Any = json.loads(data)
        except ValueError:
            raise ReasonerError(f"{self.who} sent a malformed stream: a data line that is "
                                f"not JSON: {self._said(data, 80)}") from None
        if isinstance(obj, dict) and obj.get("error"):
            raise ReasonerError(f"{self.who} reported an error: {self._message(data)}")
        choices = obj.get("choices") if isinstance(obj, dict) else None
        if not isinstance(choices, list) or (choices and not isinstance(choices[0], dict)):
            raise ReasonerError(f"{self.who} sent a malformed stream: a message without "
                                f"choices: {self._said(data, 80)}")
        if not choices:  # e.g. a last message with only the usage
            return "", False
        delta = choices[0].get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        return (text if isinstance(text, str) else "",
                choices[0].get("finish_reason") is not None)
