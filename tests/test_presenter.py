"""Presenter view (issue 12): every chart's text at 16 px or more without touching the
cached figure, on every page when the link says ``?presenter=true``."""

import copy
import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from streamlit.testing.v1 import AppTest
from test_app import APP, PAGES, env, start  # noqa: F401  (env: the checkpoints and dataset the app reads)

from wsms_viz.analysis.architecture import trace
from wsms_viz.analysis.features import blob_images, stage_feature_maps
from wsms_viz.analysis.integration import stage_contributions
from wsms_viz.analysis.receptive_field import field_boxes
from wsms_viz.app import catalog, figures, predict, presenter
from wsms_viz.app.architecture_figure import diagram
from wsms_viz.app.framing import frame, network_inputs
from wsms_viz.app.robustness import Curve, accuracy_figure
from wsms_viz.app.zoom_figures import Prebuilt, animation_figure
from wsms_viz.models import create_model
from wsms_viz.zoom import normalize


def font_sizes(node, in_font=False, path="") -> list[tuple[str, object]]:
    """Every ``size`` inside a ``*font`` dict of a figure's dict, with where it is."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if in_font and k == "size":
                out.append((path + "." + k, v))
            elif isinstance(v, (dict, list)):
                out += font_sizes(v, isinstance(k, str) and k.endswith("font"), f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += font_sizes(v, False, f"{path}[{i}]")
    return out


def too_small(d: dict) -> list:
    return [(where, s) for where, s in font_sizes(d)
            if not all(x >= presenter.MIN_FONT for x in (s if isinstance(s, list) else [s]))]


@pytest.fixture(scope="module")
def animation():
    photo = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    f = frame(photo.shape, (0.4, 0.6))
    stack = network_inputs(photo, f, predict.ZOOMS)
    inputs = (stack.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    sweeps = [predict.sweep(catalog.load(f"untrained:{n}"), stack) for n in ("resnet20", "wsms_resnet20")]
    return photo, f, inputs, sweeps


def app_figures(animation) -> dict[str, go.Figure]:
    """One figure of each kind the pages draw, with their own small fonts (10 px titles...)."""
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    img = blob_images(1)[0]
    f = stage_feature_maps(m, normalize(img), scaling="local")
    return {
        "stage_bars": figures.stage_bars([0.6, 0.3, 0.1], "shares", "share", percent=True),
        "field_boxes": figures.field_boxes_figure(img, field_boxes(m, (4, 4))),
        "feature_grid": figures.feature_grid(f.maps[0][0], f.ranges[0][0], list(range(8))),
        "contributions": figures.contributions_figure(stage_contributions(m, normalize(img)), catalog.CIFAR10_CLASSES),
        "accuracy": accuracy_figure([Curve("resnet20", [0.5, 1.0, 2.0], [0.3, 0.5, 0.4], None)]),
        "architecture": diagram(trace(m)),
        "animation": animation_figure(*animation, "cat", 1.0),
    }


def test_bigger_leaves_no_font_under_16_px_and_the_figure_untouched(animation):
    for name, fig in app_figures(animation).items():
        before = json.dumps(fig.to_dict(), sort_keys=True, default=str)
        out = presenter.bigger(fig)
        assert isinstance(out, go.Figure) and out is not fig
        d = out.to_dict()
        assert not too_small(d), (name, too_small(d))
        layout = d["layout"]
        # Set, not left to a default: Streamlit's theme gives ticks, legend and titles 12-14 px.
        assert layout["font"]["size"] >= 16 and layout["legend"]["font"]["size"] >= 16, name
        for axis in [k for k in layout if k.startswith(("xaxis", "yaxis"))] + ["xaxis", "yaxis"]:
            assert layout[axis]["tickfont"]["size"] >= 16 and layout[axis]["title"]["font"]["size"] >= 16
        assert all(a["font"]["size"] >= 16 for a in layout.get("annotations", ()) if a.get("text")), name
        assert json.dumps(fig.to_dict(), sort_keys=True, default=str) == before, f"{name} was modified"
    sliders = presenter.bigger(app_figures(animation)["animation"]).to_dict()["layout"]["sliders"]
    assert sliders[0]["font"]["size"] >= 16 and sliders[0]["currentvalue"]["font"]["size"] >= 16


def test_bigger_on_the_cached_animation_dict_copies_only_what_it_changes(animation):
    cached = animation_figure(*animation, "cat", 1.0).to_dict()
    kept = copy.deepcopy(cached)
    out = presenter.bigger(Prebuilt(cached))
    assert isinstance(out, Prebuilt)
    d = out.to_dict()
    assert not too_small(d)
    assert cached == kept, "the cached dict was modified"
    assert d["frames"] is cached["frames"]  # 26 frames without a font: shared, not copied
    assert d["data"][0] is cached["data"][0]  # the photo, likewise
    assert d["layout"] is not cached["layout"]
    plain = presenter.bigger({"layout": {"annotations": [{"text": "t", "font": {"size": 10}}]},
                              "data": [{"type": "bar", "textfont": {"size": [9, 20]}}]})
    assert plain["layout"]["annotations"][0]["font"]["size"] == 16 and plain["data"][0]["textfont"]["size"] == [16, 20]
    with pytest.raises(TypeError, match="list"):
        presenter.bigger([1, 2])


# ---------------------------------------------------------------- the app (AppTest)

def test_presenter_view_every_page_runs_with_bigger_charts(env):  # noqa: F811
    # By the link, on every page: a URL-bound toggle takes the URL's value, and AppTest's
    # switch_page starts the next page with an empty URL (the browser keeps ?presenter=true,
    # which tests/test_e2e_layout.py checks).
    at = AppTest.from_file(APP, default_timeout=120)
    for page in PAGES[1:] + ["app_pages/lesson.py"]:
        at.switch_page(page)
        at.query_params["presenter"] = "true"
        at.run()
        assert not at.exception, (page, at.exception)
        for chart in at.get("plotly_chart"):
            assert not too_small(json.loads(chart.proto.spec)), page
