"""Search candidates: the inspector's row that makes one of the selected block's parameters hold a set of
candidates (``block-builder search`` tries them), and the Search panel's row for the training settings; each
change one undo step kept in the project."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from .text import esc

SEARCHABLE = ("int", "float", "choice", "bool", "pair")


class CandidatesEditor(QWidget):
    """Candidates for the parameters of one block, or (``training``) for the training settings (``train.lr``)."""

    def __init__(self, doc, training: bool = False, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.training = training
        self.block_id = None
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.RichText)
        self.param = QComboBox()
        self.param.setObjectName("candidates_param")
        self.values = QLineEdit()
        self.values.setObjectName("candidates_values")
        self.values.setPlaceholderText("candidates, e.g. 4, 6, 8 (empty: none)")
        self.values.setToolTip("A set of values for the search to try (block-builder search); the block keeps its "
                               "current value")
        self.set_button = QPushButton("Set candidates")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #C62828")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.param)
        row.addWidget(self.values, 1)
        row.addWidget(self.set_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 0, 0)
        lay.addWidget(self.title)
        lay.addLayout(row)
        lay.addWidget(self.message)
        self.param.currentIndexChanged.connect(self._show_values)
        if training:  # the training settings' candidates, wherever they were set (the Train or Search panel)
            doc.analysed.connect(lambda _a: self._show_values())
            doc.graph_replaced.connect(lambda _g: self.show_block("train"))
        self.set_button.clicked.connect(self.apply)
        self.values.returnPressed.connect(self.apply)

    def show_block(self, block_id) -> None:
        self.block_id = block_id
        self.message.clear()
        g = self.doc.graph
        if self.training:
            from builder.search.space import SETTINGS
            params = list(SETTINGS)
        elif block_id is None or block_id not in g or g.block(block_id).spec is None:
            self.hide()
            return
        else:
            from builder.search.space import STRUCTURE
            params = [p.name for p in g.block(block_id).spec.params if p.kind in SEARCHABLE] + list(STRUCTURE)
        keep = self.param.currentText()
        self.param.blockSignals(True)
        self.param.clear()
        self.param.addItems(params)
        if keep in params:
            self.param.setCurrentText(keep)
        self.param.blockSignals(False)
        self._show_values()
        self.show()

    def _show_values(self, *_):
        from builder.search.space import kept, shown
        have = {name.rpartition(".")[2]: v for name, v in kept(self.doc.graph).items()
                if name.rpartition(".")[0] == self.block_id}
        self.values.setText(", ".join(shown(v) for v in have.get(self.param.currentText(), [])))
        self.title.setText(("<b>Training settings to search</b>" if self.training else "<b>Search candidates</b>") + (
            "<br>" + "<br>".join(f"{esc(p)}: {esc(', '.join(shown(x) for x in v))}" for p, v in have.items())
            if have else "<br><span style='color:#607D8B'>none: block-builder search tries only what is marked</span>"))

    def apply(self) -> bool:
        from builder.search.space import SpaceError, choice
        name = f"{self.block_id}.{self.param.currentText()}"
        values = [v.strip() for v in self.values.text().split(",") if v.strip()]
        try:
            if values:
                choice(self.doc.graph, name, values)  # checked before the edit: one message, nothing changed
        except SpaceError as e:
            self.message.setText(str(e))
            return False
        from builder.search.space import set_choice
        self.message.clear()
        done = self.doc.push(f"Candidates for {name}" if values else f"No candidates for {name}",
                             lambda g: set_choice(g, name, values))
        self._show_values()
        return done
