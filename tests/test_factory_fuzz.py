"""The seeded fuzzer of PyTorch models for the importer (tests/fuzz_imports.py): each random model is imported
exactly (outputs compared with torch) or refused with a ModelImportError. Bounded: 150 models, a few seconds;
``python -m tests.fuzz_imports`` runs thousands."""
from __future__ import annotations

from fuzz_imports import fuzz_models


def test_random_models_are_imported_exactly_or_refused_with_a_message():
    seen = fuzz_models(150, seed=2026)
    # what no kind maps is captured exactly (issue 24): most models that run import; a few are still refused,
    # among them those that mix the samples of a batch (reshape(1, -1), a cat along dim 0): a block is per sample
    assert seen["imported"] >= 45 and seen["refused"] >= 1 and sum(seen.values()) == 150, seen
