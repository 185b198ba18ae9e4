"""The checkpoints that ship in checkpoints/ load through the one loader, were trained
alike (one recipe, one seed, one budget, the same split), carry the evaluator's curves,
and the evaluator's Fig. 5(a) examples are what they claim to be."""

import json
from pathlib import Path

import pytest
import torch

from wsms_viz.app.catalog import read_examples
from wsms_viz.checkpoint import load_checkpoint
from wsms_viz.evaluation.report import read_cards, summary_table, zoom_table

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"
NAMES = ("resnet20", "wsms_resnet20", "ms_resnet20", "resnet20_jitter")


@pytest.fixture(scope="module")
def shipped():
    return {name: load_checkpoint(SHIPPED / name) for name in NAMES}  # sha, finiteness, class count checked


def test_every_shipped_checkpoint_loads_and_is_small(shipped):
    for name, ck in shipped.items():
        assert ck.card["name"] == name
        assert (SHIPPED / name / "model.safetensors").stat().st_size < 5 * 2**20
        out = ck.model(torch.zeros(2, 3, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert shipped["wsms_resnet20"].card["config"]["integration"] == "1x1"
    assert shipped["wsms_resnet20"].card["config"]["channels"] == 128
    assert shipped["ms_resnet20"].card["config"]["shared"] is False


def test_one_recipe_one_seed_one_budget_one_split(shipped):
    def same(card):
        r = {k: v for k, v in card["recipe"].items() if k not in ("scale_jitter", "jitter_p")}
        return json.dumps(r, sort_keys=True), card["data"]["split"], card["data"]["train_used"]

    assert len({same(ck.card) for ck in shipped.values()}) == 1
    assert shipped["resnet20"].card["data"]["train_used"] == 45_000
    jitters = {name: ck.card["recipe"]["scale_jitter"] for name, ck in shipped.items()}
    assert jitters == {"resnet20": None, "wsms_resnet20": None, "ms_resnet20": None, "resnet20_jitter": [0.5, 2.0]}


def test_cards_hold_the_evaluators_zoom_curves(shipped):
    for ck in shipped.values():
        sr = ck.card["scale_robustness"]
        assert sr["zooms"][0] == 0.5 and sr["zooms"][-1] == 2.0 and 1.0 in sr["zooms"]
        assert sr["val_images"] == 5000 and len(sr["val_acc"]) == len(sr["zooms"])
        assert sr["val_acc"][sr["zooms"].index(1.0)] == pytest.approx(ck.card["metrics"]["val_acc"], abs=1e-4)
        assert "tta" in sr
        for (lo, hi), acc in zip(sr["val_acc_ci"], sr["val_acc"], strict=True):
            assert lo < acc < hi and hi - lo < 0.04  # 5,000 images: about +-1 point
    for name, ck in shipped.items():  # each model's difference from the baseline, as the evaluator printed it
        vs = ck.card["scale_robustness"].get("vs_baseline")
        assert (vs is None) == (name == "resnet20") and (vs is None or vs["baseline"] == "resnet20")


def test_fig5_examples_are_baseline_wrong_wsms_right():
    examples, problem = read_examples(SHIPPED)
    assert problem is None and len(examples) >= 8
    for e in examples:
        assert e.wsms_pred == e.label != e.baseline_pred
        assert e.path and e.path.split("/")[0] == e.label and 4500 <= int(Path(e.path).stem) <= 4999  # val files


def test_the_docs_quote_the_cards():
    # python -m wsms_viz.evaluation.report prints these tables; replacing the checkpoints without
    # updating docs/evaluation.md fails here.
    cards = read_cards([SHIPPED / name for name in NAMES])
    readme = (SHIPPED.parent / "docs" / "evaluation.md").read_text(encoding="utf-8")
    assert summary_table(cards) in readme
    assert zoom_table(cards) in readme


STUDY_NAMES = ("resnet20", "wsms_resnet20", "ms_resnet20", "resnet20_jitter", "wsms_resnet20_jitter",
               "resnet20_jitter_mid", "wsms_resnet20_jitter_mid", "sc_resnet20", "sc_resnet20_jitter_mid")


def test_the_docs_quote_the_scale_study(capsys, monkeypatch):
    # python -m wsms_viz.evaluation.report prints the study section from results/study.json
    # (every run that ships, weights or not); docs/scale-study.md must quote it.
    from wsms_viz.checkpoint import find_checkpoints
    from wsms_viz.evaluation import report, study
    from wsms_viz.evaluation.study_report import study_section

    dirs = sorted(find_checkpoints(SHIPPED), key=lambda d: report.teaching_order(d.name))
    cards = read_cards(dirs)
    studied = {k for k, c in cards.items() if study.study_of(c)}
    assert studied >= {"resnet20", "wsms_resnet20", "resnet20_jitter_mid", "wsms_resnet20_jitter_mid"}
    assert studied <= set(STUDY_NAMES)
    section = study_section(study.read_summary(SHIPPED.parent / "results"))
    assert section
    assert section in (SHIPPED.parent / "docs" / "scale-study.md").read_text(encoding="utf-8")
    monkeypatch.chdir(SHIPPED.parent)
    report.main([])
    assert section in capsys.readouterr().out
    for name in studied:  # the regime in the card is the one its recipe says
        s = cards[name]["scale_study"]
        assert s["regime"] == study.regime_of(cards[name]) and s["val_images"] == 5000 and len(s["zooms"]) == 17


RESULTS = SHIPPED.parent / "results"


def test_shipped_results_are_small_current_and_the_cards_study():
    # results/ ships each trained run's per-image results instead of its weights; the study
    # and the report rebuild every table from them. They must agree with the cards they
    # were measured from, stay small, and be what results/study.json summarizes.
    from wsms_viz.evaluation import seeds, study

    runs = seeds.find_runs(RESULTS)
    assert runs, "no per-image results ship in results/"
    size = sum(p.stat().st_size for d in (SHIPPED, RESULTS) for p in d.rglob("*") if p.is_file())
    assert size < 40 * 2**20, f"checkpoints/ and results/ hold {size / 2**20:.1f} MiB"
    summary = study.read_summary(RESULTS)  # refuses a summary older than the runs
    assert summary is not None and {a["name"] for a in summary["arms"]} <= set(STUDY_NAMES)
    for r in runs:
        card = read_cards([SHIPPED / r.arm])[r.arm]
        assert r.meta["weights_sha256"] == card["sha256"] and r.seed == card["recipe"]["seed"]
        assert r.regime == study.regime_of(card) and r.correct.shape == (17, 5000)
        s = card.get("scale_study")
        if s:  # the card's one-seed study was measured on the same images
            assert r.correct.mean(1) == pytest.approx(s["val_acc"], abs=2e-4)
