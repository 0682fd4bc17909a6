"""The text-to-speech voices available through pyttsx3, an optional dependency. No Qt here: the
settings dialog lists the voices on a helper thread (starting a speech engine can be slow) and
offers them in its Assistant tab; without pyttsx3 the list is empty and the system voice is used.
"""

from __future__ import annotations

import importlib.util


def list_voices() -> list[tuple[str, str]]:
    """(id, name) of the text-to-speech voices, or [] when pyttsx3 is not installed."""
    if importlib.util.find_spec("pyttsx3") is None:
        return []
    import pyttsx3

    engine = pyttsx3.init()
    try:
        return [(str(v.id), str(v.name)) for v in engine.getProperty("voices")]
    finally:
        engine.stop()
