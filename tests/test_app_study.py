"""The app with the scale study's checkpoints: the study on the Scale robustness page, the
stage shares and regime on the Attributions page, and the scale-channel net on every page
(shown, or a clear reason why not). Random-init checkpoints measured by the real study
command on generated images, so it runs on a fresh clone."""

import json
from pathlib import Path

import pytest
from app_fixtures import make_checkpoint, make_dataset, top5, top5_heads
from streamlit.testing.v1 import AppTest
from tiny_data import make_imagefolder

from wsms_viz.app.plain import md
from wsms_viz.checkpoint import read_card
from wsms_viz.evaluation import study

APP = str(Path(__file__).resolve().parent.parent / "app.py")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ARMS = {"resnet20": "resnet20", "wsms_resnet20": "wsms_resnet20", "sc_resnet20": "sc_resnet20",
        "resnet20_jitter_mid": "resnet20", "wsms_resnet20_jitter_mid": "wsms_resnet20",
        "sc_resnet20_jitter_mid": "sc_resnet20"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("app_study")
    ckpts = base / "checkpoints"
    ckpts.mkdir()
    for i, (name, arch) in enumerate(ARMS.items()):
        make_checkpoint(base / "tmp" / name, arch, i, full_card=True)
        (base / "tmp" / name / arch).rename(ckpts / name)
        card = read_card(ckpts / name).to_dict()
        card |= {"name": name, "hardware": "test machine", "wall_time_s": 60.0,
                 "recipe": {"scale_jitter": list(study.REGIMES["mid"]) if name.endswith("_mid") else None}}
        (ckpts / name / "card.json").write_text(json.dumps(card))
    make_imagefolder(base / "study_data", classes=CLASSES, per_class=10)
    study.main([str(ckpts / n) for n in ARMS] + [
        "--data", f"imagefolder:{base / 'study_data'}", "--cache-dir", str(base / "cache"),
        "--results", str(base / "results"), "--threads", "1",
        "--attr-images", "2", "--attr-steps", "2", "--resamples", "50", "--batch-size", "50"])
    data = make_dataset(base / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSMS_CHECKPOINTS", str(ckpts))
        mp.setenv("WSMS_DATA", str(data))
        mp.setenv("WSMS_RESULTS", str(base / "results"))
        yield ckpts


def start(page: str, models: list[str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    if models is not None:
        keys = at.multiselect(key="models").options
        at.multiselect(key="models").set_value([k for k in keys if Path(k).name in models]).run()
        assert not at.exception, at.exception
    return at


def test_scale_robustness_page_shows_the_study(env):
    at = start("wsms_viz/app/pages/scale_robustness.py")
    summary = study.read_summary(env.parent / "results")
    shown = "\n".join(m.value for m in at.markdown)
    for question, answer in study.answers(summary):  # the sentences come from the results over seeds
        assert f"**{question}** {md(answer)}" in shown  # shown as plain text (wsms_viz.app.plain)
        assert "Not measured" not in answer and "not settled" in answer.lower()  # one seed each
    fig = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
               if "none: trained at 1x" in json.dumps(json.loads(c.proto.spec).get("layout", {})))
    assert any(s.get("type") == "rect" for s in fig["layout"].get("shapes", []))  # mid's trained range shaded
    assert {t["name"] for t in fig["data"] if t.get("mode") == "lines+markers"} == set(ARMS)
    assert all(t.get("mode") == "lines" for t in fig["data"] if t.get("fill"))  # bands draw no markers
    tables = [df.value for df in at.dataframe]
    inout = next(t for t in tables if "inside % [95% CI]" in t.columns)
    assert list(inout["regime"]).count("mid") == 3 and set(inout["seeds"]) == {1}
    spread = next(t for t in tables if "SD at zoom 1" in t.columns)
    assert set(spread["SD at zoom 1"]) == {"one seed: spread not measured"}
    assert any("spread over seeds is not measured" in s.value for s in at.success)


def test_attributions_page_names_the_regime_and_shows_the_stage_study(env):
    at = start("wsms_viz/app/pages/attributions.py", ["resnet20", "wsms_resnet20_jitter_mid", "sc_resnet20"])
    assert any("Training regime **mid**" in c.value for c in at.caption)
    assert any("share of the attribution (2 val images)" in c.proto.spec for c in at.get("plotly_chart"))
    at.selectbox(key="attr_model").set_value("sc_resnet20").run()
    assert not at.exception, at.exception
    assert any("Training regime **none**" in c.value for c in at.caption)
    assert any("stage 3" in json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart"))


@pytest.mark.parametrize("page,key", [("integration", "int_model"), ("receptive_fields", "rf_model")])
def test_pages_say_why_they_cannot_show_a_scale_channel_net(env, page, key):
    at = start(f"wsms_viz/app/pages/{page}.py", ["resnet20", "wsms_resnet20", "sc_resnet20"])
    assert not any("scale-channel" in i.value for i in at.info)  # WSMS first: shown as usual
    at.selectbox(key=key).set_value("sc_resnet20").run()
    assert not at.exception, at.exception
    assert any("sc_resnet20 is a scale-channel network" in i.value for i in at.info)


@pytest.mark.parametrize("page,key", [("feature_maps", "fm_model"), ("architecture", "arch_model"),
                                      ("attributions", "attr_model")])
def test_scale_channel_net_on_the_other_pages(env, page, key):
    at = start(f"wsms_viz/app/pages/{page}.py", ["resnet20", "sc_resnet20"])
    at.selectbox(key=key).set_value("sc_resnet20").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 1


def test_zoom_compare_selects_every_study_model(env):
    at = start("wsms_viz/app/pages/zoom_compare.py", list(ARMS))
    assert len(at.multiselect(key="models").value) == len(ARMS)
    assert len(top5(at)) == len(ARMS)
    assert sorted(h.removesuffix(" at 1.0x") for h in top5_heads(at)) == sorted(ARMS)


def test_accuracy_bands_draw_no_markers():
    from wsms_viz.app.robustness import Curve, accuracy_figure

    fig = accuracy_figure([Curve("resnet20", [0.5, 1.0, 2.0], [0.3, 0.8, 0.2],
                                 [(0.25, 0.35), (0.75, 0.85), (0.15, 0.25)]),
                           Curve("wsms_resnet20", [0.5, 1.0, 2.0], [0.4, 0.8, 0.3], [(0.35, 0.45)] * 3)])
    bands = [t for t in fig.data if t.fill]
    assert len(bands) == 2 and all(t.mode == "lines" for t in bands)


def test_the_study_figure_draws_the_seed_band_with_two_seeds_or_more():
    from wsms_viz.app import study_view

    def arm(name, model, regime, k):
        return {"name": name, "model": model, "regime": regime, "seeds": list(range(k)), "zooms": [0.5, 1.0, 2.0],
                "trained_range": [1.0, 1.0], "val_acc": [0.4, 0.8, 0.3], "val_acc_ci": [[0.35, 0.45]] * 3,
                "val_acc_min": [0.38, 0.78, 0.25], "val_acc_max": [0.42, 0.83, 0.33],
                "inside": None, "outside": None, "worst": {"zoom": 2.0, "acc": 0.3}, "spread": {}}
    summary = {"format": study.SUMMARY_FORMAT, "version": study.SUMMARY_VERSION, "contrasts": [],
               "arms": [arm("resnet20", "resnet20", "none", 3), arm("wsms_resnet20", "wsms_resnet20", "none", 1)]}
    fig = study_view.regime_figure(summary)
    bands = {t.name: t for t in fig.data if t.fill}
    assert list(bands["resnet20 seed band"].y) == [0.42, 0.83, 0.33, 0.25, 0.78, 0.38]  # max, then min back
    assert list(bands["wsms_resnet20 95% interval"].y) == [0.45] * 3 + [0.35] * 3
    assert {t.name for t in fig.data if t.mode == "lines+markers"} == {"resnet20 (3 seeds)", "wsms_resnet20"}
    assert all(t.mode == "lines" for t in bands.values())
