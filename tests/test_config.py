from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Config, config_from_dict, describe_defaults, load_config
from app.core.errors import ConfigError


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "absent.toml")
    assert cfg == Config()
    assert cfg.vad.hangover_ms == 300


def test_values_are_read_and_ints_widen_to_floats(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[vad]\nhangover_ms = 250\n[video]\nsample_fps = 2\n[capture]\ncamera = ""\n')
    cfg = load_config(path)
    assert cfg.vad.hangover_ms == 250
    assert cfg.video.sample_fps == 2.0 and isinstance(cfg.video.sample_fps, float)
    assert cfg.capture.camera == ""
    assert cfg.asr == Config().asr  # untouched sections keep their defaults
    assert cfg.source == str(path)


@pytest.mark.parametrize(("doc", "message"), [
    ({"vad": {"hangover_ms": "x"}}, r"\[vad\] hangover_ms: expected an integer, got 'x'"),
    ({"vad": {"hangover_ms": True}}, r"\[vad\] hangover_ms: expected an integer"),
    ({"vad": {"hangover_ms": 5}}, r"\[vad\] hangover_ms: 5 is out of range \(30 to 3000\)"),
    ({"asr": {"backend": "magic"}}, r"\[asr\] backend: 'magic' is not one of auto, whisper, pocketsphinx, none"),
    ({"vad": {"hangover": 300}}, r"\[vad\] hangover: unknown field"),
    ({"sound": {}}, r"unknown section \[sound\]"),
    ({"vad": 3}, r"\[vad\] must be a table"),
])
def test_invalid_values_name_the_field(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, "cfg.toml")


def test_broken_toml_is_reported_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[vad\nhangover_ms = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_defaults_document_round_trips() -> None:
    import tomllib

    assert config_from_dict(tomllib.loads(describe_defaults())) == Config()


def test_replace_changes_one_field() -> None:
    cfg = Config().replace(vad={"hangover_ms": 200})
    assert cfg.vad.hangover_ms == 200 and cfg.vad.preroll_ms == Config().vad.preroll_ms


def test_save_writes_only_changes_and_round_trips(tmp_path: Path) -> None:
    from app.core.config import save_config

    cfg = Config().replace(assistant={"wake_name": 'Ada "the" assistant'},
                           privacy={"retention_days": 30}, video={"sample_fps": 2.0})
    path = tmp_path / "sub" / "config.toml"
    save_config(cfg, path)
    text = path.read_text()
    assert "[vad]" not in text and "retention_days = 30" in text
    assert load_config(path) == cfg
