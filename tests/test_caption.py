"""Captions through the real llama-cpp-python vision path (libmtmd), on a tiny generated text
model + vision projector pair (tests/vision_model.py: random weights, so the words are
gibberish, but every step is the real one): in the child process, in the pipeline, and found
by a question afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app.core.config import Config
from app.core.errors import BackendUnavailableError
from app.memory.embed_lexical import LexicalEmbedder
from app.memory.fakes import InMemoryStore
from app.memory.keyframes import KeyFrameDir
from app.perception.caption import LlamaCaptioner, VisionBackend, jpeg_data_uri
from app.pipeline.factory import build_pipeline
from tests import mediagen
from tests.vision_model import tiny_vision_pair

slow = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    text, mmproj, _ = tiny_vision_pair(tmp_path_factory.mktemp("vision"))
    return text, mmproj


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [np.zeros((480, 640, 3), np.uint8), rng.integers(0, 255, (480, 640, 3), np.uint8)]


def test_frames_go_to_the_model_only_as_data_uris(pair: tuple[Path, Path]) -> None:
    uri = jpeg_data_uri(np.zeros((1080, 1920, 3), np.uint8))
    assert uri.startswith("data:image/jpeg;base64,")
    backend = VisionBackend(str(pair[0]), str(pair[1]), 1)  # in this process: the refusal
    try:
        with pytest.raises(ValueError, match="only data: URIs"):
            backend.caption("http://127.0.0.1:9/frame.jpg", "Describe it.", 4)
        assert backend.caption(uri, "Describe it.", 4)
    finally:
        backend.close()


@slow
def test_a_key_frame_is_captioned_in_the_child_process(pair: tuple[Path, Path]) -> None:
    captioner = LlamaCaptioner(*pair, threads=1)
    try:
        words = [captioner.caption(f) for f in _frames()]
        assert all(w.strip() for w in words), words
        assert captioner.caption(_frames()[0]) == words[0]  # greedy: the same frame, same words
        # A question about the live frame: the question in the prompt, so other words.
        calls: list[tuple] = []
        call = captioner.engine.call
        captioner.engine.call = lambda *a, **k: calls.append(a) or call(*a, **k)  # type: ignore[method-assign]
        seen = captioner.look(_frames()[0], "what  am I\nholding?")
        assert seen.strip() and seen != words[0], (seen, words[0])
        assert calls[0][0] == "caption" and calls[0][1].startswith("data:image/jpeg;base64,")
        assert "my camera sees now. what am I holding?\nAnswer in one short" in calls[0][2]
        child = captioner.engine._child  # the captions came from the engine's child process
        assert child is not None and child.pid != os.getpid() and child.proc.is_alive()
    finally:
        captioner.close()


def test_a_projector_that_is_not_clip_is_refused_by_name(pair: tuple[Path, Path]) -> None:
    with pytest.raises(BackendUnavailableError, match="tiny-text.gguf is a 'llama' GGUF"):
        LlamaCaptioner(pair[0], pair[0])


@slow
def test_clips_are_captioned_in_the_background_and_found_by_a_question(
        tmp_path: Path, pair: tuple[Path, Path]) -> None:
    from app.capture.video import Cv2FrameSource
    from app.core.events import ClipCaptioned, MomentsStored
    from app.reasoning.retrieve import Retriever

    video = mediagen.scenes_video(tmp_path / "scenes.mp4", [4.0, 4.0, 4.0])
    store, embedder = InMemoryStore(), LexicalEmbedder()
    captioner = LlamaCaptioner(*pair, threads=1)
    events: list[object] = []
    try:
        pipeline = build_pipeline(
            Config(), store=store, key_frames=KeyFrameDir(tmp_path / "frames"),
            video=Cv2FrameSource(str(video), max_fps=1.0, start_s=1_000_000.0),
            embedder=embedder, captioner=captioner)
        pipeline.bus.subscribe(events.append)
        pipeline.start()
        assert pipeline.wait(timeout_s=60)
    finally:
        captioner.close()
    captioned = [e for e in events if isinstance(e, ClipCaptioned)]
    clips = store.moments_between(0, 2e9, kinds=("clip",))
    assert len(clips) == 3
    # A replay comes faster than captions: what waited was dropped (counted), the last clip was
    # captioned, and nothing was stored twice.
    counters = pipeline.counters()
    assert len(captioned) + counters["captions.dropped"] == 3, counters
    assert captioned and captioned[-1].id == clips[-1].id
    by_id = {m.id: m for m in clips}
    for c in captioned:
        assert by_id[c.id].text == c.caption
    assert pipeline.memory.stored == {"utterance": 0, "clip": 3}
    assert any(isinstance(e, MomentsStored) and captioned[-1].id in e.ids for e in events)
    # The caption's words find the clip.
    retriever = Retriever(store, embedder, KeyFrameDir(tmp_path / "frames"), Config().reasoning)
    word = captioned[-1].caption.split()[0]
    found, _ = retriever.retrieve(f"when did I see {word}?")
    assert found and found[0].moment.id == captioned[-1].id, (word, found)


def test_an_imported_vision_model_and_its_projector_caption_clips(
        tmp_path: Path, pair: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    from app.models.catalog import load_catalog
    from app.models.manager import ModelManager
    from app.models.selection import describe_choices
    from app.pipeline.factory import make_captioner

    manager = ModelManager(tmp_path / "models", load_catalog())
    cfg = Config()
    assert make_captioner(cfg, manager) is None  # nothing installed: clips keep no words
    manager.import_file(pair[0], "vlm", name="tiny-vlm")
    with caplog.at_level("WARNING"):
        assert make_captioner(cfg, manager) is None
    assert "tiny-vlm is installed without its vision projector" in caplog.text
    # What Settings › Models says captions clips: the model, once it has its projector.
    assert describe_choices(manager)["vlm"] == (
        "none (key frames only)  (tiny-vlm is installed without its vision projector)")
    manager.import_file(pair[1], "mmproj", name="tiny-mmproj")
    assert describe_choices(manager)["vlm"] == "tiny-vlm"
    assert make_captioner(cfg.replace(video={"captions": False}), manager) is None
    captioner = make_captioner(cfg, manager)
    assert captioner is not None and captioner.name == "tiny-vlm (llama.cpp)"
    captioner.close()


def test_a_clip_without_a_caption_says_why(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    """The timeline's note on a clip with no words: what the user can do about it."""
    from types import SimpleNamespace

    from app.models.catalog import load_catalog
    from app.models.manager import ModelManager
    from app.pipeline.service import DaybookService

    manager = ModelManager(tmp_path / "models", load_catalog())
    service = SimpleNamespace(cfg=Config(), models=manager, _captioner=None)

    def note() -> str:
        return DaybookService.caption_note(service)  # type: ignore[arg-type]

    assert "Install one in Settings › Models" in note()
    manager.import_file(pair[0], "vlm", name="tiny-vlm")
    assert "used from the next start" in note()
    service._captioner = object()  # the service made its captioner
    assert note().startswith("No caption yet: the vision model describes clips")
    service.cfg = Config().replace(video={"captions": False})
    assert "captions are off" in note()


def test_a_vision_model_installed_while_running_is_used_from_the_next_start(
        tmp_path: Path, pair: tuple[Path, Path]) -> None:
    """What Settings › Models does after a download: the service makes its captioner again when
    the vision models changed, and closes the old one once its pipeline has stopped."""
    from app.core.paths import DataPaths
    from app.pipeline.service import DaybookService

    service = DaybookService(Config().replace(memory={"summaries": False}),
                             DataPaths(tmp_path / "data").ensure(), background=False,
                             load_reasoner=False)
    try:
        assert service.captioner() is None  # the first pipeline with a camera: none installed
        assert not service.reload_captioner()  # nothing changed
        service.models.import_file(pair[0], "vlm", name="tiny-vlm")
        service.models.import_file(pair[1], "mmproj", name="tiny-mmproj")
        assert service.reload_captioner()
        assert "used from the next start" in service.caption_note()
        captioner = service.captioner()  # the next start
        assert isinstance(captioner, LlamaCaptioner) and captioner.name == "tiny-vlm (llama.cpp)"
        assert service.caption_note().startswith("No caption yet")
        assert captioner.caption(np.full((48, 64, 3), 128, np.uint8))  # it runs
        assert not service.reload_captioner()
        service.models.remove("tiny-mmproj")  # a vision model without its projector is not used
        assert service.reload_captioner()
        assert captioner.engine.alive  # the running pipeline may still be using it
        assert service.captioner() is None
        assert not captioner.engine.alive  # closed at the next start
    finally:
        service.close()


def test_a_caption_is_found_by_a_question_in_other_words(tmp_path: Path) -> None:
    """The caption a vision model wrote, embedded as text by the zero-download MiniLM: a question
    sharing none of its words finds the clip in the real Chroma store, among things heard, and
    the answer says what was seen. The clip is stored first without its caption, as the
    pipeline does, then again with it."""
    import threading

    from app.core.events import ClipClosed, SoundClass, UtteranceTranscribed
    from app.memory.chroma_store import ChromaMemoryStore
    from app.memory.embed_minilm import WHEEL_NAME, MiniLMEmbedder, wheel_model
    from app.memory.writer import MemoryWriter
    from app.reasoning.base import Request
    from app.reasoning.extractive import spoken_answer
    from app.reasoning.retrieve import Retriever

    t0 = 1_795_165_200.0
    store = ChromaMemoryStore(tmp_path / "chroma")
    embedder = MiniLMEmbedder(wheel_model(), WHEEL_NAME)
    frames = KeyFrameDir(tmp_path / "frames")
    writer = MemoryWriter(store, embedder, frames, batch_size=1, flush_interval_s=0,
                          emit=lambda _: None, abort=threading.Event())
    for i, text in enumerate(["the meeting moved to Thursday afternoon",
                              "remember to water the tomato plants",
                              "my sister calls on Sunday evenings"]):
        writer.handle(UtteranceTranscribed(id=f"utt-{i}", text=text, t0_s=t0 + 60 * i,
                                           t1_s=t0 + 60 * i + 3, sound=SoundClass.SPEECH,
                                           backend="test"))
    clip = ClipClosed(id="clip-1", t0_s=t0 + 300, t1_s=t0 + 305, n_frames=16,
                      key_frame=np.full((48, 64, 3), 120, np.uint8),
                      global_vector=np.ones(256, np.float32) / 16)
    writer.handle(clip)
    writer.handle(ClipClosed(**{**clip.__dict__, "caption": "a man holding a red coffee mug",
                                "update": True}))
    writer.finish()
    assert writer.kept == 0 and store.count()["clip"] == 1

    retriever = Retriever(store, embedder, frames, Config().reasoning)
    found, _ = retriever.retrieve("what cup was I using?")
    assert found and found[0].moment.id == "clip-1", [(c.moment.id, c.score) for c in found]
    answer = spoken_answer(Request(question="what cup was I using?", citations=found,
                                   scope=None, now_s=t0 + 600))
    assert "I saw a man holding a red coffee mug." in answer, answer
