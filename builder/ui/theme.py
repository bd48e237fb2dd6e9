"""Colours and sizes of the canvas (one place, so light and dark themes stay consistent)."""
from PySide6.QtGui import QColor

from builder.core.layout import BLOCK_H, BLOCK_W  # (re-exported) one block size: the canvas and free-space placement

CATEGORY_COLOURS = {
    "Input & output": "#546E7A",
    "Convolution": "#1E88E5",
    "Pooling": "#43A047",
    "Normalisation": "#8E24AA",
    "Activation": "#F4511E",
    "Regularisation": "#757575",
    "Reshape": "#6D4C41",
    "Dense": "#3949AB",
    "Merge": "#00897B",
    "Inception modules": "#D81B60",
    "Inception branches": "#EC407A",
    "Grid reductions": "#5E35B1",
    "Heads": "#00838F",
    "Residual & NIN": "#7CB342",
    "Groups": "#6A1B9A",
}
PALETTE_ORDER = ["Inception modules", "Inception branches", "Grid reductions", "Heads", "Residual & NIN", "Groups",
                 "Convolution", "Pooling", "Normalisation", "Activation", "Regularisation", "Dense", "Reshape",
                 "Merge", "Input & output"]
ERROR = QColor("#E53935")
WARNING = QColor("#FFB300")
PORT_R = 6.0


def colour(category: str) -> QColor:
    return QColor(CATEGORY_COLOURS.get(category, "#78909C"))
SELECTED = QColor("#FFB300")
WIRE = QColor("#78909C")
CANVAS_BACKGROUND = QColor("#F5F7FA")
# plot series: training and validation in colours apart in hue and lightness (and in line style)
SERIES = {"train": "#1E88E5", "validation": "#D81B60"}
MESSAGE_COLOURS = {"info": "#263238", "warning": "#8D5A00", "error": "#B71C1C"}
# the canvas's text and parts (canvas.py, interaction.py, overlays.py)
BODY = QColor("#FFFFFF")          # a block's body, and text on a coloured header
TEXT = QColor("#37474F")          # a block's kind line
SHAPE_TEXT = QColor("#263238")    # its output shape
COST_TEXT = QColor("#607D8B")     # its params and MACs
PORT_EDGE = QColor("#455A64")
PORT_FILL = QColor("#ECEFF1")
WIRE_LABEL = QColor("#455A64")
ADVICE = QColor("#1565C0")        # the advisor's badge
DRAG_WIRE = QColor("#1E88E5")     # a wire being dragged
MINIMAP_FRAME = QColor("#FB8C00")
# the compare view (compare_view.py): a block's body by what became of it; the unchanged ones are dimmed
DIFF = {"added": QColor("#C8E6C9"), "removed": QColor("#FFCDD2"), "changed": QColor("#FFE0B2")}
DIFF_EDGE = {"added": QColor("#2E7D32"), "removed": QColor("#C62828"), "changed": QColor("#EF6C00")}
DIFF_DIMMED = 0.35

CANDIDATES = QColor("#6A1B9A")  # the badge of a block whose parameters hold search candidates
