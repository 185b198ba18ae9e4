"""Predictions for the zoom page: whole zoom sweeps in one batched forward per model.

The page's slider moves through :data:`ZOOMS`; everything it shows at any of them is
computed here once per (image, centre, model, lesion), so moving the slider only looks
results up. No streamlit here.

Example:
    >>> import numpy as np
    >>> from wsms_viz.app.catalog import load
    >>> m = load("untrained:resnet20")
    >>> img = prepare(np.zeros((40, 60, 3), np.uint8))
    >>> s = sweep(m, zoom_stack(img, ZOOMS))
    >>> s.probs.shape
    (26, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..zoom import MAX_ZOOM, MIN_ZOOM, TTA_SCALES, normalize, zoom
from .catalog import LoadedModel
from .images import square_crop

# The page's zoom grid: 0.5x to 3x in steps of 0.1 (26 steps), the Streamlit slider's
# own step, so every value the slider can take is precomputed.
ZOOMS: tuple[float, ...] = tuple(round(0.5 + 0.1 * i, 1) for i in range(26))
INPUT_SIZE = 32


def prepare(pixels: np.ndarray, center: tuple[float, float] = (0.5, 0.5)) -> tuple[Tensor, tuple[float, float]]:
    """A photo as the float ``(3, S, S)`` square the zoom works on, and the centre in it.

    The square keeps the photo's full resolution (see :func:`wsms_viz.app.images.square_crop`).
    """
    sq, inner = square_crop(pixels, center)
    t = torch.from_numpy(np.array(sq)).permute(2, 0, 1).float().div_(255)  # a copy: sq may be read-only
    return t, inner


def zoom_stack(image: Tensor | tuple[Tensor, tuple[float, float]], factors: Sequence[float],
               center: tuple[float, float] | None = None, size: int = INPUT_SIZE) -> Tensor:
    """``(len(factors), 3, size, size)``: the image zoomed by each factor, cropped first.

    Accepts what :func:`prepare` returns (image and centre) or an image and ``center``.
    """
    if isinstance(image, tuple):
        image, inner = image
        center = inner if center is None else center
    center = center or (0.5, 0.5)
    return torch.stack([zoom(image, _clip(f), center, out_size=size) for f in factors])


def _clip(f: float) -> float:
    return float(min(max(f, MIN_ZOOM), MAX_ZOOM))


@torch.no_grad()
def probabilities(m: LoadedModel, batch: Tensor, stage_mask: Sequence[bool] | None = None) -> np.ndarray:
    """Softmax of ``m`` on a ``(N, 3, H, W)`` batch in [0, 1], one forward pass.

    Args:
        stage_mask: for a multi-stage model, which stages stay on (the lesion study);
            None or all True runs the plain forward.
    """
    x = normalize(batch, m.mean, m.std)
    if stage_mask is None or all(stage_mask):
        logits = m.model(x)
    else:
        logits = m.model.forward_features(x, stage_mask=list(stage_mask)).logits
    return torch.softmax(logits.float(), 1).numpy()


@dataclass(frozen=True)
class Sweep:
    """One model's predictions at every zoom of :data:`ZOOMS`.

    Attributes:
        label: the model's label, plus " + multi-scale" or the stages switched off.
        zooms: the zoom factors, one per row of ``probs``.
        probs: ``(len(zooms), num_classes)`` softmax probabilities.
        classes: class names of the columns.
    """

    label: str
    zooms: tuple[float, ...]
    probs: np.ndarray
    classes: tuple[str, ...]

    def at(self, factor: float) -> np.ndarray:
        """The row nearest to ``factor``."""
        return self.probs[nearest(self.zooms, factor)]

    def top(self, factor: float, k: int = 5) -> list[tuple[str, float]]:
        return top_k(self.at(factor), self.classes, k)

    def curve(self, cls: str) -> np.ndarray:
        """Probability of class ``cls`` at every zoom (zeros if the model lacks it)."""
        if cls not in self.classes:
            return np.zeros(len(self.zooms))
        return self.probs[:, self.classes.index(cls)]


def nearest(zooms: Sequence[float], factor: float) -> int:
    return int(np.argmin(np.abs(np.asarray(zooms) - factor)))


def top_k(probs: np.ndarray, classes: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes, most probable first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(classes[i], float(probs[i])) for i in order]


def sweep(m: LoadedModel, stack: Tensor, zooms: Sequence[float] = ZOOMS,
          stage_mask: Sequence[bool] | None = None) -> Sweep:
    """``m``'s predictions on a precomputed :func:`zoom_stack` of ``zooms``: one forward."""
    label = m.label
    if stage_mask is not None and not all(stage_mask):
        off = [str(i + 1) for i, on in enumerate(stage_mask) if not on]
        label += f" (stage {', '.join(off)} off)"
    return Sweep(label, tuple(zooms), probabilities(m, stack, stage_mask), tuple(m.classes))


def tta_sweep(m: LoadedModel, image: tuple[Tensor, tuple[float, float]], zooms: Sequence[float] = ZOOMS,
              scales: Sequence[float] = TTA_SCALES) -> Sweep:
    """VGG-style multi-scale test-time averaging at every zoom of ``zooms``.

    At zoom ``z`` the softmax is averaged over the image zoomed by ``z * s`` for each
    ``s`` in ``scales``; all ``len(zooms) * len(scales)`` views go through one batched
    forward pass.
    """
    factors = [z * s for z in zooms for s in scales]
    p = probabilities(m, zoom_stack(image, factors))
    p = p.reshape(len(zooms), len(scales), -1).mean(1)
    return Sweep(m.label + " + multi-scale", tuple(zooms), p, tuple(m.classes))


def stage_count(models: Sequence[LoadedModel]) -> int:
    """The most stages any of ``models`` has (how many lesion toggles the page shows)."""
    return max((m.num_stages for m in models), default=1)


def mask_for(m: LoadedModel, stages_on: Sequence[bool]) -> list[bool] | None:
    """The stage mask for ``m`` from the page's toggles (None for a baseline)."""
    if m.is_baseline:
        return None
    mask = list(stages_on[: m.num_stages]) + [True] * max(0, m.num_stages - len(stages_on))
    return mask
