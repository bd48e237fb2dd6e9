"""Random valid graphs: analysis == compiled module (shape, params, MACs)."""
import torch
from hypothesis import HealthCheck, given, settings

from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from conftest import flops_macs
from strategies import graphs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_analysis_equals_torch(g):
    a = analyze(g)
    assert a.ok, a.errors
    net = compile_graph(g).eval()
    c, h, w = a.blocks["inp"].out_shape
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        y = net(x)
    assert tuple(y.shape[1:]) == a.blocks["out"].out_shape
    assert a.training.params == sum(p.numel() for p in net.parameters())
    assert a.inference.macs == flops_macs(net, x[:1])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_save_and_load_round_trip(g):
    from builder.core import project
    text = project.dumps(g)
    g2 = project.loads(text)
    assert g2.signature() == g.signature()
    assert project.dumps(g2) == text
    a, b = analyze(g), analyze(g2)
    assert (a.training.params, a.inference.macs, a.blocks["out"].out_shape) == \
        (b.training.params, b.inference.macs, b.blocks["out"].out_shape)
