"""The speaker and echo canceller a configuration asks for, or text only with the reason."""

from __future__ import annotations

import logging

from app.core.config import AssistantConfig
from app.core.errors import BackendUnavailableError, InputError
from app.speech.echo import EchoCanceller, FarEnd, aec_available
from app.speech.output import AudioOutput
from app.speech.speaker import Speaker, TextOnly, VoiceSpeaker
from app.speech.tts import Pyttsx3Voice

log = logging.getLogger(__name__)


def make_speaker(cfg: AssistantConfig, far: FarEnd | None) -> Speaker:
    """A speaker on `[assistant] output` with the configured voice; TextOnly (saying why) when
    there is no speaker or no speech engine. Opens the device (tens of milliseconds)."""
    if not cfg.output:
        return TextOnly("speech is off (no speaker is set)")
    try:
        output = AudioOutput(cfg.output, far, cfg.volume / 100)
    except InputError as exc:
        log.warning("answers are not spoken: %s", exc)
        return TextOnly(str(exc))
    try:
        return VoiceSpeaker(lambda: Pyttsx3Voice(cfg.voice, cfg.rate_wpm), output)
    except BackendUnavailableError as exc:
        output.close()
        log.warning("answers are not spoken: %s", exc)
        return TextOnly(str(exc))


def make_echo_canceller(cfg: AssistantConfig, far: FarEnd) -> EchoCanceller | None:
    if not cfg.echo_cancellation:
        return None
    problem = aec_available()
    if problem:
        log.warning("%s: Daybook may hear its own voice (use headphones)", problem)
        return None
    return EchoCanceller(far)
