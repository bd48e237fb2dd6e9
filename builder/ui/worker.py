"""Work that runs the network off the window's thread: a Python thread, polled from the event loop (Qt objects
never cross threads); the outcome, or the exception it raised, reaches ``done`` on the window's thread, and
``tick`` (if given) runs at every poll while it works (to show its progress)."""
from __future__ import annotations

import threading
import time

from PySide6.QtCore import QTimer


class Job:
    def __init__(self, owner, name: str, work, done, poll_ms: int = 20, tick=None):
        self.outcome: dict = {}
        self.started = time.perf_counter()
        self.seconds = None

        def run():
            try:
                self.outcome["value"] = work()
            except Exception as e:  # noqa: BLE001  shown by ``done``, never raised into the event loop
                self.outcome["error"] = e
        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()
        self.timer = QTimer(owner)

        def poll():
            if self.thread.is_alive():
                if tick is not None:  # say how far it is (from what the worker wrote)
                    tick()
                return
            self.timer.stop()
            self.timer.deleteLater()
            self.seconds = time.perf_counter() - self.started
            done(self.outcome.get("value"), self.outcome.get("error"))
        self.timer.timeout.connect(poll)
        self.timer.start(poll_ms)

    @property
    def running(self) -> bool:
        return self.thread.is_alive() or self.seconds is None
