from __future__ import annotations

import numpy as np

from app.core.events import SoundClass
from app.perception.sound import classify_sound
from tests import mediagen

RATE = 16000


def test_speech() -> None:
    assert classify_sound(mediagen.speak("this is what speech sounds like to the classifier")) \
        == SoundClass.SPEECH


def test_white_noise() -> None:
    rng = np.random.default_rng(1)
    assert classify_sound(rng.normal(0, 3000, 2 * RATE).astype(np.int16)) == SoundClass.NOISE


def test_silence_and_very_quiet_audio() -> None:
    assert classify_sound(np.zeros(RATE, np.int16)) == SoundClass.SILENCE
    rng = np.random.default_rng(2)
    assert classify_sound(rng.normal(0, 3, RATE).astype(np.int16)) == SoundClass.SILENCE


def test_sustained_chord_is_music() -> None:
    t = np.arange(3 * RATE) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 523.3))
    assert classify_sound((chord * 5000).astype(np.int16)) == SoundClass.MUSIC
