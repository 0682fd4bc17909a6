"""A misbehaving HTTPS file server on 127.0.0.1 for download tests.

Paths are `/<mode>/<name>`: `ok` serves with range support, `drop` closes the connection halfway,
`stall` sends a little and then goes silent, `wrong` serves other bytes of the same length,
`norange` ignores Range headers. Every request is logged (path, Range header, bytes sent).
The certificate is self-signed and made with openssl per server; clients trust it through
`client_context()`.
"""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Hit:
    path: str
    range: str | None
    sent_bytes: int = 0


@dataclass
class FileServer:
    files: dict[str, bytes]
    cert_dir: Path
    stall_s: float = 5.0
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cert = self.cert_dir / "cert.pem"
        self.key = self.cert_dir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hit = Hit(self.path, self.headers.get("Range"))
                server.hits.append(hit)
                _, mode, name = ([*self.path.split("/", 2), "", ""])[:3]
                data = server.files.get(name)
                if data is None or mode not in ("ok", "drop", "stall", "wrong", "norange"):
                    self.send_error(404)
                    return
                if mode == "wrong":
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                if hit.range and mode != "norange":
                    start = int(hit.range.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                if mode == "drop":
                    body = body[: len(body) // 2]
                if mode == "stall":
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
                if mode == "drop":
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

    def url(self, mode: str, name: str) -> str:
        return f"{self.base}/{mode}/{name}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
