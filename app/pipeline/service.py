"""Daybook as one object: the memory, the running pipeline, questions, privacy controls.

This is what the desktop app (and any other front end) drives. It is Qt-free: results and live
updates arrive as events on `bus`, emitted from worker threads; a GUI must cross into its own
thread (see app/ui/bridge.py) before touching widgets.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.capture.base import AudioSource, FrameSource
from app.core.config import Config
from app.core.events import (
    AnswerChunk,
    AnswerFinished,
    FramePreviewed,
    MomentsDeleted,
    MomentsStored,
    RecordingPaused,
    RecordingResumed,
    VoiceReady,
)
from app.core.paths import DataPaths
from app.memory.base import Moment
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.integrate import Integrator
from app.memory.journal import MomentJournal
from app.memory.reembed import Reembedder
from app.perception.caption import Captioner
from app.perception.spool import UntranscribedSpool
from app.pipeline.answer import AnswerWorker
from app.pipeline.factory import (
    build_pipeline,
    close_store,
    journal_path,
    make_captioner,
    make_embedder,
    make_key_frames,
    make_reasoner,
    make_store,
    model_manager,
    untranscribed_dir,
)
from app.pipeline.pipeline import Pipeline
from app.pipeline.runtime import EventBus
from app.reasoning.base import Answer, Citation, Reasoner
from app.reasoning.present import LIVE_FRAME_S
from app.reasoning.retrieve import Retriever
from app.reasoning.summarise import ModelSummariser
from app.speech.control import VoiceControl
from app.speech.echo import FarEnd
from app.speech.speaker import Speaker, TextOnly

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 480
PREVIEW_FPS = 5.0
INTEGRATE_FIRST_WAIT_S = 20.0  # the first summaries are written this long after the start


VISION_ROLES = ("vlm", "mmproj")  # the models a captioner is made from


class DaybookService:
    """Owns the store for this process (the caller holds the data-dir lock)."""

    def __init__(self, cfg: Config, paths: DataPaths, *, bus: EventBus | None = None,
                 open_store_in_background: bool = False, background: bool = True,
                 load_reasoner: bool = True) -> None:
        """`background`: run the memory's background work (re-embedding, summaries); a
        command that only reads (ask, timeline, export) runs without it."""
        self.cfg = cfg
        self.paths = paths
        self.bus = bus or EventBus()
        # In the background: the window shows while Chroma opens (≈1–3 s); what needs the store
        # waits for it, off the GUI thread.
        self.store = make_store(paths, cfg, self.bus.emit, wait=not open_store_in_background)
        self.key_frames = make_key_frames(cfg, paths.key_frames)
        # Utterances whose recognition failed, shared by every pipeline this service runs.
        self.spool = UntranscribedSpool(untranscribed_dir(paths))
        self.models = model_manager(cfg, paths)
        # With the store in the background (the window), the embedder loads in a thread too;
        # a command loads it first (a process ending while onnxruntime loads in a thread aborts).
        self.embedder = make_embedder(cfg, self.models, background=open_store_in_background)
        # The lexical embedder answers for a data dir from before (its vectors) while the
        # configured one's are built in the background.
        self.retriever = Retriever(self.store, self.embedder, self.key_frames, cfg.reasoning,
                                   wake_name=cfg.assistant.wake_name, others=[LexicalEmbedder()])
        self.reembedder = Reembedder(self.store, self.embedder, self.bus.emit)
        # Hour and day summaries (long-term memory), in the background.
        # When a language model is in use it writes them (grounded; questions come first).
        self.summariser = ModelSummariser(lambda: self._reasoner,
                                          lambda: self.answers.background_slot)
        self.integrator = Integrator(self.store, self.embedder, paths.memory / "integrate.json",
                                     self.bus.emit, first_wait_s=INTEGRATE_FIRST_WAIT_S,
                                     duty=0.5, rewrite=self.summariser.rewrite)
        self.bus.subscribe(self.integrator.on_event)
        if background:
            self.reembedder.start()
            if cfg.memory.summaries:
                self.integrator.start()
        # The language model (or the extractive answer), loading in its own process; a
        # command that may ask nothing loads it at the first question (`load_reasoner`).
        self._reasoner: Reasoner | None = None
        self._reasoner_lock = threading.Lock()
        self._captioner: Captioner | None = None
        self._captioner_made = False
        self._captioner_for: tuple[Any, ...] = ()  # what it was made from (`reload_captioner`)
        self._retired: list[Captioner] = []  # replaced: closed once their pipeline has stopped
        self._captioner_lock = threading.Lock()
        self._reasoner_cfg = cfg.reasoning
        if load_reasoner:
            self._reasoner = make_reasoner(cfg, self.models, on_event=self.bus.emit)
        self.pipeline: Pipeline | None = None
        self.recording = threading.Event()
        self.recording.set()
        self.paused_until_s: float | None = None
        self._resume_timer: threading.Timer | None = None
        self._stored_ids: collections.deque[str] = collections.deque(maxlen=1024)
        self._stored_cond = threading.Condition()
        self.bus.subscribe(self._stored)
        # The answer stage: questions heard (through the bus) and typed, one at a time.
        self._latest_frame: FramePreviewed | None = None
        self.bus.subscribe(self._keep_frame)
        self.answers = AnswerWorker(self.retriever, lambda: self.reasoner, self.bus,
                                    wake_name=lambda: self.cfg.assistant.wake_name,
                                    wait_stored=self._wait_stored, see_now=self._see_now)
        self.bus.subscribe(self.answers.offer)
        self.answers.start()
        # Spoken answers and barge-in; text only until `open_voice` opens a speaker. What is
        # sent to the speaker is kept in `far_end` for the microphone's echo canceller.
        self.far_end = FarEnd()
        self.voice = VoiceControl(TextOnly("speech is not started"), self.bus.emit,
                                  self.answers.stop_answer, cfg.assistant)
        self.bus.subscribe(self.voice.on_event)
        self._voice_lock = threading.Lock()

    def open_voice(self) -> Speaker:
        """Open the speaker and the voice of `[assistant]` (a blocking moment: call it off a GUI
        thread); text only, saying why, when there is none. Emits VoiceReady."""
        from app.speech.factory import make_speaker

        with self._voice_lock:
            speaker = make_speaker(self.cfg.assistant, self.far_end)
            self.voice.attach(speaker).close()
        log.info("voice: %s%s", speaker.name, f" ({speaker.reason})" if speaker.reason else "")
        self.bus.emit(VoiceReady(speaker.name, speaker.available, speaker.reason))
        return speaker

    @property
    def reasoner(self) -> Reasoner:
        """What answers questions (made at first use when not loaded at the start)."""
        with self._reasoner_lock:
            if self._reasoner is None:
                self._reasoner = make_reasoner(self.cfg, self.models, on_event=self.bus.emit)
            return self._reasoner

    def reload_reasoner(self) -> bool:
        """Models were downloaded, imported or removed: when that changes which language model
        `[reasoning]` picks, the new one is loaded (in the background). True when it did."""
        from app.pipeline.factory import llm_file_for

        with self._reasoner_lock:
            current = self._reasoner
        wanted = llm_file_for(self.cfg, self.models)
        if current is None or getattr(current, "model_path", None) == wanted:
            return False
        with self._reasoner_lock:
            previous, self._reasoner = self._reasoner, None
        if previous is not None:
            log.info("installed models changed: %s is replaced", previous.name)
            threading.Thread(target=previous.close, name="close-reasoner", daemon=True).start()
        self.reasoner  # noqa: B018 (loads the new one now, in the background)
        return True

    def apply_config(self, cfg: Config) -> None:
        """Settings changed (in the window): every part that reads them gets the new ones.
        The devices and the recogniser are the caller's to restart (see MainWindow)."""
        old, self.cfg = self.cfg, cfg
        self.retriever.cfg = cfg.reasoning
        self.retriever.wake_name = cfg.assistant.wake_name
        self.voice.cfg = cfg.assistant
        sound = ("voice", "rate_wpm", "volume", "output")
        if any(getattr(cfg.assistant, k) != getattr(old.assistant, k) for k in sound) and (
                self.voice.speaker.available or old.assistant.output != cfg.assistant.output):
            threading.Thread(target=self.open_voice, name="open-voice", daemon=True).start()
        if cfg.reasoning != self._reasoner_cfg:
            with self._reasoner_lock:
                previous, self._reasoner = self._reasoner, None
                self._reasoner_cfg = cfg.reasoning
            if previous is not None:
                log.info("reasoning settings changed: %s is replaced", previous.name)
                threading.Thread(target=previous.close, name="close-reasoner",
                                 daemon=True).start()
            self.reasoner  # noqa: B018 (loads the new one now, in the background)
        if cfg.memory.summaries and not old.memory.summaries and not self.integrator.is_alive():
            self.integrator.start()

    # --- the pipeline ----------------------------------------------------------------------

    def start(self, *, audio: AudioSource | None, video: FrameSource | None,
              **backends: Any) -> Pipeline:
        """Run the pipeline on these sources (`backends`: vad=, transcriber= for tests).
        Blocking (it drains the previous pipeline and starts the recogniser): call it off a
        GUI thread. It returns once the sources really deliver (or failed to start)."""
        self.stop()
        self.pipeline = self.build(audio=audio, video=video, **backends)
        self.pipeline.start()
        if not self.pipeline.wait_started():
            log.warning("a source did not start delivering (see above)")
        return self.pipeline

    def build(self, *, audio: AudioSource | None, video: FrameSource | None,
              **backends: Any) -> Pipeline:
        """A pipeline on these sources, wired to this service's memory and bus, not started
        (the command line runs it to its end itself)."""
        if video is not None and "captioner" not in backends:
            backends["captioner"] = self.captioner()
        pipeline = build_pipeline(
            self.cfg, store=self.store, key_frames=self.key_frames, audio=audio, video=video,
            embedder=self.embedder, bus=self.bus, models=self.models, data=self.paths,
            spool=self.spool, **backends)
        from app.speech.factory import make_echo_canceller

        self.voice.heard_live = bool(getattr(audio, "live", False))  # no barge-in from a file
        self.voice.echo_settled = lambda: True
        for capture in pipeline.captures:
            capture.recording = self.recording
            if hasattr(capture.source, "echo"):  # a live microphone
                echo = make_echo_canceller(self.cfg.assistant, self.far_end)
                capture.source.echo = echo
                if echo is not None:
                    self.voice.echo_settled = _settled(echo)
            if capture.name == "capture-video":
                capture.preview_width = PREVIEW_WIDTH
        return pipeline

    def _keep_frame(self, event: object) -> None:
        if isinstance(event, FramePreviewed):
            self._latest_frame = event

    def _see_now(self, question: str) -> str:
        """A question about now, answered by the vision model from the camera's latest frame;
        "" without a vision model or a recent frame."""
        frame, captioner = self._latest_frame, self._captioner
        if captioner is None or frame is None or time.time() - frame.t_s > LIVE_FRAME_S:
            return ""
        return captioner.look(frame.image, question)

    def captioner(self) -> Captioner | None:
        """The vision model that captions clips, made at the first pipeline with a camera (a
        child process; None without a vision model)."""
        with self._captioner_lock:
            retired, self._retired = self._retired, []
            if not self._captioner_made:
                self._captioner_made = True
                self._captioner_for = self._vision_setup()
                self._captioner = make_captioner(self.cfg, self.models, on_event=self.bus.emit)
            captioner = self._captioner
        for old in retired:  # the pipeline that used it has stopped (`start` stops it first)
            old.close()
        return captioner

    def _vision_setup(self) -> tuple[Any, ...]:
        installed = self.models.installed() if self.models is not None else {}
        return (self.cfg.video.captions,
                sorted((m.name, m.role) for m in installed.values() if m.role in VISION_ROLES))

    def reload_captioner(self) -> bool:
        """Vision models were downloaded, imported or removed (or captions turned on or off):
        the captioner is made again for the next pipeline with a camera. True when it will be:
        a running pipeline with a camera needs a new start to use it."""
        with self._captioner_lock:
            if not self._captioner_made or self._vision_setup() == self._captioner_for:
                return False
            if self._captioner is not None:
                self._retired.append(self._captioner)
            self._captioner, self._captioner_made = None, False
        log.info("vision models changed: captions are set up again at the next start")
        return True

    def caption_note(self) -> str:
        """Why a clip has no caption, for the timeline: from what this service has made and the
        models index (nothing is loaded)."""
        if not self.cfg.video.captions:
            return "No caption: captions are off ([video] captions in the config)."
        if self._captioner is not None:
            return ("No caption yet: the vision model describes clips in the background, and "
                    "skips some when it falls behind. The key frame is kept.")
        installed = self.models.installed() if self.models is not None else {}
        if any(m.role == "vlm" for m in installed.values()):
            return ("No caption: the vision model is used from the next start with a camera "
                    "(or could not be loaded: see the log). The key frame is kept.")
        return ("No caption: describing what the camera saw takes a vision model. Install one "
                "in Settings › Models; clips are then captioned as they are recorded. The key "
                "frame is kept.")

    def stop(self, drain_timeout_s: float = 30.0) -> None:
        if self.pipeline is not None:
            self.pipeline.stop(drain_timeout_s)
            self.pipeline = None

    # --- privacy -----------------------------------------------------------------------------

    def pause(self, minutes: float | None = None, reason: str = "paused") -> None:
        """Stop storing anything (for `minutes`, or until `resume`)."""
        self.recording.clear()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
        self.paused_until_s = time.time() + minutes * 60 if minutes else None
        if minutes:
            self._resume_timer = threading.Timer(minutes * 60, self.resume)
            self._resume_timer.daemon = True
            self._resume_timer.start()
        log.info("recording %s%s", reason, f" for {minutes:g} min" if minutes else "")
        self.bus.emit(RecordingPaused(self.paused_until_s, reason))

    def resume(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        self.paused_until_s = None
        self.recording.set()
        log.info("recording resumed")
        self.bus.emit(RecordingResumed())

    @property
    def is_recording(self) -> bool:
        return self.recording.is_set()

    def delete(self, moments: list[Moment]) -> None:
        """Forget moments and their key frames."""
        if not moments:
            return
        self.store.delete([m.id for m in moments])
        try:  # the summaries quoting them go too (and are written again from what is left)
            self.integrator.invalidate(moments)
        except Exception as exc:
            log.warning("could not remove the summaries of deleted moments yet: %s", exc)
        for m in moments:
            if m.key_frame:
                self.key_frames.absolute(m.key_frame).unlink(missing_ok=True)
            if m.kind == "utterance":  # its kept audio, if its recognition had failed
                self.spool.done(m.id)
        from app.core.logs import forget_logged

        records = forget_logged(ids=[m.id for m in moments])  # the log forgets them too
        log.info("deleted %d moments and %d log records naming them", len(moments), records)
        self.bus.emit(MomentsDeleted(tuple(m.id for m in moments)))

    def _forget_kept(self, doomed: Callable[[float, str], bool]) -> None:
        """What is kept but not stored yet (the journal, untranscribed audio) is forgotten too."""
        spooled = self.spool.forget(doomed)
        pipe = self.pipeline
        if pipe is not None:
            pipe.memory.forget(lambda m: doomed(m.t0_s, m.id))
            return
        try:
            journaled = MomentJournal(journal_path(self.paths)).forget(
                lambda m: doomed(m.t0_s, m.id))
        except OSError as exc:
            log.error("cannot remove deleted moments from the journal: %s", exc)
            journaled = 0
        if spooled or journaled:
            log.info("forgot %d untranscribed and %d journaled moments", spooled, journaled)

    def apply_retention(self, now_s: float | None = None) -> int:
        """Forget what is older than `[privacy] retention_days` (0 keeps everything)."""
        days = self.cfg.privacy.retention_days
        if not days:
            return 0
        cutoff = (now_s or time.time()) - days * 86_400
        gone = self.store.delete_before(cutoff)
        self._forget_kept(lambda t0_s, _id: t0_s < cutoff)
        for m in gone:
            if m.key_frame:
                self.key_frames.absolute(m.key_frame).unlink(missing_ok=True)
        from app.core.logs import forget_logged

        records = forget_logged(0.0, cutoff, ids=[m.id for m in gone])  # and older log records
        if gone or records:
            log.info("retention: forgot %d moments and %d log records older than %d days",
                     len(gone), records, days)
        if gone:
            self.bus.emit(MomentsDeleted(tuple(m.id for m in gone)))
        return len(gone)

    def delete_range(self, t0_s: float, t1_s: float) -> int:
        """Forget everything that started in [t0, t1); returns how many moments."""
        from app.reasoning.timewords import TimeScope

        doomed = [m for day in TimeScope(t0_s, t1_s, "").days()
                  for m in self.moments_on_day(day) if t0_s <= m.t0_s < t1_s]
        from app.core.logs import forget_logged

        forget_logged(t0_s, t1_s)  # what was logged in the range (a typed question at DEBUG)
        self._forget_kept(lambda t, _id: t0_s <= t < t1_s)
        self.delete(doomed)
        return len(doomed)

    # --- reading -------------------------------------------------------------------------------

    def moments_on_day(self, day: str) -> list[Moment]:
        return self.store.moments_on_day(day)

    def search(self, text: str) -> list[Citation]:
        citations, _ = self.retriever.retrieve(text)
        return citations

    def thumbnail_path(self, m: Moment) -> Path | None:
        if m.key_frame:
            return self.key_frames.absolute(m.key_frame)
        return self.key_frames.near(m.t0_s, m.t1_s)

    def ask(self, question: str, *, spoken: bool = False, after: str | None = None) -> int:
        """Queue a question for the answer stage (it cancels the answer being given); its
        AnswerStarted/Chunk/Sentence/Finished events follow. `after`: a moment id to wait for
        in the store first (for a spoken question, the moment heard or seen before it)."""
        return self.answers.ask(question, spoken=spoken, after=after)

    def stop_answer(self) -> bool:
        """Stop the answer being given (between two tokens) and its speech; True when there
        was one."""
        return self.voice.stop()

    def ask_and_wait(self, question: str, *, on_chunk: Callable[[str], None] | None = None,
                     timeout_s: float | None = None) -> Answer:
        """Ask through the answer stage and wait for the whole answer (the command line);
        `on_chunk` sees each piece as it is generated (in the stage's thread)."""
        done = threading.Event()
        box: dict[str, Any] = {}
        wanted: list[int] = []
        early: list[object] = []  # events that came before the id was known

        def listen(event: object) -> None:
            if not wanted:
                early.append(event)
                return
            _take(event)

        def _take(event: object) -> None:
            if isinstance(event, AnswerChunk) and event.question_id == wanted[0]:
                if on_chunk is not None:
                    on_chunk(event.text)
            elif isinstance(event, AnswerFinished) and event.question_id == wanted[0]:
                box["answer"] = event.answer
                done.set()

        self.bus.subscribe(listen)
        try:
            wanted.append(self.ask(question))
            for event in list(early):
                _take(event)
            if not done.wait(timeout_s):
                self.stop_answer()
                done.wait(5.0)
        finally:
            self.bus.unsubscribe(listen)
        answer = box.get("answer")
        if not isinstance(answer, Answer):
            raise TimeoutError(f"no answer in {timeout_s} s")
        return answer

    def _stored(self, event: object) -> None:
        """What the memory has committed, for a spoken question waiting for its utterance."""
        if isinstance(event, MomentsStored):
            with self._stored_cond:
                self._stored_ids.extend(event.ids)
                self._stored_cond.notify_all()

    def _wait_stored(self, moment_id: str, timeout_s: float) -> bool:
        """Wait until `moment_id` (and so, the memory worker being first in, first out,
        everything heard before it) is committed and searchable."""
        with self._stored_cond:
            if moment_id in self._stored_ids:
                # No early flush: the question's own utterance is committed with the next batch
                # (≤ flush_interval_s later) while the answer is being given.
                return True
        pipe = self.pipeline
        if pipe is not None:
            pipe.memory.flush_soon()
        with self._stored_cond:
            return self._stored_cond.wait_for(lambda: moment_id in self._stored_ids, timeout_s)

    def status(self) -> dict[str, Any]:
        pipe = self.pipeline
        return {
            "recording": self.is_recording,
            "paused_until_s": self.paused_until_s,
            "backends": pipe.backends if pipe else {},
            "counters": pipe.counters() if pipe else {},
            "running": bool(pipe and any(c.is_alive() for c in pipe.captures)),
        }

    def close(self) -> None:
        self.answers.close()
        with self._voice_lock:
            self.voice.speaker.close()
        self.stop()
        with self._reasoner_lock:
            if self._reasoner is not None:
                self._reasoner.close()
        for captioner in [*self._retired, *([self._captioner] if self._captioner else [])]:
            captioner.close()
        self.reembedder.stop()
        self.integrator.stop()
        if self.reembedder.is_alive():
            self.reembedder.join(timeout=10)
        if self.integrator.is_alive():
            self.integrator.join(timeout=10)
        if self._resume_timer is not None:
            self._resume_timer.cancel()
        close_embedder = getattr(self.embedder, "close", None)
        if close_embedder is not None:  # one still loading in a thread is waited for
            close_embedder()
        close_store(self.store)


def _settled(echo: Any) -> Callable[[], bool]:
    return lambda: bool(echo.settled)
