"""The inspector: a form generated from the selected block's parameter schema, applied at once (undoable)."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from blocks import fmt_shape
from builder.insight.report import human
from .text import esc as _esc

INT_LIMIT = 2_000_000_000


class PairEdit(QWidget):
    """Two integers (height, width) for kernel, stride, padding."""
    changed = Signal()

    def __init__(self, lo, hi, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.h, self.w = QSpinBox(), QSpinBox()
        for sb in (self.h, self.w):
            sb.setRange(int(lo), int(min(hi, INT_LIMIT)))
            sb.setKeyboardTracking(False)
            sb.valueChanged.connect(self.changed)
            lay.addWidget(sb)
        self.h.setToolTip("height")
        self.w.setToolTip("width")

    def value(self):
        return [self.h.value(), self.w.value()]

    def set_value(self, v):
        self.h.setValue(int(v[0]))
        self.w.setValue(int(v[1]))


class PaddingEdit(QWidget):
    changed = Signal()

    def __init__(self, hi, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.mode = QComboBox()
        self.mode.addItems(["explicit", "same", "valid"])
        self.pair = PairEdit(0, hi)
        lay.addWidget(self.mode)
        lay.addWidget(self.pair)
        self.mode.currentIndexChanged.connect(self._mode)
        self.pair.changed.connect(self.changed)

    def _mode(self):
        self.pair.setEnabled(self.mode.currentText() == "explicit")
        self.changed.emit()

    def value(self):
        m = self.mode.currentText()
        return self.pair.value() if m == "explicit" else m

    def set_value(self, v):
        if isinstance(v, str):
            self.mode.setCurrentText(v)
        else:
            self.mode.setCurrentText("explicit")
            self.pair.set_value(v)
        self.pair.setEnabled(not isinstance(v, str))


LARGE = 2000  # blocks: above it the receptive field follows a selection by a moment


class Inspector(QScrollArea):
    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.block_id: str | None = None
        self.editors: dict = {}
        self.key_filter = None  # the window's event filter for undo/redo keys, set on every field made
        self.setWidgetResizable(True)
        # as wide as the dock, never scrolled sideways: the fields shrink (see _fit_fields)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.body = QWidget()
        self.setWidget(self.body)
        self.outer = QVBoxLayout(self.body)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.RichText)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.figures = QLabel()
        self.figures.setWordWrap(True)
        self.figures.setTextFormat(Qt.RichText)
        self.figures.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #C62828")
        self.expand_button = QPushButton("Expand into its blocks")
        self.expand_button.hide()
        self.channels_title = QLabel()  # a followed image: the block's channels, the strongest first
        self.channels_title.setWordWrap(True)
        self.channels_title.setStyleSheet("color: #455A64")
        self.channels = QLabel()
        self.outer.addWidget(self.title)
        self.outer.addLayout(self.form)
        self.outer.addWidget(self.message)
        self.outer.addWidget(self.figures)
        self.outer.addWidget(self.expand_button)
        from .candidates import CandidatesEditor
        self.candidates = CandidatesEditor(doc)
        self.outer.addWidget(self.candidates)
        self.outer.addWidget(self.channels_title)
        self.outer.addWidget(self.channels)
        self.outer.addStretch(1)
        self._field_timer = QTimer(self)
        self._field_timer.setSingleShot(True)
        self._field_timer.setInterval(200)
        self._field_timer.timeout.connect(lambda: self._analysed(self.doc.analysis))
        doc.analysed.connect(self._analysed_later)
        doc.edit_failed.connect(self._failed)
        self.show_block(None)

    def show_channels(self, out) -> None:
        """The selected block's output for the followed image: up to 16 channels in a grid, the strongest first
        (None: no image is followed, or the block has no output)."""
        if out is None:
            self.channels_title.clear()
            self.channels.clear()
            return
        from builder.train.explain import strongest

        from .follow import describe, grid
        if out.ndim == 3 and out.shape[1] * out.shape[2] > 1:
            top = strongest(out, 16)
            self.channels.setPixmap(grid(out, top, 4, 56))
            self.channels_title.setText(f"Its output for the followed image ({describe(out).replace(chr(10), ', ')})"
                                        f": channels {', '.join(map(str, top))}, the strongest first")
        else:
            from .follow import thumbnail
            self.channels.setPixmap(thumbnail(out).scaledToWidth(240))
            self.channels_title.setText(f"Its output for the followed image ({describe(out).replace(chr(10), ', ')})")

    # ------------------------------------------------------------------ building the form
    def show_block(self, block_id: str | None):
        self.block_id = block_id
        self.candidates.show_block(block_id)
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        self.message.clear()
        g = self.doc.graph
        if block_id is None or block_id not in g:
            self.title.setText("<b>Nothing selected</b><br><span style='color:#607D8B'>Select a block to edit its "
                               "parameters; the totals of the whole network are in the status bar.</span>")
            self.figures.clear()
            self.expand_button.hide()
            return
        b = g.block(block_id)
        spec = b.spec
        self.title.setText(f"<b style='font-size:13pt'>{_esc(b.label or b.id)}</b><br>"
                           f"<span style='color:#607D8B'>{_esc(spec.title if spec else b.type)}</span>"
                           + (f"<br><span style='color:#78909C;font-size:8pt'>{_esc(spec.description)}</span>"
                              if spec else ""))
        ident = QLineEdit(b.id)
        ident.setToolTip("The block's id: its module name in the compiled network and in state_dict keys")
        ident.editingFinished.connect(lambda: self._rename(ident.text().strip()))
        self.form.addRow("id", ident)
        self.editors["__id__"] = ident
        label = QLineEdit(b.label)
        label.setPlaceholderText("display name (free text)")
        label.editingFinished.connect(lambda: self._relabel(label.text()))
        self.form.addRow("name", label)
        self.editors["__label__"] = label
        frozen = QCheckBox("frozen (keeps its weights)")
        frozen.setToolTip("Fine-tuning: training leaves this block's parameters as they are")
        frozen.setChecked(block_id in g.frozen())
        frozen.toggled.connect(self._freeze)
        rep = self.doc.analysis.blocks.get(block_id) if self.doc.analysis is not None else None
        if rep is not None and rep.params:  # only blocks with parameters can be frozen
            self.form.addRow("training", frozen)
            self.editors["__frozen__"] = frozen
        if spec is not None:
            for p in spec.params:
                w = self._editor(p)
                w.setToolTip(p.help)
                self.form.addRow(p.title, w)
                self.editors[p.name] = (p, w)
            self._load_values()
        self.expand_button.setVisible(bool(spec and spec.is_composite))
        self._fit_fields()
        if self.key_filter is not None:  # (a spin box's inner line edit is the one with the focus)
            for w in self.body.findChildren(QWidget):
                w.installEventFilter(self.key_filter)
        # just after an edit (its analysis still to come) the figures are the last ones and the receptive field
        # waits for the new analysis, which follows at once: nothing is analysed twice; on a large network the
        # field (the whole lowered network's) follows a moment after the selection, so selecting stays instant
        now = not self.doc.analysis_pending and len(self.doc.graph) <= LARGE
        self._analysed(self.doc.analysis, field_now=now)
        if not now and not self.doc.analysis_pending and self.block_id is not None:
            self._field_timer.start()

    def _fit_fields(self) -> None:
        """Every field may shrink to the dock's width: a spin box asks for room for its widest value (ten digits
        for a range up to 2^31) and a pair of them took the inspector past the dock's edge."""
        from PySide6.QtWidgets import QAbstractSpinBox, QSizePolicy
        for w in self.body.findChildren(QWidget):
            if isinstance(w, (QAbstractSpinBox, QComboBox, QLineEdit)) and not isinstance(w.parent(), QAbstractSpinBox):
                w.setMinimumWidth(48)
                w.setSizePolicy(QSizePolicy.Ignored, w.sizePolicy().verticalPolicy())

    def _editor(self, p):
        lo = p.min if p.min is not None else -INT_LIMIT
        hi = p.max if p.max is not None else INT_LIMIT
        if p.kind == "int":
            w = QSpinBox()
            w.setRange(int(lo), int(min(hi, INT_LIMIT)))
            if p.zero and lo == 0:
                w.setSpecialValueText(p.zero)  # 0 shows what it means
            w.setKeyboardTracking(False)  # applied on Enter or leaving the field: one undo step
            w.valueChanged.connect(lambda v, n=p.name: self._apply(n, v))
            w.lineEdit().textEdited.connect(lambda _t, p=p, w=w: self._check_typed(p, w))
        elif p.kind == "float":
            w = QDoubleSpinBox()
            w.setDecimals(6 if (p.max or 1) <= 1 else 3)
            w.setRange(float(lo), float(hi))
            w.setSingleStep(0.05 if (p.max or 10) <= 1 else 0.1)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=p.name: self._apply(n, v))
            w.lineEdit().textEdited.connect(lambda _t, p=p, w=w: self._check_typed(p, w))
        elif p.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda v, n=p.name: self._apply(n, v))
        elif p.kind == "choice":
            w = QComboBox()
            w.addItems([str(c) for c in p.choices])
            w.currentTextChanged.connect(lambda v, n=p.name: self._apply(n, v))
        elif p.kind == "pair":
            w = PairEdit(lo, hi)
            w.changed.connect(lambda n=p.name, w=w: self._apply(n, w.value()))
        elif p.kind == "padding":
            w = PaddingEdit(hi)
            w.changed.connect(lambda n=p.name, w=w: self._apply(n, w.value()))
        elif p.kind in ("subgraph", "data"):
            w = QLabel()
            w.setWordWrap(True)
        else:
            w = QLineEdit()
            w.editingFinished.connect(lambda n=p.name, w=w: self._apply(n, w.text()))
            w.textEdited.connect(lambda _t, p=p, w=w: self._check_typed(p, w))
        return w

    def _check_typed(self, p, w):
        """Check a value as it is typed (before it is applied): the parameter's own rules, then the block's shape
        rule with its current inputs; the message shows at once and the field is marked."""
        problem = None
        bid = self.block_id
        if bid is None or bid not in self.doc.graph:
            return None
        b = self.doc.graph.block(bid)
        text = w.lineEdit().text() if isinstance(w, (QSpinBox, QDoubleSpinBox)) else w.text()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            text = text.strip()
            try:
                value = int(text) if isinstance(w, QSpinBox) else float(text)
            except ValueError:
                value, problem = None, f"{p.title}: {text!r} is not a number" if text else f"{p.title}: type a value"
        else:
            value = text
        if problem is None:
            try:
                params = b.spec.validate_params({p.name: value}, base=b.params)
                rep = self.doc.analysis.blocks.get(bid) if self.doc.analysis is not None else None
                if b.spec.shape is not None and rep is not None and rep.in_shapes and all(rep.in_shapes):
                    b.spec.shape(params, rep.in_shapes)
            except Exception as e:  # noqa: BLE001  ParamError, BlockError: the rule's own message
                said = str(e)
                said = said[len(p.name) + 2:] if said.startswith(f"{p.name}: ") else said  # named once
                problem = f"{p.title}: {said}"
        w.setStyleSheet("border: 2px solid #E53935;" if problem else "")
        self.message.setText(problem or "")
        return problem

    def _load_values(self):
        b = self.doc.graph.block(self.block_id)
        for name, entry in self.editors.items():
            if name.startswith("__"):
                entry.blockSignals(True)
                if name == "__frozen__":
                    entry.setChecked(b.id in self.doc.graph.frozen())
                else:
                    entry.setText(b.id if name == "__id__" else b.label)
                entry.blockSignals(False)
                continue
            p, w = entry
            v = b.params.get(name)
            for child in [w] + w.findChildren(QWidget):
                child.blockSignals(True)
            if p.kind in ("int", "float"):
                w.setValue(v)
            elif p.kind == "bool":
                w.setChecked(bool(v))
            elif p.kind == "choice":
                w.setCurrentText(str(v))
            elif p.kind in ("pair", "padding"):
                w.set_value(v)
            elif p.kind == "subgraph":
                w.setText(f"{len(v['nodes'])} blocks inside; expand the group to edit them")
            elif p.kind == "data":
                w.setText(p.describe(v) if p.describe is not None else "")
            else:
                w.setText(str(v))
            for child in [w] + w.findChildren(QWidget):
                child.blockSignals(False)

    # ------------------------------------------------------------------ edits
    def _apply(self, name, value):
        entry = self.editors.get(name)
        if entry is not None:
            entry[1].setStyleSheet("")
        bid = self.block_id
        if bid is None or bid not in self.doc.graph:
            return
        if self.doc.graph.block(bid).params.get(name) == value:
            return
        self.message.clear()
        self.doc.push(f"Set {name} of {bid}", lambda g: g.set_params(bid, {name: value}), merge_key=(bid, name))

    def _freeze(self, on):
        bid = self.block_id
        if bid is not None and bid in self.doc.graph:
            self.doc.push(f"{'Freeze' if on else 'Unfreeze'} {bid}", lambda g: g.set_frozen(bid, on))

    def _rename(self, new_id):
        bid = self.block_id
        if bid is None or new_id == bid:
            return
        if self.doc.push(f"Rename {bid} to {new_id}", lambda g: g.rename(bid, new_id)):
            self.block_id = new_id
        else:
            self.editors["__id__"].setText(bid)

    def _relabel(self, text):
        bid = self.block_id
        if bid is not None and self.doc.graph.block(bid).label != text:
            self.doc.push(f"Name {bid}", lambda g: g.set_label(bid, text))

    def _failed(self, msg):
        self.message.setText(msg)
        if self.block_id and self.block_id in self.doc.graph:
            self._load_values()

    def _analysed_later(self, analysis):
        """After an edit: the figures at once, the receptive field (the whole lowered network's) a moment later,
        once a burst of edits has settled, so an edit paints first."""
        self._analysed(analysis, field_now=False)
        if self.block_id is not None:
            self._field_timer.start()

    def _analysed(self, analysis, field_now: bool = True):
        if analysis is None or self.block_id is None or self.block_id not in self.doc.graph:
            if self.block_id is not None and self.block_id not in self.doc.graph:
                self.show_block(None)
            return
        self._load_values()
        rep = analysis.blocks.get(self.block_id)
        if rep is None:
            return
        ins = ", ".join(fmt_shape(s) if s else "?" for s in rep.in_shapes) or "none"
        rows = [f"<b>input</b> {ins}", f"<b>output</b> {fmt_shape(rep.out_shape) if rep.out_shape else '—'}",
                f"<b>params</b> {rep.params:,} ({human(rep.params)})",
                f"<b>MACs</b> {rep.macs:,} ({human(rep.macs)}) &nbsp; <b>FLOPs</b> {human(2 * rep.macs)}",
                f"<b>activations</b> {rep.activations:,} values"]
        if field_now:
            from builder.insight.receptive import receptive_fields
            field = receptive_fields(self.doc.graph, analysis).get(self.block_id)
            if field is not None and rep.out_shape and len(rep.out_shape) == 3 or (field is not None and field.whole):
                rows.append(f"<b>receptive field</b> {field.describe()}")
        if not rep.inference and rep.training:
            rows.append("<i>training only (auxiliary head): dropped at inference</i>")
        for e in rep.errors:
            rows.append(f"<span style='color:#C62828'><b>error</b> {_esc(e.message)}</span>")
        for w in rep.warnings:
            rows.append(f"<span style='color:#B26A00'><b>warning</b> {_esc(w.message)}</span>")
        self.figures.setText("<br>".join(rows))
