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
autocast, channels_last, the whole dataset kept on the GPU, the training step recorded
once as a CUDA graph and replayed: ``--capture``; a step that cannot be recorded is said
on stderr and trained eagerly), else the CPU (fp32, or bf16 autocast with ``--precision
bf16``: faster on CPUs with native bf16 such as AVX512-BF16 or AMX, about 10x slower
without them, and the trainer warns; weights, BatchNorm and the loss stay fp32).
Launched with ``torchrun --nproc_per_node=N`` it trains data-parallel (NCCL on GPUs,
gloo on CPUs; eager steps); only rank 0 writes files.

No step waits for the device: the batch is gathered, augmented (crops, flips and scale
jitter drawn from a hash of the seed and the step, :mod:`wsms_viz.keyed_random`),
trained on and counted on the device; the host reads the running loss and accuracy,
and whether any loss was non-finite, every ``--check-every`` steps and at the end of
each epoch. A divergence is therefore noticed up to ``--check-every`` steps after the
step it happened in (which the message names); nothing is saved from a run in that
state.

The run directory (``--out``) gets ``log.tsv`` (one row per epoch), ``resume.pt``
(after every epoch and on Ctrl-C/SIGTERM; loaded only with ``weights_only=True``) and,
at the end, ``model.safetensors`` + ``card.json``. Every file is written to a temporary
name and renamed, with the permissions the umask gives a new file (0644 under umask 022),
so that an app running as another user can read them. ``--resume`` continues from
``resume.pt`` to the same final weights an uninterrupted run reaches (on the same
device, thread count and ``--capture``).

Exit codes of the command: 0 done; 2 a bad argument, data source (fewer than 2 classes
too), model config or output directory, said before any training (every argument is
checked before any data is read); 3 the run diverged (a non-finite loss, val loss or
weight; a loss is noticed up to ``--check-every`` steps late): it stops, and the last
good ``resume.pt`` and checkpoint stay as they were; 4 a file could not be written
during the run (disk full, read-only): the last good files stay as they were; 128 + n
stopped by signal n (SIGINT, SIGTERM) with ``resume.pt`` saved. The library functions
raise :class:`TrainError` subclasses; only :func:`main` turns them into exit codes.

Unreadable images in an ImageFolder (a corrupt JPEG) are skipped, counted in the log
and in the card (``data.skipped_images``); see :func:`wsms_viz.data.load_dataset`.
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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from . import __version__
from .cards import check_config
from .checkpoint import CheckpointError, atomic_write_bytes, save_checkpoint
from .data import DEFAULT_CACHE, Augmenter, Dataset, load_dataset, parse_source, to_model_input
from .evaluation.metrics import DEFAULT_ZOOMS, accuracy_vs_zoom
from .keyed_random import KeyedRandom, seed_salt
from .models import create_model, list_models, model_config
from .zoom import MAX_ZOOM, MIN_ZOOM


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


class TrainError(Exception):
    """A run that cannot start or go on; :func:`main` exits with ``exit_code``."""

    exit_code = 2


class UsageError(TrainError, ValueError):
    """A bad argument, data source, model config or output directory (exit 2)."""


class TrainingDiverged(TrainError, RuntimeError):
    """A non-finite loss, val loss or weight (exit 3); nothing of the bad run is saved."""

    exit_code = 3


class WriteFailed(TrainError):
    """A file of the run could not be written (exit 4); the last good files are intact."""

    exit_code = 4


class Stopped(TrainError):
    """Stopped by a signal after saving ``resume.pt`` (exit 128 + the signal)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def _parse_config(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects key=value, got {p!r}")
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
    p.add_argument("--capture", choices=CAPTURES, default="auto",
                   help="how a training step reaches the device: graph: recorded once as a CUDA graph and "
                        "replayed (CUDA, one process); compile: torch.compile(mode='reduce-overhead'), minutes "
                        "to compile; none: eager; auto (default): graph on CUDA with one process, else none")
    p.add_argument("--check-every", type=int, default=50, metavar="N",
                   help="steps between reads of the running loss and accuracy (the progress bar) and the "
                        "divergence check: a non-finite loss stops the run (exit 3) up to N steps after it "
                        "happened, with nothing of it saved; under DDP also how often the processes agree "
                        "on a signal (default: 50)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the epoch log still prints)")
    return p


PRECISIONS = ("auto", "fp32", "bf16")
CAPTURES = ("auto", "none", "graph", "compile")


def capture_mode(requested: str, device: torch.device, world: int) -> str:
    """The step's capture for ``--capture`` (:data:`CAPTURES`) on ``device`` with ``world``
    processes; raises :class:`UsageError` for one that cannot work there."""
    _require(requested in CAPTURES, f"--capture must be one of {', '.join(CAPTURES)}, got {requested!r}")
    if requested == "auto":
        return "graph" if device.type == "cuda" and world == 1 else "none"
    _require(requested == "none" or world == 1,
             f"--capture {requested} trains in one process; under torchrun use --capture none")
    _require(requested != "graph" or device.type == "cuda", f"--capture graph needs a CUDA device, not {device}")
    return requested


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
    """The ``--recipe`` with the command line's overrides, checked (:func:`check_recipe`)."""
    r = RECIPES[args.recipe]
    over = {f.name: getattr(args, f.name) for f in fields(Recipe)
            if f.name not in ("milestones", "scale_jitter") and getattr(args, f.name, None) is not None}
    if args.scale_jitter:
        over["scale_jitter"] = tuple(args.scale_jitter)
    return check_recipe(Recipe(**{**asdict(r), **over}))


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def check_recipe(r: Recipe) -> Recipe:
    """Raises :class:`UsageError` naming the first field out of range."""
    _require(isinstance(r.epochs, int) and r.epochs >= 1, f"--epochs must be at least 1, got {r.epochs}")
    _require(isinstance(r.batch_size, int) and r.batch_size >= 1,
             f"--batch-size must be at least 1, got {r.batch_size}")
    _require(_finite(r.lr) and r.lr > 0, f"--lr must be a finite number above 0, got {r.lr}")
    _require(_finite(r.momentum) and 0 <= r.momentum < 1, f"--momentum must be in [0, 1), got {r.momentum}")
    _require(_finite(r.weight_decay) and r.weight_decay >= 0,
             f"--weight-decay must be a finite number >= 0, got {r.weight_decay}")
    _require(r.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}, got {r.schedule!r}")
    _require(r.warmup in WARMUPS, f"--warmup must be one of {', '.join(WARMUPS)}, got {r.warmup!r}")
    _require(_finite(r.warmup_epochs) and 0 <= r.warmup_epochs <= r.epochs,
             f"--warmup-epochs must be between 0 and --epochs ({r.epochs}), got {r.warmup_epochs}")
    _require(_finite(r.jitter_p) and 0 <= r.jitter_p <= 1, f"--jitter-p must be in [0, 1], got {r.jitter_p}")
    if r.scale_jitter is not None:
        lo, hi = r.scale_jitter
        _require(_finite(lo) and _finite(hi) and MIN_ZOOM <= lo <= hi <= MAX_ZOOM,
                 f"--scale-jitter needs {MIN_ZOOM:g} <= LO <= HI <= {MAX_ZOOM:g}, got {lo:g} {hi:g}")
    return r


SCHEDULES = ("cosine", "step")
WARMUPS = ("linear", "constant")


def check_args(args) -> Recipe:
    """Checks every argument before any data is read; returns the recipe.

    Raises:
        UsageError: naming the argument and the value.
    """
    recipe = recipe_from_args(args)
    _require(args.model in list_models(), f"--model: unknown model {args.model!r}; known: {', '.join(list_models())}")
    for flag, value in (("--subset", args.subset), ("--val-subset", args.val_subset), ("--threads", args.threads),
                        ("--check-every", args.check_every)):
        _require(value is None or value >= 1, f"{flag} must be at least 1, got {value}")
    _require(args.threads is None or args.threads <= 4096, f"--threads must be at most 4096, got {args.threads}")
    _require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    _require(bool(args.zooms) and all(_finite(z) and MIN_ZOOM <= z <= MAX_ZOOM for z in args.zooms),
             f"--zooms must be factors between {MIN_ZOOM:g} and {MAX_ZOOM:g}, got {args.zooms}")
    parse_source(args.data)  # a ValueError names the bad source
    capture_mode(args.capture, _device(args.device), int(os.environ.get("WORLD_SIZE", "1")))
    config = _parse_config(args.set)
    try:  # the bounds a card's config must keep, then the builder's own checks on the meta device (no memory)
        check_config(config, "--set")
        with torch.device("meta"):
            create_model(args.model, **config)
    except (CheckpointError, ValueError, TypeError) as e:
        raise UsageError(f"--set: {e}") from None
    return recipe


def _device(name: str | None) -> torch.device:
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device: not a device: {name!r} (cpu, cuda, cuda:1 ...)") from None
    _require(device.type in ("cpu", "cuda"), f"--device must be cpu or cuda[:N], got {name!r}")
    _require(device.type != "cuda" or torch.cuda.is_available(), f"--device {name}: no CUDA device here")
    return device


TEMP_GLOB = ".*.tmp"  # what atomic_write_bytes leaves behind when killed before its rename


def prepare_out(out: Path, resume: bool) -> None:
    """Checks that ``out`` is writable (by writing a file there), refuses to overwrite a
    run's resume state without ``--resume``, and removes temporary files a killed run
    left behind."""
    state = out / "resume.pt"
    if resume:
        _require(state.is_file(), f"--resume: no {state}")
    else:
        _require(not state.exists(), f"{state} exists: pass --resume to continue that run, or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / ".write-test", b"")
        (out / ".write-test").unlink()
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    for leftover in out.glob(TEMP_GLOB):
        leftover.unlink(missing_ok=True)


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
    _write(path, buf.getvalue())


def _write(path: Path, data: bytes) -> None:
    """:func:`atomic_write_bytes`, a failure (disk full, read-only) as :class:`WriteFailed`."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise WriteFailed(f"cannot write {path} ({e.strerror or e}); the last good files in {path.parent} "
                          "are intact") from None


def _write_log(path: Path, log: list[dict]) -> None:
    cols = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "images_per_s", "time_s"]
    lines = ["\t".join(cols)] + ["\t".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c])
                                           for c in cols) for row in log]
    _write(path, ("\n".join(lines) + "\n").encode())


def build_optimizer(model: torch.nn.Module, recipe: Recipe, capture: str = "none") -> torch.optim.SGD:
    """The recipe's SGD; weight decay on weights only, not on BatchNorm or biases.

    For a captured step (``capture`` "graph" or "compile") the learning rate is one
    float32 tensor on the weights' device that every group shares: the step reads it
    from there, so a new value each step needs no new capture. "graph" takes torch's
    fused SGD, the implementation that reads a tensor learning rate on the device (the
    foreach one would call ``.item()`` on it, a host sync that a CUDA graph forbids).
    Momentum buffers start as zeros, which gives the first step exactly the update of
    torch's lazily created buffer (``0 * momentum + grad``) and lets a graph be recorded
    from the first step on.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    lr = recipe.lr if capture == "none" else torch.tensor(recipe.lr, dtype=torch.float32, device=params[0].device)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": recipe.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                          fused=True if capture == "graph" else None)
    _zero_momentum(opt)
    return opt


def _zero_momentum(opt: torch.optim.Optimizer) -> None:
    for group in opt.param_groups:
        if group["momentum"]:
            for p in group["params"]:
                opt.state[p].setdefault("momentum_buffer", torch.zeros_like(p))


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
               mean, std, augment: Augmenter, gen: torch.Generator | KeyedRandom,
               device: torch.device, bf16: bool | None = None,
               graph_safe: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step of the trainer on a uint8 batch: normalise on ``device``, augment,
    forward (under bf16 autocast if asked), cross-entropy, backward, step. Nothing in it
    waits for the device; :class:`Stepper` runs it and counts its results.

    Args:
        net: the model (or its DDP wrapper) in train mode.
        opt: its optimizer, learning rate already set.
        images: uint8 ``(N, 3, H, W)``, on any device.
        labels: int64 ``(N,)``.
        mean, std: the dataset's normalisation, as sequences or as ``(3, 1, 1)`` tensors
            on ``device`` (what a captured step needs: no copy from the host).
        augment: the batched augmentation.
        gen: what draws this batch's augmentation: a CPU generator or a
            :class:`KeyedRandom` on ``device``.
        device: where to compute.
        bf16: bf16 autocast for the forward pass; None: on CUDA only.
        graph_safe: autocast without its cache of cast weights (the CUDA graph
            documentation's requirement for capturing under autocast).

    Returns:
        The loss (0-dim, possibly non-finite: the caller checks) and the logits, detached.
    """
    x = images.to(device, non_blocking=True).float().div_(255)
    if not isinstance(mean, torch.Tensor):
        mean = torch.tensor(mean, dtype=x.dtype, device=device).view(-1, 1, 1)
        std = torch.tensor(std, dtype=x.dtype, device=device).view(-1, 1, 1)
    x = augment((x - mean) / std, gen).contiguous(memory_format=torch.channels_last)  # as to_model_input
    y = labels.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" if bf16 is None else bf16,
                        cache_enabled=not graph_safe):
        logits = net(x)
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), logits.detach()


class Stepper:
    """The trainer's SGD steps over a run's training images, with no host synchronisation.

    The uint8 images and labels stay where they are (on the GPU for a CUDA run); each
    step gathers its batch from the epoch's order on the device, draws its augmentation
    from a :class:`KeyedRandom` keyed by the global step, and adds its loss, its correct
    count and whether its loss was finite to device-side accumulators that :meth:`read`
    fetches in one transfer. ``capture``:

    * ``"none"``: :func:`train_step` eagerly, every kernel launched from Python.
    * ``"graph"`` (CUDA): the whole step (gather, augmentation, forward, loss, backward,
      fused SGD, accounting) is recorded once as a CUDA graph and replayed; the host
      writes the step number and learning rate into device tensors and replays, nothing
      else. Recording needs a few warm-up steps (cuDNN and cuBLAS set themselves up);
      they run on a copy of the state, which is put back, so the run is the same as if
      it had started with the graph.
    * ``"compile"``: the same step under ``torch.compile(mode="reduce-overhead")`` (CUDA
      graphs of Inductor's fused kernels; plain Inductor on a CPU).

    Args:
        net, opt: the model (DDP wrapper allowed with ``"none"``) and its optimizer
            from :func:`build_optimizer` with the same ``capture``.
        images, labels: the training split (uint8 ``(N, 3, H, W)``, int64 ``(N,)``),
            on the device for a captured step.
        mean, std: the dataset's normalisation.
        augment: the batched augmentation.
        device: where to compute.
        bf16: bf16 autocast for the forward pass.
        capture: see above.
        batch_size: the global batch, split over ``world`` processes.
        seed, rank, world: the run's seed and this process's place under DDP.
        fallback: if recording the graph fails, say so on stderr, put the state back
            and go on eagerly (a long unattended run keeps going, slower); False: raise.
    """

    WARMUP_STEPS = 3

    def __init__(self, net, opt, images, labels, mean, std, augment: Augmenter, device: torch.device,
                 bf16: bool, capture: str = "none", batch_size: int = 128, seed: int = 0, rank: int = 0,
                 world: int = 1, fallback: bool = True):
        self.net, self.opt, self.images, self.labels = net, opt, images, labels
        self.augment, self.device, self.bf16, self.capture = augment, device, bf16, capture
        self.batch_size, self.per_rank, self.rank = batch_size, batch_size // world, rank
        self.salt = seed_salt(seed, rank)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.global_step = torch.zeros((), dtype=torch.int64, device=device)  # the augmentation's key
        self.position = torch.zeros((), dtype=torch.int64, device=device)  # the step within the epoch
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss x images, correct
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # global step of a non-finite loss
        self.offsets = torch.arange(self.per_rank, device=device) + rank * self.per_rank
        self.order = torch.zeros(len(images), dtype=torch.int64, device=images.device)
        self.lr = opt.param_groups[0]["lr"] if capture != "none" else None
        if self.lr is not None:  # one tensor for every group (a loaded state brings floats)
            for g in opt.param_groups:
                g["lr"] = self.lr
        _zero_momentum(opt)
        self.graph = None
        self.compiled = None
        self.fallback = fallback
        if capture == "compile":
            for t in (self.global_step, self.position, self.sums, self.first_bad, self.order, self.lr):
                torch._dynamo.mark_static_address(t)  # mutated in place: keeps the CUDA graphs
            self.compiled = torch.compile(self._device_step,
                                          mode="reduce-overhead" if device.type == "cuda" else None)

    def set_epoch(self, order: torch.Tensor) -> None:
        """The epoch's order of the training images (a permutation, on the CPU)."""
        self.order.copy_(order)

    def step(self, position: int, global_step: int, lr: float) -> None:
        """Queues step ``position`` of the epoch (``global_step`` of the run) at ``lr``."""
        self.global_step.fill_(global_step)
        if self.lr is None:
            for g in self.opt.param_groups:
                g["lr"] = lr
        else:
            self.lr.fill_(lr)
        if self.capture == "none":
            start = position * self.batch_size + self.rank * self.per_rank
            idx = self.order[start:start + self.per_rank]
            self._count(*train_step(self.net, self.opt, self.images[idx], self.labels[idx], self.mean, self.std,
                                    self.augment, KeyedRandom(self.global_step, self.salt), self.device,
                                    self.bf16), self.labels[idx])
            return
        self.position.fill_(position)
        if self.compiled is not None:
            self.compiled()
            return
        if self.graph is None and self.capture == "graph":
            self._record()
        if self.graph is None:  # recording failed: eager from here on
            self._device_step()
            return
        self.graph.replay()

    def _device_step(self) -> None:
        idx = self.order.index_select(0, self.position * self.batch_size + self.offsets)
        labels = self.labels.index_select(0, idx)
        self._count(*train_step(self.net, self.opt, self.images.index_select(0, idx), labels, self.mean, self.std,
                                self.augment, KeyedRandom(self.global_step, self.salt), self.device, self.bf16,
                                graph_safe=True), labels)

    @torch.no_grad()
    def _count(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        correct = (logits.argmax(1) == labels).sum()
        self.sums.add_(torch.stack([loss.double() * len(labels), correct.double()]))
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad.copy_(torch.where(bad, self.global_step, self.first_bad))

    def _state(self) -> list[torch.Tensor]:
        tensors = list(self.net.parameters()) + list(self.net.buffers()) + [self.sums, self.first_bad]
        return tensors + [s["momentum_buffer"] for s in self.opt.state.values() if "momentum_buffer" in s]

    def _record(self) -> None:
        state = self._state()
        with torch.no_grad():
            saved = [t.detach().clone() for t in state]

        def restore():
            with torch.no_grad():
                for t, s in zip(state, saved, strict=True):
                    t.copy_(s)
            self.opt.zero_grad(set_to_none=True)  # the gradients are then the graph's own memory

        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.WARMUP_STEPS):
                    self._device_step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            restore()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._device_step()
            self.graph = graph
        except Exception as e:
            if not self.fallback:
                raise
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            restore()
            self.capture = "graph failed"
            print(f"warning: could not record the training step as a CUDA graph ({type(e).__name__}: "
                  f"{str(e).splitlines()[0] if str(e) else ''}); training eagerly from the same state",
                  file=sys.stderr, flush=True)

    def load(self, loss_sum: float, correct: float) -> None:
        """Sets the running sums (a resumed epoch's, or zeros for a new one)."""
        self.sums[0].fill_(loss_sum)
        self.sums[1].fill_(correct)
        self.first_bad.fill_(-1)

    def read(self) -> tuple[float, float, int]:
        """The running loss sum and correct count, and the global step of the first
        non-finite loss (-1: none): one transfer, which waits for the queued steps."""
        loss_sum, correct, bad = torch.cat([self.sums, self.first_bad.double()[None]]).tolist()
        return loss_sum, correct, int(bad)


def _any_rank(flags: list[int], device: torch.device) -> list[int]:
    """The largest of each flag over all processes (just ``flags`` without DDP)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flags
    t = torch.tensor(flags, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


@torch.no_grad()
def _evaluate(model, images, labels, mean, std, device, bf16, batch_size=500):
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(images), batch_size):
        x = to_model_input(images[i:i + batch_size], mean, std, device, channels_last=True)
        y = labels[i:i + batch_size].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x).float()
        sums += torch.stack([F.cross_entropy(out, y, reduction="sum").double(), (out.argmax(1) == y).sum().double()])
    loss, correct = sums.tolist()
    return loss / len(images), correct / len(images)


@dataclass
class Runtime:
    """Where and how this process trains."""

    device: torch.device
    world: int
    rank: int
    bf16: bool
    capture: str = "none"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def say(self, *a) -> None:
        if self.main:
            print(*a, flush=True)


@dataclass
class TrainData:
    data: Dataset
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


@dataclass
class RunState:
    """What ``resume.pt`` holds besides the weights: where the run is and its log."""

    identity: dict
    epoch: int = 0
    step: int = 0
    log: list = field(default_factory=list)
    wall: float = 0.0
    partial: dict = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "seen": 0, "time": 0.0})


@dataclass
class Run:
    """Everything one training run works with, built by :func:`train` from the arguments."""

    args: argparse.Namespace
    recipe: Recipe
    rt: Runtime
    td: TrainData
    model: torch.nn.Module
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    augment: Augmenter
    state: RunState
    steps_per_epoch: int
    stepper: Stepper
    stop: dict = field(default_factory=lambda: {"signal": 0})

    @property
    def state_path(self) -> Path:
        return self.args.out / "resume.pt"

    def state_dict(self, epoch: int, step: int) -> dict:
        s = self.state
        opt = self.opt.state_dict()
        for g in opt["param_groups"]:  # a float, whatever the capture: the state resumes under any
            g["lr"] = float(g["lr"])
        # The augmentation's random numbers are a function of the seed and the step
        # (KeyedRandom): "step" is all of its state.
        return {"identity": s.identity, "model": self.model.state_dict(), "optimizer": opt,
                "epoch": epoch, "step": step, "log": s.log, "wall_time": s.wall, "partial": dict(s.partial)}


def setup_runtime(args) -> Runtime:
    """Device, process group, threads and determinism for this process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _device(args.device)
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
    return Runtime(device, world, rank, use_bf16(args.precision, device), capture_mode(args.capture, device, world))


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random ``n`` of the images (they are stored class by class)."""
    if not n:
        return x, y
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]
    return x[pick], y[pick]


def load_data(args, rt: Runtime) -> TrainData:
    # Rank 0 loads (decodes, fills the cache, downloads) first; the others then read its cache.
    if rt.world > 1 and not rt.main:
        dist.barrier()
    data = load_dataset(args.data, cache_dir=args.cache_dir, download=args.download and rt.main)
    if rt.world > 1 and rt.main:
        dist.barrier()
    if data.skipped:
        rt.say(f"skipped {len(data.skipped)} unreadable image(s): {', '.join(data.skipped[:5])}"
               + (" ..." if len(data.skipped) > 5 else ""))
    train_x, train_y = _subset(data.train.images, data.train.labels, args.subset)
    val_x, val_y = _subset(data.val.images, data.val.labels, args.val_subset)
    if rt.device.type == "cuda":  # keep the whole (small) dataset on the GPU
        train_x, train_y = train_x.to(rt.device), train_y.to(rt.device)
        val_x, val_y = val_x.to(rt.device), val_y.to(rt.device)
    return TrainData(data, train_x, train_y, val_x, val_y)


def build_model(args, rt: Runtime, data: Dataset) -> torch.nn.Module:
    config = _parse_config(args.set)
    n = config.setdefault("num_classes", len(data.classes))
    _require(n == len(data.classes), f"--set num_classes={n}, but the data has {len(data.classes)} classes "
                                     f"({', '.join(data.classes[:10])}{' ...' if len(data.classes) > 10 else ''})")
    torch.manual_seed(args.seed)
    return create_model(args.model, **config).to(rt.device).to(memory_format=torch.channels_last)


def resume_state(args, rt: Runtime, identity: dict, model, opt) -> RunState:
    """A fresh :class:`RunState`, or the one in ``resume.pt`` (``--resume``), loaded into
    ``model`` and ``opt``. Loaded with ``weights_only=True``: never unpickles code."""
    path = args.out / "resume.pt"
    if not args.resume:
        return RunState(identity)
    try:
        state = torch.load(path, map_location=rt.device, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say so, not a traceback
        raise UsageError(f"--resume: cannot read {path} ({e})") from None
    # States written before --precision existed ran bf16 exactly on CUDA.
    state["identity"].setdefault("precision", "bf16" if rt.device.type == "cuda" else "fp32")
    if json.loads(json.dumps(state["identity"])) != json.loads(json.dumps(identity)):
        raise UsageError(f"--resume: {path} belongs to a different run: {state['identity']}")
    model.load_state_dict(state["model"])
    # The state's learning rate and SGD implementation are not the run's identity: keep
    # this process's (a tensor for a captured step, fused or foreach).
    own = [{k: g[k] for k in ("lr", "fused", "foreach") if k in g} for g in opt.param_groups]
    opt.load_state_dict(state["optimizer"])
    for g, keep in zip(opt.param_groups, own, strict=True):
        g.update(keep)
    rt.say(f"resumed from {path} at epoch {state['epoch'] + 1}, step {state['step']}")
    return RunState(identity, state["epoch"], state["step"], state["log"], state["wall_time"], state["partial"])


def _stop(run: Run, signum: int, where: str, save_at: tuple[int, int] | None) -> None:
    """Saves the state at ``save_at`` (epoch, step) if given (after an epoch it is saved
    already) and raises :class:`Stopped`."""
    if save_at is not None and run.rt.main:
        _save_state(run.state_path, run.state_dict(*save_at))
    run.rt.say(f"\nstopped by signal {signum} {where}; state saved to {run.state_path}; continue with --resume")
    raise Stopped(f"stopped by signal {signum}", signum)


def train_epoch(run: Run, epoch: int) -> float:
    """The steps of one epoch from ``run.state.step``; returns its seconds.

    The host queues the steps and reads the device's running figures every
    ``--check-every`` steps and at the epoch's end (:func:`_check`); a signal is
    looked at after every step (under DDP at the checks, where the processes agree)."""
    r, rt, st, args = run.recipe, run.rt, run.state, run.args
    gen = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch)
    run.stepper.set_epoch(torch.randperm(len(run.td.train_x), generator=gen))
    run.net.train()
    bar = tqdm(range(st.step, run.steps_per_epoch), initial=st.step, total=run.steps_per_epoch,
               desc=f"epoch {epoch + 1}/{r.epochs}", disable=not rt.main or args.no_progress,
               mininterval=2, leave=False)
    p = st.partial
    t0 = time.perf_counter()
    for step in bar:
        g = epoch * run.steps_per_epoch + step
        run.stepper.step(step, g, learning_rate(r, g, run.steps_per_epoch))
        p["seen"] += run.stepper.per_rank
        signalled = run.stop["signal"] if rt.world == 1 else 0
        if (step + 1) % args.check_every == 0 or step + 1 == run.steps_per_epoch or signalled:
            signalled = _check(run, signalled)
            elapsed = p["time"] + time.perf_counter() - t0
            bar.set_postfix(loss=f"{p['loss'] / p['seen']:.3f}", acc=f"{p['correct'] / p['seen']:.3f}",
                            img_s=f"{p['seen'] * rt.world / max(elapsed, 1e-9):.0f}", refresh=False)
        if signalled:  # checked just now: the state is finite
            p["time"] += time.perf_counter() - t0
            st.wall += time.perf_counter() - t0
            _stop(run, signalled, f"at epoch {epoch + 1}, step {step + 1}", (epoch, step + 1))
    bar.close()
    st.wall += time.perf_counter() - t0
    return p["time"] + time.perf_counter() - t0


def _check(run: Run, signalled: int = 0) -> int:
    """Reads the running loss and accuracy into the run's state (waiting for the queued
    steps) and raises :class:`TrainingDiverged` if any loss since the epoch began was
    non-finite, on any process. Returns the signal to stop on, agreed by every process."""
    p = run.state.partial
    p["loss"], p["correct"], bad = run.stepper.read()
    signalled, any_bad = _any_rank([signalled or run.stop["signal"], int(bad >= 0)], run.rt.device)
    if any_bad:
        spe = run.steps_per_epoch
        where = f"at epoch {bad // spe + 1}, step {bad % spe}" if bad >= 0 else "on another process"
        raise TrainingDiverged(f"non-finite loss {where} (the trainer reads the loss every --check-every="
                               f"{run.args.check_every} steps): {_diverged_hint(run)}")
    return signalled


def _diverged_hint(run: Run) -> str:
    return f"stopping; the last good files in {run.args.out} are untouched (try a lower --lr)"


def end_epoch(run: Run, epoch: int, epoch_time: float) -> None:
    """Evaluates, checks the run is still finite, logs, and saves ``log.tsv`` and
    ``resume.pt`` (nothing is saved from a run that went non-finite)."""
    rt, st, td = run.rt, run.state, run.td
    if rt.world > 1:
        # DDP broadcasts BatchNorm statistics from rank 0 before each forward, so each
        # rank's last step left its own; take rank 0's, so that every rank evaluates
        # and holds exactly the weights rank 0 saves.
        for b in run.model.buffers():
            dist.broadcast(b, 0)
    val_loss, val_acc = _evaluate(run.model, td.val_x, td.val_y, td.data.mean, td.data.std, rt.device, rt.bf16)
    state = [(k, t) for k, t in run.model.state_dict().items() if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in state]).tolist()  # one transfer
    bad = [k for (k, _), ok in zip(state, finite, strict=True) if not ok]
    if bad or not math.isfinite(val_loss):
        what = f"non-finite weights ({', '.join(bad[:3])})" if bad else f"non-finite val loss ({val_loss})"
        raise TrainingDiverged(f"{what} after epoch {epoch + 1}: {_diverged_hint(run)}")
    p = st.partial
    row = {"epoch": epoch + 1, "lr": float(run.opt.param_groups[0]["lr"]),
           "train_loss": p["loss"] / max(1, p["seen"]),
           "train_acc": p["correct"] / max(1, p["seen"]), "val_loss": val_loss, "val_acc": val_acc,
           "images_per_s": p["seen"] * rt.world / max(epoch_time, 1e-9), "time_s": epoch_time}
    st.log.append(row)
    st.partial, st.step = RunState(st.identity).partial, 0
    run.stepper.load(0.0, 0.0)
    rt.say(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    if rt.main:
        _write_log(run.args.out / "log.tsv", st.log)
        _save_state(run.state_path, run.state_dict(epoch + 1, 0))
    # A signal that came during the evaluation or the save: stop here, the state is complete.
    if signalled := _any_rank([run.stop["signal"]], rt.device)[0]:
        _stop(run, signalled, f"after epoch {epoch + 1}", None)


def write_checkpoint(run: Run) -> Path:
    """The final scale-robustness curve, then ``model.safetensors`` and ``card.json``."""
    args, rt, td, st = run.args, run.rt, run.td, run.state
    rt.say("measuring accuracy against zoom on the val split ...")
    curve = accuracy_vs_zoom(run.model, td.val_x, td.val_y, args.zooms, td.data.mean, td.data.std, device=rt.device)
    curve.pop("correct")
    card = {
        "name": args.name or args.out.name,
        "classes": td.data.classes,
        "normalization": {"mean": list(td.data.mean), "std": list(td.data.std)},
        "input_size": [32, 32],
        "data": {**td.data.describe(), "train_used": len(td.train_x), "val_used": len(td.val_x)},
        "recipe": {"name": args.recipe, **asdict(run.recipe), "seed": args.seed, "processes": rt.world},
        "log": st.log,
        "metrics": {"train_acc": st.log[-1]["train_acc"], "val_acc": st.log[-1]["val_acc"]},
        "scale_robustness": curve,
        "versions": _versions(),
        "hardware": _hardware(rt.device),
        "precision": "bf16 autocast" if rt.bf16 else "fp32",
        "wall_time_s": st.wall,
    }
    try:
        save_checkpoint(args.out, run.model, card)
    except OSError as e:
        raise WriteFailed(f"cannot write the checkpoint in {args.out} ({e.strerror or e}); "
                          f"{run.state_path} is intact: rerun with --resume") from None
    except CheckpointError as e:  # the card the loader would refuse: never written
        raise TrainingDiverged(f"{e}: {_diverged_hint(run)}") from None
    rt.say(f"wrote {args.out / 'model.safetensors'} and {args.out / 'card.json'}: val acc {st.log[-1]['val_acc']}")
    return args.out


def prepare_run(args, recipe: Recipe, rt: Runtime) -> Run:
    """Data, model, optimizer and the run's state (fresh or resumed)."""
    _require(recipe.batch_size % rt.world == 0, f"batch size {recipe.batch_size} does not split over "
                                                f"{rt.world} processes")
    td = load_data(args, rt)
    classes = td.data.classes
    # One class gives a classifier nothing to learn and a val accuracy of 1.0 regardless.
    _require(len(classes) >= 2, f"--data {args.data}: {len(classes)} class ({', '.join(classes)}); "
                                "a classifier needs at least 2")
    steps_per_epoch = len(td.train_x) // recipe.batch_size
    _require(steps_per_epoch > 0, f"{len(td.train_x)} training images make no batch of {recipe.batch_size}")
    model = build_model(args, rt, td.data)
    opt = build_optimizer(model, recipe, rt.capture)
    net = torch.nn.parallel.DistributedDataParallel(model) if rt.world > 1 else model
    identity = {"model": args.model, "config": model_config(model), "recipe": asdict(recipe),
                "data": args.data, "subset": args.subset, "seed": args.seed, "world": rt.world,
                "precision": "bf16" if rt.bf16 else "fp32"}
    state = resume_state(args, rt, identity, model, opt)
    augment = Augmenter(jitter_range=recipe.scale_jitter, jitter_p=recipe.jitter_p)
    stepper = Stepper(net, opt, td.train_x, td.train_y, td.data.mean, td.data.std, augment, rt.device, rt.bf16,
                      rt.capture, recipe.batch_size, args.seed, rt.rank, rt.world)
    stepper.load(state.partial["loss"], state.partial["correct"])
    return Run(args, recipe, rt, td, model, net, opt, augment, state, steps_per_epoch, stepper)


def train(args) -> Path | None:
    """Trains as the arguments say; returns the checkpoint directory (None on ranks > 0).

    Raises:
        TrainError: :class:`UsageError`, :class:`TrainingDiverged`, :class:`WriteFailed`
            or :class:`Stopped`; each names what happened.
    """
    recipe = check_args(args)
    if int(os.environ.get("RANK", "0")) == 0:
        prepare_out(args.out, args.resume)
    rt = setup_runtime(args)
    if warning := bf16_cpu_warning(rt.bf16, rt.device):
        rt.say(warning)
    run = prepare_run(args, recipe, rt)
    rt.say(f"training {args.model} on {args.data} ({len(run.td.train_x)} train / {len(run.td.val_x)} val) on "
           f"{_hardware(rt.device)}, {rt.world} process(es), {'bf16 autocast' if rt.bf16 else 'fp32'}, "
           f"capture {rt.capture}; "
           f"recipe {args.recipe}: {json.dumps(asdict(recipe))}")
    old_handlers = {s: signal.signal(s, lambda signum, frame: run.stop.update(signal=signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for epoch in range(run.state.epoch, recipe.epochs):
            end_epoch(run, epoch, train_epoch(run, epoch))
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
    out = write_checkpoint(run) if rt.main else None
    if rt.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out


def main(argv: list[str] | None = None) -> None:
    """The command: :func:`train`, its exceptions as messages and exit codes (module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except TrainError as e:
        if not isinstance(e, Stopped):
            print(f"error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
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
