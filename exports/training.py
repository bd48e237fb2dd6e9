"""A standalone train.py beside the model file: the app's own training engine, with the project's recipe."""
from __future__ import annotations

from pathlib import Path

from builder.core.project import atomic_write

PACKAGE = "block_builder_train"  # builder/train's modules, copied unchanged beside an exported train.py
MODULES = ("settings", "data", "weights", "checkpoints", "engine")  # what training needs (not the app's parts)

MAIN = '''"""Train the exported network: python train.py, or torchrun --nproc-per-node=N train.py for
DistributedDataParallel. Written by Block Builder; the training code is its own, in {package}/ beside this file."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # {package}/ and the model file, wherever it runs from
from {package}.engine import end_worker_process, train  # noqa: E402
from {package}.settings import (ErrorEvent, Exit, SettingsError, TrainingError, add_arguments,  # noqa: E402
                                config_from_args, run_folder)
from {package}.weights import load_weights  # noqa: E402

MODEL_FILE = {model_file!r}
DEFAULTS = {defaults!r}


def main(argv=None):
    import argparse
    import importlib.util

    ap = argparse.ArgumentParser(description="Train the exported network (python train.py, or torchrun "
                                             "--nproc-per-node=N train.py for DistributedDataParallel).")
    ap.add_argument("--json", action="store_true")
    add_arguments(ap, skip=("freeze",))  # the same flags as block-builder train, from Config's fields
    ap.set_defaults(**DEFAULTS)
    args = ap.parse_args(argv)
    spec = importlib.util.spec_from_file_location("exported_model", Path(__file__).with_name(MODEL_FILE))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = config_from_args(args)
    if not cfg.out:  # every run a folder of its own, beside this script
        cfg.out = str(run_folder(Path(__file__).resolve().parent.name, Path(__file__).resolve().parent / "runs"))

    def emit(event):
        print(json.dumps(event) if args.json else " ".join(f"{{k}}={{v}}" for k, v in event.items()
                                                          if not isinstance(v, (dict, list))), flush=True)
    code = Exit.OK
    try:
        cfg.check()  # settings and --out first: exit status 2, nothing built or written
        torch.manual_seed(args.seed)
        model = mod.build_model()
        if args.weights:
            load_weights(model, args.weights)
        model.input_shapes = [mod.INPUT_SHAPE]
        model.loss_weights = mod.LOSS_WEIGHTS
        train(model, cfg, emit)
    except TrainingError as e:
        print(json.dumps(ErrorEvent(message=str(e))) if args.json else f"error: {{e}}", flush=True)
        code = Exit.SETTINGS if isinstance(e, SettingsError) else Exit.TRAINING
    end_worker_process(int(code))  # under torchrun: ends the worker here (see its docstring)
    sys.exit(int(code))


if __name__ == "__main__":
    main()
'''


def write_training_script(graph, path: Path, weights=None, epochs: int = 10, batch_size: int = 64,
                          dataset: str = "synthetic") -> list[Path]:
    """Write ``path`` (train.py), the model file beside it (model.py) and the training package it runs
    (block_builder_train/: the app's own data, weights, checkpoint and loop modules, unchanged; the flags are
    the same as ``block-builder train``'s)."""
    from builder import train as train_package

    from .pytorch import generate
    model_path = path.with_name("model.py") if path.name != "model.py" else path.with_name("network.py")
    defaults = {"recipe": graph.meta.get("recipe") or "sgd", "epochs": epochs, "batch_size": batch_size,
                "dataset": dataset}
    atomic_write(model_path, generate(graph))
    package = path.with_name(PACKAGE)
    package.mkdir(exist_ok=True)
    source = Path(train_package.__file__).parent
    atomic_write(package / "__init__.py", '"""Block Builder\'s training code, exported with a network."""\n')
    for name in MODULES:
        atomic_write(package / f"{name}.py", (source / f"{name}.py").read_text())
    from builder.core import files  # how its checkpoints are written (standard library only)
    atomic_write(package / "files.py", Path(files.__file__).read_text())
    atomic_write(path, MAIN.format(package=PACKAGE, model_file=model_path.name, defaults=defaults))
    written = [path, model_path, package]
    if weights is not None:
        from builder.train.weights import save_tensors
        w = path.with_name("model.safetensors")
        save_tensors(weights, w)
        written.append(w)
    return written
