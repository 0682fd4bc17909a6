"""The main window: live preview, transcript, conversation, status bar; timeline as a tab.

The GUI thread never waits: the pipeline is started, switched and stopped by `PipelineControl`
(on its own thread, one request at a time), store work runs on `BackgroundTasks`, and closing
the window hides it at once while the pipeline drains behind it (`control.closed` follows).
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QIcon, QImage, QKeyEvent, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QTabWidget,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.core.events import (
    AnswerChunk,
    AnswerFinished,
    AnswerSpoken,
    AnswerStarted,
    BargeIn,
    EngineFailed,
    EngineRecovered,
    FramePreviewed,
    MemoryReembedding,
    MomentsKept,
    RecordingPaused,
    RecordingResumed,
    SourceEnded,
    SourceFailed,
    SourceLost,
    SourceRecovered,
    SpeakingStarted,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
    VoiceReady,
    WorkerFailed,
)
from app.core.timefmt import local_day, local_dt
from app.models.selection import describe_choices
from app.pipeline.answer import LLM_ENGINE
from app.pipeline.service import DaybookService
from app.reasoning.base import Answer
from app.reasoning.extractive import summary_span
from app.resources import ICON
from app.ui import pipeline_control as pc
from app.ui.banner import ENGINE, SETUP, SOURCE, START, ProblemBanner, missing_source_notes
from app.ui.bridge import EventBridge
from app.ui.pipeline_control import OpenSources, PipelineControl, Started
from app.ui.tasks import BackgroundTasks
from app.ui.transcript import TranscriptModel

log = logging.getLogger(__name__)

LIVE, RECONNECTING, NO_CAMERA, CAMERA_OFF = "live", "reconnecting…", "none", "off"
DEMO, PLAYING = "the demo recording", "a recording"  # frames that are not the camera's
VIDEO_KINDS = ("camera ", "stream ", "file ")  # how the frame sources name themselves


def is_video_source(event: object) -> bool:
    """A source event about the camera (or a video stream or file), not the microphone."""
    return (isinstance(event, SourceLost | SourceRecovered | SourceFailed | SourceEnded)
            and event.source.startswith(VIDEO_KINDS))


RENDER_MS = 40  # the conversation is redrawn at most this often while an answer streams
NOTE_STYLE = "color:#808080; font-size:small"


@dataclass
class Exchange:
    question: str
    answer: str = ""
    done: bool = False
    citations: list[Any] = field(default_factory=list)
    spoken: bool = False  # heard through the microphone (addressed by the wake name)
    reasoner: str = ""  # what answers (AnswerStarted), then what did (AnswerFinished)
    interrupted: bool = False  # stopped before its end (Stop, Escape, a newer question)
    note: str | None = None  # why the language model did not answer, when it did not
    speaking: bool = False  # its speech is playing
    said: str | None = None  # what was said out loud of it, once its speech ended
    said_cut: bool = False  # its speech was cut off (barge-in, Stop)
    barged: bool = False  # the user spoke over it


def _brief(name: str) -> str:
    """A backend's name without what it says in brackets: "silero (silero_vad.onnx)" → "silero"."""
    return re.sub(r"\s*\(.*\)$", "", name) or name


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" where the window is too narrow for it (a QLabel would
    be cut off mid-word)."""

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: Any) -> None:
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        QPainter(self).drawText(rect, int(self.alignment()), text)

class MainWindow(QMainWindow):
    """Draws what the service reports. All pipeline events arrive through one bridge signal;
    the pipeline is started and stopped through `control`."""

    def __init__(self, service: DaybookService, config_path: Path | None = None) -> None:
        super().__init__()
        self.service = service
        self.config_path = config_path
        self.setWindowTitle("Daybook")
        if ICON.exists():
            self.setWindowIcon(QIcon(str(ICON)))
        self.resize(1280, 800)
        self.frames_shown = 0
        self.exchanges: dict[int, Exchange] = {}
        self._voice = VoiceReady("starting", False, "the speaker is being opened")
        self._choices: dict[str, str] | None = None
        self._vision_changes = 0  # new starts of the live pipeline for new vision models
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        # Pieces of an answer arrive a token at a time: the conversation is redrawn at most
        # every RENDER_MS meanwhile, not once per token.
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_MS)
        self._render_timer.timeout.connect(self._render_conversation)

        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        self.bridge = EventBridge(service.bus, self)
        self.control = PipelineControl(service, self)
        self.control.stateChanged.connect(self.refresh_status)
        self.control.started.connect(self._started)
        self.control.startFailed.connect(self._start_failed)
        self.control.stopped.connect(self.refresh_status)
        self.tabs.addTab(self._build_live(), "Now")
        from app.ui.timeline import TimelineWindow

        self.timeline = TimelineWindow(service, bridge=self.bridge)
        self.timeline.show_day(local_day(time.time()))  # kept live even while on another tab
        self.tabs.addTab(self.timeline, "Timeline")
        self._build_actions()
        self._build_status()
        self.tray = self._build_tray()
        self.bridge.received.connect(self.on_event)
        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self.refresh_status)
        self._status_timer.start(1000)
        self.refresh_status()
        # The speaker and voice open in the background (VoiceReady tells how it went).
        threading.Thread(target=service.open_voice, name="open-voice", daemon=True).start()
        # Retention runs now and then daily, off the GUI thread.
        self._retention_timer = QTimer(self)
        self._retention_timer.timeout.connect(self._run_retention)
        self._retention_timer.start(24 * 3600 * 1000)
        QTimer.singleShot(2000, self._run_retention)

    # --- layout --------------------------------------------------------------------------------

    def _build_live(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        self.banner = ProblemBanner()
        self.banner_text = self.banner.text
        self.demo_button = self.banner.demo_button
        self.demo_button.clicked.connect(self.play_demo)
        outer.addWidget(self.banner)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.preview = QLabel("No camera")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(QSize(480, 300))
        self.preview.setStyleSheet("background: #1e1e1e; color: #9a9a9a; font-size: 15px;")
        self.rec = QLabel(self.preview)
        self.rec.move(10, 8)
        self._set_rec("idle")
        left_layout.addWidget(self.preview, 3)
        left_layout.addWidget(QLabel("<b>Heard</b>"))
        self.transcript = TranscriptModel(self)
        self.transcript_view = QListView()
        self.transcript_view.setModel(self.transcript)
        self.transcript_view.setUniformItemSizes(True)
        self.transcript_view.setWordWrap(True)
        left_layout.addWidget(self.transcript_view, 2)
        split.addWidget(left)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(QLabel("<b>Ask Daybook</b>"))
        self.conversation = QTextBrowser()
        self.conversation.setOpenLinks(False)
        self.conversation.anchorClicked.connect(self._open_link)
        self.conversation.setHtml(self._welcome_html())
        right_layout.addWidget(self.conversation, 1)
        row = QHBoxLayout()
        self.question = QLineEdit()
        self.question.setPlaceholderText("What did I have for breakfast?  (Enter to ask)")
        self.question.returnPressed.connect(self.ask)
        self.question.installEventFilter(self)  # Escape stops the answer
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer being given (Esc)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_answer)
        row.addWidget(self.question, 1)
        row.addWidget(self.ask_button)
        row.addWidget(self.stop_button)
        right_layout.addLayout(row)
        split.addWidget(right)
        split.setSizes([700, 560])
        outer.addWidget(split, 1)
        return page

    def _build_actions(self) -> None:
        bar = QToolBar("Controls")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.pause_action = QAction("Pause recording", self)
        self.pause_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.pause_action.triggered.connect(self.toggle_pause)
        minutes = self.service.cfg.privacy.incognito_minutes
        self.incognito_action = QAction(f"Incognito {minutes} min", self)
        self.incognito_action.setShortcut(QKeySequence("Ctrl+Shift+I"))
        self.incognito_action.triggered.connect(self.incognito)
        self.settings_action = QAction("Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.open_settings)
        self.demo_action = QAction("Play demo", self)
        self.demo_action.triggered.connect(self.play_demo)
        for action in (self.pause_action, self.incognito_action, self.settings_action,
                       self.demo_action):
            bar.addAction(action)
            self.addAction(action)  # shortcuts work whichever tab is shown

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.state_label = QLabel()
        self.models_label = ElidedLabel()
        self.cpu_label = QLabel()
        self.backlog_label = QLabel()
        self.dropped_label = QLabel()
        sb.addWidget(self.state_label)
        sb.addWidget(self.models_label, 1)
        self.voice_label = QLabel("Voice: starting…")
        self.camera_label = QLabel()
        self._set_camera(NO_CAMERA)
        for w in (self.camera_label, self.voice_label, self.cpu_label, self.backlog_label,
                  self.dropped_label):
            sb.addPermanentWidget(w)

    def _build_tray(self) -> QSystemTrayIcon | None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = QSystemTrayIcon(self.windowIcon(), self)
        menu = QMenu()
        menu.addAction(self.pause_action)
        menu.addAction(self.incognito_action)
        show = menu.addAction("Show Daybook")
        show.triggered.connect(self.showNormal)
        tray.setContextMenu(menu)
        tray.setToolTip("Daybook")
        tray.show()
        return tray

    # --- events from the pipeline (GUI thread) -------------------------------------------------

    def on_event(self, event: Any) -> None:
        if is_video_source(event):
            self._on_camera(event)
        if isinstance(event, FramePreviewed):
            self._show_frame(event.image)
        elif isinstance(event, SpeechStarted | SpeechEnded | UtteranceTranscribed):
            self.transcript.on_event(event)
            self.transcript_view.scrollToBottom()
        elif isinstance(event, AnswerStarted | AnswerChunk | AnswerFinished | SpeakingStarted
                        | AnswerSpoken | BargeIn):
            self._on_answer(event)
        elif isinstance(event, VoiceReady):
            self._on_voice(event)
        elif isinstance(event, RecordingPaused | RecordingResumed):
            self.refresh_status()
        elif isinstance(event, SourceFailed | SourceLost | SourceRecovered | EngineFailed
                        | EngineRecovered | MomentsKept):
            self._on_failure(event)
        elif isinstance(event, MemoryReembedding):
            self._on_reembedding(event)
        elif isinstance(event, WorkerFailed):
            self.statusBar().showMessage(f"{event.worker}: {event.message}", 8000)
        elif isinstance(event, SourceEnded):
            self.refresh_status()

    def _on_failure(self, event: Any) -> None:
        """Failures stay in the banner until the event saying they are over (or a new start)."""
        if isinstance(event, EngineFailed) and event.engine == LLM_ENGINE:
            # Not restarted, but tried again with every question; until then answers come
            # from memory (the extractive answer).
            self.banner.report(f"The language model does not answer: {event.message}. "
                               "Questions are answered from memory without it; it is tried "
                               "again with each question.", f"{ENGINE}{LLM_ENGINE}")
        else:
            self.banner.on_event(event)
        if isinstance(event, EngineRecovered):
            self.statusBar().showMessage(f"The {event.engine} works again.", 8000)
        elif isinstance(event, MomentsKept) and event.count == 0:
            self.statusBar().showMessage("All kept moments are stored.", 8000)
        elif isinstance(event, EngineFailed):
            self.statusBar().showMessage(f"The {event.engine} failed: {event.message}", 8000)

    def _on_reembedding(self, event: MemoryReembedding) -> None:
        """The memory is given vectors from a new embedder: progress in the status bar (search
        works meanwhile, with the old vectors)."""
        if event.finished:
            self.statusBar().showMessage(
                f"Memory: every moment is now searched by meaning ({event.embedder}).", 10_000)
        else:
            percent = 100 * event.done // max(1, event.total)
            self.statusBar().showMessage(
                f"Memory: re-indexing {event.done} of {event.total} moments by meaning "
                f"({percent} %); search works meanwhile.", 5_000)

    def _set_camera(self, state: str, why: str = "") -> None:
        self.camera_state = state
        self.camera_label.setText(f"Camera: {state}")
        self.camera_label.setToolTip(why)

    def _on_camera(self, event: Any) -> None:
        """live / reconnecting… / none / off, in the status bar and over the preview."""
        if isinstance(event, SourceLost):
            self._set_camera(RECONNECTING, event.message)
            self.preview.clear()
            self.preview.setText(f"Camera lost: {event.message}\nReconnecting…")
        elif isinstance(event, SourceRecovered):
            self._set_camera(self._frames_from())
        elif isinstance(event, SourceFailed):
            self._set_camera(NO_CAMERA, event.message)
            self.preview.clear()
            self.preview.setText(f"No camera: {event.message}")
        elif isinstance(event, SourceEnded):
            self._set_camera(CAMERA_OFF, "not recording")
            self.preview.clear()
            self.preview.setText("Camera off")

    def _frames_from(self) -> str:
        """Where the preview's frames come from: the camera, live, or a recording played."""
        key = self.control.key
        return DEMO if key == "demo" else PLAYING if key.startswith("replay") else LIVE

    def _show_frame(self, image: np.ndarray) -> None:
        state = self._frames_from()
        if self.camera_state != state:
            self._set_camera(state)
        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        qimage = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.preview.setPixmap(QPixmap.fromImage(qimage).scaled(
            self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation))  # smooth scaling cost ~15 ms a frame
        self.frames_shown += 1

    # --- asking --------------------------------------------------------------------------------

    def ask(self, text: str | None = None) -> int | None:
        question = (text if isinstance(text, str) else self.question.text()).strip()
        if not question:
            return None
        self.question.clear()
        qid = self.service.ask(question)
        self.exchanges[qid] = Exchange(question)
        self._render_conversation()
        return qid

    def stop_answer(self) -> bool:
        """Stop the answer being given or said (Stop, Escape); it ends marked as stopped."""
        return self.service.stop_answer() if self.stop_button.isEnabled() else False

    @property
    def answering(self) -> bool:
        """The last question asked (typed or said) is still being answered or said."""
        if not self.exchanges:
            return False
        last = self.exchanges[max(self.exchanges)]
        return not last.done or last.speaking

    @property
    def speaking(self) -> bool:
        return any(ex.speaking for ex in self.exchanges.values())

    def _on_voice(self, event: VoiceReady) -> None:
        self._voice = event
        if event.available:
            self.voice_label.setText(f"Voice: {event.name}")
            self.voice_label.setToolTip("Answers are said out loud; talk over one to stop it.")
        else:
            self.voice_label.setText("Voice: text only")
            self.voice_label.setToolTip(f"Answers are shown, not said: {event.reason}")
            self.statusBar().showMessage(f"Answers are shown, not said: {event.reason}", 10_000)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (watched is self.question and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape
                and self.stop_button.isEnabled()):
            self.stop_answer()
            return True
        return super().eventFilter(watched, event)

    def _on_answer(self, event: Any) -> None:
        ex = self.exchanges.setdefault(event.question_id, Exchange(getattr(event, "question", "")))
        if isinstance(event, AnswerChunk):
            ex.answer += event.text
            if not self._render_timer.isActive():
                self._render_timer.start()
            return
        if isinstance(event, AnswerStarted):
            ex.spoken, ex.reasoner = event.spoken, event.reasoner
        elif isinstance(event, SpeakingStarted):
            ex.speaking = True
            self.voice_label.setText("Speaking\u2026")
        elif isinstance(event, AnswerSpoken):
            ex.speaking, ex.said, ex.said_cut = False, event.said, event.interrupted
            if not self.speaking:
                self._on_voice(self._voice)
        elif isinstance(event, BargeIn):
            ex.barged = True
        elif isinstance(event, AnswerFinished):
            answer: Answer = event.answer  # type: ignore[assignment]
            ex.answer, ex.citations, ex.done = answer.text, answer.citations, True
            ex.reasoner, ex.interrupted, ex.note = answer.reasoner, answer.interrupted, answer.note
        self._render_conversation()

    def _render_conversation(self) -> None:
        self._render_timer.stop()
        self.stop_button.setEnabled(self.answering)
        parts = []
        for ex in self.exchanges.values():
            who = "You (said):" if ex.spoken else "You:"
            parts.append(f"<p><b>{who}</b> {html.escape(ex.question)}</p>")
            text = html.escape(ex.answer.strip()).replace("\n", "<br>")
            if not ex.done:
                parts.append(f"<p><b>Daybook:</b> {text or '<i>thinking…</i>'}</p>")
                continue
            if ex.interrupted or ex.said_cut:
                why = "you spoke over it" if ex.barged else "stopped"
                text += f" — <i>{why}</i>" if text else f"<i>{why}</i>"
            lines = [f"<p><b>Daybook:</b> {text}</p>"]
            if ex.said_cut:
                lines.append(f"<p style='{NOTE_STYLE}'>Said out loud before it stopped: "
                             f"\u201c{html.escape(ex.said or '')}\u201d</p>")
            if ex.note:
                lines.append(f"<p style='{NOTE_STYLE}'>The language model did not answer: "
                             f"{html.escape(ex.note)}. This answer is from memory.</p>")
            if ex.citations:
                lines.append("<ul>")
                for c in ex.citations:
                    m = c.moment
                    when = f"{local_dt(m.t0_s):%a %H:%M:%S}"
                    what = (f"heard \u201c{html.escape(m.text)}\u201d" if m.kind == "utterance"
                            and m.text else "saw a scene" if m.kind == "clip"
                            else f"summary of the {summary_span(m)}: {html.escape(m.text)}"
                            if m.kind == "summary" else f"[{html.escape(m.sound)}]")
                    lines.append(f'<li><a href="moment:{m.id}">{when}</a> — {what}</li>')
                lines.append("</ul>")
            if ex.reasoner:
                lines.append(f"<p style='{NOTE_STYLE}'>answered by {html.escape(ex.reasoner)}"
                             "</p>")
            parts.append("".join(lines))
        self.conversation.setHtml("".join(parts) or self._welcome_html())
        bar = self.conversation.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _open_link(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("moment:"):
            self.open_moment(text.split(":", 1)[1])

    def open_moment(self, moment_id: str) -> None:
        self.tabs.setCurrentWidget(self.timeline)
        self.timeline.open_moment(moment_id)

    def _welcome_html(self) -> str:
        return ("<p style='color:#666'>Ask about anything Daybook saw or heard: "
                "<i>what did I have for breakfast?</i>, <i>what happened this morning?</i>, "
                "<i>when is the meeting?</i> Type it below, or say it starting with "
                f"“{html.escape(self.service.cfg.assistant.wake_name)}”. Answers list "
                "the remembered moments; click one to open it in the timeline.</p>")

    # --- starting and stopping (never waits: see PipelineControl) -----------------------------

    def start_recording(self, key: str, open_sources: OpenSources, **backends: Any) -> bool:
        """Open sources and run the pipeline on them, replacing the one running, off the GUI
        thread. The window says "starting…" until `DaybookService.start()` has returned, then
        "Recording". `key` names what is recorded ("live …" with the devices, "demo",
        "replay"); False when not taken (the same start was already asked for or is running, or
        the app is closing)."""
        service = self.service

        def open_and_check() -> pc.Sources:  # on the control thread
            audio, video, problems = open_sources()
            notes = missing_source_notes(audio is not None, video is not None, problems)
            # The neural models that ship in wheels need no download; only the last fallbacks
            # (pocketsphinx, webrtcvad) are worth a word.
            from app.models.selection import choose

            for role, what in (("asr", "speech recognition"), ("vad", "voice detection")):
                choice = choose(service.models, role)
                if choice.source == "embedded":
                    notes.append(f"No neural model for {what}: using the last fallback, "
                                 f"{choice.using}.")
            return audio, video, notes

        taken = self.control.start(key, open_and_check, **backends)
        self.refresh_status()
        return taken

    def start_live(self, why: str = "") -> bool:
        """Record from the microphone and camera in the settings (`why`: a new start on the same
        devices, for that reason)."""
        from app.ui.app import live_sources

        cfg = self.service.cfg
        # The devices are in the key: the same ones again are not reopened, new ones are.
        key = f"live {cfg.capture.microphone!r} {cfg.capture.camera!r}" + (f" ({why})" if why
                                                                           else "")
        return self.start_recording(key, lambda: live_sources(cfg))

    def play_demo(self) -> bool:
        """Replay the demo recording through the real pipeline, as if live."""
        from app.resources import DEMO_DIR
        from app.ui.app import replay_sources

        return self.start_recording("demo", lambda: replay_sources(
            str(DEMO_DIR / "demo.mp4"), str(DEMO_DIR / "demo.wav")))

    def _started(self, started: Started) -> None:
        # A new pipeline, new engines; the language model is not the pipeline's: its failure
        # stays until it answers again.
        self.banner.clear(START, SETUP, SOURCE)
        for key in [k for k in self.banner.problems if k.startswith(ENGINE)]:
            if key != f"{ENGINE}{LLM_ENGINE}":
                self.banner.clear(key)
        if not (started.audio and started.video):  # else the notes are about models only
            for i, note in enumerate(started.problems):
                self.banner.report(note, f"{SETUP}{i}")
        self.refresh_status()

    def _start_failed(self, key: str, message: str) -> None:
        self.banner.clear(START, SETUP, SOURCE)
        self.banner.report(f"Could not start recording: {message}", START)
        self.refresh_status()

    # --- controls ------------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        if self.service.is_recording:
            self.service.pause()
        else:
            self.service.resume()

    def incognito(self) -> None:
        self.service.pause(self.service.cfg.privacy.incognito_minutes, reason="incognito")

    def open_settings(self) -> None:
        from app.ui.settings import SettingsDialog

        dialog = SettingsDialog(self.service, self.config_path or Path("config.toml"), self)
        dialog.configSaved.connect(self._config_saved)
        dialog.exec()
        dialog.deleteLater()
        self._choices = None  # models may have been downloaded, imported or removed
        BackgroundTasks.instance().run(self, self._reload_models, self._models_reloaded)
        self.refresh_status()

    def _reload_models(self) -> bool:
        """Off the GUI thread: a new language model is loaded; True when the vision models
        changed (`DaybookService.reload_captioner`)."""
        self.service.reload_reasoner()
        return self.service.reload_captioner()

    def _models_reloaded(self, vision_changed: bool) -> None:
        # The live camera is captioned by the new vision model from a new start (a recording
        # being played goes on; the next start uses it).
        if vision_changed and self.control.key.startswith("live"):
            self._vision_changes += 1
            self.start_live(f"vision models changed {self._vision_changes}")
        self.refresh_status()

    def _config_saved(self, cfg: Any) -> None:
        # Settings take effect now (folders need a restart): new devices switch the pipeline
        # to them, unless a recording given on the command line is playing.
        devices_changed = cfg.capture != self.service.cfg.capture
        self.service.apply_config(cfg)  # the wake name, search, the reasoner, summaries
        self._run_retention()
        if not self.exchanges:
            self.conversation.setHtml(self._welcome_html())  # it names the wake name
        self.incognito_action.setText(f"Incognito {cfg.privacy.incognito_minutes} min")
        if devices_changed and not self.control.key.startswith("replay"):
            self.start_live()

    def _run_retention(self) -> None:
        BackgroundTasks.instance().run(self, self.service.apply_retention, lambda _n: None)

    @property
    def problems(self) -> list[str]:
        """What the banner lists."""
        return list(self.banner.problems.values())

    def report_problem(self, text: str, key: str | None = None) -> None:
        self.banner.report(text, key)

    def _set_rec(self, state: str) -> None:
        text, colour = {"recording": ("\u25cf REC", "#e53935"), "paused": ("\u275a\u275a PAUSED",
                        "#f9a825"), "idle": ("\u25cb IDLE", "#9e9e9e"),
                        "starting": ("\u25cc STARTING\u2026", "#64b5f6")}[state]
        self.rec.setText(text)
        self.rec.setStyleSheet(f"color: {colour}; background: rgba(0,0,0,140); padding: 3px 7px;"
                               " border-radius: 4px; font-weight: bold;")
        self.rec.adjustSize()

    def refresh_status(self, *_: Any) -> None:
        status = self.service.status()
        control = self.control.state
        # "Recording" only once start() has returned: the sources are open and running.
        running = status["running"] and control in (pc.RUNNING, pc.IDLE)
        doing = {pc.STARTING: "Starting\u2026", pc.STOPPING: "Stopping\u2026",
                 pc.CLOSING: "Closing\u2026"}.get(control)
        if not status["recording"]:
            until = status["paused_until_s"]
            left = f" ({max(0, (until - time.time()) / 60):.0f} min left)" if until else ""
            self.state_label.setText(f"Paused{left}: nothing is stored"
                                     + (f" \u00b7 {doing.lower()}" if doing else ""))
            self._set_rec("paused")
            self.pause_action.setText("Resume recording")
        else:
            self.state_label.setText(doing or ("Recording" if running else "Not recording"))
            self._set_rec("starting" if control == pc.STARTING
                          else "recording" if running else "idle")
            self.pause_action.setText("Pause recording")
        backends = status["backends"]
        if self._choices is None:  # reads the models index: not every second on this thread
            self._choices = describe_choices(self.service.models)
        choices = self._choices
        asr = backends.get("asr") or choices["asr"].split("  (")[0]
        vad = backends.get("vad") or choices["vad"].split("  (")[0]
        counters = status["counters"]
        vision = backends.get("vision")
        captions = (f"{vision} ({counters.get('captions.dropped', 0)} skipped)" if vision
                    else "none (no vision model)")
        parts = [("ASR", asr), ("VAD", vad), ("memory", self.service.embedder.name),
                 ("answers", self.service.reasoner.name), ("captions", captions)]
        # In a line: the names alone (what is in brackets would not fit); whole in the tooltip.
        self.models_label.setText(" · ".join(f"{k}: {_brief(v)}" for k, v in parts))
        self.models_label.setToolTip("\n".join(f"{k}: {v}" for k, v in parts))
        self.cpu_label.setText(f"CPU {self._process.cpu_percent(None):.0f}%")
        self.backlog_label.setText(f"ASR backlog {counters.get('asr.depth', 0)}")
        self.dropped_label.setText(f"dropped frames {counters.get('video.dropped', 0)}")

    def closeEvent(self, event: Any) -> None:
        """The window goes at once; the pipeline drains and the service closes behind it
        (`control.closed` says when: the app quits then). Nothing captured is lost."""
        if self.control.state not in (pc.CLOSING, pc.CLOSED):
            for timer in (self._status_timer, self._retention_timer, self._render_timer):
                timer.stop()
            if self.tray is not None:
                self.tray.hide()
            self.bridge.received.disconnect(self.on_event)
            self.timeline.stop_updates()
            self.control.close()
        super().closeEvent(event)
