"""The template gallery: GoogLeNet and Inception first, then every network of the source notes."""
from __future__ import annotations

from .net import Net
from .zoo import ZOO, zoo

# GoogLeNet, Table 1: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
GOOGLENET_TABLE = [
    ("inception3a", (64, 96, 128, 16, 32, 32)), ("inception3b", (128, 128, 192, 32, 96, 64)), "maxpool3",
    ("inception4a", (192, 96, 208, 16, 48, 64)), ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)), ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)), "maxpool4",
    ("inception5a", (256, 160, 320, 32, 128, 128)), ("inception5b", (384, 192, 384, 48, 128, 128)),
]
V1_KEYS = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")


def googlenet(num_classes: int = 1000, aux: bool = True, input_size=None, variant: str = "torchvision",
              batch_norm: bool | None = None, dropout: float | None = None):
    """GoogLeNet. ``variant="torchvision"`` matches ``torchvision.models.googlenet`` exactly (BN after every
    conv, a 3x3 where the paper has the 5x5, ceil-mode pools, adaptive 4x4 pool in the aux heads);
    ``variant="paper"`` follows the paper's Table 1 (true 5x5 branch, LRN in the stem, no BN)."""
    tv = variant == "torchvision"
    bn = tv if batch_norm is None else batch_norm
    n = Net("GoogLeNet" + ("" if tv else " (paper)"), input_size, 224)
    n.add("conv1", "basic_conv", out_channels=64, kernel=7, stride=2, padding=3, batch_norm=bn)
    n.add("maxpool1", "maxpool2d", kernel=3, stride=2, ceil_mode=True)
    if not tv:
        n.add("lrn1", "lrn", size=5, alpha=1e-4, beta=0.75, k=1.0)
    n.add("conv2", "basic_conv", out_channels=64, kernel=1, batch_norm=bn)
    n.add("conv3", "basic_conv", out_channels=192, kernel=3, padding=1, batch_norm=bn)
    if not tv:
        n.add("lrn2", "lrn", size=5, alpha=1e-4, beta=0.75, k=1.0)
    n.add("maxpool2", "maxpool2d", kernel=3, stride=2, ceil_mode=True)
    for item in GOOGLENET_TABLE:
        if isinstance(item, str):
            k = 2 if item == "maxpool4" and tv else 3  # torchvision's maxpool4 is 2x2/2
            n.add(item, "maxpool2d", kernel=k, stride=2, ceil_mode=True)
            continue
        name, chans = item
        n.add(name, "inception_v1", variant=variant, batch_norm=bn, **dict(zip(V1_KEYS, chans)))
    if aux:  # added after inception5b, where torchvision registers them (they read 4a and 4d)
        last = n.last
        for head, src in (("aux1", "inception4a"), ("aux2", "inception4d")):
            n.add(head, "aux_googlenet", src, num_classes=num_classes, variant=variant)
            n.output(head, f"{head}_out", role="aux", weight=0.3)
        n.last = last
    n.add("avgpool", "adaptive_avgpool2d", output_size=1)
    n.add("flatten", "flatten")
    n.add("dropout", "dropout", p=0.2 if tv and dropout is None else (0.4 if dropout is None else dropout))
    n.add("fc", "linear", out_features=num_classes)
    n.output("fc")
    return n.done(template="googlenet" if tv else "googlenet_paper", recipe="googlenet_sgd",
                  description=googlenet.__doc__.split(".")[0])


def googlenet_paper(**kw):
    return googlenet(variant="paper", **kw)


def inception_v3(num_classes: int = 1000, aux: bool = True, input_size=None, batch_norm: bool = True,
                 dropout: float = 0.5, _v2: bool = False):
    """Inception-v3, matching ``torchvision.models.inception_v3`` (Mixed_5b ... Mixed_7c, AuxLogits)."""
    bn = batch_norm
    n = Net("Inception-v2" if _v2 else "Inception-v3", input_size, 299)
    n.add("Conv2d_1a_3x3", "basic_conv", out_channels=32, kernel=3, stride=2, batch_norm=bn)
    n.add("Conv2d_2a_3x3", "basic_conv", out_channels=32, kernel=3, batch_norm=bn)
    n.add("Conv2d_2b_3x3", "basic_conv", out_channels=64, kernel=3, padding=1, batch_norm=bn)
    n.add("maxpool1", "maxpool2d", kernel=3, stride=2)
    if _v2:  # the "Rethinking" paper's Table 1 stem: conv 3x3/1 80, conv 3x3/2 192, conv 3x3/1 288
        n.add("Conv2d_3b_3x3", "basic_conv", out_channels=80, kernel=3, batch_norm=bn)
        n.add("Conv2d_4a_3x3", "basic_conv", out_channels=192, kernel=3, stride=2, batch_norm=bn)
        n.add("Conv2d_4b_3x3", "basic_conv", out_channels=288, kernel=3, padding=1, batch_norm=bn)
        a_mods = [("Mixed_5b", 64), ("Mixed_5c", 64), ("Mixed_5d", 64)]
    else:
        n.add("Conv2d_3b_1x1", "basic_conv", out_channels=80, kernel=1, batch_norm=bn)
        n.add("Conv2d_4a_3x3", "basic_conv", out_channels=192, kernel=3, batch_norm=bn)
        n.add("maxpool2", "maxpool2d", kernel=3, stride=2)
        a_mods = [("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)]
    for name, pool in a_mods:
        n.add(name, "inception_a", pool_features=pool, batch_norm=bn, branch2_kernel=3 if _v2 else 5)
    n.add("Mixed_6a", "inception_b", batch_norm=bn)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        n.add(name, "inception_c", c7=c7, batch_norm=bn)
    if aux:
        n.add("AuxLogits", "aux_inception_v3", "Mixed_6e", num_classes=num_classes, batch_norm=bn and not _v2)
        n.output("AuxLogits", "aux_out", role="aux", weight=0.4 if _v2 else 0.3)
        n.last = "Mixed_6e"
    n.add("Mixed_7a", "inception_d", batch_norm=bn)
    n.add("Mixed_7b", "inception_e", batch_norm=bn)
    n.add("Mixed_7c", "inception_e", batch_norm=bn)
    n.add("avgpool", "adaptive_avgpool2d", output_size=1)
    n.add("dropout", "dropout", p=dropout)
    n.add("flatten", "flatten")
    n.add("fc", "linear", out_features=num_classes)
    n.output("fc")
    return n.done(template="inception_v2" if _v2 else "inception_v3",
                  recipe="inception_rmsprop", description=(inception_v2 if _v2 else inception_v3).__doc__.split(".")[0])


def inception_v2(**kw):
    """Inception-v2 as the "Rethinking" paper's Table 1 defines it: the 3x3 stem to 35x35x288, figure-5 modules
    with every 5x5 factorised into two 3x3, figure-6 (n=7) and figure-7 modules, efficient grid reductions, and
    an auxiliary head without BN (BN-auxiliary, RMSProp and label smoothing are what v3 adds)."""
    return inception_v3(_v2=True, **kw)


def lenet5(num_classes: int = 10, input_size=None, activation: str = "tanh", aux: bool = False, **_):
    """LeNet-5: 32x32 -> C1 6@28x28 -> S2 14x14 -> C3 16@10x10 -> S4 5x5 -> C5 120 -> F6 84 -> 10."""
    n = Net("LeNet-5", input_size, 32, channels=1)
    n.add("c1", "conv2d", out_channels=6, kernel=5)
    n.add("c1_act", activation)
    n.add("s2", "avgpool2d", kernel=2, stride=2)
    n.add("c3", "conv2d", out_channels=16, kernel=5)
    n.add("c3_act", activation)
    n.add("s4", "avgpool2d", kernel=2, stride=2)
    n.add("c5", "conv2d", out_channels=120, kernel=5)
    n.add("c5_act", activation)
    n.add("flatten", "flatten")
    n.add("f6", "linear", out_features=84)
    n.add("f6_act", activation)
    n.add("output_fc", "linear", out_features=num_classes)
    n.output("output_fc")
    return n.done(template="lenet5", recipe="lenet_sgd", description=lenet5.__doc__.split(":")[0])


def alexnet(num_classes: int = 1000, input_size=None, variant: str = "torchvision", dropout: float = 0.5, **_):
    """AlexNet. ``torchvision``: torchvision's single-GPU variant (64-192-384-256-256, no LRN);
    ``paper``: 96-256-384-384-256 with LRN and the two-GPU split as groups=2, on 227x227."""
    tv = variant == "torchvision"
    n = Net("AlexNet" + ("" if tv else " (paper)"), input_size, 224 if tv else 227)
    i = 0

    def f(type_id, **p):
        nonlocal i
        n.add(f"features.{i}", type_id, **p)
        i += 1

    if tv:
        spec = [(64, 11, 4, 2, 1, True), (192, 5, 1, 2, 1, True), (384, 3, 1, 1, 1, False),
                (256, 3, 1, 1, 1, False), (256, 3, 1, 1, 1, True)]
    else:
        spec = [(96, 11, 4, 0, 1, True), (256, 5, 1, 2, 2, True), (384, 3, 1, 1, 1, False),
                (384, 3, 1, 1, 2, False), (256, 3, 1, 1, 2, True)]
    for li, (c, k, s, p, g, pool) in enumerate(spec):
        f("conv2d", out_channels=c, kernel=k, stride=s, padding=p, groups=g)
        f("relu")
        if not tv and li < 2:
            f("lrn", size=5, alpha=1e-4, beta=0.75, k=2.0)
        if pool:
            f("maxpool2d", kernel=3, stride=2)
    n.add("avgpool", "adaptive_avgpool2d", output_size=6)
    n.add("flatten", "flatten")
    n.add("classifier.0", "dropout", p=dropout)
    n.add("classifier.1", "linear", out_features=4096)
    n.add("classifier.2", "relu")
    n.add("classifier.3", "dropout", p=dropout)
    n.add("classifier.4", "linear", out_features=4096)
    n.add("classifier.5", "relu")
    n.add("classifier.6", "linear", out_features=num_classes)
    n.output("classifier.6")
    return n.done(template="alexnet", recipe="alexnet_sgd", description="AlexNet")


VGG_CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def vgg(depth: int = 16, num_classes: int = 1000, input_size=None, batch_norm: bool = False,
        dropout: float = 0.5, **_):
    """VGG (configurations A, B, D, E = VGG-11/13/16/19): only 3x3 convs and 2x2/2 max pools."""
    key = f"vgg{depth}"
    n = Net(f"VGG-{depth}" + ("-BN" if batch_norm else ""), input_size, 224)
    i = 0
    for v in VGG_CFGS[key]:
        if v == "M":
            n.add(f"features.{i}", "maxpool2d", kernel=2, stride=2)
            i += 1
            continue
        n.add(f"features.{i}", "conv2d", out_channels=v, kernel=3, padding=1)
        i += 1
        if batch_norm:
            n.add(f"features.{i}", "batchnorm2d")
            i += 1
        n.add(f"features.{i}", "relu")
        i += 1
    n.add("avgpool", "adaptive_avgpool2d", output_size=7)
    n.add("flatten", "flatten")
    for j, t in enumerate(["linear", "relu", "dropout", "linear", "relu", "dropout", "linear"]):
        p = {"out_features": 4096 if j < 6 else num_classes} if t == "linear" else (
            {"p": dropout} if t == "dropout" else {})
        n.add(f"classifier.{j}", t, **p)
    n.output("classifier.6")
    return n.done(template=key, recipe="vgg_sgd", description=f"VGG-{depth}")


def nin(num_classes: int = 1000, input_size=None, dropout: float = 0.5, **_):
    """Network in Network: four mlpconv blocks and global average pooling instead of FC layers."""
    n = Net("NIN", input_size, 224)
    n.add("mlpconv1", "mlpconv", out_channels=96, kernel=11, stride=4, padding=0)
    n.add("pool1", "maxpool2d", kernel=3, stride=2)
    n.add("mlpconv2", "mlpconv", out_channels=256, kernel=5, stride=1, padding=2)
    n.add("pool2", "maxpool2d", kernel=3, stride=2)
    n.add("mlpconv3", "mlpconv", out_channels=384, kernel=3, stride=1, padding=1)
    n.add("pool3", "maxpool2d", kernel=3, stride=2)
    n.add("dropout", "dropout", p=dropout)
    n.add("mlpconv4", "mlpconv", out_channels=1024, kernel=3, stride=1, padding=1, last_channels=num_classes)
    n.add("gap", "adaptive_avgpool2d", output_size=1)
    n.add("flatten", "flatten")
    n.output("flatten")
    return n.done(template="nin", recipe="nin_sgd", description="Network in Network")


RESNET_LAYERS = {18: ("resnet_basic", [2, 2, 2, 2]), 34: ("resnet_basic", [3, 4, 6, 3]),
                 50: ("resnet_bottleneck", [3, 4, 6, 3])}


def resnet(depth: int = 50, num_classes: int = 1000, input_size=None, groups: int = 1, width_per_group: int = 64,
           **_):
    """ResNet-18/34/50 (torchvision's, v1.5: the stride sits on the bottleneck's 3x3); with ``groups`` and
    ``width_per_group``, ResNeXt (ResNeXt-50 32x4d: groups=32, width_per_group=4)."""
    kind, counts = RESNET_LAYERS[depth]
    extra = {"groups": groups, "base_width": width_per_group} if kind == "resnet_bottleneck" else {}
    name = f"ResNeXt-{depth} {groups}x{width_per_group}d" if groups > 1 else f"ResNet-{depth}"
    n = Net(name, input_size, 224)
    n.add("conv1", "conv2d", out_channels=64, kernel=7, stride=2, padding=3, bias=False)
    n.add("bn1", "batchnorm2d")
    n.add("relu", "relu")
    n.add("maxpool", "maxpool2d", kernel=3, stride=2, padding=1)
    for li, (planes, count) in enumerate(zip((64, 128, 256, 512), counts)):
        for b in range(count):
            n.add(f"layer{li + 1}.{b}", kind, planes=planes, stride=2 if b == 0 and li > 0 else 1, **extra)
    n.add("avgpool", "adaptive_avgpool2d", output_size=1)
    n.add("flatten", "flatten")
    n.add("fc", "linear", out_features=num_classes)
    n.output("fc")
    template = f"resnext{depth}_{groups}x{width_per_group}d" if groups > 1 else f"resnet{depth}"
    return n.done(template=template, recipe="resnet_sgd", description=name)


TEMPLATES = {
    "googlenet": (googlenet, "GoogLeNet, torchvision-compatible (BN, 6.6M params; 13.0M with aux heads)"),
    "googlenet_paper": (googlenet_paper, "GoogLeNet as in the paper's Table 1 (true 5x5, LRN, no BN)"),
    "inception_v3": (inception_v3, "Inception-v3, torchvision-compatible (27.2M params with aux head)"),
    "inception_v2": (inception_v2, "Inception-v2 as the 'Rethinking' paper defines it (Table 1)"),
    "lenet5": (lenet5, "LeNet-5 (1998): 32x32 grey input, 6-16-120-84-10"),
    "alexnet": (alexnet, "AlexNet, torchvision-compatible (61M params)"),
    "alexnet_paper": (lambda **kw: alexnet(variant="paper", **kw), "AlexNet as in the paper (LRN, groups=2, 227)"),
    "vgg11": (lambda **kw: vgg(11, **kw), "VGG-11 (configuration A)"),
    "vgg13": (lambda **kw: vgg(13, **kw), "VGG-13 (configuration B)"),
    "vgg16": (lambda **kw: vgg(16, **kw), "VGG-16 (configuration D), torchvision-compatible"),
    "vgg19": (lambda **kw: vgg(19, **kw), "VGG-19 (configuration E)"),
    "nin": (nin, "Network in Network: mlpconv blocks and global average pooling"),
    "resnet18": (lambda **kw: resnet(18, **kw), "ResNet-18 (basic blocks), torchvision-compatible"),
    "resnet34": (lambda **kw: resnet(34, **kw), "ResNet-34 (basic blocks)"),
    "resnet50": (lambda **kw: resnet(50, **kw), "ResNet-50 (bottleneck blocks), torchvision-compatible"),
    "resnext50_32x4d": (lambda **kw: resnet(50, groups=32, width_per_group=4, **kw),
                        "ResNeXt-50 32x4d (grouped bottlenecks), torchvision-compatible"),
    **{name: ((lambda name: lambda **kw: zoo(name, **kw))(name), text) for name, (text, _) in ZOO.items()},
}


def build(name: str, num_classes: int | None = None, aux: bool | None = None, input_size=None,
          batch_norm: bool | None = None):
    """Build a template by name; options left as None keep the template's own defaults."""
    if name not in TEMPLATES:
        raise KeyError(f"unknown template {name!r}; the templates are: {', '.join(TEMPLATES)}")
    kw = {}
    if num_classes is not None:
        kw["num_classes"] = num_classes
    if aux is not None and name in ("googlenet", "googlenet_paper", "inception_v3", "inception_v2"):
        kw["aux"] = aux
    if input_size is not None:
        kw["input_size"] = input_size
    if batch_norm is not None and (name.startswith(("googlenet", "inception", "vgg"))):
        kw["batch_norm"] = batch_norm
    g = TEMPLATES[name][0](**kw)
    g.meta["template"] = name
    g.meta["options"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
    return g


def describe(name: str) -> str:
    return TEMPLATES[name][1]
