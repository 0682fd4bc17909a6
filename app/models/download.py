"""Downloads that can be trusted: https only, resumable, checksummed, installed atomically.

A download writes `<file>.part` beside its destination, and `<file>.part.json` saying which URL
the part came from and the server's validator for that version of the file (a strong ETag, else
Last-Modified). An interruption (dropped connection, stalled server, full disk, killed process)
keeps the part, and the next download *of the same URL* resumes it with an HTTP range request
sent with `If-Range: <validator>`: a server whose file changed meanwhile answers with the whole
new file (200), and the download starts over instead of splicing two versions. A part from
another URL, or one with no sidecar, is never resumed. A part with no validator is resumed only
when the expected sha256 is known (a splice would then be caught); otherwise it starts over.

Bytes are counted while they stream: more than the declared size (or, with none, than the cap for
a download of unknown size) stops the download and removes the part, whether or not the server
sent a Content-Length; so does a checksum mismatch. Free disk space is checked before starting and
again while streaming; running short stops the download and keeps the part for a resume. A cancel
removes the part. Only a file whose size and sha256 match is renamed into place.

An archive download (a catalog entry with `archive = "zip"`: a wheel is a zip) is such a download,
and its central directory is checked before the part is renamed: every member the catalog names
must be there, a plain file of the stated size. Then `extract_members` takes out only those
members, by the names the catalog gives them (an archive's own paths are looked up, never written
to: nothing can land outside the folder), streaming each with its size capped and checking its
sha256, into a hidden staging folder beside the destination; `replace_folder` renames that folder
into place, so the destination holds the old files or all the new ones, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import stat
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from app.core.errors import DaybookError
from app.core.units import fmt_bytes
from app.models.catalog import ArchiveMember
from app.models.validate import sha256_file

CHUNK_BYTES = 256 * 1024
FREE_SPACE_MARGIN_BYTES = 64 * 1024 * 1024
# While streaming, stop when free space falls below what is still to come plus this much; half
# the margin checked before starting, so a download that passed that check is not stopped by
# block-rounding alone.
STREAM_SPACE_MARGIN_BYTES = FREE_SPACE_MARGIN_BYTES // 2
SPACE_CHECK_EVERY_BYTES = 1024 * 1024
# The most a download with no declared size (a user-entered address) may fetch.
MAX_UNDECLARED_BYTES = 64 * 1024**3
USER_AGENT = "Daybook-model-manager/0.1"


class DownloadError(DaybookError):
    """A download failed; the message says why and whether running it again resumes."""


class DownloadCancelled(DownloadError):
    pass


class ChecksumMismatch(DownloadError):
    pass


class ArchiveError(DownloadError):
    """A downloaded archive lacks a member the catalog names, or holds a different one."""


@dataclass(frozen=True)
class Progress:
    done_bytes: int
    total_bytes: int  # 0 when unknown
    rate_bps: float
    resumed_from: int


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class PartInfo:
    """What a `.part` file is part of: the URL it was fetched from and the server's validator for
    that version of the file ("" when the server sent none)."""

    url: str
    validator: str = ""


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        if not newurl.startswith("https://"):
            raise DownloadError(f"refusing a redirect to a non-https address: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def https_proxies() -> dict[str, str]:
    """The proxy urllib would use for https: `HTTPS_PROXY`/`https_proxy` from the environment
    (on Windows and macOS, else the system's proxy settings). No other scheme's proxy applies."""
    proxy = urllib.request.getproxies().get("https")
    return {"https": proxy} if proxy else {}


def proxy_for(url: str) -> str | None:
    """The proxy a download of `url` goes through (without credentials), or None when direct:
    `NO_PROXY` (or the system's bypass list) is honoured as urllib honours it."""
    proxy = https_proxies().get("https")
    host = urlsplit(url).hostname or ""
    if not proxy or (host and urllib.request.proxy_bypass(host)):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or proxy)


def _opener(ssl_context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    # Built by hand, not with build_opener (which adds http, ftp, file and data handlers and
    # every *_proxy variable): https only, through the https proxy of the environment or system
    # settings when there is one (CONNECT tunnel; NO_PROXY honoured), as urllib does for https.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(https_proxies()),
                    urllib.request.UnknownHandler(),
                    urllib.request.HTTPSHandler(
                        context=ssl_context or ssl.create_default_context()),
                    urllib.request.HTTPDefaultErrorHandler(),
                    _HttpsOnlyRedirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def part_info_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def read_part_info(dest: Path) -> PartInfo | None:
    """The sidecar of `dest`'s part, or None when there is none (or it is unreadable)."""
    try:
        raw = json.loads(part_info_path(dest).read_text(encoding="utf-8"))
        return PartInfo(url=str(raw["url"]), validator=str(raw.get("validator") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_part_info(dest: Path, info: PartInfo) -> None:
    path = part_info_path(dest)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": info.url, "validator": info.validator}), encoding="utf-8")
    os.replace(tmp, path)


def discard_part(dest: Path) -> None:
    """Remove `dest`'s part and its sidecar."""
    part_path(dest).unlink(missing_ok=True)
    part_info_path(dest).unlink(missing_ok=True)


def remove_orphan_part_info(folder: Path) -> None:
    """Remove sidecars whose part is gone (someone deleted just the `.part`)."""
    for info in folder.glob("*.part.json"):
        if not info.with_name(info.name.removesuffix(".json")).exists():
            info.unlink(missing_ok=True)


def _resumable(info: PartInfo | None, url: str, sha256: str) -> bool:
    return info is not None and info.url == url and bool(info.validator or sha256)


def resumable_bytes(url: str, dest: Path, sha256: str = "") -> int:
    """How many bytes of `dest`'s part a download of `url` would resume from (0: starts over)."""
    part = part_path(dest)
    if not part.is_file() or not _resumable(read_part_info(dest), url, sha256):
        return 0
    return part.stat().st_size


def download(url: str, dest: Path, *, size_bytes: int = 0, sha256: str = "",
             max_bytes: int = MAX_UNDECLARED_BYTES,
             progress: ProgressFn | None = None, cancel: threading.Event | None = None,
             timeout_s: float = 30.0, ssl_context: ssl.SSLContext | None = None,
             validate: Callable[[Path], object] | None = None) -> str:
    """Fetch `url` to `dest`; returns the file's sha256. Raises DownloadError with the reason.

    `size_bytes` is the declared size (0: unknown, then at most `max_bytes` are accepted)."""
    if not url.startswith("https://"):
        raise DownloadError(f"only https:// downloads are allowed, not {url}")
    host = urlsplit(url).hostname or url
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    info = read_part_info(dest)
    have = part.stat().st_size if part.exists() else 0
    if not part.exists() or not _resumable(info, url, sha256) or (size_bytes and
                                                                  have > size_bytes):
        # Another URL's part, one whose origin or version cannot be told, or too long: not ours.
        discard_part(dest)
        have, info = 0, None
    check_space(dest.parent, (size_bytes - have) if size_bytes else 0)
    limit = size_bytes or max_bytes
    if not (size_bytes and have == size_bytes):
        have = _fetch(url, host, dest, have, info, size_bytes, limit, progress, cancel,
                      timeout_s, ssl_context)
    got_size = part.stat().st_size
    if size_bytes and got_size != size_bytes:  # the server closed early and sent no length
        raise DownloadError(f"the connection to {host} closed after {fmt_bytes(got_size)} of "
                            f"{fmt_bytes(size_bytes)}; run the download again to resume")
    digest = sha256_file(part)
    if sha256 and digest != sha256.lower():
        discard_part(dest)
        raise ChecksumMismatch(f"{dest.name}: checksum mismatch (expected sha256 {sha256}, got "
                               f"{digest}); the corrupt download was removed")
    if validate is not None:
        try:
            validate(part)
        except DaybookError:
            discard_part(dest)
            raise
    os.replace(part, dest)
    part_info_path(dest).unlink(missing_ok=True)
    _fsync_dir(dest.parent)
    return digest


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def check_space(folder: Path, need_bytes: int) -> None:
    free = free_bytes(folder)
    if need_bytes and free < need_bytes + FREE_SPACE_MARGIN_BYTES:
        raise DownloadError(f"not enough disk space in {folder}: the download needs "
                            f"{fmt_bytes(need_bytes)} (+{fmt_bytes(FREE_SPACE_MARGIN_BYTES)} "
                            f"spare), {fmt_bytes(free)} is free")


class _Restart(Exception):
    """The part cannot be resumed after all: start again from byte 0."""


class _TooLong(Exception):
    pass


def _fetch(url: str, host: str, dest: Path, have: int, info: PartInfo | None, size_bytes: int,
           limit: int, progress: ProgressFn | None, cancel: threading.Event | None,
           timeout_s: float, ssl_context: ssl.SSLContext | None) -> int:
    try:
        return _fetch_once(url, host, dest, have, info, size_bytes, limit, progress, cancel,
                           timeout_s, ssl_context)
    except _Restart:
        pass
    discard_part(dest)
    try:
        return _fetch_once(url, host, dest, 0, None, size_bytes, limit, progress, cancel,
                           timeout_s, ssl_context)
    except _Restart:
        raise DownloadError(f"{host} answered a download from the start with a part of the "
                            f"file (HTTP 206 without the first byte): {url}") from None


def _fetch_once(url: str, host: str, dest: Path, have: int, info: PartInfo | None,
                size_bytes: int, limit: int, progress: ProgressFn | None,
                cancel: threading.Event | None, timeout_s: float,
                ssl_context: ssl.SSLContext | None) -> int:
    part = part_path(dest)
    via = proxy_for(url)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if info is not None and info.validator:
            headers["If-Range"] = info.validator  # changed on the server: the whole file (200)
    request = urllib.request.Request(url, headers=headers)
    try:
        response = _opener(ssl_context).open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            return _range_not_satisfiable(exc, dest, host, have, size_bytes)
        if exc.code == 404:
            raise DownloadError(f"not found on the server (HTTP 404): {url}") from exc
        raise DownloadError(f"{host} answered HTTP {exc.code} {exc.reason} for {url}") from exc
    except urllib.error.URLError as exc:
        raise _network_error(exc.reason, host, timeout_s, have, via) from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise _network_error(exc, host, timeout_s, have, via) from exc
    with response:
        length = _int_header(response.headers.get("Content-Length"))
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:  # not the range asked for: do not append it
                raise _Restart
            if total is None and length is not None:
                total = have + length
        else:  # 200: the whole file (the server ignored the range, or the file changed)
            if have:
                discard_part(dest)
            have, total = 0, length
        if total is not None and size_bytes and total != size_bytes:
            discard_part(dest)
            raise _size_mismatch(host, dest, total, size_bytes)
        if total is not None and total > limit:
            discard_part(dest)
            raise DownloadError(f"{host} offers {fmt_bytes(total)} for {dest.name}, more than "
                                f"the {fmt_bytes(limit)} a download of undeclared size may "
                                "fetch; nothing was kept")
        expected = total or size_bytes
        check_space(part.parent, (expected - have) if expected else 0)
        resumed_from = have
        start_t = time.monotonic()
        out = part.open("ab" if have else "wb")
        try:
            if not have:  # a new part: bind it to this URL and this version of the file (after
                # creating it: a sidecar never outlives its part but for a moment)
                _write_part_info(dest, PartInfo(url, _validator(response.headers)))
            have = _copy(response, out, have, expected, limit, resumed_from, start_t, progress,
                         cancel)
            out.flush()
            os.fsync(out.fileno())
        except DownloadCancelled:
            _close_quietly(out)
            discard_part(dest)
            raise
        except _TooLong:
            _close_quietly(out)
            discard_part(dest)
            what = (f"the {fmt_bytes(size_bytes)} expected" if size_bytes else
                    f"the {fmt_bytes(limit)} a download of undeclared size may fetch")
            raise DownloadError(f"{host} sent more than {what} for {dest.name}; the download "
                                "was removed") from None
        except _DiskShort as exc:
            _close_quietly(out)
            raise DownloadError(f"not enough disk space in {part.parent} to go on: "
                                f"{exc.args[0]}; {fmt_bytes(part.stat().st_size)} kept, free "
                                "some space and run the download again to resume") from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                _close_quietly(out)
                raise DownloadError(f"the disk is full ({part.parent}); "
                                    f"{fmt_bytes(part.stat().st_size)} kept, free some space "
                                    "and run the download again to resume") from exc
            _close_quietly(out)
            raise _network_error(exc, host, timeout_s, part.stat().st_size, via) from exc
        except (TimeoutError, http.client.HTTPException) as exc:
            _close_quietly(out)
            raise _network_error(exc, host, timeout_s, part.stat().st_size, via) from exc
        finally:
            out.close()
        if expected and have < expected:
            raise DownloadError(f"the connection to {host} closed after "
                                f"{fmt_bytes(have)} of {fmt_bytes(expected)}; run the download "
                                "again to resume")
    return have


def _range_not_satisfiable(exc: urllib.error.HTTPError, dest: Path, host: str, have: int,
                           size_bytes: int) -> int:
    """416 to `Range: bytes=have-`: the part is the whole file when the server's size says so;
    a part longer than the file, or a server that does not say its size, starts over."""
    _, total = _content_range(exc.headers.get("Content-Range"))
    if total is not None and size_bytes and total != size_bytes:
        discard_part(dest)
        raise _size_mismatch(host, dest, total, size_bytes) from exc
    if total == have:
        return have
    raise _Restart from exc


def _size_mismatch(host: str, dest: Path, total: int, size_bytes: int) -> DownloadError:
    return DownloadError(f"{host} offers {fmt_bytes(total)} ({total} bytes) for {dest.name}, "
                         f"the catalog says {size_bytes} bytes (a different file?); nothing "
                         "was kept")


class _DiskShort(Exception):
    pass


def _copy(response: Any, out: IO[bytes], have: int, total: int, limit: int, resumed_from: int,
          start: float, progress: ProgressFn | None, cancel: threading.Event | None) -> int:
    last_report = 0.0
    unchecked = 0
    folder = Path(out.name).parent
    while True:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled("download cancelled; nothing was installed")
        chunk = response.read1(CHUNK_BYTES)  # what has arrived: a stall keeps the bytes so far
        if not chunk:
            break
        if have + len(chunk) > limit:
            raise _TooLong
        unchecked += len(chunk)
        if unchecked >= SPACE_CHECK_EVERY_BYTES:
            unchecked = 0
            out.flush()
            need = max(total - have, len(chunk)) if total else len(chunk)
            free = free_bytes(folder)
            if free < need + STREAM_SPACE_MARGIN_BYTES:
                raise _DiskShort(f"{fmt_bytes(free)} is free, still to come "
                                 f"{fmt_bytes(need) if total else 'an unknown amount'} "
                                 f"(+{fmt_bytes(STREAM_SPACE_MARGIN_BYTES)} spare)")
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


def _close_quietly(out: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        out.close()  # flushes what is buffered: the part stays a prefix of the file


def _validator(headers: Any) -> str:
    """A validator for If-Range: a strong ETag, else Last-Modified, else ""."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):  # If-Range needs a strong validator
        return etag
    return (headers.get("Last-Modified") or "").strip()


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, full size) of a Content-Range header; None where it does not say."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None, None
    first, _, total = match.groups()
    return (int(first) if first is not None else None,
            int(total) if total != "*" else None)


def _network_error(reason: object, host: str, timeout_s: float, have: int,
                   via: str | None = None) -> DownloadError:
    kept = f"; {fmt_bytes(have)} kept, run the download again to resume" if have else ""
    if isinstance(reason, DownloadError):
        return reason
    if via:
        host = f"{host} (through the proxy {via})"
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



# --- archives ----------------------------------------------------------------------------------

STAGING_SUFFIXES = (".extract", ".old")
STALE_STAGING_S = 3600.0  # older than this, a staging folder is a killed install's leftover
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
               ValueError)


def _member_info(zf: zipfile.ZipFile, member: ArchiveMember, name: str) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(member.path)
    except KeyError:
        raise ArchiveError(f"{name} has no {member.path} (not the archive the catalog "
                           "describes); nothing was installed") from None
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: the writer did not say (not a link)
    if info.is_dir() or kind not in (0, stat.S_IFREG):
        raise ArchiveError(f"{name}: {member.path} is not a plain file (a folder or a link); "
                           "nothing was installed")
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{name}: {member.path} is encrypted; nothing was installed")
    if info.file_size != member.size_bytes:
        raise ArchiveError(f"{name}: {member.path} is {info.file_size} bytes, the catalog says "
                           f"{member.size_bytes} (a different file); nothing was installed")
    return info


def check_archive(path: Path, members: Sequence[ArchiveMember], name: str = "") -> None:
    """The zip at `path` (called `name` in messages) holds every member in `members`, each a plain
    file of its stated size (from the central directory: nothing is extracted). Raises
    ArchiveError saying what is not."""
    name = name or path.name
    try:
        with zipfile.ZipFile(path) as zf:
            for member in members:
                _member_info(zf, member, name)
    except _ZIP_ERRORS as exc:
        raise ArchiveError(f"{name} is not a readable zip archive ({exc}); nothing was "
                           "installed") from exc


def extract_members(archive: Path, members: Sequence[ArchiveMember], folder: Path,
                    cancel: threading.Event | None = None, name: str = "") -> None:
    """Write each member of the zip `archive` to `folder / member.file` (new files in an existing
    folder), streaming it with its size capped at the catalog's, then checking its sha256 and
    syncing it to disk. Raises ArchiveError on any mismatch (the caller removes `folder`)."""
    name = name or archive.name
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in members:
                _extract_one(zf, _member_info(zf, member, name), member, folder, name, cancel)
    except _ZIP_ERRORS as exc:
        raise ArchiveError(f"{name}: cannot read a member ({exc}); nothing was "
                           "installed") from exc
    _fsync_dir(folder)


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, member: ArchiveMember,
                 folder: Path, name: str, cancel: threading.Event | None) -> None:
    digest = hashlib.sha256()
    done = 0
    with zf.open(info) as src, (folder / member.file).open("xb") as out:
        while chunk := src.read(CHUNK_BYTES):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("download cancelled; nothing was installed")
            done += len(chunk)
            if done > member.size_bytes:  # the header lied: stop before filling the disk
                raise ArchiveError(f"{name}: {member.path} holds more than the "
                                   f"{member.size_bytes} bytes the catalog says; nothing was "
                                   "installed")
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if done != member.size_bytes:
        raise ArchiveError(f"{name}: {member.path} is {done} bytes, the catalog says "
                           f"{member.size_bytes}; nothing was installed")
    if digest.hexdigest() != member.sha256:
        raise ArchiveError(f"{name}: {member.path} does not match the catalog (expected sha256 "
                           f"{member.sha256}, got {digest.hexdigest()}); nothing was installed")


def staging_folder(dest: Path, kind: str = ".extract") -> Path:
    """A new hidden name beside `dest` for a folder being built (or an old one being removed)."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}{kind}")


def remove_stale_staging(dest: Path, max_age_s: float = STALE_STAGING_S) -> None:
    """Remove `dest`'s staging folders left by an install that was killed (old enough that no
    install still running owns them)."""
    now = time.time()
    for path in dest.parent.glob(f".{glob.escape(dest.name)}.*"):
        if path.name.endswith(STAGING_SUFFIXES) and not path.is_symlink() and path.is_dir():
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > max_age_s:
                    shutil.rmtree(path, ignore_errors=True)


def replace_folder(new: Path, dest: Path) -> Path | None:
    """Rename the folder `new` to `dest` (its sibling). An old `dest` is moved aside first (put
    back when the rename fails) and returned: the caller removes it with `remove_path` once the
    new one is recorded, or puts it back with `restore_folder`. `dest` holds the old files or the
    new ones, never a mix (for a moment, nothing)."""
    old: Path | None = None
    if dest.exists() or dest.is_symlink():
        old = staging_folder(dest, ".old")
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    _fsync_dir(dest.parent)
    return old


def restore_folder(dest: Path, old: Path | None, new: Path) -> None:
    """Undo `replace_folder`: the new folder back to `new`, the old one (if any) back to `dest`."""
    os.replace(dest, new)
    if old is not None:
        os.replace(old, dest)


def remove_path(path: Path) -> None:
    """Remove a file, a link (not what it points to) or a folder and all in it."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
