"""Fuzzers of the two importers, seeded and bounded: the suite runs a few hundred cases
(tests/test_factory_fuzz.py, tests/test_onnx_hostile.py); the long mode runs as many as you ask:

    python -m tests.fuzz_imports --models 5000 --onnx 20000 [--seed 0] [--json]

- PyTorch models: random chains of layers and functions whose arguments are sometimes impossible (no kernel, a
  size of None or 0, chunks of 0, a reshape that does not fit, a concat along a bad axis). Each is imported by
  ``import_module`` (what the contained child runs) and must be either exact (the compiled network gives the
  model's outputs with its weights) or refused with a ModelImportError.
- ONNX files: bytes of valid small files (tests/onnx_cases.py) flipped, cut and repeated; each import must work or
  be one ModelImportError naming the file.
Anything else (a traceback, a wrong output) is a failure, reported with the model's source or the file's seed.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


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


def fuzz_models(count: int, seed: int = 2026) -> dict:
    """Import ``count`` random models; {"imported", "refused", "not a model"}; raises AssertionError on a failure."""
    import torch
    from torch import nn

    from builder.backend.compiler import compile_graph
    from builder.core.errors import ModelImportError
    from builder.importers import import_module

    from helpers import assert_outputs_close, depth_of
    rng = random.Random(seed)
    seen = {"imported": 0, "refused": 0, "not a model": 0}
    for i in range(count):
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
        except ModelImportError:
            seen["refused"] += 1
            continue
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{type(e).__name__}: {e}\nfor the model (seed {seed}, #{i})\n{src}") from None
        net = compile_graph(imported.graph)
        net.load_state_dict(imported.state, strict=True)
        with torch.no_grad():
            got = net.eval()(x)
        got = got[0] if isinstance(got, (tuple, list)) else got
        assert_outputs_close(got, want, depth_of(model), what=f"outputs (seed {seed}, #{i}) of\n{src}")
        seen["imported"] += 1
    return seen


def fuzz_onnx(count: int, folder: Path, seed: int = 23) -> dict:
    """Import ``count`` corrupted ONNX files; {"imported", "refused"}; raises AssertionError on a failure."""
    from builder.core.errors import ModelImportError
    from builder.importers import import_source

    from onnx_cases import cases
    rng = random.Random(seed)
    seeds = [cases()[n] for n in ("non_utf8_name", "clip_two_min", "gather_out_of_range", "reshape_huge")]
    seen = {"imported": 0, "refused": 0}
    for i in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            at = rng.randrange(len(data))
            if op < 0.6:
                data[at] = rng.randrange(256)
            elif op < 0.8:
                del data[at:at + rng.randint(1, 16)]
            else:
                data[at:at] = data[at:at + rng.randint(1, 16)]
        path = Path(folder) / f"f{i}.onnx"
        path.write_bytes(bytes(data))
        try:
            import_source(str(path), contained=False)
            seen["imported"] += 1
        except ModelImportError as e:
            assert str(e).startswith(str(path)), str(e)
            seen["refused"] += 1
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{type(e).__name__}: {e} (file #{i} of seed {seed}, kept at {path})") from None
        path.unlink()
    return seen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--onnx", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as d:
        result = {"models": fuzz_models(args.models, args.seed), "onnx": fuzz_onnx(args.onnx, Path(d), args.seed)}
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
