"""A misbehaving HTTPS file server on 127.0.0.1 for download tests, and a CONNECT proxy.

Paths are `/<mode>/<name>` (a name may hold slashes: `/ok/a/m.gguf` serves `files["a/m.gguf"]`).
Modes: `ok` serves with range support, `drop` closes the connection halfway, `stall` sends a
little and then goes silent, `wrong` serves other bytes of the same length, `norange` ignores
Range headers. Flags join a mode with `+`: `nolength` sends no Content-Length (the body ends when
the connection closes), `novalidator` sends no ETag or Last-Modified, `noetag` no ETag.

`queue` overrides the path's mode for the next requests, one each, so a test can make one URL
misbehave once and then behave (a resume must go to the same URL).

Every file has a strong ETag (from its bytes) and a Last-Modified (`modified[name]`, a POSIX
time); `If-Range` with either serves the range only while it still matches, else the whole file
(200). A range past the end answers 416 with `Content-Range: bytes */SIZE`. Every request is
logged (path, Range and If-Range headers, status, bytes sent). The certificate is self-signed and
made with openssl per server; clients trust it through `client_context()`.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import select
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("ok", "drop", "stall", "wrong", "norange")
FLAGS = ("nolength", "novalidator", "noetag")


@dataclass
class Hit:
    path: str
    range: str | None
    if_range: str | None = None
    status: int = 0
    sent_bytes: int = 0


@dataclass
class FileServer:
    files: dict[str, bytes]
    cert_dir: Path
    stall_s: float = 5.0
    hits: list[Hit] = field(default_factory=list)
    queue: list[str] = field(default_factory=list)
    modified: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cert = self.cert_dir / "cert.pem"
        self.key = self.cert_dir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True)
        server = self
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hit = Hit(self.path, self.headers.get("Range"), self.headers.get("If-Range"))
                server.hits.append(hit)
                _, mode, name = ([*self.path.split("/", 2), "", ""])[:3]
                with lock:
                    if server.queue:
                        mode = server.queue.pop(0)
                base, *flags = mode.split("+")
                data = server.files.get(name)
                if data is None or base not in MODES or any(f not in FLAGS for f in flags):
                    hit.status = 404
                    self.send_error(404)
                    return
                etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
                modified = email.utils.formatdate(server.modified.get(name, 1_700_000_000.0),
                                                  usegmt=True)
                if base == "wrong":
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                ranged = hit.range is not None and base != "norange" and \
                    hit.if_range in (None, etag, modified)
                if ranged:
                    start = int(hit.range.split("=")[1].split("-")[0])  # type: ignore[union-attr]
                    if start >= len(data):
                        hit.status = 416
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    hit.status = 206
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    hit.status = 200
                    self.send_response(200)
                if "nolength" in flags:
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(data) - start))
                if "novalidator" not in flags and "noetag" not in flags:
                    self.send_header("ETag", etag)
                if "novalidator" not in flags:
                    self.send_header("Last-Modified", modified)
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                if base == "drop":
                    body = body[: len(body) // 2]
                if base == "stall":
                    self.wfile.write(body[:4096])
                    self.wfile.flush()
                    hit.sent_bytes = 4096
                    time.sleep(server.stall_s)
                    return
                for i in range(0, len(body), 65536):
                    try:
                        self.wfile.write(body[i:i + 65536])
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                        return
                    hit.sent_bytes += len(body[i:i + 65536])
                if base == "drop":
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, mode: str, name: str) -> str:
        return f"{self.base}/{mode}/{name}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that only tunnels (CONNECT), and only to 127.0.0.1.

    `tunnels` lists the `host:port` of every tunnel asked for."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head:
                    data = client.recv(4096)
                    if not data:
                        return
                    head += data
                method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                if method != "CONNECT":
                    client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                proxy.tunnels.append(target)
                host, _, port = target.rpartition(":")
                if host != "127.0.0.1":  # tests never leave this machine
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    return
                with socket.create_connection((host, int(port)), timeout=10) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _relay(client, upstream)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _relay(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select(list(peers), [], [], 10)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                peers[sock].sendall(data)
            except OSError:
                return
