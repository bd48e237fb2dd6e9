"""Composite blocks recovered from a flat graph whose block ids are module paths (an ONNX file torch.onnx wrote:
``layer1.0.conv1``, ``layer1.0.bn1``, ...).

For every module path, innermost first, the blocks below it are shown to each composite kind's PyTorch rule
(``BlockSpec.from_torch.module``) as if they were that module: its children are the blocks and sub-paths, each
block the real torch module built for it (on the meta device). A rule that reads parameters from them proposes
the kind; the proposal is kept only when the kind's expansion with those parameters *is* those blocks (the same
local ids, kinds, parameters and wiring), so recovery never changes the network, its weights' names or its
outputs. A region that no kind reproduces stays as its blocks."""
from __future__ import annotations

from blocks import REGISTRY
from blocks.spec import plain

from ..core.analysis import Analysis, analyze, walk
from ..core.graph import Graph
from .torch_rules import block_path


class _Path:
    """A module path of the flat graph, as a torch module rule reads a module: children by name or index,
    ``get_submodule``, ``len`` and iteration, and what a module knows of itself (its output channels, its
    stride, whether its input is added back). A child that is not there is None, as torchvision leaves an
    absent ``downsample``."""

    def __init__(self, view, path: str):
        self._view, self._path = view, path

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._view.child(self._path, name)

    def __getitem__(self, i):
        names = self._view.children(self._path)
        if isinstance(i, int):
            return self._view.child(self._path, names[i])
        return self._view.child(self._path, str(i))

    def __iter__(self):
        return iter([self._view.child(self._path, n) for n in self._view.children(self._path)])

    def __len__(self):
        return len(self._view.children(self._path))

    def get_submodule(self, path: str):
        obj = self
        for part in path.split("."):
            obj = getattr(obj, part)
            if obj is None:
                raise AttributeError(path)
        return obj

    @property
    def out_channels(self):
        return self._view.out_shape(self._path)[0]

    @property
    def stride(self):
        return self._view.in_shape(self._path)[1] // self._view.out_shape(self._path)[1]

    @property
    def use_res_connect(self):
        return self._view.in_shape(self._path) == self._view.out_shape(self._path)

    drop_rate = 0.0  # an ONNX file is the eval graph: no dropout is left in it


class _View:
    def __init__(self, graph: Graph, analysis: Analysis, region: dict):
        self.g, self.a, self.region = graph, analysis, region  # region: path -> its block ids
        self.modules: dict = {}

    def children(self, path: str) -> list:
        ids = self.region.get(path, ())
        names = []
        for bid in ids:
            name = bid[len(path) + 1:].split(".")[0]
            if name not in names:
                names.append(name)
        return sorted(names, key=int) if all(n.isdigit() for n in names) else names

    def child(self, path: str, name: str):
        full = f"{path}.{name}"
        if full in self.g:
            return self.module(full)
        if full in self.region:
            return _Path(self, full)
        return None

    def module(self, bid: str):
        if bid not in self.modules:
            import torch
            blk = self.g.block(bid)
            with torch.device("meta"):
                self.modules[bid] = blk.spec.build(blk.params, self.a.blocks[bid].in_shapes)
        return self.modules[bid]

    def weighs(self, bid: str) -> bool:
        """Whether the block holds weights (parameters or buffers: their names are its id)."""
        if bid not in self.g or self.g.block(bid).spec.build is None:  # a merge: an expression, no module
            return False
        return bool(self.module(bid).state_dict())

    def entry(self, path: str):
        """(the one block outside that feeds the region, the region's one block read from outside)."""
        ids = set(self.region[path])
        sources = {s for b in ids for _, s in self.g.inputs(b) if s not in ids}
        exits = [b for b in self.region[path] if any(v not in ids for v, _ in self.g.consumers(b))
                 or self.g.block(b).type == "output"]
        if len(sources) != 1 or len(exits) != 1:
            return None
        return sources.pop(), exits[0]

    def in_shape(self, path: str):
        src, _ = self.entry(path)
        return self.a.blocks[src].out_shape

    def out_shape(self, path: str):
        _, out = self.entry(path)
        return self.a.blocks[out].out_shape


def _candidates() -> list:
    """(kind, its PyTorch module rule) for every composite kind that has one."""
    return [(spec, spec.from_torch.module) for spec in REGISTRY
            if spec.is_composite and spec.from_torch is not None and spec.from_torch.module is not None]


def _reproduces(view, path: str, ids: list, kind: str, params: dict, source: str, exit_id: str) -> bool:
    """Whether the kind's expansion with ``params`` at ``path`` is exactly the blocks ``ids``: node for node the
    same kind, parameters and wiring; a block with weights by the same id (its weights' names), one without by
    its place (an exporter names a function's node after the operator: SE's ``scale`` arrives as ``mul``)."""
    g, a = view.g, view.a
    inside, output = walk(kind, params, a.blocks[source].out_shape, path, source)
    if len(inside) != len(ids):
        return False
    free = set(ids)
    match = {source: source}
    for n in inside:
        want = [match.get(s) for s in n.inputs]
        options = [n.id] if n.id in free else []
        if not options or view.weighs(n.id) is False:
            options += [b for b in ids if b in free and b != n.id and not view.weighs(b)]
        found = None
        for b in options:
            blk = g.block(b)
            if blk.type == n.kind and plain(n.params) == blk.params and [s for _, s in g.inputs(b)] == want:
                found = b
                break
        if found is None:
            return False
        match[n.id] = found
        free.discard(found)
    return not free and match[output] == exit_id


def recover_composites(graph: Graph) -> tuple[Graph, int]:
    """The graph with every region a composite kind reproduces made that composite (innermost paths first);
    and how many were made. Block ids, weights' names and outputs are unchanged."""
    candidates = _candidates()
    if not candidates:
        return graph, 0
    made = 0
    changed = True
    while changed:
        changed = False
        a = analyze(graph)
        if a.errors:
            return graph, made
        region: dict = {}
        for bid in graph.ids():
            parts = bid.split(".")
            for i in range(1, len(parts)):
                region.setdefault(".".join(parts[:i]), []).append(bid)
        view = _View(graph, a, region)
        done: set = set()
        for path in sorted(region, key=lambda p: -p.count(".")):
            ids = region[path]
            if path in graph or len(ids) < 2 or any(d.startswith(path + ".") or path.startswith(d + ".")
                                                    for d in done):
                continue
            ends = view.entry(path)
            if ends is None:
                continue
            for spec, rule in candidates:
                try:
                    params = rule(_Path(view, path))
                    if isinstance(params, str):
                        continue
                    params = spec.validate_params(params)
                    if not _reproduces(view, path, ids, spec.type_id, params, *ends):
                        continue
                except Exception:  # noqa: BLE001  a rule that meets other modules fails its own way: not this kind
                    continue
                graph = _replace(graph, path, ids, spec.type_id, params, *ends)
                view.g = graph
                done.add(path)
                made += 1
                changed = True
                break
        # a region made a composite may complete its parent's: look again
    return graph, made


def _replace(graph: Graph, path: str, ids: list, kind: str, params: dict, source: str, exit_id: str) -> Graph:
    """``ids`` replaced by one block ``path`` of ``kind``, listed where the first of them was."""
    out = [(v, port) for v, port in graph.consumers(exit_id)]
    first = graph.ids().index(ids[0])
    pos = graph.block(ids[0]).pos
    for bid in ids:
        graph.remove_block(bid)
    graph.add_block(kind, params, path, pos=pos)
    graph.connect(source, path, check_cycle=False)
    for v, port in out:
        graph.connect(path, v, port, check_cycle=False)
    order = graph.ids()
    order.remove(path)
    order.insert(first, path)
    return graph.copy(order)


def group_scopes(graph: Graph) -> Graph:
    """Each module path of a flat graph (an ONNX file's name scopes: ``layer1.0.conv1``) whose blocks take one
    input and give one output becomes a group, outermost first, named after the path's last name (``layer1.0``:
    ``Layer1``), as the PyTorch importer groups a model's containers. A path whose children are all numbered is a
    sequence (``layer1``: an nn.Sequential): its items are grouped instead. Returns the graph with each group
    where its first block was."""
    import re

    below: dict = {}
    position = {bid: i for i, bid in enumerate(graph.ids())}
    for bid in graph.ids():
        parts = bid.split(".")
        for i in range(1, len(parts)):
            below.setdefault(".".join(parts[:i]), set()).add(parts[i])
    done: list = []
    for path in sorted(below, key=lambda p: p.count(".")):
        if all(part.isdigit() for part in below[path]) or path in graph:
            continue
        if any(path.startswith(d + ".") for d in done):
            continue
        ids = [bid for bid in graph.ids() if bid.startswith(path + ".")]
        if len(ids) < 2:
            continue
        named = next((p for p in reversed(path.split(".")) if not p.isdigit()), path)
        name = "".join(w[:1].upper() + w[1:] for w in re.split(r"[_\W]+", named) if w) or "Group"
        if make_group(graph, path, ids, name):
            done.append(path)
    first = {d: min(i for b, i in position.items() if b.startswith(d + ".")) for d in done}
    order = sorted(graph.ids(), key=lambda b: position.get(b, first.get(b, 0)))
    return graph.copy(order) if order != graph.ids() else graph


def group_containers(graph: Graph, model) -> None:
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
        if make_group(graph, path, ids, type(m).__name__):
            done.append(path)


def make_group(graph: Graph, path: str, ids: list, name: str) -> bool:
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


def place(graph: Graph) -> None:
    """Lay an imported graph out (graphviz, composites and groups collapsed); a wiring too dense for dot to
    finish in a few seconds (DenseNet's concatenations: a few hundred blocks with more wires than blocks) gets the
    layered layout instead."""
    from ..core.layout import dot_positions, layered_positions
    dense = len(graph) > 250 and len(graph.edges()) > 1.2 * len(graph)  # dot takes seconds, or gives up
    for bid, pos in ((None if dense else dot_positions(graph, timeout=4.0)) or layered_positions(graph)).items():
        graph.move(bid, pos)
