"""One image as the network sees it: a validation image of a dataset (by number, prepared exactly as training
prepares it), an image file, or random noise; with the picture to show and what it is."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import CLASS_NAMES, batches, load_dataset, prepare
from .settings import Config, TrainingError


@dataclass
class Sample:
    x: torch.Tensor        # 1 x C x H x W, normalised as the network is fed
    picture: np.ndarray    # H x W or H x W x 3 in 0..1, to show
    caption: str
    label: int | None = None  # its class, for a dataset image
    classes: list | None = None  # the dataset's class names, where known


def load_image(source, in_shape):
    """(normalised tensor 1xCxHxW, the picture as an HxW or HxWx3 array in 0..1, a caption) for ``source``."""
    s = sample(source, in_shape)
    return s.x, s.picture, s.caption


def sample(source, in_shape) -> Sample:
    """The image ``source`` names: ("random",), ("dataset", name, index) or ("file", path). A file is converted
    to the input's channels and size; a dataset image is prepared as training prepares it."""
    c, h, w = in_shape
    kind = source[0]
    if kind == "random":
        x = torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(0))
        return Sample(x, _picture(x[0]), "random noise")
    if kind == "file":
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(source[1]) as im:
                im = im.convert("L" if c == 1 else "RGB").resize((w, h))
                arr = np.asarray(im, dtype=np.float32) / 255.0
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise TrainingError(f"{source[1]}: not an image this can read ({e})") from None
        x = torch.from_numpy(arr).reshape(h, w, -1).permute(2, 0, 1)[None]
        if x.shape[1] != c:
            x = x.expand(1, c, h, w).clone()
        pic = x[0].clone()
        return Sample((x - 0.45) / 0.226, _picture(pic), f"{Path(source[1]).name}")
    name, index = source[1], int(source[2])
    val = _validation(name, tuple(in_shape))
    if not 0 <= index < len(val):
        raise TrainingError(f"{name} has {len(val):,} validation images: choose 0 to {len(val) - 1:,}")
    if hasattr(val, "x"):
        xb, yb = val.x[index:index + 1], val.y[index:index + 1]
    else:
        for i, (xb, yb) in enumerate(batches(val, 1, 0, 0, shuffle=False)):
            if i == index:
                break
    x = prepare(xb, val, in_shape, "cpu", False)
    raw = torch.nn.functional.interpolate(xb.float()[:, :c] / 255.0, size=(h, w), mode="bilinear",
                                          align_corners=False) if xb.shape[-2:] != (h, w) else xb.float() / 255.0
    names = getattr(val, "classes", None) or getattr(getattr(val, "ds", None), "classes", None) or _class_names(val)
    label = int(yb[0])
    caption = f"{name} validation image {index} ({names[label] if names and label < len(names) else label})"
    return Sample(x, _picture(raw[0]), caption, label, list(names) if names else None)


@functools.lru_cache(maxsize=2)
def _validation(name: str, in_shape: tuple):
    """A dataset's validation set, kept for the next image (stepping through images, explaining one after
    another)."""
    return load_dataset(Config(dataset=name, workers=0), in_shape, 10)[1]


def _class_names(val):
    return CLASS_NAMES.get(getattr(val, "name", ""), None)


def _picture(chw):
    """A CxHxW tensor as an HxW (one channel) or HxWx3 array scaled to 0..1 for display."""
    arr = chw.float().numpy()
    arr = arr[0] if arr.shape[0] != 3 else arr.transpose(1, 2, 0)
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else arr * 0
