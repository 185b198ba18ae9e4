"""Links and the session in a real headless Chromium (issue 12): what a visitor does is in
the address bar, and that address opened in a fresh browser (a new context: no cookies, no
session) shows the same zoom, image and models; an upload stays while the visitor
switches pages; a bad link falls back with a notice.

Same server and browser set-up as tests/test_e2e.py.
"""

import os
from urllib.parse import parse_qs, urlparse

import pytest
from app_fixtures import make_checkpoint, make_dataset
from appserver import running_server
from PIL import Image
from test_e2e import drag, probability_texts, upload_file, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e_links")
    for i, name in enumerate(("resnet20", "wsms_resnet20", "ms_resnet20")):
        make_checkpoint(base / "checkpoints", name, i, full_card=name == "wsms_resnet20")
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
