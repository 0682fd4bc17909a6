"""The downloader against a real HTTPS server on 127.0.0.1 that misbehaves on request."""

from __future__ import annotations

import hashlib
import itertools
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.models.download import (
    ChecksumMismatch,
    DownloadCancelled,
    DownloadError,
    Progress,
    download,
)
from tests.https_server import FileServer

SIZE = 3_000_000


def gguf_shaped(n_bytes: int, seed: int = 0) -> bytes:
    """A GGUF header (v3, 1 tensor, 0 keys) followed by random bytes."""
    body = np.random.default_rng(seed).integers(0, 256, n_bytes - 24, dtype=np.uint8).tobytes()
    return b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + body


DATA = gguf_shaped(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    srv = FileServer({"m.gguf": DATA}, tmp_path_factory.mktemp("cert"), stall_s=4.0)
    yield srv
    srv.close()


def _get(server: FileServer, mode: str, dest: Path, **kw: object) -> str:
    kw.setdefault("size_bytes", SIZE)
    kw.setdefault("sha256", SHA)
    return download(server.url(mode, "m.gguf"), dest, ssl_context=server.client_context(),
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
    with pytest.raises(DownloadError, match="closed after .* run the download again to resume"):
        _get(server, "drop", dest)
    part = tmp_path / "m.gguf.part"
    kept = part.stat().st_size
    assert 0 < kept < SIZE and not dest.exists()
    seen: list[Progress] = []
    _get(server, "ok", dest, progress=seen.append)
    assert dest.read_bytes() == DATA
    resume = server.hits[-1]
    assert resume.range == f"bytes={kept}-"
    assert resume.sent_bytes == SIZE - kept  # only the rest travelled
    assert seen[-1].resumed_from == kept


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.gguf"
    (tmp_path / "m.gguf.part").write_bytes(DATA[:1000])
    _get(server, "norange", dest)
    assert dest.read_bytes() == DATA


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
    assert "cannot run a vlm model yet" in choose(mgr, "vlm").reason
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
