"""A tiny vision-language model pair made on the spot, for tests that caption images with
llama.cpp (llama-cpp-python's libmtmd) on the CPU without downloading a real vision model.

`tiny_vision_pair(directory)` writes two GGUF files with random weights (fixed seeds: the same
bytes every time; about 0.05 s) and returns their paths with the name of the chat handler class
in `llama_cpp.llama_chat_format` that drives them:

* ``tiny-text.gguf`` (≈ 520 KB) — a 2-layer llama text model (n_embd 64, 4 heads, float32)
  with its own 354-token SentencePiece-style ("llama") vocabulary: <unk>, <s>, </s>, the 256
  byte tokens and the 95 printable ASCII characters ("▁" for the space). Made rather than
  taking SmolLM2-135M (tests/llm_model.py): that one is a 98 MB file with a sha256 check, and
  under a loaded CPU its ~210-token prompt took ~10 s instead of ~10 ms; the captions are
  gibberish either way. An SPM vocabulary needs no BPE merges and, with byte fallback,
  tokenizes any text (one token per character). Only letters can be generated (see
  `_write_text_model`), so a reply is never empty, blank, EOS or control characters. A tiny
  chat template is stored too, for MTMDChatHandler (which requires one); Llava15ChatHandler
  ignores it.
* ``tiny-mmproj.gguf`` (≈ 90 KB) — a CLIP vision tower with the "mlp" (LLaVA-1.5) projector,
  the simplest type tools/mtmd/clip.cpp accepts: a plain ViT plus two linear layers, 25
  tensors ("idefics3" would add pixel-shuffle and tiling into several slices, i.e. more image
  tokens). Image size 32, patch 8: 16 image tokens whatever the picture's size (LLaVA-1.5
  preprocessing pads to a square and resizes); ViT width 32, 1 block, 2 heads; projector
  32 → 64 → 64, whose output width must equal the text model's n_embd (mtmd refuses a
  mismatch).
* ``"Llava15ChatHandler"`` — it brings its own "USER: … ASSISTANT:" prompt (no model template
  needed) and replaces each image's URL with mtmd's ``<__media__>`` marker. Use it as
  ``Llama(model_path=str(text), chat_handler=Llava15ChatHandler(clip_model_path=str(mmproj),
  verbose=False), n_ctx=512, verbose=False)`` and pass images as data: URIs in ``image_url``
  parts. Paths must be ``str`` (the handler calls ``.encode()`` on them). Its default system
  message makes the prompt 211 tokens (one per character here): n_ctx must be ≥ 256.

Loading takes ~10 ms and a caption (max_tokens=8) 10–20 ms for a small JPEG, ~0.1 s for a
1920×1080 one. The caption depends on the image, but two images may get the same words, and
sampling (temperature 0.2 by default) may vary them between calls: pass temperature=0 for
repeatable words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HANDLER = "Llava15ChatHandler"
TEXT_FILE = "tiny-text.gguf"
MMPROJ_FILE = "tiny-mmproj.gguf"
SEED = 20240601

# Text model (llama architecture).
N_EMBD = 64
N_HEAD = 4
N_FF = 128
N_LAYER = 2
N_CTX_TRAIN = 2048

# Vision tower + LLaVA-1.5 "mlp" projector.
IMAGE_SIZE = 32
PATCH_SIZE = 8
V_EMBD = 32
V_FF = 64
V_HEAD = 2
V_LAYER = 1
MM_HIDDEN = 64


# Only for handlers that render the model's own template (MTMDChatHandler and its subclasses;
# Llava15ChatHandler ignores it): plain "role: text" turns; an image part (which MTMDChatHandler
# turns into a text part holding mtmd's marker) is rendered like any text part.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def tiny_vision_pair(directory: Path) -> tuple[Path, Path, str]:
    """Write the tiny text model and its vision projector into `directory` (created if needed);
    return (text model path, mmproj path, llama_cpp.llama_chat_format handler class name)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = directory / TEXT_FILE
    mmproj = directory / MMPROJ_FILE
    _write_text_model(text, np.random.default_rng(SEED))
    _write_mmproj(mmproj, np.random.default_rng(SEED + 1))
    return text, mmproj, HANDLER


def _normal(rng: np.random.Generator, *shape: int, scale: float | None = None) -> np.ndarray:
    """Random weights; by default scaled by 1/sqrt(fan-in) so activations keep their size through
    the layers (and the picture visibly steers the words: tiny weights would drown it)."""
    if scale is None:
        scale = 1.0 / np.sqrt(np.prod(shape[1:])) if len(shape) > 1 else 1.0
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _vocab() -> tuple[list[str], list[float], list[int]]:
    import gguf

    T = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>"]
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [T.BYTE] * 256
    tokens += ["▁"] + [chr(c) for c in range(0x21, 0x7F)]
    types += [T.NORMAL] * (1 + 0x7F - 0x21)
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, [int(t) for t in types]


def _write_text_model(path: Path, rng: np.random.Generator) -> None:
    import gguf

    tokens, scores, types = _vocab()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-random-llama")
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    w.add_tensor("token_embd.weight", _normal(rng, len(tokens), N_EMBD, scale=1.0))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    # Only the letters can win: the other rows of the output matrix are zero (logit 0) while
    # these are large, so the sampler never picks </s>, "▁" (space), a byte or a punctuation
    # token: the reply is always max_tokens ASCII letters (one "word"), never empty or blank,
    # never a control character or broken UTF-8.
    output = _normal(rng, len(tokens), N_EMBD, scale=1.0)
    output[[i for i, t in enumerate(tokens) if not t.isalpha()]] = 0.0
    w.add_tensor("output.weight", output)
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"blk.{i}.{name}.weight", _normal(rng, N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", _normal(rng, N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_up.weight", _normal(rng, N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_down.weight", _normal(rng, N_EMBD, N_FF))
    _finish(w)


def _write_mmproj(path: Path, rng: np.random.Generator) -> None:
    import gguf

    d = V_EMBD
    n_pos = (IMAGE_SIZE // PATCH_SIZE) ** 2 + 1  # patches + the class embedding
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("tiny-random-llava-mmproj")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    w.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    w.add_uint32("clip.vision.embedding_length", d)
    w.add_uint32("clip.vision.feed_forward_length", V_FF)
    w.add_uint32("clip.vision.projection_dim", N_EMBD)
    w.add_uint32("clip.vision.attention.head_count", V_HEAD)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32("clip.vision.block_count", V_LAYER)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def weight(name: str, *shape: int) -> None:  # numpy shape = (out, in): ggml's ne reversed
        w.add_tensor(name, _normal(rng, *shape))

    def norm(name: str, n: int) -> None:
        w.add_tensor(f"{name}.weight", np.ones(n, np.float32))
        w.add_tensor(f"{name}.bias", np.zeros(n, np.float32))

    def linear(name: str, n_out: int, n_in: int) -> None:
        weight(f"{name}.weight", n_out, n_in)
        w.add_tensor(f"{name}.bias", np.zeros(n_out, np.float32))

    weight("v.patch_embd.weight", d, 3, PATCH_SIZE, PATCH_SIZE)
    weight("v.class_embd", d)
    weight("v.position_embd.weight", n_pos, d)
    norm("v.pre_ln", d)
    for i in range(V_LAYER):
        norm(f"v.blk.{i}.ln1", d)
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            linear(f"v.blk.{i}.{name}", d, d)
        norm(f"v.blk.{i}.ln2", d)
        linear(f"v.blk.{i}.ffn_up", V_FF, d)
        linear(f"v.blk.{i}.ffn_down", d, V_FF)
    linear("mm.0", MM_HIDDEN, d)  # mm.0 → GELU → mm.2 (LLaVA-1.5's two-layer MLP)
    linear("mm.2", N_EMBD, MM_HIDDEN)
    _finish(w)


def _finish(w: Any) -> None:  # a gguf.GGUFWriter
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
