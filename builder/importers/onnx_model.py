"""An ONNX file as a block graph: every kind says which ONNX operators, or chains of operators, it stands for
(``BlockSpec.from_onnx``), and this module applies those rules, with the weights from the file's initializers.

Sizes come from onnx's shape inference and constant arithmetic from onnx's reference evaluator, before any
block is made; then chains of operators that are one kind (Sigmoid and Mul: SiLU; the erf form of GELU; a
ConvNeXt block) are matched, shortest first, and every other node is converted by the rule registered for its
(operator, opset).

Block ids come from the nodes' names, which torch.onnx writes as module scopes (``/layer1/layer1.0/conv1/Conv``
becomes ``layer1.0.conv1``). A file exported in eval mode has its batch norms folded into the convolutions (they
arrive as convolutions with a bias), and no auxiliary heads or dropout.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import GraphEditError, ImportProblem, ModelImportError
from ..core.graph import Graph
from . import progress
from .structure import place
from .torch_module import Imported, block_path


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
    _register_kinds()
    return next((fn for since, fn in CONVERTERS.get(op_type, ()) if since <= opset), None)


def _attrs(node) -> dict:
    """The node's attributes; a float as the decimal it was written as (ONNX keeps float32: eps 1e-5 arrives as
    9.99999974e-06, so it is rounded to float32's 7 significant digits)."""
    from onnx import AttributeProto, helper
    return {a.name: float(f"{a.f:.7g}") if a.type == AttributeProto.FLOAT else helper.get_attribute_value(a)
            for a in node.attribute}


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


class OnnxNode:
    """One ONNX node, or the nodes of a matched pattern (``nodes``; ``node`` is the first), as a kind's
    :class:`~blocks.imports.FromOnnx` rule reads it: attributes, constant inputs, the blocks it reads, and the
    weights it fills (``weights``: tensor name inside the block -> array)."""

    def __init__(self, job, node, nodes=()):
        self.job, self.node, self.nodes = job, node, list(nodes) or [node]
        self.attrs = _attrs(node)
        self.opset = job.opset
        self.weights: dict = {}

    @staticmethod
    def refuse(why: str):
        raise _Refuse(why)

    @staticmethod
    def attributes(node) -> dict:
        return _attrs(node)

    @staticmethod
    def scope(node) -> str:
        """The module path torch.onnx wrote in the node's name (``inception3a.branch1.conv``), or ''."""
        return _node_scope(node)

    def sub(self, node) -> "OnnxNode":
        """Another node of the pattern, as a rule of its own reads it (its weights apart)."""
        return OnnxNode(self.job, node)

    def is_constant(self, i: int, node=None) -> bool:
        node = node or self.node
        return len(node.input) > i and node.input[i] in self.job.const

    def const(self, i: int, node=None):
        """Constant input ``i`` of ``node`` (default: this one) as an array; None when the input is absent."""
        node = node or self.node
        name = node.input[i] if len(node.input) > i else ""
        if not name:
            return None
        if name not in self.job.const:
            raise _Refuse(f"input {i} ({name!r}) must be a constant")
        return self.job.const[name]

    def other_const(self, node):
        """The constant operand of a two-operand node (an Add's bias, a Mul's scale), or None."""
        return next((self.job.const[n] for n in node.input if n in self.job.const), None)

    def is_const(self, node, value: float, tolerance: float = 1e-6) -> bool:
        """Whether ``node`` has a constant operand equal to ``value`` (one number)."""
        c = self.other_const(node)
        return c is not None and np.asarray(c).size == 1 and abs(float(np.asarray(c).reshape(())) - value) <= \
            tolerance * max(1.0, abs(value))

    def x(self, i: int = 0) -> str:
        return self.job._x(self.node, i)

    def pads(self, k: int) -> list:
        return self.job._pads(self.attrs, k)

    @staticmethod
    def scalar(value, name):
        return _scalar(value, name)

    def shape(self, block: str) -> tuple:
        """The output shape of a block made so far, without the batch dimension."""
        return self.job.block_shape(block)

    def channels(self, block: str) -> int:
        return self.shape(block)[0]

    @staticmethod
    def array(value, dtype: str):
        return np.array(value, dtype=dtype)


class _Fused:
    """The nodes of a matched pattern, standing for one block of ``spec`` (parameters and weights read)."""
    attribute = ()

    def __init__(self, spec, made, weights, first, last, nodes):
        self.spec, self.made, self.weights, self.first = spec, made, weights, first
        self.op_type = spec.type_id  # what a longer pattern names it by ("gelu" inside a ConvNeXt block)
        self.input = list(first.input[:1])  # the tensor it reads (its constants are read already)
        self.output = list(last.output[:1])
        self.name = first.name
        self.scope = _common_scope(nodes)


def _node_scope(node) -> str:
    return node.scope if isinstance(node, _Fused) else _scope(node)


def _common_scope(nodes) -> str:
    """The innermost module path all the nodes share (the module the pattern is)."""
    parts = [_node_scope(n).split(".") for n in nodes if _node_scope(n)]
    if not parts:
        return ""
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


class _Onnx:
    def __init__(self, model, path, input_shape, weights: dict):
        self.path = path
        self.model = model
        self.g = Graph(Path(path).stem)
        self.problems: list[ImportProblem] = []
        self.const = weights  # the initializers as arrays (read once, by _vet)
        self.value: dict = {}   # ONNX tensor name -> block id
        self.state: dict = {}
        self.input_shape = input_shape
        self.failed: set = set()  # outputs of nodes that could not be mapped: what reads them is not listed again
        self.nodes = list(model.graph.node)  # held, so that id() names a node for the whole import
        self.scope_nodes: dict = {}  # module path -> how many nodes (not constants) have it
        self.parent_scopes: set = set()  # module paths with modules below them
        self.folded: set = set()  # ids of the nodes whose outputs are computed ahead (constants)
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.current = None  # the node being read (a message about a file that breaks the importer names it)
        self.initializers = {t.name for t in model.graph.initializer}  # the file's weights (not computed)
        self.read = {n for node in model.graph.node for n in node.input} | {o.name for o in model.graph.output}
        self.notes: list = []  # what became captured blocks, and why
        self.shapes: dict = {}  # block id -> its output shape (no batch), checked as each block is made
        self.made_now: list = []  # the blocks made for the node being converted

    def problem(self, node, why):
        where = node.scope if isinstance(node, _Fused) else _scope(node)
        self.problems.append(ImportProblem("operator", where or node.name or node.op_type, f"{node.op_type}: {why}"))

    PARAMETRIC = {"Conv", "ConvTranspose", "Gemm", "BatchNormalization"}

    def fresh(self, node, kind):
        """The block id of a node: its module's path for ops with weights (``layer1.0.conv1``) and for a pattern
        (the module it is); for the others the module's path when the scope's last name is the op's module
        (``relu``), else the op inside the scope (``layer1.0.add``). Unique and never the parent path of another
        id."""
        if isinstance(node, _Fused):  # the module it is, else the function inside its module
            scope, op = node.scope, kind
        else:
            scope = _scope(node)
            leaf = [p for p in node.name.split("/") if p][-2:-1]
            op = node.op_type.lower()
            alone = scope and self.scope_nodes.get(scope) == 1 and scope not in self.parent_scopes
            if node.op_type not in self.PARAMETRIC and not alone and not (
                    leaf and leaf[0].split(".")[-1].lower().startswith(op[:4])):
                scope = f"{scope}.{op}" if scope else op
        base = block_path(scope or kind) or kind
        taken = set(self.g.ids())
        parents = {".".join(b.split(".")[:i]) for b in taken for i in range(1, b.count(".") + 1)}

        def clash(c):
            return c in taken or c in parents or any(".".join(c.split(".")[:i]) in taken
                                                     for i in range(1, c.count(".") + 1))
        if isinstance(node, _Fused) and clash(base) and scope:
            base = block_path(f"{scope}.{kind}")
        cand, n = base, 2
        head, _, last = base.rpartition(".")
        stem = f"{head}.{op}{last}" if last.isdigit() and head else base  # "conv_dw.0" taken: "conv_dw.conv0_2"
        while clash(cand) and n < 50:
            cand, n = f"{stem}_{n}", n + 1
        if clash(cand):  # a dotted name that cannot be placed: a top-level one
            cand, n = f"{op}_{len(taken)}", len(taken)
            while clash(cand):
                n += 1
                cand = f"{op}_{n}"
        return cand

    def add(self, node, kind, params, inputs, tensors=None, output: int = 0):
        """A block for ``node`` reading ``inputs``; its shape is checked as it is made, so a rule whose block
        cannot take its input is refused here (and the node goes to the exact fallback)."""
        from ..core.analysis import evaluate
        bid = self.fresh(node, kind)
        try:
            self.g.add_block(kind, params, bid)
        except Exception as e:  # noqa: BLE001  a value out of the library's range
            raise _Refuse(str(e)) from None
        sources = [src for src in inputs if src is not None]
        for src in sources:
            self.g.connect(src, bid, check_cycle=False)
        if all(src in self.shapes for src in sources):
            blk = self.g.block(bid)
            result = evaluate(kind, blk.params, tuple(self.shapes[src] for src in sources))
            if result.errors or result.out_shape is None:
                self.g.remove_block(bid)
                from blocks.spec import fill_sources
                why = result.errors[0][1] if result.errors else "its output shape is not known"
                raise _Refuse(fill_sources(why, sources)[0])
            self.shapes[bid] = tuple(result.out_shape)
        self.made_now.append(bid)
        for name, array in (tensors or {}).items():
            import torch
            self.state[f"{bid}.{name}"] = torch.from_numpy(np.array(array, copy=True))
        self.value[node.output[output]] = bid
        return bid

    def make(self, spec, made, node, weights):
        """The block(s) a kind's rule made of ``node``."""
        from blocks.imports import Chain, Made, Split
        if isinstance(made, Split):  # one block per output, each reading the node's input
            x = self._x(node)
            if len(made.steps) != len(node.output):
                raise _Refuse(f"{len(made.steps)} parts for its {len(node.output)} outputs")
            return [self.add(node, kind, params, [x], None, output=i) for i, (kind, params) in enumerate(made.steps)]
        if isinstance(made, Made):
            return self.add(node, made.kind or spec.type_id, made.params, made.inputs, weights)
        if isinstance(made, Chain):
            value = self._x(node)
            for i, (kind, params) in enumerate(made.steps):
                value = self.add(node, kind, params, [value], weights if i == 0 else None)
            return value
        return self.add(node, spec.type_id, made, [self._x(node)], weights)

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
        self.input_name, self.input_dims = inputs[0].name, dims
        shape = tuple(self.input_shape) if self.input_shape else tuple(dims[1:])
        if not 1 <= len(shape) <= 4 or any(d is None or d < 1 for d in shape):
            self.problems.append(ImportProblem("input", inputs[0].name, f"shape {dims} is not N x C x H x W, "
                                                                         "N x C x D x H x W, N x C x L or N x C "
                                                                         "with known sizes (pass --input CxHxW)"))
            return
        from blocks.primitives import input_params
        try:
            bid = self.g.add_block("input", input_params(shape), "input")
        except GraphEditError as e:
            self.problems.append(ImportProblem("input", inputs[0].name, f"shape {dims}: {e}"))
            return
        self.value[inputs[0].name] = bid
        self.shapes[bid] = tuple(shape)
        self._prefold(_static_shapes(self.model, inputs[0].name, shape))
        live = [n for n in self._fuse(self.nodes) if id(n) not in self.folded]
        # a leaf module (a child "0" that is a MaxPool2d) is the one node of its scope: its id is the scope
        for n in live:
            sc = _node_scope(n)
            self.scope_nodes[sc] = self.scope_nodes.get(sc, 0) + 1
            parts = sc.split(".")
            self.parent_scopes.update(".".join(parts[:i]) for i in range(1, len(parts)))
        for node in live:
            self.current = node
            if id(node) in self.folded:
                continue
            if isinstance(node, _Fused):
                if node.input[0] in self.failed:
                    self.failed.update(node.output)
                    continue
                try:
                    self.make(node.spec, node.made, node, node.weights)
                except _Refuse as r:
                    self.problem(node, str(r))
                    self.failed.update(node.output)
                continue
            handler = converter_for(node.op_type, self.opset)
            self.made_now = []
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
                if self.made_now:  # what a rule made before it refused (one part of a Split)
                    for bid in self.made_now:
                        self.g.remove_block(bid)
                    made = tuple(bid + "." for bid in self.made_now)
                    self.state = {k: v for k, v in self.state.items() if not k.startswith(made)}
                if not self._opaque(node, str(r)):
                    self.failed.update(node.output)
        for i, out in enumerate(graph.output):
            src = self.tensor_in(out.name)
            if src is None:
                continue
            self.g.add_block("output", {} if i == 0 else dict(role="aux", loss_weight=0.3),
                             "output" if i == 0 else f"output_{i}")
            self.g.connect(src, "output" if i == 0 else f"output_{i}", check_cycle=False)

    def _opaque(self, node, why: str) -> bool:
        """The exact fallback for a node no kind's rule maps: captured blocks (:mod:`.onnx_opaque`), listed in
        the notes; False, with the problem listed, when it cannot be captured either."""
        from .capture import CaptureError
        from .onnx_opaque import capture_node
        progress.step(f"Capturing {_scope(node) or node.name or node.op_type} ({node.op_type}): {why}")
        try:
            made = capture_node(self, node, _attrs(node))
        except _Refuse as r:
            self.problem(node, f"{why}; it cannot be captured either: {r}")
            return False
        except CaptureError as e:
            self.problem(node, f"{why}; it cannot be captured either: {e.why}")
            return False
        from blocks import REGISTRY
        for k, params, inputs, tensors in made:
            if params is None:
                self.value[node.output[k]] = inputs[0]
                continue
            try:
                bid = self.add(node, REGISTRY.capture_kind(), params, inputs, tensors, output=k)
            except _Refuse as r:
                self.problem(node, f"{why}; its capture cannot be used: {r}")
                return False
            self.notes.append(f"{bid}: ONNX {node.op_type} captured ({why})")
        return True

    def block_shape(self, block: str) -> tuple:
        """The output shape of a block made so far, without the batch dimension."""
        if block not in self.shapes:
            raise _Refuse(f"the shape of its input {block!r} is not known")
        return self.shapes[block]

    # ------------------------------------------------------------------ constants computed ahead
    def _prefold(self, shapes: dict) -> None:
        """Constants, sizes known from onnx's shape inference and arithmetic on them (the exporter's size
        computations: Shape, Gather, Concat, ...) are computed before any block is made, so patterns and the
        operators they feed (a Reshape) see numbers. What cannot be computed is left to the main pass, which
        refuses it with a message naming the node."""
        for node in self.nodes:
            try:
                if node.op_type == "Constant":
                    _constant(self, node, _attrs(node))
                elif not (node.op_type == "Shape" and shapes.get(node.input[0]) and
                          self._shape(node, shapes[node.input[0]])) and not self._arithmetic(node):
                    continue
            except _Refuse:
                continue
            self.folded.add(id(node))

    def _fold(self, node) -> bool:
        """Arithmetic on constants left after the first pass (sizes of blocks onnx could not infer)."""
        if node.op_type == "Shape" and node.input[0] in self.value and isinstance(self.value[node.input[0]], str):
            return self._shape(node, (1,) + self.block_shape(self.value[node.input[0]]))
        return self._arithmetic(node)

    def _shape(self, node, dims) -> bool:
        """A Shape node's output from the sizes of its input (its start and end attributes applied)."""
        a = _attrs(node)
        self.const[node.output[0]] = np.array(dims, dtype=np.int64)[a.get("start", 0):a.get("end")]
        return True

    def _arithmetic(self, node) -> bool:
        """A foldable operator whose inputs are all constants, computed by onnx's reference evaluator."""
        if node.op_type not in FOLDABLE or not node.input or not all(n in self.const for n in node.input if n):
            return False
        for name, value in zip(node.output, _evaluate(node, [self.const[n] for n in node.input if n], self.opset)):
            self.const[name] = np.asarray(value)
        return True

    # ------------------------------------------------------------------ patterns
    def _fuse(self, nodes: list) -> list:
        """``nodes`` with every match of a kind's pattern (``FromOnnx.pattern``) replaced by one :class:`_Fused`,
        shortest patterns first, so a longer one sees the shorter ones as their kinds (GELU inside ConvNeXt)."""
        from blocks import REGISTRY
        patterns = sorted(((spec, f) for spec in REGISTRY for f in spec.from_onnx if f.pattern),
                          key=lambda e: len(e[1].pattern))
        outputs = {o.name for o in self.model.graph.output}
        for spec, f in patterns:
            nodes = self._fuse_one(nodes, spec, f, outputs)
        return nodes

    def _fuse_one(self, nodes, spec, f, outputs) -> list:
        live = [n for n in nodes if id(n) not in self.folded]
        readers: dict = {}
        for n in live:
            for name in n.input:
                if name and name not in self.const:
                    readers.setdefault(name, []).append(n)
        replaced: dict = {}  # id(first node) -> _Fused; id(other matched node) -> None
        for node in live:
            if id(node) in replaced or not _step_matches(f.pattern[0], node):
                continue
            chain = self._match(node, f.pattern, readers, outputs, replaced)
            if chain is None:
                continue
            n = OnnxNode(self, node, chain)
            try:
                made = f.read(n) if f.read is not None else {}
            except (_Refuse, KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError):
                continue  # not this kind after all: its nodes are converted one by one
            replaced[id(node)] = _Fused(spec, made, n.weights, node, chain[-1], chain)
            for other in chain[1:]:
                replaced[id(other)] = None
        if not replaced:
            return nodes
        return [replaced[id(n)] if id(n) in replaced else n for n in nodes if replaced.get(id(n), n) is not None]

    def _match(self, first, pattern, readers, outputs, taken):
        x = first.input[0] if first.input else ""
        if not x or x in self.const or [n for n in first.input if n and n not in self.const] != [x]:
            return None
        chain, prev = [first], first.output[0]
        for step in pattern[1:]:
            nxt = readers.get(prev, [])
            if len(nxt) != 1 or prev in outputs or id(nxt[0]) in taken or not _step_matches(step, nxt[0]):
                return None
            node = nxt[0]
            tensors = {n for n in node.input if n and n not in self.const}
            want = {prev, x} if isinstance(step, tuple) and "x" in step[1:] else {prev}
            if tensors != want or (x in want and list(node.input).count(x) != 1):
                return None
            chain.append(node)
            prev = node.output[0]
        return chain

    # ------------------------------------------------------------------ operators
    def _x(self, node, i=0):
        name = node.input[i]
        if name not in self.value or not isinstance(self.value[name], str):
            raise _Refuse(f"input {name!r} is not the output of a block (a constant where a tensor is expected)")
        return self.value[name]

    def _pads(self, a, k):
        pads = list(a.get("pads", [0] * 2 * k))
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _Refuse("auto_pad is not supported (export with explicit pads)")
        if pads[:k] != pads[k:]:
            raise _Refuse(f"asymmetric padding {pads}")
        return pads[:k]


def _step_matches(step, node) -> bool:
    ops = step[0] if isinstance(step, tuple) else step
    return node.op_type in ops if isinstance(ops, (set, frozenset)) else node.op_type == ops


# ------------------------------------------------------------------ converters: the structural ops, then the kinds'

@converts("Constant")
def _constant(job, node, a):
    from onnx import numpy_helper
    if "value" not in a:
        raise _Refuse("only tensor constants")
    job.const[node.output[0]] = numpy_helper.to_array(a["value"])


@converts("Identity")
def _identity(job, node, a):
    if node.input[0] in job.const:  # the exporter shares a folded weight this way
        job.const[node.output[0]] = job.const[node.input[0]]
    else:
        job.value[node.output[0]] = job._x(node)


@converts("Dropout")
def _dropout(job, node, a):
    """Inference mode: the identity (the training-mode form, with a true training_mode input, is refused)."""
    training = job.const.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if training is not None and bool(np.asarray(training).reshape(-1)[0]) or len(node.input) > 2 and \
            node.input[2] and node.input[2] not in job.const:
        raise _Refuse("dropout in training mode (export in eval mode)")
    job.value[node.output[0]] = job._x(node)


def _kind_converter(spec, f):
    def convert(job, node, a):
        n = OnnxNode(job, node)
        try:
            made = f.read(n) if f.read is not None else {}  # the kind's defaults (in place where the compiler may)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
            raise _Refuse(f"its attributes or inputs cannot be read as {spec.title} ({type(e).__name__}: "
                          f"{str(e)[:120]})") from None
        job.make(spec, made, node, n.weights)
    convert.__name__ = f"{spec.type_id}_from_{f.op}"
    return convert


_KINDS: list = []


def _register_kinds() -> None:
    """Every kind's operator rules (``BlockSpec.from_onnx``) in the registry, once per set of kinds."""
    from blocks import REGISTRY
    key = tuple(spec.type_id for spec in REGISTRY)
    if _KINDS and _KINDS[0][0] == key:
        return
    for entries in CONVERTERS.values():
        entries[:] = [e for e in entries if not getattr(e[1], "from_kind", False)]
    for spec in REGISTRY:
        for f in spec.from_onnx:
            if f.op:
                fn = _kind_converter(spec, f)
                fn.from_kind = True
                converts(f.op, f.since)(fn)
    _KINDS[:] = [(key, True)]


def _static_shapes(model, input_name: str, shape) -> dict:
    """{tensor name: [dims]} for every tensor whose sizes onnx's shape inference finds, the input fixed to
    1 x C x H x W; {} when the file defeats it (the main pass then reads sizes from the blocks)."""
    import onnx
    from onnx import helper
    try:
        m = onnx.ModelProto()  # the graph without its weights (their sizes are enough): VGG's 500 MB not copied
        m.ir_version = model.ir_version
        m.opset_import.extend(model.opset_import)
        m.graph.node.extend(model.graph.node)
        m.graph.input.extend(model.graph.input)
        m.graph.output.extend(model.graph.output)
        declared = {vi.name for vi in model.graph.input}
        for init in model.graph.initializer:
            if np.prod(init.dims, dtype=np.int64) <= 64:  # shape arithmetic reads small constants' values
                m.graph.initializer.append(init)
            elif init.name not in declared:
                m.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        for vi in m.graph.input:
            if vi.name == input_name:
                dims = vi.type.tensor_type.shape.dim
                if len(dims) != len(shape) + 1:
                    return {}
                for d, v in zip(dims, (1,) + tuple(shape)):
                    d.Clear()
                    d.dim_value = int(v)
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001  shape inference refuses what the checker let through
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            if dims and None not in dims:
                out[vi.name] = dims
    return out


# Operators computed ahead when all their inputs are constants (the exporter's size arithmetic), by onnx's own
# reference implementation of the file's opset; what they feed (a Slice, a Reshape) then sees numbers.
FOLDABLE = {"Gather", "Add", "Sub", "Mul", "Div", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape",
            "Shape", "ConstantOfShape", "Range", "Equal", "Where", "Expand", "Floor", "Ceil", "Sqrt", "Neg",
            "ReduceProd", "Identity", "Transpose", "Clip", "Max", "Min", "Abs", "Mod", "Less", "Greater", "Not",
            "And", "Or", "Pow"}


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


class _Refuse(Exception):
    pass


# the element types a weight may have (numpy reads them, torch takes them); bfloat16, strings, complex are refused
WEIGHT_TYPES = {"FLOAT", "FLOAT16", "DOUBLE", "INT64", "INT32", "INT16", "INT8", "UINT8", "BOOL"}
MAX_WEIGHT_VALUES = 1 << 31


def _vet(model) -> tuple[list, dict]:
    """What makes a file unreadable before anything is built from it: weights whose declared sizes and data
    disagree, of an element type this importer cannot hold, or of an absurd size; node names that are not text.
    Returns the problems and the initializers read as arrays ({name: array}, for the import)."""
    from onnx import TensorProto, helper, numpy_helper
    problems, arrays = [], {}
    for node in model.graph.node:
        if isinstance(node.name, bytes):  # protobuf hands back invalid UTF-8 as bytes
            node.name = node.name.decode("utf-8", errors="replace")
    tensors = [(t, "weight", True) for t in model.graph.initializer]
    for node in model.graph.node:
        tensors += [(a.t, f"{node.op_type} {node.name or ''}".strip(), False) for a in node.attribute
                    if a.HasField("t")]
    for t, what, initializer in tensors:
        name = t.name or what
        kind = TensorProto.DataType.Name(t.data_type) if t.data_type in TensorProto.DataType.values() else None
        if kind not in WEIGHT_TYPES:
            problems.append(ImportProblem("weight", name, f"element type {kind or t.data_type} is not supported "
                                                          f"(supported: {', '.join(sorted(WEIGHT_TYPES))})"))
            continue
        if any(d < 0 for d in t.dims):
            problems.append(ImportProblem("weight", name, f"negative size in its dims {list(t.dims)}"))
            continue
        n = int(np.prod(t.dims, dtype=object))
        if n > MAX_WEIGHT_VALUES:
            problems.append(ImportProblem("weight", name, f"{n:,} values (dims {list(t.dims)}): over the "
                                                          f"{MAX_WEIGHT_VALUES:,} a weight may hold"))
            continue
        if t.HasField("data_location") and t.data_location == TensorProto.EXTERNAL:
            continue  # external data: onnx.load has read or refused it
        size = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        if t.raw_data and len(t.raw_data) != n * size:
            problems.append(ImportProblem("weight", name, f"holds {len(t.raw_data):,} bytes of data where its dims "
                                                          f"{list(t.dims)} need {n * size:,}"))
            continue
        try:
            value = numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001  a typed field of the wrong length, a value numpy cannot hold
            problems.append(ImportProblem("weight", name, f"cannot be read ({type(e).__name__}: "
                                                          f"{str(e).splitlines()[0][:160] if str(e) else ''})"))
            continue
        if value.size != n:
            problems.append(ImportProblem("weight", name, f"holds {value.size:,} values where its dims "
                                                          f"{list(t.dims)} need {n:,}"))
        elif initializer:
            arrays[t.name] = value
    return problems, arrays


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
    problems, weights = _vet(model)
    if problems:
        raise ModelImportError(str(path), problems)
    progress.step(f"Converting {len(model.graph.node)} ONNX nodes")
    job = _Onnx(model, path, input_shape, weights)
    try:
        job.run()
    except ModelImportError:
        raise
    except Exception as e:  # noqa: BLE001  a file made to break an importer: a message, never a traceback
        where = job.current
        raise ModelImportError(str(path), job.problems + [ImportProblem(
            "operator", (_scope(where) or where.name or where.op_type) if where is not None else "",
            f"{where.op_type + ': ' if where is not None else ''}cannot be read ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''})")]) from None
    if job.problems:
        raise ModelImportError(str(path), job.problems)
    from ..core.analysis import analyze
    from .structure import group_scopes, recover_composites
    progress.step(f"Recovering modules from {len(job.g)} blocks, checking against onnxruntime")
    job.g, _ = recover_composites(job.g)  # Inception modules, bottlenecks, MBConv, ... from the module paths
    job.g = group_scopes(job.g)  # the model's other modules (a BasicBlock whose norms the export folded) as groups
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
    from .verify import check_onnx
    check_onnx(job.g, job.state, model, job.input_name, job.input_dims, a.blocks["input"].out_shape, str(path), a)
    job.g.meta["imported_from"] = Path(path).name
    progress.step(f"Laying out {len(job.g)} blocks")
    place(job.g)
    return Imported(job.g, job.state, job.notes)


_register_kinds()
