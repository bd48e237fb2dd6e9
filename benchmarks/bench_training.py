"""Training figures.

1. LeNet-5 on the real Fashion-MNIST (60k train, the official 10k test set as validation), CPU, through the CLI:
   accuracy and the time it took (target >= 85%).
2. With a CUDA GPU: GoogLeNet and Inception-v3 training images/s through the trainer (AMP + channels_last)
   against torchvision's model in a plain fp32 loop, in the same run (target >= 2x). Without one, says so.
Run: .venv/bin/python -m benchmarks training
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from .common import report


def lenet_fashion_mnist(epochs: int = 3):
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "builder", "train", "lenet5", "--dataset", "fashion-mnist",
                            "--epochs", str(epochs), "--batch-size", "128", "--device", "cpu", "--out", out,
                            "--json", "--log-every", "1000"], capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t
    events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not events or events[-1]["event"] != "done":
        return {"lenet5_error": (events[-1] if events else r.stderr[-500:])}
    done = events[-1]
    return {"lenet5_fashion_mnist_test_accuracy": done["val_accuracy"], "lenet5_epochs": epochs,
            "lenet5_train_seconds": done["seconds"], "lenet5_wall_seconds_with_startup": wall,
            "lenet5_images_per_s": done["images_per_s"]}


def gpu_throughput(steps: int = 30, batch: int = 128):
    import torch
    if not torch.cuda.is_available():
        return {"gpu": "no CUDA GPU on this machine: GPU throughput not measured"}
    import torchvision

    import templates
    from builder.backend.compiler import compile_graph
    from builder.train.settings import Config
    from builder.train.engine import train

    figures = {"gpu": torch.cuda.get_device_name(0)}
    for name, make, size in (("googlenet", torchvision.models.googlenet, 224),
                             ("inception_v3", torchvision.models.inception_v3, 299)):
        model = compile_graph(templates.build(name, input_size=(3, size, size)))
        events = []
        with tempfile.TemporaryDirectory() as out:
            train(model, Config(dataset="synthetic", synthetic_size=batch * (steps + 5), batch_size=batch,
                                max_steps=steps, device="cuda", out=out, log_every=steps, workers=0,
                                recipe="sgd"), events.append)
        ours = [e for e in events if e["event"] == "done"][0]["images_per_s"]
        ref = make(weights=None, aux_logits=True, init_weights=True).cuda().train()
        opt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, 3, size, size, device="cuda")
        y = torch.randint(0, 1000, (batch,), device="cuda")
        for i in range(steps + 3):
            if i == 3:
                torch.cuda.synchronize()
                t = time.perf_counter()
            out = ref(x)
            logits = out[0]
            loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        plain = steps * batch / (time.perf_counter() - t)
        figures.update({f"{name}_trainer_amp_channels_last_img_s": ours, f"{name}_torchvision_fp32_img_s": plain,
                        f"{name}_speedup": ours / plain})
    figures["target_speedup"] = 2.0
    return figures


def run():
    figures = {}
    figures.update(lenet_fashion_mnist())
    figures.update(gpu_throughput())
    return report("training", figures)


if __name__ == "__main__":
    run()
