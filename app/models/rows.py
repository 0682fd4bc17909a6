"""The rows of the settings dialog's model table: every catalog model, then the user's own
(imported, or downloaded from an address), each with its size, whether it is installed or
partly downloaded, and a line of details. No Qt here: `guess_role` (the role an imported file
probably has, from its first bytes) and `manager_problem` (why the model manager is missing)
serve the same table and read only files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.errors import DaybookError
from app.core.units import fmt_bytes
from app.models.catalog import load_catalog
from app.models.manager import ModelManager
from app.models.validate import sniff_format


@dataclass(frozen=True)
class ModelRow:
    name: str
    role: str
    size_bytes: int
    installed: bool
    partial_bytes: int
    default: bool
    licence: str
    description: str
    in_catalog: bool
    details: str = ""

    @property
    def state(self) -> str:
        if self.installed:
            return "installed"
        return f"partial ({fmt_bytes(self.partial_bytes)})" if self.partial_bytes else "-"


def model_rows(manager: ModelManager) -> list[ModelRow]:
    """The catalog, then the user's own models (imported or from an address)."""
    installed = manager.installed()
    rows = []
    for e in manager.catalog.values():
        details = [f"{e.name}: {e.description}", f"licence {e.licence}", f"from {e.url}"]
        if e.requires:
            details.append(f"also downloads {', '.join(e.requires)}")
        if not e.verified:
            details.append("no published checksum")
        rows.append(ModelRow(e.name, e.role, e.size_bytes, e.name in installed,
                             manager.partial_bytes(e.name), e.default, e.licence, e.description,
                             True, " · ".join(details)))
    for m in installed.values():
        if m.name not in manager.catalog:
            origin = {"import": "imported", "url": "downloaded from an address"}.get(m.origin,
                                                                                     m.origin)
            rows.append(ModelRow(m.name, m.role, m.size_bytes, True, 0, False, "(your own file)",
                                 f"{origin} {m.installed_at.replace('T', ' ')}", False,
                                 f"{m.name}: {manager.path(m)} · sha256 {m.sha256}"))
    return rows


def guess_role(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fmt = sniff_format(fh.read(64))
    except OSError:
        fmt = None
    return {"gguf": "llm", "whisper-ggml": "asr", "onnx": "vad", "json": "tokenizer"}.get(
        fmt or "", "llm")


def manager_problem() -> str:
    try:
        load_catalog()
    except DaybookError as exc:
        return str(exc)
    return "the models folder could not be opened (see the log)"
