"""Block Builder's training engine: one loop for the CLI, the app's Train panel and exported train.py files.

It depends only on torch and safetensors (torchvision for image folders and CIFAR-10), so an exported project
can copy this file unchanged. Progress goes out as events (dicts); the CLI
prints them as JSON lines. Runs on CUDA (AMP, channels_last, cudnn.benchmark, optional torch.compile), Apple MPS
or the CPU, and under torchrun with DistributedDataParallel.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import signal
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

try:
    from .settings import (FASHION_DIRS, RECIPES, Config, DoneEvent, EpochEvent, ResumedEvent, SettingsError,
                           StartEvent, StepEvent, TrainingError, WarningEvent, default_dataset, out_problem)
except ImportError:  # an exported train.py: the settings module is copied beside it as train_settings.py
    from train_settings import (FASHION_DIRS, RECIPES, Config, DoneEvent, EpochEvent,  # type: ignore
                                ResumedEvent, SettingsError, StartEvent, StepEvent, TrainingError, WarningEvent,
                                default_dataset, out_problem)

# ----------------------------------------------------------------------------------------------- data

MNIST_DIRS = ["/usr/share/datasets/mnist", "/usr/share/mnist", "~/.cache/block-builder/mnist"]
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (MNIST's format), gzipped or not, as a uint8 tensor; a clear error if it is not one."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise TrainingError(f"cannot read {path}: {e}") from None
    if len(data) < 8 or data[:2] != b"\x00\x00" or data[2] != 8:
        raise TrainingError(f"{path} is not an IDX file of unsigned bytes (corrupt or wrong file)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != math.prod(dims):
        raise TrainingError(f"{path} is truncated: expected {math.prod(dims):,} values, found {len(body):,}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def _find_idx(dirs, name):
    for d in dirs:
        base = Path(os.path.expanduser(d))
        if (base / (IDX_FILES["train"][0] + ".gz")).exists() or (base / IDX_FILES["train"][0]).exists():
            return base
    raise TrainingError(f"the {name} files were not found (looked in {', '.join(dirs)}); on Debian: "
                        f"apt install dataset-{name}, or pass an image folder")


def _load_idx_split(base: Path, split: str):
    out = []
    for stem in IDX_FILES[split]:
        p = base / (stem + ".gz")
        out.append(read_idx(p if p.exists() else base / stem))
    x, y = out
    if len(x) != len(y):
        raise TrainingError(f"{base}: {len(x)} images but {len(y)} labels")
    return x.unsqueeze(1), y.long()


class TensorData:
    """A dataset held in memory as uint8 images (N, C, H, W) and labels; batches are made on the device."""

    def __init__(self, x, y, num_classes, mean, std, name):
        self.x, self.y, self.num_classes, self.mean, self.std, self.name = x, y, num_classes, mean, std, name

    def __len__(self):
        return len(self.y)


def load_dataset(cfg: Config, in_shape, num_classes: int):
    """(train, val) datasets. Fashion-MNIST and MNIST validate on their official test set."""
    name = cfg.dataset.lower().replace("_", "-")
    if name == "synthetic":
        g = torch.Generator().manual_seed(cfg.seed + 12345)
        k = cfg.num_classes or num_classes
        n = cfg.synthetic_size
        x = torch.randint(0, 256, (n + max(n // 8, 8),) + tuple(in_shape), generator=g, dtype=torch.uint8)
        y = torch.randint(0, k, (len(x),), generator=g)
        split = n
        return (TensorData(x[:split], y[:split], k, 0.5, 0.29, "synthetic"),
                TensorData(x[split:], y[split:], k, 0.5, 0.29, "synthetic"))
    if name in ("fashion-mnist", "fashionmnist", "mnist"):
        fashion = name != "mnist"
        base = _find_idx(FASHION_DIRS if fashion else MNIST_DIRS, "fashion-mnist" if fashion else "mnist")
        mean, std = (0.2860, 0.3530) if fashion else (0.1307, 0.3081)
        tr = TensorData(*_load_idx_split(base, "train"), 10, mean, std, name)
        te = TensorData(*_load_idx_split(base, "test"), 10, mean, std, name)
        return tr, te
    if name in ("cifar10", "cifar-10"):
        try:
            from torchvision.datasets import CIFAR10
        except ImportError:
            raise TrainingError("CIFAR-10 needs torchvision") from None
        root = os.path.expanduser("~/.cache/block-builder/data")
        try:
            tr, te = (CIFAR10(root, train=t, download=cfg.download) for t in (True, False))
        except RuntimeError as e:
            raise TrainingError(f"CIFAR-10 is not in {root} ({e}); pass --download where the network allows") \
                from None
        to = lambda d: (torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(d.targets))
        return (TensorData(*to(tr), 10, 0.4734, 0.2516, "cifar10"), TensorData(*to(te), 10, 0.4734, 0.2516, "cifar10"))
    path = Path(os.path.expanduser(cfg.dataset))
    if path.is_dir():
        return _image_folder(path, cfg, in_shape)
    raise TrainingError(f"dataset {cfg.dataset!r} is neither a known name (synthetic, fashion-mnist, mnist, "
                        "cifar10) nor an image folder")


# Pixel modes an image folder may hold: each converts to L or RGB without losing its meaning (16-bit and float
# images would be clipped to 255, so they are skipped and counted instead).
IMAGE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
MAX_IMAGE_PIXELS = 50_000_000  # larger images are skipped (a 400-megapixel PNG would take gigabytes to decode)


def _image_problem(file) -> str | None:
    """Why an image cannot be trained on, from its header alone (cheap: nothing is decoded), or None."""
    from PIL import Image
    try:
        with Image.open(file) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                return f"larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels ({w}x{h})"
            if im.mode not in IMAGE_MODES:
                return f"pixel mode {im.mode} (16-bit or float) is not supported"
    except Image.DecompressionBombError:
        return f"larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises SyntaxError for some broken headers
        return f"unreadable ({_first_line(e)})"
    return None


class _Unreadable:
    """An image that failed to decode in a loader (possibly in a worker process): dropped from its batch and
    counted, with its path and why."""

    def __init__(self, path, why):
        self.path, self.why = path, why


class _ImageLoader:
    """Opens, decodes, converts (L or RGB) and resizes one image; a failure becomes :class:`_Unreadable`."""

    def __init__(self, mode, size):
        self.mode, self.size = mode, size

    def __call__(self, path):
        from PIL import Image
        try:
            with Image.open(path) as im:
                im = im.convert(self.mode).resize(self.size[::-1], Image.BILINEAR)
                x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
                return x.reshape(self.size[0], self.size[1], -1).permute(2, 0, 1).contiguous()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            return _Unreadable(str(path), _first_line(e))


def _collate(items):
    good = [(x, y) for x, y in items if not isinstance(x, _Unreadable)]
    bad = [(x.path, x.why) for x, _ in items if isinstance(x, _Unreadable)]
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), bad


def _image_folder(path, cfg, in_shape):
    try:
        from torchvision import datasets
    except ImportError:
        raise TrainingError("image folders need torchvision") from None
    c, h, w = in_shape
    try:
        ds = datasets.ImageFolder(str(path), loader=_ImageLoader("L" if c == 1 else "RGB", (h, w)))
    except (FileNotFoundError, RuntimeError, OSError) as e:
        raise TrainingError(f"{path}: not an image folder (one sub-folder of images per class): "
                            f"{_first_line(e)}") from None
    if len(ds.classes) < 2:
        raise TrainingError(f"{path}: only one class ({ds.classes[0]}); a classifier needs at least two class "
                            "folders")
    usable, skipped = [], []
    for i, (file, _) in enumerate(ds.samples):
        why = _image_problem(file)
        if why:
            skipped.append((file, why))
        else:
            usable.append(i)
    if len({ds.targets[i] for i in usable}) < 2:
        raise TrainingError(f"{path}: fewer than two classes have a readable image ({len(skipped)} of "
                            f"{len(ds.samples)} images cannot be used)")
    n_val = int(len(usable) * cfg.val_split)
    g = torch.Generator().manual_seed(cfg.seed)
    perm = [usable[i] for i in torch.randperm(len(usable), generator=g).tolist()]
    train_data, val_data = FolderData(ds, perm[n_val:]), FolderData(ds, perm[:n_val])
    train_data.skipped = val_data.skipped = skipped  # one list: every image left out, reported as it grows
    return train_data, val_data


class FolderData:
    mean, std = 0.45, 0.226

    def __init__(self, ds, indices):
        self.ds, self.indices, self.num_classes, self.name = ds, indices, len(ds.classes), "folder"
        self.skipped: list = []  # (path, why) of images left out: found in the headers, or failed to decode

    def __len__(self):
        return len(self.indices)


def batches(data, batch_size, epoch, seed, rank=0, world=1, shuffle=True, skip=0, workers=0, pin=False):
    """Batches of (uint8 images, labels) in an order fixed by (seed, epoch): a run resumed at a step sees the
    same data, and under DDP rank r gets items r, r + world, ... of every global batch. Images of a folder that
    fail to decode are left out of their batch and added to ``data.skipped``."""
    n = len(data)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    else:
        order = torch.arange(n)
    steps = n // batch_size if shuffle else math.ceil(n / batch_size)
    index_batches = [order[i * batch_size:(i + 1) * batch_size][rank::world] for i in range(skip, steps)]
    if isinstance(data, TensorData):
        for idx in index_batches:
            yield data.x[idx], data.y[idx]
        return
    loader = torch.utils.data.DataLoader(data.ds, batch_sampler=[[data.indices[i] for i in b.tolist()]
                                                                 for b in index_batches],
                                         num_workers=workers, pin_memory=pin, persistent_workers=False,
                                         collate_fn=_collate)
    try:
        for x, y, bad in loader:
            if bad:  # an image that failed once fails every epoch: named once
                known = {p for p, _ in data.skipped}
                data.skipped += [b for b in bad if b[0] not in known]
            if len(y):
                yield x, y
    except OSError as e:
        raise TrainingError(f"reading the image folder failed: {e}") from None


def skipped_warning(data, reported: int) -> dict | None:
    """A warning event for the images of ``data`` skipped since ``reported`` of them were, or None."""
    new = data.skipped[reported:] if isinstance(data, FolderData) else []
    if not new:
        return None
    path, why = new[0]
    return WarningEvent(skipped_images=len(data.skipped),
                        message=f"{len(new)} image(s) left out of training because they cannot be used (first: "
                                f"{path}: {why}); {len(data.skipped)} in all")


def prepare(x, data, in_shape, device, channels_last):
    """uint8 images -> normalised float tensors of the model's input size and channels, on the device."""
    c, h, w = in_shape
    x = x.to(device, non_blocking=True).float().div_(255.0)
    x = (x - data.mean) / data.std
    if x.shape[1] != c:
        x = x.mean(1, keepdim=True).expand(-1, c, -1, -1) if c in (1, 3) else x[:, :1].expand(-1, c, -1, -1)
    if tuple(x.shape[2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# ----------------------------------------------------------------------------------------------- loss


def smoothed_targets(y, k, eps):
    """q'(k) = (1 - eps) * onehot(k) + eps / K."""
    return (1 - eps) * F.one_hot(y, k).float() + eps / k


def total_loss(outputs, y, weights, label_smoothing=0.0):
    """Main loss + sum of weight_i x aux loss_i; returns (total, main loss, [aux losses])."""
    if not isinstance(outputs, (tuple, list)):
        outputs = (outputs,)
    losses = [F.cross_entropy(o.float(), y, label_smoothing=label_smoothing) for o in outputs]
    total = losses[0]
    for w, l in zip(weights[1:], losses[1:]):
        total = total + w * l
    return total, losses[0], losses[1:]


# ----------------------------------------------------------------------------------------------- devices


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingError("--device mps was asked for, but this machine has no Apple GPU")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def freeze_blocks(model, blocks) -> int:
    """Stop training the parameters of the given blocks (module paths, a prefix covers what is inside); returns
    how many tensors were frozen. A name that matches no parameter is an error, not a silent no-op."""
    frozen = 0
    for block in blocks:
        hits = [p for n, p in model.named_parameters() if n == block or n.startswith(block + ".")]
        if not hits:
            raise SettingsError(f"--freeze {block}: no block with parameters has that name")
        for p in hits:
            p.requires_grad_(False)
        frozen += len(hits)
    return frozen


def make_optimizer(model, r):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:  # frozen blocks (fine-tuning) are not optimised
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": r["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    opt = r["optimizer"]
    if opt == "sgd":
        return torch.optim.SGD(groups, lr=r["lr"], momentum=r["momentum"], nesterov=r.get("nesterov", False))
    if opt == "rmsprop":
        return torch.optim.RMSprop(groups, lr=r["lr"], alpha=r["alpha"], eps=r["eps"], momentum=r["momentum"])
    if opt == "adam":
        return torch.optim.Adam(groups, lr=r["lr"])
    if opt == "adamw":
        return torch.optim.AdamW(groups, lr=r["lr"])
    raise TrainingError(f"unknown optimizer {opt!r}")


def lr_factor(r, step, steps_per_epoch, total_steps):
    """Warm-up, then step (x gamma every step_epochs), cosine or constant."""
    epoch = step / max(steps_per_epoch, 1)
    if r["warmup_epochs"] and epoch < r["warmup_epochs"]:
        return (epoch + 1 / max(steps_per_epoch, 1)) / r["warmup_epochs"]
    if r["schedule"] == "step":
        return r["gamma"] ** int(epoch // r["step_epochs"])
    if r["schedule"] == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return 1.0


# ----------------------------------------------------------------------------------------------- checkpoints


def save_tensors(tensors: dict, path: Path):
    """A safetensors file, replaced atomically, with the mode the umask gives (as any editor's files)."""
    from safetensors.torch import save_file
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def load_tensors(path) -> dict:
    """The tensors of a safetensors file; a :class:`TrainingError` that names the file and what is wrong with it
    (missing, unreadable, not safetensors: an empty, truncated or oversized header) otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: {'a folder, not a weights file' if path.is_dir() else 'no such file'}")
    try:
        return load_file(str(path))
    except OSError as e:
        raise TrainingError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (SafetensorError, ValueError, RuntimeError, TypeError) as e:
        raise TrainingError(f"{path}: not a valid safetensors file ({_first_line(e)})") from None


def _first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _listed(names, most=4) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def weights_problems(expected: dict, tensors: dict) -> list[str]:
    """What keeps ``tensors`` from loading into a module whose state_dict is ``expected``: missing and unknown
    tensors, shapes (both given), dtypes that cannot convert (integer for float, ...)."""
    problems = []
    missing = [k for k in expected if k not in tensors]
    unknown = [k for k in tensors if k not in expected]
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing ({_listed(missing)})")
    if unknown:
        problems.append(f"{len(unknown)} tensor(s) this network does not have ({_listed(unknown)})")
    for k, v in tensors.items():
        want = expected.get(k)
        if want is None:
            continue
        if tuple(v.shape) != tuple(want.shape):
            problems.append(f"{k} has shape {tuple(v.shape)}, the network's is {tuple(want.shape)}")
        elif v.dtype != want.dtype and not (v.is_floating_point() and want.is_floating_point()):
            problems.append(f"{k} is {str(v.dtype).replace('torch.', '')}, the network's is "
                            f"{str(want.dtype).replace('torch.', '')}")
    return problems


def load_weights(model, path) -> None:
    """Load a weights file into ``model``, all or nothing: every problem is found before any tensor is copied."""
    tensors = load_tensors(path)
    problems = weights_problems(model.state_dict(), tensors)
    if problems:
        raise TrainingError(f"{path}: the weights do not fit this network: {_listed(problems, 3)}")
    model.load_state_dict(tensors, strict=True)


def save_checkpoint(out: Path, tag: str, model, optimizer, state: dict):
    """Weights in safetensors, optimizer tensors beside them, the rest as JSON; each file replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(model.state_dict(), out / f"{tag}.safetensors")
    opt_state = optimizer.state_dict()
    tensors, plain = {}, {}
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                plain[f"{pid}.{k}"] = v
    tensors["__rng_cpu__"] = torch.get_rng_state()
    save_tensors(tensors, out / f"{tag}.optim.safetensors")
    doc = dict(state, optimizer_groups=opt_state["param_groups"], optimizer_plain=plain)
    tmp = out / f"{tag}.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out / f"{tag}.json")


RUN_STATE = ("epoch", "batch", "step", "best_val_accuracy", "history")


def _no_constant(name):
    raise ValueError(f"{name} is not a value a checkpoint holds")


def _record_problem(doc) -> str | None:
    """What is wrong with a checkpoint's JSON record, or None."""
    if not isinstance(doc, dict):
        return f"the record is a JSON {type(doc).__name__}, not an object"
    for key in ("epoch", "batch", "step"):
        v = doc.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2 ** 62:
            return f"{key!r} must be a whole number 0 or more, not {v!r}"
    best = doc.get("best_val_accuracy", -1.0)
    if not isinstance(best, (int, float)) or isinstance(best, bool) or not -1.0 <= best <= 1.0:
        return f"'best_val_accuracy' must be -1 (none yet) or an accuracy from 0 to 1, not {best!r}"
    if not isinstance(doc.get("history", []), list):
        return "'history' must be a list"
    if not isinstance(doc.get("optimizer_groups"), list):
        return "'optimizer_groups' (the optimizer's settings) is missing or not a list"
    plain = doc.get("optimizer_plain")
    if not isinstance(plain, dict) or not all(isinstance(v, (int, float, bool)) or v is None for v in plain.values()):
        return "'optimizer_plain' is missing or holds something other than numbers"
    return None


def load_checkpoint(out: Path, tag: str, model, optimizer) -> dict:
    """The run state of checkpoint ``tag`` in ``out``, its weights, optimizer and random state loaded into
    ``model`` and ``optimizer``: all or nothing (every file is checked before anything is applied), and every
    failure is one message that names the file and the problem."""
    out = Path(out)
    files = [out / f"{tag}.json", out / f"{tag}.safetensors", out / f"{tag}.optim.safetensors"]
    for f in files:
        if not f.exists():
            raise TrainingError(f"no checkpoint to resume from in {out} ({f} is missing)")
    record, weights_file, optim_file = files
    try:
        doc = json.loads(record.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TrainingError(f"{record}: not a checkpoint record ({_first_line(e)})") from None
    problem = _record_problem(doc)
    if problem:
        raise TrainingError(f"{record}: {problem}")
    weights = load_tensors(weights_file)
    problems = weights_problems(model.state_dict(), weights)
    if problems:
        raise TrainingError(f"{weights_file}: the weights do not fit this network: {_listed(problems, 3)}")
    tensors = load_tensors(optim_file)
    rng = tensors.pop("__rng_cpu__", None)
    want = torch.get_rng_state()
    if rng is None or rng.dtype != want.dtype or rng.shape != want.shape:
        raise TrainingError(f"{optim_file}: the random generator's state is missing or malformed")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state: dict = {}
    for key, v in list(tensors.items()) + list(doc["optimizer_plain"].items()):
        pid, dot, k = key.partition(".")
        if not (dot and pid.isascii() and pid.isdigit() and int(pid) < len(params) and k):
            raise TrainingError(f"{optim_file}: optimizer state {key!r} belongs to no parameter of this network")
        p = params[int(pid)]
        if torch.is_tensor(v) and v.dim() and tuple(v.shape) != tuple(p.shape):
            raise TrainingError(f"{optim_file}: optimizer state {key} has shape {tuple(v.shape)}, its parameter's "
                                f"is {tuple(p.shape)}")
        state.setdefault(int(pid), {})[k] = v
    groups, current = doc["optimizer_groups"], optimizer.state_dict()["param_groups"]
    if len(groups) != len(current) or any(not isinstance(g, dict) or g.get("params") != c["params"]
                                          or not set(c) <= set(g) for g, c in zip(groups, current)):
        raise TrainingError(f"{record}: the optimizer's settings do not match this network and recipe (another "
                            "network's or recipe's checkpoint?)")
    try:  # the optimizer first: on failure it keeps its state, and nothing else was touched
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise TrainingError(f"{record}: the optimizer state cannot be loaded ({_first_line(e)})") from None
    model.load_state_dict(weights, strict=True)
    torch.set_rng_state(rng)
    return {k: doc[k] for k in RUN_STATE if k in doc}


# ----------------------------------------------------------------------------------------------- the loop

_STOP = {"flag": False}


def _request_stop(*_):
    _STOP["flag"] = True


def evaluate(model, data, cfg, in_shape, device, channels_last, autocast, weights, world, rank):
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for x, y in batches(data, max(cfg.batch_size, 256), 0, cfg.seed, rank, world, shuffle=False,
                            workers=cfg.workers, pin=device.type == "cuda"):
            x = prepare(x, data, in_shape, device, channels_last)
            y = y.to(device)
            with autocast():
                out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    if world > 1:
        import torch.distributed as dist
        t = torch.tensor([loss_sum, correct, total], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        loss_sum, correct, total = t.tolist()
    model.train()
    return loss_sum / max(total, 1), correct / max(total, 1)


CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def evaluate_model(model: nn.Module, cfg: Config, in_shape=None, worst: int = 16) -> dict:
    """The validation set of ``cfg.dataset`` through ``model`` (eval mode, the trainer's order and batches):
    accuracy, top-5 (more than 5 classes), per-class precision and recall, the confusion matrix (rows: true class,
    columns: predicted) and the most confidently wrong images (index, true, predicted, confidence)."""
    cfg.check()
    device = pick_device(cfg.device)
    in_shape = tuple(in_shape or getattr(model, "input_shapes", [None])[0] or ())
    if len(in_shape) != 3:
        raise TrainingError("the model needs one CxHxW input to evaluate on images")
    num_classes = _output_width(model, in_shape)
    _, val = load_dataset(cfg, in_shape, num_classes)
    k = max(val.num_classes, num_classes)
    model.to(device).eval()
    confusion = torch.zeros(k, k, dtype=torch.long)
    top5 = seen = 0
    wrong: list = []
    with torch.no_grad():
        for x, y in batches(val, max(cfg.batch_size, 256), 0, cfg.seed, shuffle=False, workers=cfg.workers):
            x = prepare(x, val, in_shape, device, False)
            out = model(x)
            out = (out[0] if isinstance(out, (tuple, list)) else out).float().cpu()
            prob = out.softmax(1)
            conf, pred = prob.max(1)
            confusion += torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)
            if k > 5:
                top5 += (out.topk(5, 1).indices == y[:, None]).any(1).sum().item()
            bad = (pred != y).nonzero().flatten()
            wrong += [(conf[i].item(), seen + i.item(), y[i].item(), pred[i].item()) for i in bad]
            seen += len(y)
    names = CLASS_NAMES.get(val.name, getattr(getattr(val, "ds", None), "classes", None)) or [str(i) for i in
                                                                                                range(k)]
    names = list(names) + [str(i) for i in range(len(names), k)]
    diag = confusion.diag()
    per_class = [{"class": names[c], "precision": diag[c].item() / max(confusion[:, c].sum().item(), 1),
                  "recall": diag[c].item() / max(confusion[c].sum().item(), 1),
                  "support": confusion[c].sum().item()} for c in range(k)]
    wrong.sort(reverse=True)
    evaluate_model.last_val = val  # for the pictures of the worst images
    return {"dataset": val.name, "images": seen, "correct": diag.sum().item(),
            "accuracy": diag.sum().item() / max(seen, 1), "top5_accuracy": top5 / max(seen, 1) if k > 5 else None,
            "classes": names, "per_class": per_class, "confusion": confusion.tolist(),
            "most_confident_wrong": [{"index": i, "true": names[t], "predicted": names[p], "confidence": c}
                                     for c, i, t, p in wrong[:worst]]}


def confusion_png(result: dict, path: Path, cell: int = 34) -> Path:
    """The confusion matrix as an image: rows true classes, columns predicted, cells shaded by the share of the
    row, counts written in; class names on both axes."""
    from PIL import Image, ImageDraw
    names, m = result["classes"], result["confusion"]
    k = len(names)
    label = max(len(n) for n in names) * 7 + 12
    img = Image.new("RGB", (label + k * cell + 10, label + k * cell + 30), "white")
    d = ImageDraw.Draw(img)
    d.text((label, 4), f"accuracy {result['accuracy'] * 100:.2f}% of {result['images']:,} (rows: true class)",
           fill="#263238")
    top = 24
    for r in range(k):
        total = max(sum(m[r]), 1)
        d.text((4, top + label - 12 + r * cell + cell // 3 - label + 12), names[r], fill="#37474F")
        for c in range(k):
            share = m[r][c] / total
            shade = int(255 - 200 * share)
            colour = (shade, shade, 255) if r == c else (255, shade, shade)
            x0, y0 = label + c * cell, top + r * cell
            d.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour, outline="#ECEFF1")
            d.text((x0 + 3, y0 + cell // 3), str(m[r][c]), fill="#000000" if share < 0.6 else "#FFFFFF")
    for c in range(k):  # column names, written vertically
        text = Image.new("RGB", (label, 12), "white")
        ImageDraw.Draw(text).text((0, 0), names[c], fill="#37474F")
        img.paste(text.rotate(90, expand=True), (label + c * cell + cell // 3, top + k * cell + 2)) \
            if top + k * cell + label < img.height else None
    img.save(path)
    return Path(path)


def worst_png(result: dict, val, path: Path, scale: int = 3) -> Path:
    """The most confidently wrong validation images in a grid, each with its true and predicted class."""
    from PIL import Image, ImageDraw
    items = result["most_confident_wrong"]
    if not items or not isinstance(val, TensorData):
        Image.new("RGB", (200, 40), "white").save(path)
        return Path(path)
    h, w = val.x.shape[2] * scale, val.x.shape[3] * scale
    cols = min(8, len(items))
    rows = -(-len(items) // cols)
    img = Image.new("RGB", (cols * (w + 90), rows * (h + 34)), "white")
    d = ImageDraw.Draw(img)
    for n, item in enumerate(items):
        x = val.x[item["index"]]
        pic = Image.fromarray(x.permute(1, 2, 0).squeeze(-1).numpy()).convert("RGB").resize((w, h))
        ox, oy = (n % cols) * (w + 90), (n // cols) * (h + 34)
        img.paste(pic, (ox, oy))
        d.text((ox, oy + h + 2), f"true {item['true']}", fill="#2E7D32")
        d.text((ox, oy + h + 16), f"said {item['predicted']} {item['confidence'] * 100:.0f}%", fill="#C62828")
    img.save(path)
    return Path(path)


def write_json(path: Path, doc) -> None:
    """A JSON file written atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def train(model: nn.Module, cfg: Config, emit, loss_weights=None, in_shape=None) -> dict:
    """Train ``model``; ``emit(event_dict)`` receives progress. Returns the final metrics."""
    cfg.check()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device(cfg.device)
    own_group = False
    if world > 1:
        import torch.distributed as dist
        own_group = not dist.is_initialized()
        if own_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        result = _train(model, cfg, emit, loss_weights, in_shape, world, rank, device)
        if own_group:
            dist.barrier()  # every rank is done before the group goes
        return result
    finally:
        if own_group and dist.is_initialized():  # gloo aborts a process that exits with its threads alive
            dist.destroy_process_group()


def end_worker_process(code: int) -> None:
    """End a torchrun worker process (WORLD_SIZE > 1) once its run is over, without the interpreter's shutdown;
    in a single process this returns and the caller exits normally.

    Why (found from a core dump of rank 0's SIGABRT under load): DistributedDataParallel keeps a C++ reference
    to the process group, so ``destroy_process_group()`` cannot stop gloo's worker threads (4 threads before
    and after it once a DDP wrapper has existed, 1 after it without). A gloo thread frees a finished
    collective's work, and with it a tensor Python owns, which needs the GIL; if the main thread has already
    reached ``Py_FinalizeEx`` by then, taking the GIL ends the thread with a forced unwind through a noexcept
    frame, and the process aborts ("terminate called without an active exception"). Everything the run writes
    (checkpoints, events) is written atomically and flushed before this is called, so ending the process here
    loses nothing and Python's shutdown never runs beside torch's threads."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _train(model, cfg, emit, loss_weights, in_shape, world, rank, device):
    say = emit if rank == 0 else (lambda e: None)
    r = cfg.recipe_settings()
    torch.manual_seed(cfg.seed)
    in_shape = tuple(in_shape or getattr(model, "input_shapes", [None])[0] or ())
    if len(in_shape) != 3:
        raise TrainingError("the model needs one CxHxW input to train on images")
    weights = list(loss_weights or getattr(model, "loss_weights", None) or [1.0])
    if cfg.aux_weight is not None:
        weights = [weights[0]] + [cfg.aux_weight] * (len(weights) - 1)
    num_classes = _output_width(model, in_shape)
    train_data, val_data = load_dataset(cfg, in_shape, num_classes)
    if train_data.num_classes > num_classes:
        raise TrainingError(f"the dataset has {train_data.num_classes} classes but the network's output has "
                            f"{num_classes}: set the last layer's width to {train_data.num_classes}")
    per_rank = cfg.batch_size // world
    if per_rank < 1 or cfg.batch_size % world:
        raise TrainingError(f"--batch-size {cfg.batch_size} must be a multiple of the {world} processes")
    if len(train_data) < cfg.batch_size:
        raise TrainingError(f"the dataset has {len(train_data)} training images, fewer than one batch of "
                            f"{cfg.batch_size}")
    cuda = device.type == "cuda"
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype = None
    if cfg.amp and cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    if cfg.weights:
        load_weights(model, cfg.weights)
    freeze_blocks(model, cfg.freeze)
    optimizer = make_optimizer(model, r)
    out = Path(cfg.out)
    state = {"epoch": 0, "batch": 0, "step": 0, "best_val_accuracy": -1.0, "history": []}
    if cfg.resume:  # before anything is written: a checkpoint that cannot resume stays as it is
        state.update(load_checkpoint(out, "last", model, optimizer))
        model.to(device)
        say(ResumedEvent(epoch=state["epoch"], step=state["step"]))
    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    steps_per_epoch = len(train_data) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    say(StartEvent(device=str(device), amp=str(amp_dtype).replace("torch.", "") if amp_dtype else None,
                   channels_last=channels_last, world_size=world, dataset=train_data.name,
                   train_size=len(train_data), val_size=len(val_data), batch_size=cfg.batch_size,
                   epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                   recipe=cfg.recipe, settings=r, loss_weights=weights,
                   params=sum(p.numel() for p in model.parameters()),
                   trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                   weights=str(cfg.weights) if cfg.weights else None, frozen=list(cfg.freeze)))
    reported = 0  # images left out so far that a warning has named

    def warn_skipped():
        nonlocal reported
        warning = skipped_warning(train_data, reported)
        if warning:
            reported = warning["skipped_images"]
            say(warning)
    warn_skipped()
    _STOP["flag"] = False
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, _request_stop)
        except ValueError:  # not the main thread
            pass
    train_model.train()
    t_start = time.perf_counter()
    seen = 0
    stopped = False
    metrics = {}
    try:
        epoch = state["epoch"]
        while epoch < cfg.epochs and not stopped:
            t_epoch = time.perf_counter()
            run_loss = run_correct = run_n = 0.0
            for x, y in batches(train_data, cfg.batch_size, epoch, cfg.seed, rank, world, skip=state["batch"],
                                workers=cfg.workers, pin=cuda):
                step = state["step"]
                if cfg.max_steps and step >= cfg.max_steps:
                    stopped = True
                    break
                f = lr_factor(r, step, steps_per_epoch, total_steps)
                for g, lr0 in zip(optimizer.param_groups, base_lrs):
                    g["lr"] = lr0 * f
                x = prepare(x, train_data, in_shape, device, channels_last)
                y = y.to(device, non_blocking=True)
                with autocast():
                    outputs = train_model(x)
                loss, main_loss, aux = total_loss(outputs, y, weights, r["label_smoothing"])
                if not torch.isfinite(loss):
                    raise TrainingError(f"the loss became {loss.item()} at step {step} (epoch {epoch + 1}); lower "
                                        f"the learning rate (now {optimizer.param_groups[0]['lr']:.3g}), add batch "
                                        "norm, or clip gradients")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if r["grad_clip"]:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), r["grad_clip"])
                scaler.step(optimizer)
                scaler.update()
                main = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
                correct = (main.argmax(1) == y).sum()
                packed = torch.stack([loss.detach().float(), main_loss.detach().float()]
                                     + [a.detach().float() for a in aux])
                if world > 1:  # report the global batch: the mean over ranks of equal shards
                    import torch.distributed as dist
                    packed = torch.cat([packed, correct.float().reshape(1)])
                    dist.all_reduce(packed)
                    correct = packed[-1]
                    packed = packed[:-1] / world
                loss_value = packed[0]
                main_loss, aux = packed[1], list(packed[2:])
                state["step"] += 1
                state["batch"] += 1
                seen += cfg.batch_size
                lv = loss_value.item()
                run_loss += lv * cfg.batch_size
                run_correct += correct.item()
                run_n += cfg.batch_size
                if state["step"] % cfg.log_every == 0 or state["step"] == 1 or state["batch"] == steps_per_epoch:
                    elapsed = time.perf_counter() - t_start
                    ips = seen / max(elapsed, 1e-9)
                    left = (total_steps - state["step"]) * cfg.batch_size / max(ips, 1e-9)
                    say(StepEvent(epoch=epoch + 1, step=state["step"], total_steps=total_steps, loss=lv,
                                  main_loss=main_loss.item(), aux_losses=[a.item() for a in aux],
                                  accuracy=run_correct / max(run_n, 1), lr=optimizer.param_groups[0]["lr"],
                                  images_per_s=ips, eta_s=left))
                if _STOP["flag"]:
                    stopped = True
                    break
            if stopped and state["batch"] < steps_per_epoch:
                break
            val_loss, val_acc = evaluate(model, val_data, cfg, in_shape, device, channels_last, autocast, weights,
                                         world, rank)
            epoch += 1
            metrics = {"epoch": epoch, "step": state["step"], "train_loss": run_loss / max(run_n, 1),
                       "train_accuracy": run_correct / max(run_n, 1), "val_loss": val_loss,
                       "val_accuracy": val_acc, "epoch_s": time.perf_counter() - t_epoch}
            state.update(epoch=epoch, batch=0)
            state["history"].append(metrics)
            say(EpochEvent(**metrics))
            warn_skipped()
            if rank == 0:
                improved = val_acc > state["best_val_accuracy"]
                if improved:  # recorded before 'last' is written, so a resumed run knows its best
                    state["best_val_accuracy"] = val_acc
                save_checkpoint(out, "last", model, optimizer, state)
                if improved:
                    save_checkpoint(out, "best", model, optimizer, state)
        if stopped and rank == 0:
            save_checkpoint(out, "last", model, optimizer, state)
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(f"CUDA ran out of memory with batch size {cfg.batch_size}; try --batch-size "
                            f"{max(cfg.batch_size // 2, 1)}") from None
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
    if not metrics:
        val_loss, val_acc = evaluate(model, val_data, cfg, in_shape, device, channels_last, autocast, weights,
                                     world, rank)
        metrics = {"epoch": state["epoch"], "step": state["step"], "val_loss": val_loss, "val_accuracy": val_acc}
    final = DoneEvent(stopped=stopped, **metrics, best_val_accuracy=max(state["best_val_accuracy"],
                                                                         metrics["val_accuracy"]),
                      seconds=time.perf_counter() - t_start,
                      images_per_s=seen / max(time.perf_counter() - t_start, 1e-9),
                      checkpoint=str(out / "last.safetensors"), device=str(device),
                      skipped_images=len(getattr(train_data, "skipped", [])))
    warn_skipped()
    say(final)
    return final


def _output_width(model, in_shape) -> int:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, *in_shape))
    model.train(was)
    out = out[0] if isinstance(out, (tuple, list)) else out
    if out.ndim != 2:
        raise TrainingError(f"the network's main output has shape {tuple(out.shape[1:])}; a classifier needs a "
                            "flat vector of class scores (add Flatten and Linear)")
    return out.shape[1]
