"""Feature maps per stage, and a measured answer to Fig. 1 (the paper's future work, section 5).

Section 5 asks for "visualizing the feature maps in different stages to ensure that our
method can acquire multi-scale features". This module gives each stage's maps after every
block with three colour scalings, the response of one shared filter at every stage, and a
number for Fig. 1's claim that shared weights make stage 2 see in a half-size image what
stage 1 sees in the full-size one.

Aligning the scales. Stage 2 sees the input halved by a 2x2 average pool. So stage 1 must
be shown an image at half size for the two to look at the same pixels at the same scale:

* ``"shrink"`` (the default): stage ``s`` on ``zoom(x, 0.5)`` (a 16x16 copy of ``x``
  centred in a 32x32 frame padded with the mean colour), the central region of its map,
  against stage ``s + 1`` on ``x``. Both stages then see ``x`` at 16x16, one resampled by
  the zoom's antialiased bilinear filter, one by the average pool. The frame is 0 after
  normalisation, so the first convolution sees it exactly as the other stage's zero
  padding; deeper layers see the frame's own activations, so a ring along the border of
  the region (about a field radius wide) differs for that reason too.
* ``"enlarge"``: stage ``s + 1`` on ``zoom(x, 2)`` (the central half of ``x`` enlarged to
  32x32) against the central region of stage ``s``'s map of ``x``. Fig. 1's own picture
  (a close-up of the car in stage 2), but the enlargement interpolates pixels a 32x32
  image does not have, so stage ``s + 1`` sees a blurred copy of what stage ``s`` sees.

``"shrink"`` is the default because it only ever downsamples: both views hold the same
information, and what remains is the difference between the two stages' networks, which
is what the claim is about. (Stage 1 on ``zoom(x, 2)`` against stage 2 on ``x`` would
compare views four times apart in scale, not the same.)

Similarity of two aligned maps ``a`` and ``b`` (``(C, h, w)``, channel ``c`` of both the
output of the same position in the network):

* ``cosine``: per-channel cosine similarity of the flattened maps, averaged over channels
  (post-ReLU maps are non-negative, so even unrelated maps score above 0);
* ``correlation``: per-channel Pearson correlation over positions, averaged; 0 for
  unrelated maps, the headline number;
* ``cka``: linear centered kernel alignment (Kornblith et al. 2019) between the two
  representations, positions as samples. CKA does not need channel ``c`` to mean the same
  thing in both maps: it would credit a trained MS-Net whose stages learned similar
  features in different channels, which the per-channel numbers cannot see. Comparing
  the two for a trained MS-Net tells whether sharing the weights is what aligns them.

Channels that are constant (e.g. dead) in either map are left out of the per-channel
averages. For an MS-Net "the same channel" is just the same index in an independently
initialised (or trained) layer: channels do not correspond, which the numbers show.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .._cli import bad_input_exits_2
from ..zoom import crop_box, normalize, zoom
from .stage_view import StageView, as_batch, require_eval, stage_views

SCALINGS = ("local", "stage", "global")
PAIRINGS = ("shrink", "enlarge")
METRICS = ("cosine", "correlation", "cka")


@dataclass
class StageFeatures:
    """Every stage's maps after every block for one image, with colour ranges.

    Attributes:
        maps: ``maps[s][b]``, ``(C, h, w)``, stage ``s``'s map after block ``b``.
        ranges: ``ranges[s][b]``, ``(C, 2)``, the ``(vmin, vmax)`` to draw each channel with.
        scaling: how :attr:`ranges` were set (:func:`color_ranges`).
    """

    maps: list[list[np.ndarray]]
    ranges: list[list[np.ndarray]]
    scaling: str


def color_ranges(maps: list[list[np.ndarray]], scaling: str = "stage") -> list[list[np.ndarray]]:
    """Colour ranges ``(vmin, vmax)`` for every channel map.

    Args:
        maps: ``maps[s][b]`` of shape ``(C, h, w)``.
        scaling: ``"local"``: each channel map its own range (shape is visible, sizes
            are not comparable); ``"stage"``: one range per stage and block (channels of
            one map comparable); ``"global"``: one range per block across all stages, so
            the same block's maps are comparable from stage to stage (blocks differ in depth
            and size, so one range over all blocks would let one block wash out the rest).
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")

    def span(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
        lo = min(float(a.min()) for a in arrays)
        hi = max(float(a.max()) for a in arrays)
        return lo, hi if hi > lo else lo + 1e-6

    out = []
    for stage in maps:
        row = []
        for b, m in enumerate(stage):
            if scaling == "local":
                r = np.array([span([c]) for c in m])
            elif scaling == "stage":
                r = np.tile(span([m]), (m.shape[0], 1))
            else:
                r = np.tile(span([st[b] for st in maps if b < len(st)]), (m.shape[0], 1))
            row.append(r)
        out.append(row)
    return out


def stage_feature_maps(model: nn.Module, image: Tensor, scaling: str = "stage") -> StageFeatures:
    """Each stage's maps after every block for one image.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        scaling: ``"local"``, ``"stage"`` or ``"global"`` (:func:`color_ranges`).

    Example:
        >>> from wsms_viz.models import create_model
        >>> f = stage_feature_maps(create_model("wsms_resnet20").eval(), torch.randn(3, 32, 32))
        >>> [[m.shape for m in s] for s in f.maps][2]
        [(16, 8, 8)]
    """
    require_eval(model)
    x = as_batch(image, model)
    with torch.no_grad():
        maps = [[f[0].numpy().copy() for f in v.block_maps(v.scale_input(x))] for v in stage_views(model)]
    return StageFeatures(maps, color_ranges(maps, scaling), scaling)


def top_channels(block_map: np.ndarray, k: int) -> list[int]:
    """The ``k`` channels of a ``(C, h, w)`` map with the largest mean activation.

    Args:
        block_map: one stage's map after one block.
        k: how many channels to return, strongest first.
    """
    order = np.argsort(-block_map.reshape(block_map.shape[0], -1).mean(1), kind="stable")
    return [int(c) for c in order[:k]]


def shared_filter_responses(model: nn.Module, image: Tensor, block: int, channel: int) -> list[np.ndarray]:
    """Channel ``channel`` of block ``block`` at every stage that has that block.

    In a WSMS-Net this is one filter (section 3.1: the blocks at the same depth share
    their convolution weights) applied to the image at ``2**s``-times smaller scales; in an
    MS-Net it is the same index in unrelated layers.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        block: 0-based block index.
        channel: channel index in that block's output.

    Returns:
        ``(h_s, w_s)`` maps for stages ``0 .. S-1-block`` (stage ``s`` has blocks
        ``0 .. t-s-1``), in stage order.
    """
    require_eval(model)
    views = [v for v in stage_views(model) if block < len(v.blocks)]
    if not views or block < 0:
        raise ValueError(f"block {block} does not exist in any stage")
    x = as_batch(image, model)
    with torch.no_grad():
        out = [v.block_maps(v.scale_input(x))[block][0] for v in views]
    if not 0 <= channel < out[0].shape[0]:
        raise ValueError(f"channel {channel} does not exist; block {block} has {out[0].shape[0]} channels")
    return [o[channel].numpy().copy() for o in out]


# --- Fig. 1, measured ----------------------------------------------------------------


def _block_map(view: StageView, x: Tensor, block: int) -> Tensor:
    return view.block_maps(view.scale_input(x))[block][0]


def _centre(m: Tensor, box: tuple[int, int, int, int], image_hw: tuple[int, int]) -> Tensor:
    # ``box`` is in input pixels; the map is the input scaled down by a whole factor.
    top, left, h, w = box
    fy, fx = image_hw[0] // m.shape[-2], image_hw[1] // m.shape[-1]
    if top % fy or h % fy or left % fx or w % fx:
        raise ValueError(f"the zoomed region {box} does not fall on whole units of a {tuple(m.shape[-2:])} map")
    return m[:, top // fy:(top + h) // fy, left // fx:(left + w) // fx]


def aligned_maps(
    model: nn.Module, fine_image: Tensor, coarse_image: Tensor, block: int = 0, stage: int = 0, gap: int = 1,
    pairing: str = "shrink",
) -> tuple[np.ndarray, np.ndarray]:
    """Stage ``stage``'s and stage ``stage + gap``'s block-``block`` maps at the same scale.

    Args:
        model: a WSMS-Net or MS-Net, in eval mode.
        fine_image: unnormalised ``(3, H, W)`` in [0, 1], for stage ``stage``.
        coarse_image: unnormalised ``(3, H, W)`` in [0, 1], for stage ``stage + gap``;
            the same image for the claim, another one for the unrelated floor.
        block: 0-based block, present in both stages.
        stage: the finer stage (0-based).
        gap: stages apart; the zoom is ``2**-gap`` (shrink) or ``2**gap`` (enlarge).
        pairing: ``"shrink"`` or ``"enlarge"`` (module docstring).

    Returns:
        ``(fine, coarse)``, two ``(C, h, w)`` arrays over the same image region.
    """
    require_eval(model)
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    views = stage_views(model)
    if gap < 1 or not 0 <= stage < stage + gap < len(views):
        raise ValueError(f"stages {stage} and {stage + gap} (0-based) are not both in this {len(views)}-stage model")
    if not 0 <= block < len(views[stage + gap].blocks):
        raise ValueError(f"block {block} is not in stage {stage + gap} (0-based), which has "
                         f"{len(views[stage + gap].blocks)} blocks")
    hw = (fine_image.shape[-2], fine_image.shape[-1])
    factor = 2.0**gap
    with torch.no_grad():
        if pairing == "shrink":
            fine_in = normalize(zoom(fine_image, 1 / factor))
            sh, sw = round(hw[0] / factor), round(hw[1] / factor)
            box = ((hw[0] - sh) // 2, (hw[1] - sw) // 2, sh, sw)  # where zoom puts the copy
            fine = _centre(_block_map(views[stage], as_batch(fine_in, model), block), box, hw)
            coarse = _block_map(views[stage + gap], as_batch(normalize(coarse_image), model), block)
        else:
            fine_map = _block_map(views[stage], as_batch(normalize(fine_image), model), block)
            fine = _centre(fine_map, crop_box(hw[0], hw[1], factor), hw)
            coarse_in = normalize(zoom(coarse_image, factor))
            coarse = _block_map(views[stage + gap], as_batch(coarse_in, model), block)
    if fine.shape != coarse.shape:
        raise ValueError(f"the aligned maps differ in shape: {tuple(fine.shape)} vs {tuple(coarse.shape)}")
    return fine.numpy().copy(), coarse.numpy().copy()


def map_similarity(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> dict[str, float]:
    """Per-channel cosine, per-channel correlation and linear CKA of two ``(C, h, w)`` maps.

    Args:
        a: one map.
        b: a map of the same shape (channel ``c`` of each is compared with the other's).
        eps: norms below this count as constant channels and are left out.

    Returns:
        ``{"cosine": ..., "correlation": ..., "cka": ...}``; NaN where no channel qualifies.
    """
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    x = a.reshape(a.shape[0], -1).astype(np.float64)
    y = b.reshape(b.shape[0], -1).astype(np.float64)

    def per_channel(u: np.ndarray, v: np.ndarray) -> float:
        nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
        ok = (nu > eps) & (nv > eps)
        return float(((u * v).sum(1)[ok] / (nu[ok] * nv[ok])).mean()) if ok.any() else float("nan")

    xc = x - x.mean(1, keepdims=True)
    yc = y - y.mean(1, keepdims=True)
    # Linear CKA with positions as samples: ||Yc^T Xc||^2 / (||Xc^T Xc|| ||Yc^T Yc||).
    xs, ys = xc.T, yc.T
    denom = np.linalg.norm(xs.T @ xs) * np.linalg.norm(ys.T @ ys)
    cka = float(np.linalg.norm(ys.T @ xs) ** 2 / denom) if denom > eps else float("nan")
    return {"cosine": per_channel(x, y), "correlation": per_channel(xc, yc), "cka": cka}


@dataclass
class SimilarityRow:
    """Mean and standard deviation of one metric for one model and one kind of pair."""

    model: str
    pairs: str  # "same image" or "unrelated images"
    metric: str
    mean: float
    std: float
    n: int


def fig1_similarity(
    models: dict[str, nn.Module], images: Tensor, block: int = 0, stage: int = 0, gap: int = 1,
    pairing: str = "shrink",
) -> list[SimilarityRow]:
    """Fig. 1's claim over many images: aligned stage maps of one image against the floor
    of unrelated images (image ``i`` in the finer stage, image ``i + 1`` in the coarser).

    Args:
        models: display name -> model in eval mode (e.g. a WSMS-Net and an MS-Net).
        images: ``(N, 3, H, W)`` unnormalised images in [0, 1], ``N >= 2``.
        block: 0-based block compared.
        stage: the finer stage (0-based); the coarser is ``stage + gap``.
        gap: stages apart.
        pairing: ``"shrink"`` (default) or ``"enlarge"``.

    Returns:
        One :class:`SimilarityRow` per model, pair kind and metric.
    """
    if images.dim() != 4 or images.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2 images (N, 3, H, W), got shape {tuple(images.shape)}")
    rows = []
    n = images.shape[0]
    for name, model in models.items():
        for pairs, shift in (("same image", 0), ("unrelated images", 1)):
            scores = [map_similarity(*aligned_maps(model, images[i], images[(i + shift) % n], block, stage, gap,
                                                   pairing)) for i in range(n)]
            for metric in METRICS:
                v = np.array([s[metric] for s in scores])
                v = v[np.isfinite(v)]
                rows.append(SimilarityRow(name, pairs, metric, float(v.mean()) if v.size else float("nan"),
                                          float(v.std()) if v.size else float("nan"), int(v.size)))
    return rows


def blob_images(n: int, size: int = 32, blobs: int = 6, seed: int = 0) -> Tensor:
    """Smooth synthetic images: coloured Gaussian blobs on a colour gradient, in [0, 1].

    Structured like objects (edges, colour regions) rather than white noise, which no
    trained filter responds to the way it does to a photo; used by the tests and by the
    command line when no images are given.

    Args:
        n: how many images.
        size: side in pixels.
        blobs: blobs per image.
        seed: seed of the generator (the images depend on nothing else).
    """
    g = torch.Generator().manual_seed(seed)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        a, b = torch.rand(2, 3, 1, 1, generator=g)
        direction = torch.rand(1, generator=g) * 2 * torch.pi
        ramp = (torch.cos(direction) * xx + torch.sin(direction) * yy).clamp(0, 1)
        img = a * (1 - ramp) + b * ramp
        for _ in range(blobs):
            cy, cx = torch.rand(2, generator=g)
            sigma = 0.04 + 0.12 * torch.rand(1, generator=g)
            colour = torch.rand(3, 1, 1, generator=g)
            w = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
            img = img * (1 - w) + colour * w
        out[i] = img.clamp(0, 1)
    return out


def _format(rows: list[SimilarityRow]) -> str:
    width = max(len(r.model) for r in rows) + 1
    lines = [f"{'model':<{width}} {'pairs':<17} {'metric':<12} {'mean':>7} {'std':>7} {'n':>4}"]
    for r in rows:
        lines.append(f"{r.model:<{width}} {r.pairs:<17} {r.metric:<12} {r.mean:7.3f} {r.std:7.3f} {r.n:4d}")
    return "\n".join(lines)


def _read_images(folder: str, n: int, size: int = 32) -> Tensor:
    """``n`` images spread evenly over a folder's sorted image files, resized to ``size``."""

    from ..data import IMAGE_SUFFIXES, decode_file

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    picks = [files[i * len(files) // n] for i in range(min(n, len(files)))]
    decoded = [pixels for pixels in (decode_file(f, size) for f in picks) if pixels is not None]
    if len(decoded) < 2:
        raise ValueError(f"{folder}: fewer than 2 readable image files")
    return torch.stack([torch.from_numpy(p.copy()).permute(2, 0, 1).float() / 255 for p in decoded])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m wsms_viz.analysis.features``: prints Fig. 1's similarity table.

    With no ``--checkpoint``, random-init WSMS and MS ResNet-20 (seeded), on blob images:
    the shared-filter identity is structural, so it shows before training.

    Args:
        argv: command-line arguments; None reads ``sys.argv``.
    """
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--checkpoint", action="append", default=[], help="checkpoint directory (repeatable)")
    p.add_argument("--images", type=int, default=32, help="how many images")
    p.add_argument("--data", help="use the val split of this dataset source (imagefolder:PATH, cifar10:ROOT ...)")
    p.add_argument("--cache-dir", type=Path, help="decoded-image cache for --data (default: $WSMS_CACHE)")
    p.add_argument("--image-dir", help="read images from this folder (recursively) instead of blob images")
    p.add_argument("--block", type=int, default=0)
    p.add_argument("--stage", type=int, default=0)
    p.add_argument("--gap", type=int, default=1)
    p.add_argument("--pairing", choices=PAIRINGS, default="shrink")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with bad_input_exits_2():  # a bad checkpoint, data source or image folder: said plainly
        models, images, source = _inputs(args)
    print(f"Fig. 1: stage {args.stage + 1} vs stage {args.stage + 1 + args.gap}, block {args.block + 1}, "
          f"pairing {args.pairing!r}, {images.shape[0]} images from {source}")
    print(_format(fig1_similarity(models, images, args.block, args.stage, args.gap, args.pairing)))


def _inputs(args) -> tuple[dict[str, nn.Module], Tensor, str]:
    """The models, the images and where the images come from, as the arguments say."""
    if args.checkpoint:
        from ..checkpoint import load_checkpoint

        models = {}
        for d in args.checkpoint:
            ck = load_checkpoint(d)
            models[ck.name] = ck.model
    else:
        from ..models import create_model

        models = {}
        for name in ("wsms_resnet20", "ms_resnet20"):
            torch.manual_seed(args.seed)
            models[f"{name} (random)"] = create_model(name).eval()
    if args.data:
        from ..data import DEFAULT_CACHE, load_dataset

        val = load_dataset(args.data, cache_dir=args.cache_dir or DEFAULT_CACHE).val.images
        picks = [i * len(val) // args.images for i in range(min(args.images, len(val)))]  # every class
        images, source = val[picks].float() / 255, f"the val split of {args.data}"
    elif args.image_dir:
        images, source = _read_images(args.image_dir, args.images), args.image_dir
    else:
        images, source = blob_images(args.images, seed=args.seed), f"blob images (seed {args.seed})"
    return models, images, source


if __name__ == "__main__":
    main()
