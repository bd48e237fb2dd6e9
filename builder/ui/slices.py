"""Long work on the window's thread in slices: a generator is advanced for at most ``budget_ms`` at a time, and
the event loop runs between slices (paints, the progress dialog, its Cancel), so the window never stops
answering while it builds 20,000 canvas items."""
from __future__ import annotations

import time

from PySide6.QtCore import QTimer

SLICE_MS = 30.0  # a slice, the indexing and the paint after it stay well under the 100 ms a user notices


class Slices:
    """Run ``steps`` (an iterator; each item is one small piece of work, it may yield ``(done, total)``) in slices
    of ``budget_ms``; ``progress(done, total)`` after each slice that reported one, ``done()`` when it ends.
    ``after()`` runs after each slice (work that Qt would otherwise do for all the slices at once, later).
    :meth:`finish` runs the rest at once (a test, or a caller that must have the result now)."""

    def __init__(self, owner, steps, done=None, progress=None, budget_ms: float = SLICE_MS, after=None):
        self.steps, self.done_fn, self.progress_fn, self.after_fn = iter(steps), done, progress, after
        self.budget = budget_ms / 1e3
        self.running = True
        self.last = None
        self.timer = QTimer(owner)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self._slice)
        self.timer.start()

    def _slice(self):
        end = time.perf_counter() + self.budget
        for step in self.steps:
            if step is not None:
                self.last = step
            if time.perf_counter() >= end:
                if self.after_fn is not None:
                    self.after_fn()
                if self.progress_fn is not None and self.last is not None:
                    self.progress_fn(*self.last)
                self.timer.start()
                return
        self._end()

    def finish(self):
        """Do what is left now."""
        if self.running:
            self.timer.stop()
            for _ in self.steps:
                pass
            self._end()

    def _end(self):
        self.running = False
        self.timer.stop()
        if self.after_fn is not None:
            self.after_fn()
        if self.done_fn is not None:
            self.done_fn()
