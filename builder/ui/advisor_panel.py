"""The Advisor panel: the design principles as findings on blocks, and refactors with their cost shown first."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QSpinBox, QSplitter, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from builder.insight import advisor

from .text import esc as _esc

ROLE = Qt.UserRole + 3
SHORT = {1: "avoid bottlenecks", 2: "high-dim. local processing", 3: "reduce before aggregating",
         4: "balance width and depth"}


class AdvisorPanel(QWidget):
    block_selected = Signal(str)
    findings_changed = Signal(list)
    compare_requested = Signal(object)  # an advisor.Preview: show it before and after in the compare view

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.findings: list = []
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Finding", "Principle", "Block"])
        self.tree.setColumnWidth(0, 440)
        self.tree.setColumnWidth(1, 190)
        self.legend = QLabel("Checks against the four design principles of the Inception-v3 paper; a blue <b>i</b> "
                             "on a block marks a finding. Select a finding to read its principle, or a refactor "
                             "(↳) to see its cost before applying it.")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setStyleSheet("color: #546E7A")
        self.tree.setWordWrap(True)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.RichText)
        self.detail.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.channels = QSpinBox()
        self.channels.setRange(1, 65536)
        self.channels.setValue(16)
        self.channels.setToolTip("Channels of an inserted 1x1 reduction")
        self.apply_button = QPushButton("Apply refactor")
        self.apply_button.setEnabled(False)
        self.compare_button = QPushButton("Compare before and after…")
        self.compare_button.setToolTip("Open the compare view: the network now (A) and with this refactor (B)")
        self.compare_button.setEnabled(False)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self.detail, 1)
        self.channels_row = QWidget()  # only for the refactor that uses it (inserting a 1x1 reduction)
        row = QHBoxLayout(self.channels_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("1x1 reduction channels"))
        row.addWidget(self.channels)
        row.addStretch(1)
        rl.addWidget(self.channels_row)
        self.channels_row.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.apply_button)
        rl.addLayout(buttons)
        split = QSplitter()
        split.addWidget(self.tree)
        split.addWidget(right)
        split.setSizes([700, 400])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.legend)
        lay.addWidget(split, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.refresh)
        doc.analysed.connect(lambda _: self._timer.start())
        self.tree.currentItemChanged.connect(self._current)
        self.channels.valueChanged.connect(lambda _: self._current(self.tree.currentItem()))
        self.apply_button.clicked.connect(self.apply_current)
        self.compare_button.clicked.connect(
            lambda: self.compare_requested.emit(self.current_preview) if self.current_preview else None)
        self.current_preview = None

    def refresh(self):
        made = self.doc.made_beside("findings")  # an opened network's, made with its analysis off the window's thread
        self.findings = made if made is not None else advisor.check(self.doc.graph, self.doc.analysis)
        self.tree.clear()
        for f in self.findings:
            top = QTreeWidgetItem([f.title, f"{f.principle}: {SHORT[f.principle]}", f.block or ""])
            top.setToolTip(1, f"Principle {f.principle}: {advisor.PRINCIPLES[f.principle]}")
            top.setToolTip(0, f"{f.message}\n\nPrinciple {f.principle}: {advisor.PRINCIPLES[f.principle]}")
            top.setData(0, ROLE, ("finding", f))
            for r in f.refactors:
                it = QTreeWidgetItem([f"↳ {r.title}", "refactor", r.block])
                it.setData(0, ROLE, ("refactor", r))
                top.addChild(it)
            self.tree.addTopLevelItem(top)
        self.detail.setText("<span style='color:#607D8B'>Select a finding to read the principle behind it, or a "
                            "refactor to see what it saves before applying it.</span>")
        self.apply_button.setEnabled(False)
        self.compare_button.setEnabled(False)
        self.findings_changed.emit(self.findings)

    def _current(self, item, _prev=None):
        self.current_preview = None
        self.apply_button.setEnabled(False)
        self.compare_button.setEnabled(False)
        self.channels_row.hide()
        if item is None:
            return
        kind, obj = item.data(0, ROLE)
        if kind == "finding":
            if obj.block:
                self.block_selected.emit(obj.block)
            self.detail.setText(f"<b>{_esc(obj.title)}</b><br>{_esc(obj.message)}<br><br><i>Principle "
                                f"{obj.principle}: {_esc(advisor.PRINCIPLES[obj.principle])}</i>")
            return
        ref = obj
        if ref.code == "insert_reduction":
            self.channels_row.show()
            ref.options["channels"] = self.channels.value()
        p = advisor.preview(self.doc.graph, ref)
        self.current_preview = p
        if p.ok:
            self.detail.setText(
                f"<b>{_esc(ref.title)}</b><br><br><b>Inference</b> (as deployed; the status bar's first total)<br>"
                f"MACs {p.before_macs:,} → {p.after_macs:,} (<b>{p.after_macs - p.before_macs:+,}</b>, "
                f"{-p.macs_saving * 100:+.1f}%)<br>params {p.before_params:,} → {p.after_params:,} "
                f"(<b>{p.after_params - p.before_params:+,}</b>)<br><br><b>Training</b> (with auxiliary heads)<br>"
                f"params {p.before_training_params:,} → {p.after_training_params:,} "
                f"({p.after_training_params - p.before_training_params:+,})"
                f"<br><br><b>Blocks</b>: {_esc(_changes(p.changes(self.doc.graph)))}"
                "<br><br>Output shapes stay the same. Apply it as one undoable step.")
            self.apply_button.setEnabled(True)
            self.compare_button.setEnabled(True)
        else:
            self.detail.setText(f"<b>{_esc(ref.title)}</b><br><span style='color:#C62828'>{_esc(p.message)}"
                                "</span>")

    def apply_current(self):
        p = self.current_preview
        if p is None or not p.ok:
            return False
        ref = p.refactor
        return self.doc.push(ref.title, lambda g: advisor.apply(g, ref))


def _changes(d, most: int = 6) -> str:
    """The refactor's diff in one line: − removed, + added, ~ changed blocks (the compare view shows it all)."""
    marks = [f"− {u.id}" for u in d.removed] + [f"+ {u.id}" for u in d.added] + [f"~ {c.b}" for c in d.changed]
    more = f", and {len(marks) - most} more" if len(marks) > most else ""
    return (", ".join(marks[:most]) + more) if marks else "no block changes"
