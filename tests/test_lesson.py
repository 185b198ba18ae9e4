"""The Lesson page and the verdict lines, through AppTest: with the checkpoints that ship
in checkpoints/ (the real loader, the real cards), with none at all, and the verdict line
of pages 1, 3, 4 and 6 on the generated checkpoints of tests/app_fixtures.py."""

import json
import shutil
from pathlib import Path

import pytest
from app_fixtures import make_checkpoint, make_dataset
from streamlit.testing.v1 import AppTest

from wsms_viz.app import lesson, verdicts
from wsms_viz.cards import read_card_file

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
SHIPPED = REPO / "checkpoints"


def open_lesson(monkeypatch, checkpoints: Path, data: Path) -> AppTest:
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"tiny CIFAR={data}")
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("wsms_viz/app/pages/lesson.py").run()
    assert not at.exception, at.exception
    return at


def titles(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def test_lesson_is_first_in_the_sidebar():
    from wsms_viz.app import navigation

    assert navigation.PAGES[0].key == "lesson"
    assert [p.key for p in navigation.PAGES if p.default] == ["zoom_compare"]
    assert all(p.path.is_file() for p in navigation.PAGES)


@pytest.mark.skipif(not (SHIPPED / "wsms_resnet20" / "card.json").is_file(), reason="no shipped checkpoints")
def test_lesson_with_the_shipped_checkpoints(monkeypatch, tmp_path):
    at = open_lesson(monkeypatch, SHIPPED, tmp_path / "no-data")  # the lesson needs no dataset
    assert titles(at) == [t for t, _ in lesson.STEPS]
    assert not any(lesson.NO_MODEL in i.value for i in at.info)
    said = [s.value for s in at.success]
    # The numbers come from the cards: the same sentence, built from the card read here.
    wsms = read_card_file(SHIPPED / "wsms_resnet20" / "card.json")
    vs = wsms.scale_robustness.vs_baseline
    assert any(verdicts.comparison_clause(vs.at_zoom_1) in s and verdicts.comparison_clause(vs.mean) in s
               for s in said), said
    assert any("Top guess **cat** kept" in s for s in said)
    assert any(s.startswith("The paper reports") for s in said)
    assert sum("stage" in s for s in said) >= 2  # step 6: attribution shares and lesions
    assert any(m.value.startswith("Parameters: **resnet20** 269,722;") for m in at.markdown)  # counted, not typed
    assert len(at.get("plotly_chart")) == 6  # filter, fields, curves, jitter curves, shares, lesions
    links = [json.loads(json.dumps(p.proto.page)) for p in at.get("page_link")]
    assert len(links) >= 7
    before = [m.value for m in at.metric]
    at.slider(key="lesson_zoom").set_value(0.5).run()
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["resnet20", "wsms_resnet20"]
    assert any("At 0.5x the smaller stages" in s.value for s in at.success)
    assert before  # the top guesses were shown at 1x too
    at.slider(key="lesson_channel").set_value(5).run()
    assert not at.exception and "channel 5" in at.get("plotly_chart")[0].proto.spec


def test_lesson_with_no_checkpoint(monkeypatch, tmp_path):
    at = open_lesson(monkeypatch, tmp_path / "none", tmp_path / "no-data")
    assert titles(at) == [t for t, _ in lesson.STEPS]
    notices = [i.value for i in at.info if lesson.NO_MODEL in i.value]
    assert len(notices) == len(lesson.STEPS)  # one per step
    assert any("we have not measured ours yet" in s.value for s in at.success)
    assert any("No trained model here" in w.value for w in at.warning)
    assert not at.get("plotly_chart")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """resnet20 without a curve, wsms_resnet20 with the evaluator's comparison."""
    base = tmp_path_factory.mktemp("verdicts")
    make_checkpoint(base / "checkpoints", "resnet20", 1, full_card=False)
    make_checkpoint(base / "checkpoints", "wsms_resnet20", 2, full_card=True)
    return base / "checkpoints", make_dataset(base / "data")


def test_lesson_with_cards_not_yet_evaluated(monkeypatch, small):
    broken = small[0] / "wsms_resnet20_broken"
    broken.mkdir(exist_ok=True)
    (broken / "card.json").write_text("{")
    (broken / "model.safetensors").write_bytes(b"")
    try:
        at = open_lesson(monkeypatch, *small)
    finally:
        shutil.rmtree(broken)  # the module's other tests see the two good checkpoints only
    warned = [w.value for w in at.warning if "not valid JSON" in w.value]
    assert warned and not any(str(small[0]) in w for w in warned)  # said, without the server's path
    assert any(lesson.NOT_EVALUATED in m.value for m in at.markdown)  # resnet20 has no curve
    assert any("No checkpoint trained with scale jitter" in i.value for i in at.info)


@pytest.mark.parametrize("page,part", [
    ("zoom_compare", "**airplane**"),  # the followed class: the first gallery image's
    ("attributions", "At 1.0x the smaller stages (stages 2 and 3) carry"),
    ("integration", "For this image, "),
    ("scale_robustness", "**wsms_resnet20** against **resnet20**: at zoom 1 it is +1.20 points"),
])
def test_each_page_states_its_verdict(monkeypatch, small, page, part):
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(small[0]))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"tiny CIFAR={small[1]}")
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page(f"wsms_viz/app/pages/{page}.py").run()
    assert not at.exception, at.exception
    said = [s.value for s in at.success]
    assert any(part in s for s in said), said


def test_attributions_page_answers_its_question_with_the_zoom_sweep(monkeypatch, small):
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(small[0]))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"tiny CIFAR={small[1]}")
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("wsms_viz/app/pages/attributions.py").run()
    at.selectbox(key="attr_method").set_value("saliency").run()
    at.toggle(key="attr_sweep").set_value(True).run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Does the answer move to the smaller stages? Zooming from 0.5x to 3x")
               for s in at.success)
