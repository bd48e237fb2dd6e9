"""Padding of a map by any mode: a constant (any value), its reflection or its edge repeated (``F.pad``,
``nn.ReflectionPad2d``, ``nn.ReplicationPad2d``, ``nn.ConstantPad2d``, ONNX's Pad). Zeros are the zeropad2d
kind's (``nn.ZeroPad2d``): an import of zeros makes that block."""
from __future__ import annotations

from . import fields
from .imports import FromOnnx, FromTorch, Made
from .spec import MAX_SPATIAL, BlockError, BlockSpec, Cost, Param, TorchCall, fmt_shape, register

MODES = ("constant", "reflect", "replicate")


def _shape(p, ins):
    if len(ins[0]) != 3:
        raise BlockError(f"Pad2d needs a CxHxW input, got {fmt_shape(ins[0])}", "shape")
    c, h, w = ins[0]
    (left, right), (top, bottom) = p["horizontal"], p["vertical"]
    if p["mode"] == "reflect" and (max(left, right) >= w or max(top, bottom) >= h):
        raise BlockError(f"reflection padding of {max(left, right, top, bottom)} needs a map larger than that, "
                         f"got {h}x{w}", "invalid")
    return (c, h + top + bottom, w + left + right)


def padded(left, right, top, bottom, mode: str, value: float = 0.0):
    """The block of a padding (kind, params): zeros are ZeroPad2d's."""
    if mode == "constant" and value == 0:
        return "zeropad2d", dict(horizontal=[left, right], vertical=[top, bottom])
    return "pad2d", dict(horizontal=[left, right], vertical=[top, bottom], mode=mode, value=float(value))


def _module(m):
    left, right, top, bottom = m.padding
    mode = {"ReflectionPad2d": "reflect", "ReplicationPad2d": "replicate"}.get(type(m).__name__, "constant")
    return dict(horizontal=[left, right], vertical=[top, bottom], mode=mode, value=float(getattr(m, "value", 0.0)))


def _call(c):
    if len(c.tensors) != 1:
        return "padding of a value that is not one tensor of the network"
    pads, mode = c.opt(1, "pad"), c.opt(2, "mode", "constant")
    value = c.opt(3, "value", 0.0) or 0.0
    if not isinstance(pads, (list, tuple)) or len(pads) not in (2, 4) or not all(isinstance(v, int) for v in pads) \
            or min(pads) < 0 or mode not in MODES or c.shape(c.tensors[0]) is None or len(c.shape(c.tensors[0])) != 3:
        return "padding other than of the last two axes of a CxHxW map (by whole positive amounts) has no block"
    left, right, top, bottom = (list(pads) + [0, 0])[:4]
    kind, params = padded(left, right, top, bottom, mode, value)
    return Made(params, [c.tensors[0]], kind)


def _from_onnx(n):
    pads = n.const(1) if n.opset >= 11 else n.attrs.get("pads")
    mode = n.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = n.scalar(n.const(2), "constant value") if n.opset >= 11 and len(n.node.input) > 2 and n.node.input[2] \
        else float(n.attrs.get("value", 0.0))
    pads = [int(v) for v in pads]
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        n.refuse("padding other than of the height and width (by positive amounts) has no block")
    if len(n.node.input) > 3 and n.node.input[3]:
        n.refuse("padding of chosen axes has no block")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    kind, params = padded(left, right, top, bottom, {"edge": "replicate"}.get(mode, mode), value or 0.0)
    if params.get("mode", "constant") not in MODES:
        n.refuse(f"padding by {mode!r} has no block")
    return Made(params, [n.x(0)], kind)


register(BlockSpec(
    "pad2d", "Pad2d", "Reshape", receptive=fields.shifted,
    params=(Param("horizontal", "pair", [1, 1], "Columns added: n, or [left, right]", min=0, max=MAX_SPATIAL),
            Param("vertical", "pair", [1, 1], "Rows added: n, or [top, bottom]", min=0, max=MAX_SPATIAL),
            Param("mode", "choice", "reflect", "What the new rows and columns hold", choices=MODES),
            Param("value", "float", 0.0, "The constant a constant padding adds")),
    shape=_shape, cost=lambda p, ins, out: Cost(0, 0),
    summary=lambda p: f"{p['mode']} " + ",".join(map(str, p["horizontal"] + p["vertical"])),
    torch=TorchCall("Pad2d", lambda p, i, o: [(None, p["horizontal"] + p["vertical"], None),
                                             ("mode", p["mode"], "constant"), ("value", float(p["value"]), 0.0)]),
    from_torch=FromTorch(("torch.nn.ReflectionPad2d", "torch.nn.ReplicationPad2d", "torch.nn.ConstantPad2d"),
                         _module, ("torch.nn.functional.pad",), _call),
    from_onnx=(FromOnnx("Pad", _from_onnx),),
    keeps_width=True, in_table=False,
    description="Pads a map on each side with a constant, its reflection or its edge (TF-style same padding, "
                "style-transfer networks)."))
