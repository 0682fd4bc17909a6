"""Which backend each role uses: the best installed model with a working backend, else the
embedded default (DESIGN.md's table). Every choice carries the reason, for the log and the UI."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from app.models.manager import ModelManager

EMBEDDED = {
    "asr": "pocketsphinx (bundled en-us, rough)",
    "vad": "webrtcvad (bundled)",
    "embedding": "lexical (hashed n-grams)",
    "llm": "extractive answers (no language model)",
    "vlm": "none (key frames only)",
}
# Roles whose installed models this version can run, and the Python module that runs them.
RUNNABLE = {"asr": ("pywhispercpp", "whisper"), "vad": ("onnxruntime", None)}


@dataclass(frozen=True)
class Choice:
    role: str
    using: str
    model_path: Path | None
    reason: str


def choose(manager: ModelManager | None, role: str) -> Choice:
    model = manager.best(role) if manager is not None else None
    if model is None:
        return Choice(role, EMBEDDED[role], None, "no model installed")
    if role not in RUNNABLE:
        return Choice(role, EMBEDDED[role], None,
                      f"{model.name} is installed; this version of Daybook cannot run "
                      f"{'an' if role[0] in 'aeiou' or role == 'llm' else 'a'} {role} model yet")
    module, extra = RUNNABLE[role]
    if importlib.util.find_spec(module) is None:
        hint = f"pip install 'daybook[{extra}]'" if extra else f"pip install {module}"
        return Choice(role, EMBEDDED[role], None,
                      f"{model.name} is installed but {module} is not ({hint})")
    return Choice(role, model.name, manager.path(model) if manager else None, "installed")


def describe_choices(manager: ModelManager | None) -> dict[str, str]:
    out = {}
    for role in EMBEDDED:
        c = choose(manager, role)
        out[role] = c.using + ("" if c.reason == "installed" else f"  ({c.reason})")
    return out
