"""ONNX files made to break the importer: each is refused with one message naming the tensor or node and the
problem, or (where the file is valid) imported correctly; a seeded fuzzer of corrupted files finds no traceback."""
from __future__ import annotations

import pytest

from builder.core.errors import ModelImportError
from builder.importers import import_source
from fuzz_imports import fuzz_onnx
from onnx_cases import cases

EXPECTED = {
    "raw_data_long": "weight W: holds 440 bytes of data where its dims [4, 3, 3, 3] need 432",
    "raw_data_short": "raw_data size (424 bytes) is too small",
    "data_type_999": "weight W: element type 999 is not supported",
    "bfloat16": "weight W: element type BFLOAT16 is not supported",
    "string_weights": "weight W: element type STRING is not supported",
    "kernel_disagrees": "Conv: kernel_shape [5, 5] disagrees with its weight's [3, 3]",
    "negative_H": "input x: shape [1, 3, -5, 8] is not N x C x H x W",
    "huge_input": "input x: shape [1, 3, 100000, 100000]: input: height: 100000 is above the maximum 16384",
    "reshape_huge": "reshape to [1, 1048576, 1024, 1024]",
    "reshape_float_shape": "Reshape: its shape is not a constant of integers (float32)",
    "gather_out_of_range": "Gather: cannot be computed from its constant inputs (IndexError: index 7 is out of bounds",
    "concat_bad_axis": "Concat: concat along axis 7",
    "concat_ranks": "Concat inputs have different ranks",
    "cast_unknown": "Cast: no block kind for this operator",
    "unsqueeze_bad_axes": "Unsqueeze: unsqueeze of axes [9], out of range for 5 dims",
    "squeeze_no_axes": "Squeeze: squeeze without axes (of a batch of one it would drop the batch dimension)",
    "clip_two_min": "Clip: its min is not one number (shape [2], float32)",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_onnx")
    out = {}
    for name, data in cases().items():
        (folder / f"{name}.onnx").write_bytes(data)
        out[name] = folder / f"{name}.onnx"
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_hostile_file_is_refused_with_one_message(files, name):
    with pytest.raises(ModelImportError) as e:
        import_source(str(files[name]), contained=False)
    text = str(e.value)
    assert text.startswith(f"{files[name]} cannot be imported") and EXPECTED[name] in text, text
    assert "Traceback" not in text


def test_a_node_name_that_is_not_utf8_is_read_with_a_replacement_character(files):
    imported = import_source(str(files["non_utf8_name"]), contained=False)
    assert [b.type for b in imported.graph.blocks()] == ["input", "conv2d", "relu", "output"]
    assert imported.state["conv.weight"].shape == (4, 3, 3, 3)


def test_the_cli_exits_2_with_one_line(files, capsys, tmp_path):
    from builder.cli import main
    assert main(["import", str(files["bfloat16"]), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "element type BFLOAT16 is not supported" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_corrupted_files_never_raise_anything_but_a_message(tmp_path):
    """Seeded and bounded (tests/fuzz_imports.py; ``python -m tests.fuzz_imports`` runs thousands): bytes of valid
    files flipped, cut and repeated; each import either works or is one ModelImportError."""
    seen = fuzz_onnx(300, tmp_path, seed=23)
    assert seen["refused"] > 100 and sum(seen.values()) == 300
