"""What is installed, and the user's actions on it: download, import, remove.

`installed.json` in the models dir records each installed file with its role and sha256. Writes
go through a temp file and an atomic rename, under a lock, so two processes never corrupt it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import DaybookError
from app.core.lock import DataDirLock
from app.models.catalog import ROLES, CatalogEntry
from app.models.download import ProgressFn, check_space, download, part_path
from app.models.validate import sha256_file, validate_model_file

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
                 timeout_s: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.dir = models_dir
        self.catalog = catalog
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._index = self.dir / "installed.json"

    # --- reading ---------------------------------------------------------------------------

    def installed(self) -> dict[str, InstalledModel]:
        """Installed models whose file is still there (a deleted file is not installed)."""
        out = {}
        for name, raw in self._read().items():
            model = InstalledModel(**raw)
            if (self.dir / model.file).is_file():
                out[name] = model
        return out

    def path(self, model: InstalledModel) -> Path:
        return self.dir / model.file

    def best(self, role: str) -> InstalledModel | None:
        """The catalog's default for the role if installed, else the newest installed one."""
        candidates = [m for m in self.installed().values() if m.role == role]
        if not candidates:
            return None
        def rank(m: InstalledModel) -> tuple[bool, str]:
            entry = self.catalog.get(m.name)
            return (bool(entry and entry.default), m.installed_at)
        return max(candidates, key=rank)

    def partial_bytes(self, name: str) -> int:
        entry = self.catalog.get(name)
        if entry is None:
            return 0
        part = part_path(self.dir / entry.file)
        return part.stat().st_size if part.exists() else 0

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
            dest = self.dir / item.file
            digest = download(
                item.url, dest, size_bytes=item.size_bytes, sha256=item.sha256,
                progress=progress, cancel=cancel, timeout_s=self.timeout_s,
                ssl_context=self.ssl_context,
                validate=_validator(item.format))
            done.append(self._record(InstalledModel(
                name=item.name, role=item.role, file=item.file,
                size_bytes=dest.stat().st_size, sha256=digest, origin="catalog",
                installed_at=_now(), verified=bool(item.sha256))))
        return done

    def download_url(self, url: str, role: str, name: str | None = None,
                     progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> InstalledModel:
        """Download a model from a user-entered https URL (no published hash: recorded as is)."""
        if role not in ROLES:
            raise ModelError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if not url.startswith("https://"):
            raise ModelError(f"only https:// addresses are allowed, not {url}")
        file = _name_from(Path(urlsplit(url).path or "model"))
        fmt = ROLE_FORMATS[role]
        file = file + _suffix(fmt) if not file.endswith(_suffix(fmt)) else file
        name = name or Path(file).stem
        if name in self.catalog:
            raise ModelError(f"{name} is a catalog model: download it by name instead")
        dest = self.dir / file
        digest = download(url, dest, progress=progress, cancel=cancel, timeout_s=self.timeout_s,
                          ssl_context=self.ssl_context, validate=_validator(fmt))
        return self._record(InstalledModel(
            name=name, role=role, file=file, size_bytes=dest.stat().st_size, sha256=digest,
            origin="url", installed_at=_now(), verified=False))

    def import_file(self, source: Path, role: str, name: str | None = None) -> InstalledModel:
        """Copy a local model file into the models dir after validating it."""
        if role not in ROLES:
            raise ModelError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        fmt = validate_model_file(source, ROLE_FORMATS[role])
        name = name or _name_from(source)
        entry = self.catalog.get(name)
        if entry is not None and entry.role != role:
            raise ModelError(f"{name} is a {entry.role} model in the catalog, not {role}")
        file = entry.file if entry else f"{name}{_suffix(fmt)}"
        dest = self.dir / file
        if dest.exists() and dest.resolve() == source.resolve():
            digest = sha256_file(dest)
        else:
            check_space(self.dir, source.stat().st_size)
            tmp = dest.with_name(dest.name + ".import")
            shutil.copyfile(source, tmp)
            digest = sha256_file(tmp)
            os.replace(tmp, dest)
        verified = bool(entry and entry.sha256 and entry.sha256 == digest)
        if entry and entry.sha256 and not verified:
            # Same name, other bytes: keep it, but as the user's own file.
            name = f"{name}-local"
        return self._record(InstalledModel(
            name=name, role=role, file=file, size_bytes=dest.stat().st_size, sha256=digest,
            origin="import", installed_at=_now(), verified=verified))

    def remove(self, name: str) -> InstalledModel:
        with self._locked():
            index = self._read()
            if name not in index:
                raise ModelError(f"{name} is not installed")
            model = InstalledModel(**index.pop(name))
            still_used = any(m["file"] == model.file for m in index.values())
            if not still_used:
                (self.dir / model.file).unlink(missing_ok=True)
            self._write(index)
        return model

    # --- the index ---------------------------------------------------------------------------

    def _entry(self, name: str) -> CatalogEntry:
        if name not in self.catalog:
            known = ", ".join(sorted(self.catalog))
            raise ModelError(f"no model named {name!r} in the catalog (known: {known})")
        return self.catalog[name]

    def _record(self, model: InstalledModel) -> InstalledModel:
        with self._locked():
            index = self._read()
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


def _validator(fmt: str) -> Callable[[Path], object]:
    return lambda path: validate_model_file(path, fmt)


def _name_from(path: Path) -> str:
    stem = path.stem if path.suffix in (".gguf", ".onnx", ".bin", ".json") else path.name
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.")
    return name or "model"


def _suffix(fmt: str) -> str:
    return {"gguf": ".gguf", "whisper-ggml": ".bin", "onnx": ".onnx", "json": ".json"}.get(fmt, "")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
