"""The small pieces several panels share: a dataset chooser (editable: a folder may be typed), a validation
image's number, and a form that scrolls in a short dock."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLayout, QScrollArea, QSpinBox, QWidget


def dataset_box() -> QComboBox:
    from builder.train.settings import DATASETS, default_dataset
    box = QComboBox()
    box.setEditable(True)  # an image folder is typed
    box.addItems(list(DATASETS))
    box.setCurrentText(default_dataset())
    return box


def image_box() -> QSpinBox:
    box = QSpinBox()
    box.setRange(0, 10_000_000)
    box.setPrefix("image #")
    return box


def scrolled(content) -> QScrollArea:
    """``content`` (a layout or a widget) in a frameless area that scrolls up and down: a short dock scrolls its
    form, and the canvas keeps its room."""
    if isinstance(content, QLayout):
        widget = QWidget()
        widget.setLayout(content)
        content = widget
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(content)
    area.setFrameShape(QScrollArea.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    return area
