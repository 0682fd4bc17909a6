"""Tiny random-weight model files, made at test time, that the real native libraries load and run.

Tests cannot download weights, so they generate these instead (session-scoped fixtures, never
committed). The output of every model is gibberish; the point is the real load -> run -> stream path.

- ``make_tiny_llama_gguf``   llama-architecture GGUF for llama.cpp / llama-cpp-python (≈0.7 MB)
- (a vision model pair, text model + mmproj, is in tests/vision_model.py)
- ``make_tiny_whisper_ggml`` legacy whisper.cpp ggml file for pywhispercpp (≈2.2 MB)
- ``make_tiny_onnx``         x float32 [1, 4] -> MatMul -> y float32 [1, 2]
- ``make_silero_like_onnx``  same signature as Silero VAD v5; the "speech probability" is a loudness
                              detector: sigmoid(200 * (rms(input) - 0.02))

Format facts and pitfalls: shared/notes/TINY_MODELS.md. Every generator is deterministic (fixed
seed, fixed metadata) and takes well under a second. Needs numpy, plus the ``gguf`` package for the
GGUF files and the ``onnx`` package for the ONNX files (imported inside the functions).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

SEED = 1234

# ---------------------------------------------------------------------------------------------
# llama GGUF
# ---------------------------------------------------------------------------------------------

LLAMA_N_EMBD = 64
LLAMA_N_HEAD = 4
LLAMA_N_LAYER = 2
LLAMA_N_FF = 172
LLAMA_N_CTX = 256

UNK_ID, BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = 0, 1, 2, 3, 4
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
BYTE_TOKEN_BASE = len(SPECIAL_TOKENS)
# Ids of the 256 byte-fallback tokens <0x00>..<0xFF>. A random model that samples them makes
# streaming hold every chunk back (the detokenizer waits for valid UTF-8), so tests ban them.
BYTE_TOKEN_IDS: list[int] = list(range(BYTE_TOKEN_BASE, BYTE_TOKEN_BASE + 256))

SPIECE_SPACE = "\u2581"  # ▁

# Words for the word pieces (each becomes "▁word", with every prefix present).
_WORD_TEXT = (
    "the a an and or but i you he she we they it is was are were be been have has had do did "
    "not no yes to of in on at for with from by about as this that what when where who why how "
    "my your our me us him her them today yesterday tomorrow morning evening night time day "
    "week hello world breakfast lunch dinner coffee tea eggs meeting alice bob remember water "
    "tomato plants o'clock three two one image picture photo see saw said say note notes good "
    "new old here there some all more can will would could should just like know think want "
    "go went make made get got call work home"
)
WORDS: list[str] = _WORD_TEXT.split()
# Bare characters so mid-word text and punctuation need no byte tokens.
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'-:;")

# ChatML. String content or OpenAI-style content parts; an image part renders as nothing here
# (MTMDChatHandler swaps image parts for its media marker before rendering; Llava15ChatHandler
# uses its own template).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% elif message['content'] is not none %}"
    "{% for part in message['content'] %}"
    "{% if part is string %}{{ part }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _llama_vocab() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = list(SPECIAL_TOKENS)
    scores = [0.0] * len(tokens)
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL,
             gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(gguf.TokenType.BYTE)
    pieces: list[str] = [SPIECE_SPACE, *CHARS]
    for word in WORDS:
        piece = SPIECE_SPACE + word
        pieces.extend(piece[:n] for n in range(2, len(piece) + 1))
    seen = set(tokens)
    for piece in pieces:
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        # Longer pieces score higher, so SentencePiece-style merges reach whole words.
        scores.append(-1000.0 + 10.0 * len(piece))
        types.append(gguf.TokenType.NORMAL)
    return tokens, scores, [int(t) for t in types]


def make_tiny_llama_gguf(path: Path, architecture: str = "llama",
                         chat_template: str | None = CHATML_TEMPLATE) -> Path:
    """A 2-layer llama GGUF (n_embd 64, 4 heads, ff 172, ctx 256, all f32) with a SentencePiece-style
    vocab (special tokens, 256 byte tokens, ▁word pieces) and a ChatML chat template.

    ``architecture`` only renames ``general.architecture`` and the ``{arch}.*`` keys (a file that
    says it is something else, for validation tests); ``chat_template=None`` leaves the template out."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    tokens, scores, types = _llama_vocab()
    n_vocab = len(tokens)
    d, ff, hd = LLAMA_N_EMBD, LLAMA_N_FF, LLAMA_N_EMBD // LLAMA_N_HEAD

    w = gguf.GGUFWriter(str(path), architecture)
    w.add_name("daybook-tiny-llama")
    w.add_context_length(LLAMA_N_CTX)
    w.add_embedding_length(d)
    w.add_block_count(LLAMA_N_LAYER)
    w.add_feed_forward_length(ff)
    w.add_head_count(LLAMA_N_HEAD)
    w.add_head_count_kv(LLAMA_N_HEAD)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_unk_token_id(UNK_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    def mat(rows: int, cols: int) -> np.ndarray:  # numpy (out, in) == ggml ne [in, out]
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    ones = np.ones(d, dtype=np.float32)
    w.add_tensor("token_embd.weight", mat(n_vocab, d))
    for i in range(LLAMA_N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones.copy())
        w.add_tensor(p + "attn_q.weight", mat(d, d))
        w.add_tensor(p + "attn_k.weight", mat(d, d))
        w.add_tensor(p + "attn_v.weight", mat(d, d))
        w.add_tensor(p + "attn_output.weight", mat(d, d))
        w.add_tensor(p + "ffn_norm.weight", ones.copy())
        w.add_tensor(p + "ffn_gate.weight", mat(ff, d))
        w.add_tensor(p + "ffn_up.weight", mat(ff, d))
        w.add_tensor(p + "ffn_down.weight", mat(d, ff))
    w.add_tensor("output_norm.weight", ones.copy())
    w.add_tensor("output.weight", mat(n_vocab, d))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def byte_token_ids(path: Path | None = None) -> list[int]:
    """Ids of the byte-fallback tokens: read from a GGUF file's token types when ``path`` is given,
    else the ids ``make_tiny_llama_gguf`` uses (``BYTE_TOKEN_IDS``)."""
    if path is None:
        return list(BYTE_TOKEN_IDS)
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(field.parts[i][0]) for i in field.data]
    return [i for i, t in enumerate(types) if t == int(gguf.TokenType.BYTE)]


def byte_token_logit_bias(path: Path | None = None, bias: float = -100.0) -> dict[int, float]:
    """A ``logit_bias`` for llama-cpp-python that bans the byte tokens (see ``BYTE_TOKEN_IDS``)."""
    return {i: bias for i in byte_token_ids(path)}


# ---------------------------------------------------------------------------------------------
# whisper.cpp legacy ggml
# ---------------------------------------------------------------------------------------------

GGML_MAGIC = 0x67676D6C
WHISPER_N_STATE = 16
WHISPER_N_HEAD = 2
WHISPER_N_LAYER = 1
WHISPER_N_AUDIO_CTX = 64
WHISPER_N_TEXT_CTX = 64
WHISPER_N_MELS = 80
WHISPER_N_FFT = 201  # 400-point FFT -> 201 bins
WHISPER_N_VOCAB_EN = 51864
WHISPER_N_VOCAB_MULTI = 51865


def _mel_filters(n_mels: int = WHISPER_N_MELS, n_fft_bins: int = WHISPER_N_FFT,
                 sr: int = 16_000) -> np.ndarray:
    """A triangular mel filterbank (HTK mel scale), shape (n_mels, n_fft_bins)."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0.0, sr / 2, n_fft_bins)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sr / 2)),
                                  n_mels + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lower) / (center - lower)
    down = (upper - freqs[None, :]) / (upper - center)
    bank = np.maximum(0.0, np.minimum(up, down))
    bank *= (2.0 / (upper - lower))  # Slaney-style area normalisation
    return bank.astype(np.float32)


def _whisper_words(count: int) -> list[bytes]:
    """``count`` distinct ASCII vocab entries; includes " " (whisper.cpp looks it up) and " -", " '"."""
    words: list[str] = []
    seen: set[str] = set()

    def add(word: str) -> None:
        if len(words) < count and word not in seen:
            seen.add(word)
            words.append(word)

    for code in range(33, 127):  # like GPT-2: single printable characters first
        add(chr(code))
    for word in [" ", " -", " '"] + [v for w in WORDS for v in (" " + w, w, " " + w.capitalize())]:
        add(word)
    consonants = "bcdfghjklmnprstvwz"
    syllables = [c + v for c in consonants for v in "aeiou"]  # 90
    for prefix in (" ", ""):
        for a in syllables:
            for b in syllables:
                for tail in ("", "n", "r"):
                    add(prefix + a + b + tail)
    for a in syllables:  # only reached for counts beyond ~49,000
        for b in syllables:
            for c in syllables:
                add(" " + a + b + c)
                if len(words) >= count:
                    break
    assert len(words) == count
    return [w.encode("ascii") for w in words]


def make_tiny_whisper_ggml(path: Path, *, english_only: bool = True) -> Path:
    """A legacy whisper.cpp ggml model: state 16, 2 heads, 1 encoder + 1 decoder layer, audio/text ctx
    64, ftype 1 (f16 matrices). English-only (n_vocab 51864, ``.en``) or multilingual (51865)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 2)
    n_vocab = WHISPER_N_VOCAB_EN if english_only else WHISPER_N_VOCAB_MULTI
    s, n_mels = WHISPER_N_STATE, WHISPER_N_MELS
    # Ids from the end-of-text token on are named by whisper.cpp itself: 50256 words for .en
    # models; multilingual files carry one more entry (id 50256) before their specials.
    n_words = 50256 if english_only else 50257

    out = bytearray()
    out += struct.pack("<I", GGML_MAGIC)
    out += struct.pack("<11i", n_vocab, WHISPER_N_AUDIO_CTX, s, WHISPER_N_HEAD, WHISPER_N_LAYER,
                       WHISPER_N_TEXT_CTX, s, WHISPER_N_HEAD, WHISPER_N_LAYER, n_mels, 1)
    out += struct.pack("<ii", n_mels, WHISPER_N_FFT)
    out += _mel_filters().astype("<f4").tobytes()
    words = _whisper_words(n_words)
    out += struct.pack("<i", len(words))
    for word in words:
        out += struct.pack("<I", len(word))
        out += word

    def tensor(name: str, data: np.ndarray) -> None:
        # f16 for matrices and conv kernels, f32 for vectors, biases, positional embeddings.
        ftype = 1 if data.dtype == np.float16 else 0
        data = data.astype("<f2" if ftype else "<f4")
        name_b = name.encode("ascii")
        out.extend(struct.pack("<3i", data.ndim, len(name_b), ftype))
        out.extend(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))  # ggml order
        out.extend(name_b)
        out.extend(data.tobytes())

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float16)

    def vec(n: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(n) * scale).astype(np.float32)

    def block(prefix: str, cross: bool) -> None:
        attns = ["attn", "cross_attn"] if cross else ["attn"]
        tensor(prefix + "mlp_ln.weight", np.ones(s, np.float32))
        tensor(prefix + "mlp_ln.bias", np.zeros(s, np.float32))
        tensor(prefix + "mlp.0.weight", mat(4 * s, s))
        tensor(prefix + "mlp.0.bias", vec(4 * s))
        tensor(prefix + "mlp.2.weight", mat(s, 4 * s))
        tensor(prefix + "mlp.2.bias", vec(s))
        for attn in attns:
            tensor(prefix + attn + "_ln.weight", np.ones(s, np.float32))
            tensor(prefix + attn + "_ln.bias", np.zeros(s, np.float32))
            tensor(prefix + attn + ".query.weight", mat(s, s))
            tensor(prefix + attn + ".query.bias", vec(s))
            tensor(prefix + attn + ".key.weight", mat(s, s))  # no key bias in Whisper
            tensor(prefix + attn + ".value.weight", mat(s, s))
            tensor(prefix + attn + ".value.bias", vec(s))
            tensor(prefix + attn + ".out.weight", mat(s, s))
            tensor(prefix + attn + ".out.bias", vec(s))

    tensor("encoder.positional_embedding",
           (rng.standard_normal((WHISPER_N_AUDIO_CTX, s)) * 0.1).astype(np.float32))
    tensor("encoder.conv1.weight",
           (rng.standard_normal((s, n_mels, 3)) / np.sqrt(3 * n_mels)).astype(np.float16))
    tensor("encoder.conv1.bias", vec(s).reshape(s, 1))
    tensor("encoder.conv2.weight",
           (rng.standard_normal((s, s, 3)) / np.sqrt(3 * s)).astype(np.float16))
    tensor("encoder.conv2.bias", vec(s).reshape(s, 1))
    for i in range(WHISPER_N_LAYER):
        block(f"encoder.blocks.{i}.", cross=False)
    tensor("encoder.ln_post.weight", np.ones(s, np.float32))
    tensor("encoder.ln_post.bias", np.zeros(s, np.float32))

    tensor("decoder.positional_embedding",
           (rng.standard_normal((WHISPER_N_TEXT_CTX, s)) * 0.1).astype(np.float32))
    tensor("decoder.token_embedding.weight",
           (rng.standard_normal((n_vocab, s)) * 0.5).astype(np.float16))
    for i in range(WHISPER_N_LAYER):
        block(f"decoder.blocks.{i}.", cross=True)
    tensor("decoder.ln.weight", np.ones(s, np.float32))
    tensor("decoder.ln.bias", np.zeros(s, np.float32))

    path.write_bytes(bytes(out))
    return path


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------

ONNX_OPSET = 17
ONNX_IR_VERSION = 9  # onnxruntime 1.32 reads it; onnx's own default may be newer than ORT accepts


def _save_onnx(model, path: Path) -> Path:
    import onnx

    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def make_tiny_onnx(path: Path) -> Path:
    """x float32 [1, 4] -> MatMul with a constant [4, 2] -> y float32 [1, 2]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED + 3)
    weight = numpy_helper.from_array(rng.standard_normal((4, 2)).astype(np.float32), name="W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")],
        "daybook_tiny",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="daybook-tests")
    return _save_onnx(model, path)


SILERO_CONTEXT = 64  # samples of context prepended at 16 kHz
SILERO_CHUNK = 512  # new samples per call at 16 kHz
SILERO_STATE_SHAPE = (2, 1, 128)
SILERO_RMS_THRESHOLD = 0.02  # the tiny model's output crosses 0.5 here (≈ -34 dBFS)


def make_silero_like_onnx(path: Path) -> Path:
    """An ONNX model with Silero VAD v5's signature:

    inputs  ``input`` float32 [batch, samples] (576 = 64 context + 512 new at 16 kHz),
            ``state`` float32 [2, batch, 128], ``sr`` int64 scalar;
    outputs ``output`` float32 [batch, 1], ``stateN`` float32 [2, batch, 128].

    ``output`` = sigmoid(200 * (rms(input) - 0.02)): near 0 for silence, near 1 for loud audio, so it
    acts as a crude VAD. ``stateN`` = 0.5 * state + rms (it changes, as a recurrent state does)."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name)

    inits = [
        const("gain", 200.0),
        const("threshold", SILERO_RMS_THRESHOLD),
        const("half", 0.5),
        const("zero", 0.0),
    ]
    nodes = [
        helper.make_node("Mul", ["input", "input"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[1], keepdims=1),  # [B, 1]; opset 17: axes attr
        helper.make_node("Sqrt", ["ms"], ["rms"]),
        helper.make_node("Sub", ["rms", "threshold"], ["centered"]),
        helper.make_node("Mul", ["centered", "gain"], ["scaled"]),
        # sr takes part (multiplied by zero) so the input is real, as in Silero.
        helper.make_node("Cast", ["sr"], ["sr_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["sr_f", "zero"], ["sr_zero"]),
        helper.make_node("Add", ["scaled", "sr_zero"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["output"]),
        helper.make_node("Mul", ["state", "half"], ["state_half"]),
        helper.make_node("Add", ["state_half", "rms"], ["stateN"]),  # [2,B,128] + [B,1]
    ]
    graph = helper.make_graph(
        nodes,
        "daybook_silero_like",
        inputs=[
            helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "samples"]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", 128]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        outputs=[
            helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, "batch", 128]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="daybook-tests")
    return _save_onnx(model, path)
