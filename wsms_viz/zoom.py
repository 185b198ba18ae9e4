"""The one zoom transform used by the evaluation, the app and the tests.

``zoom(image, factor, center)``:

* ``factor > 1`` crops ``1/factor`` of the image's width and height around ``center``
  (fractions of width and height; the window is moved inside the image if it would
  cross an edge) and resizes the crop to the output size.
* ``factor < 1`` shrinks the whole image by ``factor`` and pads it back to the output
  size, centred.
* ``factor == 1`` only resizes to the output size (a no-op at the same size).

Resampling is bilinear with antialiasing (``F.interpolate(..., antialias=True)``):
bilinear does not overshoot the way bicubic does (no ringing, values stay in range),
and antialiasing matters when a large photo is shrunk to 32x32, where plain bilinear
would alias. Zooming into a 32x32 CIFAR image only blurs: no detail is invented.

Padding uses a constant ``fill`` colour, by default the CIFAR-10 mean, which is 0 after
normalisation: the same value the networks' own zero padding shows them at every
border, so the pad adds no edge the network has not seen. Reflection would add mirror
copies of the object and edge replication would add streaks, both new content.

The crop window is rounded to whole pixels, so the effective factor of a 32x32 image
moves in steps (``effective_zoom`` reports it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

MIN_ZOOM, MAX_ZOOM = 0.25, 8.0
# VGG's multi-scale evaluation (vgg-lecture.txt, 4.2): a net trained at S=256 is tested
# at Q = {S-32, S, S+32} = {224, 256, 288} and the class posteriors are averaged. The
# same relative scales around a zoom: 224/256 = 0.875 and 288/256 = 1.125. Used by the
# evaluator's +TTA rows and the app's multi-scale averaging alike.
TTA_SCALES: tuple[float, ...] = (0.875, 1.0, 1.125)


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def crop_box(
    height: int, width: int, factor: float, center: tuple[float, float] = (0.5, 0.5)
) -> tuple[int, int, int, int]:
    """The ``(top, left, h, w)`` window ``zoom`` crops for ``factor >= 1``."""
    h = max(1, min(height, round(height / factor)))
    w = max(1, min(width, round(width / factor)))
    cy, cx = center
    top = min(max(round(cy * height - h / 2), 0), height - h)
    left = min(max(round(cx * width - w / 2), 0), width - w)
    return top, left, h, w


def effective_zoom(height: int, factor: float) -> float:
    """The factor ``zoom`` really applies along an axis of ``height`` pixels."""
    if factor >= 1:
        return height / max(1, min(height, round(height / factor)))
    return max(1, round(height * factor)) / height


def zoom(
    image: Tensor,
    factor: float,
    center: tuple[float, float] = (0.5, 0.5),
    out_size: int | Sequence[int] | None = None,
    fill: Sequence[float] = CIFAR10_MEAN,
) -> Tensor:
    """Zooms an image (or a batch) in or out, as described in the module docstring.

    Args:
        image: ``(C, H, W)`` or ``(N, C, H, W)``; float in [0, 1], or uint8.
        factor: > 1 zooms in, < 1 zooms out; between ``MIN_ZOOM`` and ``MAX_ZOOM``.
        center: ``(y, x)`` of the zoom centre as fractions of height and width.
        out_size: output height and width; defaults to the input's.
        fill: the padding colour for ``factor < 1``, one value per channel.

    Returns:
        A float tensor in [0, 1] of the input's layout at ``out_size``.

    Example:
        >>> zoom(torch.rand(3, 32, 32), 2.0).shape
        torch.Size([3, 32, 32])
    """
    if not (MIN_ZOOM <= factor <= MAX_ZOOM):
        raise ValueError(f"zoom factor must be between {MIN_ZOOM} and {MAX_ZOOM}, got {factor}")
    if not all(0.0 <= c <= 1.0 for c in center):
        raise ValueError(f"zoom center must be fractions in [0, 1], got {center}")
    if image.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {tuple(image.shape)}")
    single = image.dim() == 3
    x = image.unsqueeze(0) if single else image
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    H, W = x.shape[-2:]
    oh, ow = _size2(out_size) if out_size is not None else (H, W)

    if factor >= 1:
        top, left, h, w = crop_box(H, W, factor, center)
        x = x[..., top:top + h, left:left + w]
        out = _resize(x, oh, ow)
    else:
        sh, sw = max(1, round(oh * factor)), max(1, round(ow * factor))
        small = _resize(x, sh, sw)
        out = torch.empty(x.shape[0], x.shape[1], oh, ow, dtype=x.dtype, device=x.device)
        out[:] = torch.tensor(fill, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        top, left = (oh - sh) // 2, (ow - sw) // 2
        out[..., top:top + sh, left:left + sw] = small
    out = out.clamp_(0, 1)
    return out[0] if single else out


def _resize(x: Tensor, h: int, w: int) -> Tensor:
    if x.shape[-2:] == (h, w):
        return x.clone()
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def zoom_sweep(image: Tensor, factors: Sequence[float], center=(0.5, 0.5), out_size=None) -> Tensor:
    """``zoom`` at every factor, stacked: ``(len(factors), C, H, W)`` for one image."""
    return torch.stack([zoom(image, f, center, out_size) for f in factors])


def normalize(x: Tensor, mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD) -> Tensor:
    """Per-channel normalisation of a ``(..., C, H, W)`` float batch in [0, 1]."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - m) / s
