"""Train any registry model on CIFAR: ``python -m wsms_viz.train --model wsms_resnet20 ...``

Recipes (``--recipe``):

* ``paper``: section 4.2 of the WSMS paper, after He et al.: momentum SGD 0.9, batch
  128, weight decay 1e-4, 164 epochs; lr 0.01 for the first epoch (warm-up), then 0.1,
  divided by 10 at epochs 82 and 123.
* ``short`` (default): for CPU budgets. 30 epochs, one linear warm-up epoch, cosine
  decay to zero, Nesterov momentum 0.9, weight decay 5e-4. A step schedule spends most
  of a short run at a learning rate it is about to leave; cosine decays all the way
  within the budget, and the stronger weight decay makes up for the regularisation
  that 164 epochs of a high learning rate would give. Same batch, same augmentation.

Any field can be overridden (``--epochs 10 --lr 0.05``). Uses CUDA when present (bf16
autocast, channels_last, the whole dataset kept on the GPU), else the CPU (fp32, or bf16
autocast with ``--precision bf16``: faster on CPUs with native bf16 such as AVX512-BF16
or AMX, about 10x slower without them, and the trainer warns; weights, BatchNorm and
the loss stay fp32). Launched
with ``torchrun --nproc_per_node=N`` it trains data-parallel (NCCL on GPUs, gloo on
CPUs); only rank 0 writes files.

The run directory (``--out``) gets ``log.tsv`` (one row per epoch), ``resume.pt``
(after every epoch and on Ctrl-C/SIGTERM; loaded only with ``weights_only=True``) and,
at the end, ``model.safetensors`` + ``card.json``. Every file is written to a temporary
name and renamed. ``--resume`` continues from ``resume.pt`` to the same final weights
an uninterrupted run reaches (on the same device and thread count).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from . import __version__
from .checkpoint import atomic_write_bytes, save_checkpoint
from .data import DEFAULT_CACHE, Augmenter, load_dataset, to_model_input
from .evaluation.metrics import DEFAULT_ZOOMS, accuracy_vs_zoom
from .models import create_model, model_config


@dataclass
class Recipe:
    epochs: int = 30
    batch_size: int = 128  # global, split across ranks
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" or "step"
    milestones: tuple[float, ...] = ()  # fractions of the run where a step schedule divides lr by 10
    warmup_epochs: float = 1.0
    warmup: str = "linear"  # "linear" from lr/10 up, or "constant" at lr/10
    scale_jitter: tuple[float, float] | None = None
    jitter_p: float = 0.5


RECIPES = {
    "short": Recipe(),
    "paper": Recipe(epochs=164, nesterov=False, weight_decay=1e-4, schedule="step",
                    milestones=(82 / 164, 123 / 164), warmup_epochs=1, warmup="constant"),
}


def learning_rate(r: Recipe, step: int, steps_per_epoch: int) -> float:
    epoch = step / steps_per_epoch
    if epoch < r.warmup_epochs:
        if r.warmup == "constant":
            return r.lr / 10
        return r.lr / 10 + (r.lr - r.lr / 10) * epoch / r.warmup_epochs
    if r.schedule == "step":
        return r.lr * 0.1 ** sum(epoch >= m * r.epochs for m in r.milestones)
    progress = (epoch - r.warmup_epochs) / max(1e-9, r.epochs - r.warmup_epochs)
    return 0.5 * r.lr * (1 + math.cos(math.pi * min(1.0, progress)))


class TrainingDiverged(RuntimeError):
    pass


def _parse_config(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {p!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wsms_viz.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registry name, e.g. resnet20, wsms_resnet20, ms_resnet20")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model config overrides, e.g. integration=3x3 channels=64 (values parsed as JSON)")
    p.add_argument("--data", default="imagefolder:../shared/datasets/cifar10-jpeg",
                   help="imagefolder:PATH, cifar10:ROOT or cifar100:ROOT")
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR (online machines)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where decoded images are cached")
    p.add_argument("--out", type=Path, required=True, help="run directory (checkpoint, log, resume state)")
    p.add_argument("--name", help="checkpoint name stored in the card (default: the --out directory's name)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="short")
    for f in fields(Recipe):
        if f.name in ("milestones", "scale_jitter"):
            continue
        kind = type(f.default) if f.default is not None else float
        if kind is bool:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"))
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=kind)
    p.add_argument("--scale-jitter", type=float, nargs=2, metavar=("LO", "HI"),
                   help="VGG-style scale jitter: zoom factors drawn log-uniformly from [LO, HI]")
    p.add_argument("--subset", type=int, help="train on a fixed random N of the training images (smoke tests)")
    p.add_argument("--val-subset", type=int, help="evaluate on a fixed random N of the val images")
    p.add_argument("--zooms", type=float, nargs="*", default=list(DEFAULT_ZOOMS),
                   help="zoom factors of the final scale-robustness curve")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels (repeatable CPU runs)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on CPU too (faster where the "
                        "CPU has native bf16, e.g. AVX512-BF16 or AMX)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the epoch log still prints)")
    return p


PRECISIONS = ("auto", "fp32", "bf16")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether the forward pass runs under bf16 autocast for ``--precision`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16, AMX). Without it, CPU
    bf16 autocast is emulated: on an AVX2-only AMD EPYC a ResNet-20 training step took
    6.8 s against 0.63 s in fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check: assume nothing
        return False


def bf16_cpu_warning(bf16: bool, device: torch.device) -> str | None:
    """The warning the trainer prints before running bf16 autocast on a CPU that has no
    native bf16, or None."""
    if not bf16 or device.type != "cpu" or cpu_has_native_bf16():
        return None
    return (f"warning: --precision bf16 on a CPU without native bf16 ({torch.backends.cpu.get_cpu_capability()}, "
            "no AVX512-BF16 or AMX): autocast is emulated and about 10x slower than fp32 here; "
            "use --precision fp32")


def recipe_from_args(args) -> Recipe:
    r = RECIPES[args.recipe]
    over = {f.name: getattr(args, f.name) for f in fields(Recipe)
            if f.name not in ("milestones", "scale_jitter") and getattr(args, f.name, None) is not None}
    if args.scale_jitter:
        lo, hi = args.scale_jitter
        if not 0 < lo <= hi:
            raise SystemExit(f"--scale-jitter needs 0 < LO <= HI, got {lo} {hi}")
        over["scale_jitter"] = (lo, hi)
    return Recipe(**{**asdict(r), **over})


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def _versions() -> dict:
    import numpy
    import safetensors

    return {"wsms_viz": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _save_state(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _write_log(path: Path, log: list[dict]) -> None:
    cols = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "images_per_s", "time_s"]
    lines = ["\t".join(cols)] + ["\t".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c])
                                           for c in cols) for row in log]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def build_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """The recipe's SGD; weight decay on weights only, not on BatchNorm or biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": recipe.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
               mean, std, augment: Augmenter, gen: torch.Generator,
               device: torch.device, bf16: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step of the trainer on a uint8 batch: normalise on ``device``, augment,
    forward (under bf16 autocast if asked), cross-entropy, backward, step.

    ``benchmarks/train_throughput.py`` times this very function against a bare loop.

    Args:
        net: the model (or its DDP wrapper) in train mode.
        opt: its optimizer, learning rate already set.
        images: uint8 ``(N, 3, H, W)``, on any device.
        labels: int64 ``(N,)``.
        mean, std: the dataset's normalisation.
        augment: the batched augmentation.
        gen: the CPU generator that draws this batch's augmentation.
        device: where to compute.
        bf16: bf16 autocast for the forward pass; None: on CUDA only.

    Returns:
        The loss (0-dim) and the logits, detached.

    Raises:
        TrainingDiverged: the loss is not finite (on any process, under DDP); raised
            before the backward pass, so weights and optimizer state are untouched.
    """
    x = to_model_input(images, mean, std, device)
    x = augment(x, gen).contiguous(memory_format=torch.channels_last)
    y = labels.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" if bf16 is None else bf16):
        logits = net(x)
    loss = F.cross_entropy(logits.float(), y)
    finite = torch.isfinite(loss).to(torch.int32)
    if dist.is_available() and dist.is_initialized():
        # Every rank must take the same branch, or the others would wait in backward's all-reduce.
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not finite.item():
        raise TrainingDiverged(f"non-finite loss ({loss.item()} on this process)")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), logits.detach()


def _any_rank(flag: int, device: torch.device) -> int:
    """The largest ``flag`` over all processes (just ``flag`` without DDP)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([flag], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


@torch.no_grad()
def _evaluate(model, images, labels, mean, std, device, bf16, batch_size=500):
    model.eval()
    loss = correct = 0.0
    for i in range(0, len(images), batch_size):
        x = to_model_input(images[i:i + batch_size], mean, std, device, channels_last=True)
        y = labels[i:i + batch_size].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x).float()
        loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
    return loss / len(images), correct / len(images)


def train(args) -> Path | None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if args.device:
        device = torch.device(args.device)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.deterministic:
        if device.type == "cuda":  # cuBLAS needs this before its first use to be deterministic
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    recipe = recipe_from_args(args)
    bf16 = use_bf16(args.precision, device)
    if recipe.batch_size % world:
        raise SystemExit(f"batch size {recipe.batch_size} does not split over {world} processes")
    out: Path = args.out
    main = rank == 0
    say = (lambda *a: print(*a, flush=True)) if main else (lambda *a: None)
    if warning := bf16_cpu_warning(bf16, device):
        say(warning)

    # Rank 0 loads (decodes, fills the cache, downloads) first; the others then read its cache.
    if world > 1 and not main:
        dist.barrier()
    data = load_dataset(args.data, cache_dir=args.cache_dir, download=args.download and main)
    if world > 1 and main:
        dist.barrier()
    train_x, train_y = data.train.images, data.train.labels
    # Subsets are a fixed random draw: the images are stored class by class.
    if args.subset:
        pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[: args.subset]
        train_x, train_y = train_x[pick], train_y[pick]
    val_x, val_y = data.val.images, data.val.labels
    if args.val_subset:
        pick = torch.randperm(len(val_x), generator=torch.Generator().manual_seed(0))[: args.val_subset]
        val_x, val_y = val_x[pick], val_y[pick]
    if device.type == "cuda":  # keep the whole (small) dataset on the GPU
        train_x, train_y = train_x.to(device), train_y.to(device)

    torch.manual_seed(args.seed)
    config = {"num_classes": len(data.classes), **_parse_config(args.set)}
    model = create_model(args.model, **config).to(device).to(memory_format=torch.channels_last)
    opt = build_optimizer(model, recipe)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    augment = Augmenter(jitter_range=recipe.scale_jitter, jitter_p=recipe.jitter_p)

    per_rank = recipe.batch_size // world
    steps_per_epoch = len(train_x) // recipe.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"{len(train_x)} training images make no batch of {recipe.batch_size}")
    identity = {"model": args.model, "config": model_config(model), "recipe": asdict(recipe),
                "data": args.data, "subset": args.subset, "seed": args.seed, "world": world,
                "precision": "bf16" if bf16 else "fp32"}
    log: list[dict] = []
    start_epoch, start_step, wall = 0, 0, 0.0
    partial = {"loss": 0.0, "correct": 0.0, "seen": 0, "time": 0.0}
    state_path = out / "resume.pt"
    if args.resume:
        if not state_path.is_file():
            raise SystemExit(f"--resume: no {state_path}")
        state = torch.load(state_path, map_location=device, weights_only=True)
        # States written before --precision existed ran bf16 exactly on CUDA.
        state["identity"].setdefault("precision", "bf16" if device.type == "cuda" else "fp32")
        if json.loads(json.dumps(state["identity"])) != json.loads(json.dumps(identity)):
            raise SystemExit(f"--resume: {state_path} belongs to a different run: {state['identity']}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, start_step = state["epoch"], state["step"]
        log, wall, partial = state["log"], state["wall_time"], state["partial"]
        say(f"resumed from {state_path} at epoch {start_epoch + 1}, step {start_step}")
    elif main and state_path.exists():
        raise SystemExit(f"{state_path} exists: pass --resume to continue that run, or choose another --out")

    stop = {"signal": 0}

    def request_stop(signum, frame):
        stop["signal"] = signum
    old_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def state_dict(epoch, step):
        return {"identity": identity, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "epoch": epoch, "step": step, "log": log, "wall_time": wall, "partial": dict(partial)}

    say(f"training {args.model} on {args.data} ({len(train_x)} train / {len(val_x)} val) on {_hardware(device)}"
        f", {world} process(es), {'bf16 autocast' if bf16 else 'fp32'}; "
        f"recipe {args.recipe}: {json.dumps(asdict(recipe))}")
    try:
        for epoch in range(start_epoch, recipe.epochs):
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(train_x), generator=gen)
            net.train()
            bar = tqdm(range(start_step, steps_per_epoch), initial=start_step, total=steps_per_epoch,
                       desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not main or args.no_progress,
                       mininterval=2, leave=False)
            t0 = time.perf_counter()
            for step in bar:
                for g in opt.param_groups:
                    g["lr"] = learning_rate(recipe, epoch * steps_per_epoch + step, steps_per_epoch)
                idx = perm[step * recipe.batch_size:(step + 1) * recipe.batch_size][rank * per_rank:][:per_rank]
                # Each rank draws its own crops and flips (rank 0's seed is the single-process one).
                bgen = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch * 100_003 + step + rank * 7_919)
                y = train_y[idx.to(train_y.device)]
                try:
                    loss, logits = train_step(net, opt, train_x[idx.to(train_x.device)], y, data.mean, data.std,
                                              augment, bgen, device, bf16)
                except TrainingDiverged as e:
                    raise TrainingDiverged(
                        f"{e} at epoch {epoch + 1}, step {step}: stopping; the last good files in {out} "
                        "are untouched (try a lower --lr)") from None
                y = y.to(device)
                partial["loss"] += loss.item() * len(y)
                partial["correct"] += (logits.argmax(1) == y).sum().item()
                partial["seen"] += len(y)
                elapsed = partial["time"] + time.perf_counter() - t0
                bar.set_postfix(loss=f"{partial['loss'] / partial['seen']:.3f}",
                                acc=f"{partial['correct'] / partial['seen']:.3f}",
                                img_s=f"{partial['seen'] * world / max(elapsed, 1e-9):.0f}", refresh=False)
                signalled = _any_rank(stop["signal"], device)
                if signalled:
                    partial["time"] = elapsed
                    wall += time.perf_counter() - t0
                    if main:
                        _save_state(state_path, state_dict(epoch, step + 1))
                    say(f"\nstopped by signal {signalled} at epoch {epoch + 1}, step {step + 1}; "
                        f"state saved to {state_path}; continue with --resume")
                    raise SystemExit(128 + signalled)
            bar.close()
            epoch_time = partial["time"] + time.perf_counter() - t0
            wall += time.perf_counter() - t0
            if world > 1:
                # DDP broadcasts BatchNorm statistics from rank 0 before each forward, so each
                # rank's last step left its own; take rank 0's, so that every rank evaluates
                # and holds exactly the weights rank 0 saves.
                for b in model.buffers():
                    dist.broadcast(b, 0)
            val_loss, val_acc = _evaluate(model, val_x, val_y, data.mean, data.std, device, bf16)
            row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
                   "train_loss": partial["loss"] / max(1, partial["seen"]),
                   "train_acc": partial["correct"] / max(1, partial["seen"]),
                   "val_loss": val_loss, "val_acc": val_acc,
                   "images_per_s": partial["seen"] * world / max(epoch_time, 1e-9), "time_s": epoch_time}
            log.append(row)
            partial = {"loss": 0.0, "correct": 0.0, "seen": 0, "time": 0.0}
            start_step = 0
            say(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if main:
                out.mkdir(parents=True, exist_ok=True)
                _write_log(out / "log.tsv", log)
                _save_state(state_path, state_dict(epoch + 1, 0))
            # A signal that came during the evaluation or the save: stop here, the state is complete.
            signalled = _any_rank(stop["signal"], device)
            if signalled:
                say(f"stopped by signal {signalled} after epoch {epoch + 1}; state saved to {state_path}; "
                    "continue with --resume")
                raise SystemExit(128 + signalled)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)

    if not main:
        dist.barrier()
        dist.destroy_process_group()
        return None
    say("measuring accuracy against zoom on the val split ...")
    curve = accuracy_vs_zoom(model, val_x, val_y, args.zooms, data.mean, data.std, device=device)
    curve.pop("correct")
    card = {
        "name": args.name or out.name,
        "classes": data.classes,
        "normalization": {"mean": list(data.mean), "std": list(data.std)},
        "input_size": [32, 32],
        "data": {**data.describe(), "train_used": len(train_x), "val_used": len(val_x)},
        "recipe": {"name": args.recipe, **asdict(recipe), "seed": args.seed, "processes": world},
        "log": log,
        "metrics": {"train_acc": log[-1]["train_acc"], "val_acc": log[-1]["val_acc"]} if log else {},
        "scale_robustness": curve,
        "versions": _versions(),
        "hardware": _hardware(device),
        "precision": "bf16 autocast" if bf16 else "fp32",
        "wall_time_s": wall,
    }
    save_checkpoint(out, model, card)
    say(f"wrote {out / 'model.safetensors'} and {out / 'card.json'}: val acc {card['metrics'].get('val_acc')}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(3) from None
    except ValueError as e:  # bad data source, bad model config: say it plainly
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (loading, final evaluation)
        state = args.out / "resume.pt"
        hint = f"; {state} is complete: rerun with --resume to finish" if state.is_file() else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
