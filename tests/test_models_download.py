"""The downloader against a real HTTPS server on 127.0.0.1 that misbehaves on request."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import ExitCode
from app.models import download as dl
from app.models.download import (
    ChecksumMismatch,
    DownloadCancelled,
    DownloadError,
    Progress,
    download,
    part_info_path,
    read_part_info,
)
from app.models.validate import ModelNameError
from tests.https_server import ConnectProxy, FileServer

SIZE = 3_000_000


def gguf_shaped(n_bytes: int, seed: int = 0) -> bytes:
    """A well-formed GGUF (v3, no keys, one I8 tensor of random bytes) exactly `n_bytes` long."""
    name = b"data"
    info_len = 24 + 8 + len(name) + 4 + 8 + 4 + 8  # header, name, n_dims, ne[0], type, offset
    data_start = -(-info_len // 32) * 32
    n_data = n_bytes - data_start
    head = (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", len(name)) + name
            + struct.pack("<IQIQ", 1, n_data, 24, 0))  # 1 dim of n_data, type I8, offset 0
    body = np.random.default_rng(seed).integers(0, 256, n_data, dtype=np.uint8).tobytes()
    return head + bytes(data_start - len(head)) + body


DATA = gguf_shaped(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()
OTHER = gguf_shaped(SIZE, seed=7)  # another file of the same size and name
OTHER_SHA = hashlib.sha256(OTHER).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    srv = FileServer({"m.gguf": DATA, "a/m.gguf": DATA, "b/m.gguf": OTHER},
                     tmp_path_factory.mktemp("cert"), stall_s=4.0)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _server_behaves(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").queue.clear()


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(key)


def _get(server: FileServer, mode: str, dest: Path, url_name: str = "m.gguf",
         **kw: object) -> str:
    kw.setdefault("size_bytes", SIZE)
    kw.setdefault("sha256", SHA)
    return download(server.url(mode, url_name), dest, ssl_context=server.client_context(),
                    **kw)  # type: ignore[arg-type]


def test_full_download_with_progress(server: FileServer, tmp_path: Path) -> None:
    seen: list[Progress] = []
    dest = tmp_path / "m.gguf"
    assert _get(server, "ok", dest, progress=seen.append) == SHA
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "m.gguf.part").exists()
    assert seen[-1].done_bytes == SIZE and seen[-1].total_bytes == SIZE
    assert all(a.done_bytes <= b.done_bytes for a, b in itertools.pairwise(seen))
    assert seen[-1].rate_bps > 0


def test_interrupted_download_resumes_with_only_the_rest(server: FileServer,
                                                         tmp_path: Path) -> None:
    dest = tmp_path / "m.gguf"
    server.queue.append("drop")
    with pytest.raises(DownloadError, match="closed after .* run the download again to resume"):
        _get(server, "ok", dest)
    part = tmp_path / "m.gguf.part"
    kept = part.stat().st_size
    assert 0 < kept < SIZE and not dest.exists()
    info = read_part_info(dest)
    assert info is not None and info.url == server.url("ok", "m.gguf")
    assert info.validator.startswith('"')  # the server's strong ETag
    seen: list[Progress] = []
    _get(server, "ok", dest, progress=seen.append)
    assert dest.read_bytes() == DATA
    resume = server.hits[-1]
    assert resume.range == f"bytes={kept}-" and resume.if_range == info.validator
    assert resume.status == 206
    assert resume.sent_bytes == SIZE - kept  # only the rest travelled
    assert seen[-1].resumed_from == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]  # no part, no sidecar


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.gguf"
    server.queue[:] = ["drop", "norange"]
    with pytest.raises(DownloadError, match="closed after"):
        _get(server, "ok", dest)
    _get(server, "ok", dest)
    assert server.hits[-1].range is not None and server.hits[-1].status == 200
    assert dest.read_bytes() == DATA


# --- a part belongs to one URL and one version of the file -----------------------------------


def test_a_part_from_another_url_is_not_resumed(server: FileServer, tmp_path: Path) -> None:
    """Two addresses, one file name: the second download must not splice onto the first's part."""
    dest = tmp_path / "m.gguf"
    server.queue.append("drop")
    with pytest.raises(DownloadError, match="closed after"):
        _get(server, "ok", dest, url_name="a/m.gguf", size_bytes=0, sha256="")
    assert 0 < (tmp_path / "m.gguf.part").stat().st_size < SIZE
    digest = _get(server, "ok", dest, url_name="b/m.gguf", size_bytes=0, sha256="")
    assert server.hits[-1].range is None  # started from zero
    assert dest.read_bytes() == OTHER and digest == OTHER_SHA


@pytest.mark.parametrize("flags", ["", "+noetag"], ids=["etag", "last-modified"])
def test_a_file_changed_on_the_server_restarts_from_zero(server: FileServer, tmp_path: Path,
                                                         flags: str) -> None:
    name = f"changing{flags}.gguf"
    server.files[name] = DATA
    dest = tmp_path / "c.gguf"
    url = server.url("ok" + flags, name)
    server.queue.append("drop" + flags)
    with pytest.raises(DownloadError, match="closed after"):
        download(url, dest, ssl_context=server.client_context())
    old = read_part_info(dest)
    assert old is not None and old.validator
    assert old.validator.startswith('"') == (flags == "")  # ETag, else Last-Modified
    server.files[name] = OTHER  # a new version, published a minute later
    server.modified[name] = 1_700_000_060.0
    digest = download(url, dest, ssl_context=server.client_context())
    resume = server.hits[-1]
    assert resume.range is not None and resume.if_range == old.validator
    assert resume.status == 200 and resume.sent_bytes == SIZE
    assert dest.read_bytes() == OTHER and digest == OTHER_SHA


@pytest.mark.parametrize(("sha", "resumed"), [("", False), (SHA, True)])
def test_a_part_without_a_validator_resumes_only_with_a_known_hash(
        server: FileServer, tmp_path: Path, sha: str, resumed: bool) -> None:
    dest = tmp_path / "m.gguf"
    server.queue.append("drop+novalidator")
    with pytest.raises(DownloadError, match="closed after"):
        _get(server, "ok+novalidator", dest, size_bytes=0, sha256=sha)
    assert read_part_info(dest) == dl.PartInfo(server.url("ok+novalidator", "m.gguf"), "")
    _get(server, "ok+novalidator", dest, size_bytes=0, sha256=sha)
    assert (server.hits[-1].range is not None) == resumed
    assert dest.read_bytes() == DATA


def _bind_part(dest: Path, url: str, data: bytes) -> None:
    dl.part_path(dest).write_bytes(data)
    dl._write_part_info(dest, dl.PartInfo(url, ""))


def test_range_past_the_end_416(server: FileServer, tmp_path: Path) -> None:
    url = server.url("ok", "m.gguf")
    dest = tmp_path / "m.gguf"
    _bind_part(dest, url, DATA)  # complete, but not renamed into place (killed just before)
    assert download(url, dest, sha256=SHA, ssl_context=server.client_context()) == SHA
    assert server.hits[-1].status == 416 and server.hits[-1].range == f"bytes={SIZE}-"
    assert dest.read_bytes() == DATA
    dest.unlink()
    _bind_part(dest, url, DATA + b"junk")  # longer than the file: not a part of it
    assert download(url, dest, sha256=SHA, ssl_context=server.client_context()) == SHA
    assert [h.status for h in server.hits[-2:]] == [416, 200]
    assert dest.read_bytes() == DATA and not dl.part_path(dest).exists()
    # Declared with the wrong size: the server's whole file is all there is, and it is not it.
    _bind_part(dest, url, DATA)
    with pytest.raises(DownloadError, match=r"offers .*\(3000000 bytes\).*says 3000001 bytes"):
        download(url, dest, size_bytes=SIZE + 1, sha256=SHA, ssl_context=server.client_context())
    assert server.hits[-1].status == 416
    assert not dl.part_path(dest).exists() and not part_info_path(dest).exists()


# --- size caps and disk space while streaming --------------------------------------------------


@pytest.mark.parametrize("mode", ["ok+nolength", "ok"])
def test_more_bytes_than_declared_stop_the_download(server: FileServer, tmp_path: Path,
                                                    mode: str) -> None:
    seen: list[Progress] = []
    dest = tmp_path / "m.gguf"
    declared = 1_000_000
    with pytest.raises(DownloadError, match="sent more than|offers .* says 1000000 bytes"):
        _get(server, mode, dest, size_bytes=declared, sha256="", progress=seen.append)
    assert all(p.done_bytes <= declared for p in seen)  # stopped at the declared size
    assert list(tmp_path.iterdir()) == []  # the part was known to be wrong: removed


def test_a_download_of_undeclared_size_is_capped(server: FileServer, tmp_path: Path) -> None:
    seen: list[Progress] = []
    with pytest.raises(DownloadError, match="sent more than the .* undeclared size"):
        _get(server, "ok+nolength", tmp_path / "m.gguf", size_bytes=0, sha256="",
             max_bytes=1_000_000, progress=seen.append)
    assert all(p.done_bytes <= 1_000_000 for p in seen)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError, match="offers .* more than the .* undeclared size"):
        _get(server, "ok", tmp_path / "m.gguf", size_bytes=0, sha256="", max_bytes=1_000_000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("mode", "size"), [("ok", SIZE), ("ok+nolength", 0)])
def test_disk_filling_up_while_streaming_stops_and_keeps_the_part(
        server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
        size: int) -> None:
    dest = tmp_path / "m.gguf"
    part = tmp_path / "m.gguf.part"

    def free_bytes(folder: Path) -> int:  # another program fills the disk after 1 MB
        return 10**13 if not part.exists() or part.stat().st_size < 1_000_000 else 10**6

    monkeypatch.setattr(dl, "free_bytes", free_bytes)
    with pytest.raises(DownloadError, match="not enough disk space .* to go on.*kept.*resume"):
        _get(server, mode, dest, size_bytes=size)
    kept = part.stat().st_size
    assert 1_000_000 <= kept < SIZE and not dest.exists()
    monkeypatch.undo()
    _get(server, mode, dest, size_bytes=size)
    assert server.hits[-1].range == f"bytes={kept}-" and dest.read_bytes() == DATA


# --- proxies ---------------------------------------------------------------------------------


def test_only_https_handlers_and_only_the_https_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https addresses
    assert set(dl._opener(None).handle_open) == {"https", "unknown"}  # no http, ftp, file, data
    assert dl.https_proxies() == {} and dl.proxy_for("https://127.0.0.1/x") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@127.0.0.1:9")
    assert dl.https_proxies() == {"https": "http://user:secret@127.0.0.1:9"}
    assert dl.proxy_for("https://127.0.0.1/x") == "127.0.0.1:9"  # no credentials shown
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert dl.proxy_for("https://127.0.0.1/x") is None


def test_downloads_go_through_the_https_proxy_unless_no_proxy(
        server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert _get(server, "ok", tmp_path / "1.gguf") == SHA
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert _get(server, "ok", tmp_path / "2.gguf") == SHA
        assert len(proxy.tunnels) == 1  # went direct
    finally:
        proxy.close()
    monkeypatch.delenv("NO_PROXY")
    with pytest.raises(DownloadError, match=r"through the proxy 127\.0\.0\.1:\d+.*refused"):
        _get(server, "ok", tmp_path / "3.gguf", timeout_s=2)  # the proxy is down now


def test_checksum_mismatch_is_rejected_and_removed(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.gguf"
    with pytest.raises(ChecksumMismatch, match="checksum mismatch.*removed"):
        _get(server, "wrong", dest)
    assert not dest.exists() and not (tmp_path / "m.gguf.part").exists()


def test_stalled_server_times_out_with_a_clear_message(server: FileServer,
                                                       tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"sent no data for 1 s \(timed out\).*resume"):
        _get(server, "stall", tmp_path / "m.gguf", timeout_s=1.0)
    assert time.monotonic() - start < 3.5


def test_cancel_leaves_nothing_behind(server: FileServer, tmp_path: Path) -> None:
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        cancel.set()

    with pytest.raises(DownloadCancelled, match="nothing was installed"):
        _get(server, "ok", tmp_path / "m.gguf", progress=on_progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_too_little_disk_space_is_refused_before_starting(server: FileServer,
                                                          tmp_path: Path) -> None:
    before = len(server.hits)
    with pytest.raises(DownloadError, match="not enough disk space.*needs"):
        _get(server, "ok", tmp_path / "m.gguf", size_bytes=10**15)
    assert len(server.hits) == before  # no request was made


def test_not_found(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"not found on the server \(HTTP 404\)"):
        download(server.url("ok", "missing.gguf"), tmp_path / "x",
                 ssl_context=server.client_context())


def test_untrusted_certificate(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="secure connection to 127.0.0.1 failed.*certif"):
        download(server.url("ok", "m.gguf"), tmp_path / "x")  # the system's CAs only
    assert not (tmp_path / "x").exists()


def test_plain_http_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="only https"):
        download("http://127.0.0.1:1/x", tmp_path / "x")


def test_host_down(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="refused the connection"):
        download(f"https://127.0.0.1:{port}/x", tmp_path / "x", timeout_s=2)


def test_bad_file_behind_a_matching_hash_is_still_validated(server: FileServer,
                                                            tmp_path: Path) -> None:
    from app.models.validate import ModelFileError, validate_model_file

    with pytest.raises(ModelFileError, match="is a gguf file, expected onnx"):
        _get(server, "ok", tmp_path / "m.onnx", validate=lambda p: validate_model_file(p, "onnx"))
    assert list(tmp_path.iterdir()) == []


def test_manager_downloads_a_model_with_its_companion(server: FileServer, tmp_path: Path) -> None:
    from app.models.catalog import CatalogEntry
    from app.models.manager import ModelManager
    from app.models.selection import choose

    proj = gguf_shaped(500_000, seed=1)
    server.files["proj.gguf"] = proj

    def entry(name: str, role: str, file: str, data: bytes, requires: tuple[str, ...] = ()
              ) -> CatalogEntry:
        return CatalogEntry(name=name, role=role, file=file, url=server.url("ok", file),
                            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            licence="MIT", description=name, format="gguf", requires=requires,
                            default=True, verified=True)

    catalog = {"tiny-vlm": entry("tiny-vlm", "vlm", "m.gguf", DATA, ("tiny-proj",)),
               "tiny-proj": entry("tiny-proj", "mmproj", "proj.gguf", proj)}
    mgr = ModelManager(tmp_path / "models", catalog, ssl_context=server.client_context())
    started: list[str] = []
    done = mgr.download("tiny-vlm", on_start=lambda e: started.append(e.name))
    assert [m.name for m in done] == ["tiny-proj", "tiny-vlm"] == started
    assert all(m.verified and m.origin == "catalog" for m in done)
    assert set(mgr.installed()) == {"tiny-vlm", "tiny-proj"}
    assert mgr.best("vlm") is not None and mgr.best("vlm").name == "tiny-vlm"  # type: ignore[union-attr]
    chosen = choose(mgr, "vlm")  # what Settings › Models says captions clips
    assert chosen.using == "tiny-vlm" and chosen.source == "installed", chosen
    hits = len(server.hits)
    assert [m.name for m in mgr.download("tiny-vlm")] == ["tiny-proj", "tiny-vlm"]
    assert len(server.hits) == hits  # already installed: nothing fetched again


def test_download_from_a_user_entered_address(server: FileServer, tmp_path: Path) -> None:
    from app.models.catalog import load_catalog
    from app.models.manager import ModelError, ModelManager

    mgr = ModelManager(tmp_path / "models", load_catalog(), ssl_context=server.client_context())
    model = mgr.download_url(server.url("ok", "m.gguf"), "llm", name="my-llm")
    assert (model.name, model.role, model.origin, model.verified) == ("my-llm", "llm", "url", False)
    assert model.sha256 == SHA and mgr.path(model).read_bytes() == DATA
    with pytest.raises(ModelError, match="only https"):
        mgr.download_url("http://127.0.0.1/x.gguf", "llm")
    from app.models.validate import ModelFileError

    with pytest.raises(ModelFileError, match="is a gguf file, expected whisper-ggml"):
        mgr.download_url(server.url("ok", "m.gguf"), "asr", name="not-whisper")
    assert "not-whisper" not in mgr.installed()


# --- the manager: names, one file per entry ----------------------------------------------------


def test_addresses_with_the_same_file_name_get_a_file_each(server: FileServer,
                                                           tmp_path: Path) -> None:
    from app.models.catalog import load_catalog
    from app.models.manager import ModelManager
    from app.models.validate import sha256_file

    mgr = ModelManager(tmp_path / "models", load_catalog(), ssl_context=server.client_context())
    first = mgr.download_url(server.url("ok", "a/m.gguf"), "llm", name="first")
    second = mgr.download_url(server.url("ok", "b/m.gguf"), "llm", name="second")
    assert (first.file, second.file) == ("m.gguf", "m-2.gguf")
    for model in mgr.installed().values():  # every recorded hash is still true
        assert sha256_file(mgr.path(model)) == model.sha256
    again = mgr.download_url(server.url("ok", "b/m.gguf"), "llm", name="second")
    assert again.file == "m-2.gguf"  # the same entry keeps its file
    mgr.remove("second")
    assert mgr.path(first).read_bytes() == DATA
    mgr.remove("first")
    assert not mgr.path(first).exists()


@pytest.mark.parametrize("bad", ["../../escaped", "a/b", "a\\b", ".hidden", "x\ny", "c" * 101])
def test_the_name_of_a_download_from_an_address_is_checked(server: FileServer, tmp_path: Path,
                                                           bad: str) -> None:
    from app.models.catalog import load_catalog
    from app.models.manager import ModelManager

    mgr = ModelManager(tmp_path / "a" / "b" / "models", load_catalog(),
                       ssl_context=server.client_context())
    hits = len(server.hits)
    with pytest.raises(ModelNameError, match="invalid model name") as err:
        mgr.download_url(server.url("ok", "m.gguf"), "llm", name=bad)
    assert err.value.exit_code == ExitCode.INPUT and "\n" not in str(err.value)
    assert len(server.hits) == hits
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == ["b", "models"]


def test_a_catalog_entry_whose_file_leaves_the_folder_is_refused(server: FileServer,
                                                                 tmp_path: Path) -> None:
    from app.models.catalog import CatalogEntry
    from app.models.manager import ModelManager

    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"mine")
    models = tmp_path / "models"
    models.mkdir()
    (models / "link.gguf").symlink_to(outside)

    def entry(file: str) -> CatalogEntry:
        return CatalogEntry(name="evil", role="llm", file=file, url=server.url("ok", "m.gguf"),
                            size_bytes=SIZE, sha256=SHA, licence="MIT", description="",
                            format="gguf")

    hits = len(server.hits)
    for file, message in [("../escaped.gguf", "invalid model file name"),
                          ("link.gguf", "outside the models folder")]:
        mgr = ModelManager(models, {"evil": entry(file)}, ssl_context=server.client_context())
        with pytest.raises(ModelNameError, match=message):
            mgr.download("evil")
    assert len(server.hits) == hits and outside.read_bytes() == b"mine"
    assert not (tmp_path / "escaped.gguf").exists()


def test_partial_bytes_counts_only_a_part_that_would_resume(server: FileServer,
                                                            tmp_path: Path) -> None:
    from app.models.catalog import CatalogEntry
    from app.models.manager import ModelManager

    url = server.url("ok", "m.gguf")
    entry = CatalogEntry(name="tiny", role="llm", file="m.gguf", url=url, size_bytes=SIZE,
                         sha256=SHA, licence="MIT", description="", format="gguf")
    mgr = ModelManager(tmp_path / "models", {"tiny": entry}, ssl_context=server.client_context())
    dest = mgr.dir / "m.gguf"
    dl.part_path(dest).write_bytes(DATA[:1000])  # from an older Daybook, or anywhere: unknown
    assert mgr.partial_bytes("tiny") == 0
    _bind_part(dest, url, DATA[:1000])
    assert mgr.partial_bytes("tiny") == 1000
    _bind_part(dest, server.url("ok", "a/m.gguf"), DATA[:1000])
    assert mgr.partial_bytes("tiny") == 0
    assert json.loads(part_info_path(dest).read_text())["url"].endswith("/ok/a/m.gguf")
    dl.part_path(dest).unlink()  # what the settings dialog's cancel does
    mgr.installed()
    assert not part_info_path(dest).exists()  # a sidecar does not outlive its part
