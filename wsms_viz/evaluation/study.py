"""The scale study: when does sharing weights across scales help? (The paper's section 5
asks for "controlled datasets containing many scales".)

Protocol (docs/scale-study.md repeats it):

* Data: the CIFAR-10 JPEG copy, the 45k/5k split of :func:`wsms_viz.data.load_dataset`;
  every figure is on the 5,000 val images, never trained on.
* Test zooms: ``2 ** (k / 4)`` for ``k = -8 ... 8`` (0.25x to 4x, 17 zooms), each through
  the project's one zoom transform (:func:`wsms_viz.zoom.zoom`, about the centre: > 1
  crops and enlarges, < 1 shrinks and pads with the mean colour; bilinear, antialiased).
* Training regimes, read from a card's ``recipe.scale_jitter`` by :func:`regime_of` (the
  trainer's :class:`wsms_viz.data.Augmenter` zooms an image with probability
  ``jitter_p`` = 0.5 by a factor drawn log-uniformly from the range):

  - *none*: no scale jitter. Its **trained range is zoom 1 only**: the pad-and-crop
    augmentation moves the image but never rescales it, so every training object was
    seen at scale 1. (Calling the pad-crop's few-pixel shift a "range" would invent one.)
  - *mid*: ``[2**-0.5, 2**0.5]`` (0.71-1.41x; 0.5-0.71 and 1.41-2 and beyond are unseen).
  - *full*: ``[0.5, 2]``.

  A zoom of the grid is *inside* the trained range when it lies in it (ends included:
  ``k = -2 ... 2`` for mid, ``-4 ... 4`` for full, ``k = 0`` for none), else *outside*.
* Every arm: 30 epochs of the short recipe, seed 0, fp32, jitter_p 0.5. The *none* arms
  (``resnet20``, ``wsms_resnet20``, ``ms_resnet20``, ``sc_resnet20``) and
  ``resnet20_jitter`` were trained on 2-core CPUs, the other jitter arms on one H200; the
  cards name each machine. Same precision, same code, but not the same kernels: a
  confound this study cannot remove with one seed per arm.

Per model (the card's ``scale_study`` block, written by :func:`write_study`): accuracy
at each zoom with its 95% bootstrap interval; the mean inside and outside the trained
range; the worst zoom; label consistency (the fraction of val images whose top-1 at zoom
``s`` equals the model's own top-1 at zoom 1, the quantity the app's zoom slider shows);
and, for multi-stage models, at zooms 0.5, 1 and 2, each stage's share of the Integrated
Gradients attribution of the true class's logit (on ``--attr-images`` fixed random val
images, 200 by default, 16 Gauss-Legendre steps; :mod:`wsms_viz.analysis.attribution`'s
per-stage definition, batched) and each stage's lesion drop (accuracy lost when the
stage is switched off with ``stage_mask``, on all val images).

Contrasts, each a paired bootstrap over the val images (the same resampled images for
every model in it; with one seed per arm :func:`~wsms_viz.evaluation.seeds.hierarchical_bootstrap`
is :func:`wsms_viz.evaluation.evaluate.paired_bootstrap`), stored in the card of their
first model (``scale_study.contrasts``, one seed each) and in ``results/study.json`` (over
every seed):

0. (``"T2"``, the paper's Table 2) MS - baseline and WSMS - baseline at zoom 1 without
   jitter, at depth 20 (``wsms-baseline/none/inside`` is the WSMS one) and 110 where
   those arms ship.
1. WSMS - baseline under each regime, inside and outside its trained range; the
   interaction (WSMS gain under *mid* minus WSMS gain under *none*, over the zooms
   inside and outside *mid*'s range; the same for *full*).
2. Scale channel - WSMS (``sc_resnet20`` vs ``wsms_resnet20`` under none, the
   ``_jitter_mid`` pair under mid), over every zoom, inside and outside, and zooms > 1
   (the direction the scale-channel net is built to be invariant to).
3. Stages 2+3's attribution share and lesion drop, WSMS under mid (and full) minus
   WSMS under none, at zooms 0.5, 1, 2.

:func:`answers` turns the stored numbers into one sentence per question of the issue;
``python -m wsms_viz.evaluation.report`` prints the tables and the sentences, the app's
Scale robustness page shows them.

Several seeds (:mod:`wsms_viz.evaluation.seeds`): every checkpoint measured also writes
its per-image results, ``results/<arm>/seed<k>.npz`` and ``.json`` (``--results DIR``;
what ships instead of weights), and every run there, measured now or shipped before, is
summarized into ``results/study.json`` (:func:`summarize`): runs grouped into arms (model
+ regime + recipe; the seed varies), each arm's figures as means over its seeds with the
SD over seeds, and every contrast above with a 95% interval from a hierarchical
bootstrap (seeds within each arm, then the val images, paired across arms). A contrast is
*settled* only when every arm in it has two seeds or more and that interval excludes 0;
with one seed, He et al.'s 0.16-point spread widens the interval as a labelled comparison.
Without checkpoints the command only rebuilds the summary, so it needs no weights and no
data.

    python -m wsms_viz.evaluation.study checkpoints/resnet20 checkpoints/wsms_resnet20 ... \\
        --data imagefolder:../shared/datasets/cifar10-jpeg --threads 1
    python -m wsms_viz.evaluation.study --results results    # the summary from the results alone
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .._cli import add_val_data_arguments, bad_input_exits_2
from ..analysis.stage_view import head, stage_views
from ..checkpoint import CheckpointError, load_checkpoint, read_card, write_card
from ..data import load_dataset, to_model_input
from ..zoom import normalize, zoom
from .evaluate import SEED_SPREAD, Interval, bootstrap_accuracy, paired_bootstrap
from .metrics import probs_vs_zoom
from .seeds import (
    Arm,
    Run,
    SeedInterval,
    file_digest,
    find_runs,
    group_runs,
    hierarchical_bootstrap,
    run_meta,
    seed_sd,
    write_run,
)

STUDY_ZOOMS = tuple(round(2 ** (k / 4), 6) for k in range(-8, 9))  # 0.25x ... 4x, 17 zooms
REGIMES: dict[str, tuple[float, float] | None] = {
    "none": None,  # no scale jitter: trained at zoom 1 only
    "mid": (2 ** -0.5, 2 ** 0.5),
    "full": (0.5, 2.0),
}
ATTR_ZOOMS = (0.5, 1.0, 2.0)
ATTR_IMAGES = 200
ATTR_STEPS = 16
STUDY_VERSION = 1


# --- regimes ---------------------------------------------------------------------------

def regime_of(card: dict) -> str:
    """The training regime of a checkpoint, from ``card["recipe"]["scale_jitter"]``:
    ``"none"``, ``"mid"``, ``"full"``, or ``"custom"`` for another range.

    Example:
        >>> regime_of({"recipe": {"scale_jitter": [0.5, 2.0]}}), regime_of({"recipe": {}})
        ('full', 'none')
    """
    jitter = (card.get("recipe") or {}).get("scale_jitter")
    if not jitter:
        return "none"
    lo, hi = (float(v) for v in jitter)
    for name, r in REGIMES.items():
        if r is not None and math.isclose(lo, r[0], rel_tol=1e-6) and math.isclose(hi, r[1], rel_tol=1e-6):
            return name
    return "custom"


def trained_range(card: dict) -> tuple[float, float]:
    """The zooms a checkpoint saw in training: its jitter range, or ``(1, 1)`` without jitter."""
    jitter = (card.get("recipe") or {}).get("scale_jitter")
    return (float(jitter[0]), float(jitter[1])) if jitter else (1.0, 1.0)


def inside(zoom_factor: float, rng: tuple[float, float]) -> bool:
    """Whether a zoom lies in a trained range, ends included (to rounding)."""
    return rng[0] * (1 - 1e-6) <= zoom_factor <= rng[1] * (1 + 1e-6)


# --- per-model measurements ------------------------------------------------------------------

@dataclass
class ModelResult:
    """What the study keeps of one model: the card block and the per-image arrays the
    contrasts resample."""

    name: str
    model: str  # registry name
    regime: str
    entry: dict  # card["scale_study"]
    correct: np.ndarray  # (Z, N) bool, at STUDY_ZOOMS
    shares: np.ndarray | None = None  # (A, n, S) attribution shares at ATTR_ZOOMS, attr images
    lesioned: np.ndarray | None = None  # (A, S + 1, N) bool: correct with stage s off; last: only stage 1 on
    attr_index: list[int] | None = None
    top1: np.ndarray | None = None  # (Z, N) predicted class at each zoom (label consistency per image)
    labels: np.ndarray | None = None  # (N,) true classes, so a results file can be checked against another


def _ci(iv: Interval) -> list[float]:
    return [iv.lo, iv.hi]


def _inputs(images: Tensor, factor: float, mean, std, device) -> Tensor:
    if factor == 1.0:  # as metrics.predict_at_zoom
        return to_model_input(images, mean, std, device)
    return normalize(zoom(images.to(device), factor, fill=mean), mean, std)


@torch.no_grad()
def lesion_correct(model: nn.Module, images: Tensor, labels: Tensor, factor: float, mean, std,
                   batch_size: int = 500, device="cpu") -> np.ndarray:
    """``(S + 1, N)`` correctness with each stage switched off in turn, and, last, with
    only stage 1 on (stages 2 and 3 off together).

    Switching a stage off zeroes its channels at the concatenation, as ``stage_mask``
    does in ``forward_features``; the stages run once and only the head runs per mask.
    (For a scale-channel net ``stage_mask`` leaves the channel out of the max; its pooled
    features follow a ReLU, so they are >= 0 and a zeroed channel never wins the max:
    the same logits. ``tests/test_study.py`` checks both against ``forward_features``.)
    """
    views = stage_views(model)
    s = len(views)
    masks = [[t != off for t in range(s)] for off in range(s)] + [[t == 0 for t in range(s)]]
    out = np.zeros((len(masks), len(labels)), dtype=bool)
    for i in range(0, len(labels), batch_size):
        x = _inputs(images[i:i + batch_size], factor, mean, std, device)
        y = labels[i:i + batch_size].to(device)
        outs = [v.output(v.scale_input(x)) for v in views]
        for j, m in enumerate(masks):
            concat = torch.cat([o if on else torch.zeros_like(o) for o, on in zip(outs, m, strict=True)], 1)
            out[j, i:i + len(y)] = (head(model, concat).argmax(1) == y).cpu().numpy()
    return out


def stage_shares(model: nn.Module, x: Tensor, targets: Tensor, n_steps: int = ATTR_STEPS,
                 batch_size: int = 50) -> np.ndarray:
    """Each stage's share of the Integrated Gradients attribution of ``targets``' logits,
    ``(N, S)``, for a batch of normalised images ``x``.

    The per-image definition of :func:`wsms_viz.analysis.attribution.attribute_stages`
    (stage ``s`` attributed on its own input, the other stages held at their outputs for
    the image, baseline 0, share of the summed absolute attributions), computed for a
    batch at once: the held outputs travel as Captum's ``additional_forward_args``,
    which it expands with the integration steps.
    """
    from captum.attr import IntegratedGradients  # captum is the app extra's; only attributions need it

    views = stage_views(model)
    out = np.zeros((len(x), len(views)))
    for i in range(0, len(x), batch_size):
        xb, tb = x[i:i + batch_size], targets[i:i + batch_size]
        with torch.no_grad():
            ins = [v.scale_input(xb) for v in views]
            fixed = [v.output(xi) for v, xi in zip(views, ins, strict=True)]
        totals = []
        for s, view in enumerate(views):
            others = tuple(f for t, f in enumerate(fixed) if t != s)

            def fn(x_s, *held, s=s, view=view):
                it = iter(held)
                return head(model, torch.cat([view.output(x_s) if t == s else next(it)
                                              for t in range(len(views))], 1))

            with torch.enable_grad():
                attr = IntegratedGradients(fn).attribute(
                    ins[s].clone().requires_grad_(True), baselines=torch.zeros_like(ins[s]), target=tb,
                    additional_forward_args=others, n_steps=n_steps, internal_batch_size=n_steps * len(xb))
            totals.append(attr.detach().sum(1).abs().sum((1, 2)))  # colour channels summed first, as there
        t = torch.stack(totals, 1).double()
        out[i:i + len(xb)] = (t / t.sum(1, keepdim=True).clamp_min(1e-30)).numpy()
    return out


def measure(model: nn.Module, card: dict, name: str, images: Tensor, labels: Tensor, mean, std, *,
            zooms: Sequence[float] = STUDY_ZOOMS, attr_images: int = ATTR_IMAGES, attr_steps: int = ATTR_STEPS,
            resamples: int = 2000, seed: int = 0, batch_size: int = 500, device="cpu",
            data_source: str = "") -> ModelResult:
    """Every per-model figure of the protocol (module docstring) for one model in eval mode.

    Args:
        model: the network, in eval mode.
        card: its checkpoint card (for the regime).
        name: the checkpoint's name.
        images: uint8 val images ``(N, 3, H, W)``; labels ``(N,)``.
        mean, std: the model's normalisation.
        zooms: the test zooms (must contain 1.0).
        attr_images: how many fixed random val images the attribution shares use (0: none).
        attr_steps: Integrated Gradients steps.
        resamples, seed: the bootstrap's.
    """
    zooms = [float(z) for z in zooms]
    if 1.0 not in zooms:
        raise ValueError(f"the zooms must contain 1.0, got {zooms}")
    regime, rng = regime_of(card), trained_range(card)
    probs = probs_vs_zoom(model, images, zooms, mean, std, batch_size=batch_size, device=device)
    top1 = np.stack([probs[z].argmax(1).numpy() for z in zooms])
    correct = top1 == labels.numpy()[None]
    consistent = top1 == top1[zooms.index(1.0)][None]
    ins = [i for i, z in enumerate(zooms) if inside(z, rng)]
    outs = [i for i, z in enumerate(zooms) if not inside(z, rng)]
    acc = correct.mean(1)
    worst = int(acc.argmin())

    def block(idx):
        if not idx:
            return None
        iv = bootstrap_accuracy(correct[idx], resamples, seed)
        return {"zooms": [zooms[i] for i in idx], "mean": iv.diff, "ci": _ci(iv)}

    entry = {
        "version": STUDY_VERSION, "data": data_source, "split": "val", "val_images": int(len(labels)),
        "transform": "wsms_viz.zoom.zoom, centre (0.5, 0.5), fill = dataset mean",
        "regime": regime, "trained_range": list(rng), "zooms": zooms,
        "val_acc": acc.tolist(),
        "val_acc_ci": [_ci(bootstrap_accuracy(c, resamples, seed)) for c in correct],
        "inside": block(ins), "outside": block(outs),
        "worst": {"zoom": zooms[worst], "acc": float(acc[worst])},
        "consistency": consistent.mean(1).tolist(),
        "consistency_outside": float(consistent[outs].mean()) if outs else None,
        "ci_level": 0.95, "resamples": resamples,
    }
    result = ModelResult(name, str(card.get("model", "?")), regime, entry, correct,
                         top1=top1.astype(np.uint8), labels=labels.numpy().astype(np.uint8))
    if getattr(model, "num_stages", 1) > 1:
        _measure_stages(result, model, images, labels, mean, std, attr_images, attr_steps, resamples, seed,
                        batch_size, device)
    return result


def _measure_stages(result: ModelResult, model: nn.Module, images: Tensor, labels: Tensor, mean, std,
                    attr_images: int, attr_steps: int, resamples: int, seed: int, batch_size: int, device) -> None:
    """The stage block of a multi-stage model's study: lesions at :data:`ATTR_ZOOMS` on
    every image, attribution shares on ``attr_images`` fixed random ones."""
    correct, zooms, entry = result.correct, result.entry["zooms"], result.entry
    result.lesioned = np.stack([lesion_correct(model, images, labels, z, mean, std, batch_size, device)
                                for z in ATTR_ZOOMS])
    full = np.stack([correct[zooms.index(z)] for z in ATTR_ZOOMS]) if all(z in zooms for z in ATTR_ZOOMS) \
        else None
    stages: dict = {"zooms": list(ATTR_ZOOMS)}
    if full is not None:
        drops = full[:, None, :].astype(float) - result.lesioned
        stages["lesion"] = {
            "images": int(len(labels)),
            "drop": drops[:, :-1].mean(2).tolist(),
            "drop_ci": [[_ci(_boot_mean(d, resamples, seed)) for d in per_zoom[:-1]] for per_zoom in drops],
            "drop_stages_2_3": drops[:, -1].mean(1).tolist(),
            "drop_stages_2_3_ci": [_ci(_boot_mean(per_zoom[-1], resamples, seed)) for per_zoom in drops],
        }
    if attr_images > 0:
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(labels), generator=g)[:attr_images].sort().values
        result.attr_index = pick.tolist()
        result.shares = np.stack([
            stage_shares(model, _inputs(images[pick], z, mean, std, device), labels[pick].to(device), attr_steps)
            for z in ATTR_ZOOMS])
        sh = result.shares
        stages["attribution"] = {
            "images": int(len(pick)), "method": "integrated_gradients", "steps": attr_steps,
            "target": "true class", "share": sh.mean(1).tolist(),
            "share_ci": [[_ci(_boot_mean(sh[a, :, s], resamples, seed)) for s in range(sh.shape[2])]
                         for a in range(sh.shape[0])],
            "share_stages_2_3": sh[:, :, 1:].sum(2).mean(1).tolist(),
        }
    entry["stages"] = stages


def _boot_mean(values: np.ndarray, resamples: int, seed: int) -> Interval:
    v = np.asarray(values, dtype=np.float64)
    return paired_bootstrap(v, np.zeros_like(v), resamples, seed)


# --- contrasts ------------------------------------------------------------------------------

def seed_aware(iv: Interval, models: int, spread: float = SEED_SPREAD) -> tuple[float, float, str]:
    """The interval widened by He et al.'s seed-to-seed spread of ``models`` independently
    trained models (0.16 points each, in quadrature), and what that comparison says:
    ``"yes"`` (that interval excludes 0), ``"one seed only"`` (only the bootstrap's does) or
    ``"no"``. A comparison for one-seed arms, not a verdict: :func:`contrasts` settles a
    difference only on the spread measured over seeds."""
    z = 1.959963984540054
    half = math.hypot((iv.hi - iv.lo) / 2, z * math.sqrt(models) * spread)
    lo, hi = iv.diff - half, iv.diff + half
    verdict = "yes" if lo > 0 or hi < 0 else ("one seed only" if iv.excludes_zero else "no")
    return lo, hi, verdict


ONE_SEED = "one seed: spread not measured"


def verdict_of(iv: SeedInterval) -> str:
    """``"settled"`` only with two seeds or more in every arm and an interval over seeds
    and images that excludes 0; else ``"not settled"`` and why."""
    if iv.settled:
        return "settled"
    if not iv.spread_measured:
        return f"not settled ({ONE_SEED})"
    return "not settled (the interval includes 0)"


def _contrast(cid: str, question: int | str, what: str, a: Sequence, b: Sequence, zooms: list[float],
              iv: SeedInterval, he: bool) -> dict:
    """One contrast's record. ``ci``: 95% interval over seeds and images (the paired
    bootstrap over images when every arm has one seed); ``ci_images``: over images only,
    seeds averaged; ``seed_aware_ci`` (one-seed arms, accuracy contrasts): the images-only
    interval widened by He et al.'s 0.16 points, a labelled comparison."""
    rec = {"id": cid, "question": question, "what": what, "a": [x.name for x in a], "b": [x.name for x in b],
           "zooms": zooms, "diff": iv.diff, "ci": [iv.lo, iv.hi], "ci_images": [iv.images_lo, iv.images_hi],
           "seeds": {x.name: x.k for x in (*a, *b)}, "images": iv.images, "resamples": iv.resamples,
           "spread": "measured" if iv.spread_measured else ONE_SEED,
           "settled": iv.settled, "resolved": verdict_of(iv)}
    if he and not iv.spread_measured:
        rec["seed_aware_ci"] = list(iv.he_et_al())
    return rec


class _OneSeed:
    """A :class:`ModelResult` seen as an arm of one seed (what :func:`contrasts` reads)."""

    def __init__(self, r: ModelResult):
        self.name, self.model, self.regime, self.k, self.attr_index = r.name, r.model, r.regime, 1, r.attr_index
        self.zooms = list(r.entry["zooms"])
        self.correct = r.correct[None]
        self.lesioned = None if r.lesioned is None else r.lesioned[None]
        self.shares = None if r.shares is None else np.asarray(r.shares, dtype=np.float64)[None]


def contrasts(arms: Sequence, resamples: int = 2000, seed: int = 0) -> list[dict]:
    """The study's paired contrasts among ``arms`` (:class:`~wsms_viz.evaluation.seeds.Arm`,
    or :class:`ModelResult` for one seed each; module docstring), each where all of its
    arms are present. Arms are found by registry name and regime; the intervals are
    :func:`~wsms_viz.evaluation.seeds.hierarchical_bootstrap`'s."""
    arms = [_OneSeed(a) if isinstance(a, ModelResult) else a for a in arms]
    index: dict = {}
    for r in arms:
        key = (r.model, r.regime)
        if key in index:
            raise ValueError(f"two checkpoints are {r.model} under regime {r.regime}: "
                             f"{index[key].name} and {r.name}; give the study one of each")
        index[key] = r
    zooms = list(arms[0].zooms) if arms else []
    if any(list(r.zooms) != zooms for r in arms):
        raise ValueError("the models were measured at different zooms")
    out: list[dict] = []

    def sel(where: str, rng: tuple[float, float]) -> list[int]:
        if where == "all":
            return list(range(len(zooms)))
        if where == "enlarged":
            return [i for i, z in enumerate(zooms) if z > 1]
        return [i for i, z in enumerate(zooms) if inside(z, rng) == (where == "inside")]

    def rng_of(regime: str) -> tuple[float, float]:
        return REGIMES[regime] or (1.0, 1.0)

    def acc_contrast(cid, q, what, plus, minus, where, rng):
        idx = sel(where, rng)
        if not idx:
            return
        iv = hierarchical_bootstrap([r.correct[:, idx].mean(1) for r in plus],
                                    [r.correct[:, idx].mean(1) for r in minus], resamples, seed)
        out.append(_contrast(cid, q, what, plus, minus, [zooms[i] for i in idx], iv, True))

    for fam, words in (("wsms_resnet110", "WSMS"), ("ms_resnet20", "MS"), ("ms_resnet110", "MS")):
        base_model = "resnet110" if fam.endswith("110") else "resnet20"
        m, base = index.get((fam, "none")), index.get((base_model, "none"))
        if m and base:  # the paper's Table 2 comparison: the training scale only
            acc_contrast(f"{fam.split('_')[0]}-baseline/{base_model}/zoom1", "T2",
                         f"{words} - baseline, {fam} - {base_model}, zoom 1", [m], [base], "inside", (1.0, 1.0))
    for regime in REGIMES:
        w, base = index.get(("wsms_resnet20", regime)), index.get(("resnet20", regime))
        if w and base:
            for where in ("inside", "outside"):
                q = 1 if where == "inside" else 2
                acc_contrast(f"wsms-baseline/{regime}/{where}", q,
                             f"WSMS - baseline, {regime}, {where} {regime}'s range",
                             [w], [base], where, rng_of(regime))
    w0, b0 = index.get(("wsms_resnet20", "none")), index.get(("resnet20", "none"))
    for regime in ("mid", "full"):
        w, base = index.get(("wsms_resnet20", regime)), index.get(("resnet20", regime))
        if w and base and w0 and b0:
            for where in ("inside", "outside"):
                q = 1 if where == "inside" else 2
                # the other term of the interaction: the none arms on the same zooms
                acc_contrast(f"wsms-baseline/none/{where}-{regime}", q,
                             f"WSMS - baseline, none, {where} {regime}'s range", [w0], [b0], where,
                             rng_of(regime))
                acc_contrast(f"interaction/{regime}/{where}", q,
                             f"(WSMS - baseline) under {regime} - (WSMS - baseline) under none, "
                             f"{where} {regime}'s range", [w, b0], [base, w0], where, rng_of(regime))
    for regime in ("none", "mid"):
        sc, w = index.get(("sc_resnet20", regime)), index.get(("wsms_resnet20", regime))
        if sc and w:
            for where in ("all", "inside", "outside", "enlarged"):
                acc_contrast(f"sc-wsms/{regime}/{where}", 3,
                             f"scale channel - WSMS, {regime}, {_where_words(where, regime)}",
                             [sc], [w], where, rng_of(regime))
    for regime in ("mid", "full"):
        w = index.get(("wsms_resnet20", regime))
        if w and w0:
            out += _stage_contrasts(w, w0, regime, zooms, resamples, seed)
    return out


def _stage_contrasts(w, w0, regime: str, zooms: list[float], resamples: int, seed: int) -> list[dict]:
    """Question 4: stages 2+3's attribution share and lesion drop, WSMS under ``regime``
    minus WSMS under none, at each of :data:`ATTR_ZOOMS`."""
    out = []
    for a, z in enumerate(ATTR_ZOOMS):
        if w.shares is not None and w0.shares is not None and w.attr_index == w0.attr_index:
            iv = hierarchical_bootstrap([w.shares[:, a, :, 1:].sum(-1)], [w0.shares[:, a, :, 1:].sum(-1)],
                                        resamples, seed)
            out.append(_contrast(f"share23/{regime}/{z:g}", 4,
                                 f"stages 2+3's attribution share, WSMS under {regime} - under none, zoom {z:g}",
                                 [w], [w0], [z], iv, False))
        if w.lesioned is not None and w0.lesioned is not None:
            i = zooms.index(z)
            da = w.correct[:, i].astype(float) - w.lesioned[:, a, -1]
            db = w0.correct[:, i].astype(float) - w0.lesioned[:, a, -1]
            iv = hierarchical_bootstrap([da], [db], resamples, seed)
            out.append(_contrast(f"lesion23/{regime}/{z:g}", 4,
                                 f"accuracy lost without stages 2+3, WSMS under {regime} - under none, "
                                 f"zoom {z:g}", [w], [w0], [z], iv, True))
    return out


def _mid_words() -> str:
    lo, hi = REGIMES["mid"]
    return f"{lo:.2f}-{hi:.2f}x"


def _where_words(where: str, regime: str) -> str:
    return {"all": "all 17 zooms", "enlarged": "zooms > 1 (enlarged)"}.get(where, f"{where} {regime}'s range")


# --- cards ------------------------------------------------------------------------------

def write_study(directory: str | Path, entry: dict) -> None:
    """Replaces ``card["scale_study"]`` (atomically); every other field, the sha256 of the
    weights included, stays as it was. The one place the study writes a card, through
    :mod:`wsms_viz.cards` (``scale_study`` is one of its untyped blocks)."""
    write_card(directory, read_card(directory).with_block("scale_study", entry))


def attach_contrasts(results: Sequence[ModelResult], found: list[dict]) -> None:
    """Each contrast goes into the ``scale_study`` of its first model (``a[0]``)."""
    for r in results:
        r.entry["contrasts"] = [c for c in found if c["a"][0] == r.name]


# --- the study over seeds: arms and contrasts from the shipped per-image results -----------------

SUMMARY_FORMAT = "wsms-viz scale study"
SUMMARY_VERSION = 1
SUMMARY_FILE = "study.json"  # beside the runs, in the results folder


def arm_entry(arm: Arm, resamples: int = 2000, seed: int = 0) -> dict:
    """One arm's block of the summary: the card block's figures (accuracy at each zoom
    with its interval, inside / outside the trained range, worst zoom, label consistency,
    the stage study), each the mean over the arm's seeds, with the spread over seeds (SD,
    min, max; None with one seed) beside it."""
    zooms, rng = arm.zooms, arm.trained_range
    c = arm.correct
    per_seed = c.mean(2)  # (K, Z)
    acc = per_seed.mean(0)
    ins = [i for i, z in enumerate(zooms) if inside(z, rng)]
    outs = [i for i, z in enumerate(zooms) if not inside(z, rng)]
    sd = per_seed.std(0, ddof=1) if arm.k >= 2 else None

    def block(idx):
        if not idx:
            return None
        iv = hierarchical_bootstrap([c[:, idx].mean(1)], [], resamples, seed)
        means = per_seed[:, idx].mean(1)
        return {"zooms": [zooms[i] for i in idx], "mean": iv.diff, "ci": [iv.lo, iv.hi],
                "ci_images": [iv.images_lo, iv.images_hi], "sd": seed_sd(means), "per_seed": means.tolist()}

    worst = int(acc.argmin())
    cons = arm.consistent.mean(2)  # (K, Z)
    i1 = zooms.index(1.0)
    entry = {
        "name": arm.name, "model": arm.model, "regime": arm.regime, "trained_range": list(rng),
        "seeds": arm.seeds,
        "runs": [{"seed": r.seed, "trained_on": r.meta.get("trained_on"), "precision": r.meta.get("precision"),
                  "wall_time_s": r.meta.get("wall_time_s"), "weights_sha256": r.meta.get("weights_sha256")}
                 for r in arm.runs],
        "zooms": zooms, "val_images": int(c.shape[2]),
        "val_acc": acc.tolist(),
        "val_acc_ci": [[iv.lo, iv.hi] for iv in (hierarchical_bootstrap([c[:, i]], [], resamples, seed)
                                                 for i in range(len(zooms)))],
        "val_acc_per_seed": per_seed.tolist(),
        "val_acc_sd": None if sd is None else sd.tolist(),
        "val_acc_min": per_seed.min(0).tolist(), "val_acc_max": per_seed.max(0).tolist(),
        "inside": block(ins), "outside": block(outs),
        "worst": {"zoom": zooms[worst], "acc": float(acc[worst])},
        "consistency": cons.mean(0).tolist(),
        "consistency_outside": float(cons[:, outs].mean()) if outs else None,
        "spread": {"zoom_1": None if sd is None else float(sd[i1]),
                   "outside_mean": None if sd is None or not outs else float(sd[outs].mean()),
                   "outside_max": None if sd is None or not outs else float(sd[outs].max()),
                   "outside_max_zoom": None if sd is None or not outs else zooms[outs[int(sd[outs].argmax())]]},
    }
    stages: dict = {}
    les, sh = arm.lesioned, arm.shares
    if les is not None and all(z in zooms for z in ATTR_ZOOMS):
        full = np.stack([c[:, zooms.index(z)] for z in ATTR_ZOOMS], 1)  # (K, A, N)
        drops = full[:, :, None, :].astype(float) - les  # (K, A, S + 1, N)
        stages["lesion"] = {"images": int(c.shape[2]), "drop": drops[:, :, :-1].mean((0, 3)).tolist(),
                            "drop_stages_2_3": drops[:, :, -1].mean((0, 2)).tolist(),
                            "drop_stages_2_3_sd": (drops[:, :, -1].mean(2).std(0, ddof=1).tolist()
                                                   if arm.k >= 2 else None)}
    if sh is not None:
        stages["attribution"] = {"images": int(sh.shape[2]), "method": "integrated_gradients",
                                 "share": sh.mean((0, 2)).tolist(),
                                 "share_stages_2_3": sh[..., 1:].sum(-1).mean((0, 2)).tolist()}
    if stages:
        entry["stages"] = {"zooms": list(ATTR_ZOOMS), **stages}
    return entry


def summarize(runs: Sequence[Run], resamples: int = 2000, seed: int = 0, root: Path | None = None) -> dict:
    """The multi-seed study of ``runs``: every arm's block (:func:`arm_entry`) and every
    contrast over seeds and images (:func:`contrasts`), with the runs it was built from
    (file and sha256, relative to ``root``) so a reader can tell it is current."""
    arms = group_runs(runs)
    if not arms:
        raise ValueError("no per-image results to summarize")
    order = {r: i for i, r in enumerate(REGIMES)}
    arms.sort(key=lambda a: (order.get(a.regime, len(order)), a.model, a.name))
    files = []
    for r in runs:
        if r.path is not None:
            rel = r.path.relative_to(root) if root and r.path.is_relative_to(root) else r.path
            files.append({"file": rel.as_posix(), "sha256": file_digest(r.path)})
    return {"format": SUMMARY_FORMAT, "version": SUMMARY_VERSION, "resamples": resamples, "seed": seed,
            "level": 0.95, "he_et_al_sd": SEED_SPREAD, "val_images": arms[0].correct.shape[2],
            "zooms": arms[0].zooms, "attr_zooms": list(ATTR_ZOOMS), "runs": files,
            "arms": [arm_entry(a, resamples, seed) for a in arms],
            "contrasts": contrasts(arms, resamples, seed)}


def write_summary(results_dir: str | Path, summary: dict) -> Path:
    path = Path(results_dir) / SUMMARY_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_summary(results_dir: str | Path, check: bool = True) -> dict | None:
    """``<results_dir>/study.json``, or None when there is none. With ``check``, refuses a
    summary whose runs are not exactly the ``.npz`` files there (added, removed or changed
    since it was written): ``python -m wsms_viz.evaluation.study --results DIR`` rewrites it."""
    root = Path(results_dir)
    path = root / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("format") != SUMMARY_FORMAT or summary.get("version") != SUMMARY_VERSION:
        raise ValueError(f"{path}: not a version-{SUMMARY_VERSION} {SUMMARY_FORMAT}")
    if check:
        listed = {f["file"]: f["sha256"] for f in summary["runs"]}
        present = {p.relative_to(root).as_posix() for p in root.glob("*/seed*.npz") if ".tmp" not in p.name}
        stale = sorted(set(listed) ^ present) or sorted(f for f in listed if file_digest(root / f) != listed[f])
        if stale:
            raise ValueError(f"{path} is out of date ({', '.join(stale)}); rewrite it with "
                             f"python -m wsms_viz.evaluation.study --results {results_dir}")
    return summary


# --- reading the study back --------------------------------------------------------------

def study_of(card: dict) -> dict | None:
    """The card's ``scale_study`` block, or None (not measured, or an unknown version)."""
    s = card.get("scale_study")
    return s if isinstance(s, dict) and s.get("version") == STUDY_VERSION and s.get("val_acc") else None


def all_contrasts(cards: dict[str, dict]) -> dict[str, dict]:
    """``{contrast id: record}`` gathered from every card's study."""
    out = {}
    for card in cards.values():
        for c in (study_of(card) or {}).get("contrasts") or []:
            out[c["id"]] = c
    return out


def summary_from_cards(cards: dict[str, dict]) -> dict:
    """A summary of one seed per arm from cards' ``scale_study`` blocks (what older
    checkouts ship), in :func:`summarize`'s shape, so one set of readers serves both."""
    arms = []
    for key, card in cards.items():
        s = study_of(card)
        if s:
            seed = int(((card.get("recipe") or {}).get("seed")) or 0)
            arms.append({**s, "name": key, "model": str(card.get("model")), "seeds": [seed],
                         "runs": [{"seed": seed, "trained_on": card.get("hardware"),
                                   "precision": card.get("precision") or "fp32",
                                   "wall_time_s": card.get("wall_time_s")}]})
    return {"format": SUMMARY_FORMAT, "version": SUMMARY_VERSION, "arms": arms,
            "contrasts": list(all_contrasts(cards).values()), "he_et_al_sd": SEED_SPREAD,
            "resamples": arms[0].get("resamples") if arms else None}


def as_summary(study: dict) -> dict:
    """``study`` if it is a summary already, else cards ``{name: card}`` made into one."""
    return study if study.get("format") == SUMMARY_FORMAT else summary_from_cards(study)


def pts(x: float) -> str:
    return f"{100 * x:+.2f}"


def seeds_words(c: dict) -> str:
    """``3 seeds per arm``, ``1-3 seeds per arm`` or ``one seed per arm``."""
    ks = sorted(set((c.get("seeds") or {}).values())) or [1]
    if ks == [1]:
        return "one seed per arm"
    return f"{ks[0]} seeds per arm" if len(ks) == 1 else f"{ks[0]}-{ks[-1]} seeds per arm"


def interval_words(c: dict) -> str:
    """``+1.23 points (95% CI +0.40 to +2.05, 3 seeds per arm)``."""
    lo, hi = c["ci"]
    return f"{pts(c['diff'])} points (95% CI {pts(lo)} to {pts(hi)}, {seeds_words(c)})"


def settled(c: dict) -> bool:
    """A contrast is settled only on a spread measured over seeds (two or more in every
    arm) with an interval over seeds and images that excludes 0."""
    return bool(c.get("settled"))


def _verdict_words(c: dict) -> str:
    if settled(c):
        return "settled: the interval over seeds and images excludes 0"
    if c.get("spread") == "measured":
        return "not settled: the interval over seeds and images includes 0"
    lo, hi = c["ci"]
    words = "not settled: one seed per arm, so the seed spread is not measured"
    if lo > 0 or hi < 0:
        words += " (the interval over images alone excludes 0"
        he = c.get("seed_aware_ci")
        if he:
            words += (", and still does widened by He et al.'s 0.16-point spread" if he[0] > 0 or he[1] < 0
                      else ", but not once widened by He et al.'s 0.16-point spread")
        words += ")"
    return words


QUESTIONS = (
    "1. With scale augmentation, does WSMS gain more than the baseline inside the trained range?",
    "2. Outside the trained range, does WSMS extrapolate better than the baseline?",
    "3. How far is WSMS from a network scale-invariant by construction over the same scales?",
    "4. Does training with varied scales make WSMS use its smaller-scale stages?",
)  # the four questions, as the app and report print them


def answers(study: dict) -> list[tuple[str, str]]:
    """One plain sentence per question of the issue, computed from the stored numbers:
    ``[(question, sentence)]``, each ending settled or not settled; a question whose arms
    are missing says which. ``study``: a summary (:func:`summarize`, ``results/study.json``)
    or cards ``{name: card}`` carrying ``scale_study``."""
    summary = as_summary(study)
    c = {x["id"]: x for x in summary["contrasts"]}
    out = []

    q1 = c.get("interaction/mid/inside")
    if q1:
        g_mid, g_none = c.get("wsms-baseline/mid/inside"), c.get("wsms-baseline/none/inside-mid")
        more = "more" if q1["diff"] > 0 else "less"
        s = f"Trained with mid scale jitter, WSMS gains {more} over the baseline than without jitter, on the " \
            f"zooms of the mid range ({_mid_words()}): interaction {interval_words(q1)}"
        if g_mid and g_none:
            s += (f". WSMS - baseline on those zooms: {interval_words(g_mid)} under mid, "
                  f"{interval_words(g_none)} without jitter")
        out.append((QUESTIONS[0], s + f". Interaction {_verdict_words(q1)}."))
    else:
        out.append((QUESTIONS[0],
                    "Not measured: the study needs resnet20 and wsms_resnet20 under none and under mid."))

    q2 = c.get("wsms-baseline/mid/outside")
    if q2:
        better = "better" if q2["diff"] > 0 else "worse"
        s = (f"Outside the trained range (zooms beyond {_mid_words()}, never seen in training), WSMS trained "
             f"with mid jitter does {better} than the baseline trained the same way: {interval_words(q2)}")
        inter, none = c.get("interaction/mid/outside"), c.get("wsms-baseline/none/outside-mid")
        if inter and none:
            s += (f". Without jitter the same difference on those zooms is {interval_words(none)}, so the "
                  f"interaction there is {interval_words(inter)}")
        out.append((QUESTIONS[1], s + f". WSMS - baseline under mid, outside: {_verdict_words(q2)}."))
    else:
        out.append((QUESTIONS[1],
                    "Not measured: the study needs resnet20_jitter_mid and wsms_resnet20_jitter_mid."))

    q3 = c.get("sc-wsms/none/all")
    if q3:
        ahead = "above" if q3["diff"] > 0 else "below"
        s = f"Without jitter, the scale-channel network is {ahead} WSMS over all 17 zooms by {interval_words(q3)}"
        enl = c.get("sc-wsms/none/enlarged")
        if enl:
            s += f". On enlarged images (zoom > 1, the direction it is built for): {interval_words(enl)}"
        mid = c.get("sc-wsms/mid/all")
        if mid:
            s += f". Both trained with mid jitter, over all zooms: {interval_words(mid)} ({_verdict_words(mid)})"
        out.append((QUESTIONS[2], s + f". Without jitter, over all zooms: {_verdict_words(q3)}."))
    else:
        out.append((QUESTIONS[2],
                    "Not measured yet: the study needs sc_resnet20 and wsms_resnet20."))

    out.append((QUESTIONS[3], _answer_q4(c, summary["arms"])))
    return out


def _answer_q4(c: dict[str, dict], arms: list[dict]) -> str:
    """The sentence of question 4, from the share and lesion contrasts and the arms."""
    sh = [c.get(f"share23/mid/{z:g}") for z in ATTR_ZOOMS]
    le = [c.get(f"lesion23/mid/{z:g}") for z in ATTR_ZOOMS]
    if all(sh) and all(le):
        def per_zoom(xs):
            return ", ".join(f"{pts(x['diff'])} at {x['zooms'][0]:g}x [{pts(x['ci'][0])}, {pts(x['ci'][1])}]"
                             for x in xs)

        def wsms_arm(regime):
            return next((a for a in arms if a["regime"] == regime and a["model"] == "wsms_resnet20"), None)

        s_mid, s_none = wsms_arm("mid"), wsms_arm("none")
        mid_stages = (s_mid.get("stages") or {}).get("attribution") if s_mid else None
        s = ("Trained with mid jitter instead of none, the share of WSMS's attribution that stages 2 and 3 carry "
             f"changes by {per_zoom(sh)} points, and the accuracy lost when they are switched off by "
             f"{per_zoom(le)} points ({seeds_words(le[1])}).")
        if mid_stages:
            s += (" By attribution stage 1 still dominates (stages 2+3 carry "
                  + ", ".join(f"{v:.2f}" for v in mid_stages["share_stages_2_3"])
                  + " of it at " + ", ".join(f"{z:g}x" for z in ATTR_ZOOMS) + " under mid).")
        if s_mid and s_none:
            def accs(st):
                return "/".join(f"{100 * st['val_acc'][st['zooms'].index(z)]:.1f}" for z in ATTR_ZOOMS)
            s += (" A lesion can only cost the accuracy there is: WSMS's accuracy at "
                  + "/".join(f"{z:g}x" for z in ATTR_ZOOMS) + f" is {accs(s_mid)}% under mid, {accs(s_none)}% "
                  "without jitter.")
        done = [x for x in (*sh, *le) if settled(x)]
        s += (f" Settled: {len(done)} of these {len(sh) + len(le)} differences." if done else
              f" Not settled: {_verdict_words(le[1]).removeprefix('not settled: ')}.")
        return s
    return ("Not measured: the study needs wsms_resnet20 and wsms_resnet20_jitter_mid with their stages "
            "measured.")


# --- command line ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wsms_viz.evaluation.study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_val_data_arguments(p)
    # Study and report must rebuild from the shipped per-image results alone (no weights),
    # so the checkpoints the shared parser requires are optional here.
    next(a for a in p._actions if a.dest == "checkpoints").nargs = "*"
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="folder of per-image results, one <arm>/seed<k>.npz + .json per trained run: the "
                        "checkpoints measured now are written there, then every run there is summarized into "
                        "DIR/study.json (default: ./results)")
    p.add_argument("--no-results", action="store_true",
                   help="write neither per-image results nor study.json (the summary covers only the "
                        "checkpoints given)")
    p.add_argument("--attr-images", type=int, default=ATTR_IMAGES,
                   help="val images for the attribution shares of multi-stage models (0: none)")
    p.add_argument("--attr-steps", type=int, default=ATTR_STEPS, help="Integrated Gradients steps")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the attribution images")
    p.add_argument("--val-subset", type=int,
                   help="a fixed random N of the val images (quick looks; no card or results writes)")
    p.add_argument("--no-card", action="store_true", help="do not write scale_study into the cards")
    p.add_argument("--fresh", action="store_true",
                   help="measure every checkpoint again (default: reuse the per-image results a previous run "
                        "kept under --cache-dir for the same weights and settings)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    return p


def _cache_file(cache_dir: Path, card: dict, args, n: int) -> Path:
    key = f"{card.get('sha256', '?')[:16]}-v{STUDY_VERSION}-n{n}-a{args.attr_images}-s{args.attr_steps}" \
          f"-r{args.resamples}-seed{args.seed}"
    return Path(cache_dir) / "study" / f"{key}.npz"


def save_result(path: Path, r: ModelResult) -> None:
    """The per-image arrays and the card block of one model, so a later run with more
    checkpoints (same weights, same settings: the same numbers) need not measure it again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"correct": r.correct, "meta": np.array(json.dumps(
        {"name": r.name, "model": r.model, "regime": r.regime, "entry": r.entry, "attr_index": r.attr_index}))}
    if r.shares is not None:
        arrays["shares"] = r.shares
    if r.lesioned is not None:
        arrays["lesioned"] = r.lesioned
    if r.top1 is not None:
        arrays["top1"], arrays["labels"] = r.top1, r.labels
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_result(path: Path) -> ModelResult:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return ModelResult(meta["name"], meta["model"], meta["regime"], meta["entry"], z["correct"],
                           z["shares"] if "shares" in z else None, z["lesioned"] if "lesioned" in z else None,
                           meta["attr_index"], z["top1"] if "top1" in z else None,
                           z["labels"] if "labels" in z else None)


def run_of(r: ModelResult, card: dict, args) -> Run:
    """A measured model as a run of the results format (in memory)."""
    meta = run_meta(card, r.name, r.entry, attr_images=args.attr_images if r.shares is not None else 0,
                    attr_steps=args.attr_steps, attr_seed=args.seed)
    return Run(meta, r.top1, r.labels, r.lesioned, r.shares,
               None if r.attr_index is None else np.asarray(r.attr_index))


def run(args) -> list[ModelResult]:
    """Measures the checkpoints given (their per-image results reused from the cache when
    present), writes each card's ``scale_study`` and each run's results files, then
    summarizes every run under ``--results`` into its ``study.json``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.attr_images < 0 or args.attr_steps < 1 or args.resamples < 1:
        raise ValueError("--attr-images must be >= 0, --attr-steps and --resamples positive")
    if len(set(args.checkpoints)) != len(args.checkpoints):
        raise ValueError("a checkpoint is listed twice")
    results, runs = _measure_checkpoints(args) if args.checkpoints else ([], [])
    if args.no_results or args.val_subset:
        if not runs:
            raise ValueError("nothing to summarize: give checkpoints, or drop --no-results / --val-subset")
        summary = summarize(runs, args.resamples, args.seed)
        where = "not written (--no-results or --val-subset)"
    else:
        runs = find_runs(args.results)
        if not runs:
            raise ValueError(f"no per-image results under {args.results} (<arm>/seed<k>.npz); "
                             "give checkpoints to measure, or --results DIR")
        summary = summarize(runs, args.resamples, args.seed, root=args.results)
        where = str(write_summary(args.results, summary))
    print(f"\n{len(runs)} run(s) in {len(summary['arms'])} arm(s): "
          + ", ".join(f"{a['name']} ({len(a['seeds'])} seed{'s' if len(a['seeds']) > 1 else ''})"
                      for a in summary["arms"]))
    for c in summary["contrasts"]:
        print(f"{c['id']:<28} {interval_words(c)}  {c['resolved']}")
    print(f"summary: {where}")
    return results


def _measure_checkpoints(args) -> tuple[list[ModelResult], list[Run]]:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ckpts = [load_checkpoint(c, device) for c in args.checkpoints]  # fail before the slow part
    data = load_dataset(args.data, cache_dir=args.cache_dir, download=args.download)
    images, labels = data.val.images, data.val.labels
    if args.val_subset:
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: args.val_subset]
        images, labels = images[pick], labels[pick]
    print(f"{data.source}: {len(labels)} val images, {len(ckpts)} checkpoint(s), zooms 2^(k/4) k=-8..8; "
          f"attribution on {min(args.attr_images, len(labels))} images, IG {args.attr_steps} steps; "
          f"{device}, {torch.get_num_threads()} threads", flush=True)
    results, runs = [], []
    for ck in ckpts:
        name = ck.card.get("name") or ck.path.name
        if list(ck.card["classes"]) != list(data.classes):
            raise CheckpointError(f"{ck.path}: trained on classes {ck.card['classes']}, the data has {data.classes}")
        norm = ck.card.get("normalization") or {}
        mean, std = tuple(norm.get("mean", data.mean)), tuple(norm.get("std", data.std))
        t0 = time.perf_counter()
        cached = _cache_file(args.cache_dir, ck.card, args, len(labels))
        r = load_result(cached) if cached.exists() and not args.val_subset and not args.fresh else None
        if r is not None and r.top1 is not None:
            r.name = name
            print(f"  {name}: per-image results of these weights and settings reused from {cached}", flush=True)
        else:
            r = measure(ck.model, ck.card, name, images, labels, mean, std, attr_images=args.attr_images,
                        attr_steps=args.attr_steps, resamples=args.resamples, seed=args.seed,
                        batch_size=args.batch_size, device=device, data_source=data.source)
            r.entry["checkpoint"] = ck.path.name
            if not args.val_subset:
                save_result(cached, r)
            e = r.entry
            print(f"  {name} ({ck.card['model']}, regime {r.regime}): inside {100 * e['inside']['mean']:.2f}, "
                  + (f"outside {100 * e['outside']['mean']:.2f}, " if e["outside"] else "")
                  + f"worst {100 * e['worst']['acc']:.2f} at {e['worst']['zoom']:g}; "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        results.append(r)
        runs.append(run_of(r, ck.card, args))
        if not args.val_subset and not args.no_results:
            runs[-1].path = write_run(args.results, runs[-1].meta, r.top1, r.labels, r.lesioned, r.shares,
                                      r.attr_index)
    # A card's contrasts compare it with one checkpoint of each other arm; with several
    # seeds of an arm given together, only the summary over seeds compares them.
    one_each = len({(r.model, r.regime) for r in results}) == len(results)
    attach_contrasts(results, contrasts(results, args.resamples, args.seed) if one_each else [])
    if not args.no_card and not args.val_subset:
        for ck, r in zip(ckpts, results, strict=True):
            write_study(ck.path, r.entry)
        print(f"wrote card['scale_study'] of {', '.join(str(c.path) for c in ckpts)}")
    elif args.val_subset:
        print("cards and results not updated: --val-subset measures only part of the val split")
    return results, runs


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with bad_input_exits_2():
        run(args)


if __name__ == "__main__":
    main()
