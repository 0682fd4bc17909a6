"""What is installed, and the user's actions on it: download, import, remove.

`installed.json` in the models dir records each installed file with its role and sha256. Writes
go through a temp file and an atomic rename, under a lock, so two processes never corrupt it.

Every name and file name is one plain component whose resolved path lies inside the models
folder. Every installed model has a file of its own, so its recorded sha256 stays true: a model
imported or downloaded from an address whose file name another installed model already uses, or
that a catalog entry will use, gets a numbered one instead (`model-2.gguf`). Removing a model
never deletes a file another entry still records.

A catalog entry with an archive (Moonshine, from the moonshine-cpp wheel) installs as a folder:
the archive is downloaded like any file (resumable, checksummed) as `<folder>.whl` (or `.zip`),
its members are taken out into a hidden staging folder and checked one by one, and the folder is
renamed into place and recorded under the index lock; the archive is then removed. Its recorded
sha256 is the archive's (the catalog holds each member's); it counts as installed while every
member file is in the folder.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import DaybookError
from app.core.lock import DataDirLock
from app.models.catalog import ROLES, CatalogEntry
from app.models.download import (
    MAX_UNDECLARED_BYTES,
    ArchiveError,
    DownloadCancelled,
    DownloadError,
    ProgressFn,
    check_archive,
    check_space,
    download,
    extract_members,
    remove_orphan_part_info,
    remove_path,
    remove_stale_staging,
    replace_folder,
    restore_folder,
    resumable_bytes,
    staging_folder,
)
from app.models.validate import (
    MAX_NAME_CHARS,
    ModelNameError,
    check_file_name,
    check_model_name,
    name_problem,
    sha256_file,
    validate_model_file,
)

ROLE_FORMATS = {"asr": "whisper-ggml", "vad": "onnx", "embedding": "onnx", "tokenizer": "json",
                "llm": "gguf", "vlm": "gguf", "mmproj": "gguf"}


class ModelError(DaybookError):
    pass


@dataclass(frozen=True)
class InstalledModel:
    name: str
    role: str
    file: str
    size_bytes: int
    sha256: str
    origin: str  # "catalog", "url" (user-entered address) or "import"
    installed_at: str
    verified: bool  # the hash matched a published one


class ModelManager:
    def __init__(self, models_dir: Path, catalog: dict[str, CatalogEntry], *,
                 timeout_s: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 max_url_bytes: int = MAX_UNDECLARED_BYTES) -> None:
        self.dir = models_dir
        self.catalog = catalog
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self.max_url_bytes = max_url_bytes  # cap for an address with no declared size
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._index = self.dir / "installed.json"

    # --- reading ---------------------------------------------------------------------------

    def installed(self) -> dict[str, InstalledModel]:
        """Installed models whose file is still there (a deleted file is not installed)."""
        remove_orphan_part_info(self.dir)  # a cancelled download's part deleted by its caller
        out = {}
        for name, raw in self._read().items():
            model = InstalledModel(**raw)
            if self._present(model):
                out[name] = model
        return out

    def path(self, model: InstalledModel) -> Path:
        """The model's file, or for a folder model (see `format_of`) its folder."""
        return self.dir / model.file

    def format_of(self, model: InstalledModel) -> str:
        """The format of an installed model: its catalog entry's (an entry's name is only ever
        recorded for that entry's bytes), else what its role's models are."""
        entry = self.catalog.get(model.name)
        return entry.format if entry is not None and entry.role == model.role else \
            ROLE_FORMATS[model.role]

    def _present(self, model: InstalledModel) -> bool:
        if not _file_ok(model.file):
            return False
        path = self.dir / model.file
        entry = self.catalog.get(model.name)
        if entry is not None and entry.is_folder:
            # Sizes are the catalog's only for what it describes (not an older version's).
            same = model.sha256 == entry.sha256
            return path.is_dir() and all(_has_size(path / m.file, m.size_bytes if same else 0)
                                         for m in entry.members)
        return path.is_file()

    def best(self, role: str) -> InstalledModel | None:
        """The catalog's default for the role if installed, else the newest installed one."""
        candidates = [m for m in self.installed().values() if m.role == role]
        return max(candidates, key=self.rank) if candidates else None

    def rank(self, model: InstalledModel) -> tuple[bool, str]:
        """Sort key, best last: the catalog's default for its role, then the newest."""
        entry = self.catalog.get(model.name)
        return (bool(entry and entry.default), model.installed_at)

    def partial_bytes(self, name: str) -> int:
        """Bytes of a catalog entry's download that the next attempt resumes from."""
        entry = self.catalog.get(name)
        if entry is None or not _file_ok(entry.file):
            return 0
        file = self._free_file(entry.file, entry.name, self._read())
        if entry.is_folder:
            archive = self.dir / _archive_file(file, entry)
            if entry.sha256 and archive.is_file() and \
                    archive.stat().st_size == entry.size_bytes:  # downloaded, not yet unpacked
                return entry.size_bytes
            return resumable_bytes(entry.url, archive, entry.sha256)
        return resumable_bytes(entry.url, self.dir / file, entry.sha256)

    # --- actions ---------------------------------------------------------------------------

    def download(self, name: str, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None,
                 on_start: Any = None) -> list[InstalledModel]:
        """Download a catalog entry and the companions it requires (skipping installed ones)."""
        entry = self._entry(name)
        done = []
        for dep in (*entry.requires, entry.name):
            item = self.catalog[dep]
            current = self.installed().get(dep)
            if current is not None and (not item.sha256 or current.sha256 == item.sha256):
                done.append(current)
                continue
            if on_start is not None:
                on_start(item)
            if item.is_folder:
                done.append(self._download_folder(item, progress, cancel))
                continue
            # The catalog's file name, unless (an index from before one file per entry) another
            # entry holds it.
            dest = self._dest(self._free_file(item.file, item.name, self._read()))
            digest = download(
                item.url, dest, size_bytes=item.size_bytes, sha256=item.sha256,
                progress=progress, cancel=cancel, timeout_s=self.timeout_s,
                ssl_context=self.ssl_context,
                validate=_validator(item.format))
            done.append(self._record(InstalledModel(
                name=item.name, role=item.role, file=dest.name,
                size_bytes=dest.stat().st_size, sha256=digest, origin="catalog",
                installed_at=_now(), verified=bool(item.sha256))))
        return done

    def _download_folder(self, item: CatalogEntry, progress: ProgressFn | None,
                         cancel: threading.Event | None) -> InstalledModel:
        """Download an archive entry and install its members as the folder `item.file`."""
        folder = self._dest(self._free_file(item.file, item.name, self._read()))
        archive = self._dest(_archive_file(folder.name, item))
        unpacked = sum(m.size_bytes for m in item.members)
        shown = Path(urlsplit(item.url).path).name or archive.name  # the wheel's own name
        if not _complete(archive, item):
            check_space(self.dir, item.size_bytes - resumable_bytes(item.url, archive,
                                                                    item.sha256) + unpacked)
            download(item.url, archive, size_bytes=item.size_bytes, sha256=item.sha256,
                     progress=progress, cancel=cancel, timeout_s=self.timeout_s,
                     ssl_context=self.ssl_context,
                     validate=lambda part: check_archive(part, item.members, shown))
        remove_stale_staging(folder)
        staging = staging_folder(folder)
        keep_archive = False
        try:
            check_space(self.dir, unpacked)
            staging.mkdir(mode=0o700)
            extract_members(archive, item.members, staging, cancel, shown)
            model = InstalledModel(
                name=item.name, role=item.role, file=folder.name, size_bytes=unpacked,
                sha256=item.sha256 or sha256_file(archive), origin="catalog",
                installed_at=_now(), verified=bool(item.sha256))
            with self._locked():
                index = self._read()
                others = {n: m for n, m in index.items() if n != model.name}
                if model.file.casefold() in _files(others):
                    raise ModelError(f"{model.file} was installed for another model at the same "
                                     "time; run the download again")
                old = replace_folder(staging, folder)
                try:
                    index[model.name] = asdict(model)
                    self._write(index)
                except BaseException:
                    restore_folder(folder, old, staging)  # the index still says the old one
                    raise
                if old is not None:
                    remove_path(old)
        except DownloadError as exc:
            # Short of space before unpacking: the checked archive stays for the next run.
            keep_archive = not isinstance(exc, ArchiveError | DownloadCancelled)
            raise
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                keep_archive = True
                raise DownloadError(f"the disk is full ({self.dir}) while unpacking "
                                    f"{archive.name}; nothing was installed, the download is "
                                    "kept: free some space and run it again") from exc
            raise
        finally:
            remove_path(staging)
            if not keep_archive:
                archive.unlink(missing_ok=True)
        return model

    def download_url(self, url: str, role: str, name: str | None = None,
                     progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> InstalledModel:
        """Download a model from a user-entered https URL (no published hash: recorded as is)."""
        if role not in ROLES:
            raise ModelError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if not url.startswith("https://"):
            raise ModelError(f"only https:// addresses are allowed, not {url}")
        if name is not None:
            check_model_name(name)
        file = _name_from(Path(urlsplit(url).path or "model"))
        fmt = ROLE_FORMATS[role]
        file = file + _suffix(fmt) if not file.endswith(_suffix(fmt)) else file
        name = check_model_name(name or Path(file).stem)
        if name in self.catalog:
            raise ModelError(f"{name} is a catalog model: download it by name instead")
        dest = self._dest(self._free_file(file, name, self._read()))
        digest = download(url, dest, max_bytes=self.max_url_bytes, progress=progress,
                          cancel=cancel, timeout_s=self.timeout_s, ssl_context=self.ssl_context,
                          validate=_validator(fmt))
        return self._record(InstalledModel(
            name=name, role=role, file=dest.name, size_bytes=dest.stat().st_size, sha256=digest,
            origin="url", installed_at=_now(), verified=False))

    def import_file(self, source: Path, role: str, name: str | None = None) -> InstalledModel:
        """Copy a local model file into the models dir after validating it."""
        if role not in ROLES:
            raise ModelError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if name is not None:
            check_model_name(name)
        fmt = validate_model_file(source, ROLE_FORMATS[role])
        name = check_model_name(name or _name_from(source))
        entry = self.catalog.get(name)
        if entry is not None and entry.role != role:
            raise ModelError(f"{name} is a {entry.role} model in the catalog, not {role}")
        root = self.dir.resolve()
        src = source.resolve()
        tmp: Path | None = None
        try:
            if src.parent == root:  # already in the models folder: hash it where it is
                digest = sha256_file(src)
            else:
                check_space(self.dir, source.stat().st_size)
                tmp = self._copy_in(src)
                digest = sha256_file(tmp)
            verified = bool(entry and entry.sha256 and entry.sha256 == digest)
            if entry and entry.sha256 and not verified:
                # Same name, other bytes: keep it, but as the user's own file (its own file too).
                name, entry = _local_name(name), None
            wanted = entry.file if entry else f"{name}{_suffix(fmt)}"
            with self._locked():
                index = self._read()
                dest = self._dest(self._free_file(wanted, name, index))
                if tmp is None and dest.resolve() != src:  # in the folder under another name
                    tmp = self._copy_in(src)
                if tmp is not None:
                    os.replace(tmp, dest)
                    tmp = None
                model = InstalledModel(
                    name=name, role=role, file=dest.name, size_bytes=dest.stat().st_size,
                    sha256=digest, origin="import", installed_at=_now(), verified=verified)
                index[name] = asdict(model)
                self._write(index)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        return model

    def remove(self, name: str) -> InstalledModel:
        with self._locked():
            index = self._read()
            if name not in index:
                raise ModelError(f"{name} is not installed")
            model = InstalledModel(**index.pop(name))
            still_used = model.file.casefold() in _files(index)
            path = self.dir / model.file
            if not still_used and _file_ok(model.file):
                if path.is_dir() and not path.is_symlink():
                    # Out of the way first: a folder is never left half deleted under its name.
                    aside = staging_folder(path, ".old")
                    try:
                        os.replace(path, aside)
                    except OSError as exc:
                        raise ModelError(f"cannot remove {path} ({exc.strerror or exc}); is it "
                                         "in use? Stop listening and try again") from exc
                    remove_path(aside)
                else:
                    path.unlink(missing_ok=True)
            self._write(index)
        return model

    # --- files ---------------------------------------------------------------------------------

    def _dest(self, file: str) -> Path:
        """The path of `file` in the models folder; ModelNameError unless it is a plain name
        whose resolved path lies inside the folder."""
        check_file_name(file)
        root = self.dir.resolve()
        if not (root / file).resolve().is_relative_to(root):
            raise ModelNameError(f"{file!r} resolves to {(root / file).resolve()}, outside the "
                                 f"models folder {root}")
        return self.dir / file

    def _free_file(self, wanted: str, name: str, index: dict[str, dict[str, Any]]) -> str:
        """`wanted`, unless another installed entry uses that file (or, for a model not in the
        catalog, a catalog entry will): then the first free `stem-N.suffix`. The same inputs
        give the same answer, so a download run again resumes its own part."""
        taken = _files({n: m for n, m in index.items() if n != name})
        if name not in self.catalog:
            taken |= {e.file.casefold() for e in self.catalog.values()}
        if wanted.casefold() not in taken:
            return wanted
        own = str(index.get(name, {}).get("file", "")).casefold()
        stem, suffix = _split_suffix(wanted)
        for i in itertools.count(2):
            candidate = f"{stem}-{i}{suffix}"
            if candidate.casefold() not in taken and (candidate.casefold() == own or
                                                      not (self.dir / candidate).exists()):
                return candidate
        raise AssertionError("unreachable")

    def _copy_in(self, src: Path) -> Path:
        tmp = self.dir / f".import-{uuid.uuid4().hex}.tmp"
        shutil.copyfile(src, tmp)
        return tmp

    # --- the index ---------------------------------------------------------------------------

    def _entry(self, name: str) -> CatalogEntry:
        if name not in self.catalog:
            known = ", ".join(sorted(self.catalog))
            raise ModelError(f"no model named {name!r} in the catalog (known: {known})")
        return self.catalog[name]

    def _record(self, model: InstalledModel) -> InstalledModel:
        with self._locked():
            index = self._read()
            others = {n: m for n, m in index.items() if n != model.name}
            if model.file.casefold() in _files(others):  # only a concurrent install does this
                raise ModelError(f"{model.file} was installed for another model at the same "
                                 f"time; run the {model.origin} again")
            index[model.name] = asdict(model)
            self._write(index)
        return model

    def _locked(self) -> DataDirLock:
        return _BlockingLock(self.dir / "installed.lock")

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._index.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ModelError(f"{self._index} is corrupt ({exc}); remove it and re-import") from exc
        return data if isinstance(data, dict) else {}

    def _write(self, index: dict[str, dict[str, Any]]) -> None:
        tmp = self._index.with_name("installed.json.tmp")
        tmp.write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self._index)


class _BlockingLock(DataDirLock):
    """Waits (briefly) for the models index lock instead of refusing."""

    def acquire(self) -> _BlockingLock:
        deadline = time.monotonic() + 10
        while True:
            try:
                super().acquire()
                return self
            except DaybookError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _has_size(path: Path, size_bytes: int) -> bool:
    """A file, of `size_bytes` unless that is 0."""
    try:
        return path.is_file() and (not size_bytes or path.stat().st_size == size_bytes)
    except OSError:
        return False


def _archive_file(folder: str, entry: CatalogEntry) -> str:
    """Where an archive entry's download is kept until it is unpacked: `<folder>.whl`."""
    suffix = Path(urlsplit(entry.url).path).suffix.lower()
    return folder + (suffix if suffix in (".whl", ".zip") else ".zip")


def _complete(archive: Path, entry: CatalogEntry) -> bool:
    """An archive downloaded and checked before, whose unpacking did not finish."""
    return bool(entry.sha256) and archive.is_file() and \
        archive.stat().st_size == entry.size_bytes and sha256_file(archive) == entry.sha256


def _validator(fmt: str) -> Callable[[Path], object]:
    return lambda path: validate_model_file(path, fmt)


def _name_from(path: Path) -> str:
    stem = path.stem if path.suffix in (".gguf", ".onnx", ".bin", ".json") else path.name
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower())
    name = re.sub(r"\.{2,}", ".", name).strip("-.")[:MAX_NAME_CHARS].rstrip("-.")
    if name_problem(name) is not None:  # e.g. a Windows device name
        name = f"model-{name}" if name else "model"
    return name


def _file_ok(file: str) -> bool:
    """Whether a recorded file name is one component of the models folder (reading it, or
    unlinking it, stays in the folder; a file there may be a link elsewhere, set up by the
    user). New files get the stricter `check_file_name`."""
    return bool(file) and file not in (".", "..") and not any(c in file for c in "/\\\0") \
        and not os.path.isabs(file) and Path(file).name == file


def _local_name(name: str) -> str:
    return f"{name[:MAX_NAME_CHARS - len('-local')]}-local"


def _files(index: dict[str, dict[str, Any]]) -> set[str]:
    """The files the entries of `index` use, case-folded (one file on macOS and Windows)."""
    return {str(m.get("file", "")).casefold() for m in index.values()}


def _split_suffix(file: str) -> tuple[str, str]:
    for suffix in (".gguf", ".onnx", ".bin", ".json", ".txt"):
        if file.endswith(suffix) and len(file) > len(suffix):
            return file[: -len(suffix)], suffix
    return file, ""


def _suffix(fmt: str) -> str:
    return {"gguf": ".gguf", "whisper-ggml": ".bin", "onnx": ".onnx", "json": ".json"}.get(fmt, "")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
