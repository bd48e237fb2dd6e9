"""Inception branches and modules, grid reductions, auxiliary and classifier heads, ResNet blocks, mlpconv.

Each kind's inside uses torchvision's child names (``branch1``, ``branch3x3dbl_2``, ``downsample.0``, ...),
so a template built from these blocks loads torchvision's weights unchanged.
"""
from __future__ import annotations

from . import tables
from .composite import IN, OptionalPart, Subgraph
from .imports import FromTorch, children, pair
from .spec import MAX_CHANNELS, BlockError, BlockSpec, Param, Upgrade, register

CAT_INCEPTION = "Inception modules"
CAT_BRANCH = "Inception branches"
CAT_REDUCTION = "Grid reductions"
CAT_HEAD = "Heads"
CAT_RESIDUAL = "Residual & NIN"


def ch(name, default, help_, code=""):
    return Param(name, "int", default, help_, min=1, max=MAX_CHANNELS, code=code)


BN = Param("batch_norm", "bool", True, "Batch norm after every convolution (the GoogLeNet paper has none)")


def composite(type_id, title, category, params, expand, description, summary=None, class_name="", report=None,
              **facts):
    """A composite kind; ``class_name``: the class exported code defines for it (torchvision's name), by default
    the type id in CamelCase; ``report``: its row in a paper-style table (blocks/tables.py); ``facts``: any other
    field of the spec (``from_torch``)."""
    name = class_name or "".join(w[:1].upper() + w[1:] for w in type_id.split("_"))
    return register(BlockSpec(type_id, title, category, params=tuple(params), expand=expand,
                              description=description, summary=summary, class_name=name, report=report, **facts))


# ---------------------------------------------------------------- Inception v1 branches

composite("branch_1x1", "Branch: 1x1", CAT_BRANCH, [ch("out_channels", 64, "1x1 filters"), BN],
          lambda p, s: _one(lambda g: g.conv("0", IN, p["out_channels"], 1, bn=p["batch_norm"])),
          "A 1x1 convolution branch.", lambda p: f"1x1 {p['out_channels']}")


def _reduce_then(kernel):
    def expand(p, s):
        g = Subgraph()
        r = g.conv("0", IN, p["reduce"], 1, bn=p["batch_norm"])
        k = kernel if kernel != 5 or not p.get("factorized") else 3
        if kernel == 5 and p.get("factorized"):
            r = g.conv("1", r, p["out_channels"], 3, padding=1, bn=p["batch_norm"])
            g.conv("2", r, p["out_channels"], 3, padding=1, bn=p["batch_norm"])
        else:
            g.conv("1", r, p["out_channels"], k, padding=k // 2, bn=p["batch_norm"])
        return g
    return expand


composite("branch_reduce_3x3", "Branch: 1x1 reduce -> 3x3", CAT_BRANCH,
          [ch("reduce", 96, "1x1 reduce filters"), ch("out_channels", 128, "3x3 filters"), BN], _reduce_then(3),
          "1x1 channel reduction before a 3x3 convolution.", lambda p: f"{p['reduce']} -> 3x3 {p['out_channels']}")
composite("branch_reduce_5x5", "Branch: 1x1 reduce -> 5x5", CAT_BRANCH,
          [ch("reduce", 16, "1x1 reduce filters"), ch("out_channels", 32, "5x5 filters"),
           Param("factorized", "bool", False, "Two 3x3 instead of one 5x5 (Inception-v3, figure 5)"), BN],
          _reduce_then(5), "1x1 channel reduction before a 5x5 (or two 3x3) convolution.",
          lambda p: f"{p['reduce']} -> {'3x3,3x3' if p['factorized'] else '5x5'} {p['out_channels']}")
composite("branch_pool_proj", "Branch: pool -> 1x1 proj", CAT_BRANCH,
          [Param("pool", "choice", "max", "Pooling before the projection", choices=("max", "avg")),
           ch("out_channels", 32, "1x1 projection filters"), BN],
          lambda p, s: _one(lambda g: g.conv("1", _pool(g, "0", IN, p["pool"], 3, 1, 1), p["out_channels"], 1,
                                             bn=p["batch_norm"])),
          "3x3/1 pooling then a 1x1 projection.", lambda p: f"{p['pool']}pool -> {p['out_channels']}")


def _one(fn):
    g = Subgraph()
    fn(g)
    return g


def _pool(g, local_id, src, kind, k, s, pad, ceil=False):
    if kind == "max":
        return g.add(local_id, "maxpool2d", src, kernel=k, stride=s, padding=pad, ceil_mode=ceil)
    return g.add(local_id, "avgpool2d", src, kernel=k, stride=s, padding=pad, ceil_mode=ceil)


# ---------------------------------------------------------------- Inception v1 modules

V1_PARAMS = [ch("ch1x1", 64, "#1x1"), ch("ch3x3red", 96, "#3x3 reduce"), ch("ch3x3", 128, "#3x3"),
             ch("ch5x5red", 16, "#5x5 reduce"), ch("ch5x5", 32, "#5x5"), ch("pool_proj", 32, "pool proj")]


def _inception_v1(p, s):
    bn, tv = p["batch_norm"], p["variant"] == "torchvision"
    g = Subgraph()
    b1 = g.conv("branch1", IN, p["ch1x1"], 1, bn=bn)
    b2 = g.conv("branch2.1", g.conv("branch2.0", IN, p["ch3x3red"], 1, bn=bn), p["ch3x3"], 3, padding=1, bn=bn)
    k5 = 3 if tv else 5  # torchvision keeps a 3x3 where the paper has the 5x5 (a known, kept difference)
    b3 = g.conv("branch3.1", g.conv("branch3.0", IN, p["ch5x5red"], 1, bn=bn), p["ch5x5"], k5, padding=k5 // 2,
                bn=bn)
    b4 = g.conv("branch4.1", _pool(g, "branch4.0", IN, "max", 3, 1, 1, ceil=tv), p["pool_proj"], 1, bn=bn)
    g.add("concat", "concat", [b1, b2, b3, b4])
    return g


def _v1_summary(p):
    return f"{p['ch1x1']}|{p['ch3x3red']}>{p['ch3x3']}|{p['ch5x5red']}>{p['ch5x5']}|{p['pool_proj']}"


composite("inception_v1", "Inception v1 module", CAT_INCEPTION,
          V1_PARAMS + [Param("variant", "choice", "torchvision",
                             "torchvision (3x3 in the '5x5' branch, ceil pool) or paper (true 5x5)",
                             choices=("torchvision", "paper")), BN],
          _inception_v1, "GoogLeNet's module with 1x1 dimension reductions (the six numbers of Table 1).",
          _v1_summary, class_name="Inception", report=tables.columns("inception", {"#1x1": "ch1x1", "#3x3 reduce": "ch3x3red", "#3x3": "ch3x3", "#5x5 reduce": "ch5x5red", "#5x5": "ch5x5", "pool proj": "pool_proj"}),
          from_torch=FromTorch(("torchvision.models.googlenet.Inception",), children(dict(
              ch1x1="branch1.conv", ch3x3red="branch2.0.conv", ch3x3="branch2.1.conv", ch5x5red="branch3.0.conv",
              ch5x5="branch3.1.conv", pool_proj="branch4.1.conv"),
              variant=lambda m: "paper" if tuple(m.branch3[1].conv.kernel_size) == (5, 5) else "torchvision",
              batch_norm=lambda m: getattr(m.branch1, "bn", None) is not None)),
          upgrade=Upgrade("inception_a", lambda p: {
              "ch1x1": p["ch1x1"], "ch5x5red": p["ch3x3red"], "ch5x5": p["ch3x3"], "branch2_kernel": 3,
              "dblred": p["ch5x5red"], "dbl": p["ch5x5"], "pool_features": p["pool_proj"],
              "batch_norm": p["batch_norm"]}, "can become Inception-v3 A",
              "Its 5x5 branch can be two 3x3 and its pool branch an average pool, keeping every output shape "
              "(figure 5 of the Inception-v3 paper)."), short="Inception")


def _inception_naive(p, s):
    g = Subgraph()
    bn = p["batch_norm"]
    g.add("concat", "concat", [
        g.conv("branch1", IN, p["ch1x1"], 1, bn=bn),
        g.conv("branch2", IN, p["ch3x3"], 3, padding=1, bn=bn),
        g.conv("branch3", IN, p["ch5x5"], 5, padding=2, bn=bn),
        _pool(g, "branch4", IN, "max", 3, 1, 1)])
    return g


composite("inception_naive", "Inception module, naive", CAT_INCEPTION,
          [ch("ch1x1", 64, "#1x1"), ch("ch3x3", 128, "#3x3"), ch("ch5x5", 32, "#5x5"),
           Param("batch_norm", "bool", False, "Batch norm after every convolution")],
          _inception_naive, "1x1, 3x3, 5x5 and 3x3 max pool side by side, without reductions (figure 2a).",
          lambda p: f"{p['ch1x1']}|{p['ch3x3']}|{p['ch5x5']}|pool", class_name="InceptionNaive", report=tables.columns("inception (naive)", {"#1x1": "ch1x1", "#3x3": "ch3x3", "#5x5": "ch5x5"}))


# ---------------------------------------------------------------- Inception-v3 modules (torchvision names)

def _avg_proj(g, src, out, bn, name="branch_pool"):
    return g.conv(name, g.add("pool", "avgpool2d", src, kernel=3, stride=1, padding=1), out, 1, bn=bn)


def _inception_a(p, s):
    g, bn = Subgraph(), p["batch_norm"]
    b1 = g.conv("branch1x1", IN, p["ch1x1"], 1, bn=bn)
    k = p["branch2_kernel"]
    b5 = g.conv("branch5x5_2", g.conv("branch5x5_1", IN, p["ch5x5red"], 1, bn=bn), p["ch5x5"], k,
                padding=k // 2, bn=bn)
    d = g.conv("branch3x3dbl_1", IN, p["dblred"], 1, bn=bn)
    d = g.conv("branch3x3dbl_2", d, p["dbl"], 3, padding=1, bn=bn)
    d = g.conv("branch3x3dbl_3", d, p["dbl"], 3, padding=1, bn=bn)
    g.add("concat", "concat", [b1, b5, d, _avg_proj(g, IN, p["pool_features"], bn)])
    return g


composite("inception_a", "Inception-v3 A (fig. 5)", CAT_INCEPTION,
          [ch("ch1x1", 64, "1x1 branch"), ch("ch5x5red", 48, "reduce before the 5x5"),
           ch("ch5x5", 64, "5x5 branch"),
           Param("branch2_kernel", "int", 5, "Kernel of the single-conv branch (torchvision: 5; figure 5: 3)",
                 min=1, max=7),
           ch("dblred", 64, "reduce before the double 3x3"), ch("dbl", 96, "double 3x3 branch"),
           ch("pool_features", 32, "avg pool -> 1x1 projection"), BN],
          _inception_a, "35x35 module: the 5x5 factorised into two 3x3 (Mixed_5b..5d).",
          lambda p: f"pool {p['pool_features']}", class_name="InceptionA", report=tables.module("inception A"),
          from_torch=FromTorch(("torchvision.models.inception.InceptionA",), children(dict(
              ch1x1="branch1x1.conv", ch5x5red="branch5x5_1.conv", ch5x5="branch5x5_2.conv",
              dblred="branch3x3dbl_1.conv", dbl="branch3x3dbl_2.conv", pool_features="branch_pool.conv"),
              branch2_kernel=lambda m: m.branch5x5_2.conv.kernel_size[0], batch_norm=True)))


def _inception_b(p, s):
    g, bn = Subgraph(), p["batch_norm"]
    b3 = g.conv("branch3x3", IN, p["ch3x3"], 3, stride=2, bn=bn)
    d = g.conv("branch3x3dbl_1", IN, p["dblred"], 1, bn=bn)
    d = g.conv("branch3x3dbl_2", d, p["dbl"], 3, padding=1, bn=bn)
    d = g.conv("branch3x3dbl_3", d, p["dbl"], 3, stride=2, bn=bn)
    g.add("concat", "concat", [b3, d, _pool(g, "pool", IN, "max", 3, 2, 0)])
    return g


composite("inception_b", "Grid reduction B (35 -> 17)", CAT_REDUCTION,
          [ch("ch3x3", 384, "stride-2 3x3 branch"), ch("dblred", 64, "reduce before the double 3x3"),
           ch("dbl", 96, "double 3x3 branch (the second with stride 2)"), BN],
          _inception_b, "Efficient grid reduction (fig. 10): stride-2 convs and a stride-2 pool in parallel.",
          lambda p: f"{p['ch3x3']}|{p['dbl']}|pool", class_name="InceptionB", report=tables.module("reduction B"),
          from_torch=FromTorch(("torchvision.models.inception.InceptionB",), children(dict(
              ch3x3="branch3x3.conv", dblred="branch3x3dbl_1.conv", dbl="branch3x3dbl_2.conv"), batch_norm=True)))


def _inception_c(p, s):
    g, bn, n, c7 = Subgraph(), p["batch_norm"], p["n"], p["c7"]
    row, col = dict(kernel=[1, n], padding=[0, n // 2]), dict(kernel=[n, 1], padding=[n // 2, 0])

    def c(local, src, out, shape):
        return g.conv(local, src, out, shape["kernel"], padding=shape["padding"], bn=bn)

    b1 = g.conv("branch1x1", IN, p["ch1x1"], 1, bn=bn)
    b7 = g.conv("branch7x7_1", IN, c7, 1, bn=bn)
    b7 = c("branch7x7_3", c("branch7x7_2", b7, c7, row), p["ch7x7"], col)
    d = g.conv("branch7x7dbl_1", IN, c7, 1, bn=bn)
    d = c("branch7x7dbl_2", d, c7, col)
    d = c("branch7x7dbl_3", d, c7, row)
    d = c("branch7x7dbl_4", d, c7, col)
    d = c("branch7x7dbl_5", d, p["ch7x7"], row)
    g.add("concat", "concat", [b1, b7, d, _avg_proj(g, IN, p["pool_features"], bn)])
    return g


composite("inception_c", "Inception-v3 C (fig. 6, 1xn/nx1)", CAT_INCEPTION,
          [ch("ch1x1", 192, "1x1 branch"), ch("c7", 128, "channels inside the factorised branches", "channels_7x7"),
           ch("ch7x7", 192, "output of each factorised branch"),
           Param("n", "int", 7, "n of the 1xn and nx1 convolutions (odd)", min=1, max=31),
           ch("pool_features", 192, "avg pool -> 1x1 projection"), BN],
          _inception_c, "17x17 module: nxn factorised into 1xn then nx1 (Mixed_6b..6e).",
          lambda p: f"n={p['n']}, c7={p['c7']}", class_name="InceptionC", report=tables.module("inception C"),
          from_torch=FromTorch(("torchvision.models.inception.InceptionC",), children(dict(
              ch1x1="branch1x1.conv", c7="branch7x7_1.conv", ch7x7="branch7x7_3.conv",
              pool_features="branch_pool.conv"), n=lambda m: m.branch7x7_2.conv.kernel_size[1], batch_norm=True)))


def _inception_d(p, s):
    g, bn, n = Subgraph(), p["batch_norm"], p["n"]
    b3 = g.conv("branch3x3_2", g.conv("branch3x3_1", IN, p["ch3x3red"], 1, bn=bn), p["ch3x3"], 3, stride=2, bn=bn)
    b7 = g.conv("branch7x7x3_1", IN, p["ch7red"], 1, bn=bn)
    b7 = g.conv("branch7x7x3_2", b7, p["ch7red"], [1, n], padding=[0, n // 2], bn=bn)
    b7 = g.conv("branch7x7x3_3", b7, p["ch7red"], [n, 1], padding=[n // 2, 0], bn=bn)
    b7 = g.conv("branch7x7x3_4", b7, p["ch7"], 3, stride=2, bn=bn)
    g.add("concat", "concat", [b3, b7, _pool(g, "pool", IN, "max", 3, 2, 0)])
    return g


composite("inception_d", "Grid reduction D (17 -> 8)", CAT_REDUCTION,
          [ch("ch3x3red", 192, "reduce before the stride-2 3x3"), ch("ch3x3", 320, "stride-2 3x3"),
           ch("ch7red", 192, "1x1, 1xn, nx1 channels"), ch("ch7", 192, "final stride-2 3x3"),
           Param("n", "int", 7, "n of the 1xn and nx1 convolutions", min=1, max=31), BN],
          _inception_d, "Efficient grid reduction with a factorised 7x7 branch (Mixed_7a).",
          lambda p: f"{p['ch3x3']}|{p['ch7']}|pool", class_name="InceptionD", report=tables.module("reduction D"),
          from_torch=FromTorch(("torchvision.models.inception.InceptionD",), children(dict(
              ch3x3red="branch3x3_1.conv", ch3x3="branch3x3_2.conv", ch7red="branch7x7x3_1.conv",
              ch7="branch7x7x3_4.conv"), n=lambda m: m.branch7x7x3_2.conv.kernel_size[1], batch_norm=True)))


def _inception_e(p, s):
    g, bn = Subgraph(), p["batch_norm"]
    b1 = g.conv("branch1x1", IN, p["ch1x1"], 1, bn=bn)
    b3 = g.conv("branch3x3_1", IN, p["ch3x3red"], 1, bn=bn)
    b3a = g.conv("branch3x3_2a", b3, p["ch3x3"], [1, 3], padding=[0, 1], bn=bn)
    b3b = g.conv("branch3x3_2b", b3, p["ch3x3"], [3, 1], padding=[1, 0], bn=bn)
    d = g.conv("branch3x3dbl_1", IN, p["dblred"], 1, bn=bn)
    d = g.conv("branch3x3dbl_2", d, p["dbl"], 3, padding=1, bn=bn)
    da = g.conv("branch3x3dbl_3a", d, p["dbl"], [1, 3], padding=[0, 1], bn=bn)
    db = g.conv("branch3x3dbl_3b", d, p["dbl"], [3, 1], padding=[1, 0], bn=bn)
    g.add("concat", "concat", [b1, b3a, b3b, da, db, _avg_proj(g, IN, p["pool_features"], bn)])
    return g


composite("inception_e", "Inception-v3 E (fig. 7, expanded)", CAT_INCEPTION,
          [ch("ch1x1", 320, "1x1 branch"), ch("ch3x3red", 384, "reduce before the 1x3 / 3x1 pair"),
           ch("ch3x3", 384, "each of 1x3 and 3x1"), ch("dblred", 448, "reduce before the 3x3"),
           ch("dbl", 384, "3x3, then each of 1x3 and 3x1"), ch("pool_features", 192, "avg pool -> 1x1"), BN],
          _inception_e, "8x8 module with an expanded filter bank: 1x3 and 3x1 in parallel (Mixed_7b, 7c).",
          lambda p: f"{p['ch1x1']}|2x{p['ch3x3']}|2x{p['dbl']}|{p['pool_features']}", class_name="InceptionE", report=tables.module("inception E"),
          from_torch=FromTorch(("torchvision.models.inception.InceptionE",), children(dict(
              ch1x1="branch1x1.conv", ch3x3red="branch3x3_1.conv", ch3x3="branch3x3_2a.conv",
              dblred="branch3x3dbl_1.conv", dbl="branch3x3dbl_2.conv", pool_features="branch_pool.conv"),
              batch_norm=True)))


def _grid_reduction(p, s):
    g, bn = Subgraph(), p["batch_norm"]
    c = g.conv("branch3x3_2", g.conv("branch3x3_1", IN, p["reduce"], 1, bn=bn), p["out_channels"], 3,
               stride=2, padding=p["padding"], bn=bn)
    g.add("concat", "concat", [c, _pool(g, "pool", IN, p["pool"], 3, 2, p["padding"])])
    return g


composite("grid_reduction", "Efficient grid reduction (fig. 10)", CAT_REDUCTION,
          [ch("reduce", 192, "1x1 reduce before the stride-2 conv"),
           ch("out_channels", 192, "stride-2 3x3 conv filters"),
           Param("pool", "choice", "max", "The parallel stride-2 pooling", choices=("max", "avg")),
           Param("padding", "int", 0, "Padding of the stride-2 conv and pool (1 keeps even sizes halving)",
                 min=0, max=1), BN],
          _grid_reduction, "d x d x k -> d/2 x d/2 x (k + conv filters): a stride-2 conv branch and a stride-2 "
          "pool in parallel, concatenated; no bottleneck and a quarter of conv-then-pool's cost.",
          lambda p: f"+{p['out_channels']} /2", class_name="GridReduction", report=tables.named("grid reduction"),
          advisor_role="reduction")


# ---------------------------------------------------------------- heads

def _aux_googlenet(p, s):
    g, tv = Subgraph(), p["variant"] == "torchvision"
    if tv:
        x = g.add("pool", "adaptive_avgpool2d", IN, output_size=4)
    else:
        x = g.add("pool", "avgpool2d", IN, kernel=5, stride=3)
    x = g.conv("conv", x, p["conv_channels"], 1, bn=tv)
    x = g.add("flatten", "flatten", x)
    x = g.add("fc1", "linear", x, out_features=p["fc_features"])
    x = g.add("relu", "relu", x)
    x = g.add("dropout", "dropout", x, p=p["dropout"])
    g.add("fc2", "linear", x, out_features=p["num_classes"])
    return g


NUM_CLASSES = Param("num_classes", "int", 1000, "Classes", min=1, max=1 << 20)

composite("aux_googlenet", "Aux classifier (GoogLeNet)", CAT_HEAD,
          [NUM_CLASSES, ch("conv_channels", 128, "1x1 conv filters"), ch("fc_features", 1024, "hidden FC size"),
           Param("dropout", "float", 0.7, "Dropout before the last FC", min=0.0, max=1.0),
           Param("variant", "choice", "torchvision", "torchvision (adaptive 4x4 pool, BN) or paper (5x5/3 avg pool)",
                 choices=("torchvision", "paper"))],
          _aux_googlenet, "Auxiliary classifier on 4a/4d; its loss counts 0.3 in training, dropped at inference.",
          lambda p: f"{p['num_classes']} classes", class_name="InceptionAux", report=tables.module("aux classifier"),
          from_torch=FromTorch(("torchvision.models.googlenet.InceptionAux",), lambda m: dict(
              num_classes=m.fc2.out_features, conv_channels=m.conv.conv.out_channels, fc_features=m.fc1.out_features,
              dropout=m.dropout.p, variant="torchvision")))


def _aux_v3(p, s):
    g = Subgraph()
    x = g.add("pool", "avgpool2d", IN, kernel=5, stride=3)
    x = g.conv("conv0", x, 128, 1, bn=p["batch_norm"])
    x = g.conv("conv1", x, 768, 5, bn=p["batch_norm"])
    x = g.add("gap", "adaptive_avgpool2d", x, output_size=1)
    x = g.add("flatten", "flatten", x)
    g.add("fc", "linear", x, out_features=p["num_classes"])
    return g


composite("aux_inception_v3", "Aux classifier (Inception-v3, BN)", CAT_HEAD,
          [NUM_CLASSES, Param("batch_norm", "bool", True, "The BN-auxiliary of the Inception-v3 paper")],
          _aux_v3, "Auxiliary classifier on the 17x17 grid, with batch norm (AuxLogits).",
          lambda p: f"{p['num_classes']} classes", class_name="InceptionAuxV3", report=tables.module("aux classifier"),
          from_torch=FromTorch(("torchvision.models.inception.InceptionAux",), lambda m: dict(num_classes=m.fc.out_features,
                                                                                batch_norm=True)))


def _classifier(p, s):
    g = Subgraph()
    x = g.add("avgpool", "adaptive_avgpool2d", IN, output_size=1)
    x = g.add("flatten", "flatten", x)
    if p["dropout"] > 0:
        x = g.add("dropout", "dropout", x, p=p["dropout"])
    g.add("fc", "linear", x, out_features=p["num_classes"])
    return g


composite("classifier_head", "Classifier head (GAP-dropout-FC)", CAT_HEAD,
          [NUM_CLASSES, Param("dropout", "float", 0.4, "Dropout before the FC (GoogLeNet: 40%)", min=0.0, max=1.0)],
          _classifier, "Global average pooling, dropout and a linear classifier.",
          lambda p: f"{p['num_classes']} classes", class_name="ClassifierHead", short="Classifier")


# ---------------------------------------------------------------- ResNet and NIN

def _shortcut(g, p, cin, cout, stride):
    mode = p["shortcut"]
    need = stride != 1 or cin != cout
    if mode == "identity" and need:
        raise BlockError(f"an identity shortcut cannot map {cin} channels at stride {stride} to {cout} channels; "
                         "use a projection shortcut", "shape_mismatch")
    if mode == "projection" or (mode == "auto" and need):
        x = g.add("downsample.0", "conv2d", IN, out_channels=cout, kernel=1, stride=stride, bias=False)
        return OptionalPart("downsample", g.add("downsample.1", "batchnorm2d", x), True)
    return OptionalPart("downsample", IN, False)


def _resnet_basic(p, s):
    g, planes, st = Subgraph(), p["planes"], p["stride"]
    x = g.add("conv1", "conv2d", IN, out_channels=planes, kernel=3, stride=st, padding=1, bias=False)
    x = g.add("relu", "relu", g.add("bn1", "batchnorm2d", x))
    x = g.add("bn2", "batchnorm2d", g.add("conv2", "conv2d", x, out_channels=planes, kernel=3, padding=1, bias=False))
    sc = _shortcut(g, p, s[0], planes, st)
    g.add("relu_out", "relu", g.add("add", "add", [x, sc]))
    return g


def _resnet_bottleneck(p, s):
    g, planes, st = Subgraph(), p["planes"], p["stride"]
    width, out = planes * p["base_width"] // 64 * p["groups"], planes * 4  # torchvision's Bottleneck
    x = g.add("conv1", "conv2d", IN, out_channels=width, kernel=1, bias=False)
    x = g.add("relu", "relu", g.add("bn1", "batchnorm2d", x))
    x = g.add("conv2", "conv2d", x, out_channels=width, kernel=3, stride=st, padding=1, groups=p["groups"],
              bias=False)
    x = g.add("relu2", "relu", g.add("bn2", "batchnorm2d", x))
    x = g.add("bn3", "batchnorm2d", g.add("conv3", "conv2d", x, out_channels=out, kernel=1, bias=False))
    sc = _shortcut(g, p, s[0], out, st)
    g.add("relu_out", "relu", g.add("add", "add", [x, sc]))
    return g


SHORTCUT = Param("shortcut", "choice", "auto", "identity, projection (1x1 conv + BN), or auto (project when needed)",
                 choices=("auto", "identity", "projection"))
STRIDE = Param("stride", "int", 1, "Stride of the block (2 halves the grid)", min=1, max=4)

def _bottleneck_from_torch(m):
    planes, groups = m.conv3.out_channels // 4, m.conv2.groups
    return dict(planes=planes, stride=pair(m.conv2.stride)[0], groups=groups,
                base_width=m.conv2.out_channels * 64 // (planes * groups),
                shortcut="projection" if m.downsample is not None else "identity")


composite("resnet_basic", "ResNet basic block", CAT_RESIDUAL, [ch("planes", 64, "channels"), STRIDE, SHORTCUT],
          _resnet_basic, "Two 3x3 convs with a shortcut, added (ResNet-18/34).",
          lambda p: f"{p['planes']}" + (f"/{p['stride']}" if p["stride"] > 1 else ""), class_name="BasicBlock", report=tables.named("residual"),
          from_torch=FromTorch(("torchvision.models.resnet.BasicBlock",), lambda m: dict(
              planes=m.conv1.out_channels, stride=pair(m.conv1.stride)[0],
              shortcut="projection" if m.downsample is not None else "identity")), short="BasicBlock")
composite("resnet_bottleneck", "ResNet bottleneck block", CAT_RESIDUAL,
          [ch("planes", 64, "inner channels (output is 4x)"), STRIDE, SHORTCUT,
           Param("base_width", "int", 64, "Width per group (64 for ResNet-50, 4 for ResNeXt-50 32x4d)", min=1,
                 max=4096),
           Param("groups", "int", 1, "Groups of the 3x3 convolution (ResNeXt's cardinality, 32 in 32x4d)", min=1,
                 max=1024)],
          _resnet_bottleneck, "1x1 reduce, 3x3 (grouped in ResNeXt), 1x1 expand (x4) with a shortcut (ResNet-50).",
          lambda p: f"{p['planes']}x4" + (f" g{p['groups']}" if p["groups"] > 1 else "")
          + (f"/{p['stride']}" if p["stride"] > 1 else ""), class_name="Bottleneck", report=tables.named("bottleneck"),
          from_torch=FromTorch(("torchvision.models.resnet.Bottleneck",), _bottleneck_from_torch), short="Bottleneck")


def _mlpconv(p, s):
    g = Subgraph()
    x = g.add("0", "conv2d", IN, out_channels=p["out_channels"], kernel=p["kernel"], stride=p["stride"],
              padding=p["padding"])
    x = g.add("1", "relu", x)
    for i in range(p["layers"]):
        last = i == p["layers"] - 1
        x = g.add(str(2 + 2 * i), "conv2d", x, out_channels=p["last_channels"] if last and p["last_channels"]
                  else p["out_channels"], kernel=1)
        x = g.add(str(3 + 2 * i), "relu", x)
    return g


composite("mlpconv", "NIN mlpconv", CAT_RESIDUAL,
          [ch("out_channels", 96, "filters of every layer"),
           Param("kernel", "int", 11, "Kernel of the first convolution", min=1, max=64),
           Param("stride", "int", 4, "Stride of the first convolution", min=1, max=16),
           Param("padding", "int", 0, "Padding of the first convolution", min=0, max=32),
           Param("layers", "int", 2, "1x1 convolutions after it (the 'micro network')", min=0, max=8),
           Param("last_channels", "int", 0, "Filters of the last 1x1 (0: same; NIN's last block: classes)",
                 min=0, max=MAX_CHANNELS, zero="same as the others")],
          _mlpconv, "Network in Network: a convolution followed by 1x1 convolutions, each with ReLU.",
          lambda p: f"{p['out_channels']}, {p['kernel']}x{p['kernel']}/{p['stride']}", class_name="MlpConv", report=tables.named("mlpconv"))


# ---------------------------------------------------------------- user-defined groups

def _group(p, s):
    g = Subgraph()
    g.nodes = [(n[0], n[1], dict(n[2])) for n in p["graph"]["nodes"]]
    g.edges = [tuple(e) for e in p["graph"]["edges"]]
    g.output = p["graph"]["output"]
    return g


composite("group", "Group (your own composite)", "Groups",
          [Param("name", "str", "Group", "The group's name (its class name in exported code)"),
           Param("graph", "subgraph", {"nodes": [["0", "relu", {}]], "edges": [[IN, "0", "x"]], "output": "0"},
                 "The blocks inside (made by collapsing a selection)")],
          _group, "A selection of blocks collapsed into one: expand it to edit its inside.",
          lambda p: f"{p['name']}: {len(p['graph']['nodes'])} blocks")
