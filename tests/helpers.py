"""Small graph builders and helpers shared by the tests."""
import importlib.util

from builder.core.graph import Graph


def load_module(path, name="exported"):
    """Import the Python file at ``path`` (exported code, a generated model) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reloaded(imported, path):
    """An import written as a project file and its weights, read back: (graph, compiled network with the
    weights)."""
    import copy

    from builder.backend.compiler import compile_graph
    from builder.core import project
    from builder.importers import save_imported
    from builder.train.weights import load_tensors
    written = save_imported(copy.deepcopy(imported), path)
    graph = project.load(written[0])
    net = compile_graph(graph)
    net.load_state_dict(load_tensors(written[1]), strict=True)
    return graph, net


def onnxruntime_output(path, x, name: str = "input"):
    """onnxruntime's (first) output of the ONNX file ``path`` for the tensor ``x`` fed as ``name``, as a tensor."""
    import onnxruntime as ort
    import torch
    return torch.from_numpy(ort.InferenceSession(str(path)).run(None, {name: x.numpy()})[0])


def feature_graph():
    """A small graph with every construct a forward has: concat (Inception), add (a residual block), an
    auxiliary head (the training-only section), flatten and linear."""
    g = Graph("features")
    g.add_block("input", {"channels": 3, "height": 32, "width": 32}, "inp")
    g.add_block("basic_conv", {"out_channels": 16, "kernel": 3, "padding": 1}, "stem")
    g.add_block("inception_v1", {"ch1x1": 8, "ch3x3red": 8, "ch3x3": 8, "ch5x5red": 4, "ch5x5": 4,
                                 "pool_proj": 4}, "inc")
    g.add_block("resnet_basic", {"planes": 24}, "res")
    g.add_block("classifier_head", {"num_classes": 5, "dropout": 0.0}, "auxhead")
    g.add_block("output", {"role": "aux", "loss_weight": 0.3}, "aux_out")
    g.add_block("classifier_head", {"num_classes": 5, "dropout": 0.0}, "head")
    g.add_block("output", {}, "out")
    for a, b in (("inp", "stem"), ("stem", "inc"), ("inc", "res"), ("stem", "auxhead"), ("auxhead", "aux_out"),
                 ("res", "head"), ("head", "out")):
        g.connect(a, b)
    return g


def single(type_id, params=None, in_shape=(4, 15, 15), n_inputs=1):
    """input(s) -> block -> output."""
    g = Graph("t")
    ins = []
    shapes = in_shape if isinstance(in_shape, list) else [in_shape] * n_inputs
    src = g.add_block("input", {"channels": shapes[0][0], "height": shapes[0][1], "width": shapes[0][2]}, "inp")
    for i, s in enumerate(shapes):
        if i == 0 and len(shapes) == 1:
            ins.append(src)
            continue
        # give every branch its own channels/spatial size through a 1x1 conv (+ pool when it must shrink)
        b = g.add_block("conv2d", {"out_channels": s[0], "kernel": 1}, f"pre{i}")
        g.connect(src, b)
        if (s[1], s[2]) != shapes[0][1:]:
            p = g.add_block("adaptive_avgpool2d", {"output_size": [s[1], s[2]]}, f"prepool{i}")
            g.connect(b, p)
            b = p
        ins.append(b)
    g.add_block(type_id, params or {}, "blk")
    for s in ins:
        g.connect(s, "blk")
    g.add_block("output", {}, "out")
    g.connect("blk", "out")
    return g


class ModalAnswer:
    """What :func:`when_modal` saw: ``answered`` once the action ran and the dialog closed, ``failure`` otherwise."""

    def __init__(self, kind):
        self.kind = kind
        self.answered = False
        self.failure = None

    def check(self):
        assert self.failure is None, self.failure
        assert self.answered, f"no {self.kind.__name__} was answered"


def when_modal(kind, action, timeout_s: float = 20.0, poll_ms: int = 20) -> ModalAnswer:
    """Once a modal dialog of class ``kind`` is open, call ``action(dialog)``: how tests answer dialogs that
    block in exec().

    Every wait has a deadline: if no such dialog opens within ``timeout_s``, or it is still open ``timeout_s``
    after the action ran, whatever modal dialog is open is rejected (so exec() returns and the test goes on
    instead of blocking) and an AssertionError is raised in the event loop, which pytest-qt turns into a failure
    of the test. The message says what was awaited and what was on screen instead."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication, QDialog

    answer = ModalAnswer(kind)
    clock = QElapsedTimer()
    clock.start()
    deadline_ms = int(timeout_s * 1000)

    def fail(message):
        dlg = QApplication.activeModalWidget()
        if dlg is not None:
            seen = f"{type(dlg).__name__} {dlg.windowTitle()!r}"
            text = getattr(dlg, "text", None)
            if callable(text):
                seen += f" saying {text()!r}"
            message += f"; a {seen} was open and was rejected"
            if isinstance(dlg, QDialog):
                dlg.reject()
            else:
                dlg.close()
        answer.failure = message
        raise AssertionError(message)

    def wait_closed(dlg, since):
        if not dlg.isVisible():
            answer.answered = True
            return
        if clock.elapsed() - since > deadline_ms:
            fail(f"the {kind.__name__} was still open {timeout_s:g} s after it was answered")
        QTimer.singleShot(poll_ms, lambda: wait_closed(dlg, since))

    def poll():
        dlg = QApplication.activeModalWidget()
        if isinstance(dlg, kind):
            action(dlg)
            wait_closed(dlg, clock.elapsed())
            return
        if clock.elapsed() > deadline_ms:
            fail(f"no {kind.__name__} opened within {timeout_s:g} s")
        QTimer.singleShot(poll_ms, poll)
    QTimer.singleShot(poll_ms, poll)
    return answer


def answer_paths(monkeypatch, win, *paths):
    """Answer the window's file pickers (its one injectable ``ask_path``) with ``paths``, in order; returns the
    list of questions asked (title, save?) so a test can check that the dialog was asked for."""
    asked = []
    queue = [str(p) for p in paths]

    def ask(parent, title, filters, save, suggested=""):
        asked.append((title, save))
        assert queue, f"the window asked for a path ({title!r}) more times than the test answers"
        return queue.pop(0)
    monkeypatch.setattr(win, "ask_path", ask)
    return asked


# Float32 outputs of two correct implementations of one network differ by rounding: each layer adds a few ulps
# of its output's magnitude, and the order of a convolution's sums changes with the thread count (one thread per
# pytest-xdist worker on a busy machine, several on a quiet one). So a comparison's tolerance grows with the
# network's depth and is relative to the size of the reference outputs, never a bare absolute number: the
# logits of a random-weight ResNet-50 (up to 272 in size) differ from onnxruntime's by 1.4e-4 with one thread,
# though both are right (5e-7 of their size; this allows 5.4e-5 for its 54 layers).
PER_LAYER = 1e-6   # relative rounding allowed per layer (about 8 float32 ulps)
MAX_RELATIVE = 1e-3  # never looser than this, however deep: an error of 1e-2 (relative) always fails


def depth_of(model) -> int:
    """The layers a value passes through at most, counted as the multiply-accumulate layers of ``model``
    (convolutions and linear layers: where rounding errors are made), at least 1."""
    from torch import nn
    return max(1, sum(isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) for m in model.modules()))


def output_tolerance(want, depth: int) -> float:
    """The absolute tolerance for outputs compared with ``want`` (a tensor or array) after ``depth`` layers:
    ``min(PER_LAYER * depth, MAX_RELATIVE) * max|want|``."""
    import torch
    want = torch.as_tensor(want)
    scale = float(want.detach().abs().max()) if want.numel() else 0.0
    return min(PER_LAYER * max(1, depth), MAX_RELATIVE) * max(scale, 1e-6)


def assert_outputs_close(got, want, depth: int, what: str = "outputs") -> None:
    """``got`` equals ``want`` up to the rounding of a ``depth``-layer float32 network (see
    :func:`output_tolerance`); the message names the worst element, its difference and the tolerance."""
    import torch
    got, want = torch.as_tensor(got), torch.as_tensor(want)
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    tol = output_tolerance(want, depth)
    diff = (got.detach().double() - want.detach().double()).abs()
    worst = float(diff.max()) if diff.numel() else 0.0
    assert bool(torch.isfinite(want).all()), f"{what}: the reference has non-finite values"
    assert bool(torch.isfinite(got).all()), f"{what}: non-finite values where the reference has none"
    if worst > tol:
        where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        raise AssertionError(f"{what} differ by {worst:.3g} at {where} (allowed {tol:.3g}: {depth} layers, "
                             f"max|want| {float(want.abs().max()):.3g})")


def random_statistics(model):
    """The model with random batch-norm running statistics (so that no batch norm is the identity in eval, as
    freshly built ones are); returns it."""
    import torch
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model


def context_menu(widget, pos, keyboard=False):
    """What a right click (or the Menu key) delivers: QTest's right click opens no menu."""
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication
    reason = QContextMenuEvent.Keyboard if keyboard else QContextMenuEvent.Mouse
    QApplication.sendEvent(widget, QContextMenuEvent(reason, pos, widget.mapToGlobal(pos)))


def click_menu_item(qtbot, menu, starts):
    """Click the one item of an open menu whose text starts with ``starts`` (it must be enabled)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    (action,) = [a for a in menu.actions() if a.text().replace("&", "").startswith(starts)]
    assert action.isEnabled()
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    QTest.mouseClick(menu, Qt.LeftButton, pos=menu.actionGeometry(action).center())


def menu_texts(menu):
    return [a.text().replace("&", "") for a in menu.actions() if a.text()]
