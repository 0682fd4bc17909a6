"""The one place that chooses backends and wires the pipeline from the config."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.capture.base import AudioSource, FrameSource
from app.core.config import Config
from app.core.errors import BackendUnavailableError, DaybookError, InputError
from app.core.paths import DataPaths
from app.memory.base import Embedder, MemoryStore
from app.memory.journal import MomentJournal
from app.memory.keyframes import KeyFrameDir
from app.models.manager import ModelManager
from app.models.selection import choose, fallback, projector_for
from app.perception.base import Transcriber, Vad
from app.perception.caption import Captioner
from app.perception.clips import ClipBuilder
from app.perception.spool import UntranscribedSpool
from app.perception.vad import SpeechSegmenter
from app.pipeline.captions import CaptionWorker
from app.pipeline.pipeline import Pipeline
from app.pipeline.runtime import EventBus, Inbox, Worker
from app.pipeline.workers import (
    AsrWorker,
    CaptureThread,
    ClipWorker,
    MemoryWorker,
    SoundClassifierFn,
    VadWorker,
)
from app.reasoning.base import Reasoner

log = logging.getLogger(__name__)


def open_model_manager(cfg: Config, paths: DataPaths) -> ModelManager:
    """The models folder and catalog; raises if either cannot be opened."""
    from app.models.catalog import load_catalog
    from app.models.manager import ModelManager

    folder = Path(cfg.models.dir).expanduser() if cfg.models.dir else paths.models
    return ModelManager(folder, load_catalog(), timeout_s=cfg.models.timeout_s)


def model_manager(cfg: Config, paths: DataPaths) -> ModelManager | None:
    """The installed models for choosing backends, or None (embedded defaults) with a warning.
    Reading only: nothing here touches the network."""
    try:
        return open_model_manager(cfg, paths)
    except (DaybookError, OSError) as exc:
        log.warning("model manager unavailable (%s); using the embedded defaults", exc)
        return None


def make_vad(cfg: Config, manager: ModelManager | None = None) -> Vad:
    from app.perception.vad import WebRtcVad

    if cfg.vad.backend != "webrtc":
        choice = choose(manager, "vad")
        for attempt in (choice, fallback("vad", f"{choice.using} failed")):
            path = attempt.model_path or attempt.wheel_files.get("model")
            if path is None:
                continue
            try:
                from app.perception.vad_silero import SileroVad

                vad: Vad = SileroVad(path)
                log.info("VAD: %s (%s)", vad.name, attempt.source)
                return vad
            except Exception as exc:
                log.warning("VAD: cannot use %s (%s); trying the next", attempt.using, exc)
            if attempt.source == "wheel":
                break
        if cfg.vad.backend == "silero":
            log.warning("VAD: silero asked for but %s; using webrtcvad", choice.reason)
    log.info("VAD: webrtcvad")
    return WebRtcVad(cfg.vad.aggressiveness, frame_ms=30)


def make_transcriber(cfg: Config, manager: ModelManager | None = None,
                     on_event: Callable[[object], None] | None = None) -> Transcriber | None:
    """The configured ASR, or None (utterances are kept, untranscribed) with a logged reason.
    Best first: an installed whisper.cpp model, Moonshine from its wheel (no download), then
    pocketsphinx. `on_event` receives the recogniser process's EngineFailed/EngineRecovered."""
    from app.perception.asr_process import ProcessTranscriber

    backend = cfg.asr.backend
    if backend == "none":
        return None
    common: dict[str, Any] = {"timeout_s": cfg.asr.timeout_s, "on_event": on_event}
    # Installed models to try, best first: any (auto), then an installed Moonshine folder (the
    # catalog's moonshine-base-en, for where the moonshine-cpp wheel does not exist).
    wanted: tuple[tuple[str, ...] | None, ...] = {
        "auto": (None, ("moonshine-ort",)), "whisper": (("whisper-ggml",),),
        "moonshine": (("moonshine-ort",),)}.get(backend, ())
    tried: set[str] = set()
    for formats in wanted:
        choice = choose(manager, "asr", formats)
        if choice.model_path is None or choice.using in tried:
            if backend == "whisper":
                log.warning("ASR: whisper asked for but %s; trying the next", choice.reason)
            continue
        tried.add(choice.using)
        try:
            if choice.format == "moonshine-ort":  # a folder: encoder, decoder, tokenizer.bin
                installed = ProcessTranscriber("moonshine", choice.model_path, **common)
            else:
                from app.models.validate import validate_model_file

                validate_model_file(choice.model_path, "whisper-ggml")  # before any child
                installed = ProcessTranscriber("whisper", choice.model_path, **common)
            log.info("ASR: %s (%s, own process)", installed.name, choice.using)
            return installed
        except DaybookError as exc:
            log.warning("ASR: cannot use %s (%s); trying the next", choice.using, exc)
    if backend != "pocketsphinx":
        try:
            moonshine = ProcessTranscriber("moonshine", **common)
            log.info("ASR: %s (own process)", moonshine.name)
            return moonshine
        except DaybookError as exc:
            log.warning("ASR: Moonshine unavailable (%s); falling back to pocketsphinx", exc)
    try:
        sphinx = ProcessTranscriber("pocketsphinx", **common)
        log.info("ASR: %s (own process)", sphinx.name)
        return sphinx
    except BackendUnavailableError as exc:
        log.warning("speech recognition unavailable: %s; utterances are kept untranscribed", exc)
        return None


def make_embedder(cfg: Config, manager: ModelManager | None = None, *,
                  background: bool = False) -> Embedder:
    """The text embedder `[memory] embedder` asks for. "auto" and "minilm": all-MiniLM-L6-v2,
    the catalog's fp32 file when installed (in `manager`) and intact, else the int8 one from its
    wheel (no download); then "auto" falls back to the lexical embedder with a warning saying
    why, "minilm" raises BackendUnavailableError with the reasons. `background`: the model's
    files are checked here, the model loads in a thread (see MiniLMEmbedder)."""
    from app.memory.embed_lexical import LexicalEmbedder

    wanted = cfg.memory.embedder
    if wanted == "lexical":
        lexical = LexicalEmbedder()
        log.info("embedder: %s (configured)", lexical.name)
        return lexical
    from app.memory import embed_minilm as minilm

    problems: list[str] = []
    try:
        installed = minilm.installed_model(manager)
        if installed is not None:
            embedder: Embedder = minilm.MiniLMEmbedder(installed, minilm.CATALOG_NAME,
                                                           background=background)
            log.info("embedder: %s (the installed %s, fp32)", embedder.name, minilm.CATALOG_MODEL)
            return embedder
    except BackendUnavailableError as exc:
        log.warning("embedder: cannot use the installed %s (%s); trying the built-in one",
                    minilm.CATALOG_MODEL, exc)
        problems.append(str(exc))
    try:
        embedder = minilm.MiniLMEmbedder(minilm.wheel_model(), minilm.WHEEL_NAME,
                                         background=background)
        log.info("embedder: %s (all-MiniLM-L6-v2 int8, built in)", embedder.name)
        return embedder
    except BackendUnavailableError as exc:
        problems.append(str(exc))
    why = "; ".join(problems)
    if wanted == "minilm":
        raise BackendUnavailableError(f"the MiniLM embedder asked for cannot be used: {why}")
    lexical = LexicalEmbedder()
    log.warning("embedder: all-MiniLM-L6-v2 unavailable (%s); using %s, which matches words, "
                "not meanings", why, lexical.name)
    return lexical


def make_captioner(cfg: Config, manager: ModelManager | None, *,
                   on_event: Callable[[object], None] | None = None) -> Captioner | None:
    """A captioner on a vision model installed through the model manager with its projector
    (the catalog's pair; for an imported model, the one projector installed), or None, with the
    reason logged (`[video] captions` false: off)."""
    if not cfg.video.captions:
        log.info("captions: off (configured)")
        return None
    installed = manager.installed() if manager is not None else {}
    for model in sorted((m for m in installed.values() if m.role == "vlm"), key=lambda m: m.name):
        assert manager is not None  # something is installed
        projector = projector_for(manager, model, installed)
        if projector is None:
            log.warning("captions: %s is installed without its vision projector", model.name)
            continue
        try:
            from app.perception.caption import LlamaCaptioner

            captioner = LlamaCaptioner(manager.path(model), manager.path(projector),
                                       threads=llm_threads(cfg), label=model.name, wait=False,
                                       on_event=on_event)
        except DaybookError as exc:
            log.warning("captions: cannot use %s (%s)", model.name, exc)
            continue
        log.info("captions: %s", captioner.name)
        return captioner
    log.info("captions: none (no vision model installed)")
    return None


def make_reasoner(cfg: Config, manager: ModelManager | None = None, *,
                  on_event: Callable[[object], None] | None = None,
                  wait: bool = False) -> Reasoner:
    """The reasoner `[reasoning] backend` asks for. auto: the best language model installed
    (or imported) through the model manager, run by llama.cpp, else the extractive answer;
    llama: that model (or `[reasoning] model`: an installed name or a GGUF path); openai: the
    server at `base_url`; extractive: no model. A model that cannot be used is logged with the
    reason and the extractive answer is used. The model loads in the background (`wait`
    False): the first question waits for it."""
    from app.reasoning.extractive import ExtractiveReasoner

    r = cfg.reasoning
    if r.backend == "extractive":
        log.info("reasoning: the extractive answer (configured)")
        return ExtractiveReasoner()
    if r.backend == "openai":
        if not r.base_url:
            log.warning("reasoning: backend 'openai' needs [reasoning] base_url; using the "
                        "extractive answer")
            return ExtractiveReasoner()
        from app.reasoning.llm_openai import OpenAIReasoner

        remote = OpenAIReasoner(r.base_url, r.model, api_key_env=r.api_key_env,
                                context_tokens=r.context_tokens, max_tokens=r.max_tokens,
                                first_token_timeout_s=r.timeout_s,
                                stall_timeout_s=min(r.timeout_s, 30.0))
        log.info("reasoning: %s", remote.name)
        return remote
    path, label, why = _llm_file(r.model if r.backend == "llama" else "", manager)
    if path is None:
        level = logging.WARNING if r.backend == "llama" else logging.INFO
        log.log(level, "reasoning: the extractive answer (%s)", why)
        return ExtractiveReasoner()
    try:
        from app.reasoning.llm_llama import LlamaReasoner

        local = LlamaReasoner(path, context_tokens=r.context_tokens, threads=llm_threads(cfg),
                              max_tokens=r.max_tokens, timeout_s=r.timeout_s, label=label,
                              wait=wait, on_event=on_event)
    except DaybookError as exc:
        log.warning("reasoning: cannot use %s (%s); using the extractive answer", label, exc)
        return ExtractiveReasoner()
    log.info("reasoning: %s (%s, own process)", local.name, path)
    return local


def llm_file_for(cfg: Config, manager: ModelManager | None) -> Path | None:
    """The GGUF `make_reasoner` would load for this config and these installed models."""
    r = cfg.reasoning
    if r.backend not in ("auto", "llama"):
        return None
    return _llm_file(r.model if r.backend == "llama" else "", manager)[0]


def llm_threads(cfg: Config) -> int:
    """llama.cpp's threads: as configured, else one a core (at most 8: more rarely helps). The
    model's process runs at a lower priority (app/reasoning/llm_llama.py), so capture and the
    window still get a core when they need one. Measured by bench/reason.py on 2 cores
    (SmolLM2-135M): first token 1.1 s and 58 tokens/s with 2 threads, 1.9 s and 41 with 1."""
    import os

    return cfg.reasoning.threads or max(1, min(8, os.cpu_count() or 2))


def _llm_file(wanted: str, manager: ModelManager | None) -> tuple[Path | None, str, str]:
    """(path, name, why not): the language model to load."""
    if wanted and (wanted.endswith(".gguf") or "/" in wanted or "\\" in wanted):
        path = Path(wanted).expanduser()
        return (path, path.stem, "") if path.is_file() else (None, wanted,
                                                             f"{wanted} does not exist")
    if wanted and manager is not None:
        model = manager.installed().get(wanted)
        if model is None or model.role != "llm":
            return None, wanted, f"no language model named {wanted!r} is installed"
        return manager.path(model), wanted, ""
    choice = choose(manager, "llm")
    if choice.model_path is None:
        return None, "", choice.reason
    return choice.model_path, choice.using, ""


def make_store(paths: DataPaths, cfg: Config | None = None,
               on_event: Callable[[object], None] | None = None, *,
               wait: bool = True) -> MemoryStore:
    """Chroma in its own process (its calls hold the GIL for tens of ms; see store_process).
    `on_event` receives the store process's EngineFailed/EngineRecovered."""
    from app.memory.store_process import ProcessMemoryStore

    memory = (cfg or Config()).memory
    return ProcessMemoryStore(paths.chroma, url=memory.chroma_url, index_dir=index_dir(paths),
                              timeout_s=memory.store_timeout_s, on_event=on_event, wait=wait)


def index_dir(paths: DataPaths) -> Path:
    """The store's side file and time indexes (beside Chroma; local even with a server)."""
    return paths.memory / "index"


def journal_path(paths: DataPaths) -> Path:
    """Moments the store could not take yet (see app/memory/journal.py)."""
    return paths.memory / "journal.jsonl"


def untranscribed_dir(paths: DataPaths) -> Path:
    """Utterances whose recognition failed, kept to be transcribed again."""
    return paths.memory / "untranscribed"


def close_store(store: object) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def open_live_sources(cfg: Config, *, camera: str, microphone: str
                      ) -> tuple[AudioSource | None, FrameSource | None, list[str]]:
    """Open the microphone and camera; what cannot be opened is reported, not fatal."""
    from app.capture.audio_device import SoundDeviceSource
    from app.capture.video import Cv2FrameSource

    problems: list[str] = []
    audio: AudioSource | None = None
    video: FrameSource | None = None
    if microphone:
        try:
            audio = SoundDeviceSource(microphone, block_ms=cfg.capture.audio_block_ms,
                                      queue_chunks=cfg.capture.audio_queue_chunks)
        except InputError as exc:
            problems.append(f"{exc} (continuing without audio)")
    if camera:
        try:
            video = Cv2FrameSource(camera, max_fps=cfg.video.sample_fps, realtime=True)
        except InputError as exc:
            problems.append(f"{exc} (continuing without video)")
    for problem in problems:
        log.warning("%s", problem)
    return audio, video, problems


def make_key_frames(cfg: Config, root: Path) -> KeyFrameDir:
    return KeyFrameDir(
        root, max_width=cfg.video.key_frame_max_width, jpeg_quality=cfg.video.jpeg_quality
    )


def build_pipeline(
    cfg: Config,
    *,
    store: MemoryStore,
    key_frames: KeyFrameDir,
    audio: AudioSource | None = None,
    video: FrameSource | None = None,
    vad: Vad | None = None,
    transcriber: Transcriber | None = None,
    embedder: Embedder | None = None,
    bus: EventBus | None = None,
    models: ModelManager | None = None,
    data: DataPaths | None = None,
    spool: UntranscribedSpool | None = None,
    classify_sound: SoundClassifierFn | None = None,
    captioner: Captioner | None = None,
) -> Pipeline:
    """Wire sources → perception → memory. Omitted backends come from the config. With `data`,
    what cannot be stored or transcribed yet is also kept on disk there (journal, spool). With a
    `captioner` (and video), clips are captioned in the background (app/pipeline/captions.py)."""
    bus = bus or EventBus()
    stop, abort = threading.Event(), threading.Event()
    embedder = embedder or make_embedder(cfg)
    if audio is not None and transcriber is None:
        transcriber = make_transcriber(cfg, models, on_event=bus.emit)
    common: dict[str, Any] = {"bus": bus, "abort": abort}

    # memory_inbox: fed by the ASR worker and the clip worker; read by the memory worker.
    memory_inbox: Inbox[Any] = Inbox("memory", 256)
    inboxes: list[Inbox[Any]] = [memory_inbox]
    captures: list[CaptureThread] = []
    workers: list[Worker] = []
    backends = {"embedder": embedder.name}
    memory_upstreams = 0  # stages besides the captures that end the memory worker's input

    if audio is not None:
        vad = vad or make_vad(cfg, models)
        # vad_inbox: fed by the audio capture thread; read by the VAD worker. Never drops.
        vad_inbox: Inbox[Any] = Inbox("audio", cfg.capture.audio_queue_chunks)
        # asr_inbox: the ASR todo queue, fed by the VAD worker; read by the ASR worker.
        asr_inbox: Inbox[Any] = Inbox("asr", cfg.asr.queue_utterances)
        inboxes += [vad_inbox, asr_inbox]
        captures.append(CaptureThread("capture-audio", audio, vad_inbox, bus, stop, abort))
        workers.append(
            VadWorker(
                SpeechSegmenter(vad, cfg.vad), asr_inbox, name="vad", inbox=vad_inbox, **common
            )
        )
        if spool is None:
            spool = UntranscribedSpool(untranscribed_dir(data) if data else None)
        sound = {"classify": classify_sound} if classify_sound else {}
        workers.append(AsrWorker(transcriber, memory_inbox, spool, name="asr", inbox=asr_inbox,
                                 wake_name=lambda: cfg.assistant.wake_name, **sound, **common))
        backends.update(
            audio=audio.name,
            vad=vad.name,
            asr=transcriber.name if transcriber else "none (kept untranscribed)",
        )
    if video is not None:
        # frame_inbox: fed by the video capture thread; read by the clip worker.
        # A live camera may drop (oldest first, counted); a replayed file waits instead.
        frame_inbox: Inbox[Any] = Inbox(
            "video", cfg.capture.video_queue_frames, drop_oldest=video.live
        )
        inboxes.append(frame_inbox)
        captures.append(CaptureThread("capture-video", video, frame_inbox, bus, stop, abort))
        caption_inbox: Inbox[Any] | None = None
        if captioner is not None:
            caption_inbox = Inbox("captions", 1, drop_oldest=True)
            inboxes.append(caption_inbox)
            workers.append(CaptionWorker(captioner, memory_inbox, name="captions",
                                         inbox=caption_inbox, **common))
            memory_upstreams += 1
            backends["vision"] = captioner.name
        workers.append(
            ClipWorker(
                ClipBuilder(cfg.video), memory_inbox, caption_inbox, name="clips",
                inbox=frame_inbox, **common
            )
        )
        backends["video"] = video.name

    memory = MemoryWorker(
        store,
        embedder,
        key_frames,
        batch_size=cfg.memory.batch_size,
        flush_interval_s=cfg.memory.flush_interval_s,
        journal=MomentJournal(journal_path(data)) if data else None,
        name="memory",
        inbox=memory_inbox,
        upstreams=max(1, len(captures) + memory_upstreams),
        **common,
    )
    workers.append(memory)
    if not captures:  # nothing to record: let the memory worker end at once
        memory_inbox.put(_no_sources())
    return Pipeline(
        bus=bus,
        stop_event=stop,
        abort=abort,
        captures=captures,
        workers=workers,
        inboxes=inboxes,
        memory=memory,
        backends=backends,
    )


def _no_sources() -> Any:
    from app.core.events import SourceEnded

    return SourceEnded(source="none", reason="no sources")
