"""Check a model file before anything native touches it: exists, size, magic, header sanity.

pywhispercpp and llama.cpp do not fail cleanly on a bad file (pywhispercpp logs and the next call
segfaults), so every file is checked here first, with a message that names the problem.
"""

from __future__ import annotations

import hashlib
import json
import struct
import unicodedata
from pathlib import Path

from app.core.errors import DaybookError, InputError
from app.core.ort import new_session

GGUF_MAGIC = b"GGUF"
WHISPER_MAGIC = 0x67676D6C  # "ggml", little-endian u32
_CHUNK = 1 << 20


MAX_NAME_CHARS = 100  # a model's name; its file name adds a suffix
MAX_FILE_NAME_CHARS = 120
# Characters that separate paths or are not allowed in file names on Windows.
_FORBIDDEN = frozenset('/\\:<>"|?*')
_WINDOWS_DEVICES = frozenset(["con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                              *(f"lpt{i}" for i in range(1, 10))])


class ModelFileError(DaybookError):
    pass


class ModelNameError(InputError):
    """A model or file name that could leave the models folder or is not a plain file name."""


def name_problem(name: str, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """Why `name` cannot be a model's name or a file name in the models folder, or None.

    A name becomes (part of) a file name, so it must be one plain path component: no separators,
    no `..`, no leading dot (hidden, or `.`/`..`), no control characters, a sane length, and
    nothing Windows refuses in a file name.
    """
    if not name:
        return "it is empty"
    if len(name) > max_chars or len(name.encode("utf-8", "surrogatepass")) > 2 * max_chars:
        return f"it is longer than {max_chars} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name):
        return "it contains control characters"
    if any(c in _FORBIDDEN for c in name):
        return 'it contains a path separator or one of : < > " | ? *'
    if name.startswith("."):
        return "it starts with a dot"
    if ".." in name:
        return "it contains '..'"
    if name != name.strip() or name.endswith("."):
        return "it starts or ends with a space, or ends with a dot"
    if name.split(".")[0].lower() in _WINDOWS_DEVICES:
        return "it is a reserved device name on Windows"
    return None


def check_model_name(name: str) -> str:
    """`name` if it is a valid model name, else ModelNameError (exit code 5) saying why."""
    problem = name_problem(name)
    if problem is not None:
        raise ModelNameError(f"invalid model name {_short(name)}: {problem}")
    return name


def check_file_name(file: str) -> str:
    """`file` if it is a plain file name for the models folder, else ModelNameError."""
    problem = name_problem(file, MAX_FILE_NAME_CHARS)
    if problem is not None:
        raise ModelNameError(f"invalid model file name {_short(file)}: {problem}")
    return file


def _short(text: str) -> str:
    """The name as Python writes it (control characters escaped: one line), cut if long."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def sniff_format(head: bytes) -> str | None:
    """The format a file's first bytes say it is, or None."""
    if head[:4] == GGUF_MAGIC:
        return "gguf"
    if len(head) >= 4 and struct.unpack("<I", head[:4])[0] == WHISPER_MAGIC:
        return "whisper-ggml"
    # ONNX is a protobuf ModelProto; writers start with field 1 (ir_version, varint): 0x08.
    if len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 20:
        return "onnx"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "json"
    return None


def validate_model_file(path: Path, expected_format: str | None = None,
                        expected_size: int | None = None) -> str:
    """Return the file's format, or raise ModelFileError saying what is wrong."""
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"not a file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"model file is empty: {path}")
    if expected_size and size != expected_size:
        raise ModelFileError(f"{path.name} is {size} bytes, expected {expected_size} "
                             "(truncated or a different file)")
    with path.open("rb") as fh:
        head = fh.read(64)
    fmt = sniff_format(head)
    if expected_format == "text":  # a plain vocabulary file has no magic to sniff
        fmt = "text"
    if fmt is None:
        raise ModelFileError(f"{path.name}: unrecognised file (first bytes {head[:8].hex()}); "
                             "expected a GGUF, whisper.cpp ggml or ONNX model")
    if expected_format and fmt != expected_format:
        raise ModelFileError(f"{path.name} is a {fmt} file, expected {expected_format}")
    if fmt == "gguf":
        _check_gguf(path, head, size)
    elif fmt == "whisper-ggml":
        _check_whisper(path, head, size)
    elif fmt == "onnx":
        _check_onnx(path, size)
    elif fmt == "json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path.name}: broken JSON ({exc})") from exc
    return fmt


def _check_gguf(path: Path, head: bytes, size: int) -> None:
    """The whole header, metadata and tensor table parsed as llama.cpp does, and the file long
    enough for every tensor's data (see app.models.gguf_info; the architecture is checked where a
    role needs one, e.g. gguf_info.check_llm)."""
    from app.models.gguf_info import read_gguf_info  # it imports ModelFileError from here

    if len(head) < 24:
        raise ModelFileError(f"{path.name}: truncated GGUF header ({size} bytes)")
    info = read_gguf_info(path)
    if not info.tensors:
        raise ModelFileError(f"{path.name}: implausible GGUF header (0 tensors, {info.n_kv} keys)"
                             ": a vocabulary-only file?")


def _check_whisper(path: Path, head: bytes, size: int) -> None:
    if len(head) < 48:
        raise ModelFileError(f"{path.name}: truncated whisper.cpp header ({size} bytes)")
    (n_vocab, n_audio_ctx, n_audio_state, _h, n_audio_layer, n_text_ctx, n_text_state, _th,
     n_text_layer, n_mels, ftype) = struct.unpack("<11i", head[4:48])
    dims = (n_vocab, n_audio_ctx, n_audio_state, n_audio_layer, n_text_ctx, n_text_state,
            n_text_layer)
    if not all(0 < d < 1_000_000 for d in dims) or n_mels not in (80, 128) or not 0 <= ftype < 64:
        raise ModelFileError(f"{path.name}: implausible whisper.cpp header")
    # The smallest sane file still holds the mel filters and the vocabulary.
    if size < 48 + 8 + 4 * n_mels * 201 + n_vocab // 2:
        raise ModelFileError(f"{path.name}: truncated whisper.cpp model ({size} bytes)")


def _check_onnx(path: Path, size: int) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        return  # the magic check above is all we can do
    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        new_session(ort, str(path), options)
    except Exception as exc:
        message = str(exc).splitlines()[0][:200]
        raise ModelFileError(f"{path.name}: not a loadable ONNX model ({message})") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
