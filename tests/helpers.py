"""Small graph builders shared by the tests."""
from builder.graph import Graph


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


def when_modal(kind, action, delay_ms: int = 30):
    """Once a modal dialog of class ``kind`` is open, call ``action(dialog)``: how tests answer dialogs that
    block in exec()."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def poll():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, kind):
            QTimer.singleShot(delay_ms, poll)
            return
        action(dlg)
    QTimer.singleShot(delay_ms, poll)
