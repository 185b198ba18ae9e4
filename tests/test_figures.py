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
    rects = fig.layout.shapes
    assert len(rects) == 3 and len({r.line.color for r in rects}) == 3
    assert (rects[0].x0, rects[0].y0) == (boxes[0].left - 0.5, boxes[0].top - 0.5)
    assert "stage 3: 60 px" in fig.data[3].name


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
    assert [s.x0 for s in fig.layout.shapes] == [63.5, 95.5]  # separators between the stage blocks
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
