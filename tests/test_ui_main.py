"""The main window, offscreen: against a pipeline on fakes, and against the real pipeline on a
generated recording (ffmpeg video, espeak-ng speech, Silero VAD, Moonshine, Chroma)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QTimer, QUrl

from app.capture.fakes import ArrayAudioSource, ListFrameSource
from app.core.config import Config
from app.core.paths import DataPaths
from app.perception.fakes import EnergyVad, ScriptedTranscriber, always_speech
from app.pipeline.service import DaybookService
from app.reasoning.base import Prompt, Request
from app.ui.app import replay_sources
from app.ui.main_window import MainWindow
from tests import mediagen, pulse
from tests.conftest import Media
from tests.test_clips import _scene
from tests.test_vad import _signal

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    service = DaybookService(Config(), DataPaths(tmp_path / "data").ensure())
    win = MainWindow(service, tmp_path / "config.toml")
    win.show()  # not qtbot.addWidget: it would close and delete the window before `close`
    yield win
    close(qtbot, win)


def close(qtbot, win: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """As the app quits: the window closes at once, then the pipeline drains and the service
    closes behind it (`control.closed`)."""
    win.close()
    qtbot.waitUntil(lambda: win.control.is_closed, timeout=60_000)
    win.deleteLater()


def _fake_run(win: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    now = time.time() - 10
    audio = ArrayAudioSource(_signal([(1.0, 2.0), (4.0, 5.0)], 7.0), start_s=now)
    video = ListFrameSource([_scene(1)] * 4 + [_scene(2)] * 4, fps=1.0, start_s=now)
    win.start_recording("fakes", lambda: (audio, video, []), vad=EnergyVad(),
                        classify_sound=always_speech,  # the test signal is tones
                        transcriber=ScriptedTranscriber(["the spare key is under the blue pot",
                                                         "lunch at noon with Sam"]))
    qtbot.waitUntil(lambda: win.control.state == "running", timeout=10_000)


def test_preview_transcript_and_streamed_answer_on_fakes(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    _fake_run(window, qtbot)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=10_000)
    assert window.preview.pixmap() is not None and not window.preview.pixmap().isNull()
    qtbot.waitUntil(lambda: [r.text for r in window.transcript.rows if r.state == "done"]
                    == ["the spare key is under the blue pot", "lunch at noon with Sam"],
                    timeout=10_000)
    shown = [window.transcript.data(window.transcript.index(i)) for i in range(2)]
    assert "the spare key" in shown[0]
    qtbot.waitUntil(lambda: window.service.pipeline is not None
                    and window.service.pipeline.wait(0.01), timeout=10_000)
    chunks: list[str] = []
    from app.core.events import AnswerChunk

    window.bridge.received.connect(lambda e: chunks.append(e.text)
                                   if isinstance(e, AnswerChunk) else None)
    qid = window.ask("where is the spare key?")
    assert "thinking" in window.conversation.toPlainText()
    qtbot.waitUntil(lambda: window.exchanges[qid].done, timeout=10_000)
    # The extractive answer streams a sentence at a time (a token at a time from a language
    # model: test_answer_streams_in_and_stop_interrupts_it).
    assert chunks and "".join(chunks).strip() == window.exchanges[qid].answer
    text = window.conversation.toPlainText()
    assert "where is the spare key?" in text and "the spare key is under the blue pot" in text
    assert "answered by extractive (no language model)" in text
    citation = window.exchanges[qid].citations[0]
    # Clicking the citation opens that moment in the timeline.
    with qtbot.waitSignal(window.timeline.momentOpened, timeout=5000) as opened:
        window._open_link(QUrl(f"moment:{citation.moment.id}"))
    assert opened.args == [citation.moment.id]
    assert window.tabs.currentWidget() is window.timeline


def test_a_question_said_to_the_wake_name_is_answered(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Instruction prediction: an utterance addressed to "Daybook" is a question. The answer
    streams into the conversation marked as said, and never cites the question itself."""
    now = time.time() - 10
    audio = ArrayAudioSource(_signal([(1.0, 2.0), (4.0, 5.0), (7.0, 8.0)], 10.0), start_s=now)
    window.service.start(audio=audio, video=None, vad=EnergyVad(), classify_sound=always_speech,
                         transcriber=ScriptedTranscriber(
        ["the spare key is under the blue pot", "lunch at noon with Sam",
         "hey daybook where is the spare key"]))
    qtbot.waitUntil(lambda: any(ex.done for ex in window.exchanges.values()), timeout=15_000)
    [ex] = window.exchanges.values()
    assert ex.spoken and ex.question == "where is the spare key"
    cited = [c.moment.text for c in ex.citations]
    assert cited[0] == "the spare key is under the blue pot"
    assert "hey daybook where is the spare key" not in cited  # remembered, but not an answer
    text = window.conversation.toPlainText()
    assert "You (said): where is the spare key" in text
    assert "the spare key is under the blue pot" in text
    # Only the addressed utterance was taken as a question; all three are remembered.
    qtbot.waitUntil(lambda: window.service.store.count()["utterance"] == 3, timeout=10_000)
    assert len(window.exchanges) == 1


def test_pause_withholds_everything_and_resume_restores(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.toggle_pause()
    assert not window.service.is_recording
    assert window.state_label.text().startswith("Paused")
    assert "PAUSED" in window.rec.text()
    _fake_run(window, qtbot)
    qtbot.waitUntil(lambda: window.service.pipeline is not None
                    and window.service.pipeline.wait(0.01), timeout=10_000)
    assert window.service.store.count() == {"utterance": 0, "clip": 0, "summary": 0}
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=5000)  # the preview still shows
    window.toggle_pause()
    assert (window.service.is_recording and "REC" in window.rec.text()) or "IDLE" in window.rec.text()


def test_incognito_resumes_by_itself(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.service.pause(minutes=0.01, reason="incognito")  # 0.6 s
    assert not window.service.is_recording
    qtbot.waitUntil(lambda: window.service.is_recording, timeout=5000)
    qtbot.waitUntil(lambda: "Paused" not in window.state_label.text(), timeout=3000)


def test_first_run_without_devices_explains_and_offers_the_demo(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    said = ["no microphone 'default' is available (No input device matching 'default') "
            "(continuing without audio)", "no camera at index 0 (continuing without video)"]
    window.start_recording("live", lambda: (None, None, said))  # as open_live_sources says it
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.control.state == "idle",
                    timeout=10_000)
    assert window.state_label.text() == "Not recording" and "IDLE" in window.rec.text()
    # One line a missing source: what is lost, and why.
    assert window.problems == [
        "No microphone: nothing is heard — no microphone 'default' is available (No input "
        "device matching 'default').", "No camera: nothing is seen — no camera at index 0."]
    text = window.banner_text.text()
    assert "rough" not in text  # nothing downloaded, but the neural models from wheels are used
    assert window.demo_button.isVisible()


def test_the_banner_says_when_hearing_is_down_to_the_rough_fallbacks(
        window: MainWindow, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.models import selection

    monkeypatch.setattr(selection, "best_wheel_model", lambda role: (None, {}, "not installed"))
    window.start_recording("live", lambda: (None, None, []))
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.control.state == "idle",
                    timeout=10_000)
    text = window.banner_text.text()
    assert "No neural model for speech recognition: using the last fallback, pocketsphinx" in text, text
    assert "No neural model for voice detection" in text, text


def test_re_embedding_progress_shows_in_the_status_bar(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.core.events import MemoryReembedding

    window.service.bus.emit(MemoryReembedding("minilm-l6-int8", 450, 1000))
    qtbot.waitUntil(lambda: "re-indexing 450 of 1000" in window.statusBar().currentMessage(),
                    timeout=5_000)
    assert "(45 %); search works meanwhile" in window.statusBar().currentMessage()
    window.service.bus.emit(MemoryReembedding("minilm-l6-int8", 1000, 1000, finished=True))
    qtbot.waitUntil(lambda: "searched by meaning" in window.statusBar().currentMessage(),
                    timeout=5_000)


class FakeSlowReasoner:
    """A language model that says a word every 50 ms for up to 5 s, stopping when told."""

    name = "fake slow model (tests)"

    def prepare(self, request: Request) -> Prompt:
        return Prompt(request, [], request.citations)

    def stream(self, prompt: Prompt, cancel: threading.Event) -> Iterator[str]:
        for i in range(100):
            if cancel.wait(0.05):
                return
            yield f"word{i} " + ("\n" if i % 10 == 9 else "")

    def close(self) -> None:
        pass


def test_answer_streams_in_and_stop_interrupts_it(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    """The pieces show as they are generated, on all their lines; Stop (and Escape in the
    question field) ends the answer within a second, marked as stopped."""
    from PySide6.QtCore import Qt

    window.service._reasoner = FakeSlowReasoner()  # type: ignore[assignment]
    assert not window.stop_button.isEnabled()
    qid = window.ask("what did I say?")
    qtbot.waitUntil(lambda: "word12" in window.conversation.toPlainText(), timeout=5_000)
    text = window.conversation.toPlainText()
    assert not window.exchanges[qid].done  # streamed in before the answer finished
    assert "word0" in text and "word10" in text and "thinking" not in text  # every line
    assert window.stop_button.isEnabled()
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    t0 = time.perf_counter()
    qtbot.waitUntil(lambda: window.exchanges[qid].done, timeout=5_000)
    assert time.perf_counter() - t0 < 1.0
    ex = window.exchanges[qid]
    assert ex.interrupted and "word12" in ex.answer and "word99" not in ex.answer
    assert ex.reasoner == FakeSlowReasoner.name
    text = window.conversation.toPlainText()
    assert "— stopped" in text and f"answered by {FakeSlowReasoner.name}" in text
    assert not window.stop_button.isEnabled()
    # Escape in the question field stops the next one.
    qid = window.ask("and then?")
    qtbot.waitUntil(lambda: "word2" in window.exchanges[qid].answer, timeout=5_000)
    qtbot.waitUntil(window.stop_button.isEnabled, timeout=1_000)
    qtbot.keyClick(window.question, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.exchanges[qid].done, timeout=5_000)
    assert window.exchanges[qid].interrupted and not window.stop_button.isEnabled()


def test_a_finished_answer_shows_whole_with_its_note_and_reasoner(window: MainWindow,
                                                                   qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.core.events import AnswerChunk, AnswerFinished, AnswerStarted
    from app.memory.base import Moment
    from app.reasoning.base import Answer, Citation

    moment = Moment("u1", "utterance", time.time() - 60, time.time() - 58,
                    "I lent my blue umbrella to Peter.")
    bus = window.service.bus
    bus.emit(AnswerStarted(7, "where is my umbrella?", False, "a model"))
    bus.emit(AnswerChunk(7, "First line.\nSecond"))
    qtbot.waitUntil(lambda: "Second" in window.conversation.toPlainText(), timeout=5_000)
    assert "First line.\nSecond" in window.conversation.toPlainText()
    note = "cannot reach the language model server at 127.0.0.1:8080 (connection refused)"
    bus.emit(AnswerFinished(7, Answer(
        "where is my umbrella?", "You said: I lent my blue umbrella to Peter.\nThat was today.",
        [Citation(moment, 0.9, None)], reasoner="extractive (no language model)", note=note)))
    qtbot.waitUntil(lambda: window.exchanges[7].done, timeout=5_000)
    text = window.conversation.toPlainText()
    assert "You said: I lent my blue umbrella to Peter.\nThat was today." in text
    assert f"The language model did not answer: {note}. This answer is from memory." in text
    assert "heard \u201cI lent my blue umbrella to Peter.\u201d" in text  # the citation
    assert text.rstrip().endswith("answered by extractive (no language model)")
    assert "stopped" not in text


def test_speaking_and_a_cut_off_answer_show_in_the_window(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.core.events import (
        AnswerFinished,
        AnswerSpoken,
        AnswerStarted,
        BargeIn,
        SpeakingStarted,
        VoiceReady,
    )
    from app.reasoning.base import Answer

    bus = window.service.bus
    # No sound server here: the voice opened at the start says text only, and why.
    qtbot.waitUntil(lambda: window.voice_label.text() == "Voice: text only", timeout=10_000)
    assert "speaker" in window.voice_label.toolTip()
    bus.emit(VoiceReady("pyttsx3 (espeak)", True))
    qtbot.waitUntil(lambda: window.voice_label.text() == "Voice: pyttsx3 (espeak)", timeout=5000)
    bus.emit(AnswerStarted(41, "where is my passport", True, "extractive"))
    text = "At 9:00 you said: I left my passport in the kitchen drawer."
    bus.emit(AnswerFinished(41, Answer("where is my passport", text, reasoner="extractive")))
    bus.emit(SpeakingStarted(41, time.monotonic()))
    qtbot.waitUntil(lambda: "Speaking" in window.voice_label.text(), timeout=5000)
    assert window.stop_button.isEnabled()  # the answer is done, its speech is not
    bus.emit(BargeIn(41, time.time()))
    bus.emit(AnswerSpoken(41, "At 9:00 you said: I left…", True, 0.002))
    qtbot.waitUntil(lambda: window.exchanges[41].said is not None, timeout=5000)
    shown = window.conversation.toPlainText()
    assert "you spoke over it" in shown
    assert "Said out loud before it stopped: \u201cAt 9:00 you said: I left…\u201d" in shown
    assert window.voice_label.text() == "Voice: pyttsx3 (espeak)"
    assert not window.stop_button.isEnabled()


def test_the_status_bar_names_what_answers(window: MainWindow) -> None:
    assert "answers: extractive · " in window.models_label.text()
    assert "answers: extractive (no language model)" in window.models_label.toolTip()
    window.service._reasoner = FakeSlowReasoner()  # type: ignore[assignment]
    window.refresh_status()
    assert "answers: fake slow model · " in window.models_label.text()
    assert window.models_label.text().endswith("captions: none")
    assert window.models_label.toolTip().endswith("captions: none (no vision model)")


def test_settings_say_what_answers(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Settings › Models › In use: the language model's row names what answers now."""
    from app.ui.settings import ModelsTab
    from app.ui.tasks import TaskGroup

    service = window.service
    tab = ModelsTab(service, service.cfg, TaskGroup(), lambda _title, _question: True)
    qtbot.addWidget(tab)
    assert "extractive answers (no language model)  (no model installed" in tab.in_use.text()
    service._reasoner = FakeSlowReasoner()  # type: ignore[assignment]
    tab.refresh()
    assert FakeSlowReasoner.name in tab.in_use.text()


def test_a_language_model_failure_stays_in_the_banner_across_starts(window: MainWindow,
                                                                    qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.core.events import EngineFailed, EngineRecovered

    window.service.bus.emit(EngineFailed("language model", "cannot reach the language model "
                                         "server at 127.0.0.1:8080 (connection refused)"))
    qtbot.waitUntil(window.banner.isVisible, timeout=5_000)
    text = window.banner_text.text()
    assert "The language model does not answer: cannot reach" in text
    assert "answered from memory" in text
    assert window.demo_button.isHidden()  # the demo is for missing input, not a missing model
    window.start_recording("fakes", lambda: (None, None, []))  # a new start keeps it
    qtbot.waitUntil(lambda: window.control.state == "idle", timeout=10_000)
    assert "The language model does not answer" in window.banner_text.text()
    window.service.bus.emit(EngineRecovered("language model"))
    qtbot.waitUntil(lambda: "language model" not in window.banner_text.text(), timeout=5_000)


def test_saved_settings_reach_the_service(window: MainWindow) -> None:
    cfg = window.service.cfg.replace(assistant={"wake_name": "Jarvis"}, reasoning={"top_k": 3})
    window._config_saved(cfg)
    assert window.service.cfg is cfg
    assert window.service.retriever.wake_name == "Jarvis" and window.service.retriever.cfg.top_k == 3
    assert "“Jarvis”" in window.conversation.toPlainText()  # the welcome names it


def test_real_pipeline_on_a_generated_recording(window: MainWindow, media: Media, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.start_recording("replay", lambda: replay_sources(str(media.video), str(media.wav)))
    qtbot.waitUntil(lambda: window.state_label.text() == "Recording", timeout=20_000)
    assert not window.banner.isVisible()
    qtbot.waitUntil(lambda: window.frames_shown >= 5, timeout=15_000)
    qtbot.waitUntil(lambda: any("breakfast" in r.text for r in window.transcript.rows),
                    timeout=20_000)
    qtbot.waitUntil(lambda: window.service.store.count()["utterance"] >= 1, timeout=10_000)
    qid = window.ask("what did I have for breakfast")
    qtbot.waitUntil(lambda: window.exchanges[qid].done, timeout=10_000)
    assert "breakfast" in window.conversation.toPlainText()
    assert window.models_label.text().startswith("ASR: moonshine")
    assert "memory: minilm-l6-int8" in window.models_label.text()  # recall by meaning, built in


# What must never run on the GUI thread: capture, VAD, recognition, the store, embedding,
# speech, the native libraries under them, and starting, draining or closing the pipeline.
PIPELINE_WORK = ("app.capture", "app.perception", "app.memory.chroma_store",
                 "app.memory.store_process", "app.memory.embed", "app.memory.writer",
                 "app.memory.journal", "app.memory.keyframes", "app.memory.integrate",
                 "app.memory.reembed", "app.speech", "app.core.engine", "app.pipeline.factory",
                 "app.pipeline.workers", "chromadb", "onnxruntime", "cv2", "webrtcvad",
                 "sounddevice")
SERVICE_WORK = {"start", "stop", "close", "open_voice"}  # DaybookService's blocking calls
BLOCKING_WAITS = {("threading", "join"), ("threading", "wait"),
                  ("concurrent.futures._base", "result"), ("time", "sleep")}


@contextmanager
def gui_thread_calls() -> Iterator[set[tuple[str, str]]]:
    """(module, function) of each Python call, and (module, name) of each native one, made on
    this thread (the GUI thread) inside the block."""
    calls: set[tuple[str, str]] = set()

    def note(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            calls.add((str(frame.f_globals.get("__name__")), frame.f_code.co_name))
        elif event == "c_call":
            calls.add((str(getattr(arg, "__module__", None)), str(getattr(arg, "__name__", ""))))

    sys.setprofile(note)  # this thread only
    try:
        yield calls
    finally:
        sys.setprofile(None)


def pipeline_work(calls: set[tuple[str, str]]) -> list[str]:
    return sorted(f"{m}.{f}" for m, f in calls if m.startswith(PIPELINE_WORK)
                  or (m == "app.pipeline.service" and f in SERVICE_WORK))


def test_gui_stays_responsive_while_ingesting_flat_out(window: MainWindow, media: Media,
                                                       qtbot, record_property) -> None:  # type: ignore[no-untyped-def]
    """While a recording is ingested as fast as it goes, the GUI thread only shows what the
    pipeline reports: it calls none of the pipeline's work, and the recogniser and Chroma (whose
    calls hold the GIL for tens to hundreds of ms) run in processes of their own. How long the
    event loop waited is printed here and measured against DESIGN.md's 30 ms target by
    `python bench/gui.py --only ingest`: a wall-clock bound in a test failed on a busy CI
    machine (109 ms) and here under two busy loops (80 ms) with nothing of Daybook's on the
    GUI thread."""
    import os

    from app.capture.audio_file import WavFileSource
    from app.capture.video import Cv2FrameSource
    from app.pipeline.workers import AsrWorker

    now = time.time()
    long_wav = media.dir / "long.wav"
    if not long_wav.exists():
        pcm = mediagen.read_wav(media.wav)
        mediagen.write_wav(long_wav, np.tile(pcm, 6))
    audio = WavFileSource(long_wav, start_s=now)  # not real time: as fast as it goes
    video = Cv2FrameSource(str(media.video), max_fps=5.0, start_s=now, realtime=True)
    from app.ui.app import favour_gui_thread, preload_pipeline_modules, settle_memory

    switch_interval_s = sys.getswitchinterval()
    favour_gui_thread()  # as run_gui does
    preload_pipeline_modules()
    settle_memory()  # as the app does after start-up
    pipe = window.service.start(audio=audio, video=video)
    settle_memory()  # as the app does once the pipeline runs
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    audio_capture = pipe.captures[0]
    asr = next(w for w in pipe.workers if isinstance(w, AsrWorker)).transcriber
    processes: dict[str, int | None] = {}

    def started() -> bool:  # the recogniser's child closes when the recording has been heard
        processes.update(recogniser=asr.engine.pid,  # type: ignore[union-attr]
                         store=window.service.store.engine.pid)  # type: ignore[attr-defined]
        return None not in processes.values()

    try:
        qtbot.waitUntil(started, timeout=60_000)
        with gui_thread_calls() as on_gui_thread:
            qtbot.waitUntil(lambda: not audio_capture.is_alive()
                            and pipe.counters()["asr.depth"] == 0
                            and pipe.counters()["audio.depth"] == 0, timeout=90_000)
    finally:
        timer.stop()
        sys.setswitchinterval(switch_interval_s)
    window.service.stop()
    gaps_ms = np.diff(ticks) * 1000
    worst = float(gaps_ms.max())
    record_property("gui_max_stall_ms", round(worst, 1))
    print(f"GUI event loop during flat-out ingest: {len(ticks)} ticks, max gap {worst:.1f} ms, "
          f"p99 {np.percentile(gaps_ms, 99):.1f} ms")
    assert window.frames_shown >= 3  # the preview kept updating
    assert window.service.store.count()["utterance"] >= 3
    assert ("app.ui.main_window", "on_event") in on_gui_thread  # what the pipeline reported
    worked = pipeline_work(on_gui_thread)
    assert not worked, f"the GUI thread ran the pipeline's work: {worked}"
    assert os.getpid() not in processes.values(), processes


def test_gui_never_waits_for_start_switch_stop_or_quit(window: MainWindow, media: Media,  # type: ignore[no-untyped-def]
                                                      qtbot, record_property) -> None:
    """The real pipeline (pocketsphinx in its child process, Chroma in its own): starting it
    (waits for the recogniser's process), "Play demo" while recording (drains the old pipeline,
    starts a new one), stopping and quitting all run off the GUI thread: its event loop keeps
    ticking throughout."""
    from PySide6.QtCore import Qt

    from app.ui.app import favour_gui_thread, preload_pipeline_modules, settle_memory

    switch_interval_s = sys.getswitchinterval()
    favour_gui_thread()  # as run_gui does before the window shows
    preload_pipeline_modules()
    settle_memory()
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    calls_s: dict[str, float] = {}

    def ask(name: str, call) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        call()
        calls_s[name] = time.perf_counter() - t0

    def recording(key: str) -> bool:
        return window.control.key == key and window.state_label.text() == "Recording"

    def sources():  # type: ignore[no-untyped-def]
        return replay_sources(str(media.video), str(media.wav))

    timer.start(5)
    try:
        with gui_thread_calls() as on_gui_thread:
            ask("start", lambda: window.start_recording("live", sources))
            assert "STARTING" in window.rec.text()
            qtbot.waitUntil(lambda: recording("live"), timeout=20_000)
            qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=10_000)
            ask("switch", lambda: window.start_recording("demo", sources))  # as "Play demo"
            qtbot.waitUntil(lambda: recording("demo"), timeout=30_000)
            qtbot.wait(500)
            ask("stop", window.control.stop)
            qtbot.waitUntil(lambda: window.control.state == "idle", timeout=30_000)
            ask("quit", window.close)
            qtbot.waitUntil(lambda: window.control.is_closed, timeout=30_000)
    finally:
        timer.stop()
        sys.setswitchinterval(switch_interval_s)
    gaps_ms = np.diff(ticks) * 1000
    worst = float(gaps_ms.max())
    record_property("gui_max_stall_control_ms", round(worst, 1))
    print(f"GUI event loop while starting, switching, stopping and quitting: {len(ticks)} ticks, "
          f"max gap {worst:.1f} ms; calls {({k: round(v * 1000, 1) for k, v in calls_s.items()})} ms")
    # Before, the GUI thread waited 1.5 s for a start and 2.3 s for a switch. Now each is asked
    # of the control thread and nothing on the GUI thread waits: how long its event loop waited
    # is printed here and measured against the 30 ms target by `bench/gui.py --only control`.
    assert ("app.ui.pipeline_control", "start") in on_gui_thread  # asked, on this thread
    worked = pipeline_work(on_gui_thread)
    assert not worked, f"the GUI thread ran the pipeline's work: {worked}"
    waits = sorted(f"{m}.{f}" for m, f in on_gui_thread if (m, f) in BLOCKING_WAITS)
    assert not waits, f"the GUI thread waited: {waits}"


@pytest.mark.pulse
@pytest.mark.skipif(not pulse.available(), reason=pulse.SKIP_REASON)
def test_speaking_to_the_window_through_a_real_microphone(qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          media: Media) -> None:
    """The window started the way `python main.py` starts it (live sources from the config: the
    PortAudio default microphone, here PulseAudio's pipe source, and a camera that is a video
    file), told something, then asked about it out loud with the wake name, then by typing."""
    import tempfile


    # The default wake name, said to the default recogniser (Moonshine): the transcript is what it
    # heard ("Hey, Book, where are my keys?"), the question comes from its name check.
    speech = mediagen.conversation([(0.5, "I left my keys in the kitchen drawer"),
                                    (5.0, "Daybook, where are my keys?")], 9.0)
    with tempfile.TemporaryDirectory(prefix="daybook-pulse-") as d, \
            pulse.PulseServer(Path(d)) as server:
        cfg = Config().replace(capture={"camera": str(media.video), "microphone": "default"})
        assert cfg.assistant.wake_name == "Daybook"
        service = DaybookService(cfg, DataPaths(tmp_path / "data").ensure())
        win = MainWindow(service, tmp_path / "config.toml")
        win.show()
        try:
            win.start_live()  # the devices open off the GUI thread
            qtbot.waitUntil(lambda: win.state_label.text() == "Recording", timeout=20_000)
            assert not win.banner.isVisible(), win.problems
            qtbot.waitUntil(lambda: win.frames_shown >= 3, timeout=10_000)  # the camera shows
            server.feed(speech)
            qtbot.waitUntil(lambda: any(ex.done for ex in win.exchanges.values()),
                            timeout=40_000)
            heard = [r.text for r in win.transcript.rows if r.text]
            [said] = win.exchanges.values()
            qid = win.ask("where did I leave my keys?")
            qtbot.waitUntil(lambda: win.exchanges[qid].done, timeout=10_000)
            typed = win.exchanges[qid]
            answer = win.conversation.toPlainText()
            sources = [c.source.name for c in service.pipeline.captures] if service.pipeline else []
            # The spoken question's answer was said out loud (the typed one was not: "spoken").
            qtbot.waitUntil(lambda: said.said is not None, timeout=30_000)
            voice = win.voice_label.text()
        finally:
            close(qtbot, win)
    print(f"heard through the microphone: {heard}; answered: {answer!r}")
    assert len(heard) == 2 and "keys" in heard[0] and "drawer" in heard[0], heard
    assert "keys" in heard[1], heard
    assert said.spoken and said.question == "where are my keys", said.question
    cited = [c.moment.text for c in said.citations]
    assert cited and cited[0] == heard[0], cited  # what was said before, not the question
    assert heard[1] not in cited
    assert f"You (said): {said.question}" in answer
    assert typed.citations[0].moment.text == heard[0]  # a typed question finds it too
    assert sources == ["microphone default", f"file {media.video.name}"], sources
    assert said.said == said.answer.strip() and not said.said_cut, (said.said, said.answer)
    assert typed.said is None
    assert voice.startswith("Voice: pyttsx3"), voice


def test_the_camera_says_live_reconnecting_or_none(window: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from app.core.events import FramePreviewed, SourceLost, SourceRecovered

    bus = window.service.bus
    assert window.camera_label.text() == "Camera: none"  # no camera on this machine
    stream = "stream rtsp://192.168.1.20/live"
    bus.emit(FramePreviewed(np.zeros((48, 64, 3), np.uint8), time.time()))
    qtbot.waitUntil(lambda: window.camera_label.text() == "Camera: live", timeout=5000)
    bus.emit(SourceLost(stream, "the stream rtsp://192.168.1.20/live stopped delivering frames"))
    qtbot.waitUntil(lambda: window.camera_label.text() == "Camera: reconnecting…", timeout=5000)
    assert "stopped delivering frames" in window.camera_label.toolTip()
    assert "Reconnecting" in window.preview.text()
    assert "retrying" in window.banner.text.text()
    bus.emit(SourceLost("microphone default", "unplugged"))  # the microphone is not the camera
    bus.emit(SourceRecovered(stream))
    qtbot.waitUntil(lambda: window.camera_label.text() == "Camera: live", timeout=5000)
    window.control.key = "demo"  # as "Play demo" sets it: its frames are not the camera's
    bus.emit(FramePreviewed(np.zeros((48, 64, 3), np.uint8), time.time()))
    qtbot.waitUntil(lambda: window.camera_label.text() == "Camera: the demo recording",
                    timeout=5000)
