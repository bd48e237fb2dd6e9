"""The small choosers several panels share: a dataset (editable: a folder may be typed) and a validation image's
number."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QSpinBox


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
