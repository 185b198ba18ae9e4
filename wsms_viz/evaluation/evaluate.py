"""Scale robustness of trained checkpoints, with the uncertainty one seed leaves.

``python -m wsms_viz.evaluation.evaluate CKPT_DIR [CKPT_DIR ...] --data imagefolder:../shared/datasets/cifar10-jpeg``

For every checkpoint: top-1 accuracy on the val split (the last 10% of each class,
never trained on) at each zoom factor of :data:`wsms_viz.evaluation.metrics.DEFAULT_ZOOMS`, through
the one zoom transform (:func:`wsms_viz.zoom.zoom`). It prints one table and stores the
curve in the checkpoint's card (``card["scale_robustness"]``; the card is rewritten
atomically and the weights, and so their sha256, are not touched).

``--tta`` adds, for each checkpoint, a row with VGG-style multi-scale test-time
averaging: at each zoom ``z`` the softmax outputs at ``z * s`` for ``s`` in
``--tta-scales`` are averaged. The default scales ``0.875, 1, 1.125`` are the lecture's
``Q = {S - 32, S, S + 32}`` for a model trained at a single scale ``S = 256`` (VGG
section 4.2, Table 4), as ratios to ``S``. That row asks whether a plain network
evaluated at several scales gets what WSMS-Net gets from a single pass.

Differences from the baseline (``--baseline``, default the first checkpoint that is
not a multi-stage net) come with a paired bootstrap 95% interval over the val images
(the same resampled images for both models), at zoom 1 and for the mean over zooms.
The card keeps them (``vs_baseline``), with each curve's own 95% bootstrap interval
at every zoom (``val_acc_ci``, ``mean_acc_ci``), for the app to show.
That interval only covers which val images were drawn. Training another seed moves a
model's accuracy as well: He et al. report a run-to-run standard deviation of 0.16
points for ResNet-110 on CIFAR-10, about +-0.45 points (1.96 * sqrt(2) * 0.16) on a
difference of two single-seed models. The ``seed-aware`` column adds that spread to
the bootstrap's; a difference that survives only without it needs more seeds.

Paper section 4.1, Fig. 5: the val images the baseline gets wrong and the WSMS-Net
(``--wsms``, default the first ``wsms_*`` checkpoint) gets right at zoom 1, a random
``--examples`` of them, and as many random val images for comparison (Fig. 5(b)), go
to ``examples.json`` beside the checkpoints (``--examples-out``) for the app to show.
"""

from __future__ import annotations

import argparse
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._cli import add_val_data_arguments, at_least, bad_input_exits_2, writing
from ..cards import CARD_VERSION, ScaleRobustness
from ..checkpoint import CheckpointError, atomic_write_json, load_checkpoint, read_card, write_card
from ..data import Dataset, imagefolder_root, load_dataset, parse_source
from ..models import list_models, model_family
from ..zoom import MAX_ZOOM, MIN_ZOOM, TTA_SCALES, effective_zoom
from .metrics import DEFAULT_ZOOMS, accuracy_from_probs, probs_vs_zoom

SEED_SPREAD = 0.0016  # He et al. 2016, ResNet-110 on CIFAR-10: std of accuracy over runs (0.16 points)


# --- statistics ---------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A difference of accuracies ``a - b`` (fractions) and its bootstrap interval."""

    diff: float
    lo: float
    hi: float
    level: float
    resamples: int
    images: int

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def with_seed_spread(self, spread: float = SEED_SPREAD) -> tuple[float, float]:
        """The interval widened by the seed-to-seed spread of two independent models
        (half-widths added in quadrature; normal approximation)."""
        z = _normal_quantile(0.5 + self.level / 2)
        half = math.hypot((self.hi - self.lo) / 2, z * math.sqrt(2) * spread)
        return self.diff - half, self.diff + half


def _normal_quantile(p: float) -> float:
    return float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))


def paired_bootstrap(correct_a, correct_b, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """Paired bootstrap interval of ``accuracy(a) - accuracy(b)`` over images.

    Each resample draws the images with replacement and scores both models on the same
    draw, so what the two have in common (easy and hard images) cancels.

    Args:
        correct_a: per-image correctness of model a, ``(N,)``; or ``(Z, N)`` for a
            sweep of zooms, in which case the statistic is the difference of the mean
            accuracy over zooms (the images are resampled, the zooms kept).
        correct_b: the same for model b, on the same images in the same order.
        resamples: bootstrap resamples.
        seed: the resampling is repeatable.
        level: coverage of the percentile interval.

    Example:
        >>> iv = paired_bootstrap([1, 1, 0, 1], [1, 0, 0, 1], resamples=200)
        >>> iv.diff
        0.25
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] == 0:
        raise ValueError(f"need two equal (N,) or (Z, N) arrays of correctness, got {a.shape} and {b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    d = a - b
    if d.ndim == 2:  # the mean over zooms is linear: average per image first
        d = d.mean(0)
    n = d.shape[0]
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # bounded memory for the index matrix
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        stats[start:start + k] = d[rng.integers(0, n, size=(k, n))].mean(1)
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(d.mean()), float(lo), float(hi), level, resamples, n)


def bootstrap_accuracy(correct, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """Bootstrap interval of one model's accuracy over images (``(N,)``), or of its mean
    accuracy over zooms (``(Z, N)``): :func:`paired_bootstrap` against a model that is
    never right.

    Example:
        >>> iv = bootstrap_accuracy([1, 1, 0, 1], resamples=200)
        >>> iv.diff, 0 <= iv.lo <= iv.diff <= iv.hi <= 1
        (0.75, True)
    """
    c = np.asarray(correct, dtype=np.float64)
    return paired_bootstrap(c, np.zeros_like(c), resamples, seed, level)


def resolved(iv: Interval, same_weights: bool = False, seed_spread: float = SEED_SPREAD) -> tuple[float, float, str]:
    """The interval a reader should judge a difference by, and the verdict.

    Returns ``(lo, hi, verdict)``: the bootstrap interval widened by the seed-to-seed
    spread of two independently trained models (not widened when both rows come from
    the same weights, e.g. a model and its TTA row, which share their training noise),
    and ``"yes"`` when that interval excludes 0, ``"one seed only"`` when only the bare
    bootstrap interval does (more seeds are needed to tell), else ``"no"``.
    """
    lo, hi = (iv.lo, iv.hi) if same_weights else iv.with_seed_spread(seed_spread)
    verdict = "yes" if lo > 0 or hi < 0 else ("one seed only" if iv.excludes_zero else "no")
    return lo, hi, verdict


# --- multi-scale test-time averaging --------------------------------------------------

def tta_zooms(zooms: Sequence[float], scales: Sequence[float] = TTA_SCALES) -> list[float]:
    """Every factor the multi-scale average at ``zooms`` needs, sorted."""
    return sorted({_scaled(z, s) for z in zooms for s in scales})


def _scaled(z: float, s: float) -> float:
    return round(min(MAX_ZOOM, max(MIN_ZOOM, z * s)), 6)


def tta_probs(probs: dict[float, Tensor], zoom: float, scales: Sequence[float] = TTA_SCALES) -> Tensor:
    """The softmax outputs at ``zoom * s`` averaged over ``scales`` (VGG's multi-scale
    evaluation, which averages the class posteriors)."""
    return torch.stack([probs[_scaled(zoom, s)] for s in scales]).mean(0)


# --- evaluating checkpoints -----------------------------------------------------------

@dataclass
class Row:
    """One line of the table: a checkpoint, or a checkpoint with test-time averaging."""

    label: str
    model: str
    zooms: list[float]
    val_acc: list[float]
    correct: np.ndarray  # bool (Z, N)
    probs1: Tensor  # (N, classes) probabilities at zoom 1 (averaged for a TTA row)
    path: Path | None = None
    tta: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def mean_acc(self) -> float:
        return sum(self.val_acc) / len(self.val_acc)

    def correct_at(self, zoom: float) -> np.ndarray:
        return self.correct[self.zooms.index(zoom)]


def evaluate_model(model: torch.nn.Module, images: Tensor, labels: Tensor, zooms: Sequence[float], mean, std,
                   label: str, tta_scales: Sequence[float] | None = None, **kw) -> list[Row]:
    """The accuracy rows of one model: the plain sweep, and the TTA sweep if asked.

    Args:
        model: in eval mode.
        images: uint8 ``(N, 3, H, W)``; labels: ``(N,)``.
        zooms: the sweep; must contain 1.0.
        mean, std: the normalisation the model was trained with.
        label: the row's name.
        tta_scales: the scales of the multi-scale average, or None for no TTA row.
        **kw: passed to :func:`wsms_viz.evaluation.metrics.predict_at_zoom` (batch_size, device).
    """
    zooms = [float(z) for z in zooms]
    if 1.0 not in zooms:
        raise ValueError(f"the zoom sweep must contain 1.0, got {zooms}")
    need = set(zooms) | (set(tta_zooms(zooms, tta_scales)) if tta_scales else set())
    probs = probs_vs_zoom(model, images, sorted(need), mean, std, **kw)
    curve = accuracy_from_probs(probs, labels, zooms)
    rows = [Row(label, getattr(model, "model_name", "?"), zooms, curve["val_acc"],
                np.array([curve["correct"][z] for z in zooms], dtype=bool), probs[1.0])]
    if tta_scales:
        avg = {z: tta_probs(probs, z, tta_scales) for z in zooms}
        t = accuracy_from_probs(avg, labels, zooms)
        rows.append(Row(f"{label} +tta", rows[0].model, zooms, t["val_acc"],
                        np.array([t["correct"][z] for z in zooms], dtype=bool), avg[1.0], tta=True))
    return rows


def pick_baseline(rows: list[Row], name: str | None = None) -> Row:
    """The row named ``name``, else the first plain (non-TTA) row of a single-stage net."""
    plain = [r for r in rows if not r.tta]
    if name is not None:
        for r in rows:
            if r.label == name:
                return r
        raise ValueError(f"--baseline {name!r} is none of {[r.label for r in rows]}")
    return next((r for r in plain if _family(r.model) == "baseline"), plain[0])


def pick_wsms(rows: list[Row], name: str | None = None) -> Row | None:
    """The row named ``name``, else the first plain WSMS-Net row; None if there is none."""
    if name is not None:
        for r in rows:
            if r.label == name:
                return r
        raise ValueError(f"--wsms {name!r} is none of {[r.label for r in rows]}")
    return next((r for r in rows if not r.tta and _family(r.model) == "wsms"), None)


def _family(model: str) -> str | None:
    return model_family(model) if model in list_models() else None


def compare(rows: list[Row], baseline: Row, resamples: int = 2000,
            seed: int = 0) -> list[tuple[Row, Interval, Interval]]:
    """Each other row against ``baseline``: the interval at zoom 1 and over the sweep."""
    out = []
    for r in rows:
        if r is baseline:
            continue
        at1 = paired_bootstrap(r.correct_at(1.0), baseline.correct_at(1.0), resamples, seed)
        mean = paired_bootstrap(r.correct, baseline.correct, resamples, seed)
        out.append((r, at1, mean))
    return out


# --- the paper's Fig. 5 examples ------------------------------------------------------

def select_examples(labels: Tensor, baseline_probs: Tensor, wsms_probs: Tensor, n: int,
                    seed: int = 0) -> tuple[list[int], list[int], list[int]]:
    """Positions of up to ``n`` random images the baseline gets wrong and the WSMS-Net
    right (Fig. 5(a)), of as many random images of all (Fig. 5(b)), and of up to ``n``
    the other way round (baseline right, WSMS wrong: the paper shows none, and without
    them the first list is cherry-picked), each sorted."""
    b_ok = baseline_probs.argmax(1) == labels
    w_ok = wsms_probs.argmax(1) == labels
    candidates = (~b_ok & w_ok).nonzero().flatten()
    g = torch.Generator().manual_seed(seed)
    chosen = candidates[torch.randperm(len(candidates), generator=g)[:n]]
    random = torch.randperm(len(labels), generator=g)[:len(chosen)]
    other = (b_ok & ~w_ok).nonzero().flatten()  # drawn last: the first two lists stay as they were
    reverse = other[torch.randperm(len(other), generator=g)[:n]]
    return sorted(chosen.tolist()), sorted(random.tolist()), sorted(reverse.tolist())


def example_records(positions: list[int], data: Dataset, val_index: list[int], labels: Tensor,
                    baseline: Row, wsms: Row) -> list[dict]:
    """The JSON records of ``examples.json`` for val positions ``positions``.

    ``val_index[i]`` is the source index (position in the dataset, e.g. in
    ``data.files``) of val image ``i``.
    """
    out = []
    for i in positions:
        src = val_index[i]
        rec = {"file": data.files[src] if data.files else None, "index": src, "source": data.source,
               "label": data.classes[int(labels[i])]}
        for key, row in (("baseline", baseline), ("wsms", wsms)):
            p = row.probs1[i]
            k = int(p.argmax())
            rec[key] = {"name": row.label, "pred": data.classes[k], "prob": round(float(p[k]), 4)}
        out.append(rec)
    return out


# --- cards ------------------------------------------------------------------------------

def _intervals(row: Row, resamples: int, seed: int) -> dict:
    """95% bootstrap intervals of a row's accuracy at each zoom and of its mean."""
    per_zoom = [bootstrap_accuracy(c, resamples, seed) for c in row.correct]
    mean = bootstrap_accuracy(row.correct, resamples, seed)
    return {"val_acc_ci": [[iv.lo, iv.hi] for iv in per_zoom], "mean_acc_ci": [mean.lo, mean.hi]}


def _difference(row: Row, baseline: Row, at1: Interval, mean: Interval, seed_spread: float) -> dict:
    out = {"baseline": baseline.label}
    for key, iv in (("at_zoom_1", at1), ("mean", mean)):
        lo, hi, verdict = resolved(iv, row.path == baseline.path, seed_spread)
        out[key] = {"diff": iv.diff, "ci": [iv.lo, iv.hi], "seed_aware_ci": [lo, hi], "resolved": verdict}
    return out


def scale_robustness_entry(row: Row, tta_row: Row | None, data: Dataset, tta_scales, *,
                           comparisons=(), baseline: Row | None = None, resamples: int = 2000, seed: int = 0,
                           seed_spread: float = SEED_SPREAD) -> dict:
    """``card["scale_robustness"]``: the curve, its 95% bootstrap intervals and, for a
    row that is not the baseline, its difference from the baseline (from ``comparisons``,
    the output of :func:`compare`), plus the same for the TTA row."""
    entry = {"zooms": row.zooms, "val_acc": row.val_acc, "mean_acc": row.mean_acc,
             "data": data.source, "split": "val", "val_images": int(row.correct.shape[1]),
             "transform": "wsms_viz.zoom.zoom, centre (0.5, 0.5), fill = dataset mean",
             "ci_level": 0.95, "resamples": resamples, "seed_spread": seed_spread}
    entry |= _intervals(row, resamples, seed)
    diffs = {id(r): (at1, mean) for r, at1, mean in comparisons}
    if baseline is not None and id(row) in diffs:
        entry["vs_baseline"] = _difference(row, baseline, *diffs[id(row)], seed_spread)
    if tta_row is not None:
        entry["tta"] = {"scales": list(tta_scales), "val_acc": tta_row.val_acc, "mean_acc": tta_row.mean_acc}
        entry["tta"] |= _intervals(tta_row, resamples, seed)
        if baseline is not None and id(tta_row) in diffs:
            entry["tta"]["vs_baseline"] = _difference(tta_row, baseline, *diffs[id(tta_row)], seed_spread)
    return entry


def update_card(directory: Path, entry: dict, run_id: str | None = None) -> None:
    """Replaces ``card["scale_robustness"]`` (atomically, validated), stamped with
    ``run_id``; every other field, the sha256 of the weights included, stays as it was."""
    card = read_card(directory)
    sr = ScaleRobustness.parse({**entry, **({"run_id": run_id} if run_id else {})}, str(directory))
    with writing(Path(directory) / "card.json"):
        write_card(directory, card.replace(scale_robustness=sr, card_version=CARD_VERSION))


def new_run_id() -> str:
    """An id shared by every card one evaluator run writes: the report refuses to put
    cards of different runs in one table (a run killed between two card writes leaves
    a mix, which the report then names)."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


# --- printing -------------------------------------------------------------------------

def format_table(rows: list[Row], size: int = 32) -> str:
    width = max(12, *(len(r.label) for r in rows)) + 2
    zooms = rows[0].zooms
    head = "model".ljust(width) + "".join(f"{z:>8g}" for z in zooms) + "    mean"
    eff = "(effective)".ljust(width) + "".join(f"{effective_zoom(size, z):>8.3g}" for z in zooms)
    lines = [head, eff]
    for r in rows:
        lines.append(r.label.ljust(width) + "".join(f"{100 * a:8.2f}" for a in r.val_acc) + f"{100 * r.mean_acc:8.2f}")
    return "\n".join(lines)


def _pts(x: float) -> str:
    return f"{100 * x:+.2f}"


def format_comparisons(comparisons, baseline: Row, seed_spread: float = SEED_SPREAD) -> str:
    if not comparisons:
        return ""
    iv = comparisons[0][1]
    width = max(12, *(len(r.label) for r, _, _ in comparisons)) + 2
    lines = [f"difference from {baseline.label} in points: paired bootstrap over the {iv.images} val images "
             f"({iv.resamples} resamples, {iv.level:.0%} percentile interval)",
             "model".ljust(width) + f"{'at zoom 1':<25}{'resolved?':<16}{'mean over zooms':<25}resolved?"]
    for r, at1, mean in comparisons:
        cells = []
        for iv in (at1, mean):
            _, _, verdict = resolved(iv, r.path == baseline.path, seed_spread)
            cells.append(f"{_pts(iv.diff):>6} [{_pts(iv.lo)}, {_pts(iv.hi)}]".ljust(25) + verdict.ljust(16))
        lines.append(r.label.ljust(width) + "".join(cells).rstrip())
    source = "He et al.'s ResNet-110" if seed_spread == SEED_SPREAD else "--seed-spread"
    lines.append(f"resolved? yes: the interval, widened by the seed-to-seed spread of two independently trained "
                 f"models ({100 * seed_spread:.2f} points std each, {source}; +-"
                 f"{100 * 1.96 * math.sqrt(2) * seed_spread:.2f} points at 95%), excludes 0; one seed only: just the "
                 "bootstrap interval excludes 0, so more seeds are needed to tell; no: not even that. The spread "
                 "of fully trained nets; short runs vary more: measure yours with two seeds")
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wsms_viz.evaluation.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_val_data_arguments(p)
    p.add_argument("--zooms", type=float, nargs="+", default=list(DEFAULT_ZOOMS), help="zoom factors (1.0 is added)")
    p.add_argument("--tta", action="store_true", help="add a multi-scale test-time averaging row per checkpoint")
    p.add_argument("--tta-scales", type=float, nargs="+", default=list(TTA_SCALES))
    p.add_argument("--baseline", help="row the others are compared with (default: first single-stage net)")
    p.add_argument("--wsms", help="row whose wins over the baseline are the examples (default: first wsms_*)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the example draw")
    p.add_argument("--seed-spread", type=float, default=100 * SEED_SPREAD, metavar="POINTS",
                   help="run-to-run std of one model's accuracy, in points (default: He et al.'s 0.16)")
    p.add_argument("--examples", type=int, default=32, help="how many Fig. 5(a) examples (0: none)")
    p.add_argument("--examples-out", type=Path,
                   help="where examples.json goes (default: beside the checkpoints, in their common parent)")
    p.add_argument("--val-subset", type=int,
                   help="a fixed random N of the val images (quick looks; cards are then not updated)")
    p.add_argument("--no-card", action="store_true", help="do not write the curves into the cards")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    return p


def run(args) -> dict:
    """The command's work; returns the rows, comparisons and the examples file."""
    for flag, lo in (("examples", 0), ("resamples", 1), ("batch_size", 1), ("val_subset", 1), ("threads", 1)):
        at_least(getattr(args, flag), lo, "--" + flag.replace("_", "-"))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    zooms = sorted({float(z) for z in args.zooms} | {1.0})
    for z in zooms + [float(s) for s in (args.tta_scales if args.tta else [])]:
        if not MIN_ZOOM <= z <= MAX_ZOOM:
            raise ValueError(f"zoom factors must be between {MIN_ZOOM} and {MAX_ZOOM}, got {z}")
    if len(set(args.checkpoints)) != len(args.checkpoints):
        raise ValueError("a checkpoint is listed twice")

    ckpts = [load_checkpoint(c, device) for c in args.checkpoints]  # fail before the slow part
    data = load_dataset(args.data, cache_dir=args.cache_dir, download=args.download)
    images, labels, val_index = data.val.images, data.val.labels, list(data.val.indices)
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable image(s): {', '.join(data.skipped[:5])}")
    if args.val_subset:
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: args.val_subset]
        images, labels, val_index = images[pick], labels[pick], [val_index[i] for i in pick.tolist()]
    print(f"{data.source}: {len(labels)} val images ({data.describe()['split']}), {len(ckpts)} checkpoint(s), "
          f"zooms {', '.join(f'{z:g}' for z in zooms)}"
          + (f"; multi-scale averaging over {', '.join(f'{s:g}' for s in args.tta_scales)} x zoom" if args.tta else "")
          + f"; {device}, {torch.get_num_threads()} threads", flush=True)

    rows = _measure(ckpts, data, images, labels, zooms, args, device)
    print()
    print("val accuracy (%) at each zoom (wsms_viz.zoom.zoom about the centre; > 1 crops and enlarges, "
          "< 1 shrinks and pads with the mean colour)")
    print(format_table(rows, size=images.shape[-1]))
    baseline = pick_baseline(rows, args.baseline)
    comparisons = compare(rows, baseline, args.resamples, args.seed)
    if comparisons:
        print()
        print(format_comparisons(comparisons, baseline, args.seed_spread / 100))
    if not args.no_card and not args.val_subset:
        _write_cards(rows, data, comparisons, baseline, args)
    elif args.val_subset:
        print("\ncards not updated: --val-subset measures only part of the val split")
    examples = _write_examples(rows, baseline, data, labels, val_index, args)
    return {"rows": rows, "baseline": baseline, "comparisons": comparisons, "examples": examples}


def _measure(ckpts, data: Dataset, images: Tensor, labels: Tensor, zooms: list[float], args,
             device: torch.device) -> list[Row]:
    """The rows of every checkpoint (and its TTA row), each evaluated with its card's normalisation."""
    rows: list[Row] = []
    names = set()
    for ck in ckpts:
        label = ck.card.name or ck.path.name
        if label in names:
            label = str(ck.path)
        names.add(label)
        if list(ck.card.classes) != list(data.classes):
            raise CheckpointError(f"{ck.path}: trained on classes {list(ck.card.classes)}, the data has {data.classes}")
        trained_on = ck.card.data_source
        if trained_on and trained_on != data.source:
            print(f"note: {label} was trained on {trained_on}; evaluating on the val split of {data.source}")
        norm = ck.card.normalization
        mean, std = (norm.mean, norm.std) if norm else (data.mean, data.std)
        t0 = time.perf_counter()
        new = evaluate_model(ck.model, images, labels, zooms, mean, std, label,
                             args.tta_scales if args.tta else None, batch_size=args.batch_size, device=device)
        for r in new:
            r.path = ck.path
        rows += new
        print(f"  {label} ({ck.card.model}): {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def _write_cards(rows: list[Row], data: Dataset, comparisons, baseline: Row, args) -> None:
    """Every card of this run, stamped with one run id (:func:`new_run_id`)."""
    run_id = new_run_id()
    for r in rows:
        if not r.tta:
            tta_row = next((t for t in rows if t.tta and t.path == r.path), None)
            update_card(r.path, scale_robustness_entry(
                r, tta_row, data, args.tta_scales, comparisons=comparisons, baseline=baseline,
                resamples=args.resamples, seed=args.seed, seed_spread=args.seed_spread / 100), run_id)
    print(f"\nwrote card['scale_robustness'] (run {run_id}) of {', '.join(str(r.path) for r in rows if not r.tta)}")


def _write_examples(rows: list[Row], baseline: Row, data: Dataset, labels: Tensor, val_index: list[int],
                    args) -> dict | None:
    """Paper Fig. 5: ``examples.json``, the val images the baseline gets wrong and the
    WSMS-Net right at zoom 1, and as many random ones."""
    examples = None
    wsms = pick_wsms(rows, args.wsms)
    if args.examples > 0 and wsms is not None and wsms is not baseline:
        chosen, random, reverse = select_examples(labels, baseline.probs1, wsms.probs1, args.examples, args.seed)
        b_ok, w_ok = baseline.probs1.argmax(1) == labels, wsms.probs1.argmax(1) == labels
        n_cand, n_rev = int((~b_ok & w_ok).sum()), int((b_ok & ~w_ok).sum())
        out = args.examples_out or _common_parent([r.path for r in rows if not r.tta]) / "examples.json"
        kind, path = parse_source(data.source)
        examples = {
            "source": data.source,
            "image_root": str(imagefolder_root(path)) if kind == "imagefolder" else None,
            "split": "val" if not args.val_subset else f"val, random {len(labels)}",
            "zoom": 1.0, "baseline": baseline.label, "wsms": wsms.label,
            "candidates": n_cand, "reverse_candidates": n_rev, "seed": args.seed,
            "examples": example_records(chosen, data, val_index, labels, baseline, wsms),
            "random": example_records(random, data, val_index, labels, baseline, wsms),
            "reverse": example_records(reverse, data, val_index, labels, baseline, wsms),
        }
        with writing(out):
            atomic_write_json(out, examples)
        print(f"wrote {out}: {len(chosen)} of the {n_cand} val images {baseline.label} gets wrong and "
              f"{wsms.label} right (paper Fig. 5(a)), {len(random)} random val images (Fig. 5(b)), and "
              f"{len(reverse)} of the {n_rev} the other way round")
    elif args.examples > 0:
        print("no examples.json: it needs a baseline and a different wsms_* checkpoint")
    return examples


def _common_parent(paths: list[Path]) -> Path:
    parts = [p.resolve().parent.parts for p in paths]
    common = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return Path(*common) if common else Path(".")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with bad_input_exits_2():
        run(args)


if __name__ == "__main__":
    main()
