"""The architecture diff: blocks matched by structure, what changed, and totals equal to ``info`` B minus A."""
from __future__ import annotations

import json

import pytest

import templates
from builder.cli import main
from builder.core import project
from builder.insight import advisor, diff


def cli_json(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def info_totals(capsys, source):
    code, doc = cli_json(capsys, "info", source, "--json")
    return {m: doc[m] for m in ("inference", "training")}


def test_resnet34_against_resnet18_shows_the_blocks_each_stage_gained(capsys):
    d = diff.compare(templates.build("resnet18"), templates.build("resnet34"))
    assert [u.id for u in d.added] == ["layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3", "layer3.4",
                                       "layer3.5", "layer4.2"]
    assert d.removed == [] and d.changed == [] and d.wires == []
    # the first block of each later stage reads the block added before it, and is not reported as rewired
    assert d.pairs["layer2.0"] == "layer2.0" and len(d.pairs) == len(templates.build("resnet18"))
    assert d.added[0].n_params == 2 * (64 * 64 * 9 + 2 * 64)
    assert d.totals()["inference"]["params"] == 21_797_672 - 11_689_512
    # the per-block deltas add up to the totals (every block is in training)
    assert sum(u.n_params for u in d.added) == d.totals()["training"]["params"]
    assert sum(u.macs for u in d.added) == d.totals()["training"]["macs"]


def test_the_json_totals_equal_info_of_b_minus_info_of_a(capsys):
    for a, b in (("resnet18", "resnet34"), ("googlenet", "inception_v3"), ("vgg11", "alexnet")):
        code, doc = cli_json(capsys, "diff", a, b, "--json")
        assert code == 1 and not doc["same"]
        ta, tb = info_totals(capsys, a), info_totals(capsys, b)
        for mode in ("inference", "training"):
            assert doc["totals"][mode] == {k: tb[mode][k] - ta[mode][k] for k in tb[mode]}
            assert set(doc["totals"][mode]) == {"params", "macs", "flops", "activations", "activation_bytes",
                                                "param_bytes"}


def test_googlenet_against_inception_v3():
    d = diff.compare(templates.build("googlenet"), templates.build("inception_v3"))
    assert d.totals()["inference"]["params"] == 23_834_568 - 6_624_904
    assert d.totals()["training"]["params"] == 27_161_264 - 13_004_888
    assert d.totals()["inference"]["macs"] == 5_713_216_096 - 1_498_376_192
    by_a = {c.a: c for c in d.changed}
    stem = by_a["conv1"]  # the first convolution of each, matched although its id differs
    assert stem.b == "Conv2d_1a_3x3"
    assert stem.params == {"out_channels": (64, 32), "kernel": ([7, 7], [3, 3]), "padding": ([3, 3], [0, 0])}
    assert stem.shape == ((64, 112, 112), (32, 149, 149))
    assert stem.delta == {"params": (32 * 3 * 9 + 64) - (64 * 3 * 49 + 128),
                          "macs": 32 * 27 * 149 * 149 - 64 * 147 * 112 * 112,
                          "activation_bytes": 4 * (32 * 149 * 149 - 64 * 112 * 112)}
    assert by_a["input"].params == {"height": (224, 299), "width": (224, 299)}
    assert ("input", "Conv2d_1a_3x3", (3, 224, 224), (3, 299, 299)) in d.wires
    # GoogLeNet's nine Inception modules are not Inception-v3's: removed and added, not paired across kinds
    assert [u.id for u in d.removed if u.kind == "inception_v1"] == [
        "inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
        "inception5a", "inception5b"]
    assert [u.id for u in d.added][:3] == ["Conv2d_3b_1x1", "Conv2d_4a_3x3", "Mixed_5b"]
    assert ("aux1_out", "aux_out", "", "") in d.renamed


def test_a_template_against_its_refactored_version():
    g = templates.build("lenet5")
    h = g.copy()
    r = next(r for r in advisor.refactors(advisor.check(h)) if r.code == "factorize_nxn" and r.block == "c3")
    p = advisor.preview(h, r)
    advisor.apply(h, r)
    d = diff.compare(g, h)
    assert [u.id for u in d.added] == ["c3_5x1"] and d.removed == []
    [c] = d.changed
    assert (c.a, c.b) == ("c3", "c3")
    assert c.params == {"out_channels": (16, 6), "kernel": ([5, 5], [1, 5])}
    assert c.shape == ((16, 10, 10), (6, 14, 10))
    assert d.totals()["inference"]["macs"] == p.after_macs - p.before_macs == -166_800
    assert c.delta["macs"] + d.added[0].macs == -166_800

    g = templates.build("googlenet")
    h = g.copy()
    r = next(r for r in advisor.refactors(advisor.check(h)) if r.code == "efficient_reduction")
    advisor.apply(h, r)
    d = diff.compare(g, h)
    assert [u.id for u in d.removed] == ["conv3", "maxpool2"]
    assert [(u.id, u.kind, u.shape) for u in d.added] == [("conv3_reduction", "grid_reduction", (192, 28, 28))]
    assert d.changed == []  # inception3a reads the reduction where it read the pool: through what was replaced


def test_a_network_against_itself_or_renamed_or_moved_shows_no_change():
    for name in templates.TEMPLATES:
        g = templates.build(name)
        d = diff.compare(g, g.copy())
        assert d.same and not d.renamed and d.totals()["training"] == dict.fromkeys(d.totals()["training"], 0), name
    g = templates.build("resnet18")
    h = g.copy()
    h.rename("conv1", "stem")
    h.set_label("fc", "classifier")
    h.move("layer2.0", (900.0, -40.0))
    d = diff.compare(g, h)
    assert d.same and d.summary() == "no change (2 renamed)"
    assert d.renamed == [("conv1", "stem", "", ""), ("fc", "fc", "", "classifier")]


def test_a_changed_width_is_reported_with_the_shapes_on_its_wires():
    g = templates.build("vgg11")
    h = g.copy()
    h.set_params("features.0", {"out_channels": 32})
    d = diff.compare(g, h)
    assert [(c.a, c.params) for c in d.changed][:1] == [("features.0", {"out_channels": (64, 32)})]
    assert [c.a for c in d.changed] == ["features.0", "features.1", "features.2", "features.3"]
    assert d.changed[1].shape == ((64, 224, 224), (32, 224, 224)) and not d.changed[1].params
    assert d.changed[3].in_shapes == (((64, 112, 112),), ((32, 112, 112),)) and d.changed[3].shape is None
    assert d.wires[:3] == [("features.0", "features.1", (64, 224, 224), (32, 224, 224)),
                           ("features.1", "features.2", (64, 224, 224), (32, 224, 224)),
                           ("features.2", "features.3", (64, 112, 112), (32, 112, 112))]
    assert d.totals()["inference"]["params"] == (32 * 27 + 32 + 128 * 32 * 9) - (64 * 27 + 64 + 128 * 64 * 9)


def test_the_layer_level_compares_every_layer_of_the_lowered_networks():
    d = diff.compare(templates.build("resnet18"), templates.build("resnet34"), "layers")
    assert len(d.added) == 8 * 7 and d.removed == [] and d.changed == []
    assert [u.id for u in d.added][:7] == [f"layer1.2.{n}" for n in ("conv1", "bn1", "relu", "conv2", "bn2", "add",
                                                                     "relu_out")]
    marks = d.status()
    assert marks["b"]["layer1.2"] == "added" and marks["b"]["layer1.1"] == "same"
    assert d.totals() == diff.compare(templates.build("resnet18"), templates.build("resnet34")).totals()


def test_a_network_against_its_own_export_reimported(tmp_path, monkeypatch, capsys):
    # ONNX: the inference network, re-imported with its composites recovered
    assert main(["export", "resnet18", "--format", "onnx", "-o", str(tmp_path / "r18.onnx")]) == 0
    code, doc = cli_json(capsys, "diff", "resnet18", str(tmp_path / "r18.onnx"), "--json")
    assert (code, doc["same"], doc["summary"]) == (0, True, "no change")
    # the exported PyTorch code, imported as a module: its classes are groups with the same layers inside
    for name in ("resnet18", "lenet5"):
        assert main(["export", name, "--format", "py", "-o", str(tmp_path / f"{name}_net.py")]) == 0
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, size in (("resnet18", "3x224x224"), ("lenet5", "1x32x32")):
        code, doc = cli_json(capsys, "diff", name, f"{name}_net:build_model", "--json", "--input", size)
        assert (code, doc["same"]) == (0, True), doc["summary"]
    code, doc = cli_json(capsys, "diff", "resnet34", "resnet18_net:build_model", "--json")
    assert code == 1 and len(doc["removed"]) == 8


def test_runs_and_project_files_are_compared_too(tmp_path, capsys):
    from builder.runs import RunRecorder
    g = templates.build("lenet5")
    project.save(g, tmp_path / "a.json")
    h = g.copy()
    h.set_params("c1", {"out_channels": 8})
    rec = RunRecorder(tmp_path / "run1", h, {"recipe": "test"}, {})
    rec.write()
    code, doc = cli_json(capsys, "diff", str(tmp_path / "a.json"), str(tmp_path / "run1"), "--json")
    assert code == 1 and doc["changed"][0]["params"] == {"out_channels": {"a": 6, "b": 8}}


@pytest.mark.parametrize("args, message", [
    (["resnet18", "resnet-18"], "'resnet-18' is neither a file nor a template"),
    (["missing.json", "resnet18"], "missing.json: no such file"),
    (["torchvision:nonet", "resnet18"], "torchvision has no classification model of that name"),
    (["resnet18", "."], "a folder without a run record"),
])
def test_bad_input_gets_one_message_and_status_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["diff", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("error: ")


def test_broken_project_file_is_named(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"format": ', encoding="utf-8")
    assert main(["diff", str(tmp_path / "bad.json"), "resnet18"]) == 2
    assert f"{tmp_path / 'bad.json'}: not valid JSON" in capsys.readouterr().err


def test_text_output_names_what_changed(capsys):
    assert main(["diff", "resnet18", "resnet34"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "ResNet-18 -> ResNet-34 (blocks): 8 added, 0 removed, 0 changed"
    assert "  + layer3.5  resnet_basic  -> 256x14x14  +1.18M params, +231M MACs, +1.34 MiB activations" in out
    assert "inference: params 11.7M -> 21.8M (+10,108,160), MACs 1.81G -> 3.66G (+1,849,688,064)" in out


def test_an_expanded_and_factorised_design_is_compared_layer_by_layer():
    g = templates.build("googlenet_paper")
    h = g.copy()
    done, before, after = advisor.apply_all(h, ("factorize_5x5",))
    assert len(done) == 9
    blocks = diff.compare(g, h)
    assert blocks.expanded() == ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                                 "inception4d", "inception4e", "inception5a", "inception5b"]
    d = diff.compare(g, h, "layers")
    assert [c.a for c in d.changed] == [f"{m}.branch3.1" for m in blocks.expanded()]
    assert len(d.added) == 9 and d.removed == []
    assert d.changed[0].params == {"out_channels": (32, 16), "kernel": ([5, 5], [3, 3]), "padding": ([2, 2], [1, 1])}
    # what changed inside adds up to the totals, which are what the refactors saved
    assert sum(c.delta["macs"] for c in d.changed) + sum(u.macs for u in d.added) == \
        d.totals()["inference"]["macs"] == after.inference.macs - before.inference.macs
    assert sum(c.delta["params"] for c in d.changed) + sum(u.n_params for u in d.added) == \
        d.totals()["training"]["params"]
