"""The main window's banner: what is missing or failing, each problem under a key so that the
event saying it is fixed (a recovered engine, kept moments stored, a new start) takes it away."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.core.events import (
    EngineFailed,
    EngineRecovered,
    MomentsKept,
    SourceFailed,
    SourceLost,
    SourceRecovered,
)

# Key prefixes. Set-up notes (no camera, no models) and source failures belong to one start and
# are replaced by the next; an engine's failure stays until it recovers; kept moments until
# they are stored.
SETUP, SOURCE, ENGINE, KEPT, START = "setup:", "source:", "engine:", "kept", "start"


def missing_source_notes(has_audio: bool, has_video: bool, problems: list[str]) -> list[str]:
    """The set-up notes of a start: one line a missing source, saying what is lost and why (the
    source's own message without the command line's "(continuing without …)"), then the other
    problems."""
    notes, rest = [], list(problems)
    for present, what, lost, tail in ((has_audio, "microphone", "heard", " (continuing without audio)"),
                                      (has_video, "camera", "seen", " (continuing without video)")):
        if present:
            continue
        why = [p for p in rest if p.endswith(tail)]
        rest = [p for p in rest if p not in why]
        detail = "; ".join(p.removesuffix(tail) for p in why)
        notes.append(f"No {what}: nothing is {lost}" + (f" — {detail}." if detail else "."))
    return notes + rest


def failure_text(event: object) -> tuple[str, str | None] | None:
    """(key, text) for a failure event, text None when it says the problem is over; None for
    events that are not about failures."""
    if isinstance(event, SourceFailed):
        return f"{SOURCE}{event.source}", f"{event.source} stopped: {event.message}"
    if isinstance(event, SourceLost):
        return f"{SOURCE}{event.source}", (f"{event.source} lost ({event.message}); retrying: "
                                           "recording goes on as soon as it is back.")
    if isinstance(event, SourceRecovered):
        return f"{SOURCE}{event.source}", None
    if isinstance(event, EngineFailed):
        then = ("Restarting it; what it was working on is kept." if event.restarting
                else "It is not restarted: Daybook goes on without it.")
        return f"{ENGINE}{event.engine}", f"The {event.engine} failed: {event.message}. {then}"
    if isinstance(event, EngineRecovered):
        return f"{ENGINE}{event.engine}", None
    if isinstance(event, MomentsKept):
        if event.count <= 0:
            return KEPT, None
        where = "on disk" if event.journaled else "in memory only"
        n = f"{event.count} moment{'s' if event.count != 1 else ''}"
        detail = f" ({event.message})" if event.message else ""
        return KEPT, (f"{n} not stored yet: kept {where}, and stored as soon as the memory "
                      f"store answers again.{detail}")
    return None


class ProblemBanner(QFrame):
    """Lists the current problems; hidden when there are none. `demo_button` offers the demo
    recording."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet("#banner { background: #fff7e0; border: 1px solid #e8c66a;"
                           " border-radius: 6px; }")
        layout = QHBoxLayout(self)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.demo_button = QPushButton("Play the demo recording")
        layout.addWidget(self.text, 1)
        layout.addWidget(self.demo_button)
        self.problems: dict[str, str] = {}  # key → text, in the order reported
        self.hide()

    def report(self, text: str, key: str | None = None) -> None:
        self.problems[key or text] = text
        self._render()

    def clear(self, *prefixes: str) -> None:
        """Forget the problems whose keys start with any of `prefixes` (all, given none)."""
        keep = {k: v for k, v in self.problems.items()
                if prefixes and not k.startswith(prefixes)}
        if keep != self.problems:
            self.problems = keep
            self._render()

    def on_event(self, event: object) -> str | None:
        """Show or clear what a failure event says. Returns the key it touched, else None."""
        found = failure_text(event)
        if found is None:
            return None
        key, text = found
        if text is None:
            self.clear(key)
        else:
            self.report(text, key)
        return key

    def _render(self) -> None:
        if not self.problems:
            self.hide()
            return
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems.values())
        head = ("Daybook is not recording." if START in self.problems
                else "Daybook is running with what it has.")
        hint = ""
        missing_input = any(k.startswith((SETUP, SOURCE)) for k in self.problems)
        self.demo_button.setVisible(missing_input)  # the demo stands in for missing input only
        if missing_input:
            hint = ("Connect a camera or microphone (Settings → Devices), download better "
                    "models (Settings → Models), or play the demo recording to see the "
                    "timeline fill and ask questions right away.")
        self.text.setText(f"<b>{head}</b><ul style='margin:4px 0'>{items}</ul>{hint}")
        self.show()
