"""Read a GGUF file's header in pure Python, before llama.cpp (native code) ever sees the file.

`read_gguf_info(path)` parses the header, the key/value metadata and the tensor infos the way
llama.cpp's `gguf.cpp` does, checks what llama.cpp checks, and works out where the tensor data
ends, so a truncated download is caught here and not by a crash or a half-loaded model.
`check_llm(path)` adds the architecture: the file must be a text-generation model that the
bundled llama.cpp supports.

Bounded and fast: the file is read in 1 MiB chunks; arrays are never built (numeric arrays are
seeked past, string arrays such as `tokenizer.ggml.tokens` are walked through their length
prefixes and only their element count is kept); no length read from the file is allocated before
it is checked against the file's size; at most `MAX_HEADER_BYTES` of header are walked.

Standard library only: the `gguf` package is a development dependency.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.models.validate import ModelFileError

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3  # llama.cpp reads versions 2 and 3 (v1 is no longer supported there)
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # a tensor name must be shorter than this (ggml.h)
GGUF_MAX_STRING_LENGTH = 1 << 30  # as in gguf.cpp
GGUF_MAX_ARRAY_ELEMENTS = 1 << 30
MAX_TENSORS = 1_000_000
MAX_KV = 1_000_000
MAX_KEY_BYTES = 65_535
MAX_STRING_VALUE_BYTES = 1 << 20  # longer string values are skipped, not kept in `metadata`
MAX_HEADER_BYTES = 128 << 20  # real models: a few MB (a 256k vocabulary with merges is ~15 MB)
_CHUNK = 1 << 20

# GGUF value types (gguf.h, enum gguf_type).
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64, \
    _INT64, _FLOAT64 = range(13)
_SCALARS: dict[int, struct.Struct] = {
    _UINT8: struct.Struct("<B"), _INT8: struct.Struct("<b"),
    _UINT16: struct.Struct("<H"), _INT16: struct.Struct("<h"),
    _UINT32: struct.Struct("<I"), _INT32: struct.Struct("<i"),
    _FLOAT32: struct.Struct("<f"), _BOOL: struct.Struct("<B"),
    _UINT64: struct.Struct("<Q"), _INT64: struct.Struct("<q"), _FLOAT64: struct.Struct("<d"),
}
VALUE_TYPE_NAMES = {_UINT8: "uint8", _INT8: "int8", _UINT16: "uint16", _INT16: "int16",
                    _UINT32: "uint32", _INT32: "int32", _FLOAT32: "float32", _BOOL: "bool",
                    _STRING: "string", _ARRAY: "array", _UINT64: "uint64", _INT64: "int64",
                    _FLOAT64: "float64"}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_HEADER = struct.Struct("<4sIQQ")


@dataclass(frozen=True)
class GgmlType:
    name: str
    block_size: int  # elements per block
    type_size: int  # bytes per block


# ggml's type traits (ggml/src/ggml.c `type_traits`, block structs in ggml-common.h) as vendored by
# llama-cpp-python 0.3.36: elements per block and bytes per block. These agree with the `gguf`
# package's GGML_QUANT_SIZES except Q8_1, where gguf-py says 40 bytes and ggml's block_q8_1 (two
# fp16 + 32 int8) is 36; ggml is what llama.cpp uses. Q8_1 and Q8_K are intermediate types that
# model files do not normally hold.
GGML_TYPES: dict[int, GgmlType] = {type_id: GgmlType(name, block, size) for type_id, name, block, size in [
    (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22), (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4),
    (27, "I64", 1, 8), (28, "F64", 1, 8), (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66), (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18), (42, "Q2_0", 64, 18),
]}
# Type ids ggml still reserves but no longer loads from files (block size 0 in its type traits).
REMOVED_GGML_TYPES: dict[int, str] = {
    4: "Q4_2", 5: "Q4_3",
    31: "Q4_0_4_4, now Q4_0 repacked at load", 32: "Q4_0_4_8, now Q4_0 repacked at load",
    33: "Q4_0_8_8, now Q4_0 repacked at load", 36: "IQ4_NL_4_4, now IQ4_NL repacked at load",
    37: "IQ4_NL_4_8, now IQ4_NL repacked at load", 38: "IQ4_NL_8_8, now IQ4_NL repacked at load",
}

# Every architecture llama.cpp knows: LLM_ARCH_NAMES in vendor/llama.cpp/src/llama-arch.cpp of
# the llama-cpp-python 0.3.36 sdist (the "(unknown)" placeholder left out).
LLAMA_CPP_ARCHITECTURES: frozenset[str] = frozenset([
    "clip", "llama", "llama4", "deci", "falcon", "grok", "gpt2", "gptj", "gptneox", "mpt",
    "baichuan", "starcoder", "refact", "bert", "modern-bert", "nomic-bert", "nomic-bert-moe",
    "neo-bert", "jina-bert-v2", "jina-bert-v3", "eurobert", "bloom", "stablelm", "qwen", "qwen2",
    "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3next", "qwen3vl", "qwen3vlmoe", "qwen35",
    "qwen35moe", "qwen4exp", "phi2", "phi3", "phimoe", "plamo", "plamo2", "plamo3", "codeshell",
    "orion", "internlm2", "minicpm", "minicpm3", "gemma", "gemma2", "gemma3", "gemma3n", "gemma4",
    "gemma4-assistant", "gemma-embedding", "starcoder2", "mamba", "mamba2", "maple", "jamba",
    "falcon-h1", "xverse", "command-r", "cohere2", "cohere2moe", "dbrx", "olmo", "olmo2", "olmoe",
    "muse-glimmer", "openelm", "arctic", "deepseek", "deepseek2", "deepseek2-ocr", "deepseek32",
    "deepseek4", "chatglm", "glm4", "glm4moe", "glm-dsa", "bitnet", "t5", "t5encoder", "jais",
    "jais2", "nemotron", "nemotron_h", "nemotron_h_moe", "exaone", "exaone4", "exaone-moe",
    "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7", "granite", "granitemoe", "granitehybrid",
    "graniteswitch", "granite_swa", "chameleon", "wavtokenizer-dec", "plm", "bailingmoe",
    "bailingmoe2", "bailingmoe3", "dots1", "dots3note", "arcee", "afmoe", "laguna", "ernie4_5",
    "ernie4_5-moe", "hunyuan-moe", "hunyuan-dense", "hunyuan_vl", "hy_v3", "hy_v4", "smollm3",
    "gpt-oss", "lfm2", "lfm2moe", "dream", "smallthinker", "llada", "llada-moe", "seed_oss",
    "grovemoe", "apertus", "minimax-01", "hrm_text", "minimax-m2", "minimax-m3", "cogvlm", "rnd1",
    "pangu-embedded", "mistral3", "eagle3", "dflash", "mistral4", "paddleocr", "mimo2", "step35",
    "spark2_5", "llama-embed", "maincoder", "kimi-linear", "kimi-k3", "glm5-next", "talkie",
    "mellum", "nanbeige", "qwen3tts", "pockettts"
])

# Architectures in that list that are not a text-generation model llama-cpp-python can run on
# its own, and what they are instead (from llama-model.cpp, llama-context.cpp and src/models/).
NOT_TEXT_GENERATION: Mapping[str, str] = {
    "clip": "a vision projector",  # llama.cpp: "CLIP cannot be used as main model"
    **dict.fromkeys(
        ["bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert", "jina-bert-v2",
         "jina-bert-v3", "eurobert", "gemma-embedding", "llama-embed", "t5encoder"],
        "an embedding model"),  # encoder-only / bidirectional: no KV cache, no generation
    "t5": "an encoder-decoder model, which llama-cpp-python's generation does not run",
    "wavtokenizer-dec": "an audio decoder for text-to-speech",
    "qwen3tts": "a text-to-speech model", "pockettts": "a text-to-speech model",
    **dict.fromkeys(["eagle3", "dflash", "gemma4-assistant"],
                    "a speculative-decoding draft model that needs its main model"),
    **dict.fromkeys(["dream", "llada", "llada-moe", "rnd1"],
                    "a diffusion language model, which llama-cpp-python cannot generate with"),
}

# The text-generation architectures check_llm accepts.
TEXT_GENERATION_ARCHITECTURES: frozenset[str] = LLAMA_CPP_ARCHITECTURES - NOT_TEXT_GENERATION.keys()

Scalar = int | float | bool | str


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ggml order: dims[0] is the row length
    ggml_type: int
    offset: int  # from the start of the tensor data
    n_bytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.ggml_type].name


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    file_size: int
    version: int
    n_tensors: int
    n_kv: int
    metadata: dict[str, Scalar]  # scalar and string values (strings over 1 MiB left out)
    array_lengths: dict[str, int]  # every array key -> its element count
    keys: tuple[str, ...]  # every key, in file order
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_start: int  # file offset of the tensor data
    data_end: int  # file offset just past the last tensor's data

    @property
    def architecture(self) -> str | None:
        return _str_or_none(self.metadata.get("general.architecture"))

    @property
    def name(self) -> str | None:
        return _str_or_none(self.metadata.get("general.name"))

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        value = self.metadata.get(f"{arch}.context_length") if arch else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def has_chat_template(self) -> bool:
        return "tokenizer.chat_template" in self.keys

    @property
    def chat_template(self) -> str | None:
        return _str_or_none(self.metadata.get("tokenizer.chat_template"))

    @property
    def file_type(self) -> int | None:
        """`general.file_type` (llama_ftype: 0 all F32, 1 mostly F16, 2 Q4_0, 3 Q4_1, 7 Q8_0, ...)."""
        value = self.metadata.get("general.file_type")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def vocab_size(self) -> int | None:
        return self.array_lengths.get("tokenizer.ggml.tokens")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class _Reader:
    """Sequential little-endian reads over a file through one bounded chunk buffer."""

    def __init__(self, fh: BinaryIO, size: int, label: str) -> None:
        self.fh = fh
        self.size = size
        self.label = label
        self.buf = b""
        self.start = 0  # file offset of buf[0]
        self.pos = 0
        self.where = "the header"

    def error(self, message: str) -> ModelFileError:
        return ModelFileError(f"{self.label}: {message}")

    def truncated(self) -> ModelFileError:
        return self.error(f"truncated GGUF file ({self.size} bytes; it ends in {self.where})")

    def too_long(self) -> ModelFileError:
        return self.error(f"implausible GGUF file: more than {MAX_HEADER_BYTES >> 20} MiB of "
                          f"metadata (in {self.where})")

    def _fill(self, n: int) -> int:
        """Offset in `buf` of `n` bytes at `pos`, reading them in if needed."""
        off = self.pos - self.start
        if off >= 0 and off + n <= len(self.buf):
            return off
        if self.pos + n > self.size:
            raise self.truncated()
        if self.pos + n > MAX_HEADER_BYTES:
            raise self.too_long()
        self.fh.seek(self.pos)
        self.buf = self.fh.read(max(n, _CHUNK))
        self.start = self.pos
        if len(self.buf) < n:  # the file shrank while being read
            raise self.truncated()
        return 0

    def unpack(self, fmt: struct.Struct) -> int | float:
        off = self._fill(fmt.size)
        self.pos += fmt.size
        value: int | float = fmt.unpack_from(self.buf, off)[0]
        return value

    def u32(self) -> int:
        off = self._fill(4)
        self.pos += 4
        value: int = _U32.unpack_from(self.buf, off)[0]
        return value

    def u64(self) -> int:
        off = self._fill(8)
        self.pos += 8
        value: int = _U64.unpack_from(self.buf, off)[0]
        return value

    def check_length(self, n: int, what: str) -> None:
        """`n` bytes at `pos` must lie in the file: a length past its end is a truncated file,
        unless it is more than llama.cpp allows for any string and more than the whole file."""
        if self.pos + n <= self.size:
            return
        if n > GGUF_MAX_STRING_LENGTH and n > self.size:
            raise self.error(f"corrupt GGUF file: {what} in {self.where} claims {n} bytes, "
                             f"longer than the whole file ({self.size} bytes)")
        raise self.truncated()

    def string(self, limit: int, what: str = "a string") -> str | None:
        """A length-prefixed UTF-8 string; None (skipped) if longer than `limit` bytes."""
        n = self.u64()
        self.check_length(n, what)
        if n > limit:
            self.skip(n)
            return None
        off = self._fill(n)
        self.pos += n
        return self.buf[off:off + n].decode("utf-8", errors="replace")

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise self.truncated()
        self.pos += n
        if self.pos > MAX_HEADER_BYTES:
            raise self.too_long()

    def skip_strings(self, count: int) -> None:
        """Walk past `count` length-prefixed strings without building them (the hot loop: a
        150k-token vocabulary is 150k length prefixes)."""
        unpack_from = _U64.unpack_from
        while count:
            off = first = self._fill(8)
            buf, start = self.buf, self.start
            limit = len(buf) - 8
            done = count
            for i in range(count):
                if off > limit:  # the next length prefix is not (all) in this chunk
                    done = i
                    break
                off += 8 + unpack_from(buf, off)[0]
            count -= done
            self.pos = start + off
            if self.pos > self.size:  # the last string walked runs past the end of the file
                while True:
                    n = unpack_from(buf, first)[0]
                    if first + 8 + n == off:
                        break
                    first += 8 + n
                self.pos = start + first + 8
                self.check_length(n, "a string")


def read_gguf_info(path: Path) -> GgufInfo:
    """Parse a GGUF file's header, metadata and tensor infos; ModelFileError says what is wrong."""
    path = Path(path)
    label = path.name
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            return _read(fh, size, path, label)
    except OSError as exc:
        raise ModelFileError(f"{label}: cannot read ({exc.strerror or exc})") from exc


def _read(fh: BinaryIO, size: int, path: Path, label: str) -> GgufInfo:
    head = fh.read(_HEADER.size)
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(f"{label}: not a GGUF file (first bytes {head[:4].hex() or 'none'}, "
                             "expected 'GGUF')")
    if len(head) < _HEADER.size:
        raise ModelFileError(f"{label}: truncated GGUF header ({size} bytes)")
    _magic, version, n_tensors, n_kv = _HEADER.unpack(head)
    if not 2 <= version <= GGUF_VERSION:
        hint = ""
        if version == 1:
            hint = " (GGUFv1 is no longer supported by llama.cpp: convert the model again)"
        elif version and version & 0xFFFF == 0:
            hint = " (a big-endian file?)"
        raise ModelFileError(f"{label}: unsupported GGUF version {version}{hint}")
    # The smallest tensor info is 24 bytes (empty name, no dims), the smallest key/value 14.
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise ModelFileError(f"{label}: implausible GGUF header ({n_tensors} tensors, {n_kv} keys)")
    if size < _HEADER.size + n_tensors * 24 + n_kv * 14:
        raise ModelFileError(f"{label}: truncated GGUF file ({size} bytes for {n_tensors} tensors "
                             f"and {n_kv} keys)")

    r = _Reader(fh, size, label)
    r.pos = _HEADER.size
    metadata: dict[str, Scalar] = {}
    array_lengths: dict[str, int] = {}
    keys: list[str] = []
    seen: set[str] = set()
    alignment = DEFAULT_ALIGNMENT
    for i in range(n_kv):
        r.where = f"key/value {i}"
        key = r.string(MAX_KEY_BYTES, "a key")
        if key is None:
            raise r.error(f"corrupt GGUF file: key/value {i} has a key longer than "
                          f"{MAX_KEY_BYTES} bytes")
        if not key:
            raise r.error(f"corrupt GGUF file: key/value {i} has an empty key")
        if key in seen:
            raise r.error(f"corrupt GGUF file: duplicate key {key!r}")
        seen.add(key)
        keys.append(key)
        r.where = f"the value of {key!r}"
        vtype = r.u32()
        if vtype == _ARRAY:
            etype = r.u32()
            count = r.u64()
            if count > GGUF_MAX_ARRAY_ELEMENTS:
                raise r.error(f"corrupt GGUF file: array {key!r} claims {count} elements")
            if etype == _STRING:
                r.check_length(8 * count, f"an array of {count} strings")
                r.skip_strings(count)
            elif etype in _SCALARS:
                r.check_length(count * _SCALARS[etype].size, f"an array of {count} values")
                r.skip(count * _SCALARS[etype].size)
            else:
                raise r.error(f"corrupt GGUF file: array {key!r} has unknown element type "
                              f"{etype}" + (" (nested arrays are not supported)"
                                            if etype == _ARRAY else ""))
            array_lengths[key] = count
        elif vtype == _STRING:
            value = r.string(MAX_STRING_VALUE_BYTES)
            if value is not None:
                metadata[key] = value
        elif vtype in _SCALARS:
            number = r.unpack(_SCALARS[vtype])
            metadata[key] = bool(number) if vtype == _BOOL else number
        else:
            raise r.error(f"corrupt GGUF file: key {key!r} has unknown value type {vtype}")
        if key == "general.alignment":
            if vtype != _UINT32:
                raise r.error(f"corrupt GGUF file: general.alignment is a "
                              f"{VALUE_TYPE_NAMES[vtype]}, must be a uint32")
            alignment = int(metadata[key])
            if alignment == 0 or alignment & (alignment - 1):
                raise r.error(f"corrupt GGUF file: alignment {alignment} is not a power of 2")

    tensors: list[TensorInfo] = []
    names: set[str] = set()
    expected = 0  # llama.cpp requires each tensor at the padded end of the one before
    for i in range(n_tensors):
        r.where = f"tensor info {i}"
        tname = r.string(GGML_MAX_NAME - 1, "a tensor name")
        if tname is None:
            raise r.error(f"corrupt GGUF file: tensor {i}'s name is {GGML_MAX_NAME} bytes or "
                          "longer")
        if tname in names:
            raise r.error(f"corrupt GGUF file: duplicate tensor name {tname!r}")
        names.add(tname)
        r.where = f"tensor info {i} ({tname!r})"
        n_dims = r.u32()
        if n_dims > GGML_MAX_DIMS:
            raise r.error(f"corrupt GGUF file: tensor {tname!r} has {n_dims} dimensions "
                          f"(at most {GGML_MAX_DIMS})")
        dims = tuple(r.u64() for _ in range(n_dims))
        n_elements = 1
        for d in dims:
            n_elements *= d
        if any(d >= 1 << 63 for d in dims) or n_elements >= 1 << 63:
            raise r.error(f"corrupt GGUF file: tensor {tname!r} has an impossible shape {dims}")
        type_id = r.u32()
        gtype = GGML_TYPES.get(type_id)
        if gtype is None:
            removed = REMOVED_GGML_TYPES.get(type_id)
            detail = (f"({removed}), which llama.cpp no longer loads: convert the model again"
                      if removed else "which llama.cpp does not know (a newer or corrupt file?)")
            raise r.error(f"tensor {tname!r} has ggml type {type_id} {detail}")
        row = dims[0] if dims else 1
        if row % gtype.block_size:
            raise r.error(f"corrupt GGUF file: tensor {tname!r} of type {gtype.name} has rows "
                          f"of {row} elements, not a multiple of its block size "
                          f"{gtype.block_size}")
        offset = r.u64()
        if offset != expected:
            raise r.error(f"corrupt GGUF file: tensor {tname!r} has data offset {offset}, "
                          f"expected {expected}")
        n_bytes = n_elements // gtype.block_size * gtype.type_size
        tensors.append(TensorInfo(tname, dims, type_id, offset, n_bytes))
        expected = offset + _pad(n_bytes, alignment)

    data_start = _pad(r.pos, alignment) if n_tensors else r.pos
    data_end = data_start + (tensors[-1].offset + tensors[-1].n_bytes if tensors else 0)
    if data_end > size:
        raise ModelFileError(f"{label} is truncated: {size} bytes, the tensors need {data_end} "
                             "(an incomplete download or copy?)")
    return GgufInfo(path=path, file_size=size, version=version, n_tensors=n_tensors, n_kv=n_kv,
                    metadata=metadata, array_lengths=array_lengths, keys=tuple(keys),
                    tensors=tuple(tensors), alignment=alignment, data_start=data_start,
                    data_end=data_end)


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def check_llm(path: Path) -> GgufInfo:
    """`read_gguf_info(path)`, and ModelFileError unless it is a text-generation model that the
    bundled llama.cpp supports (an architecture in TEXT_GENERATION_ARCHITECTURES, with tensors)."""
    info = read_gguf_info(path)
    label = Path(path).name
    arch = info.architecture
    if arch is None:
        raise ModelFileError(f"{label} has no general.architecture: not a llama.cpp model")
    if arch in NOT_TEXT_GENERATION:
        raise ModelFileError(f"{label} is a {arch!r} model ({NOT_TEXT_GENERATION[arch]}), "
                             "not a language model")
    if arch not in TEXT_GENERATION_ARCHITECTURES:
        raise ModelFileError(f"{label} has architecture {_short(arch)}, which the bundled "
                             "llama.cpp does not support: not a language model it can run")
    if not info.tensors:
        raise ModelFileError(f"{label} has no tensors (a vocabulary-only file?), "
                             "not a language model")
    return info


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."
