import subprocess
import sys

import pytest
import torch

from builder.backend.compiler import compile_graph
from builder.core.errors import CompileError
from builder.core.graph import Graph


def small_inception(aux=True):
    g = Graph("small")
    g.add_block("input", {"channels": 3, "height": 32, "width": 32}, "inp")
    g.add_block("basic_conv", {"out_channels": 16, "kernel": 3, "padding": 1}, "stem")
    g.connect("inp", "stem")
    g.add_block("inception_v1", {"ch1x1": 8, "ch3x3red": 8, "ch3x3": 8, "ch5x5red": 4, "ch5x5": 4,
                                 "pool_proj": 4}, "inc")
    g.connect("stem", "inc")
    if aux:
        g.add_block("classifier_head", {"num_classes": 5, "dropout": 0.0}, "auxhead")
        g.connect("stem", "auxhead")
        g.add_block("output", {"role": "aux", "loss_weight": 0.3}, "aux_out")
        g.connect("auxhead", "aux_out")
    g.add_block("classifier_head", {"num_classes": 5, "dropout": 0.0}, "head")
    g.connect("inc", "head")
    g.add_block("output", {}, "out")
    g.connect("head", "out")
    return g


def test_train_mode_returns_aux_and_eval_never_computes_them():
    net = compile_graph(small_inception())
    calls = []
    net.auxhead.fc.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    net.train()
    out = net(x)
    assert isinstance(out, tuple) and len(out) == 2 and out[0].shape == out[1].shape == (2, 5)
    assert len(calls) == 1
    net.eval()
    y = net(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 5)
    assert len(calls) == 1  # the aux head did not run
    assert net.loss_weights == [1.0, 0.3]


def test_state_dict_keys_come_from_block_ids():
    keys = set(compile_graph(small_inception()).state_dict())
    assert "inc.branch2.1.conv.weight" in keys and "head.fc.weight" in keys and "stem.bn.running_mean" in keys


def test_inplace_relu_is_disabled_where_another_block_reads_the_same_tensor():
    g = Graph()
    g.add_block("input", {"channels": 2, "height": 4, "width": 4}, "i")
    g.add_block("conv2d", {"out_channels": 2, "kernel": 1}, "c")
    g.add_block("relu", {"inplace": True}, "r")
    g.add_block("add", {}, "s")
    g.add_block("output", {}, "o")
    g.connect("i", "c")
    g.connect("c", "r")
    g.connect("r", "s")
    g.connect("c", "s")
    g.connect("s", "o")
    net = compile_graph(g).eval()
    x = torch.randn(1, 2, 4, 4)
    with torch.no_grad():
        c = net.c(x)
        torch.testing.assert_close(net(x), torch.relu(c) + c)


def test_graph_with_errors_does_not_compile():
    g = small_inception()
    g.set_params("inp", {"height": 2, "width": 2})
    g.set_params("stem", {"padding": 0})
    with pytest.raises(CompileError, match="stem"):
        compile_graph(g)


def test_jit_trace_and_torch_export_match_eager():
    net = compile_graph(small_inception()).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
        traced = torch.jit.trace(net, x)
        torch.testing.assert_close(traced(x), ref)
    ep = torch.export.export(net, (x,))
    torch.testing.assert_close(ep.module()(x), ref)


def test_torch_compile_matches_eager():
    """The generated forward is captured by TorchDynamo as one graph (fullgraph: no graph break), and the
    compiled graph, run through AOTAutograd, gives eager's outputs and gradients. (The aot_eager backend skips
    only Inductor's C++ code generation, which is torch's own and takes half a minute here.)"""
    torch._dynamo.reset()
    net = compile_graph(small_inception(aux=False)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
        fast = torch.compile(net, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(fast(x), ref, rtol=1e-5, atol=1e-5)
    net.train()
    fast = torch.compile(net, fullgraph=True, backend="aot_eager")
    fast(x).square().sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    net(x).square().sum().backward()
    for a, b in zip(grads, (p.grad for p in net.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_core_does_not_import_qt():
    code = ("import sys, blocks, builder, builder.cli, builder.core.project, builder.backend.compiler, templates, exports\n"
            "import builder.insight.report, builder.core.layout\n"
            "g = templates.build('googlenet'); builder.analyze(g)\n"
            "assert not [m for m in sys.modules if m.startswith('PySide6')], 'Qt was imported'\n"
            "print('clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "clean" in out.stdout


def test_analysis_does_not_import_torch():
    code = ("import sys, templates, builder\n"
            "builder.analyze(templates.build('inception_v3'))\n"
            "assert 'torch' not in sys.modules\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
