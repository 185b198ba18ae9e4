"""The app driven through Streamlit's AppTest: every page, the zoom slider, the lesion
toggles, multi-scale averaging, uploads good and bad, and the no-checkpoint case.

Runs on a fresh clone without ../shared: the checkpoints are random-init models written
with save_checkpoint into a temp dir (WSMS_CHECKPOINTS), the dataset a few generated
JPEGs in the cifar10-jpeg layout (WSMS_DATA_ROOTS).
"""

import io
import json
import os
import re
from pathlib import Path

import pytest
from app_fixtures import make_checkpoint, make_dataset, top5, top5_heads
from PIL import Image
from streamlit.testing.v1 import AppTest

from wsms_viz.app import navigation

APP = str(Path(__file__).resolve().parent.parent / "app.py")
# Every page but the Lesson (tests/test_lesson.py), from the app's one page registry.
PAGES = [str(p.path.relative_to(Path(APP).parent)) for p in navigation.PAGES if p.key != "lesson"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("app")
    ckpts = base / "checkpoints"
    make_checkpoint(ckpts, "resnet20", 1, full_card=False)
    make_checkpoint(ckpts, "wsms_resnet20", 2, full_card=True)
    data = make_dataset(base / "data")
    (ckpts / "examples.json").write_text(json.dumps({  # as python -m wsms_viz.evaluation.evaluate writes it
        "image_root": str(data / "train"), "baseline": "resnet20", "wsms": "wsms_resnet20",
        "examples": [
            {"file": "bird/4500.jpg", "index": 6, "label": "bird", "baseline": {"name": "resnet20", "pred": "cat"},
             "wsms": {"name": "wsms_resnet20", "pred": "bird"}},
            {"file": "bird/4999.jpg", "index": 1, "label": "bird", "baseline": {"pred": "cat"},
             "wsms": {"pred": "bird"}},  # a file that is not there: an error, not gallery image 1
        ]}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSMS_CHECKPOINTS", str(ckpts))
        mp.setenv("WSMS_DATA_ROOTS", f"tiny CIFAR={data}")
        yield base


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def test_zoom_page_loads_with_both_models(env):
    at = start()
    headers = top5_heads(at)
    assert headers == ["resnet20 at 1.0x", "wsms_resnet20 at 1.0x"]
    assert len(top5(at)) == 2 and all(t.count("%") == 5 for t in top5(at))
    assert not at.warning  # trained checkpoints: no "untrained" warning
    assert len(at.get("plotly_chart")) == 1


def test_zoom_slider_changes_the_predictions(env):
    at = start()
    before = top5(at)
    at.slider(key="zoom").set_value(2.5).run()
    assert not at.exception
    after = top5(at)
    assert after != before
    assert all(h.endswith(" at 2.5x") for h in top5_heads(at))
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(fig["frames"]) == 26 and fig["frames"][20]["name"] == "2.5"
    assert any('const frame = "2.5"' in h.proto.body for h in at.get("html"))  # the browser shows that frame


def test_stage_lesion_changes_the_wsms_prediction(env):
    at = start()
    before = top5(at)[1]
    at.toggle(key="stage_1").set_value(False).run()
    assert not at.exception
    assert top5_heads(at)[1] == "wsms_resnet20 (stage 2 off) at 1.0x"
    assert top5(at)[1] != before
    assert top5(at)[0] is not None  # the baseline is untouched


def test_multi_scale_averaging_adds_the_baseline_column(env):
    at = start()
    at.toggle(key="tta").set_value(True).run()
    assert not at.exception
    assert "resnet20 + multi-scale at 1.0x" in top5_heads(at)
    assert len(top5(at)) == 3


def test_zoom_persists_across_pages(env):
    at = start()
    at.slider(key="zoom").set_value(1.7).run()
    at.switch_page("wsms_viz/app/pages/architecture.py").run()
    at.switch_page("wsms_viz/app/pages/zoom_compare.py").run()
    assert at.slider(key="zoom").value == pytest.approx(1.7)


def test_centre_and_dataset_picker(env):
    at = start()
    at.sidebar.selectbox(key="data_class").set_value("bird").run()
    at.sidebar.number_input(key="data_index").set_value(1).run()
    at.sidebar.slider(key="cx").set_value(0.2).run()
    assert not at.exception
    assert any("bird #1" in c.value for c in at.caption)


def test_sample_photo_source(env):
    at = start()
    at.sidebar.radio(key="source").set_value("Sample photos").run()
    assert not at.exception
    assert any("chelsea" in c.value for c in at.caption)


def test_examples_source(env):
    at = start()
    at.sidebar.radio(key="source").set_value("Baseline wrong, WSMS right").run()
    assert not at.exception and any("true class **bird**" in c.value for c in at.caption)
    at.sidebar.selectbox(key="example").set_value(at.sidebar.selectbox(key="example").options[1]).run()
    assert not at.exception and any("its file 4999.jpg is not found" in e.value for e in at.sidebar.error)
    assert not any("true class" in c.value for c in at.caption)


def _png(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,data,message", [
    ("empty.png", b"", "empty"),
    ("notes.png", b"just some text, named .png\n" * 5, "not an image"),
    ("cut.png", _png((200, 200))[:300], "damaged or truncated"),
])
def test_bad_uploads_show_a_message(env, name, data, message):
    at = start()
    at.sidebar.radio(key="source").set_value("Upload your own").run()
    at.sidebar.file_uploader(key="upload").upload(name, data, "application/octet-stream")
    at.run()
    assert not at.exception
    assert any(message in e.value for e in at.sidebar.error)
    assert any("Pick an image" in i.value for i in at.info)


def test_good_upload_is_shown(env):
    at = start()
    at.sidebar.radio(key="source").set_value("Upload your own").run()
    at.sidebar.file_uploader(key="upload").upload("red.png", _png(), "image/png")
    at.run()
    assert not at.exception and not at.sidebar.error
    assert any("red.png" in c.value for c in at.caption)
    at.slider(key="zoom").set_value(0.5).run()
    assert not at.exception


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads(env, page):
    at = start(page)
    assert at.title, f"{page} has no title"
    assert any("In the paper:" in c.value for c in at.caption), f"{page} does not say which part of the paper"


def test_scale_robustness_page_reads_the_cards(env):
    at = start("wsms_viz/app/pages/scale_robustness.py")
    assert len(at.get("plotly_chart")) == 2  # accuracy vs zoom, training curves
    assert any("resnet20" in i.value and "evaluate" in i.value for i in at.info)  # the card without a curve
    assert any("WSMS-ResNet-110" in str(df.value) for df in at.dataframe)
    names = lambda: [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]  # noqa: E731
    assert names() == ["wsms_resnet20 95% interval", "wsms_resnet20"]
    comparisons = next(df.value for df in at.dataframe if "resolved?" in df.value.columns)
    assert list(comparisons["resolved?"]) == ["yes", "one seed only"]
    assert list(comparisons["difference (points)"]) == ["+1.20", "-0.30"]
    assert comparisons["with seed-to-seed spread"][1] == "[-0.80, +0.20]"
    at.toggle(key="robustness_tta").set_value(True).run()
    assert not at.exception and names() == ["wsms_resnet20 95% interval", "wsms_resnet20", "wsms_resnet20 +TTA"]


def test_architecture_page_shows_shapes(env):
    at = start("wsms_viz/app/pages/architecture.py")
    rows = at.dataframe[0].value
    assert "112 x 8 x 8" in set(rows["shape"])  # the concatenation of 64 + 32 + 16 channels
    at.selectbox(key="arch_model").set_value("resnet20").run()
    assert not at.exception and "112 x 8 x 8" not in set(at.dataframe[0].value["shape"])


def test_no_checkpoints_offers_untrained_models(tmp_path, monkeypatch):
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"gone={tmp_path / 'no-data'}")
    at = start()
    assert any("untrained" in w.value and "python -m wsms_viz.train" in w.value for w in at.warning)
    assert any("shares no dataset" in c.value for c in at.sidebar.caption)  # the missing folder is left out
    assert at.sidebar.radio(key="source").value == "Dataset (val split)"  # so it opens on the demo set
    assert at.sidebar.selectbox(key="dataset").options == ["Demo set"]
    assert not at.exception and len(top5(at)) == 3


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "grad_cam"])
def test_attribution_page_every_method(env, method):
    at = start("wsms_viz/app/pages/attributions.py")
    at.selectbox(key="attr_method").set_value(method).run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the overlays (WSMS stages + baseline on one scale) and the shares
    spec = json.loads(charts[0].proto.spec)
    assert '"baseline"' in json.dumps(spec["layout"])  # the baseline's panel beside the stages


@pytest.mark.slow
def test_attribution_page_noise_tunnel_and_zoom_shares(env):
    at = start("wsms_viz/app/pages/attributions.py")
    at.selectbox(key="attr_method").set_value("saliency").run()
    at.toggle(key="attr_noise").set_value(True).run()
    at.toggle(key="attr_sweep").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3


def test_receptive_field_page_moves_the_position(env):
    at = start("wsms_viz/app/pages/receptive_fields.py")
    at.slider(key="rf_row").set_value(0).run()
    at.slider(key="zoom").set_value(2.0).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 4  # boxes and effective fields, WSMS and baseline


def test_integration_and_feature_pages(env):
    at = start("wsms_viz/app/pages/integration.py")
    at.selectbox(key="int_class").set_value("cat").run()
    assert not at.exception, at.exception
    at = start("wsms_viz/app/pages/feature_maps.py")
    for scaling in ("local", "global"):
        at.radio(key="fm_scaling").set_value(scaling).run()
        assert not at.exception, at.exception
    at.selectbox(key="fm_block").set_value("block 2").run()
    assert not at.exception, at.exception


# --- a class on one server: visitors pick datasets by label and never see a server path ----

ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:~|/[\w.-]+)/[\w.-]+")


def shown_texts(at: AppTest) -> list[str]:
    """The text of every alert, caption, markdown and exception on the page and in the sidebar."""
    kinds = ("error", "warning", "info", "success", "caption", "markdown", "exception", "title")
    return [str(getattr(e, "value", "") or getattr(e, "message", "")) for k in kinds for e in at.get(k)]


def element_protos(node):
    """Every element's protobuf, as sent to the browser (widget options, chart specs, ...)."""
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for c in children.values():
            yield from element_protos(c)
    if getattr(node, "proto", None) is not None:
        yield node.proto


def assert_no_server_path(at: AppTest, *paths: Path) -> None:
    for text in shown_texts(at):
        for p in paths:
            assert str(p) not in text, text
        assert not ABSOLUTE_PATH.search(text), text
    for proto in element_protos(at._tree):  # nor anywhere else the browser gets, e.g. a model's key
        assert not any(str(p) in str(proto) for p in paths), str(proto)[:300]


@pytest.mark.parametrize("page", PAGES)
def test_no_page_has_a_free_text_path(env, page):
    at = start(page)
    assert not at.text_input and not at.text_area


@pytest.mark.parametrize("attack", ["/", "/etc", "../../..", "~", "~/.ssh", "tiny CIFAR/../../.."])
def test_traversal_strings_never_reach_the_filesystem(env, monkeypatch, attack):
    from wsms_viz.app import images

    opened = []
    real_init = images.Gallery.__init__

    def spy(self, root):
        opened.append(Path(root).resolve())
        real_init(self, root)

    monkeypatch.setattr(images.Gallery, "__init__", spy)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["data_dir"] = attack
    at.query_params["dataset"] = attack
    at.session_state["data_dir"] = attack  # what the old free-text field was keyed on
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="dataset").options == ["tiny CIFAR", "Demo set"]  # the demo set: always
    with pytest.raises(Exception):  # noqa: B017 (AppTest refuses a value that is not an option)
        at.sidebar.selectbox(key="dataset").set_value(attack).run()
    allowed = (env / "data").resolve()
    assert all(p == allowed for p in opened), opened
    assert any("tiny CIFAR" not in c.value and "#0" in c.value for c in at.caption)  # a dataset image is shown


def test_datasets_are_picked_by_label_among_the_configured_ones(env, monkeypatch, tmp_path):
    other = make_dataset(tmp_path / "other")
    monkeypatch.setenv("WSMS_DATA_ROOTS", os.pathsep.join(
        [f"tiny CIFAR={env / 'data'}", f"second={other}", f"gone={tmp_path / 'missing'}"]))
    at = start()
    picker = at.sidebar.selectbox(key="dataset")
    assert picker.options == ["tiny CIFAR", "second", "Demo set"]  # a missing folder is left out
    picker.set_value("second").run()
    assert not at.exception and any("airplane #0" in c.value for c in at.caption)
    assert_no_server_path(at, tmp_path, env)


def test_errors_name_no_server_path(env, monkeypatch, tmp_path):
    """A broken dataset, a broken checkpoint, unreadable examples and a missing example
    file: each gets a message, none of which shows where the server keeps its files."""
    (tmp_path / "not_images" / "junk").mkdir(parents=True)
    (tmp_path / "not_images" / "junk" / "notes.txt").write_text("no images here")
    ckpts = tmp_path / "checkpoints"
    make_checkpoint(ckpts, "resnet20", 1, full_card=False)
    make_checkpoint(ckpts, "wsms_resnet20", 2, full_card=False)
    (ckpts / "wsms_resnet20" / "card.json").write_text("{ not json")
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(ckpts))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"broken={tmp_path / 'not_images'}")
    at = start()
    errors = [e.value for e in at.sidebar.error]
    assert any("not an ImageFolder" in e for e in errors), errors
    listed = [m.value for m in at.sidebar.markdown]  # a broken checkpoint is not picked: listed with its error
    assert any("card.json" in e and "not valid JSON" in e for e in listed), listed
    assert_no_server_path(at, tmp_path, env)
    (ckpts / "examples.json").write_text(json.dumps({"image_root": str(tmp_path / "not_images"), "examples": [
        {"file": "/etc/hostname", "label": "cat", "baseline": {"pred": "dog"}, "wsms": {"pred": "cat"}},
        {"file": str(tmp_path / "nowhere.jpg"), "label": "cat", "baseline": {"pred": "dog"}, "wsms": {"pred": "cat"}},
    ]}))
    at = start()
    at.sidebar.radio(key="source").set_value("Baseline wrong, WSMS right").run()
    assert not at.exception
    if Path("/etc/hostname").is_file():  # a real file outside the shared folders: refused, not read
        assert any("outside the datasets this server shares" in e.value for e in at.sidebar.error)
    assert_no_server_path(at, tmp_path, env)
    at.sidebar.selectbox(key="example").set_value(at.sidebar.selectbox(key="example").options[1]).run()
    assert any("nowhere.jpg is not found" in e.value for e in at.sidebar.error)
    assert_no_server_path(at, tmp_path, env)


# --- what a teacher tripped over ----------------------------------------------

@pytest.mark.parametrize("name,data,message", [
    ("notes.png", b"just some text, named .png\n" * 5, "not an image"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="4" height="4"/></svg>', "SVG"),
])
def test_a_failed_upload_is_said_in_the_main_area_too(env, name, data, message):
    at = start()
    at.sidebar.radio(key="source").set_value("Upload your own").run()
    at.sidebar.file_uploader(key="upload").upload(name, data, "application/octet-stream")
    at.run()
    assert not at.exception
    assert any(message in e.value for e in at.sidebar.error)
    assert any(message in e.value and "PNG" in e.value for e in at.main.error)  # where the eye is


@pytest.fixture
def broken_checkpoints(tmp_path, monkeypatch):
    """Four good checkpoints and two broken ones that sort first in teaching order."""
    import shutil

    ckpts = tmp_path / "checkpoints"
    for i, name in enumerate(("resnet20", "wsms_resnet20", "ms_resnet20")):
        make_checkpoint(ckpts, name, i, full_card=False)
    shutil.copytree(ckpts / "resnet20", ckpts / "resnet20_jitter")
    shutil.copytree(ckpts / "resnet20", ckpts / "resnet10")  # its weights: a Git LFS pointer
    (ckpts / "resnet10" / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 1100000\n")
    (ckpts / "resnet18").mkdir()
    (ckpts / "resnet18" / "card.json").write_text("{ not json")
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(ckpts))
    monkeypatch.setenv("WSMS_DATA", str(make_dataset(tmp_path / "data")))
    return ckpts


def test_broken_checkpoints_stay_out_of_the_defaults_but_are_listed(broken_checkpoints):
    at = start()
    picked = [Path(k).name for k in at.sidebar.multiselect(key="models").value]
    assert picked == ["resnet20", "wsms_resnet20", "ms_resnet20", "resnet20_jitter"]
    assert {Path(k).name for k in at.sidebar.multiselect(key="models").options} >= {"resnet10 (cannot load)",
                                                                                     "resnet18 (cannot load)"}
    listed = " ".join(m.value for m in at.sidebar.markdown)
    assert "git lfs pull" in listed and "not valid JSON" in listed
    assert len(top5(at)) == 4
    at.sidebar.multiselect(key="models").select(str(broken_checkpoints / "resnet10")).run()
    assert not at.exception
    assert any("Git LFS pointer" in e.value and "git lfs pull" in e.value for e in at.sidebar.error)


def test_replaced_weights_are_not_served_from_the_model_cache(broken_checkpoints):
    import os

    at = start()
    assert not at.sidebar.error
    weights = broken_checkpoints / "resnet20_jitter" / "model.safetensors"
    card = broken_checkpoints / "resnet20_jitter" / "card.json"
    st = card.stat()
    weights.write_bytes((broken_checkpoints / "ms_resnet20" / "model.safetensors").read_bytes())
    os.utime(card, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the weights changed
    at.run()
    assert not at.exception
    assert any("resnet20_jitter" in e.value and "sha256" in e.value for e in at.sidebar.error)


def test_scale_robustness_tables_round_their_numbers_and_hint_without_models(env):
    import re

    at = start("wsms_viz/app/pages/scale_robustness.py")
    cells = [str(v) for df in at.dataframe for v in df.value.to_numpy().ravel()]
    assert cells and not [c for c in cells if c in ("None", "nan", "NaN")]
    assert not [c for c in cells if re.search(r"\d\.\d{4,}", c)], "unrounded numbers"
    at.sidebar.multiselect(key="models").set_value([]).run()
    assert not at.exception
    assert any("Pick one or more models" in i.value for i in at.info)
    assert not at.dataframe and not at.main.subheader and not at.get("plotly_chart")


def test_integration_page_speaks_plain_words_and_names_the_class(env):
    at = start("wsms_viz/app/pages/integration.py")
    at.selectbox(key="int_class").set_value("cat").run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    text = json.dumps(specs) + " ".join(e.value for e in [*at.markdown, *at.caption, *at.subheader])
    for jargon in ("Frobenius", "sqrt(C)", "gated split", "logit of class"):
        assert jargon not in text, jargon
    contrib = next(s for s in specs if "switched off" in json.dumps(s["data"]))
    assert "'cat'" in contrib["layout"]["yaxis"]["title"]["text"]
    titles = [json.dumps(s["layout"].get("title", "")) for s in specs]
    assert "size of each stage" in titles[0]  # the per-stage summary before the 128 x 112 matrix
    bands = [sh for sh in specs[2]["layout"]["shapes"] if sh.get("type") == "rect"]
    assert len(bands) == 3  # one coloured band per stage over its columns


def test_attribution_page_offers_per_stage_colour_scales_and_says_which(env):
    at = start("wsms_viz/app/pages/attributions.py")
    at.selectbox(key="attr_method").set_value("saliency").run()
    shared = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t.get("coloraxis") for t in shared["data"] if t["type"] == "heatmap"} == {"coloraxis"}
    assert any("one scale for all panels" in c.value for c in at.caption)
    at.radio(key="attr_scale").set_value("one per stage").run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    heat = [t for t in spec["data"] if t["type"] == "heatmap"]
    axes = [t.get("coloraxis", "coloraxis") for t in heat]
    assert len(set(axes)) == len(heat) >= 3  # the WSMS stages and the baseline, each its own scale
    import base64

    import numpy as np

    for t, a in zip(heat, axes, strict=True):
        z = np.frombuffer(base64.b64decode(t["z"]["bdata"]), dtype=t["z"]["dtype"])  # plotly's binary arrays
        assert spec["layout"][a]["cmax"] == pytest.approx(float(np.abs(z).max()) or 1.0, rel=1e-4)
    assert any("one scale per panel" in c.value for c in at.caption)


def test_receptive_field_page_block_selector_and_readable_fields(env):
    at = start("wsms_viz/app/pages/receptive_fields.py")
    assert at.selectbox(key="rf_block").value == "block 1"  # by default the last block every stage has
    names = lambda: [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"][1:]]  # noqa: E731
    boxes = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert any("larger than the 32x32 image" in a["text"] for a in boxes["annotations"])
    assert any("smaller than stage 1's" in c.value and "fewer blocks" in c.value for c in at.caption)
    assert "start" not in at.dataframe[0].value.columns  # explained in the layer table, not left bare
    assert any("start: where the field of unit 0 begins" in c.value for c in at.caption)
    erf = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert erf["layout"]["annotations"][0]["text"] == "the image"
    at.selectbox(key="rf_block").set_value("block 1").run()
    assert not at.exception, at.exception
    assert [n.split(":")[1].split(",")[0].strip() for n in names()] == ["15 px", "30 px", "60 px"]
    at.selectbox(key="rf_block").set_value("block 2").run()
    assert not at.exception and any("Stage 3 has no block 2" in c.value for c in at.caption)
