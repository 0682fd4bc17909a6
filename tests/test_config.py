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
    ({"asr": {"backend": "magic"}}, r"\[asr\] backend: 'magic' is not one of auto, whisper, moonshine, pocketsphinx, none"),
    ({"memory": {"embedder": "bert"}}, r"\[memory\] embedder: 'bert' is not one of auto, minilm, lexical"),
    ({"vad": {"hangover": 300}}, r"\[vad\] hangover: unknown field"),
    ({"sound": {}}, r"unknown section \[sound\]"),
    ({"vad": 3}, r"\[vad\] must be a table"),
])
def test_invalid_values_name_the_field(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, "cfg.toml")


def test_embedder_choices() -> None:
    assert Config().memory.embedder == "auto"
    for choice in ("auto", "minilm", "lexical"):  # lexical stays valid for existing configs
        assert config_from_dict({"memory": {"embedder": choice}}).memory.embedder == choice


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


def _numeric_fields() -> list[tuple[str, str, type, float, float]]:
    import dataclasses

    out = []
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        for f in dataclasses.fields(section.default_factory):  # type: ignore[arg-type]
            kind = type(f.default)
            if kind in (int, float):
                out.append((section.name, f.name, kind, f.metadata["lo"], f.metadata["hi"]))
    return out


def test_every_numeric_field_has_a_range() -> None:
    fields = _numeric_fields()
    assert len(fields) > 20
    missing = [f"[{s}] {n}" for s, n, _, lo, hi in fields if lo is None or hi is None]
    assert not missing


@pytest.mark.parametrize(("section", "name", "kind", "lo", "hi"), _numeric_fields(),
                         ids=[f"{s}.{n}" for s, n, *_ in _numeric_fields()])
def test_every_numeric_field_refuses_what_is_out_of_range(
        section: str, name: str, kind: type, lo: float, hi: float) -> None:
    def nudge(x: float) -> float:  # the smallest step that matters for this field
        return 1 if kind is int else max(1e-6, abs(x) * 1e-6)

    for bad in (lo - nudge(lo), hi + nudge(hi)):
        with pytest.raises(ConfigError, match=rf"\[{section}\] {name}: .* is out of range"):
            config_from_dict({section: {name: kind(bad)}}, "cfg.toml")
    config_from_dict({section: {name: kind(lo)}}, "cfg.toml")  # the bounds themselves are fine
    config_from_dict({section: {name: kind(hi)}}, "cfg.toml")
    if kind is float:
        for bad in (float("nan"), float("inf"), float("-inf")):
            with pytest.raises(ConfigError, match=rf"\[{section}\] {name}: expected a finite "
                                                  r"number, got (nan|inf|-inf)"):
                config_from_dict({section: {name: bad}}, "cfg.toml")


@pytest.mark.parametrize("text", ["nan", "+nan", "inf", "-inf"])
def test_toml_nan_and_inf_are_refused_naming_the_field(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[video]\nsample_fps = {text}\n")
    with pytest.raises(ConfigError, match=r"c.toml: \[video\] sample_fps: expected a finite "
                                          r"number"):
        load_config(path)
