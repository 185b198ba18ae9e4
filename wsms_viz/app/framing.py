"""Photo + centre + zoom -> what the network sees, and the boxes that show it on the photo.

The one place that knows how the app frames a photo, asked by both the predictor (the
network's inputs) and the zoom figure (the boxes drawn on the photo), so the two can
never disagree:

1. The networks take square inputs, so a non-square photo is cut to a square as large as
   its short side (no squashing, no padding); along the long side the square slides to
   put the zoom centre in its middle, stopping at the edges.
2. :func:`wsms_viz.zoom.zoom` then zooms that square around the centre (now a fraction
   of the square) at its full resolution, and only then shrinks it to 32x32, so a large
   photo shows real detail when zoomed into.

Everything is in the photo's own pixels; no streamlit here.

Example:
    >>> import numpy as np
    >>> f = frame((40, 60), (0.5, 0.9))
    >>> (f.top, f.left, f.side), f.box(2.0)
    ((0, 20, 40), (10, 40, 20, 20))
    >>> network_inputs(np.zeros((40, 60, 3), np.uint8), f, (0.5, 1.0, 2.0)).shape
    torch.Size([3, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..zoom import MAX_ZOOM, MIN_ZOOM, crop_box, zoom

INPUT_SIZE = 32


@dataclass(frozen=True)
class Framing:
    """Where in a photo the network looks.

    Attributes:
        top, left, side: the square of the photo the zoom works on, in photo pixels.
        center: the zoom centre ``(y, x)`` as fractions of that square.
    """

    top: int
    left: int
    side: int
    center: tuple[float, float]

    def square(self, pixels: np.ndarray) -> np.ndarray:
        """The square of ``pixels`` (a view, at full resolution)."""
        return pixels[self.top:self.top + self.side, self.left:self.left + self.side]

    def box(self, factor: float) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` in photo pixels of what the network sees at ``factor``:
        the zoom's crop window for ``factor >= 1``, the whole square (shrunk) below 1."""
        if factor < 1:
            return self.top, self.left, self.side, self.side
        t, l_, h, w = crop_box(self.side, self.side, factor, self.center)
        return self.top + t, self.left + l_, h, w


def frame(shape: tuple[int, ...], center: tuple[float, float] = (0.5, 0.5)) -> Framing:
    """The :class:`Framing` of a photo of ``shape`` (``(H, W, ...)``) zoomed around ``center``
    (``(y, x)`` fractions of the photo)."""
    h, w = shape[:2]
    s = min(h, w)
    cy, cx = center
    top = int(min(max(round(cy * h - s / 2), 0), h - s))
    left = int(min(max(round(cx * w - s / 2), 0), w - s))
    inner = (min(max((cy * h - top) / s, 0.0), 1.0), min(max((cx * w - left) / s, 0.0), 1.0))
    return Framing(top, left, s, inner)


def network_inputs(pixels: np.ndarray, framing: Framing, factors: Sequence[float],
                   size: int = INPUT_SIZE) -> Tensor:
    """``(len(factors), 3, size, size)`` floats in [0, 1]: the square of ``pixels`` zoomed
    by each factor around the centre, then shrunk to ``size`` (not normalised)."""
    square = torch.from_numpy(np.array(framing.square(pixels))).permute(2, 0, 1).float().div_(255)
    return torch.stack([zoom(square, _clip(f), framing.center, out_size=size) for f in factors])


def _clip(f: float) -> float:
    return float(min(max(f, MIN_ZOOM), MAX_ZOOM))
