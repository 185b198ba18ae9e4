"""Accuracy of a model on uint8 images, at one zoom or a sweep of zooms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .data import to_model_input
from .zoom import normalize, zoom

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


def accuracy_vs_zoom(model: nn.Module, images: Tensor, labels: Tensor, zooms: Sequence[float] = DEFAULT_ZOOMS,
                     mean=None, std=None, **kw) -> dict:
    """Top-1 accuracy at each zoom; also returns per-image correctness for bootstraps."""
    correct = {}
    for z in zooms:
        p = predict_at_zoom(model, images, z, mean, std, **kw)
        correct[z] = (p.argmax(1) == labels).tolist()
    acc = [sum(correct[z]) / len(labels) for z in zooms]
    return {"zooms": list(zooms), "val_acc": acc, "mean_acc": sum(acc) / len(acc), "correct": correct}
