"""Hostile ONNX files: a small valid network (Conv, Relu) with one thing broken in each (issue 23's cases)."""
import numpy as np
from onnx import helper, TensorProto, numpy_helper

def conv_model(w=None, attrs=None, in_dims=(1, 3, 8, 8), extra_nodes=(), extra_inits=(), opset=17, out="y",
               node_name="/conv/Conv"):
    w = w if w is not None else numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "W")
    nodes = [helper.make_node("Conv", ["x", w.name], ["c"], name=node_name, **(attrs or {"kernel_shape": [3, 3]})),
             helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu")] + list(extra_nodes)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims))],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["a", "b", "c", "d"])], [w] + list(extra_inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])

def raw(dims, data, dtype=TensorProto.FLOAT, name="W"):
    t = TensorProto(); t.name = name; t.data_type = dtype; t.dims.extend(dims); t.raw_data = data
    return t

def cases() -> dict:
    """name -> the bytes of an ONNX file made to break an importer (each valid enough for onnx.load)."""
    ok = np.ones((4, 3, 3, 3), np.float32).tobytes()
    c = {}
    c["raw_data_long"] = conv_model(raw((4, 3, 3, 3), ok + b"\0" * 8), out="r")
    c["raw_data_short"] = conv_model(raw((4, 3, 3, 3), ok[:-8]), out="r")
    c["data_type_999"] = conv_model(raw((4, 3, 3, 3), ok, dtype=999), out="r")
    c["bfloat16"] = conv_model(raw((4, 3, 3, 3), b"\0\0" * 108, dtype=TensorProto.BFLOAT16), out="r")
    s = TensorProto(); s.name = "W"; s.data_type = TensorProto.STRING; s.dims.extend([4, 3, 3, 3]); s.string_data.extend([b"a"] * 108)
    c["string_weights"] = conv_model(s, out="r")
    c["kernel_disagrees"] = conv_model(attrs={"kernel_shape": [5, 5]}, out="r")
    c["negative_H"] = conv_model(in_dims=(1, 3, -5, 8), out="r")
    c["huge_input"] = conv_model(in_dims=(1, 3, 100000, 100000), out="r")
    # Reshape to 2^40 elements
    shp = numpy_helper.from_array(np.array([1, 1 << 20, 1 << 10, 1 << 10], np.int64), "shp")
    c["reshape_huge"] = conv_model(extra_nodes=[helper.make_node("Reshape", ["r", "shp"], ["y"], name="/reshape/Reshape")], extra_inits=[shp])
    shpf = numpy_helper.from_array(np.array([1, -1], np.float32), "shpf")
    c["reshape_float_shape"] = conv_model(extra_nodes=[helper.make_node("Reshape", ["r", "shpf"], ["y"], name="/reshape/Reshape")], extra_inits=[shpf])
    idx = numpy_helper.from_array(np.array(7, np.int64), "idx")
    c["gather_out_of_range"] = conv_model(extra_nodes=[helper.make_node("Shape", ["r"], ["s"], name="/s/Shape"),
        helper.make_node("Gather", ["s", "idx"], ["g"], name="/g/Gather"),
        helper.make_node("Unsqueeze", ["g", "ax"], ["gu"], name="/u/Unsqueeze"),
        helper.make_node("Concat", ["gu", "m1"], ["shape2"], axis=0, name="/cat/Concat"),
        helper.make_node("Reshape", ["r", "shape2"], ["y"], name="/reshape/Reshape")],
        extra_inits=[idx, numpy_helper.from_array(np.array([0], np.int64), "ax"), numpy_helper.from_array(np.array([-1], np.int64), "m1")])
    c["concat_bad_axis"] = conv_model(extra_nodes=[helper.make_node("Concat", ["r", "r"], ["y"], axis=7, name="/cat/Concat")])
    c["concat_ranks"] = conv_model(extra_nodes=[helper.make_node("Flatten", ["r"], ["f"], name="/f/Flatten"), helper.make_node("Concat", ["r", "f"], ["y"], axis=1, name="/cat/Concat")])
    c["cast_unknown"] = conv_model(extra_nodes=[helper.make_node("Cast", ["r"], ["y"], to=77, name="/cast/Cast")])
    c["unsqueeze_bad_axes"] = conv_model(extra_nodes=[helper.make_node("Unsqueeze", ["r", "axb"], ["y"], name="/u/Unsqueeze")], extra_inits=[numpy_helper.from_array(np.array([9], np.int64), "axb")])
    c["squeeze_no_axes"] = conv_model(extra_nodes=[helper.make_node("Squeeze", ["r"], ["y"], name="/sq/Squeeze")])
    c["clip_two_min"] = conv_model(extra_nodes=[helper.make_node("Clip", ["r", "mn", "mx"], ["y"], name="/clip/Clip")], extra_inits=[numpy_helper.from_array(np.array([0, 1], np.float32), "mn"), numpy_helper.from_array(np.array(6, np.float32), "mx")])
    c = {k: v.SerializeToString() for k, v in c.items()}
    c["non_utf8_name"] = conv_model(out="r").SerializeToString().replace(b"/conv/Conv", b"/conv/\xff\xfeCv")
    return c
