"""GPU training throughput: the trainer's step against bare eager and bare captured steps,
and the total of N training processes sharing one GPU. Prints a Markdown table.

    python benchmarks/gpu_throughput.py --out $OUT/gpu_throughput.md     # CUDA: ~6 minutes on an H100
    python benchmarks/gpu_throughput.py --device cpu --models resnet20 --steps 2 --warmup 1 \\
        --concurrency 1 2 --seconds 2                                      # the CPU path (a test runs it)

Per model, in this one process, batch 128 of synthetic uint8 images (the speed does not
depend on the pixels), the trainer's recipe (SGD, momentum, weight decay), bf16 autocast
and channels_last on CUDA (``--precision fp32`` for fp32):

* ``bare eager``: forward, loss, backward, SGD step on one normalised batch already on
  the device; no data work, every kernel launched from Python.
* ``bare graph``: that step recorded once as a CUDA graph and replayed (CUDA only).
* ``bare compile``: that step under ``torch.compile(mode="reduce-overhead")``, CUDA
  graphs of Inductor's kernels (CUDA, the ``--compile`` models only: minutes each); its
  setup time is the compile time. The reference the trainer is measured against.
* ``trainer <capture>``: :class:`wsms_viz.train.Stepper`, what ``python -m wsms_viz.train
  --capture <capture>`` runs for each step: the batch gathered on the device from a
  45,000-image uint8 training set in the epoch's order, the keyed augmentation (pad-crop
  and flip), forward, loss, backward, step, the running sums, read back every 50 steps.
  Not in it: the per-epoch evaluation and save (the training logs' ``images_per_s``
  has those).

"vs ref" divides by the model's best bare captured step measured here. Then ``N runs``:
N processes each training ``--concurrent`` models' Stepper (``--capture`` of
``--concurrent-capture``) for ``--seconds`` at the same time; the total images/s of all.
Every step count ends with a device synchronisation; setup (capture, compile, first
steps) is timed apart. ``--budget`` seconds bounds the whole run: what does not fit is
reported as skipped, and each row is written to ``--out`` as soon as it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsms_viz.data import Augmenter, to_model_input  # noqa: E402
from wsms_viz.models import create_model  # noqa: E402
from wsms_viz.train import RECIPES, Stepper, build_optimizer, learning_rate  # noqa: E402

MODELS = ["resnet20", "wsms_resnet20", "sc_resnet20", "resnet110", "wsms_resnet110"]
TRAIN_IMAGES = 45_000
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(name: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=10).to(device).to(memory_format=torch.channels_last).train()


def _data(device: torch.device, n: int = TRAIN_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return images.to(device), torch.randint(0, 10, (n,), generator=g).to(device)


class Bare:
    """The bare step of one model: eager, recorded as a CUDA graph, or compiled."""

    def __init__(self, name: str, device: torch.device, bf16: bool, how: str, batch: int):
        self.device, self.bf16, self.how = device, bf16, how
        self.model = _model(name, device)
        self.opt = build_optimizer(self.model, RECIPES["paper"], {"eager": "none", "graph": "graph",
                                                                  "compile": "compile"}[how])
        images, labels = _data(device, batch)
        self.x = to_model_input(images, MEAN, STD, device, channels_last=True)
        self.y = labels
        self.graph = None
        self.fn = torch.compile(self._step, mode="reduce-overhead") if how == "compile" else self._step

    def _step(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16,
                            cache_enabled=self.how == "eager"):
            logits = self.model(self.x)
        loss = F.cross_entropy(logits.float(), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def __call__(self) -> None:
        if self.how != "graph":
            self.fn()
            return
        if self.graph is None:  # warm up on a side stream, then record (torch.cuda.graphs' recipe)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.opt.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._step()
        self.graph.replay()


class Trainer:
    """The trainer's :class:`Stepper` over a synthetic training set on the device."""

    def __init__(self, name: str, device: torch.device, bf16: bool, capture: str, batch: int,
                 train_images: int = TRAIN_IMAGES):
        model = _model(name, device)
        opt = build_optimizer(model, RECIPES["paper"], capture)
        images, labels = _data(device, train_images)
        self.stepper = Stepper(model, opt, images, labels, MEAN, STD, Augmenter(), device, bf16, capture, batch,
                               fallback=False)  # a failed capture is a result here
        self.stepper.set_epoch(torch.randperm(len(images), generator=torch.Generator().manual_seed(0)))
        self.spe, self.step = len(images) // batch, 0
        self.recipe = RECIPES["paper"]

    def __call__(self) -> None:
        self.stepper.step(self.step % self.spe, self.step, learning_rate(self.recipe, self.step, self.spe))
        self.step += 1
        if self.step % 50 == 0:  # the trainer's --check-every default
            self.stepper.read()


def measure(make, device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds per step, setup seconds): ``make()`` and ``warmup`` steps, then ``steps`` timed."""
    t0 = time.perf_counter()
    step = make()
    for _ in range(warmup):
        step()
    _sync(device)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t1) / steps, setup


def worker(args) -> None:
    """One of the N concurrent processes: set up, say ready, wait for go, train for
    ``--seconds``, print what it did as JSON."""
    device = torch.device(args.device)
    t = Trainer(args.worker, device, args.precision == "bf16" and device.type == "cuda", args.concurrent_capture,
                args.batch_size, args.train_images)
    for _ in range(args.warmup):
        t()
    _sync(device)
    print("ready", flush=True)
    sys.stdin.readline()
    n, t0 = 0, time.perf_counter()
    chunk = 10 if device.type == "cuda" else 1  # steps between looks at the clock (each waits for the GPU)
    while time.perf_counter() - t0 < args.seconds:
        for _ in range(chunk):
            t()
        n += chunk
        _sync(device)
    print(json.dumps({"images": n * args.batch_size, "seconds": time.perf_counter() - t0}), flush=True)


def concurrent(args, model: str, n: int) -> tuple[float, float]:
    """Total images/s of ``n`` processes training ``model`` at once, and their setup seconds."""
    cmd = [sys.executable, __file__, "--worker", model, "--device", args.device, "--seconds", str(args.seconds),
           "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--precision", args.precision,
           "--concurrent-capture", args.concurrent_capture, "--train-images", str(args.train_images)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // n))}
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(n)]
    try:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker failed during setup (exit {p.wait()})")
        setup = time.perf_counter() - t0
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.stdin.close() if not p.stdin.closed else None
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
    return sum(r["images"] / r["seconds"] for r in results), setup


class Table:
    def __init__(self, out: Path | None, header: str):
        self.out, self.lines = out, [header, "",
                                     "| model | step | images/s | ms/step | vs ref | setup s |",
                                     "|---|---|---:|---:|---:|---:|"]
        self._flush()

    def row(self, *cells) -> None:
        self.lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        print(self.lines[-1], flush=True)
        self._flush()

    def note(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)
        self._flush()

    def _flush(self) -> None:
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text("\n".join(self.lines) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=60, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per row first (after any capture)")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="bf16 autocast on CUDA (default)")
    p.add_argument("--captures", nargs="+", default=["graph", "none"], help="the trainer's --capture modes to time")
    p.add_argument("--compile", nargs="*", default=["resnet110"], metavar="MODEL",
                   help="models whose bare step (and trainer, if 'compile' is in --captures) is compiled: "
                        "minutes each (default: resnet110)")
    p.add_argument("--concurrency", type=int, nargs="*", default=[1, 2, 4, 8], help="N for the N-runs rows")
    p.add_argument("--concurrent", nargs="*", default=["resnet20"], help="models of the N-runs rows")
    p.add_argument("--concurrent-capture", default=None, help="their --capture (default: graph on CUDA)")
    p.add_argument("--seconds", type=float, default=15, help="how long the N runs train together")
    p.add_argument("--budget", type=float, default=540, help="seconds for everything; the rest is skipped")
    p.add_argument("--out", type=Path, help="also write the table here (updated after every row)")
    p.add_argument("--train-images", type=int, default=TRAIN_IMAGES,
                   help="size of the synthetic training set the trainer rows gather from (default: 45,000)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.concurrent_capture = args.concurrent_capture or ("graph" if cuda else "none")
    if args.worker:
        worker(args)
        return
    bf16 = args.precision == "bf16" and cuda
    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if cuda else f"{platform.machine()} CPU, {os.cpu_count()} cores"
    table = Table(args.out, f"GPU training throughput on {name}: torch {torch.__version__}, batch {args.batch_size}, "
                            f"{'bf16 autocast' if bf16 else 'fp32'}, channels_last; {args.steps} timed steps a row "
                            f"after {args.warmup} warm-up steps")

    def over() -> bool:
        return time.perf_counter() - start > args.budget

    for model in args.models:
        rows = [("bare eager", lambda m=model: Bare(m, device, bf16, "eager", args.batch_size))]
        rows.append(("bare graph", (lambda m=model: Bare(m, device, bf16, "graph", args.batch_size)) if cuda
                     else None))
        if model in args.compile:
            rows.append(("bare compile", (lambda m=model: Bare(m, device, bf16, "compile", args.batch_size)) if cuda
                         else None))
        for capture in args.captures:
            if capture == "compile" and model not in args.compile:
                continue
            ok = cuda or capture == "none"
            rows.append((f"trainer {capture}", (lambda m=model, c=capture: Trainer(
                m, device, bf16, c, args.batch_size, args.train_images)) if ok else None))
        measured = {}
        for label, make in rows:
            if make is None:
                table.row(model, label, "unavailable (no CUDA)", "", "", "")
                continue
            if over():
                table.row(model, label, "skipped (--budget)", "", "", "")
                continue
            try:
                sec, setup = measure(make, device, args.warmup, args.steps)
            except Exception as e:  # a failed capture is a result, not the end of the benchmark
                table.row(model, label, f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}", "", "", "")
                continue
            measured[label] = sec
            ref = min((measured[k] for k in ("bare graph", "bare compile") if k in measured), default=None)
            table.row(model, label, f"{args.batch_size / sec:,.0f}", f"{1000 * sec:.2f}",
                      f"{ref / sec:.0%}" if ref else "", f"{setup:.1f}")
            if cuda:
                torch.cuda.empty_cache()
    for model in args.concurrent:
        for n in args.concurrency:
            if over():
                table.row(model, f"{n} runs", "skipped (--budget)", "", "", "")
                continue
            try:
                total, setup = concurrent(args, model, n)
            except Exception as e:
                table.row(model, f"{n} runs", f"failed: {e}", "", "", "")
                continue
            table.row(model, f"{n} runs, trainer {args.concurrent_capture}", f"{total:,.0f} total",
                      f"{1000 * args.batch_size * n / total:.2f} each", "", f"{setup:.1f}")
    table.note(f"\n{time.perf_counter() - start:.0f} s in all. Command: python benchmarks/gpu_throughput.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
