"""Importing model files the user already has, the index of installed models, the CLI, and the
factory choosing an installed model over the embedded default."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from app.core.config import Config
from app.core.errors import ConfigError, ExitCode
from app.core.paths import DataPaths
from app.models.catalog import CatalogEntry, load_catalog
from app.models.manager import ModelError, ModelManager, _name_from
from app.models.selection import choose
from app.models.validate import ModelFileError, ModelNameError, sha256_file, validate_model_file
from app.pipeline.factory import make_transcriber, make_vad, model_manager
from tests import tinymodels
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny")
    return {
        "gguf": tinymodels.make_tiny_llama_gguf(d / "tiny-llama.gguf"),
        "whisper": tinymodels.make_tiny_whisper_ggml(d / "ggml-tiny-test.bin"),
        "onnx": tinymodels.make_tiny_onnx(d / "tiny.onnx"),
        "silero": tinymodels.make_silero_like_onnx(d / "silero-like.onnx"),
    }


@pytest.fixture
def manager(tmp_path: Path) -> ModelManager:
    return ModelManager(tmp_path / "models", load_catalog())


@pytest.mark.parametrize(("key", "role", "fmt"), [
    ("gguf", "llm", "gguf"), ("whisper", "asr", "whisper-ggml"), ("onnx", "embedding", "onnx"),
])
def test_generated_files_validate_and_import(files: dict[str, Path], manager: ModelManager,
                                             key: str, role: str, fmt: str) -> None:
    assert validate_model_file(files[key]) == fmt
    model = manager.import_file(files[key], role)
    assert model.origin == "import" and model.role == role and not model.verified
    assert manager.path(model).read_bytes() == files[key].read_bytes()
    assert manager.installed()[model.name] == model
    assert len(model.sha256) == 64


def _truncate(src: Path, dest: Path, keep: int) -> Path:
    dest.write_bytes(src.read_bytes()[:keep])
    return dest


@pytest.mark.parametrize(("key", "keep", "message"), [
    ("gguf", 20, "truncated GGUF header"),
    ("gguf", 100, "truncated GGUF file"),
    ("whisper", 30, "truncated whisper.cpp header"),
    ("whisper", 5000, "truncated whisper.cpp model"),
    ("onnx", 40, "not a loadable ONNX model"),
])
def test_truncated_files_are_refused_with_the_reason(files: dict[str, Path], tmp_path: Path,
                                                     manager: ModelManager, key: str, keep: int,
                                                     message: str) -> None:
    bad = _truncate(files[key], tmp_path / f"bad{files[key].suffix}", keep)
    role = {"gguf": "llm", "whisper": "asr", "onnx": "embedding"}[key]
    with pytest.raises(ModelFileError, match=message):
        manager.import_file(bad, role)
    assert manager.installed() == {}
    assert not any(p.suffix in (".gguf", ".bin", ".onnx") for p in manager.dir.iterdir())


def test_wrong_magic_and_wrong_role(files: dict[str, Path], tmp_path: Path,
                                    manager: ModelManager) -> None:
    junk = tmp_path / "model.gguf"
    junk.write_bytes(b"PK\x03\x04" + bytes(5000))  # a zip, say
    with pytest.raises(ModelFileError, match="unrecognised file .*504b0304"):
        manager.import_file(junk, "llm")
    with pytest.raises(ModelFileError, match="is a gguf file, expected whisper-ggml"):
        manager.import_file(files["gguf"], "asr")
    with pytest.raises(ModelFileError, match="model file not found"):
        manager.import_file(tmp_path / "absent.gguf", "llm")
    bad_version = tmp_path / "v9.gguf"
    bad_version.write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 1, 0) + bytes(100))
    with pytest.raises(ModelFileError, match="unsupported GGUF version 9"):
        manager.import_file(bad_version, "llm")
    with pytest.raises(ModelError, match="unknown role"):
        manager.import_file(files["gguf"], "painter")


def test_import_under_a_catalog_name_with_other_bytes_stays_the_users(
        files: dict[str, Path], manager: ModelManager) -> None:
    model = manager.import_file(files["whisper"], "asr", name="whisper-base.en")
    assert model.name == "whisper-base.en-local" and not model.verified


def test_remove(files: dict[str, Path], manager: ModelManager) -> None:
    model = manager.import_file(files["gguf"], "llm")
    manager.remove(model.name)
    assert manager.installed() == {} and not manager.path(model).exists()
    with pytest.raises(ModelError, match="is not installed"):
        manager.remove(model.name)


def test_deleted_file_is_not_installed(files: dict[str, Path], manager: ModelManager) -> None:
    model = manager.import_file(files["gguf"], "llm")
    manager.path(model).unlink()
    assert manager.installed() == {}


def test_factory_uses_installed_models_and_says_which(files: dict[str, Path],
                                                     tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data").ensure()
    cfg = Config()
    mgr = model_manager(cfg, paths)
    assert mgr is not None
    # Nothing installed: the models that ship in wheels.
    assert make_vad(cfg, mgr).name == "silero (silero_vad.onnx)"
    assert choose(mgr, "vad").source == "wheel" and choose(mgr, "asr").source == "wheel"
    transcriber = make_transcriber(cfg, mgr)
    assert transcriber is not None and transcriber.name.startswith("moonshine")
    transcriber.close()  # type: ignore[attr-defined]
    assert choose(mgr, "llm").reason == "no model installed"

    mgr.import_file(files["silero"], "vad", name="silero-like")
    mgr.import_file(files["whisper"], "asr", name="tiny-whisper")
    vad = make_vad(cfg, mgr)
    assert vad.name.startswith("silero")
    frame = (np.sin(np.arange(512) / 5) * 8000).astype(np.int16)
    assert isinstance(vad.is_speech(frame), bool)  # the ONNX session really runs
    asr = make_transcriber(cfg, mgr)
    assert asr is not None and asr.name == "whisper.cpp (tiny-whisper.bin)"
    text = asr.transcribe(np.random.default_rng(0).normal(0, 3000, 32000).astype(np.int16),
                          16000)
    assert isinstance(text, str)  # random weights: gibberish, but the real library ran
    # The config can still insist on the embedded ones.
    forced = cfg.replace(vad={"backend": "webrtc"}, asr={"backend": "pocketsphinx"})
    assert make_vad(forced, mgr).name == "webrtcvad"
    assert make_transcriber(forced, mgr).name.startswith("pocketsphinx")  # type: ignore[union-attr]


def test_a_corrupt_installed_model_falls_back_with_a_warning(
        files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = DataPaths(tmp_path / "data").ensure()
    mgr = model_manager(Config(), paths)
    assert mgr is not None
    model = mgr.import_file(files["whisper"], "asr", name="tiny-whisper")
    data = mgr.path(model).read_bytes()
    mgr.path(model).write_bytes(data[:3000])  # damaged after install
    asr = make_transcriber(Config(), mgr)
    assert asr is not None and asr.name.startswith("moonshine")  # the next best
    asr.close()  # type: ignore[attr-defined]
    assert "cannot use tiny-whisper" in caplog.text and "truncated" in caplog.text


def test_models_cli(files: dict[str, Path], tmp_path: Path) -> None:
    res = run_cli("models", "import", str(files["gguf"]), "--role", "llm", data_dir=tmp_path)
    assert res.code == 0, res.err
    assert "Imported tiny-llama (llm" in res.out
    listing = run_cli("models", "list", "--json", data_dir=tmp_path).json()
    names = {m["name"]: m for m in listing["models"]}
    assert names["tiny-llama"]["installed"] and names["whisper-base.en"]["default"]
    assert not names["whisper-base.en"]["installed"]
    assert "moonshine" in listing["in_use"]["asr"] and "built in" in listing["in_use"]["asr"]
    assert listing["in_use"]["llm"] == "tiny-llama"  # an imported GGUF answers questions now
    res = run_cli("models", "import", str(tmp_path / "nope.gguf"), "--role", "llm",
                  data_dir=tmp_path)
    assert res.code != 0 and "model file not found" in res.err and "Traceback" not in res.err
    res = run_cli("models", "download", "no-such-model", data_dir=tmp_path)
    assert res.code != 0 and "no model named 'no-such-model'" in res.err
    res = run_cli("models", "remove", "tiny-llama", data_dir=tmp_path)
    assert res.code == 0 and "Removed tiny-llama" in res.out
    assert json.loads(run_cli("models", "list", "--json", data_dir=tmp_path).out)["in_use"][
        "llm"].startswith("extractive")


# --- names stay inside the models folder ---------------------------------------------------------

BAD_NAMES = ["../../escaped", "..", "a/b", "a\\b", ".hidden", "a..b", "x\x00y", "x\ny",
             "x\u202ey", "c:evil", "n" * 101, "", " padded", "nul"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_import_names_cannot_leave_the_models_folder(files: dict[str, Path], tmp_path: Path,
                                                     bad: str) -> None:
    mgr = ModelManager(tmp_path / "a" / "b" / "models", load_catalog())
    with pytest.raises(ModelNameError, match="invalid model name") as err:
        mgr.import_file(files["gguf"], "llm", name=bad)
    assert err.value.exit_code == ExitCode.INPUT
    assert "\n" not in str(err.value) and len(str(err.value)) < 160
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == ["b", "models"]


def test_cli_refuses_an_escaping_name_in_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    res = run_cli("models", "import", str(files["gguf"]), "--role", "llm", "--name",
                  "../../escaped", data_dir=data)
    assert res.code == ExitCode.INPUT, res.err
    assert res.err.strip().count("\n") == 0 and "Traceback" not in res.err
    assert "invalid model name '../../escaped'" in res.err
    assert not list(tmp_path.rglob("escaped*"))


def test_a_symlink_out_of_the_folder_is_not_a_destination(files: dict[str, Path],
                                                          tmp_path: Path) -> None:
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"mine")
    mgr = ModelManager(tmp_path / "models", load_catalog())
    (mgr.dir / "evil.gguf").symlink_to(outside)
    with pytest.raises(ModelNameError, match="outside the models folder"):
        mgr.import_file(files["gguf"], "llm", name="evil")
    assert outside.read_bytes() == b"mine" and mgr.installed() == {}
    assert sorted(p.name for p in mgr.dir.iterdir() if not p.name.startswith("installed")) == \
        ["evil.gguf"]  # no temporary copy left behind


def test_names_derived_from_file_names_are_valid() -> None:
    assert _name_from(Path("/x/Ggml Small..EN.bin")) == "ggml-small.en"
    assert _name_from(Path("/x/..")) == "model"
    assert _name_from(Path("/x/CON.gguf")) == "model-con"
    assert len(_name_from(Path("/x/" + "a" * 300 + ".gguf"))) == 100


@pytest.mark.parametrize("file", ["../x.bin", "..", "a:b.bin", "x\ty.bin", "a\\b.bin"])
def test_catalog_file_fields_are_plain_names(tmp_path: Path, file: str) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f"""[[model]]
name = "x"
role = "asr"
file = {json.dumps(file)}
url = "https://127.0.0.1/x.bin"
size_bytes = 1
sha256 = ""
licence = "MIT"
description = "x"
format = "whisper-ggml"
""", encoding="utf-8")
    with pytest.raises(ConfigError, match="file must be a plain file name"):
        load_catalog(catalog)


# --- one file per entry ---------------------------------------------------------------------------


def _other_gguf(files: dict[str, Path], tmp_path: Path) -> Path:
    other = tmp_path / "other" / "tiny-llama.gguf"
    other.parent.mkdir(exist_ok=True)
    other.write_bytes(files["gguf"].read_bytes() + b"another version")
    return other


def test_import_under_a_catalog_name_with_other_bytes_gets_its_own_file(
        files: dict[str, Path], tmp_path: Path) -> None:
    data = files["gguf"].read_bytes()
    entry = CatalogEntry(name="tiny", role="llm", file="tiny-catalog.gguf",
                         url="https://127.0.0.1/tiny.gguf", size_bytes=len(data),
                         sha256=hashlib.sha256(data).hexdigest(), licence="MIT",
                         description="tiny", format="gguf", verified=True)
    mgr = ModelManager(tmp_path / "models", {"tiny": entry})
    published = mgr.import_file(files["gguf"], "llm", name="tiny")
    assert published.verified and published.file == "tiny-catalog.gguf"
    local = mgr.import_file(_other_gguf(files, tmp_path), "llm", name="tiny")
    assert (local.name, local.file, local.verified) == ("tiny-local", "tiny-local.gguf", False)
    assert mgr.path(published).read_bytes() == data
    for model in mgr.installed().values():  # every recorded hash is still true
        assert sha256_file(mgr.path(model)) == model.sha256
    # A file of the user's own never takes a catalog entry's file name either.
    clash = mgr.import_file(files["gguf"], "llm", name="tiny-catalog")
    assert clash.file == "tiny-catalog-2.gguf"


def test_two_names_for_one_file_name_get_two_files(files: dict[str, Path],
                                                   manager: ModelManager,
                                                   tmp_path: Path) -> None:
    first = manager.import_file(files["gguf"], "llm", name="same")
    # An index written before one file per entry: another entry on the file "same.gguf".
    index = json.loads((manager.dir / "installed.json").read_text())
    index["older"] = {**index["same"], "name": "older"}
    (manager.dir / "installed.json").write_text(json.dumps(index))
    again = manager.import_file(_other_gguf(files, tmp_path), "llm", name="same")
    assert again.file == "same-2.gguf" and manager.path(first).read_bytes() == \
        files["gguf"].read_bytes()
    for model in manager.installed().values():
        assert sha256_file(manager.path(model)) == model.sha256
    manager.remove("older")  # its file is nobody else's now
    assert not manager.path(first).exists() and manager.path(again).exists()


def test_removing_one_entry_keeps_a_file_another_uses(files: dict[str, Path],
                                                      manager: ModelManager) -> None:
    model = manager.import_file(files["gguf"], "llm", name="shared")
    index = json.loads((manager.dir / "installed.json").read_text())
    index["twin"] = {**index["shared"], "name": "twin", "file": "SHARED.gguf"}  # same, on macOS
    index["shared"]["file"] = "shared.gguf"
    (manager.dir / "installed.json").write_text(json.dumps(index))
    manager.remove("shared")
    assert manager.path(model).exists()


def test_a_file_already_in_the_folder_is_imported_where_it_is(files: dict[str, Path],
                                                              manager: ModelManager) -> None:
    inside = manager.dir / "mine.gguf"
    inside.write_bytes(files["gguf"].read_bytes())
    model = manager.import_file(inside, "llm")
    assert (model.name, model.file) == ("mine", "mine.gguf")
    renamed = manager.import_file(inside, "llm", name="copy")  # another name: its own file
    assert renamed.file == "copy.gguf" and inside.exists()
    assert sorted(p.name for p in manager.dir.glob("*.gguf")) == ["copy.gguf", "mine.gguf"]
