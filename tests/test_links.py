"""Links that reopen a view: every parameter a link carries sets its widget on a
fresh session (set -> run -> same widgets, and the URL after the run still says so), a
garbage or stale value falls back to the default with a notice and no exception, and
nothing a link says reaches the disk.

The app runs on tiny real checkpoints and a generated dataset, as in tests/test_app.py.
"""

import json
import os
from pathlib import Path

import pytest
from app_fixtures import input_captions, make_checkpoint, make_dataset, top5_heads
from streamlit.testing.v1 import AppTest
from test_app import APP

from wsms_viz.app import links


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("links")
    ckpts = base / "checkpoints"
    make_checkpoint(ckpts, "resnet20", 1, full_card=False)
    make_checkpoint(ckpts, "wsms_resnet20", 2, full_card=True)
    make_checkpoint(ckpts, "ms_resnet20", 3, full_card=False)
    data = make_dataset(base / "data")
    (ckpts / "examples.json").write_text(json.dumps({
        "image_root": str(data / "train"), "baseline": "resnet20", "wsms": "wsms_resnet20",
        "examples": [{"file": f"bird/{n}.jpg", "index": i, "label": "bird", "baseline": {"pred": "cat"},
                      "wsms": {"pred": "bird"}} for i, n in enumerate((4500, 4501))],
        "reverse": [{"file": f"automobile/{n}.jpg", "index": i, "label": "automobile",
                     "baseline": {"pred": "automobile"}, "wsms": {"pred": "bird"}}
                    for i, n in enumerate((4500, 4501))]}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSMS_CHECKPOINTS", str(ckpts))
        mp.setenv("WSMS_DATA_ROOTS", f"tiny={data}{os.pathsep}second={data}")
        yield base


def opened(params: dict, page: str | None = None) -> AppTest:
    """A fresh session opened on a link with ``params`` (on ``page``'s path when given)."""
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def url(at: AppTest, key: str) -> list[str] | None:
    """The URL's values of ``key`` after the run (None when the URL leaves it out)."""
    v = at.query_params.get(key)
    return None if v is None else [v] if isinstance(v, str) else list(v)


def notices(at: AppTest) -> list[str]:
    return [t.value for t in at.toast]


def test_a_link_sets_every_sidebar_and_zoom_page_widget(env):
    params = {"models": ["wsms_resnet20", "ms_resnet20"], "source": "Dataset (val split)", "data_class": "bird",
              "data_index": "1", "cx": "0.3", "cy": "0.7", "zoom": "2.5", "stage_1": "false",
              "tta": "false", "follow": "truck", "presenter": "true"}
    at = opened(params)
    assert [Path(k).name for k in at.multiselect(key="models").value] == ["wsms_resnet20", "ms_resnet20"]
    assert url(at, "models") == ["wsms_resnet20", "ms_resnet20"]  # labels, never a server path
    assert at.radio(key="source").value == "Dataset (val split)"
    assert at.selectbox(key="data_class").value == "bird" and at.number_input(key="data_index").value == 1
    assert at.slider(key="cx").value == 0.3 and at.slider(key="cy").value == 0.7
    assert at.slider(key="zoom").value == 2.5
    assert at.toggle(key="stage_1").value is False and at.toggle(key="stage_0").value is True
    assert at.selectbox(key="follow").value == "truck"
    assert at.toggle(key="presenter").value is True
    assert not notices(at)
    # What the page shows follows: the models at 2.5x, the bird image's caption.
    headers = top5_heads(at)
    assert "wsms_resnet20 (stage 2 off) at 2.5x" in headers, headers
    assert not any(h.startswith("resnet20") for h in headers)
    assert any("(bird): what the networks see at 2.5x" in c for c in input_captions(at))
    # The URL after the run still holds the view (a default value is left out of it).
    assert url(at, "zoom") == ["2.5"] and url(at, "follow") == ["truck"] and url(at, "presenter") == ["true"]


@pytest.mark.parametrize("params,key,default", [
    ({"zoom": "abc"}, "zoom", 1.0),
    ({"zoom": "9"}, "zoom", 1.0),  # out of range
    ({"cx": "-3"}, "cx", 0.5),
    ({"models": ["not_a_model"]}, "models", None),
    ({"source": "/etc/passwd"}, "source", "Dataset (val split)"),
    ({"data_class": "../../.."}, "data_class", "airplane"),
    ({"data_index": "99999"}, "data_index", 0),
    ({"presenter": "maybe"}, "presenter", False),
    ({"stage_0": "sideways"}, "stage_0", True),
    ({"follow": "dragon"}, "follow", None),
])
def test_a_bad_value_falls_back_to_the_default_with_a_notice(env, params, key, default):
    at = opened(params)
    fresh = opened({})
    value = at.session_state[key]
    expected = fresh.session_state[key] if default is None else default
    assert value == expected == fresh.session_state[key]
    [text] = notices(at)
    assert f"{key}=" in text and "default" in text
    assert "/etc" not in " ".join(notices(at)) and "/etc" not in " ".join(m.value for m in at.markdown)


def test_unknown_parameters_and_another_pages_are_left_alone(env):
    # What chat and mail apps append (fbclid, utm_*) must not greet every student with a notice.
    at = opened({"fbclid": "x1", "utm_source": "mail", "attr_method": "saliency"})  # attr_method: page 3's
    assert not notices(at) and not at.exception


def test_a_link_cannot_put_markdown_into_the_notice(env):
    at = opened({"zoom": "\n\n[Log in](https://ev.il) <b>x</b> `y`"})
    [text] = notices(at)
    assert "zoom=" in text and "default" in text
    shown = text.split("`")[1]  # the parameter, inside its code span
    assert not set(shown) & set("[]<>`\n/") and len(shown) <= 40, shown
    assert text.count("`") == 2


def test_page_parameters_reopen_the_attributions_view(env):
    params = {"zoom": "1.5", "attr_model": "ms_resnet20", "attr_method": "saliency", "attr_class": "cat",
              "attr_scale": "one per stage", "models": ["resnet20", "wsms_resnet20", "ms_resnet20"]}
    at = opened(params, "wsms_viz/app/pages/attributions.py")
    assert at.selectbox(key="attr_model").value == "ms_resnet20"
    assert at.selectbox(key="attr_method").value == "saliency"
    assert at.selectbox(key="attr_class").value == "cat"
    assert at.radio(key="attr_scale").value == "one per stage"
    assert not notices(at)
    assert any("Explaining class **cat**" in c.value and "1.5x" in c.value and "ms_resnet20" in c.value
               for c in at.caption)


def test_a_garbage_method_falls_back(env):
    at = opened({"attr_method": "rm -rf"}, "wsms_viz/app/pages/attributions.py")
    assert at.selectbox(key="attr_method").value == opened({}, "wsms_viz/app/pages/attributions.py").selectbox(
        key="attr_method").value
    [text] = notices(at)
    assert "attr_method=rm -rf" in text


def test_an_example_and_a_sample_photo_travel(env):
    second = opened({"source": "Baseline wrong, WSMS right"}).selectbox(key="example").options[1]
    assert second.startswith("#2 bird: baseline said cat")
    at = opened({"source": "Baseline wrong, WSMS right", "example": second})
    assert at.selectbox(key="example").value == second and not notices(at)
    assert any("true class **bird**" in c.value for c in at.caption) and not at.error
    stale = opened({"source": "Baseline wrong, WSMS right", "example": "#7 cat: gone"})
    assert stale.selectbox(key="example").value.startswith("#1 ") and "example=#7 cat: gone" in notices(stale)[0]
    name = opened({"source": "Sample photos"}).selectbox(key="sample").options[1]
    good = opened({"source": "Sample photos", "sample": name})
    assert good.selectbox(key="sample").value == name and not notices(good)
    assert any(name in c.value for c in good.caption)


def test_the_class_followed_resets_for_a_new_image_but_not_on_a_rerun(env):
    at = opened({"data_class": "bird"})
    at.selectbox(key="follow").set_value("truck").run()
    at.slider(key="zoom").set_value(2.0).run()
    assert at.selectbox(key="follow").value == "truck"  # the same image: kept
    at.number_input(key="data_index").set_value(1).run()
    assert at.selectbox(key="follow").value == "bird"  # a new image: its own class
    assert not at.exception and not at.warning


def test_every_bound_widget_is_a_documented_parameter_and_back():
    import re
    from pathlib import Path

    from wsms_viz.app import presenter

    repo = Path(__file__).resolve().parent.parent
    bound = {presenter.KEY}
    for f in [*repo.glob("wsms_viz/app/pages/*.py"), *repo.glob("wsms_viz/app/*.py")]:
        text = f.read_text()
        bound |= set(re.findall(r'key="(\w+)"[^)]*?LINK', text, flags=re.S))  # a widget bound here
        bound |= set(re.findall(r'(?:pick_model|class_index)\([^)]*?"(\w+)"', text))  # bound in widgets.py
        for a, b in re.findall(r'key = "(\w+)" if .* else "(\w+)"', text):  # the two example lists
            bound |= {a, b}
        if 'key=f"stage_{s}", **LINK' in text:
            bound |= {f"stage_{s}" for s in range(3)}
    assert bound == set(links.PARAMS), (bound - set(links.PARAMS), set(links.PARAMS) - bound)


def test_rejected_and_same():
    assert links.rejected({"zoom": ["2.0"], "embed": ["true"]}, {"zoom": 2.0}, {"zoom": ["2.0"]}) == []
    assert links.rejected({"zoom": ["1.0"]}, {"zoom": 1.0}, {}) == []  # the default: left out of the URL
    # A widget of several values names only the values it left out, and a repeated value counts once.
    assert links.fallbacks({"models": ["a", "zz"]}, {"models": ["/srv/a"]}, {"models": ["a"]}) == [("models=zz", True)]
    assert links.rejected({"models": ["b", "a"]}, {"models": ["/srv/a"]}, {"models": ["a"]}) == ["models=b"]
    assert links.rejected({"models": ["a", "a"]}, {"models": ["/srv/a"]}, {"models": ["a"]}) == []
    assert links.fallbacks({"models": ["zz"]}, {"models": ["/srv/a"]}, {}) == [("models=zz", False)]
    assert links.rejected({"models": ["a"]}, {"models": ["/srv/a"]}, {"models": ["a"]}) == []
    assert links.same(["0.30000000000000004"], 0.3) and not links.same(["1", "2"], 1)
    assert links._shown("`x`" * 30).count("`") == 0 and len(links._shown("y" * 99)) == 40
    assert links._shown("a\n\n[b](http://c)") == "a???b?(http:??c)"


# --- the session: an upload that stays, examples both ways, no dataset -----------------

def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_an_upload_survives_a_page_switch_until_cleared(env):
    at = opened({"source": "Upload your own"})
    assert any("a link cannot carry it" in c.value for c in at.sidebar.caption)
    at.sidebar.file_uploader(key="upload").upload("red.png", _png(), "image/png").run()
    assert any("Image: **red.png**" in c.value for c in at.caption)
    for page in ("wsms_viz/app/pages/attributions.py", "wsms_viz/app/pages/zoom_compare.py"):
        at.switch_page(page).run()
        # AppTest has no browser to keep the URL, so its page switch resets the bound
        # source radio (a real browser keeps it: tests/test_e2e_links.py); pick it again.
        at.sidebar.radio(key="source").set_value("Upload your own").run()
        assert not at.exception and not at.error
        assert any("Showing your upload **red.png**" in c.value for c in at.sidebar.caption), page
    assert any("Image: **red.png**" in c.value for c in at.caption)
    at.sidebar.button(key="upload_clear").click().run()
    assert not any("red.png" in c.value for c in at.caption)
    assert any("Pick an image" in i.value for i in at.info)


def test_clearing_the_uploader_forgets_the_photo(env):
    at = opened({"source": "Upload your own"})
    at.sidebar.file_uploader(key="upload").upload("red.png", _png(), "image/png").run()
    at.sidebar.file_uploader(key="upload").clear().run()
    assert not any("red.png" in c.value for c in [*at.caption, *at.sidebar.caption])


def test_both_example_lists_reset_the_zoom_and_say_how_they_were_chosen(env):
    at = opened({"zoom": "2.5", "cx": "0.2"})
    at.sidebar.radio(key="source").set_value("Baseline right, WSMS wrong").run()
    assert not at.exception
    assert at.slider(key="zoom").value == 1.0 and at.slider(key="cx").value == 0.5
    first = at.sidebar.selectbox(key="reverse").value
    assert first.startswith("#1 automobile: baseline said automobile, WSMS said bird")
    assert any("at **zoom 1**" in c.value and "wsms_resnet20 was wrong and resnet20 right" in c.value
               for c in at.sidebar.caption)
    at.slider(key="zoom").set_value(2.0).run()
    at.sidebar.selectbox(key="reverse").set_value(at.sidebar.selectbox(key="reverse").options[1]).run()
    assert at.slider(key="zoom").value == 1.0


def test_with_no_dataset_the_app_opens_on_the_demo_set(env, monkeypatch):
    monkeypatch.setenv("WSMS_DATA_ROOTS", str(env / "no-such-folder"))
    for page in (None, *(f"wsms_viz/app/pages/{p}.py" for p in ("receptive_fields", "attributions", "integration",
                                                                  "feature_maps"))):
        at = opened({}, page)
        assert at.radio(key="source").value == "Dataset (val split)"
        assert at.selectbox(key="dataset").value == "Demo set" and at.selectbox(key="dataset").options == ["Demo set"]
        # This server's examples are files of a dataset it no longer shares, and not in the demo set.
        assert not any(o.startswith("Baseline") for o in at.radio(key="source").options)
        assert not at.error and not at.sidebar.error, page
        assert any("shares no dataset" in c.value for c in at.sidebar.caption)
        assert not any("Pick an image" in i.value for i in at.info), page
    # The sample photos are still one click away.
    at.sidebar.radio(key="source").set_value("Sample photos").run()
    assert not at.exception and not at.error


def test_the_docs_list_every_link_parameter():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "docs" / "app.md").read_text()
    missing = [k for k in links.PARAMS if f"| `{k}` |" not in readme]
    assert not missing, f"docs/app.md's link table lacks {missing}"


# Every page's own parameters: (page, parameter, a value that is not the default, what the widget holds then).
PAGE_PARAMS = [
    ("wsms_viz/app/pages/zoom_compare.py", "stage_2", "false", False),
    ("wsms_viz/app/pages/zoom_compare.py", "tta", "true", True),
    ("wsms_viz/app/pages/zoom_compare.py", "dataset", "second", "second"),
    ("wsms_viz/app/pages/receptive_fields.py", "rf_model", "ms_resnet20", "ms_resnet20"),
    ("wsms_viz/app/pages/receptive_fields.py", "rf_row", "2", 2),
    ("wsms_viz/app/pages/receptive_fields.py", "rf_col", "6", 6),
    ("wsms_viz/app/pages/receptive_fields.py", "rf_block", "block 3", "block 3"),
    ("wsms_viz/app/pages/attributions.py", "attr_noise", "true", True),
    ("wsms_viz/app/pages/integration.py", "int_model", "ms_resnet20", "ms_resnet20"),
    ("wsms_viz/app/pages/integration.py", "int_class", "bird", "bird"),
    ("wsms_viz/app/pages/feature_maps.py", "fm_model", "resnet20", "resnet20"),
    ("wsms_viz/app/pages/feature_maps.py", "fm_channel", "3", 3),
    ("wsms_viz/app/pages/feature_maps.py", "fm_scaling", "global", "global"),
    ("wsms_viz/app/pages/feature_maps.py", "fm_block", "block 2", "block 2"),
    ("wsms_viz/app/pages/scale_robustness.py", "robustness_tta", "true", True),
    ("wsms_viz/app/pages/lesson.py", "lesson_zoom", "2.0", 2.0),
]


@pytest.mark.parametrize("page,key,value,held", PAGE_PARAMS, ids=[p[1] for p in PAGE_PARAMS])
def test_every_page_parameter_round_trips_and_rejects_garbage(env, page, key, value, held):
    at = opened({key: value}, page)
    assert at.session_state[key] == held and not notices(at)
    bad = opened({key: "no such thing"}, page)
    assert bad.session_state[key] == opened({}, page).session_state[key]
    assert any(f"{key}=no such thing" in n for n in notices(bad)), notices(bad)


def test_a_reverse_example_travels(env):
    at = opened({"source": "Baseline right, WSMS wrong"})
    second = at.selectbox(key="reverse").options[1]
    again = opened({"source": "Baseline right, WSMS wrong", "reverse": second})
    assert again.selectbox(key="reverse").value == second and not notices(again)


def test_examples_files_that_cannot_be_used(tmp_path):
    from wsms_viz.app import catalog

    (tmp_path / "examples.json").write_text(json.dumps([{"path": "bird/1.jpg", "label": "bird"}]))
    assert len(catalog.read_examples(tmp_path)[0]) == 1
    assert catalog.read_examples(tmp_path, "reverse") == ([], None)  # a plain list is one list only
    (tmp_path / "examples.json").write_text('{"examples": [')
    examples, problem = catalog.read_examples(tmp_path, "reverse")
    assert examples == [] and "cannot read it" in problem


def test_a_broken_examples_file_hides_the_example_sources(env, tmp_path, monkeypatch):
    import shutil

    ckpts = tmp_path / "checkpoints"
    shutil.copytree(env / "checkpoints", ckpts)
    (ckpts / "examples.json").write_text('{"examples": null, "reverse": null}')
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(ckpts))
    at = opened({"source": "Baseline right, WSMS wrong"})
    assert not at.exception and at.radio(key="source").value == "Dataset (val split)"
    assert not any(o.startswith("Baseline") for o in at.radio(key="source").options)
    assert any("source=Baseline right, WSMS wrong" in n for n in notices(at))


# --- the notice names exactly what fell back, and is there when the page stops ----------

def test_the_notice_names_only_the_values_left_out(env):
    at = opened({"models": ["doesnotexist", "resnet20"]})
    assert [Path(k).name for k in at.multiselect(key="models").value] == ["resnet20"]
    [text] = notices(at)
    assert "`models=doesnotexist` left out" in text and "default" not in text and "resnet20" not in text
    twice = opened({"models": ["resnet20", "resnet20"]})  # a repeated value: what the link says, once
    assert [Path(k).name for k in twice.multiselect(key="models").value] == ["resnet20"] and not notices(twice)
    both = opened({"models": ["doesnotexist", "resnet20"], "zoom": "abc"})
    [text] = notices(both)
    assert "`models=doesnotexist` left out" in text and "`zoom=abc` replaced by the default" in text


def test_a_link_streamlit_ignores_as_a_whole_says_so(env):
    at = opened({"models": ["resnet20"] * 2000})  # Streamlit reads at most 1,000 parameters
    assert len(at.multiselect(key="models").value) == 3  # it ignored the link: the default models
    [text] = notices(at)
    assert "not read at all" in text and "2,000 parameters" in text and "1,000" in text


@pytest.fixture
def broken_examples(env, tmp_path, monkeypatch):
    """This server's examples name files that are gone, and its one dataset has no images."""
    import shutil

    ckpts = tmp_path / "checkpoints"
    shutil.copytree(env / "checkpoints", ckpts)
    (ckpts / "examples.json").write_text(json.dumps({
        "image_root": str(tmp_path / "gone"), "baseline": "resnet20", "wsms": "wsms_resnet20",
        "examples": [{"file": "cat/1.jpg", "label": "cat", "baseline": {"pred": "dog"}, "wsms": {"pred": "cat"}}]}))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(ckpts))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"empty={tmp_path / 'empty'}")
    return tmp_path


@pytest.mark.parametrize("params,named", [
    ({"source": "Baseline wrong, WSMS right", "example": "/etc/passwd"}, "example=?etc?passwd"),
    ({"dataset": "bogus", "data_class": "cat", "data_index": "4"}, "dataset=bogus"),
])
def test_the_notice_shows_when_the_fallback_image_stops_the_page(broken_examples, params, named):
    at = opened(params)
    assert at.sidebar.error  # the image the link fell back to cannot be shown, so the page stops
    [text] = notices(at)
    assert f"`{named}` replaced by the default" in text
    assert "/etc" not in text and str(broken_examples) not in text


def test_receptive_fields_opens_on_a_block_every_stage_has(env):
    at = opened({"models": ["resnet20", "wsms_resnet20"]}, "wsms_viz/app/pages/receptive_fields.py")
    assert at.selectbox(key="rf_block").value == "block 1"
    assert at.selectbox(key="rf_block").options == ["block 1", "block 2", "block 3"]
    assert not any("has no block" in c.value for c in at.caption)  # all three stages drawn
    last = opened({"models": ["wsms_resnet20"], "rf_block": "block 3"}, "wsms_viz/app/pages/receptive_fields.py")
    assert any("Stage 2, 3 has no block 3" in c.value for c in last.caption)


def test_every_stage_off_is_explained_on_the_page(env):
    at = opened({"stage_0": "false", "stage_1": "false", "stage_2": "false"})
    assert not notices(at) and not at.exception
    assert any("Every stage is off" in w.value and "biases" in w.value for w in at.warning)
    one = opened({"stage_0": "false", "stage_1": "false"})
    assert not any("Every stage is off" in w.value for w in one.warning)
