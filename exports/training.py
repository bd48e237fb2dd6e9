"""A standalone train.py beside the model file: the app's own training engine, with the project's recipe."""
from __future__ import annotations

from pathlib import Path

from builder.project import atomic_write

SETTINGS_FILE = "train_settings.py"  # builder/train/settings.py, beside an exported train.py (the engine imports it)

MAIN = '''

# ------------------------------------------------------------------ this project's settings (exported)
MODEL_FILE = {model_file!r}
DEFAULTS = {defaults!r}


def main(argv=None):
    import argparse
    import importlib.util
    import sys

    from train_settings import ErrorEvent, Exit, add_arguments, config_from_args
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
    """Write ``path`` (train.py), the model file beside it (model.py) and the training settings it reads
    (train_settings.py: the flags are the same as ``block-builder train``'s)."""
    from builder.train import engine, settings

    from .pytorch import generate
    model_path = path.with_name("model.py") if path.name != "model.py" else path.with_name("network.py")
    engine_src = Path(engine.__file__).read_text()
    defaults = {"recipe": graph.meta.get("recipe") or "sgd", "epochs": epochs, "batch_size": batch_size,
                "dataset": dataset}
    atomic_write(model_path, generate(graph))
    settings_path = path.with_name(SETTINGS_FILE)
    atomic_write(settings_path, Path(settings.__file__).read_text())
    atomic_write(path, engine_src + MAIN.format(model_file=model_path.name, defaults=defaults))
    written = [path, model_path, settings_path]
    if weights is not None:
        from builder.train.engine import save_tensors
        w = path.with_name("model.safetensors")
        save_tensors(weights, w)
        written.append(w)
    return written
