"""A seeded fuzzer of PyTorch models for the importer: random chains of layers and functions, with arguments that
are sometimes impossible (no kernel, a size of None or 0, chunks of 0, a reshape that does not fit). Each model is
either imported exactly (the compiled network gives the model's outputs with its weights) or refused with a
ModelImportError; anything else (a traceback, a wrong result) fails the test and names the model's source.

The fuzzer runs the mapping in this process (``import_module``, what the contained child runs); the child's own
bounds are tested in test_contained_import.py. Bounded: 150 models, a few seconds."""
from __future__ import annotations

import random

import torch
from torch import nn
import torch.nn.functional as F  # noqa: F401  (the generated forwards use it)

from builder.backend.compiler import compile_graph
from builder.core.errors import ModelImportError
from builder.importers import import_module
from helpers import assert_outputs_close, depth_of

N_MODELS = 150


def _layer(rng, c: int, hw: int):
    """One step: (constructor source or None, forward expression of ``x``, channels after, size after)."""
    k = rng.choice([1, 2, 3, 5, None, 0, -1])
    options = [
        lambda: (f"nn.Conv2d({c}, {(c2 := rng.choice([4, 8, 0]))}, {k if k else 3}, stride={rng.choice([1, 2, 0])},"
                 f" padding={rng.choice([0, 1, 'same', 2])})", "self.L(x)", c2, hw),
        lambda: (f"nn.BatchNorm2d({c})", "self.L(x)", c, hw),
        lambda: (None, "F.relu(x)", c, hw),
        lambda: (None, f"F.max_pool2d(x, kernel_size={k})", c, hw // max(k or 1, 1)),
        lambda: (None, f"F.avg_pool2d(x, {rng.choice([2, 3])})", c, hw // 2),
        lambda: (None, f"F.adaptive_avg_pool2d(x, {rng.choice(['1', '(None, 1)', '0', '(2, 2)', '-1'])})", c, 1),
        lambda: (None, f"torch.cat([x, x], {rng.choice([1, 0, 2, 5])})", 2 * c, hw),
        lambda: (None, f"torch.chunk(x, {rng.choice([2, 0, -1])}, 1)[0]", max(c // 2, 1), hw),
        lambda: (None, "x * " + rng.choice(["2.0", "0", "float('nan')"]), c, hw),
        lambda: (None, "x + x", c, hw),
        lambda: (None, f"x.reshape({rng.choice(['x.size(0), -1, 1, 1', '1, -1', '-1', '3, 5, 7, 11'])})", c, hw),
        lambda: (f"nn.Dropout(p={rng.choice([0.5, 0.0, 1.5, -0.1])})", "self.L(x)", c, hw),
        lambda: (None, f"F.softmax(x, dim={rng.choice([1, 7, -1])})", c, hw),
        lambda: (None, f"F.interpolate(x, scale_factor={rng.choice([2, 0, 0.5])})", c, hw),
    ]
    return rng.choice(options)()


def _model_source(rng, index: int) -> str:
    c, hw = 3, 16
    inits, steps = [], []
    for i in range(rng.randint(1, 5)):
        ctor, expr, c, hw = _layer(rng, c, hw)
        if ctor is not None:
            inits.append(f"        self.l{i} = {ctor}")
            expr = expr.replace("self.L", f"self.l{i}")
        steps.append(f"        x = {expr}")
    if rng.random() < 0.5:
        steps.append("        x = torch.flatten(x, 1)")
    body = "\n".join(inits) or "        pass"
    return (f"class Fuzz{index}(nn.Module):\n    def __init__(self):\n        super().__init__()\n{body}\n"
            f"    def forward(self, x):\n" + "\n".join(steps) + "\n        return x\n")


def test_random_models_are_imported_exactly_or_refused_with_a_message():
    rng = random.Random(2026)
    seen = {"imported": 0, "refused": 0, "not a model": 0}
    for i in range(N_MODELS):
        src = _model_source(rng, i)
        namespace = {"nn": nn, "torch": torch, "F": torch.nn.functional}
        exec(compile(src, f"<fuzz model {i}>", "exec"), namespace)
        torch.manual_seed(i)
        try:
            model = namespace[f"Fuzz{i}"]()
            x = torch.rand(2, 3, 16, 16)
            with torch.no_grad():
                want = model.eval()(x)
            if not torch.is_tensor(want) or not torch.isfinite(want).all():
                raise ValueError("no finite tensor output")
        except Exception:  # noqa: BLE001  the model itself cannot run: nothing to import
            seen["not a model"] += 1
            continue
        try:
            imported = import_module(model.train(), (3, 16, 16), f"fuzz{i}")
        except ModelImportError as e:
            assert str(e).startswith(f"fuzz{i}") or "cannot be imported" in str(e), src
            seen["refused"] += 1
            continue
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{type(e).__name__}: {e}\nfor the model\n{src}") from None
        net = compile_graph(imported.graph)
        net.load_state_dict(imported.state, strict=True)
        with torch.no_grad():
            got = net.eval()(x)
        got = got[0] if isinstance(got, (tuple, list)) else got
        assert_outputs_close(got, want, depth_of(model), what=f"outputs of\n{src}")
        seen["imported"] += 1
    print(seen)
    assert seen["imported"] >= 20 and seen["refused"] >= 10, seen
