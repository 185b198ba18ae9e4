"""The Lesson page and the verdict lines, through AppTest: with the checkpoints that ship
in checkpoints/ (the real loader, the real cards), with none at all, and the verdict line
of pages 1, 3, 4 and 6 on the generated checkpoints of tests/app_fixtures.py; what a
first-year reads (a take-home per step, every word explained, a conclusion from the
cards, its length), presenter view and the step buttons, the last two in Chromium too."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from app_fixtures import make_checkpoint, make_dataset
from streamlit.testing.v1 import AppTest

from wsms_viz.app import glossary, lesson, verdicts
from wsms_viz.cards import read_card_file

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
SHIPPED = REPO / "checkpoints"


# --- the Lesson's rendered text, read from an AppTest run in page order ----------------------

KINDS = ("markdown", "success", "info", "warning", "subheader", "caption", "metric", "title")


def rendered_blocks(at) -> list[tuple[str, str, bool]]:
    """``(kind, text, folded)`` for every text element of the main area, in page order;
    ``folded``: inside an expander (read only by whoever opens it)."""
    out = []

    def visit(node, folded: bool) -> None:
        kind = getattr(node, "type", None)
        if kind == "metric":
            out.append((kind, f"{node.label} {node.value} {node.proto.delta}", folded))
        elif kind == "expander":
            out.append(("expander", node.label, folded))
            folded = True
        elif kind in KINDS and hasattr(node, "value"):
            out.append((kind, str(node.value), folded))
        for k in sorted(getattr(node, "children", {}) or {}):
            visit(node.children[k], folded)

    visit(at.main, False)
    return out


def words(text: str) -> int:
    """Words as a reader counts them: markdown's markers and icon codes left out."""
    text = re.sub(r":material/[a-z_]+:", " ", text)
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'.,%/+-]*", text.replace("\\", "")))


def by_step(at, titles: list[str]) -> dict[str, list[tuple[str, str, bool]]]:
    """The blocks under each of ``titles`` (subheaders), up to the next one."""
    out, current = {}, None
    for kind, text, folded in rendered_blocks(at):
        if kind == "subheader" and text in titles:
            current = text
            out[current] = []
        elif current is not None:
            out[current].append((kind, text, folded))
    return out


def open_lesson(monkeypatch, checkpoints: Path, data: Path, **params: str) -> AppTest:
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"tiny CIFAR={data}")
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
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
    assert titles(at) == [t for t, _ in lesson.STEPS] + [lesson.CONCLUSION]
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
    assert len([b for b in at.button if b.key.startswith("lesson_open_")]) >= 7  # one or two a step
    # Step 2 states its answer: Fig. 1's correlation, measured live on the photo for both kinds.
    fig1 = next(s for s in said if s.startswith("Measured on this photo"))
    values = [float(v) for v in re.findall(r"correlation of (-?[0-9.]+) in .*? and (-?[0-9.]+) in ", fig1)[0]]
    assert values[0] > values[1] + 0.2, fig1  # shared filters agree across stages, separate ones do not
    # Step 1 says why the photo can disagree with the dataset.
    assert any("One photo is a single example" in m.value for m in at.markdown)
    # Step 3's sentence quotes the boxes it draws, and the figure has no note over a box.
    sizes = re.findall(r"(\d+)x\1 pixels through stage", " ".join(m.value for m in at.markdown))
    fields = json.loads(at.get("plotly_chart")[1].proto.spec)
    drawn = sorted(round(s["x1"] - s["x0"]) for s in fields["layout"]["shapes"] if s["line"].get("width") == 3)
    assert sorted(int(x) for x in sizes) == drawn, (sizes, drawn)
    assert not fields["layout"].get("annotations")
    before = [m.value for m in at.metric]
    at.slider(key="lesson_zoom").set_value(0.5).run()
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["resnet20", "wsms_resnet20"]  # plain.md: an inner "_" stays as it is
    assert any("At 0.5x the smaller stages" in s.value for s in at.success)
    assert before  # the top guesses were shown at 1x too
    at.slider(key="lesson_channel").set_value(5).run()
    assert not at.exception and "channel 5" in at.get("plotly_chart")[0].proto.spec


def test_lesson_with_no_checkpoint(monkeypatch, tmp_path):
    at = open_lesson(monkeypatch, tmp_path / "none", tmp_path / "no-data")
    assert titles(at) == [t for t, _ in lesson.STEPS] + [lesson.CONCLUSION]
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


# --- what a first-year reads -------------------------------------------------------------

# The jargon a first-year does not know, as the Lesson may write it; each one it uses
# must be explained by the glossary (a list of its own, not the glossary's).
JARGON = (r"checkpoints?", r"validation", r"logits?", r"Integrated Gradients", r"attributions?", r"lesions?",
          r"receptive fields?", r"jump", r"channels?", r"resolved", r"seed-to-seed spread", r"seed spread",
          r"seed-aware", r"seeds?", r"bootstrap", r"1x1 conv", r"TTA", r"95% (?:interval|CI)", r"interaction",
          r"scale jitter", r"scale-channel", r"stages?", r"filters?", r"CNNs?", r"pooled feature", r"units?",
          r"multi-scale averaging", r"correlation", r"parameters")
TITLES = [t for t, _ in lesson.STEPS] + [lesson.CONCLUSION]
TAKE_HOME = f"**{lesson.TAKE_HOME}**"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    if not (SHIPPED / "wsms_resnet20" / "card.json").is_file():
        pytest.skip("no shipped checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        return open_lesson(mp, SHIPPED, tmp_path_factory.mktemp("no-data"))


def check_take_homes(at: AppTest) -> None:
    steps = by_step(at, TITLES)
    assert list(steps) == TITLES
    for title, blocks in list(steps.items())[:-1]:
        homes = [text for kind, text, folded in blocks if kind == "markdown" and TAKE_HOME in text]
        assert len(homes) == 1, (title, homes)  # one, in the same form on every step
        assert not any(folded for kind, text, folded in blocks if TAKE_HOME in text)  # never folded away
        assert words(homes[0]) >= 8, homes  # a sentence
    assert words(" ".join(text for _, text, _ in steps[lesson.CONCLUSION][:1])) >= 15
    for m in at.markdown:  # hover help: the take-home's own words, defined
        if TAKE_HOME in m.value:
            assert all(glossary.TERMS[t] in m.proto.help for t in glossary.used_in(m.value)), m.value


def test_every_step_has_its_take_home(shipped):
    check_take_homes(shipped)


def test_every_step_has_its_take_home_without_any_checkpoint(monkeypatch, tmp_path):
    check_take_homes(open_lesson(monkeypatch, tmp_path / "none", tmp_path / "no-data"))


def test_every_word_of_the_jargon_the_lesson_uses_is_explained(shipped):
    steps = by_step(shipped, TITLES)
    everything = " ".join(text for _, text, _ in rendered_blocks(shipped))
    used = {m.group(0) for j in JARGON for m in re.finditer(rf"(?<![\w-]){j}(?![\w-])", everything,
                                                            0 if j.startswith(("TTA", "CNN")) else re.I)}
    assert {"checkpoint", "logit", "lesion", "jump", "resolved", "bootstrap", "1x1 conv"} <= {u.lower() for u in used}
    for word in used:
        assert glossary.define(word), f"the lesson says {word!r} and the glossary does not explain it"
    # Each step lists, at its foot, the words it uses.
    for title, blocks in list(steps.items())[:-1]:
        listed = [text for kind, text, _ in blocks if kind == "expander" and text.startswith("Words used")]
        assert len(listed) == 1, title
        text = " ".join(t for kind, t, _ in blocks  # less the definitions themselves ("**term**: ...")
                        if kind != "expander" and not re.match(r"\*\*[^*]+\*\*: ", t))
        for word in {m.group(0) for j in JARGON for m in re.finditer(rf"(?<![\w-]){j}(?![\w-])", text, re.I)}:
            assert glossary.term_of(word) in listed[0], (title, word, listed[0])


def test_the_lesson_reads_in_about_fifteen_minutes(shipped):
    """Words shown (an expander's only when opened) at 150 a minute, a first-year reading
    text with numbers in it, plus a minute for each step's "Try"."""
    steps = by_step(shipped, TITLES)
    shown = {t: sum(words(x) for _, x, folded in blocks if not folded) for t, blocks in steps.items()}
    minutes = sum(shown.values()) / 150 + len(lesson.STEPS)
    assert 12 <= minutes <= 18, (minutes, shown)
    jitter = shown[lesson.STEPS[4][0]]
    assert jitter <= 160, shown  # step 5 says its answer in a few sentences, the statistics folded
    assert max(shown.values()) <= 2 * sorted(shown.values())[len(shown) // 2], shown  # no step dwarfs the others


def test_the_shipped_conclusion_says_what_the_cards_measured(shipped):
    said = [m.value for m in shipped.markdown if m.value.startswith(":material/school:")]
    assert len(said) == 1
    entries, _ = lesson.read_entries(SHIPPED)
    assert lesson.conclusion(lesson.cast(entries))[0] in said[0]
    wsms = read_card_file(SHIPPED / "wsms_resnet20" / "card.json").scale_robustness.vs_baseline.mean
    if wsms.ci[1] < 0:  # the cards measured WSMS-Net below the baseline over the zooms
        assert "WSMS-Net did not make ResNet-20 more robust to zoom here" in said[0]
    assert "the paper itself never tested zoomed images" in said[0]


def edit_card(directory: Path, **blocks) -> None:
    card = json.loads((directory / "card.json").read_text())
    for key, value in blocks.items():
        if key == "vs_mean":
            card["scale_robustness"]["vs_baseline"]["mean"] = value
        else:
            card[key] = value
    (directory / "card.json").write_text(json.dumps(card))


def test_the_conclusion_changes_with_the_cards(monkeypatch, tmp_path):
    """Two card sets, two conclusions: WSMS-Net below the baseline and no jitter model;
    WSMS-Net above it (sure) and a jittered baseline above it too."""
    said = {}
    for name, wsms_mean, jitter in (
        ("worse", {"diff": -0.01, "ci": [-0.015, -0.005], "seed_aware_ci": [-0.018, -0.002], "resolved": "yes"},
         False),
        ("better", {"diff": 0.02, "ci": [0.01, 0.03], "seed_aware_ci": [0.005, 0.035], "resolved": "yes"}, True),
    ):
        root = tmp_path / name
        make_checkpoint(root, "resnet20", 1, full_card=True)
        make_checkpoint(root, "wsms_resnet20", 2, full_card=True)
        edit_card(root / "wsms_resnet20", vs_mean=wsms_mean)
        if jitter:
            make_checkpoint(tmp_path / "jitter", "resnet20", 3, full_card=True)
            (tmp_path / "jitter" / "resnet20").rename(root / "resnet20_jitter")
            edit_card(root / "resnet20_jitter", recipe={"scale_jitter": [0.5, 2.0]},
                      vs_mean={"diff": 0.1, "ci": [0.09, 0.11], "seed_aware_ci": [0.08, 0.12], "resolved": "yes"})
        at = open_lesson(monkeypatch, root, tmp_path / "no-data")
        said[name] = next(m.value for m in at.markdown if m.value.startswith(":material/school:"))
        entries, _ = lesson.read_entries(root)
        assert lesson.conclusion(lesson.cast(entries))[0] in said[name]
    assert said["worse"] != said["better"]
    assert "WSMS-Net did not make ResNet-20 more robust to zoom here" in said["worse"]
    assert "scale jitter is not measured here yet" in said["worse"]
    assert "WSMS-Net made ResNet-20 more robust to zoom here" in said["better"]
    assert "so did scale jitter, inside its range (0.5x to 2x" in said["better"]


def test_each_clause_of_the_conclusion_follows_its_numbers(small):
    """The sentence on hand-made comparisons: every combination says what its numbers say."""
    from wsms_viz.cards import parse_card

    base = read_card_file(small[0] / "wsms_resnet20" / "card.json").to_dict()

    def entry(label: str, model: str, mean: dict, jitter=None) -> lesson.Entry:
        card = json.loads(json.dumps(base))
        card["model"] = model
        card["scale_robustness"]["vs_baseline"]["mean"] = mean
        if jitter:
            card["recipe"] = {"scale_jitter": list(jitter)}
        return lesson.Entry(label, label, parse_card(card))

    def diff(d: float, lo: float, hi: float, wide: float = 0.0) -> dict:
        return {"diff": d, "ci": [lo, hi], "seed_aware_ci": [lo - wide, hi + wide], "resolved": "-"}

    plain = entry("resnet20", "resnet20", diff(0, -0.01, 0.01))

    def said(wsms: dict, jitter: dict | None, span=(0.5, 2.0)) -> str:
        c = lesson.Cast(plain, entry("w", "wsms_resnet20", wsms),
                        baseline_jitter=entry("j", "resnet20", jitter, span) if jitter else None)
        return " ".join(lesson.conclusion(c))

    up, down, flat = diff(0.02, 0.01, 0.03), diff(-0.02, -0.03, -0.01), diff(0.001, -0.01, 0.012)
    assert said(down, up).startswith("WSMS-Net did not make ResNet-20 more robust to zoom here; scale jitter did, "
                                     "inside its range (0.5x to 2x); the paper itself never tested zoomed images.")
    assert said(up, up).startswith("WSMS-Net made ResNet-20 more robust to zoom here; so did scale jitter")
    assert "; scale jitter did not, inside" in said(up, down)
    assert said(flat, None).startswith("WSMS-Net did not measurably change how well ResNet-20 copes with zoom here; "
                                       "scale jitter is not measured here yet")
    assert "over zooms 0.5x to 2x (it was trained on 0.71x to 1.4x)" in said(down, up, (0.71, 1.41))
    # How sure, in words: past the seed spread, only past the images' chance, or neither.
    assert "larger than the chance differences between two trainings" in said(down, None)
    assert "a second training run could still change it" in said(diff(-0.02, -0.03, -0.01, 0.02), None)
    assert "too small to tell apart from chance" in said(flat, None)


# --- presenter view and the step buttons --------------------------------------------------

def test_presenter_view_stays_in_the_url_and_only_grows_the_top_guesses(monkeypatch, small):
    at = open_lesson(monkeypatch, *small, presenter="true")
    assert at.toggle(key="presenter").value is True
    assert at.query_params.get("presenter") in ("true", ["true"])
    at.slider(key="lesson_zoom").set_value(2.0).run()  # a rerun keeps it too
    assert at.toggle(key="presenter").value is True and not at.exception
    # The lesson's own rule for the top guesses: larger than Streamlit's 2.25rem metric
    # value, never smaller (the browser test below measures what is drawn).
    sizes = [float(x) for x in re.findall(r"stMetricValue[^{]*\{\s*font-size:\s*([0-9.]+)rem",
                                          lesson._PRESENTER_CSS)]
    assert sizes and min(sizes) > 2.25


def test_a_step_button_opens_its_page_on_the_lessons_photo_zoom_and_presenter_view(monkeypatch, small):
    at = open_lesson(monkeypatch, *small, presenter="true")
    at.slider(key="lesson_zoom").set_value(1.5).run()
    at.button(key="lesson_open_3_receptive_fields").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Receptive fields"] or "Receptive" in at.title[0].value
    assert at.session_state["source"] == "Sample photos" and at.selectbox(key="sample").value == lesson.PHOTO
    assert at.session_state["zoom"] == 1.5
    assert at.toggle(key="presenter").value is True
    assert at.query_params.get("presenter") in ("true", ["true"])
    assert lesson.link_params(1.5) == {"source": "Sample photos", "sample": lesson.PHOTO, "zoom": "1.5",
                                       "cx": "0.5", "cy": "0.5"}


# --- in Chromium ---------------------------------------------------------------------------

# Every text the main area draws, in page order: what it is and its computed font size.
_TEXT_SIZES = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,'
  + '[data-testid="stMain"] [data-testid="stMetricValue"], [data-testid="stMain"] [data-testid="stMetricLabel"] p,'
  + '[data-testid="stMain"] [data-testid="stCaptionContainer"]')]
  .map(e => [e.innerText.slice(0, 40), parseFloat(getComputedStyle(e.querySelector('p') || e).fontSize)])"""
_GUESSES = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const row = document.querySelector('.st-key-lesson_guesses');
  return {image: box(row.querySelector('[data-testid="stImage"]')),
          metrics: [...row.querySelectorAll('[data-testid="stMetric"]')].map(box)}; }"""
_GRIDS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stDataFrame"] .dvn-scroller')]
  .map(s => [s.scrollWidth, s.clientWidth])"""


@pytest.fixture(scope="module")
def lesson_server(small):
    from appserver import running_server

    env = {**os.environ, "WSMS_CHECKPOINTS": str(small[0]), "WSMS_DATA_ROOTS": f"tiny CIFAR={small[1]}",
           "WSMS_THREADS": "1"}
    with running_server(env) as url:
        yield url


def _open_page(browser, url: str):
    from test_e2e import wait_for

    pg = browser.new_page(viewport={"width": 1024, "height": 768})
    pg.goto(url)
    wait_for(pg, lambda: pg.get_by_text(lesson.CONCLUSION).count() > 0 and
             pg.locator(".st-key-lesson_guesses [data-testid=stMetric]").count() == 2, 120, "the whole lesson")
    pg.wait_for_timeout(1500)
    return pg


@pytest.mark.slow
def test_in_chromium_presenter_view_keeps_its_url_and_only_grows_the_text_at_1024(lesson_server, browser):
    plain = _open_page(browser, lesson_server + "/lesson")
    normal = plain.evaluate(_TEXT_SIZES)
    plain.close()
    pg = _open_page(browser, lesson_server + "/lesson?presenter=true")
    assert "presenter=true" in pg.url
    big = pg.evaluate(_TEXT_SIZES)
    assert [t for t, _ in big] == [t for t, _ in normal]
    smaller = [(t, a, b) for (t, a), (_, b) in zip(normal, big, strict=True) if b < a]
    assert not smaller, smaller
    values = [px for t, px in big if t in ("cat", "dog", "airplane", "automobile", "bird", "deer", "frog", "horse",
                                            "ship", "truck")]
    assert values and min(values) > 36  # the top guesses grow (36 px without presenter view)
    # At 1024x768 the photo covers no top guess, and the paper's table shows every column.
    for page in (pg,):
        got = page.evaluate(_GUESSES)
        for m in got["metrics"]:
            i = got["image"]
            assert not (i[0] < m[2] and m[0] < i[2] and i[1] < m[3] and m[1] < i[3]), got
        assert all(w <= c + 1 for w, c in page.evaluate(_GRIDS)), page.evaluate(_GRIDS)
    pg.close()


@pytest.mark.slow
def test_in_chromium_a_step_button_opens_its_page_on_the_photo_zoom_and_presenter_view(lesson_server, browser):
    from test_e2e import wait_for

    # The known obstacle: once the sidebar's widgets have values in the session, a link's
    # parameters lose to them. So the zoom page is opened first, on the dataset at 2.5x.
    pg = browser.new_page(viewport={"width": 1024, "height": 768})
    pg.goto(lesson_server + "/?zoom=2.5")
    sidebar = pg.locator('[data-testid="stSidebar"]')
    wait_for(pg, lambda: sidebar.get_by_text("Dataset (val split)").count() > 0, 120, "the zoom page's sidebar")
    pg.get_by_text("Lesson", exact=True).click()
    wait_for(pg, lambda: pg.get_by_text(lesson.CONCLUSION).count() > 0, 120, "the lesson")
    sidebar.get_by_text("Presenter view").click()  # the teacher turns presenter view on, on the Lesson
    wait_for(pg, lambda: "presenter=true" in pg.url, 30, "presenter view in the Lesson's URL")
    value = pg.locator('[data-testid="stMain"] [data-testid="stSlider"]').filter(has_text="Zoom").locator(
        'input[type="range"]')  # react-aria: a hidden range input inside the thumb
    value.focus()
    for _ in range(5):
        value.press("ArrowRight")
    button = pg.get_by_role("button", name="Open Receptive fields on this photo at 1.5x")
    wait_for(pg, lambda: button.count() > 0, 120, "the step 3 button at 1.5x")
    button.click()
    wait_for(pg, lambda: "/receptive_fields" in pg.url, 60, "the receptive fields page")
    wait_for(pg, lambda: "zoom=1.5" in pg.url and "presenter=true" in pg.url, 60, "the link's parameters")
    picked = """() => { const s = document.querySelector('[data-testid="stSidebar"]');
      return s.innerText + ' ' + [...s.querySelectorAll('input, [title], [aria-label]')]
        .map(e => (e.value || '') + ' ' + (e.title || '') + ' ' + (e.getAttribute('aria-label') || '')).join(' '); }"""
    wait_for(pg, lambda: lesson.PHOTO in pg.evaluate(picked), 60, "the lesson's photo in the sidebar")
    assert sidebar.get_by_role("radio", name="Sample photos").is_checked()
    assert sidebar.get_by_role("switch", name="Presenter view").is_checked() or \
        sidebar.locator('[data-testid="stCheckbox"] input').last.is_checked()
    assert pg.locator('[data-testid="stException"]').count() == 0
    pg.close()


@pytest.mark.skipif(not (SHIPPED / "wsms_resnet20" / "card.json").is_file(), reason="no shipped checkpoints")
def test_the_lesson_reads_the_study_over_seeds():
    # The shipped results (results/study.json) are one seed per arm: every answer the Lesson
    # quotes must say whether it is settled, and none is.
    from wsms_viz.app import lesson

    entries, _ = lesson.read_entries(SHIPPED)
    found = lesson.study_answers(lesson.cast(entries), entries, SHIPPED)
    assert found and len(found) == 4
    assert all("not settled" in answer.lower() for _, answer in found)
