"""Receptive fields (issue 15) against a brute-force computation: the gradient of one output unit with respect to
the input (every channel at one position), in a copy of the network whose weights are positive constants (each conv averages its window), whose
batch norms are the identity and whose max pools average (the same windows: a max would pass the gradient to one
input only). The nonzero support of that gradient is the unit's receptive field, clipped to the image."""
import pytest
import torch
from torch import nn

import templates
from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.core.edits import up_to
from builder.core.graph import Graph
from builder.insight.receptive import receptive_fields


def _brute_support(graph, block, units):
    g = up_to(graph, block)
    net = compile_graph(g).eval().double()
    for name, m in list(net.named_modules()):
        if isinstance(m, nn.MaxPool2d):  # the same window, a gradient to every input of it
            parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
            setattr(parent, name.rpartition(".")[2], nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1.0)
    shape = analyze(g).blocks[[b for b in g.ids() if g.block(b).type == "input"][0]].out_shape
    out = []
    for u, v in units:
        x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
        y = net(x)
        y[0, :, u, v].sum().backward()  # every channel: a concat's unit sees what any of its branches sees
        support = x.grad[0].abs().sum(0) > 0
        rows, cols = support.any(1).nonzero(), support.any(0).nonzero()
        out.append(((rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item())))
    return out, shape


def _predicted(field, shape, units):
    out = []
    for u, v in units:
        (lo_h, hi_h), (lo_w, hi_w) = field.h.span(u), field.w.span(v)
        out.append(((max(0, int(lo_h)), min(shape[1] - 1, int(hi_h))),
                    (max(0, int(lo_w)), min(shape[2] - 1, int(hi_w)))))
    return out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("template,block,size,units", [
    ("googlenet", "inception5b", 224, [(0, 0), (3, 3), (6, 2)]),
    ("googlenet", "inception3a", 224, [(0, 0), (13, 7), (27, 27)]),
    ("inception_v3", "Mixed_7c", 299, [(0, 0), (4, 7)]),
    ("inception_v3", "Mixed_5b", 299, [(0, 0), (17, 9), (34, 34)]),
])
def test_templates_against_the_brute_force_gradient(template, block, size, units):
    g = templates.build(template, aux=False)
    field = receptive_fields(g)[block]
    assert field.exact and not field.whole
    brute, shape = _brute_support(g, block, units)
    assert _predicted(field, shape, units) == brute


def _chain(*layers, hw=32):
    g = Graph("rf")
    prev = g.add_block("input", {"channels": 1, "height": hw, "width": hw}, "input")
    for i, (kind, params) in enumerate(layers):
        bid = g.add_block(kind, params, f"l{i}")
        g.connect(prev, bid)
        prev = bid
    return g, prev


@pytest.mark.parametrize("layers,size,jump", [
    ([("conv2d", dict(out_channels=1, kernel=3))] * 2, 5, 1),                       # two 3x3 see 5x5
    ([("conv2d", dict(out_channels=1, kernel=3, stride=2)), ("conv2d", dict(out_channels=1, kernel=3))], 7, 2),
    ([("conv2d", dict(out_channels=1, kernel=3, dilation=2))], 5, 1),               # dilation 2: taps 2 apart
    ([("conv2d", dict(out_channels=1, kernel=3, dilation=3, padding="same"))], 7, 1),
    ([("maxpool2d", dict(kernel=3, stride=2, ceil_mode=True)), ("conv2d", dict(out_channels=1, kernel=3))], 7, 2),
    ([("avgpool2d", dict(kernel=2, stride=2)), ("avgpool2d", dict(kernel=2, stride=2))], 4, 4),
    ([("conv2d", dict(out_channels=1, kernel=[1, 7], padding=[0, 3])),
      ("conv2d", dict(out_channels=1, kernel=[7, 1], padding=[3, 0]))], 7, 1),         # 1x7 then 7x1: 7x7
])
def test_rules_for_stride_dilation_and_ceil_mode_pools(layers, size, jump):
    g, last = _chain(*layers)
    field = receptive_fields(g)[last]
    assert field.h.size == size and field.w.size == size and field.h.jump == jump
    units = [(0, 0), (3, 3)]
    brute, shape = _brute_support(g, last, units)
    assert _predicted(field, shape, units) == brute


def test_ceil_mode_changes_the_grid_not_the_field():
    g1, a = _chain(("maxpool2d", dict(kernel=3, stride=2, ceil_mode=True)), hw=8)
    g2, b = _chain(("maxpool2d", dict(kernel=3, stride=2, ceil_mode=False)), hw=8)
    f1, f2 = receptive_fields(g1)[a], receptive_fields(g2)[b]
    assert f1 == f2 and analyze(g1).blocks[a].out_shape != analyze(g2).blocks[b].out_shape
    brute, shape = _brute_support(g1, a, [(3, 3)])  # the last (ceil) window hangs over the edge: clipped
    assert brute == _predicted(f1, shape, [(3, 3)]) == [((6, 7), (6, 7))]


def test_a_concat_sees_as_far_as_its_widest_branch_and_flatten_sees_everything():
    g = templates.build("googlenet", aux=False)
    rf = receptive_fields(g)
    assert rf["inception3a"].h.size > rf["maxpool2"].h.size
    assert rf["fc"].whole and rf["fc"].describe() == "the whole input"


def test_the_inspector_and_info_show_the_field(make_window, capsys):
    import json

    from PySide6.QtCore import Qt

    from builder.cli import main
    win = make_window("googlenet", show=False)
    win.inspector.show_block("inception3a")
    assert "receptive field</b> 43x43 px, jump 8" in win.inspector.figures.text()
    win.inspector.show_block("fc")
    assert "receptive field</b> the whole input" in win.inspector.figures.text()
    win.layers.refresh(win.doc.analysis)  # the Layers table has the column too
    m = win.layers.model
    col = [m.headerData(i, Qt.Horizontal) for i in range(m.columnCount())].index("receptive field")
    cells = {m.text(r, 0).strip(): m.text(r, col) for r in range(m.rowCount())}
    assert cells["inception5b"] == "379x379 /32" and cells["fc"] == "whole input"
    assert main(["info", "googlenet", "--json"]) == 0
    blocks = {b["id"]: b for b in json.loads(capsys.readouterr().out)["blocks"]}
    assert blocks["inception5b"]["receptive_field"]["h"] == {"size": 379.0, "jump": 32, "start": 22.0}
