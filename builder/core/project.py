"""Project files: JSON with a format name and a version, saved atomically, loaded with validation.

Never pickle. Any malformed, truncated, wrong-version or hostile file becomes one :class:`ProjectError`
naming the file and the problem.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from blocks import REGISTRY

from . import files
from .errors import GraphEditError, ProjectError
from .graph import Graph, clean_text, renamed_for_torch

FORMAT = "block-builder-project"
VERSION = 2
MAX_BYTES = 32 * 1024 * 1024
MAX_BLOCKS = 100_000


# ------------------------------------------------------------------------------------------ writing

def to_dict(graph: Graph) -> dict:
    blocks = []
    for b in graph.blocks():
        item = {"id": b.id, "type": b.type, "params": b.params, "label": b.label, "pos": [b.pos[0], b.pos[1]]}
        if b.group:
            item["group"] = b.group
        blocks.append(item)
    return {"format": FORMAT, "version": VERSION, "name": graph.name, "meta": graph.meta, "blocks": blocks,
            "edges": [{"src": u, "dst": v, "port": k} for u, v, k in graph.edges()]}


def dumps(graph: Graph) -> str:
    """The project as JSON text: every text encodable (a lone surrogate, which no file can hold, becomes
    U+FFFD), so a save never fails on text."""
    return json.dumps(encodable(to_dict(graph)), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def encodable(value):
    """``value`` with lone surrogates in every text (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable(v) for v in value]
    return value


MAX_META_DEPTH = 64  # levels of objects and lists in a project's meta (tools nest a few; a hostile file 10,000)


def _check_meta(value, where: str, depth: int = 0):
    """Meta holds JSON values only: a number too large for a float (1e400 reads as inf) cannot be saved; nesting
    is bounded (what reads, copies and saves meta recurses)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value!r}, not a finite number"
    if isinstance(value, (dict, list)) and depth >= MAX_META_DEPTH:
        return f"{where[:120]}{'...' if len(where) > 120 else ''} is nested deeper than {MAX_META_DEPTH} levels"
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _check_meta(v, f"{where}.{k}", depth + 1)
            if bad:
                return bad
    if isinstance(value, list):
        for i, v in enumerate(value):
            bad = _check_meta(v, f"{where}[{i}]", depth + 1)
            if bad:
                return bad
    return None


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (:func:`builder.core.files.write_bytes`); a :class:`ProjectError`
    naming the file when it cannot be written (the previous file, if any, is left as it was)."""
    path = Path(path)
    try:
        files.write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
    except files.CannotCreate as e:
        raise ProjectError(path, f"cannot write here: {e.strerror or e}") from None
    except OSError as e:
        raise ProjectError(path, f"could not save: {e.strerror or e}; the previous file is unchanged") from None


def save(graph: Graph, path) -> None:
    atomic_write(path, dumps(graph))


# ------------------------------------------------------------------------------------------ reading

def _migrate_v1(doc: dict) -> dict:
    """Version 1 kept blocks as "nodes" with x/y and wires as "links": [src, dst, port]."""
    nodes = doc.get("nodes")
    links = doc.get("links", [])
    if not isinstance(nodes, list) or not isinstance(links, list):
        raise ValueError("version 1 file needs 'nodes' and 'links' lists")
    blocks = []
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            raise ValueError(f"nodes[{i}] is not an object")
        blocks.append({"id": n.get("id"), "type": n.get("type"), "params": n.get("params", {}),
                       "label": n.get("label", ""), "pos": [n.get("x", 0.0), n.get("y", 0.0)]})
    edges = []
    for i, l in enumerate(links):
        if not isinstance(l, list) or len(l) != 3:
            raise ValueError(f"links[{i}] must be [source, destination, port]")
        edges.append({"src": l[0], "dst": l[1], "port": l[2]})
    return {"format": FORMAT, "version": 2, "name": doc.get("name", "untitled"), "meta": doc.get("meta", {}),
            "blocks": blocks, "edges": edges}


MIGRATIONS = {1: _migrate_v1}  # version -> function giving version + 1


def loads(text: str, source: str = "<text>") -> Graph:
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        hint = " (the file looks truncated)" if e.pos >= len(text.rstrip()) - 1 else ""
        raise ProjectError(source, f"not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}{hint}") from None
    except RecursionError:
        raise ProjectError(source, "not a project file: its JSON is nested too deeply") from None
    except ValueError as e:
        raise ProjectError(source, str(e)) from None
    return from_dict(doc, source)


def _refuse_constant(name):
    raise ValueError(f"not a project file: it contains {name}, which is not a number JSON allows")


def load(path) -> Graph:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ProjectError(path, f"the file is {size:,} bytes; project files are at most {MAX_BYTES:,}")
        raw = path.read_bytes()
    except ProjectError:
        raise
    except FileNotFoundError:
        raise ProjectError(path, "no such file") from None
    except IsADirectoryError:
        raise ProjectError(path, "is a folder, not a project file") from None
    except OSError as e:
        raise ProjectError(path, f"cannot read it: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProjectError(path, f"not a project file: byte {e.start} is not UTF-8 text") from None
    if not text.strip():
        raise ProjectError(path, "the file is empty")
    graph = loads(text, str(path))
    return graph


def from_dict(doc, source: str = "<data>") -> Graph:
    def fail(msg):
        raise ProjectError(source, msg)

    if not isinstance(doc, dict):
        fail(f"not a project file: the top level is a JSON {type(doc).__name__}, not an object")
    if doc.get("format") != FORMAT:
        fail(f"not a project file: 'format' is {doc.get('format')!r}, expected {FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fail(f"'version' must be a positive integer, not {version!r}")
    if version > VERSION:
        fail(f"written by a newer Block Builder (format version {version}; this one reads up to {VERSION})")
    while version < VERSION:
        try:
            doc = MIGRATIONS[version](doc)
        except (ValueError, TypeError, AttributeError) as e:
            fail(f"cannot upgrade from format version {version}: {e}")
        version = doc["version"]
    blocks, edges = doc.get("blocks"), doc.get("edges")
    if not isinstance(blocks, list):
        fail("'blocks' must be a list")
    if not isinstance(edges, list):
        fail("'edges' must be a list")
    if len(blocks) > MAX_BLOCKS or len(edges) > 4 * MAX_BLOCKS:
        fail(f"too many blocks or wires (at most {MAX_BLOCKS:,} blocks)")
    name = doc.get("name", "untitled")
    meta = doc.get("meta", {})
    if not isinstance(name, str):
        fail("'name' must be text")
    if not isinstance(meta, dict):
        fail("'meta' must be an object")
    bad = _check_meta(meta, "meta")
    if bad:
        fail(bad)
    graph = Graph(clean_text(name))
    meta = encodable(meta)
    graph.meta = meta
    renamed = {}  # files from before ids were checked against torch's names: such blocks get a free name
    for b in blocks:
        bid = b.get("id") if isinstance(b, dict) else None
        if isinstance(bid, str) and (free := renamed_for_torch(bid)) != bid:
            renamed[bid] = free
    if renamed:
        taken = {b.get("id") for b in blocks if isinstance(b, dict)}
        if set(renamed.values()) & taken:
            fail(f"blocks {', '.join(sorted(renamed))} have names torch modules use, and their free names "
                 "are taken too")
        blocks = [{**b, "id": renamed[b["id"]]} if isinstance(b, dict) and b.get("id") in renamed else b
                  for b in blocks]
        blocks = [{**b, "group": {**b["group"], "id": renamed_for_torch(b["group"]["id"])}}
                  if isinstance(b, dict) and isinstance(b.get("group"), dict)
                  and isinstance(b["group"].get("id"), str) else b for b in blocks]
        edges = [{**e, "src": renamed.get(e.get("src"), e.get("src")), "dst": renamed.get(e.get("dst"), e.get("dst"))}
                 if isinstance(e, dict) else e for e in edges]
        before = meta.get("renamed_blocks")
        graph.meta = {**meta, "renamed_blocks": {**(before if isinstance(before, dict) else {}), **renamed}}
    inner, blocks = {}, list(blocks)  # group id/inner id -> its new name
    for i, b in enumerate(blocks):
        blocks[i], new = _group_inside_renamed(b)
        inner.update({f"{b.get('id')}/{old}": free for old, free in new.items()})
    if inner:
        before = graph.meta.get("renamed_blocks")
        graph.meta = {**graph.meta, "renamed_blocks": {**(before if isinstance(before, dict) else {}), **inner}}
    for i, b in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(b, dict):
            fail(f"{where} is not an object")
        bid, type_id = b.get("id"), b.get("type")
        if isinstance(bid, str):
            where += f" (id {bid!r})"
        if not isinstance(type_id, str) or type_id not in REGISTRY:
            fail(f"{where}: unknown block type {type_id!r}")
        params, label, pos, group = b.get("params", {}), b.get("label", ""), b.get("pos", [0, 0]), b.get("group")
        if not isinstance(params, dict):
            fail(f"{where}: 'params' must be an object")
        if not isinstance(label, str) or len(label) > 1000:
            fail(f"{where}: 'label' must be text of at most 1000 characters")
        if not (isinstance(pos, list) and len(pos) == 2 and all(_is_number(v) for v in pos)):
            fail(f"{where}: 'pos' must be [x, y]")
        if group is not None and not _valid_group(group):
            fail(f"{where}: 'group' must be an object with 'id', 'type' and 'params'")
        try:
            graph.add_block(type_id, params, bid, label, pos, group)
        except GraphEditError as e:
            fail(f"{where}: {e}")
    for i, e in enumerate(edges):
        where = f"edges[{i}]"
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("src", "dst", "port")):
            fail(f"{where} must be an object with text 'src', 'dst' and 'port'")
        for end in ("src", "dst"):
            if e[end] not in graph:
                fail(f"{where}: {end} {e[end]!r} is not a block in this file")
        try:
            # cycles are kept, so that the analysis can show them on the blocks and the user can fix them
            graph.connect(e["src"], e["dst"], e["port"], check_cycle=False)
        except GraphEditError as err:
            fail(f"{where}: {err}")
    return graph


def _group_inside_renamed(b):
    """A group block whose inner ids clash with torch's names or are keywords (files from before ids inside groups
    were checked) with those ids renamed like top-level ones, and {old: new}; anything else as it is."""
    params = b.get("params") if isinstance(b, dict) and b.get("type") == "group" else None
    inside = params.get("graph") if isinstance(params, dict) else None
    if not (isinstance(inside, dict) and isinstance(inside.get("nodes"), list)
            and isinstance(inside.get("edges"), list)):
        return b, {}
    new = {n[0]: renamed_for_torch(n[0]) for n in inside["nodes"] if isinstance(n, list) and n and isinstance(n[0], str)}
    new = {k: v for k, v in new.items() if k != v}
    if not new or set(new.values()) & {n[0] for n in inside["nodes"] if isinstance(n, list) and n}:
        return b, {}  # nothing to rename, or the free names are taken: validation says which id is wrong

    def r(x):
        return new.get(x, x) if isinstance(x, str) else x
    graph = {**inside, "nodes": [[r(n[0]), *n[1:]] if isinstance(n, list) and n else n for n in inside["nodes"]],
             "edges": [[r(e[0]), r(e[1]), *e[2:]] if isinstance(e, list) and len(e) >= 2 else e
                       for e in inside["edges"]],
             "output": r(inside.get("output"))}
    return {**b, "params": {**params, "graph": graph}}, new


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e9


def _valid_group(g) -> bool:
    return (isinstance(g, dict) and isinstance(g.get("id"), str) and g.get("type") in REGISTRY
            and isinstance(g.get("params"), dict))
