"""Every event that crosses a thread boundary in Daybook.

Events are frozen dataclasses named in the past tense, with units in field names. Times (`t0_s`,
`t1_s`, `t_s`) are wall-clock POSIX seconds; replayed media get them from the replay's start time.
Events carrying numpy arrays compare by identity (``eq=False``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class SoundClass(enum.StrEnum):
    SPEECH = "speech"
    MUSIC = "music"
    NOISE = "noise"
    SILENCE = "silence"


# --- capture -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AudioCaptured:
    """A chunk of mono int16 PCM from an audio source. While Daybook's voice is being taken out
    of the microphone, `pcm` is the echo canceller's output, `raw` the microphone's own samples
    and `voice` whether Daybook's voice was playing (app/speech/echo.py)."""

    pcm: np.ndarray
    t0_s: float
    sample_rate_hz: int
    raw: np.ndarray | None = None
    voice: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate_hz


@dataclass(frozen=True, eq=False)
class FrameCaptured:
    """One BGR video frame from a frame source."""

    image: np.ndarray
    t_s: float
    index: int


@dataclass(frozen=True, eq=False)
class FramePreviewed:
    """The latest camera frame, downscaled, for the live preview (never stored)."""

    image: np.ndarray
    t_s: float


@dataclass(frozen=True)
class SourceEnded:
    """A source has no more data (end of file, device closed). Flows down the pipeline so every
    worker flushes what it holds before exiting."""

    source: str
    reason: str = "end of stream"


@dataclass(frozen=True)
class SourceFailed:
    """A source could not be opened or broke while running; the rest of the pipeline goes on."""

    source: str
    message: str


@dataclass(frozen=True)
class SourceLost:
    """A live source's device stopped delivering (a microphone unplugged, its sound server
    restarted). The capture goes on: the device is opened again until it is back."""

    source: str
    message: str


@dataclass(frozen=True)
class SourceRecovered:
    """A lost live source delivers again; the time it was lost is simply missing."""

    source: str


# --- perception ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    t0_s: float
    # How sure the VAD is that this is speech (0..1: Silero's mean probability over the frames
    # that triggered it; 1.0 for a VAD without probabilities). While Daybook speaks, barge-in
    # asks for more than that (`[assistant] barge_in_confidence`).
    confidence: float = 1.0


@dataclass(frozen=True, eq=False)
class SpeechEnded:
    """A voiced segment, with its pre-roll, ready for transcription."""

    pcm: np.ndarray
    t0_s: float
    t1_s: float
    sample_rate_hz: int


@dataclass(frozen=True)
class UtteranceTranscribed:
    id: str
    text: str
    t0_s: float
    t1_s: float
    sound: SoundClass
    backend: str
    retry: bool = False  # a kept utterance transcribed again (its moment is updated)
    sound_confidence: float = 1.0  # the sound classifier's, 0..1
    # What was asked of the wake name, when the recogniser heard the name said to it (in its
    # text, or by checking readings with the name against the audio: name_check.py); "" if not.
    question: str = ""


@dataclass(frozen=True, eq=False)
class ClipClosed:
    """A short video clip turned into short-term memory: its key frame and one global vector."""

    id: str
    t0_s: float
    t1_s: float
    n_frames: int
    key_frame: np.ndarray
    global_vector: np.ndarray
    caption: str = ""
    update: bool = False  # the same clip again, now with its caption (app/pipeline/captions.py)


@dataclass(frozen=True)
class ClipCaptioned:
    """A clip's key frame was described in words by the vision model."""

    id: str
    caption: str
    latency_s: float


# --- memory ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MomentsStored:
    """A batch of moments is durably committed to the memory store."""

    ids: tuple[str, ...]
    kinds: tuple[str, ...]
    t1_s: float


@dataclass(frozen=True)
class WorkerFailed:
    worker: str
    message: str


@dataclass(frozen=True)
class EngineFailed:
    """A native engine's child process (speech recogniser, memory store, …) died, hung or
    failed to start. `restarting`: it is being restarted; what it was doing is kept."""

    engine: str
    message: str
    restarting: bool = True


@dataclass(frozen=True)
class EngineRecovered:
    """A restarted engine answers again."""

    engine: str


@dataclass(frozen=True)
class MomentsKept:
    """Moments that could not be stored yet: kept in memory (and in the journal on disk when
    `journaled`) and stored once the store answers again. `count` 0: all caught up."""

    count: int
    journaled: bool
    message: str = ""


@dataclass(frozen=True)
class MomentsDeleted:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class MemoryReembedding:
    """The memory is given vectors from a new embedder in the background: `done` of `total`
    text moments; searches use the old vectors until `finished`."""

    embedder: str
    done: int
    total: int
    finished: bool = False


@dataclass(frozen=True)
class MemoryIntegrated:
    """Summaries of finished hours and days were written (long-term memory)."""

    ids: tuple[str, ...]


# --- control and reasoning --------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingPaused:
    """Capture is withheld (nothing is stored) until `until_s`, or until resumed if None."""

    until_s: float | None
    reason: str = "paused"


@dataclass(frozen=True)
class RecordingResumed:
    pass


@dataclass(frozen=True)
class AnswerStarted:
    question_id: int
    question: str
    spoken: bool = False  # heard (addressed by the wake name), not typed
    reasoner: str = ""  # what will answer (a model's name, or the extractive answer)


@dataclass(frozen=True)
class AnswerChunk:
    """A piece of the answer as it is generated (a token or a few)."""

    question_id: int
    text: str


@dataclass(frozen=True)
class AnswerSentence:
    """A complete sentence of the answer, as soon as it is known complete (to be spoken)."""

    question_id: int
    text: str


@dataclass(frozen=True)
class AnswerFinished:
    question_id: int
    answer: object  # app.reasoning.base.Answer (kept untyped: events stay import-light)


# --- speaking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceReady:
    """The speaker was opened (or not: text only, and why)."""

    name: str  # the speech engine, or "text only"
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class SpeakingStarted:
    """The first sound of an answer left for the speaker."""

    question_id: int
    t_s: float  # time.monotonic() when its first samples were handed to the device


@dataclass(frozen=True)
class AnswerSpoken:
    """An answer's speech ended: played out, or cut off (barge-in, stop)."""

    question_id: int
    said: str  # what was heard of it (sentences played, the last one cut at a word)
    interrupted: bool
    stop_delay_s: float | None = None  # interrupted: from the stop request to silence


@dataclass(frozen=True)
class BargeIn:
    """The user started talking over an answer: generation and speech were stopped."""

    question_id: int
    t0_s: float  # the speech start the VAD reported
