"""The onnx package's own backend node tests for the operators CNNs use, run through an importer: each case's
model (its inputs after the first made constants, from the case's data), imported, run on the case's first
input and compared with the case's expected output. Shared by ``python -m benchmarks onnx_node_tests`` and the
suite's tests/test_onnx_node_cases.py."""
from __future__ import annotations

import warnings

CNN_OPS = {"Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN",
           "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Mish", "Sigmoid", "HardSigmoid",
           "HardSwish", "Tanh", "Softplus", "Softmax", "LogSoftmax", "Clip", "MaxPool", "AveragePool",
           "GlobalAveragePool", "GlobalMaxPool", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
           "Concat", "Split", "Slice", "Pad", "Resize", "Upsample", "Reshape", "Flatten", "Transpose", "Squeeze",
           "Unsqueeze", "ReduceMean", "ReduceSum", "ReduceMax", "DepthToSpace", "Dropout", "Gemm", "MatMul",
           "Identity"}


def cases() -> list:
    """The node test cases whose operator is one of :data:`CNN_OPS` (one model, its first data set)."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = collect_testcases(None)
    out = []
    for c in found:
        ops = {n.op_type for n in c.model.graph.node}
        if len(ops) == 1 and ops <= CNN_OPS and c.data_sets:
            out.append(c)
    return out


def _close(got, want, case) -> bool:
    import numpy as np
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=max(case.rtol, 1e-4),
                                                        atol=max(case.atol, 1e-5), equal_nan=True))


def ours(case, folder) -> str:
    """"exact", "wrong" or "refused": the case through Block Builder's ONNX importer."""
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper

    from builder.backend.compiler import compile_graph
    from builder.core.errors import ModelImportError
    from builder.importers.onnx_model import import_onnx
    inputs, outputs = case.data_sets[0]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph_inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if not graph_inputs or len(inputs) != len(graph_inputs):
        return "refused"
    first = np.asarray(inputs[0])
    for spec, value in list(zip(graph_inputs, inputs))[1:]:  # the other inputs: constants of the network
        if value is None or not isinstance(value, (np.ndarray, np.generic)):  # an array, or one number
            return "refused"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), spec.name))
        model.graph.input.remove(spec)
    path = folder / f"{case.name}.onnx"
    onnx.save(model, str(path))
    if first.dtype != np.float32 or first.ndim < 2:
        return "refused"
    try:
        imported = import_onnx(path, tuple(first.shape[1:]))
        net = compile_graph(imported.graph).eval()
        net.load_state_dict(imported.state)
        with torch.no_grad():
            got = net(torch.from_numpy(first))
    except ModelImportError:
        return "refused"
    except Exception:  # noqa: BLE001  anything else the importer did not refuse cleanly
        return "crashed"
    return "exact" if _close(got.numpy() if hasattr(got, "numpy") else got, outputs[0], case) else "wrong"


def onnx2torch(case) -> str:
    """The same case through onnx2torch (the peer converter), with all of the case's inputs."""
    import numpy as np
    import torch
    try:
        from onnx2torch import convert
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = convert(case.model).eval()
            inputs, outputs = case.data_sets[0]
            with torch.no_grad():
                got = net(*[torch.from_numpy(np.asarray(i)) for i in inputs])
    except Exception:  # noqa: BLE001  onnx2torch's refusals are exceptions of many kinds
        return "refused"
    got = got[0] if isinstance(got, (tuple, list)) else got
    return "exact" if _close(got.detach().numpy(), outputs[0], case) else "wrong"
