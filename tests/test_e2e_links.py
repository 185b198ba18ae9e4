"""Links and the session in a real headless Chromium: what a visitor does is in
the address bar, and that address opened in a fresh browser (a new context: no cookies, no
session) shows the same zoom, image and models; an upload stays while the visitor
switches pages; a bad link falls back with a notice.

Same server and browser set-up as tests/test_e2e.py.
"""

import os
from urllib.parse import parse_qs, urlparse

import pytest
from app_fixtures import make_checkpoint, make_checkpoints, make_dataset
from appserver import running_server
from PIL import Image
from test_e2e import drag, probability_texts, upload_file, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e_links")
    make_checkpoints(base / "checkpoints")
    env = {**os.environ, "WSMS_CHECKPOINTS": str(base / "checkpoints"),
           "WSMS_DATA_ROOTS": f"tiny={make_dataset(base / 'data')}"}
    with running_server(env) as url:
        yield url


def main_text(pg) -> str:
    return pg.locator('[data-testid="stMain"]').inner_text()


def zoom_value(pg) -> float:
    slider = pg.locator('[data-testid="stMain"] [data-testid="stSlider"]').filter(has_text="Zoom")
    return float(slider.locator('input[type="range"]').input_value())


def view(pg) -> dict:
    """What a student would compare: the zoom, the image caption, the models' top-5 headers."""
    text = main_text(pg)
    image = next((line for line in text.splitlines() if line.startswith("Image:")), None)
    headers = sorted(line for line in text.splitlines() if " at " in line and line.endswith("x")
                     and "resnet20" in line)
    return {"zoom": zoom_value(pg), "image": image, "headers": headers}


def test_a_shared_link_opens_the_same_view_in_a_fresh_browser(server, browser):
    teacher = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    teacher.goto(server)
    wait_for(teacher, lambda: len(probability_texts(teacher)) == 3, 90, "three models' predictions")
    # The teacher picks a sample photo, drops a model and zooms in, all with the mouse.
    teacher.get_by_text("Sample photos", exact=True).click()
    wait_for(teacher, lambda: "Image: chelsea" in main_text(teacher), 60, "the sample photo")
    sidebar = teacher.locator('[data-testid="stSidebar"]')
    sidebar.get_by_role("button", name="Remove ms_resnet20", exact=True).click()
    wait_for(teacher, lambda: len(probability_texts(teacher)) == 2, 60, "two models after removing one")
    slider = teacher.locator('[data-testid="stMain"] [data-testid="stSlider"]').filter(has_text="Zoom")
    thumb = slider.locator('input[type="range"]').locator("xpath=../..")
    thumb.scroll_into_view_if_needed()
    drag(teacher, thumb, 120)
    wait_for(teacher, lambda: zoom_value(teacher) > 1.0, 10, "the zoom to move")
    wait_for(teacher, lambda: "zoom" in parse_qs(urlparse(teacher.url).query), 30, "the zoom in the address")
    wait_for(teacher, lambda: f"at {zoom_value(teacher):.1f}x" in main_text(teacher), 60, "the tables at the zoom")
    link = teacher.url
    params = parse_qs(urlparse(link).query)
    assert params["source"] == ["Sample photos"] and params["models"] == ["resnet20", "wsms_resnet20"]
    assert not any("/" in v for vs in params.values() for v in vs), params  # no server path in a link
    shown = view(teacher)

    student = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    student.goto(link)
    wait_for(student, lambda: len(probability_texts(student)) == 2, 90, "the student's predictions")
    wait_for(student, lambda: view(student) == shown, 30, f"the same view as the teacher's {shown}")
    assert student.locator('[data-testid="stException"]').count() == 0
    # The page travels too: the teacher opens Attributions, the student follows the link.
    teacher.get_by_role("link", name="3 Attributions per stage").click()
    wait_for(teacher, lambda: "/attributions" in teacher.url and "Explaining class" in main_text(teacher), 90,
             "the attributions page")
    student.goto(teacher.url)
    wait_for(student, lambda: "Explaining class" in main_text(student), 90, "the student's attributions page")
    assert zoom_value(student) == shown["zoom"]
    photo = student.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Photo")
    assert "chelsea" in photo.inner_html()


def test_a_bad_link_falls_back_with_a_notice(server, browser):
    pg = browser.new_context().new_page()
    pg.goto(server + "/?zoom=abc&models=not_a_model&source=%2Fetc%2Fpasswd")
    wait_for(pg, lambda: len(probability_texts(pg)) == 3, 90, "the default view")
    toast = pg.locator('[data-testid="stToast"]')
    wait_for(pg, lambda: toast.count() > 0, 30, "the notice")
    text = toast.first.inner_text()
    assert "zoom=abc" in text and "models=not_a_model" in text and "default" in text
    assert zoom_value(pg) == 1.0 and pg.locator('[data-testid="stException"]').count() == 0


def test_an_upload_stays_across_pages(server, browser, tmp_path):
    pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    pg.goto(server)
    wait_for(pg, lambda: len(probability_texts(pg)) == 3, 90, "the first view")
    photo = tmp_path / "blue_square.png"
    Image.new("RGB", (90, 90), (20, 20, 220)).save(photo)
    upload_file(pg, photo)
    wait_for(pg, lambda: "Image: blue_square.png" in main_text(pg), 60, "the upload to be shown")
    pg.get_by_role("link", name="2 Receptive fields").click()
    wait_for(pg, lambda: "/receptive_fields" in pg.url, 60, "the receptive fields page")
    side = pg.locator('[data-testid="stSidebar"]')
    wait_for(pg, lambda: "Showing your upload blue_square.png" in side.inner_text(), 60, "the kept upload")
    pg.get_by_role("link", name="1 Zoom compare").click()
    wait_for(pg, lambda: "Image: blue_square.png" in main_text(pg), 60, "the upload back on page 1")
    pg.get_by_role("button", name="Clear the upload").click()
    wait_for(pg, lambda: "blue_square" not in main_text(pg) + side.inner_text(), 60, "the upload cleared")


# --- a whole view set by clicking, reopened from its address ----------------------------

def _slider(pg, label: str, where: str = "stSidebar"):
    return pg.locator(f'[data-testid="{where}"] [data-testid="stSlider"]').filter(has_text=label)


def _slider_value(pg, label: str, where: str = "stSidebar") -> float:
    return float(_slider(pg, label, where).locator('input[type="range"]').first.input_value())


def _press(pg, label: str, key: str, times: int, where: str = "stSidebar") -> None:
    """Moves a slider with the keyboard, as a visitor can (one step a press)."""
    _slider(pg, label, where).locator('input[type="range"]').first.focus()
    for _ in range(times):
        pg.keyboard.press(key)


def _pick(pg, label: str, option: str, where: str = "stSidebar") -> None:
    """Opens the selectbox ``label`` and clicks ``option``."""
    pg.locator(f'[data-testid="{where}"] [data-testid="stSelectbox"]').filter(has_text=label).click()
    pg.get_by_role("option", name=option, exact=True).click()


def _selected(pg, label: str, where: str = "stSidebar") -> str:
    """The option a selectbox shows (its combobox's text)."""
    box = pg.locator(f'[data-testid="{where}"] [data-testid="stSelectbox"]').filter(has_text=label)
    return box.locator('input[role="combobox"]').first.input_value()


def _in_link(pg, **expected) -> bool:
    q = parse_qs(urlparse(pg.url).query)
    return all(q.get(k) == (v if isinstance(v, list) else [v]) for k, v in expected.items())


def _toggle_on(pg, label: str) -> bool:
    box = pg.locator('[data-testid="stMain"] [data-testid="stCheckbox"]').filter(has_text=label)
    return box.locator("input").first.is_checked()


def _sidebar_view(pg) -> dict:
    side = pg.locator('[data-testid="stSidebar"]')
    return {"cx": _slider_value(pg, "centre x"), "cy": _slider_value(pg, "centre y"),
            "photo": _selected(pg, "Photo"), "zoom": zoom_value(pg),
            "models": [m for m in ("resnet20", "wsms_resnet20", "ms_resnet20")
                       if side.get_by_role("button", name=f"Remove {m}", exact=True).count()]}


def test_every_value_set_by_clicking_is_in_the_link(server, browser):
    """Source, photo, centre (after the source switch), zoom, models, a stage switch, then
    Receptive fields' row, column and block and Feature maps' scale and block: each address
    opened in a fresh browser context shows every value again."""
    ctx = {"viewport": {"width": 1400, "height": 1000}}
    teacher = browser.new_context(**ctx).new_page()
    teacher.goto(server)
    wait_for(teacher, lambda: len(probability_texts(teacher)) == 3, 90, "three models' predictions")
    teacher.get_by_text("Sample photos", exact=True).click()
    wait_for(teacher, lambda: "Image: chelsea" in main_text(teacher), 60, "the sample photo")
    _pick(teacher, "Photo", "rocket")
    wait_for(teacher, lambda: "Image: rocket" in main_text(teacher), 60, "the rocket")
    # The new photo's run redraws the sidebar; keys pressed while it runs can go to a slider
    # that is about to be replaced (a loaded machine showed it), so the run finishes first.
    wait_for(teacher, lambda: not teacher.locator('[data-testid="stStatusWidget"]').count(), 60, "the run to finish")
    _press(teacher, "centre x", "ArrowRight", 4)  # 0.5 -> 0.7, after the source switch
    wait_for(teacher, lambda: _in_link(teacher, cx="0.7"), 30, "the centre x in the address")
    _press(teacher, "centre y", "ArrowLeft", 2)  # 0.5 -> 0.4
    wait_for(teacher, lambda: _in_link(teacher, cy="0.4"), 30, "the centre y in the address")
    teacher.locator('[data-testid="stSidebar"]').get_by_role("button", name="Remove ms_resnet20", exact=True).click()
    wait_for(teacher, lambda: len(probability_texts(teacher)) == 2, 60, "two models")
    teacher.locator('[data-testid="stMain"] [data-testid="stCheckbox"]').filter(has_text="stage 2").locator(
        "label").first.click()
    wait_for(teacher, lambda: _in_link(teacher, stage_1="false"), 30, "the stage switch in the address")
    _press(teacher, "Zoom", "ArrowRight", 5, "stMain")  # 1.0 -> 1.5
    wait_for(teacher, lambda: _in_link(teacher, zoom="1.5"), 30, "the zoom in the address")
    wait_for(teacher, lambda: "(stage 2 off)" in main_text(teacher) and "at 1.5x" in main_text(teacher), 60,
             "the tables at 1.5x with stage 2 off")
    first = teacher.url
    assert _sidebar_view(teacher)["photo"] == "rocket"
    assert _in_link(teacher, source="Sample photos", sample="rocket", cx="0.7", cy="0.4", zoom="1.5",
                    models=["resnet20", "wsms_resnet20"], stage_1="false"), first
    shown = _sidebar_view(teacher)
    headers = view(teacher)["headers"]

    student = browser.new_context(**ctx).new_page()
    student.goto(first)
    wait_for(student, lambda: len(probability_texts(student)) == 2, 90, "the student's predictions")
    wait_for(student, lambda: _sidebar_view(student) == shown, 30, f"the teacher's sidebar {shown}")
    assert not _toggle_on(student, "stage 2") and _toggle_on(student, "stage 1")
    wait_for(student, lambda: view(student)["headers"] == headers, 30, f"the same tables {headers}")
    assert not student.locator('[data-testid="stToast"]').count()  # nothing fell back

    # Page 2: the output position and the block.
    teacher.get_by_role("link", name="2 Receptive fields").click()
    wait_for(teacher, lambda: "/receptive_fields" in teacher.url and "Output row" in main_text(teacher), 90,
             "the receptive fields page")
    assert _selected(teacher, "After block", "stMain") == "block 1"  # it opens on a block every stage has
    _press(teacher, "Output row", "ArrowLeft", 2, "stMain")  # 4 -> 2
    wait_for(teacher, lambda: _in_link(teacher, rf_row="2"), 30, "the row in the address")
    _press(teacher, "Output column", "ArrowRight", 1, "stMain")  # 4 -> 5
    wait_for(teacher, lambda: _in_link(teacher, rf_col="5"), 30, "the column in the address")
    _pick(teacher, "After block", "block 2", "stMain")
    wait_for(teacher, lambda: _in_link(teacher, rf_block="block 2"), 30, "the block in the address")
    assert _in_link(teacher, cx="0.7", cy="0.4", sample="rocket", zoom="1.5"), teacher.url
    student.goto(teacher.url)
    wait_for(student, lambda: "Output row" in main_text(student), 90, "the student's receptive fields page")
    wait_for(student, lambda: _slider_value(student, "Output row", "stMain") == 2, 30, "the row")
    assert _slider_value(student, "Output column", "stMain") == 5
    assert _selected(student, "After block", "stMain") == "block 2"
    assert _sidebar_view(student) == shown

    # Page 5: the colour scale and the block.
    teacher.get_by_role("link", name="5 Feature maps").click()
    wait_for(teacher, lambda: "/feature_maps" in teacher.url and "Colour scale" in main_text(teacher), 90,
             "the feature maps page")
    teacher.locator('[data-testid="stMain"] [data-testid="stRadio"]').filter(has_text="Colour scale").get_by_text(
        "global", exact=True).click()
    wait_for(teacher, lambda: _in_link(teacher, fm_scaling="global"), 30, "the scale in the address")
    _pick(teacher, "Block", "block 3", "stMain")
    wait_for(teacher, lambda: _in_link(teacher, fm_block="block 3"), 30, "the block in the address")
    student.goto(teacher.url)
    wait_for(student, lambda: "Colour scale" in main_text(student) and _selected(student, "Block", "stMain")
             == "block 3", 90, "the student's feature maps page on block 3")
    scale = student.locator('[data-testid="stMain"] [data-testid="stRadio"]').filter(has_text="Colour scale")
    assert scale.get_by_role("radio", name="global").is_checked()
    assert _sidebar_view(student) == shown
    assert student.locator('[data-testid="stException"]').count() == 0


def test_an_unknown_page_and_a_link_streamlit_ignores_say_so(server, browser):
    pg = browser.new_context().new_page()
    pg.goto(server + "/zoom-compare?zoom=2.0")
    wait_for(pg, lambda: "No such page" in main_text(pg), 60, "the app's own answer")
    assert "no page zoom-compare" in main_text(pg)
    pg.keyboard.press("Escape")  # Streamlit's own "Page not found" dialog comes first
    wait_for(pg, lambda: pg.locator('[role="dialog"]').count() == 0, 10, "Streamlit's dialog to close")
    pg.get_by_role("link", name="Go to the start page: 1 Zoom compare").click()
    wait_for(pg, lambda: len(probability_texts(pg)) == 3, 90, "the start page")
    long = browser.new_context().new_page()
    long.goto(server + "/?" + "&".join(["models=resnet20"] * 2000))
    wait_for(long, lambda: len(probability_texts(long)) == 3, 90, "the default view")
    # Streamlit's server drops such a query string before the app sees it; the browser says so.
    box = long.locator("#wsms-link-ignored")
    wait_for(long, lambda: box.count() > 0, 30, "the notice")
    assert "not read at all" in box.inner_text() and "2,000 parameters" in box.inner_text()
    assert "1,000" in box.inner_text()
    ok = browser.new_context().new_page()
    ok.goto(server + "/?zoom=2.0")
    wait_for(ok, lambda: len(probability_texts(ok)) == 3, 90, "a short link's view")
    assert ok.locator("#wsms-link-ignored").count() == 0


def test_a_path_of_two_segments_says_no_such_page_and_links_home(server, browser):
    # Streamlit alone answers /a/b with its HTML page, whose scripts the browser then asks
    # for under /a/ and never gets: a blank page. The app's server (wsms_viz/app/server.py)
    # answers it itself.
    pg = browser.new_context().new_page()
    response = pg.goto(server + "/a/b?zoom=2.0")
    assert response.status == 404
    assert pg.title() == "No such page" and pg.get_by_role("heading", name="No such page").count() == 1
    assert "This app has no page a/b." in pg.locator("body").inner_text()
    pg.get_by_role("link", name="Go to the start page: 1 Zoom compare").click()
    wait_for(pg, lambda: len(probability_texts(pg)) == 3, 90, "the start page")
    assert pg.url.rstrip("/") == server and main_text(pg).count("No such page") == 0
    deeper = browser.new_context().new_page()
    assert deeper.goto(server + "/lesson/a/b").status == 404
    deeper.get_by_role("link", name="Go to the start page: 1 Zoom compare").click()
    wait_for(deeper, lambda: len(probability_texts(deeper)) == 3, 90, "the start page from three segments down")


def test_under_a_base_url_path_too(browser, tmp_path):
    make_checkpoint(tmp_path / "checkpoints", "resnet20", 0, full_card=False)
    env = {**os.environ, "WSMS_CHECKPOINTS": str(tmp_path / "checkpoints"),
           "WSMS_DATA_ROOTS": f"tiny={make_dataset(tmp_path / 'data')}"}
    with running_server(env, "--server.baseUrlPath", "class") as url:
        pg = browser.new_context().new_page()
        assert pg.goto(url + "/class/a/b").status == 404 and pg.title() == "No such page"
        pg.get_by_role("link", name="Go to the start page: 1 Zoom compare").click()
        wait_for(pg, lambda: len(probability_texts(pg)) == 1, 90, "the start page under /class/")
        assert pg.url == url + "/class/"
        pg.goto(url + "/class/attributions")  # a page under the base is still the app's
        wait_for(pg, lambda: "Attributions per stage" in main_text(pg), 90, "the attributions page")
