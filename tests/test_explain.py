"""Explanations against captum called directly on the same torch module and the same prepared image; the command
line's files and its one-message refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GuidedGradCam, IntegratedGradients, LayerGradCam, Occlusion, Saliency

from builder.backend.compiler import compile_graph
from builder.cli import main as cli
from builder.core import edits
from builder.train.explain import explain, spatial_blocks
from builder.train.samples import sample
from builder.train.weights import save_tensors
from builder.core.analysis import analyze
from templates import build

IMAGE = ("dataset", "fashion-mnist", 12)


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(3)
    g = build("lenet5")
    model = compile_graph(g).eval()
    with torch.no_grad():  # weights that are not the initial ones, so the gradients mean something
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return g, model, {k: v.clone() for k, v in model.state_dict().items()}


def prepared(g):
    return sample(IMAGE, analyze(g).blocks["input"].out_shape)


def test_gradcam_is_captums_on_the_same_module(lenet):
    g, model, sd = lenet
    e = explain(g, sd, IMAGE, "gradcam", block="c3")
    x = prepared(g).x
    want = LayerGradCam(model, model.c3).attribute(x, target=e.predicted, relu_attributions=True)[0, 0]
    assert e.attribution.shape == (10, 10) and e.attribution.dtype == np.float32
    np.testing.assert_allclose(e.attribution, want.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert e.predicted == int(model(x).argmax()) and e.target == e.predicted
    assert e.heat.shape == (32, 32) and 0 <= e.heat.min() and e.heat.max() <= 1


def test_saliency_guided_gradcam_ig_and_occlusion_are_captums(lenet):
    g, model, sd = lenet
    x = prepared(g).x
    target = 4
    want = {
        "saliency": Saliency(model).attribute(x.clone().requires_grad_(), target=target, abs=True),
        "guided-gradcam": GuidedGradCam(model, model.c3_act).attribute(x.clone().requires_grad_(), target=target),
        "integrated-gradients": IntegratedGradients(model).attribute(
            x.clone().requires_grad_(), baselines=torch.zeros_like(x), target=target, n_steps=50,
            internal_batch_size=16),
        "occlusion": Occlusion(model).attribute(x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0,
                                                target=target),
    }
    for method, ref in want.items():
        e = explain(g, sd, IMAGE, method, block="c3_act", target=target)
        assert e.attribution.shape == (1, 32, 32), method
        np.testing.assert_allclose(e.attribution, ref[0].detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=method)
        assert (e.block == "c3_act") == (method == "guided-gradcam")


def test_every_block_can_be_watched_a_merge_and_a_composite_too():
    torch.manual_seed(0)
    g = build("resnet18", input_size=64, num_classes=10)
    edits.expand(g, "layer1.0")
    sd = compile_graph(g).state_dict()
    a = analyze(g)
    assert "layer1.0.add" in spatial_blocks(g, a)
    for block in ("layer1.0.add", "layer2.0", "maxpool"):
        e = explain(g, sd, ("random",), "gradcam", block=block, target=1)
        assert e.attribution.shape == tuple(a.blocks[block].out_shape[1:])
        assert np.isfinite(e.attribution).all()


def test_the_default_block_is_the_last_map_that_places_anything(lenet):
    g, _, sd = lenet
    assert explain(g, sd, IMAGE, "gradcam").block == "s4"  # c5 and c5_act are 120 x 1 x 1


def test_weights_that_do_not_fit_name_the_blocks(lenet):
    g, _, sd = lenet
    other = build("lenet5", num_classes=5)
    with pytest.raises(Exception, match=r"blocks that differ: output_fc\).*output_fc.weight has shape"):
        explain(other, sd, IMAGE, "saliency")


def test_cli_writes_the_overlay_and_the_raw_attribution(lenet, tmp_path, capsys):
    g, model, sd = lenet
    save_tensors(sd, tmp_path / "w.safetensors")
    png, npy = tmp_path / "e.png", tmp_path / "e.npy"
    assert cli(["explain", "lenet5", "--weights", str(tmp_path / "w.safetensors"), "--index", "12", "--method",
                "gradcam", "--block", "c3", "-o", str(png), "--npy", str(npy)]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist validation image 12" in out and f"wrote {png}" in out
    raw = np.load(npy)
    x = prepared(g).x
    pred = int(model(x).argmax())
    want = LayerGradCam(model, model.c3).attribute(x, target=pred, relu_attributions=True)[0, 0]
    np.testing.assert_allclose(raw, want.detach().numpy(), rtol=1e-5, atol=1e-7)
    from PIL import Image
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width >= 256
    assert cli(["explain", "lenet5", "--weights", str(tmp_path / "w.safetensors"), "--method", "saliency",
                "--index", "12", "--target", "Bag", "-o", str(png), "--npy", str(npy)]) == 0
    assert np.load(npy).shape == (1, 32, 32)


@pytest.mark.parametrize("args, message", [
    (["--index", "10000"], "fashion-mnist has 10,000 validation images: choose 0 to 9,999"),
    (["--block", "f6"], "--block f6: its output 84 is not a C x H x W map"),
    (["--block", "nowhere"], "--block nowhere: no such block"),
    (["--target", "11"], "--target 11: the network has 10 classes"),
    (["--target", "Spaceship"], "--target Spaceship: not a class of fashion-mnist"),
])
def test_cli_refuses_with_one_message(lenet, tmp_path, capsys, args, message):
    _, _, sd = lenet
    save_tensors(sd, tmp_path / "w.safetensors")
    png = tmp_path / "e.png"
    assert cli(["explain", "lenet5", "--weights", str(tmp_path / "w.safetensors"), "-o", str(png), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not png.exists()


def test_cli_refuses_weights_of_another_network(lenet, tmp_path, capsys):
    _, _, sd = lenet
    save_tensors(sd, tmp_path / "w.safetensors")
    assert cli(["explain", "alexnet", "--weights", str(tmp_path / "w.safetensors"), "-o",
                str(tmp_path / "e.png")]) == 2
    assert "the weights do not fit this network (blocks that differ:" in capsys.readouterr().err
