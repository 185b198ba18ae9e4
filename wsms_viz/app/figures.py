"""Plotly figures for the analysis pages: numbers in, ``go.Figure`` out, no Streamlit.

Everything computed here comes from :mod:`wsms_viz.analysis.receptive_field`,
:mod:`wsms_viz.analysis.attribution`, :mod:`wsms_viz.analysis.integration` and :mod:`wsms_viz.analysis.features`;
this module only draws. One convention throughout: stages are named as in the paper,
"stage 1" for index 0, each with the same colour on every page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from ..analysis.attribution import ZoomShares
from ..analysis.features import SimilarityRow
from ..analysis.integration import IntegrationWeights, StageContributions
from ..analysis.receptive_field import FieldBox
from ..palette import stage_color


def to_rgb(image: Tensor | np.ndarray) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8 for ``go.Image``.

    Args:
        image: ``(3, H, W)`` tensor in [0, 1] (unnormalised), or ``(H, W, 3)`` array,
            uint8 or float in [0, 1].
    """
    if isinstance(image, Tensor):
        image = image.detach().cpu()
        if image.dim() == 4:
            image = image[0]
        image = image.permute(1, 2, 0).numpy()
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3) or (3, H, W), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return a


def _image_axes(fig: go.Figure, rows: int = 1, cols: int = 1) -> None:
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", autorange="reversed")
    for i in range(2, rows * cols + 1):
        fig.update_yaxes(scaleanchor=f"x{i}", row=(i - 1) // cols + 1, col=(i - 1) % cols + 1)


def field_boxes_figure(image: Tensor | np.ndarray, boxes: Sequence[FieldBox], height: int = 420) -> go.Figure:
    """The image with each stage's receptive-field box drawn in the stage's colour.

    Args:
        image: the (zoomed) input the boxes are in, unnormalised (see :func:`to_rgb`).
        boxes: from :func:`wsms_viz.analysis.receptive_field.field_boxes`.
        height: figure height in pixels.
    """
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    # A field larger than the image is drawn whole, past the image's edges, over a grey
    # that stands for the zero padding: clipped to the image, every such box would be
    # the image's own border and say nothing.
    top = min([-0.5] + [b.unclipped[0] - 0.5 for b in boxes])
    left = min([-0.5] + [b.unclipped[1] - 0.5 for b in boxes])
    bottom = max([h - 0.5] + [b.unclipped[2] + 0.5 for b in boxes])
    right = max([w - 0.5] + [b.unclipped[3] + 0.5 for b in boxes])
    note = any(b.exceeds_image for b in boxes)
    if note:
        fig.add_shape(type="rect", x0=-0.5, x1=w - 0.5, y0=-0.5, y1=h - 0.5, line=dict(color="black", width=1))
        # Above the plot, not on it: over the boxes, a note at 16 px (presenter view) runs
        # out of them in a narrow column.
        fig.add_annotation(x=0, y=1, xref="paper", yref="paper", xanchor="left", yanchor="bottom", align="left",
                           showarrow=False, font=dict(size=10),
                           text=f"dashed: larger than the {h}x{w} image<br>grey: outside it (zero padding)")
    for b in boxes:
        color = stage_color(b.stage)
        t, l_, b_, r = b.unclipped
        # Pixel i covers [i - 0.5, i + 0.5] in go.Image coordinates.
        fig.add_shape(type="rect", x0=l_ - 0.5, x1=r + 0.5, y0=t - 0.5, y1=b_ + 0.5,
                      line=dict(color=color, width=3, dash="dash" if b.exceeds_image else "solid"))
        fig.add_trace(go.Scatter(x=[b.center[1]], y=[b.center[0]], mode="markers",
                                 marker=dict(color=color, size=9, symbol="x"),
                                 name=f"stage {b.stage + 1}: {b.size} px, jump {b.jump}"))
    _image_axes(fig)
    fig.update_xaxes(range=[left - 1, right + 1])
    fig.update_yaxes(range=[bottom + 1, top - 1], autorange=False)
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=50 if note else 10, b=0),
                      legend=dict(orientation="h", font=dict(size=10)),
                      plot_bgcolor="#d9d9d9", showlegend=True)  # also for one stage: its size is in the legend
    return fig


def heatmap_overlays(
    image: Tensor | np.ndarray, maps: Sequence[np.ndarray], titles: Sequence[str] | None = None,
    opacity: float = 0.65, height: int = 320, shared_scale: bool = True, with_image: bool = False,
) -> go.Figure:
    """One heatmap per stage over the image, on one shared colour scale or one per panel.

    Signed maps (any value < 0, e.g. Integrated Gradients) get a diverging scale centred
    on 0; non-negative ones (Saliency, Grad-CAM, ERF) a sequential scale from 0. The
    shared scale compares stages (a stage that carries little is pale); per panel, each
    map spans the whole scale, so a weak stage's pattern shows too.

    Args:
        image: unnormalised input (see :func:`to_rgb`); every map must have its size.
        maps: ``(H, W)`` maps, one per panel.
        titles: panel titles; default "stage 1", "stage 2", ...
        opacity: heatmap opacity over the image.
        height: figure height in pixels.
        shared_scale: one colour scale for every panel (True) or one per panel.
        with_image: a first panel with the image alone, so the overlays never hide it.
    """
    rgb = to_rgb(image)
    if not maps:
        raise ValueError("no maps to draw")
    for m in maps:
        if m.shape != rgb.shape[:2]:
            raise ValueError(f"map of shape {m.shape} does not fit the {rgb.shape[:2]} image")
    titles = list(titles) if titles is not None else [f"stage {s + 1}" for s in range(len(maps))]
    signed = any(float(m.min()) < 0 for m in maps)

    def axis(peak: float, **more) -> dict:
        peak = peak or 1.0
        return (dict(colorscale="RdBu_r", cmin=-peak, cmax=peak, **more) if signed
                else dict(colorscale="Inferno", cmin=0, cmax=peak, **more))

    shared_peak = max(float(np.abs(m).max()) for m in maps)
    first = 1 if with_image else 0
    panels = len(maps) + first
    fig = make_subplots(1, panels, subplot_titles=(["the image"] if with_image else []) + titles,
                        horizontal_spacing=0.02)
    if with_image:
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), 1, 1)
    for i, m in enumerate(maps):
        ca = "coloraxis" if shared_scale or i == 0 else f"coloraxis{i + 1}"
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), 1, first + i + 1)
        fig.add_trace(go.Heatmap(z=m, coloraxis=ca, opacity=opacity,
                                 hovertemplate="row %{y}, col %{x}: %{z:.3g}<extra></extra>"), 1, first + i + 1)
    if shared_scale:
        fig.update_layout(coloraxis=axis(shared_peak))
    else:  # one scale per panel; the colour bars would crowd the panels, the hover gives values
        fig.update_layout({("coloraxis" if i == 0 else f"coloraxis{i + 1}"):
                           axis(float(np.abs(m).max()), showscale=False) for i, m in enumerate(maps)})
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0))
    _image_axes(fig, 1, panels)
    return fig


def integration_weights_figure(weights: IntegrationWeights, height: int = 380) -> go.Figure:
    """The integration weights as one heatmap, stage blocks separated and labelled.

    Args:
        weights: from :func:`wsms_viz.analysis.integration.integration_weights`.
        height: figure height in pixels.
    """
    z = weights.matrix
    if weights.kind == "3x3":
        colour = dict(colorscale="Viridis", zmin=0, zmax=float(z.max()))
        what = "3x3 kernel norm"
    else:
        peak = float(np.abs(z).max()) or 1.0
        colour = dict(colorscale="RdBu_r", zmin=-peak, zmax=peak)
        what = "weight"
    fig = go.Figure(go.Heatmap(z=z, **colour, colorbar=dict(title=what),
                               hovertemplate="out %{y}, in %{x}: %{z:.3g}<extra></extra>"))
    for s, (a, b) in enumerate(zip(weights.offsets, weights.offsets[1:], strict=False)):
        if s:
            fig.add_vline(x=a - 0.5, line=dict(color="black", width=2))
        fig.add_annotation(x=(a + b - 1) / 2, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"<b>stage {s + 1}</b>", font=dict(color=stage_color(s)),
                           hovertext=f"stage {s + 1}: its {b - a} channels")
        # A pale band in the stage's colour under its columns: which stage a column belongs to.
        fig.add_shape(type="rect", xref="x", yref="paper", x0=a - 0.5, x1=b - 0.5, y0=1.0, y1=1.03,
                      fillcolor=stage_color(s), line_width=0)
    out = "class" if weights.layer == "fc" else "output channel"
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=40, b=0),
                      xaxis_title="input channel (stage 1's, then stage 2's, then stage 3's)", yaxis_title=out)
    fig.update_yaxes(autorange="reversed")
    return fig


def bar_label(v: float, percent: bool = False) -> str:
    """A bar's label: "0" for an exact zero (a bar with no height still says so)."""
    if v == 0:
        return "0"
    return f"{v:.1%}" if percent else f"{v:.3g}"


def stage_bars(values: Sequence[float] | np.ndarray, title: str, yaxis: str = "", height: int = 300,
               percent: bool = False) -> go.Figure:
    """One bar per stage, in the stages' colours (norms, shares, logit drops...), every
    bar labelled with its value, a zero included (drawn above the axis, where it shows).

    Args:
        values: one value per stage, in stage order.
        title: the figure title.
        yaxis: the y-axis title.
        height: figure height in pixels.
        percent: label (and the axis) as percentages.
    """
    values = [float(v) for v in values]
    names = [f"stage {s + 1}" for s in range(len(values))]
    # "outside": a label inside a short bar is dropped by plotly; outside it always shows.
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=[stage_color(s) for s in range(len(values))],
                           text=[bar_label(v, percent) for v in values], textposition="outside",
                           cliponaxis=False))
    lo, hi = min(values + [0.0]), max(values + [0.0])
    pad = 0.18 * (hi - lo) or 1.0  # room above (and below) the bars for their labels
    fig.update_yaxes(range=[lo - (pad if lo < 0 else 0), hi + pad])
    if percent:
        fig.update_yaxes(tickformat=".0%")
    fig.update_layout(title=title, yaxis_title=yaxis, height=height, margin=dict(l=0, r=0, t=40, b=0))
    return fig


SPLIT_LABEL = "its part of the score (the parts add up to the score)"


def contributions_figure(c: StageContributions, classes: Sequence[str] | None = None,
                         height: int = 340) -> go.Figure:
    """Each stage's effect on the target class's score: lesions and the exact split, side by side.

    Args:
        c: from :func:`wsms_viz.analysis.integration.stage_contributions`.
        classes: class names, to name the class (else its index).
        height: figure height in pixels.
    """
    names = [f"stage {s + 1}" for s in range(len(c.gated))]
    cls = classes[c.target] if classes is not None and 0 <= c.target < len(classes) else f"class {c.target}"
    fig = go.Figure([
        go.Bar(name="this stage alone (score gained over all stages off)", x=names, y=c.logit_only - c.logit_none),
        go.Bar(name="score lost when this stage is switched off", x=names, y=c.logit_drop),
        go.Bar(name=SPLIT_LABEL, x=names, y=c.gated),
    ])
    # Two short title lines: one long line ran out of a half-width column at 16 px.
    fig.update_layout(barmode="group", height=height, yaxis_title=f"score of '{cls}' (logit)",
                      title=f"score of '{cls}':<br>{c.logit:.3g} with every stage, {c.logit_none:.3g} with none",
                      margin=dict(l=0, r=0, t=60, b=0), legend=dict(orientation="h"))
    return fig


def shares_vs_zoom_figure(z: ZoomShares, current: float | None = None, height: int = 320) -> go.Figure:
    """Each stage's share of attribution against the zoom factor.

    Args:
        z: from :func:`wsms_viz.analysis.attribution.stage_shares_across_zoom`.
        current: a zoom factor to mark with a vertical line.
        height: figure height in pixels.
    """
    fig = go.Figure([go.Scatter(x=z.factors, y=z.shares[:, s], mode="lines+markers", name=f"stage {s + 1}",
                                line=dict(color=stage_color(s))) for s in range(z.shares.shape[1])])
    if current is not None:
        fig.add_vline(x=current, line=dict(color="grey", dash="dot"))
    fig.update_layout(xaxis_title="zoom", yaxis_title="share of |attribution|", yaxis_range=[0, 1],
                      height=height, margin=dict(l=0, r=0, t=10, b=0))
    fig.update_xaxes(type="log")
    return fig


def feature_grid(
    block_map: np.ndarray, ranges: np.ndarray, channels: Sequence[int] | None = None, cols: int = 8,
    colorscale: str = "Viridis", cell: int = 90,
) -> go.Figure:
    """A grid of one map's channels, each drawn with its own ``(vmin, vmax)``.

    Args:
        block_map: ``(C, h, w)``, one stage's map after one block.
        ranges: ``(C, 2)`` colour ranges (:func:`wsms_viz.analysis.features.color_ranges`).
        channels: which channels, in order; default all.
        cols: channels per row.
        colorscale: a Plotly colour scale.
        cell: height of one row in pixels.
    """
    channels = list(range(block_map.shape[0])) if channels is None else list(channels)
    if not channels:
        raise ValueError("no channels to draw")
    rows = (len(channels) + cols - 1) // cols
    ncols = min(cols, len(channels))
    gap, top = 24, 26  # pixels: room for each row's titles (16 px in presenter view)
    height = cell * rows + gap * (rows - 1) + top
    fig = make_subplots(rows, ncols, subplot_titles=[f"ch {c}" for c in channels],
                        horizontal_spacing=0.01, vertical_spacing=gap / (height - top) if rows > 1 else 0.0)
    for i, c in enumerate(channels):
        lo, hi = ranges[c]
        fig.add_trace(go.Heatmap(z=block_map[c], zmin=float(lo), zmax=float(hi), colorscale=colorscale,
                                 showscale=False, hovertemplate=f"ch {c}: %{{z:.3g}}<extra></extra>"),
                      i // ncols + 1, i % ncols + 1)
    _image_axes(fig, rows, ncols)
    fig.update_annotations(font_size=10)
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=top, b=0))
    return fig


def shared_filter_figure(maps: Sequence[np.ndarray], channel: int, block: int, height: int = 260) -> go.Figure:
    """One filter's response at every stage that has its block, one colour scale.

    Args:
        maps: from :func:`wsms_viz.analysis.features.shared_filter_responses`, in stage order.
        channel: the channel shown (for the titles).
        block: the 0-based block (for the titles).
        height: figure height in pixels.
    """
    lo = min(float(m.min()) for m in maps)
    hi = max(float(m.max()) for m in maps)
    titles = [f"stage {s + 1}: {m.shape[0]}x{m.shape[1]}" for s, m in enumerate(maps)]
    fig = make_subplots(1, len(maps), subplot_titles=titles, horizontal_spacing=0.03)
    for s, m in enumerate(maps):
        fig.add_trace(go.Heatmap(z=m, zmin=lo, zmax=hi if hi > lo else lo + 1e-6, colorscale="Viridis",
                                 showscale=s == len(maps) - 1), 1, s + 1)
    _image_axes(fig, 1, len(maps))
    # The title above the panels' own titles, with room for both at 16 px (presenter view).
    fig.update_layout(title=dict(text=f"block {block + 1}, channel {channel}", y=1.0, yanchor="top", yref="container",
                                 pad=dict(t=6)),
                      height=height, margin=dict(l=0, r=0, t=64, b=0))
    return fig


def similarity_figure(rows: Sequence[SimilarityRow], metric: str = "correlation", height: int = 320) -> go.Figure:
    """Fig. 1 measured: mean similarity (error bars: one standard deviation) per model,
    same image against unrelated images.

    Args:
        rows: from :func:`wsms_viz.analysis.features.fig1_similarity`.
        metric: ``"cosine"``, ``"correlation"`` or ``"cka"``.
        height: figure height in pixels.
    """
    picked = [r for r in rows if r.metric == metric]
    if not picked:
        raise ValueError(f"no rows for metric {metric!r}")
    models = list(dict.fromkeys(r.model for r in picked))
    fig = go.Figure()
    for pairs, colour in (("same image", "#4363d8"), ("unrelated images", "#a9a9a9")):
        sel = {r.model: r for r in picked if r.pairs == pairs}
        fig.add_trace(go.Bar(name=pairs, x=models, y=[sel[m].mean for m in models], marker_color=colour,
                             error_y=dict(type="data", array=[sel[m].std for m in models])))
    fig.update_layout(barmode="group", yaxis_title=metric, height=height, margin=dict(l=0, r=0, t=10, b=0))
    return fig
