"""An ONNX file as a block graph, by a direct mapping of the ONNX operators CNNs use onto block kinds (no other
converter: every op below maps to exactly one block, with its weights from the file's initializers).

Block ids come from the nodes' names, which torch.onnx writes as module scopes (``/layer1/layer1.0/conv1/Conv``
becomes ``layer1.0.conv1``). A file exported in eval mode has its batch norms folded into the convolutions (they
arrive as convolutions with a bias), and no auxiliary heads or dropout.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ImportProblem, ModelImportError
from ..core.graph import Graph
from .torch_module import Imported, block_path, place


CONVERTERS: dict = {}  # op type -> [(first opset, converter)], newest first: onnx2torch's (op, opset) table


def converts(op_type: str, since: int = 1):
    """Register a converter of ``op_type`` for files of opset ``since`` and newer (until the next entry)."""
    def register(fn):
        entries = CONVERTERS.setdefault(op_type, [])
        if any(v == since for v, _ in entries):
            raise ValueError(f"a converter of {op_type} since opset {since} is already registered")
        entries.append((since, fn))
        entries.sort(key=lambda e: -e[0])
        return fn
    return register


def converter_for(op_type: str, opset: int):
    """The converter for ``op_type`` in a file of ``opset``, or None."""
    return next((fn for since, fn in CONVERTERS.get(op_type, ()) if since <= opset), None)


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scope(node) -> str:
    """The module path in a node name torch.onnx wrote: ``/layer2/layer2.0/downsample/downsample.0/Conv`` ->
    ``layer2.0.downsample.0`` (a scope is its parent's name plus ``.child`` inside containers, or the child's own
    name); '' when the name holds no scope."""
    parts = [p for p in node.name.split("/") if p][:-1]
    full, prev = "", ""
    for seg in parts:
        if prev and seg.startswith(prev + "."):
            full += seg[len(prev):]
        else:
            full = f"{full}.{seg}" if full else seg
        prev = seg
    return full


def _scalar(value, name):
    """A bound given as a number or a one-element tensor, as a float (None stays None); else one refusal."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise _Refuse(f"its {name} is not one number (shape {list(arr.shape)}, {arr.dtype})")
    return float(arr.reshape(()))


class _Onnx:
    def __init__(self, model, path, input_shape):
        from onnx import numpy_helper
        self.path = path
        self.model = model
        self.g = Graph(Path(path).stem)
        self.problems: list[ImportProblem] = []
        self.const = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.value: dict = {}   # ONNX tensor name -> block id
        self.state: dict = {}
        self.input_shape = input_shape
        self.failed: set = set()  # outputs of nodes that could not be mapped: what reads them is not listed again
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)

    def problem(self, node, why):
        self.problems.append(ImportProblem("operator", _scope(node) or node.name or node.op_type,
                                           f"{node.op_type}: {why}"))

    PARAMETRIC = {"Conv", "ConvTranspose", "Gemm", "BatchNormalization"}

    def fresh(self, node, kind):
        """The block id of a node: its module's path for ops with weights (``layer1.0.conv1``); for the others the
        module's path when the scope's last name is the op's module (``relu``), else the op inside the scope
        (``layer1.0.add``). Unique and never the parent path of another id."""
        scope = _scope(node)
        leaf = [p for p in node.name.split("/") if p][-2:-1]
        op = node.op_type.lower()
        if node.op_type not in self.PARAMETRIC and not (leaf and leaf[0].split(".")[-1].lower().startswith(op[:4])):
            scope = f"{scope}.{op}" if scope else op
        base = block_path(scope or kind) or kind
        taken = set(self.g.ids())
        parents = {".".join(b.split(".")[:i]) for b in taken for i in range(1, b.count(".") + 1)}

        def clash(c):
            return c in taken or c in parents or any(".".join(c.split(".")[:i]) in taken
                                                     for i in range(1, c.count(".") + 1))
        cand, n = base, 2
        while clash(cand) and n < 50:
            cand, n = f"{base}_{n}", n + 1
        if clash(cand):  # a dotted name that cannot be placed: a top-level one
            cand, n = f"{op}_{len(taken)}", len(taken)
            while clash(cand):
                n += 1
                cand = f"{op}_{n}"
        return cand

    def add(self, node, kind, params, inputs, tensors=None):
        bid = self.fresh(node, kind)
        try:
            self.g.add_block(kind, params, bid)
        except Exception as e:  # noqa: BLE001  a value out of the library's range
            self.problem(node, str(e))
            return None
        for src in inputs:
            if src is not None:
                self.g.connect(src, bid, check_cycle=False)
        for name, array in (tensors or {}).items():
            import torch
            self.state[f"{bid}.{name}"] = torch.from_numpy(array.copy())
        self.value[node.output[0]] = bid
        return bid

    def tensor_in(self, name):
        """The block that gives tensor ``name``, if any."""
        if name in self.value:
            return self.value[name]
        return None

    def run(self):
        graph = self.model.graph
        inputs = [i for i in graph.input if i.name not in self.const]
        if len(inputs) != 1:
            self.problems.append(ImportProblem("input", "", f"{len(inputs)} inputs; a network here has one image "
                                                            "input"))
            return
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
        shape = tuple(self.input_shape) if self.input_shape else tuple(dims[1:])
        if len(shape) != 3 or any(not d for d in shape):
            self.problems.append(ImportProblem("input", inputs[0].name, f"shape {dims} is not N x C x H x W with "
                                                                         "known sizes (pass --input CxHxW)"))
            return
        bid = self.g.add_block("input", dict(channels=shape[0], height=shape[1], width=shape[2]), "input")
        self.value[inputs[0].name] = bid
        for node in graph.node:
            handler = converter_for(node.op_type, self.opset)
            if any(n in self.failed for n in node.input):
                self.failed.update(node.output)  # follows from a problem already listed; an op without a
                if handler is None and node.op_type not in FOLDABLE:  # block is still named (arithmetic that
                    # follows from the problem is not): one run lists every operator without a block
                    self.problem(node, "no block kind for this operator")
                continue
            try:
                if self._fold(node):
                    continue
                if handler is None:
                    raise _Refuse("no block kind for this operator")
                handler(self, node, _attrs(node))
            except _Refuse as r:
                self.problem(node, str(r))
                self.failed.update(node.output)
        for i, out in enumerate(graph.output):
            src = self.tensor_in(out.name)
            if src is None:
                continue
            self.g.add_block("output", {} if i == 0 else dict(role="aux", loss_weight=0.3),
                             "output" if i == 0 else f"output_{i}")
            self.g.connect(src, "output" if i == 0 else f"output_{i}", check_cycle=False)

    # ------------------------------------------------------------------ shape arithmetic (folded to constants)
    def _fold(self, node) -> bool:
        """Arithmetic on constants (the exporter's size computations: Shape, Gather, Add, Div, ...) is computed
        here, so what it feeds (a Slice, a Reshape) sees numbers."""
        if node.op_type == "Shape" and node.input[0] in self.value and isinstance(self.value[node.input[0]], str):
            from ..core.analysis import analyze
            out = analyze(self.g).blocks[self.value[node.input[0]]].out_shape
            self.const[node.output[0]] = np.array((1,) + tuple(out), dtype=np.int64)
            return True
        if node.op_type not in FOLDABLE or not all(n in self.const for n in node.input if n):
            return False
        values = _evaluate(node, [self.const[n] for n in node.input if n], self.opset)
        for name, value in zip(node.output, values):
            self.const[name] = np.asarray(value)
        return True

    @converts("Slice")
    def _Slice(self, node, a):
        src = self._x(node)
        starts, ends = self._c(node, 1), self._c(node, 2)
        axes = self._c(node, 3) if len(node.input) > 3 and node.input[3] else np.arange(len(starts))
        steps = self._c(node, 4) if len(node.input) > 4 and node.input[4] else np.ones(len(starts), np.int64)
        if [int(x) % 4 for x in axes] != [1] or int(steps[0]) != 1:
            raise _Refuse("slicing other than a range of channels")
        from ..core.analysis import analyze
        channels = analyze(self.g).blocks[src].out_shape[0]
        start, stop = (int(np.clip(v if v >= 0 else v + channels, 0, channels)) for v in (starts[0], ends[0]))
        self.add(node, "channel_slice", dict(start=start, stop=stop), [src])

    @converts("Reshape")
    def _Reshape(self, node, a):
        shape = [int(v) for v in self._c(node, 1)]
        src = node.input[0]
        pending = self.value.get(src)
        if isinstance(pending, _Shuffle) and pending.stage == 2 and len(shape) == 4:
            return self.add(node, "channel_shuffle", dict(groups=pending.groups), [pending.src])
        block = self._x(node)
        if len(shape) == 5:  # the first step of a channel shuffle: N x groups x C/groups x H x W
            self.value[node.output[0]] = _Shuffle(block, shape[1], 1)
            return None
        if len(shape) == 2 and (shape[1] == -1 or shape[0] in (1, -1, 0)):
            return self.add(node, "flatten", {}, [block])
        raise _Refuse(f"reshape to {shape} (only a flatten or a channel shuffle has a block)")

    @converts("Transpose")
    def _Transpose(self, node, a):
        pending = self.value.get(node.input[0])
        perm = list(a.get("perm", []))
        if isinstance(pending, _Shuffle) and pending.stage == 1 and perm == [0, 2, 1, 3, 4]:
            self.value[node.output[0]] = _Shuffle(pending.src, pending.groups, 2)
            return
        if perm == [0, 2, 3, 1] and isinstance(pending, str):  # a channels-last section opens
            self.value[node.output[0]] = _NHWC(pending, [])
            return
        if perm == [0, 3, 1, 2] and isinstance(pending, _NHWC):  # ... and closes
            return self._close_nhwc(node, pending)
        raise _Refuse(f"transpose {perm} (only a channel shuffle's or a channels-last section's has a block)")

    # ConvNeXt in ONNX: a LayerNorm2d is Transpose, LayerNormalization, Transpose; the block is a depthwise 7x7
    # conv, then that section with MatMul+Add, Gelu, MatMul+Add inside, a Mul by the layer scale and the residual Add.
    def _nhwc(self, node):
        pending = self.value.get(node.input[0]) if node.input else None
        return pending if isinstance(pending, _NHWC) else None

    @converts("LayerNormalization")
    def _LayerNormalization(self, node, a):
        pending = self._nhwc(node)
        if pending is None or int(a.get("axis", -1)) != -1 or pending.ops:
            raise _Refuse("layer normalisation other than over the channels of a channels-last map")
        self.value[node.output[0]] = _NHWC(pending.src, [("ln", float(a.get("epsilon", 1e-5)), self._c(node, 1),
                                                          self._c(node, 2))], node)

    @converts("MatMul")
    def _MatMul(self, node, a):
        pending, w = self._nhwc(node), self._c(node, 1)
        if pending is None or w is None or w.ndim != 2:
            raise _Refuse("a matrix product other than a Linear over the channels of a channels-last map")
        self.value[node.output[0]] = _NHWC(pending.src, pending.ops + [("mm", w.T, None)], pending.node)

    @converts("Gelu")
    def _Gelu(self, node, a):
        pending = self._nhwc(node)
        if pending is None or a.get("approximate", b"none") not in (b"none", "none"):
            raise _Refuse("Gelu other than inside a ConvNeXt block")
        self.value[node.output[0]] = _NHWC(pending.src, pending.ops + [("gelu",)], pending.node)

    def _close_nhwc(self, node, pending):
        kinds = [op[0] for op in pending.ops]
        if kinds == ["ln"]:
            _, eps, w, b = pending.ops[0]
            self.add(pending.node, "layernorm2d", dict(eps=eps), [pending.src], {"weight": w, "bias": b})
            self.value[node.output[0]] = self.value[pending.node.output[0]]
            return
        conv = self.g.block(pending.src)
        if kinds == ["ln", "mm", "gelu", "mm"] and conv.type == "conv2d" and conv.params["kernel"] == [7, 7] \
                and all(op[2] is not None for op in pending.ops if op[0] == "mm"):
            self.value[node.output[0]] = _ConvNeXt(pending, None)
            return
        raise _Refuse(f"a channels-last section of {kinds} (only ConvNeXt's LayerNorm and block have blocks)")

    def _convnext_block(self, node, pending, scale, residual):
        """The ConvNeXt block made from its parts: the depthwise conv already added is taken back into it."""
        conv_id = pending.src
        if [s for _, s in self.g.inputs(conv_id)] != [residual]:
            raise _Refuse("a residual that does not add the block's own input")
        (_, eps, lw, lb), (_, w1, b1), _, (_, w2, b2) = pending.ops
        tensors = {"block.0.weight": self.state.pop(f"{conv_id}.weight").numpy(),
                   "block.0.bias": self.state.pop(f"{conv_id}.bias").numpy(),
                   "block.2.weight": lw, "block.2.bias": lb, "block.3.weight": w1, "block.3.bias": b1,
                   "block.5.weight": w2, "block.5.bias": b2, "layer_scale": np.asarray(scale).reshape(-1, 1, 1)}
        self.g.remove_block(conv_id)
        block_id = conv_id[:-len(".block.0")] if conv_id.endswith(".block.0") else conv_id
        bid = self.add(node, "convnext_block", dict(eps=eps), [residual], tensors)
        if bid is not None and bid != block_id and block_id not in self.g:
            self.g.rename(bid, block_id)
            for k in [k for k in self.state if k.startswith(bid + ".")]:
                self.state[block_id + k[len(bid):]] = self.state.pop(k)
            self.value[node.output[0]] = block_id

    # ------------------------------------------------------------------ operators
    def _x(self, node, i=0):
        name = node.input[i]
        if name not in self.value or not isinstance(self.value[name], str):
            raise _Refuse(f"input {name!r} is not the output of a block (a constant where a tensor is expected)")
        return self.value[name]

    def _c(self, node, i):
        name = node.input[i] if len(node.input) > i else ""
        if not name:
            return None
        if name not in self.const:
            raise _Refuse(f"input {i} ({name!r}) must be a constant")
        return self.const[name]

    @converts("Constant")
    def _Constant(self, node, a):
        from onnx import numpy_helper
        if "value" not in a:
            raise _Refuse("only tensor constants")
        self.const[node.output[0]] = numpy_helper.to_array(a["value"])

    def _pads(self, a, k):
        pads = list(a.get("pads", [0] * 2 * k))
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _Refuse("auto_pad is not supported (export with explicit pads)")
        if pads[:k] != pads[k:]:
            raise _Refuse(f"asymmetric padding {pads}")
        return pads[:k]

    @converts("Conv")
    def _Conv(self, node, a):
        w = self._c(node, 1)
        b = self._c(node, 2)
        if w is None or w.ndim != 4:
            raise _Refuse("only 2-D convolutions with constant weights")
        groups = int(a.get("group", 1))
        params = dict(out_channels=int(w.shape[0]), kernel=list(map(int, w.shape[2:])),
                      stride=list(a.get("strides", [1, 1])), padding=self._pads(a, 2),
                      dilation=list(a.get("dilations", [1, 1])), groups=groups, bias=b is not None)
        tensors = {"weight": w} | ({"bias": b} if b is not None else {})
        self.add(node, "conv2d", params, [self._x(node)], tensors)

    @converts("ConvTranspose")
    def _ConvTranspose(self, node, a):
        w, b = self._c(node, 1), self._c(node, 2)
        groups = int(a.get("group", 1))
        params = dict(out_channels=int(w.shape[1]) * groups, kernel=list(map(int, w.shape[2:])),
                      stride=list(a.get("strides", [1, 1])), padding=self._pads(a, 2),
                      output_padding=list(a.get("output_padding", [0, 0])), dilation=list(a.get("dilations", [1, 1])),
                      groups=groups, bias=b is not None)
        self.add(node, "conv_transpose2d", params, [self._x(node)], {"weight": w} | ({"bias": b} if b is not None
                                                                                     else {}))

    @converts("BatchNormalization")
    def _BatchNormalization(self, node, a):
        scale, bias, mean, var = (self._c(node, i) for i in range(1, 5))
        params = dict(eps=float(a.get("epsilon", 1e-5)), momentum=round(1.0 - float(a.get("momentum", 0.9)), 6))
        self.add(node, "batchnorm2d", params, [self._x(node)],
                 {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
                  "num_batches_tracked": np.array(0, dtype=np.int64)})

    def _act(kind):
        def handler(self, node, a):
            self.add(node, kind, {}, [self._x(node)])
        return handler

    _Sigmoid = converts("Sigmoid")(_act("sigmoid"))
    _Tanh = converts("Tanh")(_act("tanh"))
    _HardSwish = converts("HardSwish")(_act("hardswish"))

    @converts("Relu")
    def _Relu(self, node, a):
        self.add(node, "relu", dict(inplace=False), [self._x(node)])

    @converts("LeakyRelu")
    def _LeakyRelu(self, node, a):
        self.add(node, "leaky_relu", dict(negative_slope=float(a.get("alpha", 0.01))), [self._x(node)])

    @converts("HardSigmoid")
    def _HardSigmoid(self, node, a):
        if abs(float(a.get("alpha", 0.2)) - 1 / 6) > 1e-6 or abs(float(a.get("beta", 0.5)) - 0.5) > 1e-6:
            raise _Refuse("only torch's hardsigmoid (alpha 1/6, beta 1/2)")
        self.add(node, "hardsigmoid", {}, [self._x(node)])

    @converts("Clip", since=1)
    def _Clip_attributes(self, node, a):  # opsets 1-10: the bounds are attributes
        self._clip(node, a.get("min"), a.get("max"))

    @converts("Clip", since=11)
    def _Clip(self, node, a):  # opset 11 on: the bounds are optional inputs
        lo = self._c(node, 1) if len(node.input) > 1 and node.input[1] else None
        hi = self._c(node, 2) if len(node.input) > 2 and node.input[2] else None
        self._clip(node, lo, hi)

    def _clip(self, node, lo, hi):
        lo, hi = (_scalar(v, name) for v, name in ((lo, "min"), (hi, "max")))
        if lo == 0.0 and hi == 6.0:
            return self.add(node, "relu6", dict(inplace=False), [self._x(node)])
        raise _Refuse(f"clip to [{lo}, {hi}] (only ReLU6's [0, 6] has a block)")

    def _pool(self, node, a, kind):
        k = list(a["kernel_shape"])
        if list(a.get("dilations", [1, 1])) != [1, 1]:
            raise _Refuse("dilated pooling")
        params = dict(kernel=k, stride=list(a.get("strides", [1, 1])), padding=self._pads(a, 2),
                      ceil_mode=bool(a.get("ceil_mode", 0)))
        if kind == "avgpool2d":
            params["count_include_pad"] = bool(a.get("count_include_pad", 0))
        self.add(node, kind, params, [self._x(node)])

    @converts("MaxPool")
    def _MaxPool(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            raise _Refuse("max pool with indices")
        self._pool(node, a, "maxpool2d")

    @converts("AveragePool")
    def _AveragePool(self, node, a):
        self._pool(node, a, "avgpool2d")

    @converts("GlobalAveragePool")
    def _GlobalAveragePool(self, node, a):
        self.add(node, "adaptive_avgpool2d", dict(output_size=[1, 1]), [self._x(node)])

    @converts("Concat")
    def _Concat(self, node, a):
        if int(a.get("axis", 1)) not in (1, -3):
            raise _Refuse(f"concat along axis {a.get('axis')} (only channels, axis 1)")
        self.add(node, "concat", {}, [self._x(node, i) for i in range(len(node.input))])

    def _merge(kind):
        def handler(self, node, a):
            pend = [self.value.get(n) for n in node.input]
            nhwc = next((p for p in pend if isinstance(p, _NHWC)), None)
            if kind == "add" and nhwc is not None and nhwc.ops and nhwc.ops[-1][0] == "mm" \
                    and any(n in self.const for n in node.input):  # the bias of a Linear over channels
                b = next(self.const[n] for n in node.input if n in self.const)
                self.value[node.output[0]] = _NHWC(nhwc.src, nhwc.ops[:-1] + [("mm", nhwc.ops[-1][1], b)],
                                                   nhwc.node)
                return
            block = next((p for p in pend if isinstance(p, _ConvNeXt)), None)
            if block is not None and kind == "mul" and block.scale is None and any(n in self.const for n in node.input):
                scale = next(self.const[n] for n in node.input if n in self.const)
                self.value[node.output[0]] = _ConvNeXt(block.pending, scale)
                return
            if block is not None and kind == "add" and block.scale is not None:
                other = next(p for p in pend if p is not block)
                if isinstance(other, str):
                    return self._convnext_block(node, block.pending, block.scale, other)
            if any(n in self.const for n in node.input):
                raise _Refuse("with a constant operand (only tensor-tensor merges have a block)")
            self.add(node, kind, {}, [self._x(node, 0), self._x(node, 1)])
        return handler

    _Add = converts("Add")(_merge("add"))
    _Mul = converts("Mul")(_merge("mul"))

    @converts("Flatten")
    def _Flatten(self, node, a):
        if int(a.get("axis", 1)) != 1:
            raise _Refuse(f"flatten from axis {a.get('axis')}")
        self.add(node, "flatten", {}, [self._x(node)])

    @converts("Gemm")
    def _Gemm(self, node, a):
        w, b = self._c(node, 1), self._c(node, 2)
        if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or int(a.get("transA", 0)):
            raise _Refuse("only y = x W^T + b")
        if not int(a.get("transB", 0)):
            w = w.T
        self.add(node, "linear", dict(out_features=int(w.shape[0]), bias=b is not None), [self._x(node)],
                 {"weight": w} | ({"bias": b} if b is not None else {}))

    @converts("Identity")
    def _Identity(self, node, a):
        if node.input[0] in self.const:  # the exporter shares a folded weight this way
            self.const[node.output[0]] = self.const[node.input[0]]
        else:
            self.value[node.output[0]] = self._x(node)

    converts("Dropout")(_Identity)

    @converts("ReduceMean")
    def _ReduceMean(self, node, a):
        axes = a.get("axes") or (list(self._c(node, 1)) if len(node.input) > 1 else None)
        if sorted(int(x) % 4 for x in (axes or [])) != [2, 3]:
            raise _Refuse(f"mean over axes {axes} (only over H and W has a block)")
        pooled = self.add(node, "adaptive_avgpool2d", dict(output_size=[1, 1]), [self._x(node)])
        if not int(a.get("keepdims", 1)):
            self.add(node, "flatten", {}, [pooled])


# Operators computed ahead when all their inputs are constants (the exporter's size arithmetic), by onnx's own
# reference implementation of the file's opset; what they feed (a Slice, a Reshape) then sees numbers.
FOLDABLE = {"Gather", "Add", "Sub", "Mul", "Div", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape",
            "Shape", "ConstantOfShape", "Range", "Equal", "Where", "Expand", "Floor", "Ceil", "Sqrt", "Neg",
            "ReduceProd", "Identity", "Transpose"}


def _evaluate(node, args, opset) -> list:
    """The outputs of ``node`` on constant ``args``, by ``onnx.reference`` (one refusal naming the problem when
    the values do not fit the operator: a hostile file's Gather index out of range, a Concat of mismatched
    shapes)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    names = [n for n in node.input if n]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
              for n, v in zip(names, args)]
    outputs = [helper.make_tensor_value_info(o, 0, None) for o in node.output if o]
    model = helper.make_model(helper.make_graph([node], "fold", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", max(opset, 7))])
    try:
        return ReferenceEvaluator(model).run(None, {n: np.asarray(v) for n, v in zip(names, args)})
    except Exception as e:  # noqa: BLE001  the reference ops raise what numpy raises
        raise _Refuse(f"cannot be computed from its constant inputs ({type(e).__name__}: {str(e)[:200]})") \
            from None


class _Shuffle:
    """A channel shuffle under way: Reshape to N x g x C/g x H x W (stage 1), then Transpose (stage 2)."""

    def __init__(self, src, groups, stage):
        self.src, self.groups, self.stage = src, groups, stage


class _NHWC:
    """A channels-last section under way: its source block, the ops seen so far, the node of its LayerNorm."""

    def __init__(self, src, ops, node=None):
        self.src, self.ops, self.node = src, ops, node


class _ConvNeXt:
    """A ConvNeXt block whose section has closed: waiting for the layer-scale Mul and the residual Add."""

    def __init__(self, pending, scale):
        self.pending, self.scale = pending, scale


class _Refuse(Exception):
    pass


def import_onnx(path: Path, input_shape=None) -> Imported:
    """The block graph of an ONNX file with its weights; :class:`ModelImportError` lists what cannot be mapped."""
    try:
        import onnx
    except ImportError:
        raise ModelImportError(str(path), [ImportProblem("file", str(path), "the onnx package is not installed")]) \
            from None
    if not Path(path).is_file():
        raise ModelImportError(str(path), [ImportProblem("file", str(path), "no such file")])
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001  onnx raises DecodeError, ValidationError, ...
        raise ModelImportError(str(path), [ImportProblem("file", str(path), f"not a valid ONNX model "
                                                                            f"({type(e).__name__}: "
                                                                            f"{str(e).splitlines()[0][:200] if str(e) else ''})")]) from None
    job = _Onnx(model, path, input_shape)
    job.run()
    if job.problems:
        raise ModelImportError(str(path), job.problems)
    from ..core.analysis import analyze
    a = analyze(job.g)
    if a.errors:
        raise ModelImportError(str(path), [ImportProblem("shape", e.block or "", e.message) for e in a.errors[:20]])
    from ..backend.compiler import compile_graph
    from ..train.weights import weights_problems
    import torch
    with torch.device("meta"):
        expected = compile_graph(job.g, a).state_dict()
    problems = weights_problems(expected, job.state)
    if problems:
        raise ModelImportError(str(path), [ImportProblem("weights", "", p) for p in problems])
    job.g.meta["imported_from"] = Path(path).name
    place(job.g)
    return Imported(job.g, job.state)
