"""One image followed through the network: beside every block on the canvas, its output for that image (the
strongest channels as a thumbnail, its shape and value range); and a block's channels as a grid, the strongest
first, for the inspector."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QFont, QImage, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsSimpleTextItem

from blocks import fmt_shape

from . import theme

THUMB = 44  # pixels of a block's thumbnail


def _grey(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return ((a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)).astype(np.uint8)


def _image(a: np.ndarray) -> QImage:
    a = np.ascontiguousarray(a)
    img = QImage(a.data, a.shape[1], a.shape[0], a.shape[1], QImage.Format_Grayscale8)
    return img.copy()  # own the pixels (the array goes)


def grid(maps: np.ndarray, channels, cols: int, cell: int, gap: int = 2) -> QPixmap:
    """``channels`` of a C x H x W output, each scaled to its own range, in a grid of ``cols`` columns."""
    rows = max(1, -(-len(channels) // cols))
    out = np.full((rows * (cell + gap) - gap, cols * (cell + gap) - gap), 235, np.uint8)
    for i, ch in enumerate(channels):
        m = _grey(maps[ch])
        reps = max(1, cell // max(m.shape))
        m = np.kron(m, np.ones((reps, reps), np.uint8))[:cell, :cell]
        r, c = divmod(i, cols)
        out[r * (cell + gap):r * (cell + gap) + m.shape[0], c * (cell + gap):c * (cell + gap) + m.shape[1]] = m
    return QPixmap.fromImage(_image(out))


def thumbnail(out: np.ndarray) -> QPixmap:
    """A block's output at a glance: its four strongest channels (2 x 2), or a vector as a strip of cells."""
    from builder.train.explain import strongest
    if out.ndim == 3 and out.shape[1] * out.shape[2] > 1:  # a map (a 1 x 1 one reads better as a vector)
        top = strongest(out, 4)
        return grid(out, top, 2, THUMB // 2 - 1)
    v = out.reshape(-1)[:64]
    strip = np.kron(_grey(v)[None, :], np.ones((8, max(1, THUMB // max(len(v), 1))), np.uint8))
    return QPixmap.fromImage(_image(strip))


def describe(out: np.ndarray) -> str:
    return f"{fmt_shape(out.shape)}\n{float(out.min()):.3g} .. {float(out.max()):.3g}"


class Thumbnails:
    """The followed image's outputs beside the canvas's blocks (children of their items: they move with them)."""

    def __init__(self, scene):
        self.scene = scene
        self.items: dict = {}

    def show(self, outputs: dict | None) -> None:
        self.clear()
        if not outputs:
            return
        font = QFont()
        font.setPointSizeF(7.0)
        for bid, out in outputs.items():
            item = self.scene.blocks.get(bid)
            if item is None:
                continue
            pic = QGraphicsPixmapItem(thumbnail(out), item)
            pic.setPos(theme.BLOCK_W + 6, 2)
            text = QGraphicsSimpleTextItem(describe(out), item)
            text.setFont(font)
            text.setBrush(QColor("#455A64"))
            text.setPos(theme.BLOCK_W + 6 + pic.pixmap().width() + 4, 2)  # a vector's strip may be wider
            pic.setToolTip(f"{bid}: its output for the followed image")
            self.items[bid] = (pic, text)

    def clear(self) -> None:
        for pic, text in self.items.values():
            for it in (pic, text):
                try:
                    if it.scene() is not None:
                        it.scene().removeItem(it)
                except RuntimeError:  # its block was deleted, and the thumbnail with it
                    pass
        self.items = {}
