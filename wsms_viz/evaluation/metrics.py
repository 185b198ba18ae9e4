"""Accuracy of a model on uint8 images, at one zoom or a sweep of zooms.

The accuracy core shared by the trainer's final curve and ``python -m wsms_viz.evaluation.evaluate``:
every zoom goes through :func:`wsms_viz.zoom.zoom`, the one transform the app shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..data import to_model_input
from ..zoom import normalize, zoom

DEFAULT_ZOOMS = (0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 1.75, 2.0)


@torch.no_grad()
def predict_at_zoom(model: nn.Module, images: Tensor, factor: float, mean, std, batch_size: int = 500,
                    device: str | torch.device = "cpu", center=(0.5, 0.5)) -> Tensor:
    """Softmax probabilities ``(N, classes)`` of ``model`` on uint8 images zoomed by ``factor``."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        if factor == 1.0:
            x = to_model_input(x, mean, std, device)
        else:
            x = normalize(zoom(x, factor, center, fill=mean), mean, std)
        out.append(model(x).float().softmax(1).cpu())
    return torch.cat(out)


def probs_vs_zoom(model: nn.Module, images: Tensor, zooms: Sequence[float], mean, std,
                  **kw) -> dict[float, Tensor]:
    """:func:`predict_at_zoom` at each factor: ``{zoom: (N, classes) probabilities}``."""
    return {float(z): predict_at_zoom(model, images, z, mean, std, **kw) for z in zooms}


def accuracy_from_probs(probs: dict[float, Tensor], labels: Tensor, zooms: Sequence[float] | None = None) -> dict:
    """The curve :func:`accuracy_vs_zoom` returns, from probabilities already computed."""
    zooms = list(probs) if zooms is None else [float(z) for z in zooms]
    correct = {z: (probs[z].argmax(1) == labels).tolist() for z in zooms}
    acc = [sum(correct[z]) / len(labels) for z in zooms]
    return {"zooms": zooms, "val_acc": acc, "mean_acc": sum(acc) / len(acc), "correct": correct}


def accuracy_vs_zoom(model: nn.Module, images: Tensor, labels: Tensor, zooms: Sequence[float] = DEFAULT_ZOOMS,
                     mean=None, std=None, **kw) -> dict:
    """Top-1 accuracy at each zoom; also returns per-image correctness for bootstraps.

    Returns:
        ``{"zooms", "val_acc" (one per zoom), "mean_acc", "correct": {zoom: [bool] * N}}``.
    """
    return accuracy_from_probs(probs_vs_zoom(model, images, zooms, mean, std, **kw), labels, zooms)
