"""Training throughput: the trainer's own step against a bare loop and a PIL pipeline.

    nice python benchmarks/train_throughput.py --threads 1        # about 2 minutes on 2 cores
    nice python benchmarks/train_throughput.py --threads 1 --precision bf16
    python benchmarks/train_throughput.py --models resnet20 --steps 30 --threads 2

Three ways to feed the same model the same batch size, with the trainer's optimizer,
timed in interleaved rounds so that a change in the machine's load hits all three:

* ``bare``: forward, backward and step on one batch of normalised float tensors
  already in memory; no data work at all, the ceiling.
* ``trainer``: what ``python -m wsms_viz.train`` runs for each step on a CPU: its
  :class:`wsms_viz.train.Stepper` (``--capture none``): the batch indexed from the uint8
  cache in the epoch's order, normalisation, the batched ``Augmenter`` keyed by the
  step, forward, backward, step, the running loss/accuracy/finiteness sums, read every
  ``--check-every`` (50) steps. Target: >= 90% of ``bare``.
* ``pil``: the common torchvision recipe: ImageFolder (a JPEG decoded per image per
  epoch) + ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``,
  ``Normalize`` per image + ``DataLoader``. When torchvision cannot be imported (a CPU torch
  beside a CUDA torchvision build does not import it), the same steps are done with PIL
  and numpy here, as torchvision does them.

Then WSMS-Net's cost against its backbone: the multiplications ratio from
:func:`wsms_viz.evaluation.complexity.count_mults` (the paper: about +20%, 252M -> 301M for
ResNet-110) beside the measured time ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsms_viz.data import (  # noqa: E402
    DEFAULT_CACHE,
    Augmenter,
    imagefolder_root,
    load_dataset,
    parse_source,
    to_model_input,
)
from wsms_viz.evaluation.complexity import count_mults  # noqa: E402
from wsms_viz.models import create_model, model_family  # noqa: E402
from wsms_viz.train import RECIPES, Stepper, build_optimizer, learning_rate  # noqa: E402


class PILImageFolder(torch.utils.data.Dataset):
    """torchvision's ImageFolder + RandomCrop(32, padding=4) + RandomHorizontalFlip +
    ToTensor + Normalize, step for step, for machines where torchvision won't import."""

    def __init__(self, root: Path, files: list[str], labels: list[int], mean, std):
        self.root, self.files, self.labels = root, files, labels
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.root / self.files[i]) as im:  # ImageFolder's default loader
            a = np.asarray(im.convert("RGB"))
        a = np.pad(a, ((4, 4), (4, 4), (0, 0)))  # RandomCrop(32, padding=4): zero fill
        y, x = np.random.randint(0, a.shape[0] - 31), np.random.randint(0, a.shape[1] - 31)
        a = a[y:y + 32, x:x + 32]
        if np.random.rand() < 0.5:  # RandomHorizontalFlip
            a = a[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div(255)  # ToTensor
        return (t - self.mean) / self.std, self.labels[i]  # Normalize


def pil_loader(data, batch_size: int, workers: int) -> tuple[torch.utils.data.DataLoader, str]:
    kind, path = parse_source(data.source)
    if kind != "imagefolder":
        raise SystemExit("the PIL pipeline needs an imagefolder: source")
    root = imagefolder_root(path)
    try:
        from torchvision import datasets, transforms

        tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                 transforms.ToTensor(), transforms.Normalize(data.mean, data.std)])
        ds, how = datasets.ImageFolder(str(root), transform=tf), "torchvision ImageFolder + transforms"
    except Exception as e:  # a torchvision built for another torch raises RuntimeError at import
        labels = [data.classes.index(f.split("/")[0]) for f in data.files]
        ds = PILImageFolder(root, data.files, labels, data.mean, data.std)
        how = f"PIL + numpy, torchvision's steps (torchvision does not import here: {str(e).splitlines()[0][:60]})"
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         drop_last=True, persistent_workers=workers > 0)
    return loader, how


def _endless(loader):
    while True:
        yield from loader


class _Clock:
    """Wall time and this process's CPU time (all its threads; DataLoader workers are
    other processes and not counted). With one torch thread on a busy machine the CPU
    time is the step's own cost; the wall time adds every wait for a core."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


class Pipelines:
    """The three loops for one model; each ``run(k)`` does ``k`` steps, returns a _Clock."""

    def __init__(self, name: str, data, batch_size: int, loader, bf16: bool = False):
        self.name, self.data, self.bs, self.bf16 = name, data, batch_size, bf16
        self.device = torch.device("cpu")
        self.recipe = RECIPES["short"]
        self.models = {}
        for kind in ("bare", "trainer", "pil"):
            torch.manual_seed(0)
            m = create_model(name, num_classes=len(data.classes)).to(memory_format=torch.channels_last).train()
            self.models[kind] = (m, build_optimizer(m, self.recipe))
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(data.train.images), generator=g)[:batch_size]
        self.bare_x = to_model_input(data.train.images[idx], data.mean, data.std, self.device, channels_last=True)
        self.bare_y = data.train.labels[idx]
        self.step = 0
        m, opt = self.models["trainer"]
        self.stepper = Stepper(m, opt, data.train.images, data.train.labels, data.mean, data.std, Augmenter(),
                               self.device, bf16, batch_size=batch_size)
        self.stepper.set_epoch(torch.randperm(len(data.train.images), generator=g))  # one epoch's order
        self.steps_per_epoch = len(data.train.images) // batch_size
        self.batches = _endless(loader)
        self.runs = {"bare": self.bare, "trainer": self.trainer, "pil": self.pil}

    def bare(self, k: int) -> _Clock:
        m, opt = self.models["bare"]
        with _Clock() as clock:
            for _ in range(k):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                    logits = m(self.bare_x)
                loss = F.cross_entropy(logits.float(), self.bare_y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return clock

    def trainer(self, k: int) -> _Clock:
        with _Clock() as clock:
            for _ in range(k):
                self.stepper.step(self.step % self.steps_per_epoch, self.step,
                                  learning_rate(self.recipe, self.step, self.steps_per_epoch))
                self.step += 1
                if self.step % 50 == 0:  # the trainer's --check-every default
                    self.stepper.read()
        return clock

    def pil(self, k: int) -> _Clock:
        m, opt = self.models["pil"]
        with _Clock() as clock:
            for _ in range(k):
                x, y = next(self.batches)
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                    logits = m(x)
                loss = F.cross_entropy(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return clock


def _table(results: dict, clock: str, batch_size: int) -> dict:
    """Prints one clock's table; returns the median seconds per step."""
    # Medians, not means: a busy machine adds long outliers to some steps.
    med = {name: {k: statistics.median(t[clock] for t in ts) for k, ts in times.items()}
           for name, times in results.items()}
    print(f"{'model':<16}{'pipeline':<10}{'images/s':>10}{'ms/step':>10}{'vs bare':>9}   "
          "paired per-round ratio to bare: median [quartiles]")
    for name, times in results.items():
        for k, ts in times.items():
            t = med[name][k]
            ratios = [b[clock] / x[clock] for b, x in zip(times["bare"], ts, strict=True)]
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            print(f"{name:<16}{k:<10}{batch_size / t:>10.1f}{1000 * t:>10.0f}{med[name]['bare'] / t:>9.1%}   "
                  f"{statistics.median(ratios):.1%} [{q[0]:.1%}, {q[2]:.1%}]"
                  + ("   target >= 90%" if k == "trainer" else ""))
    return med


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet20", "wsms_resnet20"])
    p.add_argument("--data", default="imagefolder:../shared/datasets/cifar10-jpeg")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="timed steps per pipeline and model")
    p.add_argument("--rounds", type=int, help="interleaved rounds the steps are split into (default: one a step)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per pipeline first")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the PIL pipeline")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: every pipeline's forward under CPU bf16 autocast, as the trainer's --precision bf16")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    data = load_dataset(args.data, cache_dir=args.cache_dir)
    loader, how = pil_loader(data, args.batch_size, args.workers)
    rounds = args.rounds or args.steps
    per_round = max(1, args.steps // rounds)
    print(f"training throughput, {args.precision}, batch {args.batch_size}, {torch.get_num_threads()} torch thread(s), "
          f"{args.workers} DataLoader worker(s); torch {torch.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} cores; {rounds} rounds x {per_round} step(s) of every model and pipeline, "
          f"interleaved, after {args.warmup} warm-up steps")
    print(f"pil pipeline: {how}")
    pipes = {name: Pipelines(name, data, args.batch_size, loader, args.precision == "bf16") for name in args.models}
    for pipe in pipes.values():
        for run in pipe.runs.values():
            run(args.warmup)
    results = {name: {k: [] for k in pipe.runs} for name, pipe in pipes.items()}
    for _ in range(rounds):  # every model and pipeline in each round: a load change hits them all
        for name, pipe in pipes.items():
            for k, run in pipe.runs.items():
                c = run(per_round)
                results[name][k].append({"wall": c.wall / per_round, "cpu": c.cpu / per_round})
    load1 = os.getloadavg()[0]

    meds = {}
    for clock, title in (("wall", "wall-clock time"), ("cpu", "CPU time of this process")):
        print(f"\n{title}:")
        meds[clock] = _table(results, clock, args.batch_size)
    base = next((m for m in results if model_family(m) == "baseline"), None)
    for name in results:
        if base and name != base and name.endswith(base):
            mb, mw = count_mults(base), count_mults(name)
            print(f"\n{name} vs {base}: multiplications x{mw / mb:.3f} ({mb / 1e6:.1f}M -> {mw / 1e6:.1f}M per image, "
                  "count_mults; the paper: about +20%); median time per training step " + "; ".join(
                      f"{clock} x{meds[clock][name]['bare'] / meds[clock][base]['bare']:.3f} (bare), "
                      f"x{meds[clock][name]['trainer'] / meds[clock][base]['trainer']:.3f} (trainer)"
                      for clock in ("wall", "cpu")))
    print(f"\nload average {load0:.1f} at the start, {load1:.1f} at the end, on {os.cpu_count()} cores", end="")
    if max(load0, load1) > 0.5:
        print(": other processes (e.g. a training run) competed for the CPU. Everything is interleaved, so the "
              "ratios hold up better than the absolute images/s; with one thread the CPU-time table is the "
              "steps' own cost, the wall-clock one adds the waits for a core")
    else:
        print()


if __name__ == "__main__":
    main()
