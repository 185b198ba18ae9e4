"""Presenter view: every chart's text at 16 px or more without touching the
cached figure, and the zoom page's first screen (image, slider, each model's top guess,
the verdict) when the link says ``?presenter=true``.

The browser checks (what is on the first screen at 1280x720, nothing overlapping at
1024x768) are in tests/test_e2e_layout.py.
"""

import copy
import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from app_fixtures import input_captions, top1_lines, top5_heads
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
        "animation": animation_figure(*animation, "cat", 1.0, presenter=True),
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
    assert d["layout"]["images"] is cached["layout"]["images"]  # the photo, likewise
    assert d["layout"] is not cached["layout"]
    plain = presenter.bigger({"layout": {"annotations": [{"text": "t", "font": {"size": 10}}]},
                              "data": [{"type": "bar", "textfont": {"size": [9, 20]}}]})
    assert plain["layout"]["annotations"][0]["font"]["size"] == 16 and plain["data"][0]["textfont"]["size"] == [16, 20]
    with pytest.raises(TypeError, match="list"):
        presenter.bigger([1, 2])


def test_presenter_animation_keeps_its_frames_and_differs_only_in_layout(animation):
    plain = animation_figure(*animation, "cat", 1.0).to_dict()
    big = animation_figure(*animation, "cat", 1.0, presenter=True).to_dict()
    assert json.dumps(plain["frames"], default=str) == json.dumps(big["frames"], default=str)
    assert [t.get("name") for t in plain["data"]] == [t.get("name") for t in big["data"]]
    assert big["layout"]["height"] > plain["layout"]["height"]
    assert big["layout"]["yaxis3"]["side"] == "right"  # class names beside the bars, not over the input image
    assert [s["label"] for s in big["layout"]["sliders"][0]["steps"]] == [f"{z:.1f}" for z in predict.ZOOMS]


def test_a_top_guess_line_is_in_the_models_colour_and_escaped():
    from wsms_viz.palette import model_color

    line = presenter.top1_line("wsms_resnet20", "wsms_resnet20", "cat", 0.931)
    assert model_color("wsms_resnet20") in line and "cat 93.1%" in line and "solid" in line
    variant = presenter.top1_line("resnet20 + multi-scale", "resnet20", "dog", 0.5)
    assert model_color("resnet20") in variant and "dashed" in variant
    assert "<b>" not in presenter.top1_line("<b>x</b>", "", "<i>", 0.1)


def test_the_networks_input_is_sent_as_its_own_32x32_pixels_and_drawn_large():
    import base64
    import io
    import re

    from PIL import Image

    x = torch.rand(3, 32, 32)
    page = presenter.input_html(x, presenter.IMAGE_PX, "cat: what the networks see")
    uri = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))))
    assert sent.shape == (32, 32, 3)  # lossless, pixel for pixel: the browser scales it
    assert np.array_equal(sent, (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert f'width="{presenter.IMAGE_PX}"' in page and "<figcaption>cat&#58; what the networks see</figcaption>" in page


# ---------------------------------------------------------------- the app (AppTest)

def presenter_lines(at) -> list[str]:
    return top1_lines(at)


def test_the_link_turns_presenter_view_on_and_the_zoom_page_shows_its_first_screen(env):  # noqa: F811
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["presenter"] = "true"
    at.run()
    assert not at.exception, at.exception
    assert at.toggle(key="presenter").value is True
    lines = presenter_lines(at)
    assert len(lines) == 2 and all("%" in line for line in lines)  # resnet20 and wsms_resnet20
    assert any("resnet20</span>" in line for line in lines) and any("wsms_resnet20</span>" in line for line in lines)
    assert len(at.success) == 1  # the verdict, once (beside the image, not again below)
    assert len(input_captions(at)) == 1  # the network's input, 320 px
    intro = [e for e in at.expander if e.label.startswith("What this page shows")]  # the intro: closed, one line
    assert len(intro) == 1 and any("Zoom into the image" in m.value for m in intro[0].markdown)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not too_small(spec)
    before = presenter_lines(at)
    at.slider(key="zoom").set_value(2.5).run()  # the same slider, inside the fragment
    assert not at.exception, at.exception
    assert presenter_lines(at) != before and all(h.endswith(" at 2.5x") for h in top5_heads(at))
    at.toggle(key="presenter").set_value(False).run()
    assert not at.exception and len(presenter_lines(at)) == 2  # the first screen stays, its image smaller
    assert input_captions(at)[0].endswith("(32x32 pixels)")
    assert any("Zoom into the image" in m.value for m in at.markdown)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["height"] == 640  # the page as before


def test_presenter_view_every_page_runs_with_bigger_charts(env):  # noqa: F811
    # By the link, on every page: a URL-bound toggle takes the URL's value, and AppTest's
    # switch_page starts the next page with an empty URL (the browser keeps ?presenter=true,
    # which tests/test_e2e_layout.py checks).
    at = AppTest.from_file(APP, default_timeout=120)
    for page in PAGES[1:] + ["wsms_viz/app/pages/lesson.py"]:
        at.switch_page(page)
        at.query_params["presenter"] = "true"
        at.run()
        assert not at.exception, (page, at.exception)
        assert at.get("plotly_chart"), f"{page} drew no chart: nothing was checked"
        for chart in at.get("plotly_chart"):
            assert not too_small(json.loads(chart.proto.spec)), page
