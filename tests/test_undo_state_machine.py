"""Random edits, undos and redos through the app's document and QUndoStack: undoing everything returns exactly
to the starting graph, and every state is one the edits produced."""
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import templates
from builder.core import edits
from builder.ui.document import Document

KINDS = ["relu", "conv2d", "maxpool2d", "concat", "batchnorm2d"]


@pytest.fixture(autouse=True)
def _app(qapp):
    yield


class UndoMachine(RuleBasedStateMachine):
    @initialize(name=st.sampled_from(["lenet5", "googlenet"]))
    def start(self, name):
        self.doc = Document(templates.build(name))
        self.start_sig = self.doc.graph.signature()
        self.history = [self.start_sig]  # signature after each command on the stack, by index
        self.index = 0

    def _push(self, text, fn, merge_key=None):
        if self.doc.push(text, fn, merge_key):
            self.history = self.history[:self.index + 1]
            if self.doc.undo_stack.count() == len(self.history) - 1:  # merged into the previous command
                self.history[-1] = self.doc.graph.signature()
            else:
                self.history.append(self.doc.graph.signature())
            self.index = self.doc.undo_stack.index()
            assert len(self.history) == self.doc.undo_stack.count() + 1

    @rule(kind=st.sampled_from(KINDS), n=st.integers(0, 10_000))
    def add(self, kind, n):
        ids = self.doc.graph.ids()
        src = ids[n % len(ids)] if ids else None  # (every block may have been removed)

        def edit(g):
            new = g.add_block(kind, None, None, pos=(n, n))
            if src is not None and g.block(src).type != "output":
                g.connect(src, new)
        self._push(f"add {kind}", edit)

    @rule(n=st.integers(0, 10_000))
    def remove(self, n):
        ids = self.doc.graph.ids()
        if ids:
            bid = ids[n % len(ids)]
            self._push("remove", lambda g: g.remove_block(bid))

    @rule(n=st.integers(0, 10_000), value=st.integers(1, 64))
    def set_channels(self, n, value):
        convs = [b.id for b in self.doc.graph.blocks() if b.type in ("conv2d", "basic_conv")]
        if convs:
            bid = convs[n % len(convs)]
            self._push("set", lambda g: g.set_params(bid, {"out_channels": value}), merge_key=(bid, "out_channels"))

    @rule(n=st.integers(0, 10_000))
    def expand(self, n):
        comps = [b.id for b in self.doc.graph.blocks() if b.spec.is_composite]
        if comps:
            bid = comps[n % len(comps)]
            self._push("expand", lambda g: edits.expand(g, bid))

    @rule(n=st.integers(0, 10_000), dx=st.floats(-500, 500))
    def move(self, n, dx):
        ids = self.doc.graph.ids()
        if not ids:
            return
        bid = ids[n % len(ids)]
        self._push("move", lambda g: g.move(bid, (dx, dx)))

    @rule()
    def undo(self):
        if self.doc.undo_stack.canUndo():
            self.doc.undo_stack.undo()
            self.index -= 1

    @rule()
    def redo(self):
        if self.doc.undo_stack.canRedo():
            self.doc.undo_stack.redo()
            self.index += 1

    @invariant()
    def graph_matches_history(self):
        if hasattr(self, "doc"):
            assert self.doc.graph.signature() == self.history[self.index]

    def teardown(self):
        if hasattr(self, "doc"):
            while self.doc.undo_stack.canUndo():
                self.doc.undo_stack.undo()
            assert self.doc.graph.signature() == self.start_sig
            import shiboken6
            from PySide6.QtCore import QCoreApplication
            QCoreApplication.processEvents()  # run the analysis it scheduled, then let it go
            shiboken6.delete(self.doc)  # no Qt object may outlive the test's QApplication


UndoMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestUndoMachine = UndoMachine.TestCase
