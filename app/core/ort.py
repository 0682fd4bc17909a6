"""onnxruntime sessions made one at a time in a process.

Two threads creating their first sessions at once (the embedder loading in the background while
the pipeline opens the VAD) made onnxruntime fail in its type registry ("MLDataType for
tensor(int64) is not currently registered", "GetElementType is not implemented") and, at exit,
abort the process ("terminate called without an active exception"). Creation is serialised
here; running sessions is not (that is thread-safe).
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.Lock()


def new_session(ort: Any, path: str | bytes, options: Any) -> Any:
    """`ort.InferenceSession(path, options)` (a file or a serialised model) on the CPU, never two
    being created at once."""
    with _LOCK:
        ort.disable_telemetry_events()
        return ort.InferenceSession(path, sess_options=options,
                                    providers=["CPUExecutionProvider"])
