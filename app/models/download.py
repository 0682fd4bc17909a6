"""Downloads that can be trusted: https only, resumable, checksummed, installed atomically.

A download writes `<file>.part` beside its destination. An interruption (dropped connection,
stalled server, killed process) keeps the part so the next attempt resumes with an HTTP range
request; a cancel removes it. Only a file whose size and sha256 match is renamed into place.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from app.core.errors import DaybookError
from app.core.units import fmt_bytes
from app.models.validate import sha256_file

CHUNK_BYTES = 256 * 1024
FREE_SPACE_MARGIN_BYTES = 64 * 1024 * 1024
USER_AGENT = "Daybook-model-manager/0.1"


class DownloadError(DaybookError):
    """A download failed; the message says why and whether running it again resumes."""


class DownloadCancelled(DownloadError):
    pass


class ChecksumMismatch(DownloadError):
    pass


@dataclass(frozen=True)
class Progress:
    done_bytes: int
    total_bytes: int  # 0 when unknown
    rate_bps: float
    resumed_from: int


ProgressFn = Callable[[Progress], None]


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        if not newurl.startswith("https://"):
            raise DownloadError(f"refusing a redirect to a non-https address: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(ssl_context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    # No ProxyHandler from the environment surprises, no http handler at all.
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl_context or ssl.create_default_context()),
        _HttpsOnlyRedirects())


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, *, size_bytes: int = 0, sha256: str = "",
             progress: ProgressFn | None = None, cancel: threading.Event | None = None,
             timeout_s: float = 30.0, ssl_context: ssl.SSLContext | None = None,
             validate: Callable[[Path], object] | None = None) -> str:
    """Fetch `url` to `dest`; returns the file's sha256. Raises DownloadError with the reason."""
    if not url.startswith("https://"):
        raise DownloadError(f"only https:// downloads are allowed, not {url}")
    host = urlsplit(url).hostname or url
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if size_bytes and have > size_bytes:  # not ours, or a different file: start again
        part.unlink()
        have = 0
    check_space(dest.parent, (size_bytes - have) if size_bytes else 0)
    if not (size_bytes and have == size_bytes):
        have = _fetch(url, host, part, have, size_bytes, progress, cancel, timeout_s, ssl_context)
    got_size = part.stat().st_size
    if size_bytes and got_size != size_bytes:
        part.unlink()
        raise DownloadError(f"{dest.name}: got {got_size} bytes, expected {size_bytes}; the "
                            "download was removed")
    digest = sha256_file(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise ChecksumMismatch(f"{dest.name}: checksum mismatch (expected sha256 {sha256}, got "
                               f"{digest}); the corrupt download was removed")
    if validate is not None:
        try:
            validate(part)
        except DaybookError:
            part.unlink()
            raise
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    return digest


def check_space(folder: Path, need_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if need_bytes and free < need_bytes + FREE_SPACE_MARGIN_BYTES:
        raise DownloadError(f"not enough disk space in {folder}: the download needs "
                            f"{fmt_bytes(need_bytes)} (+{fmt_bytes(FREE_SPACE_MARGIN_BYTES)} "
                            f"spare), {fmt_bytes(free)} is free")


def _fetch(url: str, host: str, part: Path, have: int, size_bytes: int,
           progress: ProgressFn | None, cancel: threading.Event | None, timeout_s: float,
           ssl_context: ssl.SSLContext | None) -> int:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = _opener(ssl_context).open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: what we have is all there is
            return have
        if exc.code == 404:
            raise DownloadError(f"not found on the server (HTTP 404): {url}") from exc
        raise DownloadError(f"{host} answered HTTP {exc.code} {exc.reason} for {url}") from exc
    except urllib.error.URLError as exc:
        raise _network_error(exc.reason, host, timeout_s, have) from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise _network_error(exc, host, timeout_s, have) from exc
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        length = int(response.headers.get("Content-Length") or 0)
        total = have + length if length else size_bytes
        if not size_bytes and length:
            check_space(part.parent, length)
        resumed_from = have
        mode = "ab" if have else "wb"
        start = time.monotonic()
        with part.open(mode) as out:
            try:
                have = _copy(response, out, have, total, resumed_from, start, progress, cancel)
            except DownloadCancelled:
                out.close()
                part.unlink(missing_ok=True)
                raise
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                out.flush()
                raise _network_error(exc, host, timeout_s, out.tell()) from exc
            out.flush()
            os.fsync(out.fileno())
        if length and have - resumed_from < length:
            raise DownloadError(f"the connection to {host} closed after "
                                f"{fmt_bytes(have)} of {fmt_bytes(total)}; run the download "
                                "again to resume")
    return have


def _copy(response: Any, out: IO[bytes], have: int, total: int, resumed_from: int,
          start: float, progress: ProgressFn | None, cancel: threading.Event | None) -> int:
    last_report = 0.0
    while True:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled("download cancelled; nothing was installed")
        chunk = response.read1(CHUNK_BYTES)  # what has arrived: a stall keeps the bytes so far
        if not chunk:
            break
        out.write(chunk)
        have += len(chunk)
        now = time.monotonic()
        if progress is not None and (now - last_report >= 0.1 or have == total):
            last_report = now
            rate = (have - resumed_from) / max(now - start, 1e-6)
            progress(Progress(have, total, rate, resumed_from))
    if progress is not None:
        rate = (have - resumed_from) / max(time.monotonic() - start, 1e-6)
        progress(Progress(have, total, rate, resumed_from))
    return have


def _network_error(reason: object, host: str, timeout_s: float, have: int) -> DownloadError:
    kept = f"; {fmt_bytes(have)} kept, run the download again to resume" if have else ""
    if isinstance(reason, DownloadError):
        return reason
    if isinstance(reason, ssl.SSLError | ssl.CertificateError):
        detail = getattr(reason, "verify_message", None) or getattr(reason, "reason", None) \
            or str(reason)
        return DownloadError(f"secure connection to {host} failed ({detail}){kept}")
    if isinstance(reason, TimeoutError | socket.timeout):
        return DownloadError(f"{host} sent no data for {timeout_s:.0f} s (timed out){kept}")
    if isinstance(reason, socket.gaierror):
        return DownloadError(f"cannot find {host} (no network, or a wrong address){kept}")
    if isinstance(reason, ConnectionRefusedError):
        return DownloadError(f"{host} refused the connection (server down?){kept}")
    if isinstance(reason, ConnectionError | http.client.HTTPException):
        return DownloadError(f"the connection to {host} broke ({reason or type(reason).__name__})"
                             f"{kept}")
    return DownloadError(f"cannot download from {host}: {reason}{kept}")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
