"""onnx's own backend node tests for the operators CNNs use (issue 24), through the ONNX importer: no case is
imported with a wrong result (each is exact, or refused with a message), at least as many are exact as when this
was measured (219 of 410), and at least as many as onnx2torch, the peer converter, gets exact (176) on the same
cases (``python -m benchmarks onnx_node_tests`` prints both, operator by operator)."""
from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.onnx_cases import cases, onnx2torch, ours  # noqa: E402


@pytest.mark.timeout(600)
def test_no_node_case_is_imported_wrong_and_as_many_are_exact_as_the_peers(tmp_path):
    seen, peer = collections.Counter(), collections.Counter()
    wrong = []
    for case in cases():
        result = ours(case, tmp_path)
        seen[result] += 1
        peer[onnx2torch(case)] += 1
        if result in ("wrong", "crashed"):
            wrong.append((case.name, result))
    assert wrong == []
    assert sum(seen.values()) == 410 and seen["exact"] >= 219, seen
    assert seen["exact"] >= peer["exact"], (seen, peer)
