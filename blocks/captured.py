"""A captured module: what an imported model's module becomes when no kind stands for it (timm's BatchNormAct2d,
a same-padding convolution, a model's own attention gate). It keeps the module's weights under their own names and
its exact computation, the ATen operators ``torch.export`` captured (:mod:`blocks.program`), with its parameters
counted and its MACs measured when it was captured. Its shapes are those it was captured at: a different input
is an error on the block (re-import the model, or replace the block by blocks of known kinds)."""
from __future__ import annotations

from .program import class_source, validate_program
from .spec import BlockError, BlockSpec, Cost, Param, fmt_shape, register, source_ref

# A per-channel scale of a 4 x 15 x 15 input: what a captured block is before an importer fills it in
DEFAULT = {"source": "", "inputs": [[4, 15, 15]], "output": [4, 15, 15],
           "tensors": [{"name": "weight", "kind": "parameter", "shape": [4, 1, 1], "dtype": "float32",
                        "init": "ones"}],
           "train": {"nodes": [["mul", "aten.mul.Tensor", [{"ref": "x"}, {"self": "weight"}], {}]],
                     "result": "mul"},
           "eval": None, "params": 4, "macs": 0}


def _shape(p, ins):
    want = [tuple(s) for s in p["program"]["inputs"]]
    if len(ins) != len(want):
        raise BlockError(f"{p['label']} was captured with {len(want)} input{'s' if len(want) != 1 else ''}, "
                         f"has {len(ins)}", "inputs")
    for i, (got, need) in enumerate(zip(ins, want)):
        if tuple(got) != need:
            raise BlockError(f"{p['label']} was captured for input {fmt_shape(need)}, gets {fmt_shape(got)} from "
                             f"{source_ref(i)}: re-import the model, or put blocks of known kinds in its place",
                             "shape")
    return tuple(p["program"]["output"])


def _describe(program) -> str:
    ops = len(program["train"]["nodes"])
    tensors = len(program["tensors"])
    return (f"{program['source'] or 'a module'}: {ops} operator{'s' if ops != 1 else ''}, {tensors} "
            f"tensor{'s' if tensors != 1 else ''} "
            f"(captured at {', '.join(fmt_shape(s) for s in program['inputs'])})")


def _summary(p) -> str:
    return p["label"]


register(BlockSpec(
    "captured", "Captured module", "Imported",
    params=(Param("label", "str", "Scale", help="the original module's class"),
            Param("program", "data", DEFAULT, check=validate_program, describe=_describe,
                  help="the module's operators and tensors as torch.export captured them")),
    variadic=True, min_inputs=1, shape=_shape,
    cost=lambda p, ins, out: Cost(p["program"]["params"], p["program"]["macs"]),
    defines=lambda p, name: class_source(p["program"], name, p["label"]),
    class_label=lambda p: p["label"], in_palette=False, captures=True, in_table=True, summary=_summary,
    description="a module of an imported model that no kind stands for, with its weights and its exact "
                "operators (torch.export's capture): it compiles, trains and exports like any block"))
