"""A language model in-process through llama.cpp (llama-cpp-python), run in a child process
(app/core/engine.py): a native crash or hang costs one answer, not the app, and the GUI never
waits on the GIL held by a generation. The GGUF is checked (magic, version, architecture, not
truncated) before the native library sees it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from app.core.engine import EngineError, EngineProcess
from app.core.errors import BackendUnavailableError, DaybookError
from app.reasoning.base import Prompt, ReasonerError, Request
from app.reasoning.prompt import build_prompt

log = logging.getLogger(__name__)

# Sampling: near-greedy (a spoken answer from given facts, not a story), with a penalty on
# repeats, which small models fall into.
TEMPERATURE = 0.2
REPEAT_PENALTY = 1.15
SEED = 7
NICE = 5  # the model's process runs this much below the app (POSIX nice)


class LlamaBackend:
    """Runs in the child: the model, a tokenizer count, and streamed chat completions."""

    def __init__(self, model_path: str, n_ctx: int, n_threads: int,
                 logit_bias: dict[int, float] | None = None) -> None:
        import llama_cpp

        lower_priority()

        self.llm = llama_cpp.Llama(
            model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
            seed=SEED, verbose=False)
        self.logit_bias = logit_bias
        self.name = f"llama.cpp: {Path(model_path).name}"

    def info(self) -> dict[str, Any]:
        return {"n_ctx": self.llm.n_ctx(), "name": self.name}

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(self.llm.tokenize(t.encode("utf-8"), add_bos=False, special=False))
                for t in texts]

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float = TEMPERATURE) -> Iterator[str]:
        chunks: Any = self.llm.create_chat_completion(
            messages=cast(Any, messages), max_tokens=max_tokens, temperature=temperature, seed=SEED,
            repeat_penalty=REPEAT_PENALTY, stream=True, logit_bias=self.logit_bias)
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield str(piece)


def lower_priority() -> None:
    """The model uses every core when they are free, and gives way to capture and the window
    when they are not (it runs in its own process: only it is affected)."""
    import psutil

    try:
        me = psutil.Process()
        if hasattr(psutil, "BELOW_NORMAL_PRIORITY_CLASS"):  # Windows
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            me.nice(min(19, me.nice() + NICE))
    except (OSError, psutil.Error) as exc:
        log.debug("cannot lower the model's priority: %s", exc)


def make_backend(model_path: str, n_ctx: int, n_threads: int,
                 logit_bias: dict[int, float] | None = None) -> LlamaBackend:
    """The child's factory (see EngineProcess)."""
    return LlamaBackend(model_path, n_ctx, n_threads, logit_bias)


class LlamaReasoner:
    """A Reasoner on a local GGUF chat model. Construction checks the file and starts loading
    it in the child (in the background with `wait=False`: the first question waits for it)."""

    engine_name = "language model"

    def __init__(self, model_path: Path, *, context_tokens: int = 4096, threads: int = 2,
                 max_tokens: int = 160, timeout_s: float = 120.0, label: str = "",
                 logit_bias: dict[int, float] | None = None, wait: bool = True,
                 on_event: Callable[[object], None] | None = None) -> None:
        from app.models.gguf_info import check_llm

        try:
            info = check_llm(model_path)  # before any native code sees it
        except DaybookError as exc:
            raise BackendUnavailableError(f"the language model {model_path.name}: {exc}") from exc
        self.model_path = model_path
        trained = info.context_length or context_tokens
        self.context_tokens = min(context_tokens, trained)
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.name = f"{label or model_path.stem} (llama.cpp)"
        self.last_generated = 0  # pieces the child produced for the last answer
        try:
            self.engine = EngineProcess(
                self.engine_name, "app.reasoning.llm_llama:make_backend",
                (str(model_path), self.context_tokens, threads, logit_bias),
                start_timeout_s=max(60.0, timeout_s), call_timeout_s=timeout_s,
                on_event=on_event, wait=wait)
        except EngineError as exc:
            raise BackendUnavailableError(f"the language model {model_path.name}: {exc}") from exc

    def _count(self, texts: list[str]) -> list[int]:
        return [int(n) for n in self.engine.call("count_tokens", texts)]

    def prepare(self, request: Request) -> Prompt:
        try:
            return build_prompt(request, context_tokens=self.context_tokens,
                                answer_tokens=self.max_tokens, count=self._count)
        except EngineError as exc:
            raise ReasonerError(f"the language model is unavailable ({exc})") from exc

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]:
        gen = self.engine.stream("chat", prompt.messages, self.max_tokens, cancel=cancel,
                                 first_timeout_s=self.timeout_s, gap_timeout_s=self.timeout_s)
        try:
            self.last_generated = yield from gen
        except EngineError as exc:
            raise ReasonerError(f"the language model stopped ({exc})") from exc
        except DaybookError:
            raise
        except Exception as exc:  # llama.cpp's own error, raised in the child
            raise ReasonerError(f"the language model failed: {type(exc).__name__}: {exc}"
                                ) from exc

    def close(self) -> None:
        self.engine.close()
