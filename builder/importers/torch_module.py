"""An ``nn.Module`` as a block graph, through torch.fx symbolic tracing.

Every module the trace calls becomes a block whose id is its module path (so the compiled network's state_dict
keys equal the source's), every function a merge or a primitive. Modules the library knows as a whole
(torchvision's BasicConv2d, Inception and InceptionA-E, InceptionAux, BasicBlock, Bottleneck) are not traced
into: they become the library's composite with its parameters read from their children. Containers with one input
and one output (InvertedResidual, Fire, MBConv, a dense block, ...) become groups named after their class, with
the module path as the group's id. What cannot be mapped is collected and reported at once.

The trace runs in training mode, so auxiliary classifiers (GoogLeNet, Inception-v3) are part of the graph.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

from ..core.errors import ImportProblem, ModelImportError
from ..core.graph import Graph

BATCH = object()  # x.size(0): the batch dimension, as view/reshape use it


def block_path(path: str) -> str:
    """A module path as a block id: torch allows any name without a dot ("block1-0" in RegNet), a block id's
    parts are identifiers or numbers, so other characters become "_" (and names torch modules own get a free
    one); the same rule renames the state_dict's keys."""
    import re

    from blocks.names import PART, renamed_for_torch
    parts = [p if PART.match(p) else (re.sub(r"\W", "_", p) if re.sub(r"\W", "_", p)[:1].isalpha()
                                      else "m_" + re.sub(r"\W", "_", p)) for p in path.split(".")]
    return renamed_for_torch(".".join(parts))


@dataclass
class Imported:
    graph: Graph
    state: dict                      # the source's state_dict: the compiled graph's, key for key
    notes: list = field(default_factory=list)


def _pair(v):
    return [int(v[0]), int(v[1])] if isinstance(v, (tuple, list)) else [int(v), int(v)]


# ------------------------------------------------------------------------------------------- module kinds

def _conv(m):
    if m.padding_mode != "zeros":
        return f"padding_mode {m.padding_mode!r} (only zero padding has a block)"
    pad = m.padding if isinstance(m.padding, str) else _pair(m.padding)
    return "conv2d", dict(out_channels=m.out_channels, kernel=_pair(m.kernel_size), stride=_pair(m.stride),
                          padding=pad, dilation=_pair(m.dilation), groups=m.groups, bias=m.bias is not None)


def _deconv(m):
    if m.padding_mode != "zeros":
        return f"padding_mode {m.padding_mode!r}"
    return "conv_transpose2d", dict(out_channels=m.out_channels, kernel=_pair(m.kernel_size), stride=_pair(m.stride),
                                    padding=_pair(m.padding), output_padding=_pair(m.output_padding),
                                    dilation=_pair(m.dilation), groups=m.groups, bias=m.bias is not None)


def _bn(m):
    if not m.track_running_stats or m.momentum is None:
        return "batch norm without running statistics (or with a cumulative average) has no block"
    return "batchnorm2d", dict(eps=m.eps, momentum=m.momentum, affine=m.affine)


def _pool(kind):
    def rule(m):
        if getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False):
            return "dilated pools and pools that return indices have no block"
        if getattr(m, "divisor_override", None):
            return "avg pool with divisor_override has no block"
        p = dict(kernel=_pair(m.kernel_size), stride=_pair(m.stride if m.stride is not None else m.kernel_size),
                 padding=_pair(m.padding), ceil_mode=bool(m.ceil_mode))
        if kind == "avgpool2d":
            p["count_include_pad"] = bool(m.count_include_pad)
        return kind, p
    return rule


def _adaptive(m):
    size = _pair(m.output_size) if not isinstance(m.output_size, (tuple, list)) or None not in m.output_size \
        else None
    return ("adaptive_avgpool2d", dict(output_size=size)) if size else "adaptive pool with a None size"


def _flatten(m):
    return ("flatten", {}) if (m.start_dim, m.end_dim) == (1, -1) else f"flatten({m.start_dim}, {m.end_dim})"


def _linear(m):
    return "linear", dict(out_features=m.out_features, bias=m.bias is not None)


def _gelu(m):
    return ("gelu", {}) if m.approximate == "none" else f"GELU(approximate={m.approximate!r})"


def _plain(kind, **fixed):
    return lambda m: (kind, dict(fixed))


def _inplace(kind):
    return lambda m: (kind, dict(inplace=bool(getattr(m, "inplace", False))))


def _upsample(m):
    sf = m.scale_factor
    if m.size is not None or sf is None:
        return "Upsample to a fixed size has no block (use scale_factor)"
    sf = sf if isinstance(sf, (tuple, list)) else (sf, sf)
    if any(float(v) != int(v) for v in sf) or m.mode not in ("nearest", "bilinear"):
        return f"Upsample by {sf} with mode {m.mode!r} (whole factors, nearest or bilinear only)"
    if m.mode == "bilinear" and m.align_corners:
        return "Upsample with align_corners=True has no block"
    return "upsample", dict(scale_factor=[int(v) for v in sf], mode=m.mode)


def _zeropad(m):
    left, right, top, bottom = m.padding
    return "zeropad2d", dict(horizontal=[left, right], vertical=[top, bottom])


def _module_kinds():
    from torch import nn
    kinds = {
        nn.Conv2d: _conv, nn.ConvTranspose2d: _deconv, nn.BatchNorm2d: _bn,
        nn.ReLU: _inplace("relu"), nn.ReLU6: _inplace("relu6"), nn.Sigmoid: _plain("sigmoid"),
        nn.Tanh: _plain("tanh"), nn.GELU: _gelu, nn.Hardswish: _plain("hardswish"),
        nn.Hardsigmoid: _plain("hardsigmoid"), nn.SiLU: _plain("silu"),
        nn.LeakyReLU: lambda m: ("leaky_relu", dict(negative_slope=m.negative_slope)),
        nn.MaxPool2d: _pool("maxpool2d"), nn.AvgPool2d: _pool("avgpool2d"), nn.AdaptiveAvgPool2d: _adaptive,
        nn.Dropout: lambda m: ("dropout", dict(p=m.p)), nn.Dropout2d: lambda m: ("dropout2d", dict(p=m.p)),
        nn.Identity: _plain("identity"), nn.Flatten: _flatten, nn.Linear: _linear,
        nn.LocalResponseNorm: lambda m: ("lrn", dict(size=m.size, alpha=m.alpha, beta=m.beta, k=m.k)),
        nn.ChannelShuffle: lambda m: ("channel_shuffle", dict(groups=m.groups)),
        nn.Upsample: _upsample, nn.ZeroPad2d: _zeropad,
    }
    try:
        from torchvision.ops import StochasticDepth
        kinds[StochasticDepth] = lambda m: ("stochastic_depth", dict(p=m.p, mode=m.mode))
    except ImportError:
        pass
    kinds.update({cls: rule for cls, rule in _declared_kinds().items() if cls not in kinds})
    return kinds


def _declared_kinds() -> dict:
    """Every other kind built from one ``torch.nn`` class whose parameters are that module's attributes of the
    same names (``nn.Mish``, no parameters): the kind says what it imports from, so a new kind needs no entry
    here."""
    from torch import nn

    from blocks import REGISTRY
    out = {}
    for spec in REGISTRY:
        call = spec.torch
        if spec.is_composite or call is None or not call.cls.startswith("nn."):
            continue
        cls = getattr(nn, call.cls[3:], None)
        if isinstance(cls, type) and cls not in out:
            out[cls] = (lambda s: lambda m: (s.type_id, {p.name: getattr(m, p.arg) for p in s.params
                                                          if hasattr(m, p.arg)}))(spec)
    return out


# ------------------------------------------------------------------------------ modules known as a whole

def _out(m, path):
    return m.get_submodule(path).out_channels


def _basic_conv(m):
    kind, p = _conv(m.conv)
    return "basic_conv", dict(out_channels=p["out_channels"], kernel=p["kernel"], stride=p["stride"],
                              padding=p["padding"], eps=m.bn.eps, batch_norm=True)


def _read(kind, paths, **fixed):
    """A composite whose channel parameters are the out_channels of the named children."""
    def rule(m):
        return kind, {**{name: _out(m, path) for name, path in paths.items()},
                      **{k: (v(m) if callable(v) else v) for k, v in fixed.items()}}
    return rule


def _bottleneck(m):
    planes = m.conv3.out_channels // 4
    groups = m.conv2.groups
    return "resnet_bottleneck", dict(planes=planes, stride=_pair(m.conv2.stride)[0], groups=groups,
                                     base_width=m.conv2.out_channels * 64 // (planes * groups),
                                     shortcut="projection" if m.downsample is not None else "identity")


def _basic_block(m):
    return "resnet_basic", dict(planes=m.conv1.out_channels, stride=_pair(m.conv1.stride)[0],
                                shortcut="projection" if m.downsample is not None else "identity")


def _inverted_residual(m):
    first = m.conv[0][0]
    inp = first.in_channels
    hidden = first.out_channels if len(m.conv) == 4 else inp
    if hidden % inp:
        return f"an expansion of {hidden}/{inp} channels is not a whole ratio"
    return "inverted_residual", dict(out_channels=m.out_channels, stride=m.stride, expand_ratio=hidden // inp)


_ACTS = {"SiLU": "silu", "Hardswish": "hardswish", "ReLU": "relu", "ReLU6": "relu6", "Sigmoid": "sigmoid",
         "Hardsigmoid": "hardsigmoid"}


def _mbconv(m):
    """torchvision's MBConv (EfficientNet) and MobileNetV3's InvertedResidual: expand?, depthwise, SE?, project."""
    from torch import nn
    parts = list(m.block)
    cin = parts[0][0].in_channels
    expanded = parts[0][0].out_channels if parts[0][0].kernel_size == (1, 1) and len(parts) > 2 and \
        parts[1][0].groups > 1 else cin
    dw = parts[1] if expanded != cin else parts[0]
    se = next((p for p in parts if not isinstance(p, nn.Sequential)), None)
    project = parts[-1]
    act = _ACTS.get(type(dw[2]).__name__)
    sd = getattr(m, "stochastic_depth", None)
    if act is None or len(project) != 2:
        return "an inverted residual with another activation or projection has no block"
    params = dict(out_channels=project[0].out_channels, expanded_channels=expanded if expanded != cin else 0,
                  kernel=dw[0].kernel_size[0], stride=dw[0].stride[0], activation=act,
                  stochastic_depth_prob=sd.p if sd is not None and m.use_res_connect else 0.0,
                  bn_eps=dw[1].eps, bn_momentum=dw[1].momentum)
    if se is not None:
        se_act, gate = _ACTS.get(type(se.activation).__name__), _ACTS.get(type(se.scale_activation).__name__)
        if se_act not in ("silu", "relu") or gate not in ("sigmoid", "hardsigmoid"):
            return "a squeeze-and-excitation with other activations has no block"
        params.update(se_channels=se.fc1.out_channels, se_activation=se_act, se_gate=gate)
    return "mbconv", params


def _dense_block(m):
    first = m.denselayer1
    if first.drop_rate:
        return "dense layers with dropout have no block"
    growth = first.conv2.out_channels
    return "dense_block", dict(layers=len(m), growth_rate=growth, bn_size=first.conv1.out_channels // growth)


def _known_composites():
    out = {}
    import importlib
    try:  # the modules (torchvision.models.googlenet is also the name of a function)
        gn, iv3, rn, cn, mb2, sq, dn = (importlib.import_module(f"torchvision.models.{m}") for m in (
            "googlenet", "inception", "resnet", "convnext", "mobilenetv2", "squeezenet", "densenet"))
    except ImportError:
        return out
    out[mb2.InvertedResidual] = _inverted_residual
    en, mb3 = (importlib.import_module(f"torchvision.models.{m}") for m in ("efficientnet", "mobilenetv3"))
    out[en.MBConv] = out[mb3.InvertedResidual] = _mbconv
    out[sq.Fire] = _read("fire", dict(squeeze="squeeze", expand1x1="expand1x1", expand3x3="expand3x3"))
    out[dn._Transition] = _read("dense_transition", dict(out_channels="conv"))
    out[dn._DenseBlock] = _dense_block
    out[cn.CNBlock] = lambda m: ("convnext_block", dict(layer_scale=1e-6, eps=m.block[2].eps,
                                                        stochastic_depth_prob=m.stochastic_depth.p))
    out[cn.LayerNorm2d] = lambda m: ("layernorm2d", dict(eps=m.eps)) if m.elementwise_affine and m.bias is not None \
        else "LayerNorm2d without a learned weight and bias"
    out[gn.BasicConv2d] = out[iv3.BasicConv2d] = _basic_conv
    out[gn.Inception] = _read("inception_v1", dict(ch1x1="branch1.conv", ch3x3red="branch2.0.conv",
                                                   ch3x3="branch2.1.conv", ch5x5red="branch3.0.conv",
                                                   ch5x5="branch3.1.conv", pool_proj="branch4.1.conv"),
                              variant="torchvision", batch_norm=True)
    out[gn.InceptionAux] = lambda m: ("aux_googlenet", dict(num_classes=m.fc2.out_features,
                                                            conv_channels=m.conv.conv.out_channels,
                                                            fc_features=m.fc1.out_features, dropout=m.dropout.p,
                                                            variant="torchvision"))
    out[iv3.InceptionA] = _read("inception_a", dict(ch1x1="branch1x1.conv", ch5x5red="branch5x5_1.conv",
                                                    ch5x5="branch5x5_2.conv", dblred="branch3x3dbl_1.conv",
                                                    dbl="branch3x3dbl_2.conv", pool_features="branch_pool.conv"),
                                branch2_kernel=lambda m: m.branch5x5_2.conv.kernel_size[0], batch_norm=True)
    out[iv3.InceptionB] = _read("inception_b", dict(ch3x3="branch3x3.conv", dblred="branch3x3dbl_1.conv",
                                                    dbl="branch3x3dbl_2.conv"), batch_norm=True)
    out[iv3.InceptionC] = _read("inception_c", dict(ch1x1="branch1x1.conv", c7="branch7x7_1.conv",
                                                    ch7x7="branch7x7_3.conv", pool_features="branch_pool.conv"),
                                n=lambda m: m.branch7x7_2.conv.kernel_size[1], batch_norm=True)
    out[iv3.InceptionD] = _read("inception_d", dict(ch3x3red="branch3x3_1.conv", ch3x3="branch3x3_2.conv",
                                                    ch7red="branch7x7x3_1.conv", ch7="branch7x7x3_4.conv"),
                                n=lambda m: m.branch7x7x3_2.conv.kernel_size[1], batch_norm=True)
    out[iv3.InceptionE] = _read("inception_e", dict(ch1x1="branch1x1.conv", ch3x3red="branch3x3_1.conv",
                                                    ch3x3="branch3x3_2a.conv", dblred="branch3x3dbl_1.conv",
                                                    dbl="branch3x3dbl_2.conv", pool_features="branch_pool.conv"),
                                batch_norm=True)
    out[iv3.InceptionAux] = lambda m: ("aux_inception_v3", dict(num_classes=m.fc.out_features, batch_norm=True))
    out[rn.Bottleneck] = _bottleneck
    out[rn.BasicBlock] = _basic_block
    return out


def _autowrapped():
    try:
        from torchvision.models.shufflenetv2 import channel_shuffle
        return (channel_shuffle,)
    except ImportError:
        return ()


# --------------------------------------------------------------------------------------------- the trace

class _Builder:
    def __init__(self, model, input_shape, name):
        self.model, self.name = model, name
        self.graph = Graph(name)
        self.problems: list[ImportProblem] = []
        self.value: dict = {}        # fx node -> block id, BATCH, a constant, or a tuple of those
        self.used: dict = {}         # module path -> times called
        self.input_shape = input_shape
        self.module_names = {block_path(n) for n, _ in model.named_modules() if n}
        self.modules = _module_kinds()
        self.composites = _known_composites()

    def problem(self, kind, path, why):
        self.problems.append(ImportProblem(kind, path, why))

    # ---------------------------------------------------------------- ids
    def fresh(self, base: str) -> str:
        """An id for a block that is not a module (an add, a concat, an output), free of every module path."""
        from blocks.names import renamed_for_torch
        base = block_path(base)
        cand, n = base, 2
        while cand in self.graph or cand in self.module_names:
            cand, n = f"{base}_{n}", n + 1
        return cand

    def block(self, kind, params, inputs, block_id, node):
        try:
            bid = self.graph.add_block(kind, params, block_id)
        except Exception as e:  # noqa: BLE001  a parameter out of the library's range: reported with the path
            self.problem("parameter", block_id, str(e))
            return None
        for src in inputs:
            if src is None:
                continue  # its producer could not be mapped: that problem is already listed
            if not isinstance(src, str) or src not in self.graph:
                self.problem("input", block_id, f"takes {type(src).__name__} where a tensor is expected")
                continue
            self.graph.connect(src, bid, check_cycle=False)
        return bid

    # ---------------------------------------------------------------- nodes
    def run(self, fx_graph):
        for node in fx_graph.nodes:
            try:
                self.value[node] = getattr(self, f"_{node.op}")(node)
            except _Skip as s:
                self.problem(s.kind, self._where(node), s.why)
                self.value[node] = None

    def _where(self, node):
        stack = node.meta.get("nn_module_stack") or {}
        path = next(reversed(stack.values()))[0] if stack else ""
        return path or node.name

    def _arg(self, a):
        import torch.fx as fx
        if isinstance(a, fx.Node):
            return self.value.get(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self._arg(x) for x in a) if not hasattr(a, "_fields") else tuple(self._arg(x) for x in a)
        return a

    def _placeholder(self, node):
        c, h, w = self.input_shape
        return self.graph.add_block("input", dict(channels=c, height=h, width=w), self.fresh("input"))

    def _get_attr(self, node):
        raise _Skip("parameter", f"a tensor attribute ({node.target}) used directly in forward has no block")

    def _call_module(self, node):
        path = node.target
        m = self.model.get_submodule(path)
        ins = [self._arg(a) for a in node.args]
        if node.kwargs:
            raise _Skip("module", f"{type(m).__name__} called with keyword arguments")
        rule = self.composites.get(type(m)) or self.modules.get(type(m))
        if rule is None:
            raise _Skip("module", f"{type(m).__module__}.{type(m).__name__} has no block kind")
        made = rule(m)
        if isinstance(made, str):
            raise _Skip("module", f"{type(m).__name__}: {made}")
        kind, params = made
        calls = self.used.get(path, 0)
        self.used[path] = calls + 1
        block_id = block_path(path)
        if calls:
            if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
                raise _Skip("module", f"{type(m).__name__} is called {calls + 1} times (shared weights have no "
                                      "block)")
            block_id = self.fresh(f"{block_id}_{calls + 1}")
        return self.block(kind, params, ins, block_id, node)

    def _call_method(self, node):
        return None if self._after_problem(node) else self._function(node.target, node)

    def _call_function(self, node):
        return None if self._after_problem(node) else self._function(node.target, node)

    def _after_problem(self, node) -> bool:
        """True for plumbing (an attribute, an index) on a value that could not be mapped: that problem is already
        listed. Real operations after it are still checked, so every unmappable op is listed at once."""
        import torch.fx as fx
        if node.target not in (getattr, operator.getitem):
            return False
        found = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n))
        return any(n in self.value and self.value[n] is None and n.op != "output" for n in found)

    def _output(self, node):
        outs = self._arg(node.args[0])
        fields = getattr(outs, "fields", None)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        names = list(fields) if fields else [f"aux{i}" for i in range(len(outs))]
        for i, (o, field) in enumerate(zip(outs, names)):
            if o is None:
                continue
            bid = self.fresh("output" if i == 0 else f"{field}_output")
            params = {} if i == 0 else dict(role="aux", loss_weight=0.3)
            self.block("output", params, [o], bid, node)
        return None

    # ---------------------------------------------------------------- functions and methods
    def _function(self, target, node):
        import torch
        import torch.nn.functional as F
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        args = [self._arg(a) for a in node.args]
        kw = {k: self._arg(v) for k, v in node.kwargs.items()}
        where = self._where(node)

        def new(kind, params, inputs, base=None):
            return self.block(kind, params, inputs, self.fresh(f"{where}.{base or kind}" if where != node.name
                                                              else (base or node.name)), node)

        def opt(i, key, default):
            return args[i] if len(args) > i else kw.get(key, default)

        tensors = [a for a in args if isinstance(a, str) and a in self.graph]
        if target in (operator.add, torch.add, "add", "__add__", operator.iadd):
            if len(tensors) == 2 and len(args) == 2 and not kw:
                return new("add", {}, tensors)
            raise _Skip("function", f"{name} of {len(tensors)} tensors and constants has no block")
        if target in (operator.mul, torch.mul, "mul", operator.imul):
            if len(tensors) == 2 and len(args) == 2:
                return new("mul", {}, tensors)
            raise _Skip("function", "multiplying by a constant has no block")
        if target is torch.cat or target == "cat":
            parts, dim = opt(0, "tensors", None), opt(1, "dim", 0)
            if dim not in (1, -3):
                raise _Skip("function", f"torch.cat along dim {dim} (only channels, dim 1, has a block)")
            return new("concat", {}, list(parts))
        if target in (torch.flatten, "flatten"):
            if (opt(1, "start_dim", 0), opt(2, "end_dim", -1)) == (1, -1):
                return new("flatten", {}, [args[0]])
            raise _Skip("function", "flatten that keeps more than the batch dimension has no block")
        if target in ("view", "reshape", torch.reshape):
            shape = args[1:] if target != torch.reshape else list(args[1])
            if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
                shape = list(shape[0])
            if list(shape) in ([BATCH, -1], [-1]) or (len(shape) == 2 and shape[1] == -1):
                return new("flatten", {}, [args[0]])
            raise _Skip("function", f"{name} to {shape} has no block")
        if target == "size":
            if args[1:] == [0] or kw.get("dim") == 0:
                return BATCH
            raise _Skip("function", "sizes other than the batch size have no block")
        if target is getattr and args[1:] == ["shape"]:
            return ("shape",)
        if target is operator.getitem:
            seq, index = args
            if seq == ("shape",) and index == 0:
                return BATCH
            if isinstance(seq, tuple) and isinstance(index, int):
                return seq[index]
            raise _Skip("function", f"indexing {type(seq).__name__} has no block")
        if target in (torch.chunk, "chunk"):
            n, dim = opt(1, "chunks", None), opt(2, "dim", 0)
            src = args[0]
            c = self._channels(src)
            if dim != 1 or c is None or c % n:
                raise _Skip("function", f"chunk into {n} along dim {dim} (only equal channel chunks have a block)")
            step = c // n
            return tuple(new("channel_slice", dict(start=i * step, stop=(i + 1) * step), [src], f"chunk{i}")
                         for i in range(n))
        acts = {F.relu: "relu", torch.relu: "relu", "relu": "relu", F.relu6: "relu6", torch.sigmoid: "sigmoid",
                F.sigmoid: "sigmoid", "sigmoid": "sigmoid", torch.tanh: "tanh", "tanh": "tanh",
                F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", F.silu: "silu", F.gelu: "gelu"}
        if target in acts:
            kind = acts[target]
            from blocks import REGISTRY
            params = {"inplace": bool(kw.get("inplace", False))} if REGISTRY[kind].inplace else {}
            return new(kind, params, [args[0]])
        if target in (F.max_pool2d, F.avg_pool2d):
            kind = "maxpool2d" if target is F.max_pool2d else "avgpool2d"
            k = opt(1, "kernel_size", None)
            s = opt(2, "stride", None) or k
            p = dict(kernel=_pair(k), stride=_pair(s), padding=_pair(opt(3, "padding", 0)),
                     ceil_mode=bool(opt(5 if kind == "maxpool2d" else 4, "ceil_mode", False)))
            if kind == "maxpool2d" and opt(4, "dilation", 1) not in (1, (1, 1)):
                raise _Skip("function", "dilated max pool has no block")
            if kind == "avgpool2d":
                p["count_include_pad"] = bool(opt(5, "count_include_pad", True))
            return new(kind, p, [args[0]])
        if target is F.adaptive_avg_pool2d:
            return new("adaptive_avgpool2d", dict(output_size=_pair(opt(1, "output_size", 1))), [args[0]])
        if target in ("mean", torch.mean):
            dims, keep = opt(1, "dim", None), opt(2, "keepdim", False)
            if dims is not None and sorted(d % 4 for d in (dims if isinstance(dims, (list, tuple)) else [dims])) \
                    == [2, 3]:
                pooled = new("adaptive_avgpool2d", dict(output_size=[1, 1]), [args[0]], "mean")
                return pooled if keep else new("flatten", {}, [pooled], "mean_flatten")
            raise _Skip("function", f"mean over {dims} (only over H and W has a block)")
        if target is F.dropout:
            return new("dropout", dict(p=float(opt(1, "p", 0.5))), [args[0]])
        if any(target is f for f in _autowrapped()):
            return new("channel_shuffle", dict(groups=int(opt(1, "groups", 2))), [args[0]])
        if target in ("contiguous",):
            return args[0]
        if isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields"):
            return _Named(target._fields, [*args, *(kw[f] for f in target._fields[len(args):])])  # outputs
        raise _Skip("function", f"{name} has no block kind")

    def _channels(self, block_id):
        from ..core.analysis import analyze
        try:
            shape = analyze(self.graph).blocks[block_id].out_shape
        except Exception:  # noqa: BLE001
            return None
        return shape[0] if shape else None


class _Named(tuple):
    """A named tuple of outputs (GoogLeNetOutputs, InceptionOutputs): the values and their field names."""

    def __new__(cls, fields, values):
        obj = super().__new__(cls, values)
        obj.fields = tuple(fields)
        return obj


class _Skip(Exception):
    def __init__(self, kind, why):
        super().__init__(why)
        self.kind, self.why = kind, why


def _key(key: str) -> str:
    """A state_dict key with its module path made a block path (the tensor's own name kept)."""
    path, _, leaf = key.rpartition(".")
    return f"{block_path(path)}.{leaf}" if path else key


def default_input(model) -> tuple:
    """The input a model is made for: 3x299x299 for Inception-v3, else 3x224x224."""
    try:
        from torchvision.models import Inception3
        if isinstance(model, Inception3):
            return (3, 299, 299)
    except ImportError:
        pass
    return (3, 224, 224)


def import_module(model, input_shape=None, name: str | None = None) -> Imported:
    """The block graph of ``model`` with its weights; :class:`ModelImportError` lists everything that cannot
    be mapped."""
    import torch
    import torch.fx as fx
    from torch import nn

    leaves = tuple(_known_composites()) + tuple(_module_kinds())

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, leaves) and type(m) in set(leaves) or (
                super().is_leaf_module(m, qualname) and not isinstance(m, (nn.Sequential, nn.ModuleList,
                                                                             nn.ModuleDict)))

    name = name or type(model).__name__
    shape = tuple(input_shape or default_input(model))
    was_training = model.training
    model.train()  # auxiliary heads run in training only
    try:
        tracer = Tracer(autowrap_functions=_autowrapped())
        traced = tracer.trace(model)
    except Exception as e:  # noqa: BLE001  fx refuses control flow on tensors, calls it cannot proxy, ...
        raise ModelImportError(name, [ImportProblem("trace", type(model).__name__,
                                                    f"torch.fx cannot trace it: {type(e).__name__}: "
                                                    f"{str(e).splitlines()[0][:300] if str(e) else ''}")]) from None
    finally:
        model.train(was_training)
    b = _Builder(model, shape, name)
    b.run(traced)
    if b.problems:
        raise ModelImportError(name, b.problems)
    graph = b.graph
    state = {_key(k): v.detach().clone() for k, v in model.state_dict().items()}
    renamed = {k: _key(k) for k in model.state_dict() if _key(k) != k}
    if renamed:
        graph.meta["renamed_weights"] = renamed
    graph = _in_registration_order(graph, model)
    _group_containers(graph, model)
    graph = _in_registration_order(graph, model)  # a group where its first block was
    from ..core.analysis import analyze
    a = analyze(graph)
    if a.errors:
        raise ModelImportError(name, [ImportProblem("shape", e.block or "", e.message) for e in a.errors[:20]])
    from ..backend.compiler import compile_graph
    from ..train.weights import weights_problems
    with torch.device("meta"):
        expected = compile_graph(graph, a).state_dict()
    problems = weights_problems(expected, state)
    if problems:
        raise ModelImportError(name, [ImportProblem("weights", "", p) for p in problems])
    graph.meta["imported_from"] = type(model).__module__ + "." + type(model).__name__
    place(graph)
    return Imported(graph, state)


def _in_registration_order(graph: Graph, model) -> Graph:
    """The graph with its blocks listed in the order the model registers its modules (a function block right
    after what it reads), so the network runs, and registers, them in the source's order wherever the wiring
    leaves a choice: GoogLeNet's aux heads after inception5b, RegNet's projection before its branch."""
    rank = {block_path(p): i for i, (p, _) in enumerate(model.named_modules()) if p}
    keys: dict = {}
    for pos, bid in enumerate(graph.ids()):  # the traced order: a block's inputs come before it
        parts = bid.split(".")
        r = next((rank[".".join(parts[:i])] for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in rank), None)
        if r is None:
            r = max((keys[s][0] for _, s in graph.inputs(bid) if s in keys), default=-1)
        keys[bid] = (r, pos)
    order = sorted(keys, key=keys.__getitem__)
    return graph.copy(order) if order != graph.ids() else graph


def place(graph: Graph) -> None:
    """Lay an imported graph out (graphviz, composites and groups collapsed); a wiring too dense for dot to
    finish in a few seconds (DenseNet's concatenations) gets the layered layout instead."""
    from ..core.layout import dot_positions, layered_positions
    for bid, pos in (dot_positions(graph, timeout=4.0) or layered_positions(graph)).items():
        graph.move(bid, pos)


# ------------------------------------------------------------------------------------- groups of containers

def _group_containers(graph: Graph, model) -> None:
    """Each container module of a named class (not a plain Sequential/ModuleList/ModuleDict) whose blocks take one
    input and give one output becomes a group, outermost first; its id is the module path, its blocks' ids the
    paths below it, so the compiled module's keys stay the source's."""
    from torch import nn
    plain = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    done: list[str] = []
    for path, m in model.named_modules():
        if not path or type(m) in plain or not list(m.children()):
            continue
        path = block_path(path)
        if any(path.startswith(d + ".") for d in done):
            continue
        ids = [bid for bid in graph.ids() if bid.startswith(path + ".")]
        if len(ids) < 2 or path in graph:
            continue
        if _make_group(graph, path, ids, type(m).__name__):
            done.append(path)


def _make_group(graph: Graph, path: str, ids: list, name: str) -> bool:
    """Group the primitive blocks ``ids`` under ``path`` (edits.group keeps their paths below it); False, and the
    graph unchanged, when they are not one-input one-output or hold a composite (groups hold primitives)."""
    from ..core.edits import group
    from ..core.errors import GraphEditError
    if any(graph.block(b).spec is None or graph.block(b).spec.is_composite for b in ids):
        return False
    try:
        group(graph, ids, name, block_id=path)
    except GraphEditError:
        return False
    return True


__all__ = ["Imported", "import_module", "default_input"]
