"""One palette: a stage and a model keep their colour on every figure."""

import subprocess
import sys

import numpy as np
import torch

from wsms_viz.analysis.architecture import trace
from wsms_viz.analysis.receptive_field import field_boxes
from wsms_viz.app import catalog, figures, predict
from wsms_viz.app.architecture_figure import diagram
from wsms_viz.app.framing import frame, network_inputs
from wsms_viz.app.robustness import Curve, accuracy_figure
from wsms_viz.app.zoom_figures import animation_figure
from wsms_viz.models import create_model
from wsms_viz.palette import model_color, stage_color


def test_a_stage_has_one_colour_in_the_diagram_and_the_analysis_figures():
    m = create_model("wsms_resnet20").eval()
    fields = figures.field_boxes_figure(torch.rand(3, 32, 32), field_boxes(m, (1, 1)))
    fields_only = [r for r in fields.layout.shapes if r.line.width == 3]  # not the image outline
    assert [r.line.color for r in fields_only] == [stage_color(s) for s in range(3)]
    boxes = diagram(trace(m)).layout.shapes
    for s in range(3):
        assert any(b.line.color == stage_color(s) for b in boxes), f"stage {s + 1} not in its colour"


def test_a_model_keeps_its_colour_whatever_is_beside_it():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    f = frame(photo.shape)
    stack = network_inputs(photo, f, predict.ZOOMS)
    inputs = (stack.numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    ms = {n: catalog.load(f"untrained:{n}") for n in ("resnet20", "wsms_resnet20")}

    def bar_colors(names):
        fig = animation_figure(photo, f, inputs, [predict.sweep(ms[n], stack) for n in names], "cat", 1.0)
        return {t.name: t.marker.color for t in fig.data if t.type == "bar"}

    alone, both = bar_colors(["wsms_resnet20"]), bar_colors(["resnet20", "wsms_resnet20"])
    label = ms["wsms_resnet20"].label
    assert alone[label] == both[label] == model_color("wsms_resnet20") != both[ms["resnet20"].label]
    curves = accuracy_figure([Curve("wsms_resnet20", [1.0, 2.0], [0.5, 0.4], None)])
    assert curves.data[0].line.color == model_color("wsms_resnet20")


def test_the_zoom_figures_boxes_come_from_the_framing():
    photo = np.zeros((60, 90, 3), np.uint8)
    f = frame(photo.shape, (0.3, 0.8))
    stack = network_inputs(photo, f, predict.ZOOMS)
    inputs = (stack.numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    s = predict.sweep(catalog.load("untrained:resnet20"), stack)
    fig = animation_figure(photo, f, inputs, [s], "cat", 1.0)
    for fr in fig.frames:
        top, left, h, w = f.box(float(fr.name))
        yellow = fr.layout.shapes[1]
        assert (yellow.x0, yellow.y0, yellow.x1 - yellow.x0, yellow.y1 - yellow.y0) == (left, top, w, h)


def test_importing_the_app_leaves_the_thread_count_alone():
    code = ("import torch; torch.set_num_threads(2); import wsms_viz.app.ui, wsms_viz.app.state; "
            "print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2"


def test_the_animation_frames_built_without_validation_are_valid_plotly():
    # zoom_figures skips plotly's per-property checks for the 26 frames (speed); building
    # the whole figure again with every check on must accept it and give the same dict.
    import json

    import plotly.graph_objects as go

    photo = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    f = frame(photo.shape, (0.4, 0.6))
    stack = network_inputs(photo, f, predict.ZOOMS)
    inputs = (stack.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    sweeps = [predict.sweep(catalog.load(f"untrained:{n}"), stack) for n in ("resnet20", "wsms_resnet20")]
    d = animation_figure(photo, f, inputs, sweeps, "cat", 1.0).to_dict()
    assert len(d["frames"]) == len(predict.ZOOMS)
    checked = go.Figure(d).to_dict()  # raises on any invalid property
    assert json.dumps(checked, sort_keys=True, default=str) == json.dumps(d, sort_keys=True, default=str)


def test_every_model_of_this_repository_has_a_colour_of_its_own():
    from wsms_viz.palette import _KNOWN, MODEL_COLORS

    assert sorted(_KNOWN.values()) == list(range(len(_KNOWN))) and len(_KNOWN) <= len(MODEL_COLORS)
    colours = {name: model_color(name) for name in _KNOWN}
    assert len(set(colours.values())) == len(colours), colours
    assert colours["sc_resnet20_jitter_mid"] == "#bcbd22" != colours["sc_resnet20"]
    assert model_color("resnet20 (untrained)") == colours["resnet20"]
    assert model_color("my_own_net") == model_color("my_own_net") in MODEL_COLORS  # any other name: fixed too


def test_each_per_model_figure_colours_a_model_by_name_whatever_is_selected():
    # The same model alone, first, or last among others: one colour on the zoom curves,
    # the accuracy and training curves and the scale study's panels.
    from types import SimpleNamespace

    from wsms_viz.app.robustness import training_figure
    from wsms_viz.app.study_view import regime_figure
    from wsms_viz.evaluation.study import STUDY_VERSION

    names = ["resnet20", "wsms_resnet20", "ms_resnet20", "sc_resnet20_jitter_mid"]
    log = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "train_acc": 0.2 * e, "val_acc": 0.2 * e}
           for e in (1, 2)]
    study = {"version": STUDY_VERSION, "regime": "none", "zooms": [0.5, 1.0, 2.0], "val_acc": [0.3, 0.6, 0.4]}
    for picked in (names, names[::-1], names[2:], ["wsms_resnet20"]):
        acc = accuracy_figure([Curve(n, [1.0, 2.0], [0.5, 0.4], None) for n in picked])
        train, _ = training_figure([SimpleNamespace(label=n, card={"log": log}) for n in picked])
        regimes = regime_figure({n: {"scale_study": study} for n in picked})
        for fig in (acc, train, regimes):
            for t in fig.data:
                if t.name:
                    owner = next(n for n in sorted(picked, key=len, reverse=True) if t.name.startswith(n))
                    assert t.line.color == model_color(owner), (picked, t.name, t.line.color)
