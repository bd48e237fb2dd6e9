"""Training data: the datasets a run reads (MNIST and Fashion-MNIST IDX files, CIFAR-10, image folders, synthetic
images) and the batches it takes from them, in an order fixed by (seed, epoch).

Under torchrun each rank takes its share of every global batch (items r, r + world, ...: what
``DistributedSampler`` gives each rank of a batch, so N processes train like one on the same global batch)."""
from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import torch
import torch.nn.functional as F

from .settings import FASHION_DIRS, Config, TrainingError, WarningEvent
from .weights import _first_line

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


# the class names of the datasets known by name (an image folder's are its sub-folders)
CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


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
    n_val = max(1, int(len(usable) * cfg.val_split))  # never an empty validation set (its accuracy would read 0)
    if len(usable) - n_val < 1:
        raise TrainingError(f"{path}: {len(usable)} usable image{'s' if len(usable) != 1 else ''}: too few to hold "
                            f"some out for validation and train on the rest")
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
