"""Evaluation of a trained network on its validation set: accuracy, top-5, per-class precision and recall, the
confusion matrix and the most confidently wrong images (and their pictures)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .data import CLASS_NAMES, TensorData, batches, load_dataset, prepare  # noqa: F401  (CLASS_NAMES: its old home)
from .engine import _output_width, pick_device
from .settings import Config, TrainingError



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
