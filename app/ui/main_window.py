"""The main window: live preview, transcript, conversation, status bar; timeline as a tab."""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QFrame,
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
    AnswerStarted,
    FramePreviewed,
    RecordingPaused,
    RecordingResumed,
    SourceEnded,
    SourceFailed,
    SpeechEnded,
    SpeechStarted,
    UtteranceTranscribed,
    WorkerFailed,
)
from app.core.timefmt import local_day, local_dt
from app.models.selection import describe_choices
from app.pipeline.service import DaybookService
from app.reasoning.base import Answer
from app.ui.bridge import EventBridge
from app.ui.transcript import TranscriptModel

log = logging.getLogger(__name__)
ICON = Path(__file__).resolve().parents[2] / "resources" / "daybook.svg"


@dataclass
class Exchange:
    question: str
    answer: str = ""
    done: bool = False
    citations: list[Any] = field(default_factory=list)
    spoken: bool = False  # heard through the microphone (addressed by the wake name)


class MainWindow(QMainWindow):
    """Draws what the service reports. All pipeline events arrive through one bridge signal."""

    demoRequested = Signal()

    def __init__(self, service: DaybookService, config_path: Path | None = None) -> None:
        super().__init__()
        self.service = service
        self.config_path = config_path
        self.setWindowTitle("Daybook")
        if ICON.exists():
            self.setWindowIcon(QIcon(str(ICON)))
        self.resize(1280, 800)
        self.frames_shown = 0
        self.problems: list[str] = []
        self.exchanges: dict[int, Exchange] = {}
        self._choices: dict[str, str] | None = None
        self._process = psutil.Process()
        self._process.cpu_percent(None)

        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        self.bridge = EventBridge(service.bus, self)
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
        # Retention runs now and then daily, off the GUI thread.
        self._retention_timer = QTimer(self)
        self._retention_timer.timeout.connect(self._run_retention)
        self._retention_timer.start(24 * 3600 * 1000)
        QTimer.singleShot(2000, self._run_retention)

    # --- layout --------------------------------------------------------------------------------

    def _build_live(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet("#banner { background: #fff7e0; border: 1px solid #e8c66a;"
                                  " border-radius: 6px; }")
        banner_layout = QHBoxLayout(self.banner)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.demo_button = QPushButton("Play the demo recording")
        self.demo_button.clicked.connect(self.demoRequested.emit)
        banner_layout.addWidget(self.banner_text, 1)
        banner_layout.addWidget(self.demo_button)
        self.banner.hide()
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
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        row.addWidget(self.question, 1)
        row.addWidget(self.ask_button)
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
        self.demo_action.triggered.connect(self.demoRequested.emit)
        for action in (self.pause_action, self.incognito_action, self.settings_action,
                       self.demo_action):
            bar.addAction(action)
            self.addAction(action)  # shortcuts work whichever tab is shown

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.state_label = QLabel()
        self.models_label = QLabel()
        self.cpu_label = QLabel()
        self.backlog_label = QLabel()
        self.dropped_label = QLabel()
        sb.addWidget(self.state_label)
        sb.addWidget(self.models_label, 1)
        for w in (self.cpu_label, self.backlog_label, self.dropped_label):
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
        if isinstance(event, FramePreviewed):
            self._show_frame(event.image)
        elif isinstance(event, SpeechStarted | SpeechEnded | UtteranceTranscribed):
            self.transcript.on_event(event)
            self.transcript_view.scrollToBottom()
        elif isinstance(event, AnswerStarted | AnswerChunk | AnswerFinished):
            self._on_answer(event)
        elif isinstance(event, RecordingPaused | RecordingResumed):
            self.refresh_status()
        elif isinstance(event, SourceFailed):
            self.report_problem(f"{event.source} stopped: {event.message}")
        elif isinstance(event, WorkerFailed):
            self.statusBar().showMessage(f"{event.worker}: {event.message}", 8000)
        elif isinstance(event, SourceEnded):
            self.refresh_status()

    def _show_frame(self, image: np.ndarray) -> None:
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

    def _on_answer(self, event: Any) -> None:
        ex = self.exchanges.setdefault(event.question_id, Exchange(getattr(event, "question", "")))
        if isinstance(event, AnswerStarted):
            ex.spoken = event.spoken
        elif isinstance(event, AnswerChunk):
            ex.answer += event.text
        elif isinstance(event, AnswerFinished):
            answer: Answer = event.answer  # type: ignore[assignment]
            ex.answer, ex.citations, ex.done = answer.text, answer.citations, True
        self._render_conversation()

    def _render_conversation(self) -> None:
        parts = []
        for ex in self.exchanges.values():
            who = "You (said):" if ex.spoken else "You:"
            parts.append(f"<p><b>{who}</b> {html.escape(ex.question)}</p>")
            if not ex.done:
                text = html.escape(ex.answer) or "<i>thinking…</i>"
                parts.append(f"<p><b>Daybook:</b> {text.replace(chr(10), '<br>')}</p>")
                continue
            head = html.escape(ex.answer.splitlines()[0]) if ex.answer else ""
            lines = [f"<p><b>Daybook:</b> {head}</p>"]
            if ex.citations:
                lines.append("<ul>")
                for c in ex.citations:
                    m = c.moment
                    when = f"{local_dt(m.t0_s):%a %H:%M:%S}"
                    what = (f"heard \u201c{html.escape(m.text)}\u201d" if m.kind == "utterance"
                            and m.text else "saw a scene" if m.kind == "clip"
                            else f"[{html.escape(m.sound)}]")
                    lines.append(f'<li><a href="moment:{m.id}">{when}</a> — {what}</li>')
                lines.append("</ul>")
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
        self.refresh_status()

    def _config_saved(self, cfg: Any) -> None:
        # Settings that need no restart take effect now (devices and folders need one).
        self.service.cfg = cfg
        self._run_retention()
        self.incognito_action.setText(f"Incognito {cfg.privacy.incognito_minutes} min")

    def _run_retention(self) -> None:
        import threading

        threading.Thread(target=self.service.apply_retention, name="retention",
                         daemon=True).start()

    def report_problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)
        self._render_banner()

    def show_first_run(self, problems: list[str]) -> None:
        for p in problems:
            self.report_problem(p)

    def hide_banner_if_running(self) -> None:
        if self.service.pipeline is not None:
            self.problems = []
            self.banner.hide()

    def _render_banner(self) -> None:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        self.banner_text.setText(
            "<b>Daybook is running with what it has.</b><ul style='margin:4px 0'>"
            f"{items}</ul>Connect a camera or microphone (Settings → Devices), download better "
            "models (Settings → Models), or play the demo recording to see the timeline fill "
            "and ask questions right away.")
        self.banner.show()

    def _set_rec(self, state: str) -> None:
        text, colour = {"recording": ("\u25cf REC", "#e53935"), "paused": ("\u275a\u275a PAUSED",
                        "#f9a825"), "idle": ("\u25cb IDLE", "#9e9e9e")}[state]
        self.rec.setText(text)
        self.rec.setStyleSheet(f"color: {colour}; background: rgba(0,0,0,140); padding: 3px 7px;"
                               " border-radius: 4px; font-weight: bold;")
        self.rec.adjustSize()

    def refresh_status(self) -> None:
        status = self.service.status()
        running = status["running"]
        if not status["recording"]:
            until = status["paused_until_s"]
            left = f" ({max(0, (until - time.time()) / 60):.0f} min left)" if until else ""
            self.state_label.setText(f"Paused{left}: nothing is stored")
            self._set_rec("paused")
            self.pause_action.setText("Resume recording")
        else:
            self.state_label.setText("Recording" if running else "Not recording")
            self._set_rec("recording" if running else "idle")
            self.pause_action.setText("Pause recording")
        backends = status["backends"]
        if self._choices is None:  # reads the models index: not every second on this thread
            self._choices = describe_choices(self.service.models)
        choices = self._choices
        asr = backends.get("asr") or choices["asr"].split("  (")[0]
        vad = backends.get("vad") or choices["vad"].split("  (")[0]
        self.models_label.setText(f"ASR: {asr} · VAD: {vad} · answers: "
                                  f"{choices['llm'].split('  (')[0]}")
        self.cpu_label.setText(f"CPU {self._process.cpu_percent(None):.0f}%")
        counters = status["counters"]
        self.backlog_label.setText(f"ASR backlog {counters.get('asr.depth', 0)}")
        self.dropped_label.setText(f"dropped frames {counters.get('video.dropped', 0)}")

    def closeEvent(self, event: Any) -> None:
        self._status_timer.stop()
        if self.tray is not None:
            self.tray.hide()
        super().closeEvent(event)
