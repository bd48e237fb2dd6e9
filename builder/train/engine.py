"""Block Builder's training loop: one loop for the CLI, the app's Train panel and exported train.py files.

Its jobs live beside it: :mod:`.data` (datasets and batches), :mod:`.weights` (safetensors I/O),
:mod:`.checkpoints` (saving and resuming a run), :mod:`.evaluation` (a trained network's validation report).
They depend only on torch and safetensors (torchvision for image folders and CIFAR-10), so an exported project
ships them unchanged. Progress goes out as events (dicts); the CLI prints them as JSON lines. Runs on CUDA (AMP,
channels_last, cudnn.benchmark, optional torch.compile), Apple MPS or the CPU, and under torchrun with
DistributedDataParallel. The learning rate follows ``torch.optim.lr_scheduler.LambdaLR`` over the recipe's
warm-up and schedule, one step per batch (a resumed run continues at its step).
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import load_checkpoint, save_checkpoint
from .data import batches, load_dataset, prepare, skipped_warning
from .settings import (Config, DoneEvent, EpochEvent, ResumedEvent, SettingsError, StartEvent, StepEvent,
                       TrainingError)
from .weights import load_weights


# ----------------------------------------------------------------------------------------------- loss


def smoothed_targets(y, k, eps):
    """q'(k) = (1 - eps) * onehot(k) + eps / K."""
    return (1 - eps) * F.one_hot(y, k).float() + eps / k


def total_loss(outputs, y, weights, label_smoothing=0.0):
    """Main loss + sum of weight_i x aux loss_i; returns (total, main loss, [aux losses])."""
    if not isinstance(outputs, (tuple, list)):
        outputs = (outputs,)
    losses = [F.cross_entropy(o.float(), y, label_smoothing=label_smoothing) for o in outputs]
    total = losses[0]
    for w, l in zip(weights[1:], losses[1:]):
        total = total + w * l
    return total, losses[0], losses[1:]


# ----------------------------------------------------------------------------------------------- devices


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingError("--device mps was asked for, but this machine has no Apple GPU")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def freeze_blocks(model, blocks) -> int:
    """Stop training the parameters of the given blocks (module paths, a prefix covers what is inside); returns
    how many tensors were frozen. A name that matches no parameter is an error, not a silent no-op."""
    frozen = 0
    for block in blocks:
        hits = [p for n, p in model.named_parameters() if n == block or n.startswith(block + ".")]
        if not hits:
            raise SettingsError(f"--freeze {block}: no block with parameters has that name")
        for p in hits:
            p.requires_grad_(False)
        frozen += len(hits)
    return frozen


def make_optimizer(model, r):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:  # frozen blocks (fine-tuning) are not optimised
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": r["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    opt = r["optimizer"]
    if opt == "sgd":
        return torch.optim.SGD(groups, lr=r["lr"], momentum=r["momentum"], nesterov=r.get("nesterov", False))
    if opt == "rmsprop":
        return torch.optim.RMSprop(groups, lr=r["lr"], alpha=r["alpha"], eps=r["eps"], momentum=r["momentum"])
    if opt == "adam":
        return torch.optim.Adam(groups, lr=r["lr"])
    if opt == "adamw":
        return torch.optim.AdamW(groups, lr=r["lr"])
    raise TrainingError(f"unknown optimizer {opt!r}")


def lr_factor(r, step, steps_per_epoch, total_steps):
    """The recipe's learning-rate factor at ``step`` (the LambdaLR rule): warm-up, then step (x gamma every
    step_epochs), cosine or constant."""
    epoch = step / max(steps_per_epoch, 1)
    if r["warmup_epochs"] and epoch < r["warmup_epochs"]:
        return (epoch + 1 / max(steps_per_epoch, 1)) / r["warmup_epochs"]
    if r["schedule"] == "step":
        return r["gamma"] ** int(epoch // r["step_epochs"])
    if r["schedule"] == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return 1.0


_STOP = {"flag": False}


def _request_stop(*_):
    _STOP["flag"] = True


def evaluate(model, data, cfg, in_shape, device, channels_last, autocast, weights, world, rank):
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for x, y in batches(data, max(cfg.batch_size, 256), 0, cfg.seed, rank, world, shuffle=False,
                            workers=cfg.workers, pin=device.type == "cuda"):
            x = prepare(x, data, in_shape, device, channels_last)
            y = y.to(device)
            with autocast():
                out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    if world > 1:
        import torch.distributed as dist
        t = torch.tensor([loss_sum, correct, total], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        loss_sum, correct, total = t.tolist()
    model.train()
    return loss_sum / max(total, 1), correct / max(total, 1)


def train(model: nn.Module, cfg: Config, emit, loss_weights=None, in_shape=None) -> dict:
    """Train ``model``; ``emit(event_dict)`` receives progress. Returns the final metrics."""
    cfg.check()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device(cfg.device)
    own_group = False
    if world > 1:
        import torch.distributed as dist
        own_group = not dist.is_initialized()
        if own_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        result = _train(model, cfg, emit, loss_weights, in_shape, world, rank, device)
        if own_group:
            dist.barrier()  # every rank is done before the group goes
        return result
    finally:
        if own_group and dist.is_initialized():  # gloo aborts a process that exits with its threads alive
            dist.destroy_process_group()


def end_worker_process(code: int) -> None:
    """End a torchrun worker process (WORLD_SIZE > 1) once its run is over, without the interpreter's shutdown;
    in a single process this returns and the caller exits normally.

    Why (found from a core dump of rank 0's SIGABRT under load): DistributedDataParallel keeps a C++ reference
    to the process group, so ``destroy_process_group()`` cannot stop gloo's worker threads (4 threads before
    and after it once a DDP wrapper has existed, 1 after it without). A gloo thread frees a finished
    collective's work, and with it a tensor Python owns, which needs the GIL; if the main thread has already
    reached ``Py_FinalizeEx`` by then, taking the GIL ends the thread with a forced unwind through a noexcept
    frame, and the process aborts ("terminate called without an active exception"). Everything the run writes
    (checkpoints, events) is written atomically and flushed before this is called, so ending the process here
    loses nothing and Python's shutdown never runs beside torch's threads."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _train(model, cfg, emit, loss_weights, in_shape, world, rank, device):
    say = emit if rank == 0 else (lambda e: None)
    r = cfg.recipe_settings()
    torch.manual_seed(cfg.seed)
    in_shape = tuple(in_shape or getattr(model, "input_shapes", [None])[0] or ())
    if len(in_shape) != 3:
        raise TrainingError("the model needs one CxHxW input to train on images")
    weights = list(loss_weights or getattr(model, "loss_weights", None) or [1.0])
    if cfg.aux_weight is not None:
        weights = [weights[0]] + [cfg.aux_weight] * (len(weights) - 1)
    num_classes = _output_width(model, in_shape)
    train_data, val_data = load_dataset(cfg, in_shape, num_classes)
    if train_data.num_classes > num_classes:
        raise TrainingError(f"the dataset has {train_data.num_classes} classes but the network's output has "
                            f"{num_classes}: set the last layer's width to {train_data.num_classes}")
    per_rank = cfg.batch_size // world
    if per_rank < 1 or cfg.batch_size % world:
        raise TrainingError(f"--batch-size {cfg.batch_size} must be a multiple of the {world} processes")
    if len(train_data) < cfg.batch_size:
        raise TrainingError(f"the dataset has {len(train_data)} training images, fewer than one batch of "
                            f"{cfg.batch_size}")
    cuda = device.type == "cuda"
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype = None
    if cfg.amp and cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    if cfg.weights:
        load_weights(model, cfg.weights)
    freeze_blocks(model, cfg.freeze)
    optimizer = make_optimizer(model, r)
    out = Path(cfg.out)
    state = {"epoch": 0, "batch": 0, "step": 0, "best_val_accuracy": -1.0, "history": []}
    if cfg.resume:  # before anything is written: a checkpoint that cannot resume stays as it is
        state.update(load_checkpoint(out, "last", model, optimizer))
        model.to(device)
        say(ResumedEvent(epoch=state["epoch"], step=state["step"]))
    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    steps_per_epoch = len(train_data) // cfg.batch_size
    if cfg.resume and state["batch"] > steps_per_epoch:
        raise TrainingError(f"{out / 'last.json'}: the checkpoint is at batch {state['batch']:,} of an epoch, but an "
                            f"epoch here has {steps_per_epoch:,} batches: it is not a run of this dataset and batch "
                            "size")
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    for g in optimizer.param_groups:  # the recipe's rate, whatever a resumed optimizer was at
        g["initial_lr"] = r["lr"]
    schedule = torch.optim.lr_scheduler.LambdaLR(  # its first step sets the rate of the run's next step
        optimizer, lambda i: lr_factor(r, i, steps_per_epoch, total_steps), last_epoch=state["step"] - 1)
    say(StartEvent(device=str(device), amp=str(amp_dtype).replace("torch.", "") if amp_dtype else None,
                   channels_last=channels_last, world_size=world, dataset=train_data.name,
                   train_size=len(train_data), val_size=len(val_data), batch_size=cfg.batch_size,
                   epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                   recipe=cfg.recipe, settings=r, loss_weights=weights,
                   params=sum(p.numel() for p in model.parameters()),
                   trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                   weights=str(cfg.weights) if cfg.weights else None, frozen=list(cfg.freeze)))
    reported = 0  # images left out so far that a warning has named

    def warn_skipped():
        nonlocal reported
        warning = skipped_warning(train_data, reported)
        if warning:
            reported = warning["skipped_images"]
            say(warning)
    warn_skipped()
    _STOP["flag"] = False
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, _request_stop)
        except ValueError:  # not the main thread
            pass
    train_model.train()
    t_start = time.perf_counter()
    seen = 0
    stopped = False
    metrics = {}
    try:
        epoch = state["epoch"]
        while epoch < cfg.epochs and not stopped:
            t_epoch = time.perf_counter()
            run_loss = run_correct = run_n = 0.0
            for x, y in batches(train_data, cfg.batch_size, epoch, cfg.seed, rank, world, skip=state["batch"],
                                workers=cfg.workers, pin=cuda):
                step = state["step"]
                if cfg.max_steps and step >= cfg.max_steps:
                    stopped = True
                    break
                x = prepare(x, train_data, in_shape, device, channels_last)
                y = y.to(device, non_blocking=True)
                with autocast():
                    outputs = train_model(x)
                loss, main_loss, aux = total_loss(outputs, y, weights, r["label_smoothing"])
                if not torch.isfinite(loss):
                    raise TrainingError(f"the loss became {loss.item()} at step {step} (epoch {epoch + 1}); lower "
                                        f"the learning rate (now {optimizer.param_groups[0]['lr']:.3g}), add batch "
                                        "norm, or clip gradients")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if r["grad_clip"]:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), r["grad_clip"])
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                main = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
                correct = (main.argmax(1) == y).sum()
                packed = torch.stack([loss.detach().float(), main_loss.detach().float()]
                                     + [a.detach().float() for a in aux])
                if world > 1:  # report the global batch: the mean over ranks of equal shards
                    import torch.distributed as dist
                    packed = torch.cat([packed, correct.float().reshape(1)])
                    dist.all_reduce(packed)
                    correct = packed[-1]
                    packed = packed[:-1] / world
                loss_value = packed[0]
                main_loss, aux = packed[1], list(packed[2:])
                state["step"] += 1
                state["batch"] += 1
                seen += cfg.batch_size
                lv = loss_value.item()
                run_loss += lv * cfg.batch_size
                run_correct += correct.item()
                run_n += cfg.batch_size
                if state["step"] % cfg.log_every == 0 or state["step"] == 1 or state["batch"] == steps_per_epoch:
                    elapsed = time.perf_counter() - t_start
                    ips = seen / max(elapsed, 1e-9)
                    left = (total_steps - state["step"]) * cfg.batch_size / max(ips, 1e-9)
                    say(StepEvent(epoch=epoch + 1, step=state["step"], total_steps=total_steps, loss=lv,
                                  main_loss=main_loss.item(), aux_losses=[a.item() for a in aux],
                                  accuracy=run_correct / max(run_n, 1), lr=optimizer.param_groups[0]["lr"],
                                  images_per_s=ips, eta_s=left))
                if _STOP["flag"]:
                    stopped = True
                    break
            if stopped and state["batch"] < steps_per_epoch:
                break
            val_loss, val_acc = evaluate(model, val_data, cfg, in_shape, device, channels_last, autocast, weights,
                                         world, rank)
            epoch += 1
            metrics = {"epoch": epoch, "step": state["step"], "train_loss": run_loss / max(run_n, 1),
                       "train_accuracy": run_correct / max(run_n, 1), "val_loss": val_loss,
                       "val_accuracy": val_acc, "epoch_s": time.perf_counter() - t_epoch}
            state.update(epoch=epoch, batch=0)
            state["history"].append(metrics)
            say(EpochEvent(**metrics))
            warn_skipped()
            if rank == 0:
                improved = val_acc > state["best_val_accuracy"]
                if improved:  # recorded before 'last' is written, so a resumed run knows its best
                    state["best_val_accuracy"] = val_acc
                save_checkpoint(out, "last", model, optimizer, state)
                if improved:
                    save_checkpoint(out, "best", model, optimizer, state)
        if stopped and rank == 0:
            save_checkpoint(out, "last", model, optimizer, state)
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(f"CUDA ran out of memory with batch size {cfg.batch_size}; try --batch-size "
                            f"{max(cfg.batch_size // 2, 1)}") from None
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
    if not metrics:
        val_loss, val_acc = evaluate(model, val_data, cfg, in_shape, device, channels_last, autocast, weights,
                                     world, rank)
        metrics = {"epoch": state["epoch"], "step": state["step"], "val_loss": val_loss, "val_accuracy": val_acc}
    final = DoneEvent(stopped=stopped, **metrics, best_val_accuracy=max(state["best_val_accuracy"],
                                                                         metrics["val_accuracy"]),
                      seconds=time.perf_counter() - t_start,
                      images_per_s=seen / max(time.perf_counter() - t_start, 1e-9),
                      checkpoint=str(out / "last.safetensors"), device=str(device),
                      skipped_images=len(getattr(train_data, "skipped", [])))
    warn_skipped()
    say(final)
    return final


def _output_width(model, in_shape) -> int:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, *in_shape))
    model.train(was)
    out = out[0] if isinstance(out, (tuple, list)) else out
    if out.ndim != 2:
        raise TrainingError(f"the network's main output has shape {tuple(out.shape[1:])}; a classifier needs a "
                            "flat vector of class scores (add Flatten and Linear)")
    return out.shape[1]
