"""The ONNX importer's exact fallback: a node no kind stands for (or whose attributes no kind's rule reads)
becomes a captured block. Its computation is the operator's torch implementation (:mod:`.onnx_ops`) with the
node's attributes, captured by ``torch.export`` (:mod:`.capture`) as ATen operators; the file's constant inputs
become the block's tensors (weights as parameters, running statistics and integer tables as buffers), sizes and
axes are read as numbers. One block per output that the network reads.

What cannot be captured exactly is refused with the reason (an operator that mixes the batch with the other
sizes, a random one, an input whose sizes are not known)."""
from __future__ import annotations

import keyword
import re

import numpy as np

from blocks.names import torch_name_clash

from . import onnx_ops_spatial, onnx_ops_tensor
from .onnx_ops import Call, implementation

IMPLEMENTATIONS = (onnx_ops_tensor, onnx_ops_spatial)  # the operators' torch code, registered as it is imported


def _plain(v):
    """An attribute as plain Python (tuples, not lists; text, not bytes), so equal nodes capture once."""
    from onnx import numpy_helper
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, (list, tuple)):
        return tuple(_plain(e) for e in v)
    if hasattr(v, "dims") and hasattr(v, "data_type"):  # a TensorProto attribute
        return tuple(numpy_helper.to_array(v).reshape(-1).tolist())
    return v


def _names(op: str, opset: int, count: int) -> list:
    """The operator's own names of its inputs (``W``, ``B``, ``scales``) as tensor names: ``w``, ``b``."""
    try:
        from onnx import defs
        formal = [i.name for i in defs.get_schema(op, opset).inputs]
    except Exception:  # noqa: BLE001  an operator onnx's schemas do not know: numbered names
        formal = []
    out = []
    for i in range(count):
        base = formal[min(i, len(formal) - 1)] if formal else "input"
        if formal and i >= len(formal) - 1 and count > len(formal):
            base = f"{base}_{i}"
        name = re.sub(r"[^a-z0-9_]", "_", base.lower()).strip("_") or "input"
        if not name[0].isalpha() or keyword.iskeyword(name) or torch_name_clash(name):
            name = "t_" + name
        if name in out:
            name = f"{name}_{i}"
        out.append(name)
    return out


_CLASS: list = []


def _operator_class():
    """One module class for every captured node, made once (equal nodes are then equal modules, captured once)."""
    if _CLASS:
        return _CLASS[0]
    import torch
    from torch import nn

    class OnnxOperator(nn.Module):
        def __init__(self, op, opset, attrs, slots, output, outputs):
            super().__init__()
            self._op, self._opset, self._output, self._outputs = op, opset, output, outputs
            self._attrs = tuple(sorted((k, _plain(v)) for k, v in attrs.items()))
            self._slots = tuple(s if s is None or s[0] != "tensor" else ("tensor", s[1]) for s in slots)
            for s in slots:
                if s is not None and s[0] == "tensor":
                    t = torch.from_numpy(np.array(s[2], copy=True))
                    if s[3]:
                        self.register_parameter(s[1], nn.Parameter(t))
                    else:
                        self.register_buffer(s[1], t)

        def forward(self, *xs):
            inputs = []
            for s in self._slots:
                if s is None:
                    inputs.append(None)
                elif s[0] == "x":
                    inputs.append(xs[s[1]])
                elif s[0] == "tensor":
                    inputs.append(getattr(self, s[1]))
                else:
                    inputs.append(np.asarray(s[1]))
            out = implementation(self._op, self._opset).fn(Call(dict(self._attrs), inputs, self._opset,
                                                                  self._outputs))
            return out[self._output] if isinstance(out, (tuple, list)) else out
    _CLASS.append(OnnxOperator)
    return OnnxOperator


def make_module(op: str, opset: int, attrs: dict, slots: list, output: int, outputs: int):
    """The node as an nn.Module of the network's tensors, giving its output ``output``: ``slots`` holds, per ONNX
    input, ("x", k) for the network's k-th tensor, ("tensor", name, array, parameter) for a constant kept as a
    tensor, ("static", values) for one read as numbers, or None when absent."""
    return _operator_class()(op, opset, attrs, slots, output, outputs)


def capture_node(job, node, attrs: dict) -> list:
    """Captured blocks for ``node``: [(output index, block params, input block ids, tensors)] for each output
    the network reads (params None: that output is its input, unchanged); raises :class:`CaptureError` with why
    it cannot be captured."""
    import torch

    from .capture import CaptureError, capture
    impl = implementation(node.op_type, job.opset)
    if impl is None:
        raise CaptureError("operator", f"no implementation of {node.op_type} at opset {job.opset}")
    names = _names(node.op_type, job.opset, len(node.input))
    slots, blocks, examples = [], [], []
    for i, name in enumerate(node.input):
        if not name:
            slots.append(None)
        elif i in impl.static:
            if name not in job.const:
                raise CaptureError("operator", f"its input {i} ({name!r}) must be a constant (it gives sizes "
                                               "or axes)")
            slots.append(("static", tuple(np.asarray(job.const[name]).reshape(-1).tolist())
                          if np.asarray(job.const[name]).ndim else (np.asarray(job.const[name]).item(),)))
        elif name in job.const:
            value = np.asarray(job.const[name])
            own = name.rsplit(".", 1)[-1].lower()  # an initializer's own name ("gamma"), where it is one
            if re.fullmatch(r"[a-z][a-z0-9_]{0,59}", own) and own not in names and not keyword.iskeyword(own) \
                    and not torch_name_clash(own):
                names[i] = own
            parameter = value.dtype.kind == "f" and value.size > 1 and i not in impl.buffers and \
                name in job.initializers
            slots.append(("tensor", names[i], value, parameter))
        elif isinstance(job.value.get(name), str):
            bid = job.value[name]
            if bid not in blocks:
                blocks.append(bid)
                shape = job.block_shape(bid)
                examples.append(torch.zeros(2, *shape))
            slots.append(("x", blocks.index(bid)))
        else:
            raise CaptureError("operator", f"its input {name!r} is neither a tensor of the network nor a constant")
    if not blocks:
        raise CaptureError("operator", "it reads no tensor of the network")
    wanted = [k for k, out in enumerate(node.output) if out and out in job.read]
    made = []
    source = f"onnx.{node.op_type} (opset {job.opset})"
    for k in wanted:
        module = make_module(node.op_type, job.opset, attrs, slots, k, len(node.output))
        try:
            with torch.no_grad():
                same = module(*examples) is examples[0]
        except Exception as e:  # noqa: BLE001  a refusal of the implementation, or a node it cannot compute
            if getattr(e, "refusal", False):
                raise CaptureError("operator", str(e)) from None
            raise CaptureError("operator", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") \
                from None
        if same:  # the identity here (a dropout of ratio 0, a reduction over no axes): the value passes through
            made.append((k, None, blocks[:1], {}))
            continue
        params = capture(module, examples, node.op_type, source)
        made.append((k, params, blocks, {n: t.detach().numpy() for n, t in module.state_dict().items()}))
    return made


__all__ = ["capture_node", "make_module"]
