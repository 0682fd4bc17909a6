"""Captions: a clip's key frame described in words by a vision-language model, so questions find
what the camera saw.

`LlamaCaptioner` runs a llama.cpp multimodal model (a GGUF text model and its vision projector,
"mmproj", as the model catalog pairs them) through llama-cpp-python's libmtmd chat handler, in a
child process (app/core/engine.py): a native crash or hang costs one caption, never the app, and
captioning never runs on the capture path. The frame goes to the model only as a `data:` URI
(any other URL would make the library fetch it from the network). Decoding is greedy, so the
same frame gets the same words.

No vision model ships with Daybook (the smallest in the catalog is 0.5 GB): without one, clips
keep no words, and the answer to "what do you see?" says so (app/reasoning/present.py).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import cv2
import numpy as np

from app.core.engine import EngineError, EngineProcess
from app.core.errors import BackendUnavailableError, DaybookError

log = logging.getLogger(__name__)

PROMPT = "Describe what you see in this picture in one short sentence."
# A question about the present moment, asked of the live frame ("what am I holding?").
LOOK_PROMPT = ("The picture is what my camera sees now. {question}\n"
               "Answer in one short sentence, from the picture alone.")
MAX_TOKENS = 40
MAX_SIDE_PX = 512  # the frame is made no larger than this before it is encoded
N_CTX = 2048  # the prompt, the image's tokens (hundreds for the catalog's models), the caption
SEED = 7


class Captioner(Protocol):
    name: str

    def caption(self, image: np.ndarray) -> str:
        """Words for a BGR frame; raises CaptionError when the model cannot give them."""
        ...

    def look(self, image: np.ndarray, question: str) -> str:
        """The model's answer to a question about a BGR frame (the camera's live one); raises
        CaptionError when the model cannot give it."""
        ...

    def close(self) -> None: ...


class CaptionError(DaybookError):
    pass


def jpeg_data_uri(image: np.ndarray, max_side_px: int = MAX_SIDE_PX) -> str:
    """A BGR frame as a `data:image/jpeg;base64,…` URI, no side longer than `max_side_px`."""
    h, w = image.shape[:2]
    scale = max_side_px / max(h, w)
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise CaptionError("the frame could not be encoded as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


class VisionBackend:
    """Runs in the child: the text model with its projector, and one caption at a time."""

    def __init__(self, model_path: str, mmproj_path: str, n_threads: int) -> None:
        import llama_cpp
        import llama_cpp.mtmd_cpp as mtmd
        from llama_cpp.llama_chat_format import MTMDChatHandler

        from app.reasoning.llm_llama import lower_priority

        lower_priority()
        # libmtmd writes a few lines to stderr for every image even with verbose=False.
        self._quiet = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        mtmd.mtmd_log_set(self._quiet, None)
        mtmd.mtmd_helper_log_set(self._quiet, None)
        self.llm = llama_cpp.Llama(
            model_path=model_path, chat_handler=MTMDChatHandler(clip_model_path=mmproj_path,
                                                                verbose=False, use_gpu=False),
            n_ctx=N_CTX, n_threads=n_threads, n_threads_batch=n_threads, seed=SEED,
            verbose=False)

    def caption(self, data_uri: str, prompt: str, max_tokens: int) -> str:
        if not data_uri.startswith("data:image/"):  # never a URL the library would fetch
            raise ValueError("only data: URIs are captioned")
        out: Any = self.llm.create_chat_completion(
            messages=cast(Any, [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": data_uri}},
                {"type": "text", "text": prompt}]}]),
            max_tokens=max_tokens, temperature=0.0, seed=SEED)
        return str(out["choices"][0]["message"]["content"] or "").strip()

    def close(self) -> None:
        self.llm.close()


def make_backend(model_path: str, mmproj_path: str, n_threads: int) -> VisionBackend:
    """The child's factory (see EngineProcess)."""
    return VisionBackend(model_path, mmproj_path, n_threads)


def check_pair(model_path: Path, mmproj_path: Path) -> None:
    """The text model is a language model llama.cpp runs, the projector a 'clip' GGUF; raises
    BackendUnavailableError naming the file, before any native code sees them."""
    from app.models.gguf_info import check_llm, read_gguf_info

    try:
        check_llm(model_path)
    except DaybookError as exc:
        raise BackendUnavailableError(f"the vision model {model_path.name}: {exc}") from exc
    try:
        arch = read_gguf_info(mmproj_path).architecture
    except DaybookError as exc:
        raise BackendUnavailableError(f"the vision projector {mmproj_path.name}: {exc}") from exc
    if arch != "clip":
        raise BackendUnavailableError(
            f"the vision projector {mmproj_path.name} is a {arch!r} GGUF, not a 'clip' one")


class LlamaCaptioner:
    """A Captioner on a GGUF vision-language model and its mmproj, in a child process."""

    engine_name = "vision model"

    def __init__(self, model_path: Path, mmproj_path: Path, *, threads: int = 2,
                 timeout_s: float = 120.0, label: str = "", wait: bool = True,
                 on_event: Callable[[object], None] | None = None) -> None:
        check_pair(model_path, mmproj_path)
        self.name = f"{label or model_path.stem} (llama.cpp)"
        try:
            self.engine = EngineProcess(
                self.engine_name, "app.perception.caption:make_backend",
                (str(model_path), str(mmproj_path), threads),
                start_timeout_s=max(60.0, timeout_s), call_timeout_s=timeout_s,
                on_event=on_event, wait=wait)
        except EngineError as exc:
            raise BackendUnavailableError(f"the vision model {model_path.name}: {exc}") from exc

    def caption(self, image: np.ndarray) -> str:
        return self._ask(image, PROMPT)

    def look(self, image: np.ndarray, question: str) -> str:
        return self._ask(image, LOOK_PROMPT.format(question=" ".join(question.split())))

    def _ask(self, image: np.ndarray, prompt: str) -> str:
        uri = jpeg_data_uri(image)
        try:
            return str(self.engine.call("caption", uri, prompt, MAX_TOKENS))
        except EngineError as exc:
            raise CaptionError(f"the vision model is unavailable ({exc})") from exc
        except DaybookError:
            raise
        except Exception as exc:  # llama.cpp's own error, raised in the child
            raise CaptionError(f"the vision model failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.engine.close()
