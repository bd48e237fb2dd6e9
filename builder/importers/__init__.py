"""Importers: existing models as block graphs with their weights (no Qt).

``import_source("torchvision:resnet50")``, ``import_source("package.module:factory")`` or
``import_source("model.onnx")`` give an :class:`Imported` (the graph and the weights, keyed as the compiled
graph's state_dict); ``import_module(model)`` takes an ``nn.Module``. Every failure is a
:class:`~builder.core.errors.ModelImportError` that lists what could not be mapped.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from ..core.errors import ImportProblem, ModelImportError
from .torch_module import Imported, default_input, import_module

__all__ = ["Imported", "import_module", "import_source", "default_input", "save_imported", "parse_size"]


def parse_size(text: str) -> tuple:
    """``3x224x224`` (or ``3,224,224``) as (C, H, W); a clip or a volume ``3x16x112x112`` as (C, D, H, W); a
    sequence ``4x100`` (C, L); ValueError saying what is expected otherwise."""
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if not 2 <= len(size) <= 4 or min(size) < 1:
        raise ValueError(f"the input size must be CxHxW (positive numbers, e.g. 3x224x224; CxDxHxW for a clip or "
                         f"a volume, CxL for a sequence), not {text!r}")
    return size


def _torchvision(name: str):
    try:
        from torchvision import models
    except ImportError:
        raise ModelImportError(f"torchvision:{name}", [ImportProblem("source", name, "torchvision is not "
                                                                     "installed")]) from None
    names = models.list_models(module=models)
    if name not in names:
        close = [n for n in names if name.split("_")[0] in n][:8]
        raise ModelImportError(f"torchvision:{name}", [ImportProblem(
            "source", name, "torchvision has no classification model of that name"
            + (f" (similar: {', '.join(close)})" if close else ""))])
    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = False  # scipy's truncated normal is slow and not needed: the weights are new
    return models.get_model(name, **kwargs)


def _callable(spec: str):
    mod_name, _, attr = spec.partition(":")
    if not all(part.isidentifier() for part in mod_name.split(".")) or not attr.isidentifier():
        raise ModelImportError(spec, [ImportProblem("source", spec, "expected package.module:callable (a module "
                                                                    "path and a function or class name)")])
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ModelImportError(spec, [ImportProblem("source", spec, f"cannot load it: {e}")]) from None
    except SyntaxError as e:
        raise ModelImportError(spec, [ImportProblem("source", spec, f"the module {mod_name} does not compile: "
                                                                    f"{e.msg} ({e.filename}, line {e.lineno})")]
                               ) from None
    except Exception as e:  # noqa: BLE001  the user's own code, run as it is imported
        raise ModelImportError(spec, [ImportProblem("source", spec, f"importing {mod_name} failed: "
                                                                    f"{type(e).__name__}: {e}")]) from None
    factory = getattr(mod, attr, None)
    if factory is None:
        raise ModelImportError(spec, [ImportProblem("source", spec, f"the module {mod_name} has no {attr!r}")])
    try:
        return factory()
    except Exception as e:  # noqa: BLE001  the user's own code
        raise ModelImportError(spec, [ImportProblem("source", spec, f"calling {attr}() failed: "
                                                                    f"{type(e).__name__}: {e}")]) from None


def import_source(source: str, input_shape=None, weights=None, contained: bool = True, timeout_s=None,
                  memory_gib=None) -> Imported:
    """``torchvision:NAME``, ``module.path:callable`` or a ``.onnx`` file; ``weights``: a safetensors file to
    load into the model before importing (torchvision models are built with ``weights=None``).

    What comes from outside runs in a child process bounded in time and memory (:mod:`builder.importers.contained`;
    ``timeout_s``, ``memory_gib``) unless ``contained`` is False: a ``module.path:callable`` (the user's own code,
    and the trace of its forward) and a ``.onnx`` file (a file made to break the importer can at worst use up its
    time or memory). torchvision's models are built and traced here."""
    from torch import nn
    if contained and (source.endswith(".onnx") or (":" in source and not source.startswith("torchvision:"))):
        from .contained import import_contained
        return import_contained(source, input_shape, weights, timeout_s, memory_gib)
    if source.endswith(".onnx"):
        from .onnx_model import import_onnx
        return import_onnx(Path(source), input_shape)
    if source.startswith("torchvision:"):
        model, name = _torchvision(source.split(":", 1)[1]), source.split(":", 1)[1]
    elif ":" in source:
        model, name = _callable(source), source.rsplit(":", 1)[1]
    else:
        raise ModelImportError(source, [ImportProblem("source", source, "expected torchvision:NAME, "
                                                                        "module.path:callable or a .onnx file")])
    if not isinstance(model, nn.Module):
        raise ModelImportError(source, [ImportProblem("source", source, f"gave a {type(model).__name__}, not an "
                                                                        "nn.Module")])
    if weights is not None:
        from ..train.settings import TrainingError
        from ..train.weights import load_weights
        try:
            load_weights(model, weights)
        except TrainingError as e:
            raise ModelImportError(source, [ImportProblem("weights", str(weights), str(e))]) from None
    return import_module(model, input_shape, name)


def save_imported(imported: Imported, path, with_weights: bool = True) -> list[Path]:
    """Write the project file and, beside it, its weights (``NAME.safetensors``, referenced from the project's
    meta as ``weights``); returns the files written."""
    from ..core import project
    from ..train.weights import save_tensors
    path = Path(path)
    written = []
    if with_weights:
        w = path.with_suffix(".safetensors")
        save_tensors(imported.state, w)
        imported.graph.meta["weights"] = w.name
        written.append(w)
    else:
        imported.graph.meta.pop("weights", None)
    project.save(imported.graph, path)
    return [path] + written
