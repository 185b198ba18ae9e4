"""Predictions for the zoom page: whole zoom sweeps in one batched forward per model.

The page's slider moves through :data:`ZOOMS`; everything it shows at any of them is
computed here once per (image, centre, model, lesion), so moving the slider only looks
results up. No streamlit here.

Example:
    >>> import numpy as np
    >>> from wsms_viz.app.catalog import load
    >>> from wsms_viz.app.framing import frame, network_inputs
    >>> m = load("untrained:resnet20")
    >>> photo = np.zeros((40, 60, 3), np.uint8)
    >>> s = sweep(m, network_inputs(photo, frame(photo.shape), ZOOMS))
    >>> s.probs.shape
    (26, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..zoom import TTA_SCALES, normalize
from .catalog import LoadedModel
from .framing import Framing, network_inputs

# The page's zoom grid: 0.5x to 3x in steps of 0.1 (26 steps), the Streamlit slider's
# own step, so every value the slider can take is precomputed.
ZOOMS: tuple[float, ...] = tuple(round(0.5 + 0.1 * i, 1) for i in range(26))


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
        model: the model's label alone.
        zooms: the zoom factors, one per row of ``probs``.
        probs: ``(len(zooms), num_classes)`` softmax probabilities.
        classes: class names of the columns.
    """

    label: str
    zooms: tuple[float, ...]
    probs: np.ndarray
    classes: tuple[str, ...]
    model: str = ""  # the model's own label, for its colour (see wsms_viz.palette)

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
    """``m``'s predictions on precomputed inputs at ``zooms``
    (:func:`wsms_viz.app.framing.network_inputs`): one forward pass."""
    label = m.label
    if stage_mask is not None and not all(stage_mask):
        off = [str(i + 1) for i, on in enumerate(stage_mask) if not on]
        label += f" (stage {', '.join(off)} off)"
    return Sweep(label, tuple(zooms), probabilities(m, stack, stage_mask), tuple(m.classes), m.label)


def tta_sweep(m: LoadedModel, pixels: np.ndarray, framing: Framing, zooms: Sequence[float] = ZOOMS,
              scales: Sequence[float] = TTA_SCALES) -> Sweep:
    """VGG-style multi-scale test-time averaging at every zoom of ``zooms``.

    At zoom ``z`` the softmax is averaged over the image zoomed by ``z * s`` for each
    ``s`` in ``scales``; all ``len(zooms) * len(scales)`` views go through one batched
    forward pass.
    """
    factors = [z * s for z in zooms for s in scales]
    p = probabilities(m, network_inputs(pixels, framing, factors))
    p = p.reshape(len(zooms), len(scales), -1).mean(1)
    return Sweep(m.label + " + multi-scale", tuple(zooms), p, tuple(m.classes), m.label)


def stage_count(models: Sequence[LoadedModel]) -> int:
    """The most stages any of ``models`` has (how many lesion toggles the page shows)."""
    return max((m.num_stages for m in models), default=1)


def mask_for(m: LoadedModel, stages_on: Sequence[bool]) -> list[bool] | None:
    """The stage mask for ``m`` from the page's toggles (None for a baseline)."""
    if m.is_baseline:
        return None
    mask = list(stages_on[: m.num_stages]) + [True] * max(0, m.num_stages - len(stages_on))
    return mask
