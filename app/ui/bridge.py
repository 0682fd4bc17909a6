"""Events from worker threads into the GUI thread.

The pipeline's EventBus calls listeners in the emitting worker's thread. `EventBridge` is a QObject
living in the GUI thread; its listener only emits a signal, which Qt queues across threads, so
connected slots run in the GUI thread. Never connect a lambda that touches widgets to the bus.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from app.pipeline.runtime import EventBus


class EventBridge(QObject):
    received = Signal(object)

    def __init__(self, bus: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bus = bus
        self._listener = self._from_any_thread
        bus.subscribe(self._listener)
        # A destroyed bridge must stop listening, or every later event hits a dead object.
        self.destroyed.connect(lambda *_: bus.unsubscribe(self._listener))

    def _from_any_thread(self, event: Any) -> None:
        try:
            self.received.emit(event)
        except RuntimeError:  # the C++ object is gone (window closed while a worker emitted)
            self._bus.unsubscribe(self._listener)
