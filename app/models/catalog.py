"""The model catalog (`models/catalog.toml`): what can be downloaded, from where, and its hash."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError
from app.models.validate import MAX_FILE_NAME_CHARS, name_problem

ROLES = ("asr", "vad", "embedding", "tokenizer", "llm", "vlm", "mmproj")
FORMATS = ("whisper-ggml", "gguf", "onnx", "json", "text")
DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "models" / "catalog.toml"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    role: str
    file: str
    url: str
    size_bytes: int
    sha256: str
    licence: str
    description: str
    format: str
    requires: tuple[str, ...] = ()
    default: bool = False
    verified: bool = False
    source: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def _entry(raw: dict[str, Any], where: str) -> CatalogEntry:
    def need(key: str, kind: type) -> Any:
        if key not in raw:
            raise ConfigError(f"{where}: missing '{key}'")
        value = raw[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ConfigError(f"{where}: '{key}' must be a {kind.__name__}")
        return value

    name = need("name", str)
    if not _NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} must be lowercase letters, digits, . _ -")
    role, fmt, url = need("role", str), need("format", str), need("url", str)
    if role not in ROLES:
        raise ConfigError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not url.startswith("https://"):
        raise ConfigError(f"{where}: url must be https://, got {url!r}")
    sha = need("sha256", str).lower()
    if sha and not _SHA256.match(sha):
        raise ConfigError(f"{where}: sha256 must be 64 hex digits or empty")
    file = need("file", str)
    problem = name_problem(file, MAX_FILE_NAME_CHARS)
    if problem is not None:
        raise ConfigError(f"{where}: file must be a plain file name, got {file!r} ({problem})")
    known = {"name", "role", "file", "url", "size_bytes", "sha256", "licence", "description",
             "format", "requires", "default", "verified", "source", "note"}
    return CatalogEntry(
        name=name, role=role, file=file, url=url, size_bytes=need("size_bytes", int),
        sha256=sha, licence=need("licence", str), description=need("description", str),
        format=fmt, requires=tuple(raw.get("requires", ())), default=bool(raw.get("default")),
        verified=bool(raw.get("verified")) and bool(sha), source=str(raw.get("source", "")),
        note=str(raw.get("note", "")),
        extra={k: v for k, v in raw.items() if k not in known})


def load_catalog(path: Path = DEFAULT_CATALOG) -> dict[str, CatalogEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"model catalog not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    entries: dict[str, CatalogEntry] = {}
    for i, raw in enumerate(data.get("model", [])):
        entry = _entry(raw, f"{path.name}: model #{i + 1} ({raw.get('name', '?')})")
        if entry.name in entries:
            raise ConfigError(f"{path.name}: duplicate model name {entry.name!r}")
        entries[entry.name] = entry
    for entry in entries.values():
        for dep in entry.requires:
            if dep not in entries:
                raise ConfigError(f"{path.name}: {entry.name} requires unknown {dep!r}")
    defaults = [e.role for e in entries.values() if e.default]
    if len(defaults) != len(set(defaults)):
        raise ConfigError(f"{path.name}: more than one default for a role")
    return entries
