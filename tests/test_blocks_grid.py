"""Every primitive kind over a grid of parameters: analysis == torch (shape, params, 2 x MACs == FlopCounterMode),
and analysis reports an error exactly where torch refuses."""
import itertools

import pytest
import torch

from blocks import REGISTRY
from builder.analysis import analyze
from builder.compiler import compile_graph
from conftest import flops_macs
from helpers import single

INPUTS = [(4, 15, 15), (4, 16, 12), (2, 7, 8)]


def check(type_id, params, in_shape):
    g = single(type_id, params, in_shape)
    a = analyze(g)
    rep = a.blocks["blk"]
    torch_error = None
    try:
        spec = REGISTRY[type_id]
        m = spec.build(g.block("blk").params, [in_shape])
        x = torch.randn(2, *in_shape)
        m.eval()
        with torch.no_grad():
            y = m(x)
    except (RuntimeError, ValueError) as e:
        torch_error = e
    if torch_error is not None:
        assert rep.errors, f"torch refused {type_id} {params} on {in_shape} ({torch_error}) but analysis did not"
        assert rep.errors[0].message
        return None
    assert not rep.errors, f"{type_id} {params} on {in_shape}: analysis error {rep.errors} but torch works"
    net = compile_graph(g).eval()
    x = torch.randn(2, *in_shape)
    with torch.no_grad():
        out = net(x)
    assert tuple(out.shape[1:]) == rep.out_shape == tuple(y.shape[1:])
    assert rep.params == sum(p.numel() for p in net.parameters())
    assert rep.macs == flops_macs(net, x[:1])
    assert rep.activations == out[0].numel()
    return rep


def _conv_grid():
    kernels = [1, 3, [1, 7], [7, 1], 5, [2, 3], 16]
    strides = [1, 2, [2, 1]]
    pads = [0, 1, [0, 3], "same", "valid"]
    for i, (k, s, p) in enumerate(itertools.product(kernels, strides, pads)):
        yield dict(out_channels=6, kernel=k, stride=s, padding=p, dilation=[1, 2][i % 2] if k != 16 else 1,
                   groups=[1, 2][(i // 2) % 2], bias=bool(i % 3)), INPUTS[i % 3]


@pytest.mark.parametrize("params,shape", list(_conv_grid()))
def test_conv2d(params, shape):
    check("conv2d", params, shape)


@pytest.mark.parametrize("k,s,p,bn", list(itertools.product([1, 3, [1, 3], [5, 1]], [1, 2], [0, 1, "same"],
                                                             [True, False])))
def test_basic_conv(k, s, p, bn):
    check("basic_conv", dict(out_channels=8, kernel=k, stride=s, padding=p, batch_norm=bn), (4, 15, 14))


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("k,s,p,ceil", list(itertools.product([2, 3, [3, 1], 8], [1, 2, 3], [0, 1],
                                                                [False, True])))
def test_pools(kind, k, s, p, ceil):
    for shape in INPUTS:
        check(kind, dict(kernel=k, stride=s, padding=p, ceil_mode=ceil), shape)


@pytest.mark.parametrize("size", [1, 4, [6, 6], [2, 3], [20, 20]])
def test_adaptive_pool(size):
    for shape in INPUTS:
        check("adaptive_avgpool2d", dict(output_size=size), shape)


ACTIVATIONS = [s.type_id for s in REGISTRY if s.category == "Activation"]  # a new one is tested as it lands


@pytest.mark.parametrize("kind,params", [("batchnorm2d", {}), ("batchnorm2d", {"affine": False}),
                                         ("lrn", {"size": 5}), ("dropout", {"p": 0.3}), ("flatten", {})]
                         + [(k, {}) for k in ACTIVATIONS]
                         + [(k, {"inplace": False}) for k in ACTIVATIONS if REGISTRY[k].inplace])
def test_elementwise_and_norms(kind, params):
    for shape in INPUTS:
        rep = check(kind, params, shape)
        if kind != "flatten":
            assert rep.out_shape == shape


@pytest.mark.parametrize("out,bias", [(10, True), (1, False), (300, True)])
def test_linear(out, bias):
    g = single("flatten", {}, (3, 5, 4))
    g.add_block("linear", {"out_features": out, "bias": bias}, "fc")
    g.disconnect("blk", "out", "x")
    g.connect("blk", "fc")
    g.connect("fc", "out")
    a = analyze(g)
    net = compile_graph(g).eval()
    x = torch.randn(1, 3, 5, 4)
    assert tuple(net(x).shape[1:]) == a.blocks["fc"].out_shape == (out,)
    assert a.inference.params == sum(p.numel() for p in net.parameters()) == 60 * out + (out if bias else 0)
    assert a.inference.macs == flops_macs(net, x) == 60 * out


@pytest.mark.parametrize("shapes", [[(3, 8, 8), (5, 8, 8)], [(1, 9, 7), (2, 9, 7), (7, 9, 7)]])
def test_concat(shapes):
    g = single("concat", {}, shapes)
    a = analyze(g)
    assert a.ok, a.errors
    net = compile_graph(g).eval()
    out = net(torch.randn(1, *shapes[0]))
    assert tuple(out.shape[1:]) == a.blocks["blk"].out_shape == (sum(s[0] for s in shapes),) + shapes[0][1:]
    assert a.inference.macs == flops_macs(net, torch.randn(1, *shapes[0]))


def test_add():
    g = single("add", {}, [(3, 8, 8), (3, 8, 8)])
    a = analyze(g)
    assert a.ok
    net = compile_graph(g).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.pre0(x) + net.pre1(x))


def test_activations_match_torch_functions():
    """Each activation computes the function its name says (a grid test checks shapes and costs, this the
    values), with in-place on and off."""
    import torch.nn.functional as F
    ref = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu}
    assert set(ref) == set(ACTIVATIONS)
    x = torch.randn(2, 3, 5, 5) * 8
    for kind, fn in ref.items():
        for inplace in ((True, False) if REGISTRY[kind].inplace else (None,)):
            params = {} if inplace is None else {"inplace": inplace}
            net = compile_graph(single(kind, params, (3, 5, 5))).eval()
            with torch.no_grad():
                torch.testing.assert_close(net(x.clone()), fn(x))


def test_every_primitive_is_covered():
    tested = {"conv2d", "basic_conv", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm2d", "lrn",
              "dropout", "flatten", "linear", "concat", "add", "input", "output"} | set(ACTIVATIONS)
    primitives = {s.type_id for s in REGISTRY if not s.is_composite}
    assert primitives <= tested, primitives - tested
