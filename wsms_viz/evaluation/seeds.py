"""Per-image results of trained runs, grouped into arms of several seeds, and the
seed-aware statistics of the scale study built on them.

A **run** is one trained network: its card's model, recipe (regime) and seed. What the
study needs of a run ships instead of its weights, as two files under ``results/``::

    results/<arm>/seed<k>.npz   per-image arrays (np.load(..., allow_pickle=False))
    results/<arm>/seed<k>.json  a small card reference: model, config, seed, regime,
                                recipe, trained on, weights' sha256, data, zooms ...

The ``.npz`` holds ``top1`` (``(Z, N)`` uint8: the predicted class of every val image at
each study zoom), ``labels`` (``(N,)`` uint8), and for multi-stage models ``lesioned``
(``np.packbits`` of the ``(A, S + 1, N)`` correctness with each stage switched off, then
with only stage 1 on, at :data:`~wsms_viz.evaluation.study.ATTR_ZOOMS`, along the last
axis), ``shares`` (``(A, n, S)`` float32 attribution shares on ``n`` fixed val images)
and ``attr_index`` (``(n,)`` int32, which images). Correctness and label consistency
are computed from ``top1`` and ``labels``.

An **arm** is every run of one model under one recipe (same registry model, regime,
recipe name and epochs), whatever its seed: :func:`group_runs`. Seeds of an arm are
averaged; their spread (the SD of accuracy over seeds) is measured, not assumed.

Intervals (:func:`hierarchical_bootstrap`): each resample draws, for every arm with two
seeds or more, its seeds with replacement, then the val images with replacement, the same
images for every arm of a contrast (the pairing that cancels easy and hard images). With
one seed per arm it is exactly the paired bootstrap over images
(:func:`wsms_viz.evaluation.evaluate.paired_bootstrap`, the same resampled images). A
difference is **settled** only when every arm in it has two seeds or more and this
interval excludes 0; with one seed the spread is not measured, and the interval widened by
He et al.'s 0.16 points (ResNet-110, zoom 1, fully trained) is shown as the comparison it
was, never as a verdict. With two or three seeds the resampled seed spread is an
underestimate (a bootstrap of K draws has (K - 1) / K of the variance), one more reason
"settled" needs the interval to clear 0, not to touch it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .evaluate import SEED_SPREAD, Interval, _normal_quantile

RESULTS_FORMAT = "wsms-viz study results"
RESULTS_VERSION = 1
_SEED_SUFFIX = re.compile(r"[-_](seed|s)\d+$")


# --- one run -------------------------------------------------------------------------------

@dataclass
class Run:
    """One trained run's per-image results and its card reference (``meta``)."""

    meta: dict
    top1: np.ndarray  # (Z, N) uint8
    labels: np.ndarray  # (N,) uint8
    lesioned: np.ndarray | None = None  # (A, S + 1, N) bool
    shares: np.ndarray | None = None  # (A, n, S) float
    attr_index: np.ndarray | None = None  # (n,) int
    path: Path | None = None

    @property
    def arm(self) -> str:
        return self.meta["arm"]

    @property
    def model(self) -> str:
        return self.meta["model"]

    @property
    def regime(self) -> str:
        return self.meta["regime"]

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def zooms(self) -> list[float]:
        return [float(z) for z in self.meta["zooms"]]

    @property
    def correct(self) -> np.ndarray:
        return self.top1 == self.labels[None]

    @property
    def consistent(self) -> np.ndarray:
        return self.top1 == self.top1[self.zooms.index(1.0)][None]


def arm_name(card_name: str) -> str:
    """The arm a run belongs to, from its card's name: a trailing ``_seed3``/``-s3`` is
    dropped (``wsms_resnet20_jitter_mid_seed2`` -> ``wsms_resnet20_jitter_mid``)."""
    return _SEED_SUFFIX.sub("", card_name)


def run_meta(card: dict, name: str, entry: dict, *, attr_images: int, attr_steps: int, attr_seed: int) -> dict:
    """The ``.json`` of a run: what identifies it (model, config, regime, recipe, seed)
    and what it was measured on; ``entry`` is the study's per-model block."""
    recipe = dict(card.get("recipe") or {})
    data = card.get("data") or {}
    return {
        "format": RESULTS_FORMAT, "version": RESULTS_VERSION,
        "arm": arm_name(name), "name": name, "model": str(card.get("model", "?")),
        "config": card.get("config") or {}, "seed": int(recipe.get("seed", 0)),
        "regime": entry["regime"], "trained_range": entry["trained_range"], "recipe": recipe,
        "trained_on": str(card.get("hardware") or "?"), "precision": card.get("precision") or "fp32",
        "wall_time_s": card.get("wall_time_s"), "weights_sha256": card.get("sha256"),
        "trained_data": {k: data.get(k) for k in ("source", "split", "train_used") if k in data},
        "data": entry.get("data", ""), "split": "val", "val_images": entry["val_images"],
        "zooms": entry["zooms"], "transform": entry.get("transform"),
        "attr_zooms": (entry.get("stages") or {}).get("zooms"), "attr_images": attr_images,
        "attr_steps": attr_steps, "attr_seed": attr_seed, "study_version": entry.get("version"),
    }


def write_run(results_dir: str | Path, meta: dict, top1: np.ndarray, labels: np.ndarray,
              lesioned: np.ndarray | None = None, shares: np.ndarray | None = None,
              attr_index: Sequence[int] | None = None) -> Path:
    """Writes ``<results_dir>/<arm>/seed<k>.npz`` and ``.json`` (atomically each);
    returns the ``.npz`` path."""
    d = Path(results_dir) / meta["arm"]
    d.mkdir(parents=True, exist_ok=True)
    stem = d / f"seed{int(meta['seed'])}"
    top1 = np.asarray(top1)
    if top1.max(initial=0) > 255:
        raise ValueError("more than 256 classes do not fit the uint8 results format")
    arrays = {"top1": top1.astype(np.uint8), "labels": np.asarray(labels).astype(np.uint8)}
    if lesioned is not None:
        arrays["lesioned"] = np.packbits(np.asarray(lesioned, dtype=bool), axis=-1)
    if shares is not None:
        arrays["shares"] = np.asarray(shares, dtype=np.float32)
        arrays["attr_index"] = np.asarray(attr_index, dtype=np.int32)
    tmp = stem.with_name(stem.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(stem.with_suffix(".npz"))
    tmpj = stem.with_name(stem.name + ".tmp.json")
    tmpj.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    tmpj.replace(stem.with_suffix(".json"))
    return stem.with_suffix(".npz")


def read_run(npz_path: str | Path) -> Run:
    """One run from its ``.npz`` and the ``.json`` beside it."""
    p = Path(npz_path)
    meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
    if meta.get("format") != RESULTS_FORMAT or meta.get("version") != RESULTS_VERSION:
        raise ValueError(f"{p.with_suffix('.json')}: not a version-{RESULTS_VERSION} {RESULTS_FORMAT} file")
    with np.load(p, allow_pickle=False) as z:
        labels = z["labels"]
        n = len(labels)
        lesioned = np.unpackbits(z["lesioned"], axis=-1, count=n).astype(bool) if "lesioned" in z else None
        run = Run(meta, z["top1"], labels, lesioned, z["shares"] if "shares" in z else None,
                  z["attr_index"] if "attr_index" in z else None, p)
    if run.top1.shape != (len(run.zooms), n):
        raise ValueError(f"{p}: top1 has shape {run.top1.shape}, expected ({len(run.zooms)}, {n})")
    return run


def find_runs(results_dir: str | Path) -> list[Run]:
    """Every run under ``results_dir`` (``<arm>/seed<k>.npz``), sorted by arm and seed."""
    root = Path(results_dir)
    runs = [read_run(p) for p in sorted(root.glob("*/seed*.npz")) if not p.name.endswith(".tmp.npz")]
    return sorted(runs, key=lambda r: (r.arm, r.seed))


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- arms: the seeds of one model under one recipe -------------------------------------------

@dataclass
class Arm:
    """The runs of one model under one recipe, stacked over seeds (axis 0)."""

    name: str
    model: str
    regime: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def k(self) -> int:
        return len(self.runs)

    @property
    def zooms(self) -> list[float]:
        return self.runs[0].zooms

    @property
    def trained_range(self) -> tuple[float, float]:
        lo, hi = self.runs[0].meta["trained_range"]
        return float(lo), float(hi)

    @property
    def correct(self) -> np.ndarray:  # (K, Z, N)
        return np.stack([r.correct for r in self.runs])

    @property
    def consistent(self) -> np.ndarray:  # (K, Z, N)
        return np.stack([r.consistent for r in self.runs])

    @property
    def lesioned(self) -> np.ndarray | None:  # (K, A, S + 1, N)
        return None if any(r.lesioned is None for r in self.runs) else np.stack([r.lesioned for r in self.runs])

    @property
    def shares(self) -> np.ndarray | None:  # (K, A, n, S)
        if any(r.shares is None for r in self.runs):
            return None
        if len({tuple(r.attr_index.tolist()) for r in self.runs}) > 1:
            return None  # seeds attributed on different images cannot be paired
        return np.stack([r.shares for r in self.runs]).astype(np.float64)

    @property
    def attr_index(self) -> list[int] | None:
        return None if self.runs[0].attr_index is None else self.runs[0].attr_index.tolist()


def _arm_key(run: Run) -> tuple:
    recipe = run.meta.get("recipe") or {}
    return run.model, run.regime, recipe.get("name"), recipe.get("epochs")


def group_runs(runs: Iterable[Run]) -> list[Arm]:
    """Runs grouped into arms by model, regime, recipe name and epochs. Refuses two runs
    of one arm with the same seed, runs of one arm with different configs, and runs
    measured on different val images or zooms (their images could not be paired)."""
    runs = list(runs)
    if not runs:
        return []
    first = runs[0]
    arms: dict[tuple, Arm] = {}
    for r in runs:
        if not np.array_equal(r.labels, first.labels) or r.zooms != first.zooms:
            raise ValueError(f"{r.path or r.arm}: measured on other val images or zooms than "
                             f"{first.path or first.arm}; the study pairs runs image by image")
        key = _arm_key(r)
        arm = arms.setdefault(key, Arm(r.arm, r.model, r.regime))
        if r.seed in arm.seeds:
            raise ValueError(f"two runs of {arm.name} with seed {r.seed}: "
                             f"{arm.runs[arm.seeds.index(r.seed)].path} and {r.path}")
        if arm.runs and (r.meta.get("config") or {}) != (arm.runs[0].meta.get("config") or {}):
            raise ValueError(f"{r.path}: {r.model} with another config than the other seeds of {arm.name}")
        arm.runs.append(r)
    for arm in arms.values():
        arm.runs.sort(key=lambda r: r.seed)
    return list(arms.values())


# --- the hierarchical bootstrap ----------------------------------------------------------------

@dataclass(frozen=True)
class SeedInterval:
    """A difference ``sum(plus) - sum(minus)`` of per-image means, with two 95% intervals:
    over seeds and images (``lo``, ``hi``) and over images only, seeds averaged
    (``images_lo``, ``images_hi``); ``seeds``: how many seeds each term has."""

    diff: float
    lo: float
    hi: float
    images_lo: float
    images_hi: float
    seeds: tuple[int, ...]
    level: float
    resamples: int
    images: int

    @property
    def spread_measured(self) -> bool:
        return min(self.seeds) >= 2

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    @property
    def settled(self) -> bool:
        return self.spread_measured and self.excludes_zero

    def he_et_al(self, spread: float = SEED_SPREAD) -> tuple[float, float]:
        """The images-only interval widened by He et al.'s seed spread per term (in
        quadrature): the one-seed comparison, never a verdict."""
        z = _normal_quantile(0.5 + self.level / 2)
        half = math.hypot((self.images_hi - self.images_lo) / 2, z * math.sqrt(len(self.seeds)) * spread)
        return self.diff - half, self.diff + half


def hierarchical_bootstrap(plus: Sequence[np.ndarray], minus: Sequence[np.ndarray] = (), resamples: int = 2000,
                           seed: int = 0, level: float = 0.95) -> SeedInterval:
    """Interval of ``sum(mean of plus arms) - sum(mean of minus arms)`` over seeds and images.

    Args:
        plus, minus: one ``(K, N)`` array per arm: a per-image value (correctness, a drop,
            a share, already averaged over the zooms in question) for each of its K seeds,
            on the same N images in the same order for every arm.
        resamples: bootstrap resamples.
        seed: the resampling is repeatable; the image draws are those of
            :func:`wsms_viz.evaluation.evaluate.paired_bootstrap` with this seed.
        level: coverage of the percentile intervals.

    Example:
        >>> a = np.array([[1, 1, 0, 1], [1, 0, 0, 1]]); b = np.array([[1, 0, 0, 1]])
        >>> iv = hierarchical_bootstrap([a], [b], resamples=200)
        >>> iv.diff, iv.seeds
        (0.125, (2, 1))
    """
    terms = [(1.0, np.asarray(a, dtype=np.float64)) for a in plus] + \
            [(-1.0, np.asarray(b, dtype=np.float64)) for b in minus]
    if not terms or any(t.ndim != 2 or t.shape[0] < 1 for _, t in terms):
        raise ValueError("need one or more (K, N) arrays with K >= 1")
    n = terms[0][1].shape[1]
    if n == 0 or any(t.shape[1] != n for _, t in terms):
        raise ValueError(f"every arm needs the same number of images, got {[t.shape for _, t in terms]}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"need 0 < level < 1 and resamples >= 1, got {level}, {resamples}")
    seed_means = sum(s * t.mean(0) for s, t in terms)  # (N,): the images-only statistic per image
    rng_img, rng_seed = np.random.default_rng(seed), np.random.default_rng([seed, 7919])
    both, images_only = np.empty(resamples), np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        idx = rng_img.integers(0, n, size=(k, n))
        images_only[start:start + k] = seed_means[idx].mean(1)
        total = np.zeros(k)
        for s, t in terms:
            if t.shape[0] == 1:
                total += s * t[0][idx].mean(1)
                continue
            per_seed = np.stack([row[idx].mean(1) for row in t], 1)  # (k, K)
            draws = rng_seed.integers(0, t.shape[0], size=(k, t.shape[0]))
            total += s * np.take_along_axis(per_seed, draws, 1).mean(1)
        both[start:start + k] = total
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = np.quantile(both, q)
    ilo, ihi = np.quantile(images_only, q)
    return SeedInterval(float(seed_means.mean()), float(lo), float(hi), float(ilo), float(ihi),
                        tuple(t.shape[0] for _, t in terms), level, resamples, n)


def as_interval(iv: SeedInterval) -> Interval:
    """The over-seeds-and-images interval as the evaluator's :class:`Interval`."""
    return Interval(iv.diff, iv.lo, iv.hi, iv.level, iv.resamples, iv.images)


def seed_sd(values: np.ndarray) -> float | None:
    """The SD over seeds (axis 0, ddof 1) of a per-seed figure; None with one seed."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.std(0, ddof=1)) if len(v) >= 2 else None


__all__ = ["Arm", "RESULTS_FORMAT", "RESULTS_VERSION", "Run", "SeedInterval", "arm_name", "as_interval",
           "file_digest", "find_runs", "group_runs", "hierarchical_bootstrap", "read_run", "run_meta", "seed_sd",
           "write_run"]
