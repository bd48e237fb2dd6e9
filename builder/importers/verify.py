"""Nothing imported is silently wrong (issue 24, Done-when 5): before an import is handed back, the compiled
project, with the imported weights, runs a seeded random input beside the source (the PyTorch model in eval
mode, or the ONNX file in onnxruntime; onnx's reference evaluator where onnxruntime cannot run the file), and
the import is refused with the measured difference when the outputs differ by more than ``TOLERANCE`` of the
largest output. The figures of the check are kept in the project's meta (``import_check``)."""
from __future__ import annotations

from ..core.errors import ImportProblem, ModelImportError

TOLERANCE = 1e-4  # relative: max |imported - source| / max |source|
SEED = 0


def _first_tensor(out):
    """The main output of a model's forward: the tensor, or the first tensor of a tuple, list or dict."""
    import torch
    if isinstance(out, torch.Tensor):
        return out
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    return next((t for t in (_first_tensor(i) for i in items) if t is not None), None)


def _compiled_output(graph, state, x, analysis=None):
    import torch

    from ..backend.compiler import compile_graph
    net = compile_graph(graph, analysis).eval()
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        return _first_tensor(net(x))


def compare(graph, state, x, want, source: str, reference: str, analysis=None) -> dict:
    """Refuse the import when the compiled ``graph``'s output for ``x`` is not ``want`` (the source's); the
    figures of the comparison otherwise (also kept in ``graph.meta["import_check"]``). ``analysis``: the
    importer's own of ``graph`` (not made again)."""
    import torch
    got = _compiled_output(graph, state, x, analysis)
    want = torch.as_tensor(want, dtype=torch.float32) if want is not None else None

    def refuse(why):
        raise ModelImportError(source, [ImportProblem("outputs", "", why)])
    if got is None or want is None:
        refuse(f"the imported network and {reference} were run on a random input and one of them gave no tensor")
    if tuple(got.shape) != tuple(want.shape):
        refuse(f"the imported network gives an output of shape {tuple(got.shape)} where {reference} gives "
               f"{tuple(want.shape)} for the same random input")
    if not torch.isfinite(want).all():
        refuse(f"{reference} gives values that are not finite for a random input: nothing to compare with")
    if not torch.isfinite(got).all():
        refuse("the imported network gives values that are not finite where the source does not")
    scale = float(want.abs().max())
    diff = float((got.float() - want).abs().max())
    rel = diff / scale if scale > 0 else diff
    if rel > TOLERANCE:
        refuse(f"the imported network's output differs from {reference}'s on a random input by {diff:.3g} "
               f"({rel:.2e} of the largest output, over the {TOLERANCE:g} allowed): it would not compute the "
               "same thing, so nothing was written")
    check = {"reference": reference, "input": list(x.shape[1:]), "max_abs_difference": diff, "relative": rel}
    graph.meta["import_check"] = check
    return check


def random_input(shape, batch: int = 2):
    import torch
    g = torch.Generator().manual_seed(SEED)
    return torch.randn(batch, *shape, generator=g)


def check_module(graph, state, model, shape, source: str, analysis=None) -> dict:
    """The imported ``graph`` against the PyTorch ``model`` (run in eval mode, then left as it was)."""
    import torch
    x = random_input(shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = _first_tensor(model(x))
    except Exception as e:  # noqa: BLE001  the source's own forward, on the input it was imported for
        said = str(e).splitlines()[0][:200] if str(e) else ""
        raise ModelImportError(source, [ImportProblem(
            "outputs", "", f"the source model cannot run a random input of {tuple(x.shape)}: "
                           f"{type(e).__name__}: {said}")]) from None
    finally:
        model.train(was_training)
    return compare(graph, state, x, want, source, "the PyTorch model", analysis)


def check_onnx(graph, state, model_proto, input_name: str, dims: list, shape, source: str, analysis=None) -> dict:
    """The imported ``graph`` against the ONNX file: onnxruntime, else onnx's reference evaluator (pure numpy:
    slower, same semantics) where onnxruntime cannot run it. ``dims``: the file's input dims (None where not fixed); a
    file whose sizes are fixed is run at them (a batch of 2 where the batch is free); an import at other sizes
    (``--input``) is checked at the file's own when the network runs at them, and says so when it does not."""
    batch = dims[0] if dims and dims[0] else 2
    own = tuple(dims[1:]) if len(dims) == len(shape) + 1 and all(dims[1:]) else tuple(shape)
    x = random_input(own, batch)
    if own != tuple(shape):
        try:
            _compiled_output(graph, state, x, analysis)
        except Exception:  # noqa: BLE001  a network made for other sizes (a Linear after a flatten)
            graph.meta["import_check"] = {"reference": None, "input": list(shape), "note": (
                f"not compared: the file takes only {own} and the network was imported for {tuple(shape)}")}
            return graph.meta["import_check"]
    feed = {input_name: x.numpy()}
    try:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the file as it is
        session = ort.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        want, reference = session.run(None, feed)[0], "onnxruntime"
    except Exception:  # noqa: BLE001  an operator it lacks (or a broken install): the reference evaluator
        try:
            from onnx.reference import ReferenceEvaluator
            want, reference = ReferenceEvaluator(model_proto).run(None, feed)[0], "onnx's reference evaluator"
        except Exception as e:  # noqa: BLE001  nothing can run the file: say so, write nothing
            raise ModelImportError(source, [ImportProblem(
                "outputs", "", f"the file cannot be run to check the import: {type(e).__name__}: "
                               f"{str(e).splitlines()[0][:200] if str(e) else ''}")]) from None
    return compare(graph, state, x, want, source, reference, analysis)
