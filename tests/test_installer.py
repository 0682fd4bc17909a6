"""Daybook as users install it: a wheel into a fresh virtualenv, and the Linux bundle as a .deb
installed with dpkg, each started from outside the checkout with no model downloaded and no
devices (the demo replayed, heard, a typed question about it answered), then removed with the
user's data left in place. Slow: the bundle build takes minutes (installer/build.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Minutes each: a bundle build, or pip installing every dependency (llama-cpp-python compiles if
# pip's wheel cache lacks it), beyond the suite's default 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

QUESTION = "what did I have for breakfast?"
HEARD = "scrambled eggs and coffee for breakfast"
PNG = b"\x89PNG\r\n\x1a\n"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing that points into the checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "DAYBOOK_CONFIG")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    return {**env, **extra}


def _self_test(command: list[str], cwd: Path, data: Path, shot: Path,
               env: dict[str, str]) -> dict:
    res = subprocess.run([*command, "--self-test", "--screenshot", str(shot), "--data-dir",
                          str(data)], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["self_test"] == "passed", result
    assert result["first_run_guidance"] is True, result
    assert result["question"] == QUESTION and HEARD in result["answer"].lower(), result
    assert shot.read_bytes()[:8] == PNG
    return result


def test_a_wheel_installs_into_a_fresh_virtualenv_and_runs(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, timeout=600, env=_clean_env())
    wheel = next(wheels.glob("daybook-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # llama-cpp-python comes from pip's wheel cache (built once by `make setup`), portable.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   timeout=1800, env=_clean_env(CMAKE_ARGS="-DGGML_NATIVE=OFF"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    data = tmp_path / "data"
    _self_test([str(venv / "bin" / "daybook")], outside, data, tmp_path / "wheel.png",
               _clean_env(QT_QPA_PLATFORM="offscreen",
                          DAYBOOK_CONFIG=str(tmp_path / "none.toml")))
    # The package data came with the wheel, not from the checkout.
    found = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from app.resources import DEMO_DIR; print(DEMO_DIR)"],
                           cwd=outside, capture_output=True, text=True, check=True)
    assert found.stdout.strip().startswith(str(venv)), found.stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not sys.platform.startswith("linux") or shutil.which("dpkg") is None:
        pytest.skip("the .deb is built and installed on Debian or Ubuntu")
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root (CI runs as root)")
    out = tmp_path_factory.mktemp("build") / "built.json"
    subprocess.run([sys.executable, str(ROOT / "installer" / "build.py"), "linux", "--json",
                    str(out)], check=True, timeout=2400, cwd=ROOT)
    return dict(json.loads(out.read_text()))


def test_the_deb_installs_runs_under_x11_and_uninstalls_leaving_the_data(
        deb: dict, tmp_path: Path) -> None:
    built = deb
    # Derived: libc6 and Qt's xcb libraries (linked), ALSA's PulseAudio plug-in and espeak-ng
    # (loaded with dlopen while the bundle ran its self-test; PortAudio is in the bundle).
    assert {"libc6", "libxcb-cursor0", "libasound2-plugins", "libespeak-ng1"} <= set(
        built["depends"]), built["depends"]
    assert built["self_test"]["self_test"] == "passed"  # the bundle ran before it was packaged
    subprocess.run(["dpkg", "-r", "daybook"], capture_output=True)  # an earlier run's, if any
    subprocess.run(["dpkg", "-i", built["deb"]], check=True, capture_output=True, timeout=600)
    try:
        assert Path("/usr/bin/daybook").resolve() == Path("/opt/daybook/daybook")
        desktop = Path("/usr/share/applications/daybook.desktop")
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True,
                               text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
        assert Path("/usr/share/icons/hicolor/scalable/apps/daybook.svg").is_file()
        assert Path("/usr/share/icons/hicolor/48x48/apps/daybook.png").read_bytes()[:8] == PNG

        # The installed command, as a user starts it, from their home: offscreen, then on a
        # real X server (Xvfb), whose window is kept as a screenshot.
        home = tmp_path / "home"
        home.mkdir()
        data = home / ".local" / "share" / "daybook"
        env = _clean_env(HOME=str(home), DAYBOOK_CONFIG=str(home / "none.toml"))
        _self_test(["daybook"], home, tmp_path / "offscreen-data", tmp_path / "offscreen.png",
                   {**env, "QT_QPA_PLATFORM": "offscreen"})
        env.pop("QT_QPA_PLATFORM", None)
        shot = tmp_path / "installed.png"
        result = _self_test(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "daybook"], home,
                            data, shot, env)
        assert isinstance(result["voice_samples"], int) and result["voice_samples"] > 16_000
        # The command line too, and the recogniser at full speed: Moonshine's decoder is
        # read from its .ort file by onnxruntime's own reader, found inside the bundle.
        ingest = subprocess.run(
            ["daybook", "ingest", "--audio", "/opt/daybook/_internal/app/resources/demo/demo.wav",
             "--json", "--data-dir", str(tmp_path / "ingested")],
            cwd=home, env=env, capture_output=True, text=True, timeout=300)
        assert ingest.returncode == 0, ingest.stderr
        assert json.loads(ingest.stdout)["utterances"] == 4, ingest.stdout
        assert "unoptimised" not in ingest.stderr, ingest.stderr
        kept = sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file())
        assert any(p.parts[:2] == ("memory", "chroma") for p in kept), kept
        artifacts = ROOT / "test-artifacts"  # kept by CI: what the installed window looked like
        artifacts.mkdir(exist_ok=True)
        shutil.copy(shot, artifacts / "installed-daybook.png")
    finally:
        removed = subprocess.run(["dpkg", "-r", "daybook"], capture_output=True, text=True,
                                 timeout=300)
    assert removed.returncode == 0, removed.stderr
    assert not Path("/opt/daybook").exists() and not Path("/usr/bin/daybook").exists()
    assert not Path("/usr/share/applications/daybook.desktop").exists()
    assert sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file()) == kept
