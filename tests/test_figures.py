"""The analysis figures build from the analysis modules' real outputs and draw what they say."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from wsms_viz.analysis.attribution import attribute_stages, stage_shares_across_zoom
from wsms_viz.analysis.features import blob_images, fig1_similarity, shared_filter_responses, stage_feature_maps
from wsms_viz.analysis.integration import integration_weights, stage_contributions
from wsms_viz.analysis.receptive_field import effective_receptive_fields, field_boxes
from wsms_viz.app import figures
from wsms_viz.models import create_model
from wsms_viz.zoom import normalize


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    return create_model("wsms_resnet20").eval(), blob_images(2)


def test_field_boxes_drawn_per_stage_in_pixel_edges(setup):
    m, images = setup
    boxes = field_boxes(m, (1, 6))
    fig = figures.field_boxes_figure(images[0], boxes)
    assert isinstance(fig, go.Figure) and isinstance(fig.data[0], go.Image)
    rects = [r for r in fig.layout.shapes if r.line.width == 3]
    assert len(rects) == 3 and len({r.line.color for r in rects}) == 3
    top, left, _, _ = boxes[0].unclipped
    assert (rects[0].x0, rects[0].y0) == (left - 0.5, top - 0.5)
    assert "stage 3: 60 px" in fig.data[3].name


def test_fields_larger_than_the_image_are_drawn_whole(setup):
    m, images = setup
    boxes = field_boxes(m, (4, 4))  # the last blocks: 81, 74 and 60 px on a 32 px image
    fig = figures.field_boxes_figure(images[0], boxes)
    rects = [r for r in fig.layout.shapes if r.line.width == 3]
    assert [r.x1 - r.x0 for r in rects] == [b.size for b in boxes] == [81, 74, 60]
    x0, x1 = fig.layout.xaxis.range
    assert x0 < min(r.x0 for r in rects) and x1 > max(r.x1 for r in rects)  # the whole field is in view
    assert all(r.line.dash == "dash" for r in rects)
    assert any("larger than the 32x32 image" in a.text for a in fig.layout.annotations)
    small = figures.field_boxes_figure(images[0], field_boxes(m, (4, 4), block=0))
    assert [r.x1 - r.x0 for r in small.layout.shapes if r.line.width == 3] == [15, 30, 60]


def test_effective_fields_leave_the_image_visible(setup):
    m, images = setup
    x = normalize(images[0])
    fig = figures.heatmap_overlays(images[0], effective_receptive_fields(m, x, (4, 4)), opacity=0.5,
                                   with_image=True)
    assert [a.text for a in fig.layout.annotations][0] == "the image"
    assert isinstance(fig.data[0], go.Image) and isinstance(fig.data[1], go.Image)  # panel 1: the image alone
    assert fig.data[0].xaxis == "x" and fig.data[1].xaxis == "x2"


def test_overlays_share_one_colour_scale(setup):
    m, images = setup
    x = normalize(images[0])
    ig = attribute_stages(m, x, n_steps=4)
    fig = figures.heatmap_overlays(images[0], ig.maps)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heat) == 3 and {t.coloraxis for t in heat} == {"coloraxis"}
    peak = max(np.abs(a).max() for a in ig.maps)
    assert fig.layout.coloraxis.cmin == pytest.approx(-peak) and fig.layout.coloraxis.cmax == pytest.approx(peak)
    erf = figures.heatmap_overlays(images[0], effective_receptive_fields(m, x, (4, 4)))
    assert erf.layout.coloraxis.cmin == 0  # non-negative maps: a sequential scale from 0
    with pytest.raises(ValueError, match="does not fit"):
        figures.heatmap_overlays(images[0], [np.zeros((8, 8))])


def test_integration_and_contribution_figures(setup):
    m, images = setup
    w = integration_weights(m)
    fig = figures.integration_weights_figure(w)
    assert fig.data[0].z.shape == (128, 112)
    assert [s.x0 for s in fig.layout.shapes if s.type == "line"] == [63.5, 95.5]  # separators between stages
    assert [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"] == [(-0.5, 63.5), (63.5, 95.5),
                                                                            (95.5, 111.5)]  # stage bands
    c = stage_contributions(m, normalize(images[0]))
    fig = figures.contributions_figure(c)
    assert len(fig.data) == 3 and list(fig.data[1].y) == pytest.approx(list(c.logit_drop))
    assert len(figures.stage_bars(w.norms, "norms").data[0].x) == 3


def test_feature_and_similarity_figures(setup):
    m, images = setup
    f = stage_feature_maps(m, normalize(images[0]), scaling="local")
    fig = figures.feature_grid(f.maps[0][0], f.ranges[0][0], channels=[3, 1, 4], cols=2)
    assert [t.zmin for t in fig.data] == [f.ranges[0][0][c][0] for c in (3, 1, 4)]
    resp = shared_filter_responses(m, normalize(images[0]), 0, 2)
    fig = figures.shared_filter_figure(resp, 2, 0)
    assert len({t.zmax for t in fig.data}) == 1
    rows = fig1_similarity({"wsms": m}, images)
    fig = figures.similarity_figure(rows)
    assert [t.name for t in fig.data] == ["same image", "unrelated images"]
    z = stage_shares_across_zoom(m, images[0], [0.5, 1.0], method="grad_cam")
    assert len(figures.shares_vs_zoom_figure(z, current=1.0).data) == 3


def _luminance(hex_color: str) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(hex_color[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_wcag_contrast_formula():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("name", ["wsms_resnet20", "ms_resnet20", "resnet20"])
def test_architecture_text_passes_wcag_aa_on_its_box(name):
    from wsms_viz.analysis.architecture import trace
    from wsms_viz.app.architecture_figure import diagram

    fig = diagram(trace(create_model(name).eval()))
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    checked = 0
    for a in fig.layout.annotations:
        if not a.text:
            continue  # arrows
        assert a.font.color, f"{a.text!r} leaves its colour to the theme"
        under = [s for s in boxes if s.x0 <= a.x <= s.x1 and s.y0 <= a.y <= s.y1]
        assert all(s.opacity in (None, 1) for s in under), "a faded box fades its outline and leaves a pale text"
        bg = under[-1].fillcolor if under else "#ffffff"
        assert contrast(a.font.color, bg) >= 4.5, (a.text, a.font.color, bg)
        checked += 1
    assert checked >= 6


def test_architecture_labels_sit_above_the_shared_weight_line_and_say_quarter_size():
    from wsms_viz.analysis.architecture import trace
    from wsms_viz.app.architecture_figure import diagram

    arch = trace(create_model("wsms_resnet20").eval())
    fig = diagram(arch)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    labels = [a for a in fig.layout.annotations if a.text and "same" in a.text]
    assert lines and len(labels) == len(lines)
    for a in labels:
        line_y = min((s for s in lines), key=lambda s: abs(s.y0 - a.y)).y0
        assert a.yanchor == "bottom" and a.y > line_y  # the text's bottom edge above the dash
    texts = " ".join(a.text for a in fig.layout.annotations if a.text)
    assert "1/2 size" in texts and "1/4 size" in texts and "halved" not in texts
    assert "input at 1/4 size" in {r["step"] for r in arch.rows()}


def test_every_stage_bar_is_labelled_a_zero_included():
    fig = figures.stage_bars([0.7, 0.3, 0.0], "shares", "share", percent=True)
    bar = fig.data[0]
    assert list(bar.text) == ["70.0%", "30.0%", "0"]
    assert bar.textposition == "outside" and bar.cliponaxis is False  # "auto" hides a zero bar's label
    assert fig.layout.yaxis.range[1] > 0.7  # room above the tallest bar for its label
