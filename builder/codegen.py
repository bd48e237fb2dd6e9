"""The one code generator of ``forward``: straight-line Python, as torch.fx writes it, for the compiled module
(flat: every primitive a submodule at its id's path) and for exported code (classes, ``nn.Sequential`` chains).

Both get the same statements: one per block in the order they run, merges as their kind's tensor expression,
every value deleted right after its last use (memory is freed as the network runs), and the auxiliary heads in a
training-only section that returns (main, aux...). No torch here: this writes text.
"""
from __future__ import annotations

import keyword
import re

from blocks import REGISTRY

RESERVED_NAMES = frozenset({"self", "torch", "nn", "F", "Tensor", "x"})


def var_name(block_id: str, taken: set) -> str:
    """A unique, valid, non-keyword local variable name made from a block id (added to ``taken``)."""
    base = re.sub(r"\W", "_", block_id).strip("_") or "v"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = "v_" + base
    name, n = base, 2
    while name in taken or name in RESERVED_NAMES:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


class Names:
    """Unique, valid, non-keyword local variable names."""

    def __init__(self, reserved=()):
        self.taken = set(reserved)

    def __call__(self, base: str) -> str:
        return var_name(base, self.taken)


def call_expression(type_id: str, args: list, ref: str) -> str:
    """The right-hand side of one forward statement: merges are their kind's tensor expression, every other
    block a module call."""
    spec = REGISTRY[type_id]
    if spec.forward is not None:
        return spec.forward(args)
    return f"{ref}({', '.join(args)})"


def attribute_ref(path: str) -> str:
    """``self.a.b`` for a submodule at a dotted path of plain nn.Module containers (``getattr`` for "0")."""
    ref = "self"
    for part in path.split("."):
        ref = f"{ref}.{part}" if part.isidentifier() and not keyword.iskeyword(part) else f"getattr({ref}, {part!r})"
    return ref


class Node:
    """One block of a module being written: a local id (maybe dotted), its module's constructor source (None for
    merges and outputs), its sources, its output shape, and whether only the training section needs it."""

    def __init__(self, local, type_id, ctor_src, sources, shape, training_only=False):
        self.local, self.type, self.ctor, self.sources = local, type_id, ctor_src, sources
        self.shape, self.training_only = shape, training_only


def statements(nodes: list[Node], chains: dict, names: Names, inputs: dict, indent: str, comments: bool,
               ref=attribute_ref) -> tuple[list, dict]:
    """Statements of forward in order, as (source line, variables it reads); and the variable of every local
    id. ``chains``: {prefix: nodes} run as one module (an nn.Sequential); ``ref(path)``: how a module is named."""
    var = dict(inputs)
    first_of = {ms[0].local: (p, ms) for p, ms in chains.items()}
    skip = {m.local for ms in chains.values() for m in ms[1:]}
    stmts = []
    for n in nodes:
        if n.local in skip or n.type == "input":
            continue
        if n.local in first_of:
            prefix, members = first_of[n.local]
            v = names(prefix.replace(".", "_"))
            args = [var[n.sources[0]]]
            expr = f"{ref(prefix)}({args[0]})"
            for m in members:
                var[m.local] = v
            shape = members[-1].shape
        else:
            args = [var[s] for s in n.sources]
            if n.type == "output":
                var[n.local] = args[0]
                continue
            v = names(n.local.replace(".", "_"))
            expr = call_expression(n.type, args, ref(n.local))
            var[n.local] = v
            shape = n.shape
        comment = f"  # {' x '.join(map(str, shape))}" if comments and shape else ""
        stmts.append((f"{indent}{v} = {expr}{comment}", args))
    return stmts, var


def freeing(stmts: list, keep: set) -> list[str]:
    """The statements' lines, each followed by ``del`` of the variables it read for the last time (not those
    in ``keep``: returned, or read later in another section)."""
    last = {}
    for i, (_, args) in enumerate(stmts):
        for a in args:
            last[a] = i
    lines = []
    for i, (text, args) in enumerate(stmts):
        lines.append(text)
        dead = [a for a in dict.fromkeys(args) if last[a] == i and a not in keep]
        if dead:
            indent = text[:len(text) - len(text.lstrip())]
            lines.append(f"{indent}del {', '.join(dead)}")
    return lines


def forward_body(inputs: dict, nodes: list[Node], outputs: list, names: Names, chains: dict | None = None,
                 guard: str = "self.training", ref=attribute_ref, comments: bool = True) -> list[str]:
    """The body of ``forward``: the main path, then (when there are auxiliary outputs) ``if <guard>:`` with the
    training-only blocks and ``return (main, aux...)``, then ``return main``. ``inputs``: {input id: argument}."""
    chains = chains or {}
    main = [n for n in nodes if not n.training_only]
    aux = [n for n in nodes if n.training_only]
    main_chains = {p: ms for p, ms in chains.items() if not ms[0].training_only}
    aux_chains = {p: ms for p, ms in chains.items() if ms[0].training_only}
    body, var = statements(main, main_chains, names, inputs, "        ", comments, ref)
    aux_body, var2 = statements(aux, aux_chains, names, var, "            ", comments, ref)
    returned = {var2[o] for o in outputs}
    read_by_aux = {x for _, args in aux_body for x in args}
    lines = freeing(body, returned | read_by_aux)
    if len(outputs) > 1:
        lines.append(f"        if {guard}:")
        lines += freeing(aux_body, returned)
        lines.append(f"            return {', '.join(var2[o] for o in outputs)}")
    lines.append(f"        return {var[outputs[0]] if outputs else 'None'}")
    return lines
