"""Every fact about a block kind lives on its spec (issue 21): outside blocks/ and templates/ no code names a
kind by its id, structural kinds (input, output, group) aside. A string literal equal to a kind id in the
application's code (builder/, exports/) fails here with the file and line; a probe proves the scan sees one."""
import ast
import io
import tokenize
from pathlib import Path

from blocks import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
STRUCTURAL = {"input", "output", "group"}


def kind_ids_in(source: str) -> list:
    ids = {spec.type_id for spec in REGISTRY} - STRUCTURAL
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # an f-string: its parts are not a kind's whole id
                continue
            if isinstance(value, str) and value in ids:
                found.append((tok.start[0], value))
    return found


def test_the_scan_sees_a_kind_named_in_code():
    assert kind_ids_in('if b.type == "conv2d":\n    graph.add_block("relu", {})\n') == [(1, "conv2d"), (2, "relu")]
    assert kind_ids_in('x = "input"  # structural\ny = f"{kind}"\n') == []


def test_no_kind_is_named_outside_blocks_and_templates():
    found = []
    for folder in ("builder", "exports"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}:{line}: {kind!r}"
                      for line, kind in kind_ids_in(path.read_text(encoding="utf-8"))]
    assert found == []
