"""Every primitive kind over a grid of parameters: analysis == torch (shape, params, 2 x MACs == FlopCounterMode),
and analysis reports an error exactly where torch refuses."""
import itertools

import pytest
import torch

from blocks import REGISTRY
from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
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
                                         ("lrn", {"size": 5}), ("dropout", {"p": 0.3}), ("flatten", {}),
                                         ("identity", {}), ("dropout2d", {"p": 0.2}), ("layernorm2d", {}),
                                         ("layernorm2d", {"eps": 1e-5}), ("channel_shuffle", {"groups": 2}),
                                         ("stochastic_depth", {"p": 0.3, "mode": "row"}),
                                         ("stochastic_depth", {"p": 0.5, "mode": "batch"})]
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
    ref = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
           "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "silu": F.silu, "leaky_relu": F.leaky_relu,
           "softmax": lambda t: F.softmax(t, 1), "clamp": lambda t: t.clamp(-1, 1), "scalar_op": lambda t: t * 1.0,
           "elu": F.elu, "celu": F.celu, "selu": F.selu, "softplus": F.softplus, "prelu": lambda t: F.prelu(
               t, torch.tensor([0.25])), "log_softmax": lambda t: F.log_softmax(t, 1), "mish": F.mish}
    assert set(ref) == set(ACTIVATIONS)
    x = torch.randn(2, 3, 5, 5) * 8
    for kind, fn in ref.items():
        for inplace in ((True, False) if REGISTRY[kind].inplace else (None,)):
            params = {} if inplace is None else {"inplace": inplace}
            net = compile_graph(single(kind, params, (3, 5, 5))).eval()
            with torch.no_grad():
                torch.testing.assert_close(net(x.clone()), fn(x))


def test_the_new_kinds_compute_what_torch_does():
    """Values, not only shapes: each against the torch function it stands for."""
    import torch.nn.functional as F
    from torchvision.ops import StochasticDepth
    x = torch.randn(2, 4, 6, 5)
    cases = [("layernorm2d", {"eps": 1e-6}, lambda t: F.layer_norm(t.permute(0, 2, 3, 1), (4,), eps=1e-6)
              .permute(0, 3, 1, 2)),
             ("channel_shuffle", {"groups": 2}, lambda t: t.view(2, 2, 2, 6, 5).transpose(1, 2).reshape(2, 4, 6, 5)),
             ("channel_slice", {"start": 1, "stop": 3}, lambda t: t[:, 1:3]),
             ("zeropad2d", {"horizontal": [1, 2], "vertical": [0, 3]}, lambda t: F.pad(t, (1, 2, 0, 3))),
             ("upsample", {"scale_factor": [2, 3], "mode": "nearest"},
              lambda t: F.interpolate(t, scale_factor=(2, 3), mode="nearest")),
             ("upsample", {"scale_factor": 2, "mode": "bilinear"},
              lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)),
             ("stochastic_depth", {"p": 0.4}, lambda t: t), ("identity", {}, lambda t: t)]
    for kind, params, fn in cases:
        net = compile_graph(single(kind, params, (4, 6, 5))).eval()
        with torch.no_grad():
            torch.testing.assert_close(net(x), fn(x), msg=kind)
    torch.manual_seed(0)
    ours = compile_graph(single("stochastic_depth", {"p": 0.4, "mode": "row"}, (4, 6, 5))).train()
    theirs = StochasticDepth(0.4, "row").train()
    torch.manual_seed(1)
    a = ours(x)
    torch.manual_seed(1)
    torch.testing.assert_close(a, theirs(x))  # the same draws, the same scaling as torchvision's


@pytest.mark.parametrize("k,s,p,op,g", [(2, 2, 0, 0, 1), (3, 2, 1, 1, 1), (4, 2, 1, 0, 2), ([3, 1], [2, 1], 0, 0, 1),
                                        (3, 1, 1, 0, 1), (5, 3, 2, 2, 2), (3, 2, 0, 2, 1), (16, 1, 0, 0, 1)])
def test_conv_transpose2d(k, s, p, op, g):
    for shape in INPUTS:
        check("conv_transpose2d", dict(out_channels=6, kernel=k, stride=s, padding=p, output_padding=op, groups=g,
                                       bias=g == 1), shape)


@pytest.mark.parametrize("h,v", [(0, 0), (1, [0, 2]), ([3, 0], 1)])
def test_zeropad(h, v):
    for shape in INPUTS:
        rep = check("zeropad2d", dict(horizontal=h, vertical=v), shape)
        assert rep.out_shape[0] == shape[0]


@pytest.mark.parametrize("sf,mode", [(2, "nearest"), ([1, 3], "nearest"), (2, "bilinear")])
def test_upsample(sf, mode):
    for shape in INPUTS:
        check("upsample", dict(scale_factor=sf, mode=mode), shape)


@pytest.mark.parametrize("start,stop", [(0, 1), (1, 2), (0, 4), (2, 5), (3, 3)])
def test_channel_slice(start, stop):
    for shape in INPUTS:
        if start < stop <= shape[0]:
            check("channel_slice", dict(start=start, stop=stop), shape)
        else:  # torch's slicing would quietly clamp (or give zero channels): the block says so instead
            rep = analyze(single("channel_slice", dict(start=start, stop=stop), shape)).blocks["blk"]
            assert rep.errors and "must lie inside" in rep.errors[0].message


def test_channel_shuffle_refuses_groups_that_do_not_divide():
    for shape in INPUTS:
        check("channel_shuffle", dict(groups=3), shape)


@pytest.mark.parametrize("shapes", [[(3, 8, 8), (3, 8, 8)], [(4, 8, 8), (4, 1, 1)], [(4, 1, 1), (4, 6, 5)],
                                    [(3, 8, 8), (2, 8, 8)]])
def test_mul_broadcasts_like_torch(shapes):
    g = single("mul", {}, shapes)
    a = analyze(g)
    a_err = bool(a.blocks["blk"].errors)
    x = [torch.randn(2, *s) for s in shapes]
    try:
        want = x[0] * x[1]
    except RuntimeError:
        assert a_err, "torch refused the product but analysis did not"
        return
    assert not a_err and a.blocks["blk"].out_shape == tuple(want.shape[1:])


@pytest.mark.parametrize("sd", [0.0, 0.3])
def test_convnext_block_equals_torchvisions_cnblock(sd):
    from torchvision.models.convnext import CNBlock
    for shape in [(8, 9, 9), (16, 7, 5)]:
        rep = check("convnext_block", {"stochastic_depth_prob": sd}, shape)
        theirs = CNBlock(shape[0], 1e-6, sd).eval()
        net = compile_graph(single("convnext_block", {"stochastic_depth_prob": sd}, shape)).eval()
        net.blk.load_state_dict(theirs.state_dict(), strict=True)  # the same children, key for key
        with torch.no_grad():
            for p in theirs.parameters():
                p.normal_()
            net.blk.load_state_dict(theirs.state_dict())
            x = torch.randn(2, *shape)
            torch.testing.assert_close(net(x), theirs(x))
        assert rep.params == sum(p.numel() for p in theirs.parameters())


PRIMITIVES = [s.type_id for s in REGISTRY if not s.is_composite and s.type_id not in ("input", "output")]


def _at_defaults(spec):
    """input -> (flatten, for a kind that takes a vector) -> the kind at its defaults (fed as many times as it
    needs inputs) -> output; and the input shape."""
    g = single(spec.type_id, None, (4, 15, 15), n_inputs=max(spec.min_inputs, 1))
    if not analyze(g).blocks["blk"].errors:
        return g, (4, 15, 15)
    from builder.core.graph import Graph
    g = Graph("vector")
    g.add_block("input", {"channels": 16, "height": 1, "width": 1}, "inp")
    g.add_block("flatten", {}, "flat")
    g.add_block(spec.type_id, {}, "blk")
    g.add_block("output", {}, "out")
    g.connect("inp", "flat")
    for _ in range(max(spec.min_inputs, 1)):
        g.connect("flat", "blk")
    g.connect("blk", "out")
    return g, (16, 1, 1)


@pytest.mark.parametrize("kind", PRIMITIVES)
def test_every_primitive_kind_at_its_defaults_matches_torch(kind):
    """Every registered primitive, whatever file added it (no list kept here): at its default parameters,
    analysis equals torch (shape, params, MACs, activations), one input or as many as it needs."""
    spec = REGISTRY[kind]
    g, shape = _at_defaults(spec)
    a = analyze(g)
    assert not a.blocks["blk"].errors, (kind, a.blocks["blk"].errors)
    net = compile_graph(g).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out = net(x)
    rep = a.blocks["blk"]
    assert tuple(out.shape[1:]) == rep.out_shape
    assert rep.params == sum(p.numel() for n, p in net.named_parameters() if n.startswith("blk."))
    assert rep.macs == flops_macs(net, x[:1]) - sum(a.blocks[b].macs for b in a.blocks if b != "blk")
