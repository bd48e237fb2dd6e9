import json
import subprocess
import sys


from builder.cli import main
from builder.core import project


def run(*args):
    return subprocess.run([sys.executable, "-m", "builder", *args], capture_output=True, text=True, timeout=300)


def test_new_then_info_json(tmp_path):
    f = tmp_path / "g.json"
    r = run("new", "googlenet", "-o", str(f))
    assert r.returncode == 0, r.stderr
    r = run("info", str(f), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["inference"] == {**doc["inference"], "params": 6_624_904, "macs": 1_498_376_192}
    assert doc["training"]["params"] == 13_004_888
    b = doc["blocks"][1]
    assert set(b) >= {"id", "kind", "output_shape", "params", "macs", "errors"}
    assert (b["id"], b["kind"], b["output_shape"]) == ("conv1", "basic_conv", [64, 112, 112])


def test_new_options(tmp_path, capsys):
    f = tmp_path / "v3.json"
    assert main(["new", "inception_v3", "-o", str(f), "--num-classes", "10", "--no-aux", "--input", "3x299x299"]) == 0
    g = project.load(f)
    assert "AuxLogits" not in g and g.block("fc").params["out_features"] == 10
    assert main(["new", "nope", "-o", str(f)]) == 2
    assert "unknown template" in capsys.readouterr().err


def test_info_table_and_input_override(tmp_path, capsys):
    f = tmp_path / "l.json"
    main(["new", "lenet5", "-o", str(f)])
    capsys.readouterr()
    assert main(["info", str(f), "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "c1" in out and "6x28x28" in out and "inference: 61,706 params" in out
    assert main(["info", str(f), "--input", "1x36x36", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["blocks"][1]["output_shape"] == [6, 32, 32]


def test_info_paper_table_formats(tmp_path, capsys):
    assert main(["info", "googlenet_paper", "--table", "paper", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("type,patch size/stride,output size,depth,#1x1")
    row = next(l for l in lines if l.startswith("inception (3a)"))
    assert row.split(",")[2:10] == ["28x28x256", "2", "64", "96", "128", "16", "32", "32"]
    assert main(["info", "googlenet_paper", "--table", "paper", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| inception (4e) |  | 14x14x832 | 2 | 256 | 160 | 320 | 32 | 128 | 128 |" in md


def test_info_on_a_broken_graph_exits_1_and_prints_errors(tmp_path, capsys):
    f = tmp_path / "bad.json"
    main(["new", "lenet5", "-o", str(f)])
    doc = json.loads(f.read_text())
    for b in doc["blocks"]:
        if b["id"] == "c3":
            b["params"]["kernel"] = [15, 15]
    f.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["info", str(f)]) == 1
    err = capsys.readouterr().err
    assert "c3" in err and "15x15" in err
    assert main(["info", str(f), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert next(b for b in out["blocks"] if b["id"] == "c3")["errors"]


def test_info_on_a_bad_file_names_it(tmp_path, capsys):
    f = tmp_path / "trunc.json"
    f.write_text('{"format": "block-builder-project", "version": 2, "blocks": [')
    assert main(["info", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "truncated" in err and "Traceback" not in err


def test_templates_lists_all_names(capsys):
    assert main(["templates", "--json"]) == 0
    names = [t["name"] for t in json.loads(capsys.readouterr().out)]
    for n in ("googlenet", "googlenet_paper", "inception_v3", "inception_v2", "lenet5", "alexnet", "vgg11", "vgg13",
              "vgg16", "vgg19", "nin", "resnet18", "resnet34", "resnet50"):
        assert n in names


def test_console_script_is_installed():
    import shutil
    exe = shutil.which("block-builder") or str(__import__("pathlib").Path(sys.executable).parent / "block-builder")
    r = subprocess.run([exe, "templates"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "googlenet" in r.stdout
