"""onnx's own backend node tests for the operators CNNs use (issue 24), through Block Builder's ONNX importer and
through onnx2torch, the peer converter: how many cases each gets exact, gets wrong, or refuses. A case's inputs
after the first become constants of the network for Block Builder (a network has one image input); onnx2torch is
given all of them.

Run: .venv/bin/python -m benchmarks onnx_node_tests
"""
from __future__ import annotations

import collections
import tempfile
from pathlib import Path


def run():
    from .common import report
    from .onnx_cases import cases, onnx2torch, ours
    ours_count, peer_count = collections.Counter(), collections.Counter()
    per_op: dict = collections.defaultdict(lambda: [0, 0, 0])
    with tempfile.TemporaryDirectory() as folder:
        for case in cases():
            a, b = ours(case, Path(folder)), onnx2torch(case)
            ours_count[a] += 1
            peer_count[b] += 1
            op = per_op[case.model.graph.node[0].op_type]
            op[0] += 1
            op[1] += a == "exact"
            op[2] += b == "exact"
            if a in ("wrong", "crashed"):
                print("block builder", a, case.name)
    figures = {"cases": sum(ours_count.values())}
    for name, count in (("block_builder", ours_count), ("onnx2torch", peer_count)):
        for result in ("exact", "wrong", "refused", "crashed"):
            figures[f"{name}_{result}"] = count[result]
    for op, (n, a, b) in sorted(per_op.items()):
        figures[f"op_{op}"] = f"{n} cases: block builder {a} exact, onnx2torch {b}"
    return report("onnx_node_tests", figures)


if __name__ == "__main__":
    run()
