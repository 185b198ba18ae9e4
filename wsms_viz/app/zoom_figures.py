"""The zoom page's figure: photo, network input, class probabilities and zoom curve, animated.

The animation is one figure with a frame per zoom step and a Plotly slider, so the
browser swaps frames while the slider is dragged: no round trip to the server. The
frames only replace what changes (the network's input, the bars, the curve markers and
the crop box); the photo itself is sent once.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..zoom import crop_box
from .images import encode
from .predict import Sweep, nearest

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
THUMB = 360  # the photo is shown at most this many pixels wide or high


def bar_classes(sweeps: Sequence[Sweep], limit: int = 10) -> list[str]:
    """The classes the bars show: all of them up to ``limit``, else the likeliest."""
    classes = list(sweeps[0].classes)
    if len(classes) <= limit:
        return classes
    best = np.max([s.probs.max(0) for s in sweeps if s.classes == sweeps[0].classes], axis=0)
    return [classes[i] for i in np.argsort(-best)[:limit]]


def _zoom_box(square: tuple[int, int, int], center: tuple[float, float], factor: float, scale: float) -> dict:
    top, left, side = square
    if factor >= 1:
        t, l_, h, w = crop_box(side, side, factor, center)
    else:  # the whole square, shrunk: the box is the square itself
        t, l_, h, w = 0, 0, side, side
    x0, y0 = (left + l_) * scale, (top + t) * scale
    return dict(type="rect", xref="x", yref="y", x0=x0, y0=y0, x1=x0 + w * scale, y1=y0 + h * scale,
                line=dict(color="#ffdd00", width=3))


def _square_outline(square: tuple[int, int, int], scale: float) -> dict:
    top, left, side = square
    return dict(type="rect", xref="x", yref="y", x0=left * scale, y0=top * scale, x1=(left + side) * scale,
                y1=(top + side) * scale, line=dict(color="white", width=1, dash="dot"))


def animation_figure(
    photo: np.ndarray,
    square: tuple[int, int, int],
    center_in_square: tuple[float, float],
    inputs: np.ndarray,
    sweeps: Sequence[Sweep],
    cls: str,
    current: float,
) -> go.Figure:
    """The zoom animation: photo with the crop box, what the network sees, the bars, the curve.

    Args:
        photo: the full ``(H, W, 3)`` uint8 image (shown shrunk to ``THUMB``).
        square: ``(top, left, side)`` of the square the zoom works on.
        center_in_square: the zoom centre ``(y, x)`` as fractions of the square.
        inputs: ``(Z, 32, 32, 3)`` uint8, the network's input at each zoom.
        sweeps: one per model, over the same zooms.
        cls: the class whose probability the curve follows.
        current: the zoom the figure opens at.
    """
    zooms = sweeps[0].zooms
    h, w = photo.shape[:2]
    scale = min(1.0, THUMB / max(h, w))
    # JPEG: a photo thumbnail as PNG is ~10x larger, and it is sent on every rerun.
    uri = "data:image/jpeg;base64," + base64.b64encode(encode(photo, THUMB, "JPEG")).decode()
    classes = bar_classes(sweeps)
    fig = make_subplots(
        rows=2, cols=3, column_widths=[0.3, 0.26, 0.44], row_heights=[0.58, 0.42],
        specs=[[{}, {}, {}], [{"colspan": 3}, None, None]],
        subplot_titles=("the photo (yellow: what is cropped)", "what the network sees (32x32)",
                        "probability of each class", f"probability of '{cls}' against zoom"),
        vertical_spacing=0.14, horizontal_spacing=0.1,
    )
    k = nearest(zooms, current)
    fig.add_trace(go.Image(source=uri, hoverinfo="skip"), 1, 1)
    fig.add_trace(_input_image(inputs[k]), 1, 2)
    for i, s in enumerate(sweeps):
        fig.add_trace(go.Bar(y=classes, x=_bar_values(s, classes, k), orientation="h", name=s.label,
                             marker_color=COLORS[i % len(COLORS)], legendgroup=s.label,
                             hovertemplate="%{y}: %{x:.1%}<extra>" + s.label + "</extra>"), 1, 3)
    for i, s in enumerate(sweeps):
        fig.add_trace(go.Scatter(x=list(zooms), y=s.curve(cls), mode="lines", name=s.label, legendgroup=s.label,
                                 line=dict(color=COLORS[i % len(COLORS)], width=2), showlegend=False,
                                 hovertemplate="zoom %{x:.1f}x: %{y:.1%}<extra>" + s.label + "</extra>"), 2, 1)
    n_static = 2 + 2 * len(sweeps)
    for i, s in enumerate(sweeps):
        fig.add_trace(_marker(s, cls, k, COLORS[i % len(COLORS)]), 2, 1)
    # The photo axes count pixels of the thumbnail; boxes are scaled to it.
    fig.update_xaxes(visible=False, row=1, col=1)
    fig.update_yaxes(visible=False, row=1, col=1, scaleanchor="x", autorange="reversed")
    fig.update_xaxes(visible=False, row=1, col=2)
    fig.update_yaxes(visible=False, row=1, col=2, scaleanchor="x2")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=3)
    fig.update_yaxes(autorange="reversed", row=1, col=3)
    fig.update_xaxes(title_text="zoom factor (1 = the image as it is)", row=2, col=1)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    def shapes(j: int) -> list[dict]:
        return [_square_outline(square, scale), _zoom_box(square, center_in_square, zooms[j], scale)]

    marker_ids = list(range(n_static, n_static + len(sweeps)))
    bar_ids = list(range(2, 2 + len(sweeps)))
    fig.frames = [
        go.Frame(
            name=f"{z:.1f}",
            data=[_input_image(inputs[j])] + [go.Bar(x=_bar_values(s, classes, j)) for s in sweeps]
            + [_marker(s, cls, j, COLORS[i % len(COLORS)]) for i, s in enumerate(sweeps)],
            traces=[1] + bar_ids + marker_ids,
            layout=dict(shapes=shapes(j)),
        )
        for j, z in enumerate(zooms)
    ]
    fig.update_layout(
        shapes=shapes(k), barmode="group", height=640, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0),
        sliders=[dict(
            active=k, currentvalue=dict(prefix="zoom (drag me): ", suffix="x"), pad=dict(t=30),
            steps=[dict(method="animate", label=f"{z:.1f}",
                        args=[[f"{z:.1f}"], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                                 transition=dict(duration=0))]) for z in zooms],
        )],
    )
    return fig


def _input_image(pixels: np.ndarray) -> go.Image:
    # A PNG data URI (about 3 KB) rather than ``z``: plotly.js 4 does not decode a
    # base64 (H, W, 3) array, and the nested list would be 4x larger. zsmooth=False
    # keeps the 32 pixels square when the browser scales them up.
    uri = "data:image/png;base64," + base64.b64encode(encode(pixels)).decode()
    return go.Image(source=uri, zsmooth=False, hoverinfo="skip")


def _bar_values(s: Sweep, classes: Sequence[str], j: int) -> list[float]:
    row = s.probs[j]
    return [float(row[s.classes.index(c)]) if c in s.classes else 0.0 for c in classes]


def _marker(s: Sweep, cls: str, j: int, color: str) -> go.Scatter:
    return go.Scatter(x=[s.zooms[j]], y=[float(s.curve(cls)[j])], mode="markers", showlegend=False,
                      marker=dict(size=13, color=color, line=dict(color="black", width=1)),
                      hovertemplate="%{y:.1%}<extra></extra>")


class Prebuilt(go.Figure):
    """A figure whose dict is already built and validated (a cached ``to_dict()``).

    ``st.plotly_chart`` validates a plain dict by building a ``go.Figure`` from it, which
    takes ~25 ms for the 26 frames of the zoom animation on every rerun; a Figure is
    only asked for ``to_dict()``. This one hands back the dict it was given.
    """

    def __init__(self, fig: dict):  # no super().__init__: nothing to validate again
        self._prebuilt = fig

    def to_dict(self) -> dict:
        return self._prebuilt
