"""The zoom page's figure: photo, network input, class probabilities and zoom curve, animated.

The animation is one figure with a frame per zoom step and a Plotly slider, so the
browser swaps frames while the slider is dragged: no round trip to the server. The
frames only replace what changes (the network's input, the bars, the curve markers and
the crop box); the photo itself is sent once.

Every part a frame changes can be animated without redrawing the figure: the bars and
markers are traces Plotly moves in place, the crop box is a shape, and the two pictures
are layout images (an image trace cannot be animated: without a redraw Plotly drops it,
and a redraw re-renders everything, 110-190 ms of a browser's CPU per frame). A frame
sets only the second layout image's source (``images: [{}, {source}]``, which plotly.js
merges into the layout's list), so the photo is not repeated in 26 frames.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..palette import model_color
from .framing import Framing
from .images import encode
from .predict import Sweep, nearest

THUMB = 360  # the photo is shown at most this many pixels wide or high
YELLOW = "#ffdd00"  # the crop box: visible on most photos


def bar_classes(sweeps: Sequence[Sweep], limit: int = 10) -> list[str]:
    """The classes the bars show: all of them up to ``limit``, else the likeliest."""
    classes = list(sweeps[0].classes)
    if len(classes) <= limit:
        return classes
    best = np.max([s.probs.max(0) for s in sweeps if s.classes == sweeps[0].classes], axis=0)
    return [classes[i] for i in np.argsort(-best)[:limit]]


def _rect(box: tuple[int, int, int, int], scale: float, **line) -> dict:
    top, left, h, w = box
    return dict(type="rect", xref="x", yref="y", x0=left * scale, y0=top * scale, x1=(left + w) * scale,
                y1=(top + h) * scale, line=line)


def _shapes(framing: Framing, factor: float, scale: float) -> list[dict]:
    """The square the zoom works on (dotted) and what the network sees at ``factor`` (yellow)."""
    square = (framing.top, framing.left, framing.side, framing.side)
    return [_rect(square, scale, color="white", width=1, dash="dot"),
            _rect(framing.box(factor), scale, color=YELLOW, width=3)]


def _color(s: Sweep) -> str:
    return model_color(s.model or s.label)


def animation_figure(
    photo: np.ndarray,
    framing: Framing,
    inputs: np.ndarray,
    sweeps: Sequence[Sweep],
    cls: str,
    current: float,
    presenter: bool = False,
) -> go.Figure:
    """The zoom animation: photo with the crop box, what the network sees, the bars, the curve.

    Args:
        photo: the full ``(H, W, 3)`` uint8 image (shown shrunk to ``THUMB``).
        framing: where the network looks in it (:func:`wsms_viz.app.framing.frame`); the
            boxes on the photo come from it, as the inputs did.
        inputs: ``(Z, 32, 32, 3)`` uint8, the network's input at each zoom.
        sweeps: one per model, over the same zooms.
        cls: the class whose probability the curve follows.
        current: the zoom the figure opens at.
        presenter: laid out for text of 16 px (:func:`wsms_viz.app.presenter.bigger` sets
            the sizes): titles on two lines, the class names right of the bars, the
            slider's value under the axis title, so nothing overlaps on a 1024-pixel screen.
    """
    zooms = sweeps[0].zooms
    scale = min(1.0, THUMB / max(photo.shape[:2]))  # the photo axes count pixels of the thumbnail
    classes = bar_classes(sweeps)
    k = nearest(zooms, current)
    fig = _layout(cls, presenter)
    h, w = photo.shape[0] * scale, photo.shape[1] * scale
    side = inputs.shape[1]
    # JPEG: a photo thumbnail as PNG is ~10x larger.
    uri = "data:image/jpeg;base64," + base64.b64encode(encode(photo, THUMB, "JPEG")).decode()
    fig.update_layout(images=[_picture(uri, "x", w, h), _picture(input_uri(inputs[k]), "x2", side, side)])
    fig.update_xaxes(range=[0, w], row=1, col=1)
    fig.update_yaxes(range=[h, 0], autorange=False, row=1, col=1)
    fig.update_xaxes(range=[0, side], row=1, col=2)
    fig.update_yaxes(range=[side, 0], row=1, col=2)
    for s in sweeps:
        fig.add_trace(go.Bar(y=classes, x=_bar_values(s, classes, k), orientation="h", name=s.label,
                             marker_color=_color(s), marker_pattern_shape="/" if s.label != s.model else "",
                             legendgroup=s.label, hovertemplate="%{y}: %{x:.1%}<extra>" + s.label + "</extra>"), 1, 3)
    for s in sweeps:
        fig.add_trace(go.Scatter(x=list(zooms), y=s.curve(cls), mode="lines", name=s.label, legendgroup=s.label,
                                 line=dict(color=_color(s), width=2, dash="dash" if s.label != s.model else None),
                                 showlegend=False,
                                 hovertemplate="zoom %{x:.1f}x: %{y:.1%}<extra>" + s.label + "</extra>"), 2, 1)
    for s in sweeps:
        fig.add_trace(_marker(s, cls, k), 2, 1)
    n = len(sweeps)
    changing = list(range(n)) + list(range(2 * n, 3 * n))  # bars, markers
    # 26 frames of known-good traces: plotly's per-property validation (``_validate``) is
    # most of their cost and checks nothing the first frame's traces did not.
    fig.frames = [
        go.Frame(name=f"{z:.1f}", traces=changing,
                 layout=dict(shapes=_shapes(framing, z, scale), images=[{}, {"source": input_uri(inputs[j])}]),
                 data=[go.Bar(x=_bar_values(s, classes, j), _validate=False) for s in sweeps]
                 + [_marker(s, cls, j, _validate=False) for s in sweeps], _validate=False)
        for j, z in enumerate(zooms)
    ]
    fig.update_layout(shapes=_shapes(framing, zooms[k], scale), sliders=[_slider(zooms, k, presenter)])
    return fig


# Presenter view's titles: two short lines each, so three fit side by side in 16 px
# where the sidebar leaves 560 pixels (a 1024-pixel screen).
_TITLES = ("the photo (yellow: what is cropped)", "what the network sees (32x32)", "probability of each class")
_SHORT_TITLES = ("the photo<br>(yellow: cropped)", "the network<br>sees (32x32)", "probability<br>of each class")


def _layout(cls: str, presenter: bool = False) -> go.Figure:
    """The empty 2x3 grid: photo, network input and bars above, the curve below."""
    fig = make_subplots(
        rows=2, cols=3, column_widths=[0.3, 0.26, 0.44], row_heights=[0.58, 0.42],
        specs=[[{}, {}, {}], [{"colspan": 3}, None, None]],
        subplot_titles=(*(_SHORT_TITLES if presenter else _TITLES), f"probability of '{cls}' against zoom"),
        vertical_spacing=0.14, horizontal_spacing=0.1,
    )
    fig.update_xaxes(visible=False, row=1, col=1)
    fig.update_yaxes(visible=False, row=1, col=1, scaleanchor="x", autorange="reversed")
    fig.update_xaxes(visible=False, row=1, col=2)
    fig.update_yaxes(visible=False, row=1, col=2, scaleanchor="x2")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=3)
    fig.update_yaxes(autorange="reversed", row=1, col=3)
    fig.update_xaxes(title_text="zoom factor (1 = the image as it is)", row=2, col=1)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    fig.update_layout(barmode="group", height=640, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0))
    if presenter:
        # The class names right of the bars, in the margin (which grows to fit them), not
        # in the gap before the network's input, which 16 px names would cover.
        fig.update_yaxes(side="right", automargin=True, row=1, col=3)
        fig.update_layout(height=720, margin=dict(t=60), legend=dict(y=1.12))
    return fig


def _slider(zooms: Sequence[float], active: int, presenter: bool = False) -> dict:
    """Plotly's own slider: one step per frame, animated in the browser (Plotly labels
    every second or third step when the labels would overlap). In presenter view the
    current value sits lower, under the curve's axis title rather than beside it."""
    return dict(
        active=active, currentvalue=dict(prefix="zoom (drag me): ", suffix="x"), pad=dict(t=60 if presenter else 30),
        steps=[dict(method="animate", label=f"{z:.1f}",
                    args=[[f"{z:.1f}"], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                             transition=dict(duration=0))]) for z in zooms],
    )


def input_uri(pixels: np.ndarray) -> str:
    # A PNG data URI (about 3 KB); the page draws it with square pixels (zoom_sync.js).
    return "data:image/png;base64," + base64.b64encode(encode(pixels)).decode()


def _picture(source: str, x: str, w: float, h: float) -> dict:
    """A layout image filling the subplot of x axis ``x`` from (0, 0) to (``w``, ``h``),
    its y axis pointing down, as the pixels' rows do."""
    return dict(source=source, xref=x, yref=x.replace("x", "y"), x=0, y=0, sizex=w, sizey=h, sizing="stretch",
                xanchor="left", yanchor="top", layer="below")


def _bar_values(s: Sweep, classes: Sequence[str], j: int) -> list[float]:
    row = s.probs[j]
    return [float(row[s.classes.index(c)]) if c in s.classes else 0.0 for c in classes]


def _marker(s: Sweep, cls: str, j: int, _validate: bool = True) -> go.Scatter:
    return go.Scatter(x=[s.zooms[j]], y=[float(s.curve(cls)[j])], mode="markers", showlegend=False,
                      marker=dict(size=13, color=_color(s), line=dict(color="black", width=1)),
                      hovertemplate="%{y:.1%}<extra></extra>", _validate=_validate)


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
