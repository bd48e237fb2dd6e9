"""Wires route around blocks (issue 22): a wire whose straight run would cross blocks turns into a free lane beside
them; one with nothing in its way stays a single curve; a block moved onto a wire's way, or out of it, makes the
wire find its way again once the move is done."""
import pytest
from PySide6.QtCore import QRectF

from builder.ui.canvas import BODY

pytestmark = pytest.mark.timeout(90)


def _crossed(win, wire):
    """The blocks (other than its ends) that the wire's path runs through, sampled every 2%."""
    path = wire.path()
    points = [path.pointAtPercent(i / 50) for i in range(51)]
    return sorted({bid for bid, it in win.scene.blocks.items() if bid not in (wire.src, wire.dst)
                   for p in points if it.mapRectToScene(BODY).adjusted(1, 1, -1, -1).contains(p)})


def test_a_skip_connection_goes_around_the_blocks_it_passes(qtbot, make_window):
    win = make_window(template="resnet18")
    win.select_block("layer1.0")
    win.named_actions["expand"].trigger()
    qtbot.waitUntil(lambda: not win.doc.analysis_pending and not win.scene._reroute_timer.isActive(), timeout=10_000)
    skip = win.scene.wires[("maxpool", "layer1.0.add", "in1")]
    passed = [b for b in ("layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2")]
    column = QRectF()
    for b in passed:
        column = column.united(win.scene.blocks[b].mapRectToScene(BODY))
    assert _crossed(win, skip) == []
    lane = skip.path().boundingRect()
    assert lane.right() > column.right() or lane.left() < column.left()  # beside the column it skips
    # every other wire of the network crosses no block either, and a wire to the next block is one curve
    assert [w.key for w in win.scene.wires.values() if _crossed(win, w)] == []
    nxt = win.scene.wires[("layer1.0.conv1", "layer1.0.bn1", "x")]
    assert nxt.path().elementCount() == 4  # moveTo + one cubic (three elements)


def test_a_block_moved_into_a_wires_way_makes_it_go_around(qtbot, make_window):
    win = make_window(template="lenet5")
    g = win.doc.graph
    wire = win.scene.wires[("c5", "c5_act", "x")]
    assert wire.path().elementCount() == 4
    # c3 dropped between c5 and c5_act is not possible (no room); put a block far below and wire c5 to it, then
    # move f6 into the way of that wire
    win.doc.push("add", lambda gg: (gg.add_block("relu", {}, "far", pos=(g.block("c5").pos[0], 2200.0)),
                                     gg.connect("c5", "far")))
    qtbot.waitUntil(lambda: not win.scene._reroute_timer.isActive(), timeout=5000)
    far = win.scene.wires[("c5", "far", "x")]
    before = _crossed(win, far)
    assert before == []  # routed around whatever lies between c5 and the new block
    x5 = g.block("c5").pos[0]
    blocker = next(b for b in g.blocks() if b.id == "output")
    win.doc.push("move", lambda gg: gg.move(blocker.id, (x5, 1700.0)))
    qtbot.waitUntil(lambda: not win.scene._reroute_timer.isActive(), timeout=5000)
    assert _crossed(win, far) == []  # it found its way again around the block moved into it
