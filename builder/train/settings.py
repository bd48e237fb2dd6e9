"""Training settings, declared once: the engine's :class:`Config`, and from its fields the ``block-builder train``
flags, the exported train.py's flags, the app's Train panel form and the argv the panel runs.

Standard library only (no torch): the app builds its Train panel from it without loading torch, and an exported
train.py carries it, with the engine, in its ``block_builder_train`` package.
"""
from __future__ import annotations

import math
import os
from dataclasses import MISSING, dataclass, field, fields
from enum import IntEnum
from pathlib import Path

# ----------------------------------------------------------------------------------------------- recipes

RECIPES = {
    # GoogLeNet paper: SGD, momentum 0.9, the learning rate cut by 4% every 8 epochs, aux losses weighted 0.3
    "googlenet_sgd": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=2e-4, schedule="step",
                          step_epochs=8, gamma=0.96, label_smoothing=0.0),
    # Inception-v3 paper: RMSProp decay 0.9, epsilon 1.0, lr 0.045 decayed by 0.94 every 2 epochs, clipping 2.0,
    # label smoothing 0.1
    "inception_rmsprop": dict(optimizer="rmsprop", lr=0.045, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=4e-5,
                              schedule="step", step_epochs=2, gamma=0.94, grad_clip=2.0, label_smoothing=0.1),
    "lenet_sgd": dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine"),
    "alexnet_sgd": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step",
                        step_epochs=30, gamma=0.1),
    "vgg_sgd": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", step_epochs=30,
                    gamma=0.1),
    "nin_sgd": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, schedule="step", step_epochs=30,
                    gamma=0.1),
    "resnet_sgd": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="step", step_epochs=30,
                       gamma=0.1, warmup_epochs=0.0),
    "adam": dict(optimizer="adam", lr=1e-3, schedule="cosine"),
    "adamw": dict(optimizer="adamw", lr=1e-3, weight_decay=0.05, schedule="cosine", warmup_epochs=1.0),
    "sgd": dict(optimizer="sgd", lr=0.01, momentum=0.9, schedule="cosine"),
}


def setting(default, help: str, *, flag: bool = True, form: str | None = None, label: str = "",
            choices: tuple = (), suggest: tuple = (), lo=None, hi=None, kind: str = "", **extra):
    """A Config field with what the CLI and the form need: ``kind`` int / float / str / flag / list; ``form`` "basic"
    (always shown) or "more" (under More settings) or None (not on the form); ``choices`` fixed, ``suggest`` the
    editable list of a combo; ``lo``/``hi`` the range of a spin box; ``flag`` False: no command-line flag."""
    meta = dict(help=help, flag=flag, form=form, label=label, choices=choices, suggest=suggest, lo=lo, hi=hi,
                kind=kind or _kind(default), **extra)
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


def _kind(default) -> str:
    if isinstance(default, bool):
        return "flag"
    return {int: "int", float: "float", tuple: "list"}.get(type(default), "str")


DEVICES = ("auto", "cpu", "cuda", "mps")
DATASETS = ("fashion-mnist", "synthetic", "mnist", "cifar10")


@dataclass
class Config:
    dataset: str = setting("synthetic", "synthetic, fashion-mnist, mnist, cifar10, or an image folder (one sub-folder "
                           "per class); default: fashion-mnist when installed, else synthetic",
                           form="basic", suggest=DATASETS, cli_default=None)
    epochs: int = setting(1, "passes over the training set", form="basic", lo=1, hi=100_000)
    batch_size: int = setting(64, "images per step (per GPU)", form="basic", lo=1, hi=1_000_000, label="batch size")
    recipe: str = setting("sgd", "optimizer and schedule (default: the template's paper recipe)", form="basic",
                          cli_default=None)
    device: str = setting("auto", "where to train", form="basic", choices=DEVICES)
    max_steps: int = setting(0, "stop after this many steps (0: no limit)", form="basic", lo=0, hi=2 ** 31 - 1,
                             label="max steps", special="no limit")
    out: str = setting("", "folder for checkpoints and the run's record (default: a new "
                           "runs/<date-time>-<network> for every run)", form="basic", label="checkpoints")
    resume: bool = setting(False, "continue from OUT/last (without --out: the network's newest run)", form="basic",
                           label="continue from the last checkpoint in this folder")
    lr: float | None = setting(None, "learning rate (default: the recipe's)", form="more", kind="float",
                               label="learning rate")
    weight_decay: float | None = setting(None, "weight decay (default: the recipe's)", form="more", kind="float",
                                         label="weight decay")
    label_smoothing: float | None = setting(None, "label smoothing (default: the recipe's)", form="more",
                                            kind="float", label="label smoothing")
    aux_weight: float | None = setting(None, "weight of each auxiliary loss (default: the outputs' own)",
                                       form="more", kind="float", label="aux loss weight")
    seed: int = setting(0, "random seed (weights, shuffling, augmentation)", form="more", lo=0, hi=2 ** 31 - 1)
    val_split: float = setting(0.1, "share of an image folder or synthetic set held out for validation",
                               form="more", label="validation split")
    workers: int = setting(2, "data-loading worker processes", form="more", lo=0, hi=256)
    amp: bool = setting(True, "mixed precision on CUDA (--no-amp turns it off)", form="more",
                        label="mixed precision (CUDA)")
    channels_last: bool | None = setting(None, "channels_last memory format also on the CPU (on by default with "
                                         "CUDA)", kind="flag", form="more", label="channels_last on the CPU")
    compile: bool = setting(False, "torch.compile the model", form="more", label="torch.compile")
    download: bool = setting(False, "allow torchvision to download CIFAR-10")
    synthetic_size: int = setting(512, "images in the synthetic dataset", form="more", lo=1, hi=10_000_000,
                                  label="synthetic images")
    num_classes: int = setting(0, "classes of the synthetic dataset (0: the model's output width)", lo=0,
                               hi=100_000)
    log_every: int = setting(10, "report every this many steps", lo=1, hi=1_000_000)
    weights: str | None = setting(None, "start from these weights (.safetensors); default: the project's own (an "
                                  "imported model's), if it has them", kind="str")
    freeze: tuple = setting((), "do not train this block (a module path; repeat it, or give a comma list)",
                            metavar="BLOCK")
    overrides: dict = setting({}, "recipe settings changed in code", flag=False)

    def check(self) -> None:
        """Every setting in its range and ``out`` usable, before any data is read or any file written: one
        :class:`SettingsError` naming every problem."""
        problems = []

        def need(ok, text):
            if not ok:
                problems.append(text)

        def number(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def whole(v):
            return isinstance(v, int) and not isinstance(v, bool)
        need(whole(self.epochs) and 1 <= self.epochs <= 100_000, f"epochs must be 1 to 100,000, not {self.epochs}")
        need(whole(self.batch_size) and 1 <= self.batch_size <= 1_000_000,
             f"batch size must be 1 to 1,000,000, not {self.batch_size}")
        need(whole(self.max_steps) and self.max_steps >= 0, f"max steps must be 0 (no limit) or more, not "
                                                             f"{self.max_steps}")
        need(whole(self.workers) and 0 <= self.workers <= 256, f"workers must be 0 to 256, not {self.workers}")
        need(whole(self.log_every) and self.log_every >= 1, f"log every must be at least 1 step, not "
                                                             f"{self.log_every}")
        need(whole(self.synthetic_size) and 1 <= self.synthetic_size <= 10_000_000,
             f"synthetic size must be 1 to 10,000,000 images, not {self.synthetic_size}")
        need(whole(self.seed) and 0 <= self.seed < 2 ** 63, f"seed must be 0 to 2**63-1, not {self.seed}")
        need(self.lr is None or (number(self.lr) and self.lr > 0), f"learning rate must be a number above 0, not "
                                                                  f"{self.lr}")
        need(self.weight_decay is None or (number(self.weight_decay) and 0 <= self.weight_decay <= 10),
             f"weight decay must be 0 to 10, not {self.weight_decay}")
        need(self.label_smoothing is None or (number(self.label_smoothing) and 0 <= self.label_smoothing < 1),
             f"label smoothing must be at least 0 and below 1, not {self.label_smoothing}")
        need(self.aux_weight is None or (number(self.aux_weight) and 0 <= self.aux_weight <= 100),
             f"aux weight must be 0 to 100, not {self.aux_weight}")
        need(number(self.val_split) and 0 < self.val_split < 1, f"validation split must be between 0 and 1, not "
                                                                f"{self.val_split}")
        need(self.recipe in RECIPES, f"unknown recipe {self.recipe!r} (recipes: {', '.join(RECIPES)})")
        need(self.device in DEVICES, f"device must be auto, cpu, cuda or mps, not {self.device!r}")
        problem = out_problem(self.out)
        need(problem is None, problem or "")
        if problems:
            raise SettingsError("; ".join(problems))

    def recipe_settings(self) -> dict:
        if self.recipe not in RECIPES:
            raise TrainingError(f"unknown recipe {self.recipe!r}; recipes: {', '.join(RECIPES)}")
        r = dict(optimizer="sgd", lr=0.01, momentum=0.0, weight_decay=0.0, schedule="constant", step_epochs=1,
                 gamma=1.0, warmup_epochs=0.0, grad_clip=0.0, label_smoothing=0.0, alpha=0.99, eps=1e-8)
        r.update(RECIPES[self.recipe])
        for key, value in (("lr", self.lr), ("weight_decay", self.weight_decay),
                           ("label_smoothing", self.label_smoothing)):
            if value is not None:
                r[key] = value
        r.update(self.overrides)
        return r


class TrainingError(Exception):
    """A problem the user can act on (a missing dataset, a NaN loss, out of memory); the message says what."""


class SettingsError(TrainingError):
    """Settings out of range or an unusable output folder, found before anything runs (exit status 2)."""


def run_folder(name: str, root="runs", now: float | None = None) -> Path:
    """A folder of its own for a run: ``runs/<date-time>-<network>`` (``runs/20261202-041233-lenet5``), never one
    that exists (a second run in the same second gets ``-2``)."""
    import re
    import time
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:60] or "network"
    base = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{slug}"
    folder, n = base, 2
    while folder.exists():
        folder, n = base.with_name(f"{base.name}-{n}"), n + 1
    return folder


def out_problem(out) -> str | None:
    """Why ``out`` cannot hold the run's checkpoints (a file, below a file, not writable), or None."""
    path = Path(os.path.expanduser(str(out)))
    if path.exists():
        if not path.is_dir():
            return f"--out {out} is a file, not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else f"--out {out}: the folder is not writable"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"--out {out} cannot be made: {parent} is a file"
            return None if os.access(parent, os.W_OK | os.X_OK) else \
                f"--out {out} cannot be made: {parent} is not writable"
    return None




def default_dataset() -> str:
    """Fashion-MNIST where Debian's dataset-fashion-mnist (or a copy) is installed, else synthetic data."""
    for d in FASHION_DIRS:
        if (Path(os.path.expanduser(d)) / "train-images-idx3-ubyte.gz").exists():
            return "fashion-mnist"
    return "synthetic"


FASHION_DIRS = ["/usr/share/datasets/fashion-mnist", "/usr/share/fashion-mnist", "~/.cache/block-builder/fashion-mnist"]


# ------------------------------------------------------------------ the fields as flags, a form and an argv

def settings_fields(form: str | None = None):
    """Config's fields that are settings (have a flag or a place on the form), in declaration order."""
    return [f for f in fields(Config) if (f.metadata["flag"] if form is None else f.metadata["form"] == form)]


def flag_name(f) -> str:
    if f.metadata["kind"] == "flag" and f.default is True:
        return "--no-" + f.name.replace("_", "-")
    return "--" + f.name.replace("_", "-")


def cli_default(f):
    return f.metadata.get("cli_default", f.default if f.default is not MISSING else None)


def add_arguments(parser, skip=()) -> None:
    """Add every setting's flag to an argparse parser (names skipped: the caller declares its own)."""
    for f in settings_fields():
        if f.name in skip:
            continue
        m, name = f.metadata, flag_name(f)
        if m["kind"] == "flag":
            parser.add_argument(name, dest=f.name, action="store_false" if f.default is True else "store_true",
                                default=f.default, help=m["help"])
        elif m["kind"] == "list":
            parser.add_argument(name, dest=f.name, action="append", default=[], metavar=m.get("metavar"),
                                help=m["help"])
        else:
            parser.add_argument(name, dest=f.name, type={"int": int, "float": float}.get(m["kind"], str),
                                default=cli_default(f), choices=m["choices"] or None, help=m["help"])


def config_from_args(args, **given) -> Config:
    """A Config from parsed flags (``given`` wins): a dataset left out is the default one; list flags accept
    comma lists; a flag that is off for a tri-state field (channels_last) leaves the engine's choice."""
    values = {}
    for f in settings_fields():
        if not hasattr(args, f.name):
            continue
        v = getattr(args, f.name)
        if f.metadata["kind"] == "list":
            v = tuple(dict.fromkeys(x for item in v for x in str(item).split(",") if x))
        elif f.default is None and f.metadata["kind"] == "flag":
            v = True if v else None
        elif v is None and f.default is not None:
            v = default_dataset() if f.name == "dataset" else f.default
        values[f.name] = v
    values.update(given)
    return Config(**values)


def config_argv(cfg: Config) -> list:
    """The flags that give ``cfg`` back through :func:`config_from_args` (values equal to the flag's default are
    left out)."""
    argv = []
    for f in settings_fields():
        m, v = f.metadata, getattr(cfg, f.name)
        if m["kind"] == "flag":
            if bool(v) != bool(f.default):
                argv.append(flag_name(f))
        elif m["kind"] == "list":
            for x in v:
                argv += [flag_name(f), str(x)]
        elif v is not None and v != cli_default(f):
            argv += [flag_name(f), repr(v) if isinstance(v, float) else str(v)]
    return argv


# ------------------------------------------------------------------ what a run reports, and how it ends

class Exit(IntEnum):
    """The exit status of ``block-builder train`` / ``evaluate`` and an exported train.py."""
    OK = 0
    SETTINGS = 2   # a setting out of range, an unusable --out, a project that cannot be read: nothing ran
    TRAINING = 3   # the run began and could not go on (a missing dataset, NaN loss, out of memory)


class Event(dict):
    """One training event. Each kind is its own class with its fields declared (``required`` and ``optional``),
    checked when it is made; the values read as attributes (``event.val_accuracy``). It stays a dict: the JSON
    line a run prints (``{"event": kind, ...}``), the run record and the exported train.py's output are unchanged."""
    kind = ""
    required: tuple = ()
    optional: tuple = ()

    def __init__(self, **values):
        missing = [f for f in self.required if f not in values]
        unknown = [f for f in values if f not in self.required and f not in self.optional]
        if missing or unknown:
            raise TypeError(f"{type(self).__name__}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"]
                                                                           if unknown else [])))
        super().__init__(event=self.kind, **values)

    def __getattr__(self, name):
        if name in self.required or name in self.optional:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")


class StartEvent(Event):
    kind = "start"
    required = ("device", "amp", "channels_last", "world_size", "dataset", "train_size", "val_size", "batch_size",
                "epochs", "steps_per_epoch", "total_steps", "recipe", "settings", "loss_weights", "params",
                "trainable_params", "weights", "frozen")


class ResumedEvent(Event):
    kind = "resumed"
    required = ("epoch", "step")


class StepEvent(Event):
    kind = "step"
    required = ("epoch", "step", "total_steps", "loss", "main_loss", "aux_losses", "accuracy", "lr", "images_per_s",
                "eta_s")


class EpochEvent(Event):
    kind = "epoch"
    required = ("epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_s")


class DoneEvent(Event):
    kind = "done"
    required = ("stopped", "epoch", "step", "val_loss", "val_accuracy", "best_val_accuracy", "seconds",
                "images_per_s", "checkpoint", "device", "skipped_images")
    optional = ("train_loss", "train_accuracy", "epoch_s")


class WarningEvent(Event):
    kind = "warning"
    required = ("message",)
    optional = ("skipped_images",)


class ErrorEvent(Event):
    kind = "error"
    required = ("message",)


EVENTS = {cls.kind: cls for cls in (StartEvent, ResumedEvent, StepEvent, EpochEvent, DoneEvent, WarningEvent,
                                    ErrorEvent)}


def parse_event(value) -> Event | None:
    """A JSON line's object as its typed event; None for anything else (another program's output, a line from a
    newer version with fields this one does not know is still read: unknown fields are kept as they are)."""
    if not isinstance(value, dict) or value.get("event") not in EVENTS:
        return None
    cls = EVENTS[value["event"]]
    fields = {k: v for k, v in value.items() if k != "event"}
    if any(f not in fields for f in cls.required):
        return None
    event = cls.__new__(cls)
    dict.__init__(event, value)
    return event
