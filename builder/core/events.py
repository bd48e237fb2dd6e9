"""A tiny plain-Python signal: the Qt layer subscribes to the model without the model knowing Qt."""
from __future__ import annotations


class Signal:
    __slots__ = ("_slots",)

    def __init__(self):
        self._slots: list = []

    def connect(self, fn) -> None:
        self._slots.append(fn)

    def disconnect(self, fn) -> None:
        self._slots.remove(fn)

    def emit(self, *args) -> None:
        for fn in list(self._slots):
            fn(*args)
