"""Daybook's configuration: one validated object, loaded once from TOML and passed down.

Every field has a default, so an empty or missing file is a valid configuration. An invalid value
raises `ConfigError` naming the file, the section and the field.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError


def _opt(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
    doc: str = "",
) -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices, "doc": doc})


@dataclass(frozen=True)
class CaptureConfig:
    camera: str = _opt("0", doc="camera index, video file or stream URL; empty for none")
    microphone: str = _opt("default", doc="input device name or index; empty for none")
    audio_block_ms: int = _opt(30, lo=10, hi=200)
    audio_queue_chunks: int = _opt(500, lo=10, hi=100_000, doc="≈15 s of audio at 30 ms blocks")
    video_queue_frames: int = _opt(8, lo=1, hi=1000)


@dataclass(frozen=True)
class VadConfig:
    backend: str = _opt("auto", choices=("auto", "webrtc", "silero"),
                         doc="auto: Silero when installed, else webrtcvad")
    aggressiveness: int = _opt(2, lo=0, hi=3)
    hangover_ms: int = _opt(300, lo=30, hi=3000, doc="silence that ends an utterance")
    preroll_ms: int = _opt(300, lo=0, hi=2000, doc="audio kept before the detected start")
    min_speech_ms: int = _opt(240, lo=30, hi=5000, doc="shorter voiced bursts are ignored")
    max_utterance_s: float = _opt(30.0, lo=1.0, hi=600.0)


@dataclass(frozen=True)
class AsrConfig:
    backend: str = _opt("auto", choices=("auto", "whisper", "moonshine", "pocketsphinx", "none"),
                         doc="auto: whisper.cpp when a model is installed, else Moonshine (built "
                         "in), else pocketsphinx")
    queue_utterances: int = _opt(1000, lo=1, hi=1_000_000, doc="the ASR todo queue")
    timeout_s: float = _opt(60.0, lo=1.0, hi=3600.0,
                            doc="a recogniser that does not answer this long is restarted")


@dataclass(frozen=True)
class VideoConfig:
    sample_fps: float = _opt(1.0, lo=0.05, hi=30.0)
    clip_similarity_threshold: float = _opt(
        0.9, lo=0.0, hi=1.0, doc="cut a clip when similarity to its first frame drops below"
    )
    max_clip_frames: int = _opt(16, lo=1, hi=1000)
    max_clip_s: float = _opt(16.0, lo=1.0, hi=3600.0)
    key_frame_max_width: int = _opt(640, lo=64, hi=4096)
    jpeg_quality: int = _opt(75, lo=10, hi=100)
    captions: bool = _opt(True, doc="caption clips when a vision model is installed")


def _url_problem(url: str, *, path: bool) -> str | None:
    """Why `url` is not http(s)://host[:port] (with a `path` when allowed); None when it is
    (or empty)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number < 65536)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or (not path and parts.path not in ("", "/")) or parts.query or parts.fragment
            or parts.netloc.endswith(":")):
        want = "http://host:port/v1 or https://host:port/v1" if path else \
            "http://host:port or https://host:port"
        return f"{url!r} is not a server address (want {want})"
    return None


def _server_url_problem(url: str) -> str | None:
    return _url_problem(url, path=False)


def _api_url_problem(url: str) -> str | None:
    return _url_problem(url, path=True)


@dataclass(frozen=True)
class MemoryConfig:
    embedder: str = _opt("auto", choices=("auto", "minilm", "lexical"),
                         doc="auto: all-MiniLM-L6-v2 (the catalog's when installed, else the "
                         "built-in int8 one), else lexical; minilm: that or an error")
    batch_size: int = _opt(32, lo=1, hi=10_000)
    flush_interval_s: float = _opt(1.0, lo=0.01, hi=600.0)
    store_timeout_s: float = _opt(30.0, lo=1.0, hi=3600.0,
                                  doc="a store that does not answer this long is restarted")
    summaries: bool = _opt(True, doc="write a summary of every finished hour and day")
    chroma_url: str = field(default="", metadata={
        "check": _server_url_problem,
        "doc": "a Chroma server (http://host:port); empty for the embedded database in the "
               "data dir"})


@dataclass(frozen=True)
class ReasoningConfig:
    top_k: int = _opt(5, lo=1, hi=100)
    min_similarity: float = _opt(0.0, lo=0.0, hi=1.0,
                                 doc="drop vector matches below this; 0: the embedder's own")
    backend: str = _opt("auto", choices=("auto", "llama", "openai", "extractive"),
                        doc="auto: the language model installed through the model manager, else "
                        "the extractive answer; llama: that model (or `model`); openai: the "
                        "server at `base_url`; extractive: never a language model")
    model: str = _opt("", doc="llama: an installed model's name or a GGUF path (empty: the "
                      "best installed one); openai: the model name sent to the server")
    base_url: str = field(default="", metadata={
        "check": _api_url_problem,
        "doc": "an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (llama.cpp's "
               "server, Ollama, vLLM)"})
    api_key_env: str = _opt("DAYBOOK_LLM_API_KEY",
                            doc="the environment variable holding the server's API key, if any")
    threads: int = _opt(0, lo=0, hi=256, doc="llama.cpp threads; 0: one a core (at most 8), "
                        "at a lower priority than the app")
    max_tokens: int = _opt(160, lo=16, hi=4096, doc="the longest answer, in tokens")
    context_tokens: int = _opt(4096, lo=512, hi=131_072,
                               doc="the prompt and answer together, at most (and the model's own "
                               "limit)")
    timeout_s: float = _opt(120.0, lo=5.0, hi=3600.0,
                            doc="a model that produces nothing this long has failed")


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = _opt("", doc="models folder; empty for DATA_DIR/models")
    timeout_s: float = _opt(30.0, lo=1.0, hi=600.0, doc="a download stalled this long fails")


@dataclass(frozen=True)
class AssistantConfig:
    wake_name: str = _opt("Daybook", doc="questions addressed to this name are answered")
    voice: str = _opt("", doc="TTS voice id; empty for the system default")
    speak: str = _opt("spoken", choices=("spoken", "always", "never"),
                      doc="which answers are said out loud: those to spoken questions, all, none")
    rate_wpm: int = _opt(175, lo=80, hi=450, doc="speaking rate in words per minute")
    volume: int = _opt(100, lo=0, hi=100, doc="speech volume in percent")
    output: str = _opt("default", doc="speaker (output device name or index); empty for text only")
    echo_cancellation: bool = _opt(True, doc="remove Daybook's own voice from the microphone")
    barge_in: bool = _opt(True, doc="talking over an answer stops it")
    barge_in_confidence: float = _opt(0.6, lo=0.0, hi=1.0,
                                      doc="while speaking, how sure the VAD must be of speech")


@dataclass(frozen=True)
class PrivacyConfig:
    retention_days: int = _opt(0, lo=0, hi=36_500, doc="forget moments older than this; 0 keeps all")
    incognito_minutes: int = _opt(15, lo=1, hi=1440)


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = _opt("", doc="where memory, models and logs live; empty for the default")


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    max_file_bytes: int = _opt(5_000_000, lo=10_000, hi=1_000_000_000)
    backup_count: int = _opt(3, lo=0, hi=100)


@dataclass(frozen=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    assistant: AssistantConfig = field(default_factory=AssistantConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = field(default="(defaults)", compare=False)

    def replace(self, **sections: Any) -> Config:
        """A copy with some fields changed: `cfg.replace(vad={"hangover_ms": 200})`."""
        changes = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changes)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_value(where: str, f: dataclasses.Field[Any], value: Any) -> Any:
    kind = type(f.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {_TYPE_NAMES[kind]}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    meta = f.metadata
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where}: {value!r} is out of range ({lo} to {hi})")
    if choices and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    problem = meta["check"](value) if meta.get("check") else None
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return value


def config_from_dict(data: dict[str, Any], source: str = "(dict)") -> Config:
    """Validate a parsed TOML document into a Config; raises ConfigError naming the bad field."""
    sections: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(Config) if f.name != "source"}
    for name, values in data.items():
        if name not in known:
            raise ConfigError(
                f"{source}: unknown section [{name}] (known: {', '.join(sorted(known))})"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        section_cls = known[name].default_factory
        fields = {f.name: f for f in dataclasses.fields(section_cls)}  # type: ignore[arg-type]
        checked = {}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"{source}: [{name}] {key}: unknown field (known: {', '.join(sorted(fields))})"
                )
            checked[key] = _check_value(f"{source}: [{name}] {key}", fields[key], value)
        sections[name] = section_cls(**checked)  # type: ignore[operator]
    return Config(**sections, source=source)


def load_config(path: Path | None) -> Config:
    """Load the config file at `path`; a missing file means all defaults."""
    if path is None or not path.exists():
        return Config()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return config_from_dict(data, str(path))


def describe_defaults() -> str:
    """The default configuration as commented TOML (for `daybook config --defaults`)."""
    lines: list[str] = []
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(section.default_factory):  # type: ignore[arg-type]
            default = f.default
            text = (
                f'"{default}"'
                if isinstance(default, str)
                else str(default).lower()
                if isinstance(default, bool)
                else repr(default)
            )
            doc = f.metadata.get("doc")
            lines.append(f"{f.name} = {text}" + (f"  # {doc}" if doc else ""))
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def save_config(cfg: Config, path: Path) -> None:
    """Write the fields that differ from the defaults, atomically (a TOML file a person can edit)."""
    lines: list[str] = ["# Daybook settings; every field not listed here has its default."]
    defaults = Config()
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        current, default = getattr(cfg, section.name), getattr(defaults, section.name)
        changed = [(f.name, getattr(current, f.name)) for f in dataclasses.fields(current)
                   if getattr(current, f.name) != getattr(default, f.name)]
        if changed:
            lines.append(f"\n[{section.name}]")
            lines += [f"{name} = {_toml_value(value)}" for name, value in changed]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
