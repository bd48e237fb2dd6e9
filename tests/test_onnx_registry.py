"""The ONNX importer's converters are a registry keyed by (op type, first opset) (issue 21): the file's opset
picks the converter, constants are folded by onnx's reference evaluator, and a converter that meets values it
cannot use refuses with one message naming the node."""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.core.errors import ModelImportError
from builder.importers import import_source
from builder.importers.onnx_model import CONVERTERS, converter_for


def _model(nodes, inits, opset, tmp_path, name="m"):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])  # no sizes: the importer infers them
    graph = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


W = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)


def test_the_files_opset_picks_the_converter():
    assert [v for v, _ in CONVERTERS["Clip"]] == [11, 1]
    assert converter_for("Clip", 10) is not converter_for("Clip", 11)
    assert converter_for("Clip", 17) is converter_for("Clip", 11)
    assert converter_for("NoSuchOp", 17) is None


@pytest.mark.parametrize("opset", [10, 11, 13, 17])
def test_relu6_as_clip_imports_at_every_opset(tmp_path, opset):
    conv = helper.make_node("Conv", ["input", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3])
    if opset < 11:
        clip = helper.make_node("Clip", ["c"], ["y"], name="/act/Clip", min=0.0, max=6.0)
        inits = {"w": W}
    else:
        clip = helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="/act/Clip")
        inits = {"w": W, "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    imported = import_source(str(_model([conv, clip], inits, opset, tmp_path)), contained=False)
    kinds = [b.type for b in imported.graph.blocks()]
    assert kinds == ["input", "conv2d", "relu6", "output"]
    net = compile_graph(imported.graph).eval()
    net.load_state_dict(imported.state)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        want = torch.nn.functional.conv2d(x, torch.from_numpy(W)).clamp(0, 6)
        torch.testing.assert_close(net(x), want)


def test_a_clip_with_a_two_element_min_is_one_message_naming_the_node(tmp_path):
    conv = helper.make_node("Conv", ["input", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3])
    clip = helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="/act/Clip")
    inits = {"w": W, "lo": np.array([0.0, 1.0], np.float32), "hi": np.array(6.0, np.float32)}
    with pytest.raises(ModelImportError) as e:
        import_source(str(_model([conv, clip], inits, 13, tmp_path)), contained=False)
    assert [str(p) for p in e.value.problems] == [str(e.value.problems[0])] and len(e.value.problems) == 1
    text = str(e.value)
    assert "act" in text and "Clip: its min is not one number (shape [2]" in text and "Traceback" not in text


def test_constant_arithmetic_is_folded_by_the_reference_evaluator_and_bad_values_refused(tmp_path):
    """A Reshape whose target shape is computed (Shape -> Gather -> Concat), as exporters write a flatten; and a
    Gather whose index is out of range, as a hostile file writes it: one message naming that node."""
    conv = helper.make_node("Conv", ["input", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3])
    shape = helper.make_node("Shape", ["c"], ["s"], name="/flat/Shape")
    first = helper.make_node("Gather", ["s", "zero"], ["n"], name="/flat/Gather", axis=0)
    unsq = helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="/flat/Unsqueeze")
    cat = helper.make_node("Concat", ["n1", "minus1"], ["target"], name="/flat/Concat", axis=0)
    reshape = helper.make_node("Reshape", ["c", "target"], ["y"], name="/flat/Reshape")
    inits = {"w": W, "zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64)}
    nodes = [conv, shape, first, unsq, cat, reshape]
    imported = import_source(str(_model(nodes, inits, 13, tmp_path, "ok")), contained=False)
    assert analyze(imported.graph).blocks["output"].out_shape == (4 * 6 * 6,)
    inits["zero"] = np.array(9, np.int64)  # index 9 of a 4-element shape
    with pytest.raises(ModelImportError) as e:
        import_source(str(_model(nodes, inits, 13, tmp_path, "bad")), contained=False)
    assert len(e.value.problems) == 1
    assert "flat" in str(e.value) and "Gather: cannot be computed from its constant inputs" in str(e.value)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["resnet18", "googlenet", "squeezenet1_1"])
def test_the_apps_onnx_export_keeps_batch_norms_and_reimports_as_the_same_network(tmp_path, name):
    import templates
    from exports import export_graph
    from helpers import assert_outputs_close, depth_of, random_statistics
    import onnxruntime as ort
    g = templates.build(name, input_size=(3, 96, 96)) if name != "googlenet" else \
        templates.build(name, input_size=(3, 96, 96), aux=False)
    torch.manual_seed(0)
    net = random_statistics(compile_graph(g).eval())  # so that no batch norm is the identity
    path = tmp_path / f"{name}.onnx"
    export_graph(g, "onnx", path, weights=net.state_dict())
    assert any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node) == (name != "squeezenet1_1")
    imported = import_source(str(path), contained=False)
    assert analyze(imported.graph).inference.params == analyze(g).inference.params
    back = compile_graph(imported.graph).eval()
    back.load_state_dict(imported.state)
    x = torch.randn(1, 3, 96, 96)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert_outputs_close(back(x), torch.from_numpy(want), depth_of(net), "re-imported vs onnxruntime")
        assert_outputs_close(net(x), torch.from_numpy(want), depth_of(net), "compiled vs onnxruntime")
    if name == "resnet18":  # folding is the deployment option: 20 batch norms' parameters go into the convs
        export_graph(g, "onnx", tmp_path / "folded.onnx", weights=net.state_dict(), fold_batch_norm=True)
        folded = import_source(str(tmp_path / "folded.onnx"), contained=False)
        assert analyze(folded.graph).inference.params == analyze(g).inference.params - 4800


def _third_party(opset, tmp_path):
    """A small residual CNN as another tool writes it: flat node names without module scopes, explicit pads,
    ReLU6 as Clip (attributes before opset 11, inputs after), a Reshape to [-1, C] and a Softmax head."""
    rng = np.random.default_rng(opset)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.2
    inits = {"w0": w(8, 3, 3, 3), "b0": w(8), "s": 1 + w(8), "bb": w(8), "m": w(8), "v": 1 + np.abs(w(8)),
             "w1": w(8, 8, 3, 3), "w2": w(8, 8, 1, 1), "fw": w(8, 5), "fb": w(5),
             "shape": np.array([-1, 8], np.int64)}
    clip = (helper.make_node("Clip", ["r0"], ["c0"], name="clip_1", min=0.0, max=6.0) if opset < 11 else
            helper.make_node("Clip", ["r0", "lo", "hi"], ["c0"], name="clip_1"))
    if opset >= 11:
        inits.update(lo=np.array(0.0, np.float32), hi=np.array(6.0, np.float32))
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c"], name="conv2d_0", kernel_shape=[3, 3], pads=[1] * 4,
                         strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn_0", epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r0"], name="relu_0"), clip,
        helper.make_node("Conv", ["c0", "w1"], ["c1"], name="conv2d_1", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2d_2", kernel_shape=[1, 1]),
        helper.make_node("Add", ["c2", "c0"], ["sum"], name="add_0"),
        helper.make_node("MaxPool", ["sum"], ["p"], name="maxpool_0", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap_0"),
        helper.make_node("Reshape", ["g", "shape"], ["f"], name="reshape_0"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], name="dense_0"),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax_0", axis=1 if opset < 13 else -1),
    ]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])
    graph = helper.make_graph(nodes, "keras_like", [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tf2onnx")
    model.ir_version = 7
    path = tmp_path / f"third_party_{opset}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("opset", [11, 12, 13, 14, 15, 16])
def test_files_of_other_tools_at_opsets_11_to_16_import_through_the_registry(tmp_path, opset):
    import onnxruntime as ort
    path = _third_party(opset, tmp_path)
    imported = import_source(str(path), contained=False)
    kinds = [b.type for b in imported.graph.blocks()]
    assert kinds == ["input", "conv2d", "batchnorm2d", "relu", "relu6", "conv2d", "conv2d", "add", "maxpool2d",
                     "adaptive_avgpool2d", "flatten", "linear", "softmax", "output"]
    assert analyze(imported.graph).inference.params == 8 * 27 + 8 + 2 * 8 + 8 * 72 + 8 * 8 + 8 * 5 + 5  # BN: 2 per channel
    net = compile_graph(imported.graph).eval()
    net.load_state_dict(imported.state, strict=True)
    x = torch.randn(4, 3, 16, 16)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(net(x), torch.from_numpy(want), rtol=1e-4, atol=1e-5)


def test_a_converter_meeting_a_node_it_cannot_read_refuses_with_one_message(tmp_path):
    """A Slice of channels whose ends are empty (the checker lets it through): one message naming the node, no
    traceback."""
    conv = helper.make_node("Conv", ["input", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3])
    cut = helper.make_node("Slice", ["c", "start", "none", "axes"], ["s"], name="/cut/Slice")
    flat = helper.make_node("Flatten", ["s"], ["y"], name="/flat/Flatten")
    inits = {"w": W, "start": np.zeros(1, np.int64), "none": np.zeros(0, np.int64), "axes": np.ones(1, np.int64)}
    path = _model([conv, cut, flat], inits, 13, tmp_path)
    with pytest.raises(ModelImportError) as e:
        import_source(str(path), contained=False)
    text = str(e.value)
    assert len(e.value.problems) == 1 and "cut" in text and "Slice: its attributes or inputs cannot be read" in text
    assert "Traceback" not in text
