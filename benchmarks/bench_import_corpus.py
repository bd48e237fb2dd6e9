"""Importing CNNs from outside torchvision (issue 24): 42 timm models across families (pretrained=False, batch
norm statistics randomised), through both paths.

PyTorch path (``import_module``): whether it imports, its time against torch.fx's trace of the same model (the
reference, same run), its layers and the share of them captured whole (no kind stands for them), whether params and
MACs equal timm's (FlopCounterMode / 2), and the largest difference of the compiled network's output from timm's,
relative to the output's largest magnitude.

ONNX path (``import_onnx`` of torch.onnx's export of the model, opset 17): whether it imports, and the same
difference against onnxruntime's output of that file.

Run: .venv/bin/python -m benchmarks import_corpus   (about 10 minutes on 2 cores)
"""
from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

MODELS = ["resnet18", "resnet50d", "seresnet50", "skresnet18", "res2net50_26w_4s", "regnetx_002", "regnety_002",
          "rexnet_100", "ghostnet_100", "mobilenetv3_small_100", "mobilenetv3_large_100", "mobilenetv4_conv_small",
          "efficientnet_b0", "efficientnetv2_rw_t", "tf_efficientnet_b0", "tf_efficientnetv2_b0", "mixnet_s",
          "tf_mixnet_s", "lcnet_050", "dla34", "dpn68", "hrnet_w18_small", "cspresnet50", "cspdarknet53",
          "vovnet39a", "ese_vovnet19b_dw", "densenet121", "inception_v3", "inception_v4", "inception_resnet_v2",
          "xception41", "legacy_xception", "vgg11", "vgg11_bn", "repvgg_a0", "convnext_atto", "convnext_nano",
          "selecsls42b", "resnext26ts", "gernet_s", "hardcorenas_a", "tinynet_a"]
SIZE = 160  # every model at one input size, so the times compare


def _model(name):
    import timm
    import torch
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False)
    with torch.no_grad():
        for key, b in m.named_buffers():
            if key.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif key.endswith("running_mean"):
                b.normal_(0, 0.2)
    return m.eval()


def _difference(got, want) -> float:
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))


def _torch_path(name, model, x) -> dict:
    import torch
    import torch.fx as fx
    from torch.utils.flop_counter import FlopCounterMode

    from blocks import REGISTRY
    from builder.backend.compiler import compile_graph
    from builder.core.analysis import analyze
    from builder.core.errors import ModelImportError
    from builder.core.ir import lower
    from builder.importers import import_module
    t = time.perf_counter()
    try:
        fx.symbolic_trace(model)
        trace = time.perf_counter() - t
    except Exception:  # noqa: BLE001  fx cannot trace the whole model: no reference
        trace = None
    t = time.perf_counter()
    try:
        imported = import_module(model, (3, SIZE, SIZE), name)
    except ModelImportError as e:
        return {"ok": False, "why": str(e).splitlines()[0][:200]}
    took = time.perf_counter() - t
    a = analyze(imported.graph)
    layers = [n for n in lower(imported.graph, a).nodes if n.kind not in ("input", "output")]
    captured = sum(1 for n in layers if n.kind == REGISTRY.capture_kind())
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            model(x[:1])
    with torch.no_grad():
        want = model(x)
    net = compile_graph(imported.graph, a).eval()
    net.load_state_dict(imported.state)
    with torch.no_grad():
        got = net(x)
    return {"ok": True, "s": took, "vs_fx_trace": took / trace if trace else None, "layers": len(layers),
            "captured": captured, "captured_share": captured / len(layers),
            "params_equal": a.inference.params == sum(p.numel() for p in model.parameters()),
            "macs_equal": a.inference.macs == fc.get_total_flops() // 2, "difference": _difference(got, want)}


def _onnx_path(name, model, x, folder: Path) -> dict:
    import onnxruntime as ort
    import torch

    from builder.backend.compiler import compile_graph
    from builder.core.errors import ModelImportError
    from builder.importers.onnx_model import import_onnx
    f = folder / f"{name}.onnx"
    try:
        torch.onnx.export(model, x[:1], str(f), opset_version=17, dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    except Exception as e:  # noqa: BLE001  torch's exporter cannot write it: not the importer's failure
        return {"ok": None, "why": f"torch.onnx.export: {type(e).__name__}"}
    t = time.perf_counter()
    try:
        imported = import_onnx(f, (3, SIZE, SIZE))
    except ModelImportError as e:
        return {"ok": False, "why": "; ".join(str(p) for p in e.problems[:3])[:300]}
    took = time.perf_counter() - t
    net = compile_graph(imported.graph).eval()
    net.load_state_dict(imported.state)
    want = torch.from_numpy(ort.InferenceSession(str(f)).run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        got = net(x)
    return {"ok": True, "s": took, "blocks": len(imported.graph), "difference": _difference(got, want)}


def run():
    import torch

    from .common import report
    figures: dict = {}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            model = _model(name)
            x = torch.randn(2, 3, SIZE, SIZE)
            pt = _torch_path(name, model, x)
            ox = _onnx_path(name, model, x, Path(folder))
            rows.append((name, pt, ox))
            print(name, pt, ox, flush=True)
            for k, v in pt.items():
                figures[f"{name}_torch_{k}"] = v
            for k, v in ox.items():
                figures[f"{name}_onnx_{k}"] = v
            del model
            gc.collect()
    ok = [r for r in rows if r[1]["ok"]]
    figures["torch_imported"] = f"{len(ok)} of {len(rows)}"
    figures["torch_exact_1e-5"] = sum(1 for r in ok if r[1]["difference"] <= 1e-5 and r[1]["params_equal"]
                                      and r[1]["macs_equal"])
    figures["torch_captured_share_median"] = sorted(r[1]["captured_share"] for r in ok)[len(ok) // 2] if ok else None
    figures["torch_slowest_s"] = max((r[1]["s"] for r in ok), default=None)
    ook = [r for r in rows if r[2]["ok"]]
    figures["onnx_imported"] = f"{len(ook)} of {sum(1 for r in rows if r[2]['ok'] is not None)}"
    figures["onnx_exact_1e-4"] = sum(1 for r in ook if r[2]["difference"] <= 1e-4)
    return report("import_corpus", figures)


if __name__ == "__main__":
    run()
