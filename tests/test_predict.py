"""The zoom page's computations (no streamlit): sweeps, multi-scale averaging, lesions,
the architecture trace, the examples file and the cards' curves."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wsms_viz.analysis.architecture import trace
from wsms_viz.app import catalog, predict
from wsms_viz.app.architecture_figure import diagram
from wsms_viz.app.framing import frame, network_inputs
from wsms_viz.app.robustness import accuracy_curves, accuracy_figure, comparison_rows, summary_rows, training_figure
from wsms_viz.evaluation import evaluate as ev
from wsms_viz.models import create_model
from wsms_viz.zoom import zoom


@pytest.fixture(scope="module")
def models():
    return {n: catalog.load(f"untrained:{n}") for n in ("resnet20", "wsms_resnet20")}


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_sweep_is_one_row_per_zoom_and_matches_single_predictions(models, photo):
    m = models["wsms_resnet20"]
    f = frame(photo.shape, (0.5, 0.5))
    s = predict.sweep(m, network_inputs(photo, f, predict.ZOOMS))
    assert s.probs.shape == (26, 10) and np.allclose(s.probs.sum(1), 1, atol=1e-5)
    assert s.zooms[0] == 0.5 and s.zooms[-1] == 3.0 and 2.0 in s.zooms
    square = torch.from_numpy(f.square(photo).copy()).permute(2, 0, 1).float() / 255
    one = predict.probabilities(m, zoom(square, 2.0, f.center, out_size=32)[None])
    assert np.allclose(s.at(2.0), one[0], atol=1e-5)
    top = s.top(2.0)
    assert len(top) == 5 and top[0][1] >= top[-1][1] and top[0][1] == pytest.approx(s.at(2.0).max())


def test_multi_scale_averaging_is_the_mean_of_three_zooms(models, photo):
    m = models["resnet20"]
    f = frame(photo.shape)
    tta = predict.tta_sweep(m, photo, f, zooms=(1.0, 2.0))
    for row, z in zip(tta.probs, (1.0, 2.0), strict=True):
        views = network_inputs(photo, f, [z * s for s in predict.TTA_SCALES])
        assert np.allclose(row, predict.probabilities(m, views).mean(0), atol=1e-5)
    assert "multi-scale" in tta.label


def test_stage_lesion_changes_only_multi_stage_models(models, photo):
    m, b = models["wsms_resnet20"], models["resnet20"]
    stack = network_inputs(photo, frame(photo.shape), (1.0,))
    assert predict.mask_for(b, (True, False, True)) is None
    on = predict.sweep(m, stack, (1.0,), predict.mask_for(m, (True, True, True)))
    off = predict.sweep(m, stack, (1.0,), predict.mask_for(m, (True, False, True)))
    assert "stage 2 off" in off.label and not np.allclose(on.probs, off.probs)
    assert predict.stage_count([b]) == 1 and predict.stage_count([b, m]) == 3


def test_square_crop_keeps_the_photos_resolution(photo):
    f = frame(photo.shape, (0.5, 0.9))
    assert f.square(photo).shape == (48, 48, 3) and f.center[0] == 0.5 and f.center[1] > 0.5


@pytest.mark.parametrize("shape,center", [((48, 64), (0.5, 0.9)), ((90, 40), (0.1, 0.5)), ((33, 33), (0.7, 0.2))])
@pytest.mark.parametrize("factor", [0.5, 1.0, 1.7, 3.0])
def test_the_box_is_what_the_network_sees(shape, center, factor):
    """Framing.box, which the zoom figure draws, crops exactly the pixels the predictor zooms."""
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    f = frame(photo.shape, center)
    top, left, h, w = f.box(factor)
    crop = torch.from_numpy(photo[top:top + h, left:left + w].copy()).permute(2, 0, 1).float() / 255
    seen = network_inputs(photo, f, [factor])[0]
    if factor >= 1:
        assert torch.allclose(seen, zoom(crop, 1.0, out_size=32), atol=1e-6)
    else:
        assert (top, left, h, w) == (f.top, f.left, f.side, f.side)
        assert torch.allclose(seen, zoom(crop, factor, out_size=32), atol=1e-6)


def test_architecture_of_wsms_ms_and_baseline():
    w = trace(create_model("wsms_resnet20"))
    assert [s.input_shape for s in w.stages] == [(3, 32, 32), (3, 16, 16), (3, 8, 8)]
    assert [len(s.blocks) for s in w.stages] == [3, 2, 1]
    assert all(b.shared == 1.0 for s in w.stages[1:] for b in s.blocks)
    assert w.concat_shape == (112, 8, 8) and w.integrated_shape == (128, 8, 8) and w.logits_shape == (10,)
    assert w.params_total == sum(p.numel() for p in create_model("wsms_resnet20").parameters())
    ms = trace(create_model("ms_resnet20"))
    assert all(b.shared == 0.0 for s in ms.stages for b in s.blocks)
    assert ms.params_total == w.params_unshared > w.params_total
    base = trace(create_model("resnet20"))
    assert len(base.stages) == 1 and base.concat_shape == (64, 8, 8)
    assert len(diagram(w).layout.shapes) > len(diagram(base).layout.shapes)
    rows = w.rows()  # one column type for the table: no None shown as "None"
    assert [r["stage"] for r in rows] == ["1"] * 4 + ["2"] * 3 + ["3"] * 2 + ["all"] * 4
    assert sum(r["parameters"] for r in rows) == w.params_unshared  # shared blocks listed at every stage


def test_examples_file_both_formats(tmp_path):
    (tmp_path / "examples.json").write_text(json.dumps({
        "image_root": str(tmp_path), "examples": [
            {"file": "cat/1.jpg", "index": 3, "label": "cat", "baseline": {"pred": "dog"}, "wsms": {"pred": "cat"}}]}))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "1.jpg").write_bytes(b"x")
    ex, err = catalog.read_examples(tmp_path)
    assert err is None and ex[0].baseline_pred == "dog" and ex[0].wsms_pred == "cat"
    assert catalog.resolve_example_path(ex[0]) == tmp_path / "cat" / "1.jpg"
    assert ex[0].index is None  # the evaluator's index counts the whole dataset, not the gallery
    (tmp_path / "examples.json").write_text(json.dumps([{"index": 4, "label": 1, "baseline_pred": 2, "wsms_pred": 1}]))
    ex, err = catalog.read_examples(tmp_path)
    assert ex[0].index == 4 and catalog.class_name(ex[0].label, catalog.CIFAR10_CLASSES) == "automobile"
    (tmp_path / "examples.json").write_text("{not json")
    assert catalog.read_examples(tmp_path)[1] is not None
    assert catalog.read_examples(tmp_path / "nowhere") == ([], None)


def test_cards_without_curves_or_logs_are_listed_not_guessed(models):
    m = models["resnet20"]
    trained = catalog.LoadedModel("k", "trained", m.model, m.classes, card={
        "scale_robustness": {"zooms": [0.5, 1.0, 2.0], "val_acc": [0.5, 0.9, 0.6]},
        "log": [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_acc": 0.6, "val_acc": 0.5}],
        "metrics": {"val_acc": 0.9}})
    curves, missing = accuracy_curves([trained, m])
    assert [c[0] for c in curves] == ["trained"] and missing == [m.label]
    assert [c[0] for c in accuracy_curves([trained], tta=True)[0]] == ["trained"]  # no TTA curve in that card
    trained.card["scale_robustness"]["tta"] = {"val_acc": [0.6, 0.91, 0.65]}
    curves = accuracy_curves([trained], tta=True)[0]
    assert [(c[0], c[2]) for c in curves] == [("trained", [0.5, 0.9, 0.6]), ("trained +TTA", [0.6, 0.91, 0.65])]
    fig = accuracy_figure(curves)
    assert fig.data[0].line.color == fig.data[1].line.color and fig.data[1].line.dash == "dash"
    assert comparison_rows([trained]) == []  # no comparison in that card: nothing shown, nothing guessed
    row = summary_rows([trained])[0]
    assert row["val acc at zoom 1"] == 0.9 and row["mean val acc over zooms"] == pytest.approx(2 / 3)
    fig, no_log = training_figure([trained, m])
    assert fig is not None and no_log == [m.label]


@pytest.mark.slow
def test_shipped_complexity_table_is_current():
    # The page reads complexity_table.json rather than counting for ~20 s; regenerate it
    # with `python -m wsms_viz.evaluation.complexity --write-json` when a model changes.
    from wsms_viz.evaluation.complexity import COMPLEXITY_JSON, table

    assert json.loads(COMPLEXITY_JSON.read_text()) == table()


def test_app_threads_default_and_override(monkeypatch):
    monkeypatch.delenv("WSMS_THREADS", raising=False)
    assert catalog.app_threads() == 1
    monkeypatch.setenv("WSMS_THREADS", "3")
    assert catalog.app_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("WSMS_THREADS", bad)
        with pytest.raises(ValueError, match="WSMS_THREADS"):
            catalog.app_threads()


def test_checkpoints_are_offered_baseline_first(tmp_path):
    for name in ("ms_resnet20", "resnet20_jitter", "wsms_resnet20", "resnet20"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "card.json").write_text("{}")
        (tmp_path / name / "model.safetensors").write_bytes(b"")
    names = [k.rsplit("/", 1)[-1] for k in catalog.available(tmp_path)]
    assert names == ["resnet20", "wsms_resnet20", "ms_resnet20", "resnet20_jitter"]


def test_page_reads_the_intervals_the_evaluator_writes(models):
    # Cards written by the evaluator's own function, from correctness known by hand.
    zooms = [0.5, 1.0, 2.0]
    n = 400
    rng = np.random.default_rng(0)
    base_ok = rng.random((3, n)) < 0.6
    other_ok = base_ok.copy()
    other_ok[1, np.flatnonzero(~base_ok[1])[:40]] = True  # +10 points at zoom 1 only
    dummy = torch.zeros(n, 10)
    base = ev.Row("base", "resnet20", zooms, list(base_ok.mean(1)), base_ok, dummy, path=Path("a"))
    other = ev.Row("other", "wsms_resnet20", zooms, list(other_ok.mean(1)), other_ok, dummy, path=Path("b"))
    data = type("D", (), {"source": "imagefolder:x"})()
    comps = ev.compare([base, other], base, resamples=500)
    cards = {r.label: {"scale_robustness": ev.scale_robustness_entry(r, None, data, (), comparisons=comps,
                                                                     baseline=base, resamples=500)}
             for r in (base, other)}
    m = models["resnet20"]
    loaded = [catalog.LoadedModel(k, k, m.model, m.classes, card=c) for k, c in cards.items()]
    curves, _ = accuracy_curves(loaded)
    for c, ok in zip(curves, (base_ok, other_ok), strict=True):
        assert len(c.ci) == 3 and all(lo < a < hi for (lo, hi), a in zip(c.ci, ok.mean(1), strict=True))
    fig = accuracy_figure(curves)
    assert [t.name for t in fig.data] == ["base 95% interval", "base", "other 95% interval", "other"]
    rows = comparison_rows(loaded)
    assert [(r["model"], r["accuracy"], r["compared with"]) for r in rows] == [
        ("other", "at zoom 1", "base"), ("other", "mean over zooms", "base")]
    assert rows[0]["difference (points)"] == "+10.00" and rows[0]["resolved?"] == "yes"
    assert rows[1]["difference (points)"] == "+3.33"


def test_default_selection_puts_the_three_kinds_first_and_skips_broken_ones():
    keys = ["c/resnet20", "c/wsms_resnet20", "c/wsms_resnet20_jitter", "c/wsms_resnet20_jitter_mid", "c/ms_resnet20",
            "c/resnet20_jitter"]
    assert catalog.default_selection(keys, {}) == ["c/resnet20", "c/wsms_resnet20", "c/ms_resnet20",
                                                   "c/resnet20_jitter"]
    assert catalog.default_selection(keys, {"c/ms_resnet20": "broken"}) == [
        "c/resnet20", "c/wsms_resnet20", "c/resnet20_jitter", "c/wsms_resnet20_jitter"]
    # The shipped set as it is now: the scale study's reference is not one of the paper's kinds,
    # so the control (resnet20_jitter) keeps the fourth slot.
    shipped = keys[:5] + ["c/sc_resnet20", "c/sc_resnet20_jitter_mid", "c/resnet20_jitter", "c/resnet20_jitter_mid"]
    assert catalog.default_selection(shipped, {}) == ["c/resnet20", "c/wsms_resnet20", "c/ms_resnet20",
                                                      "c/resnet20_jitter"]


def test_tidy_rounds_and_never_says_none():
    from wsms_viz.app.robustness import tidy

    rows = tidy([{"model": "a", "mults": 252.88768, "acc": 0.8786, "epochs": None, "trained": True, "n": 1234}],
                percent=("acc",), digits={"mults": 1}, names={"mults": "multiplications (M)"})
    assert rows == [{"model": "a", "multiplications (M)": "252.9", "acc": "87.9%", "epochs": "–", "trained": "yes",
                     "n": "1,234"}]
