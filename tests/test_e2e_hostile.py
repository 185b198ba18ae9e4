"""Hostile files and visitors in a real headless Chromium (scripts/appserver.py, the
``browser`` fixture of conftest.py).

1. Checkpoint folder, card, class names, ``examples.json`` labels, a dataset folder and an
   upload's name that are markdown images pointing at ``evil.test``: the browser requests
   nothing outside the app's own server (every request of the context is recorded, and any
   to another host is refused and fails the test), on the pages that show them.
2. Two visitors (two browser contexts): what one uploads and the bad link one opens are
   seen by that one only.
"""

import os
from urllib.parse import urlparse

import pytest
from app_fixtures import make_checkpoint, make_dataset
from appserver import running_server
from PIL import Image
from test_e2e import probability_texts, upload_file, wait_for
from test_hostile_visitors import EVIL, evil, hostile_tree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evil_server(tmp_path_factory):
    ckpts, data = hostile_tree(tmp_path_factory.mktemp("e2e_evil"))
    env = {**os.environ, "WSMS_CHECKPOINTS": str(ckpts), "WSMS_DATA_ROOTS": f"tiny={data}"}
    with running_server(env) as url:
        yield url


def watched(browser, server: str):
    """A page whose every request is recorded; one to any other host than the app's is refused."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    own = urlparse(server).netloc
    outside: list[str] = []

    def route(r):
        u = urlparse(r.request.url)
        if u.scheme in ("http", "https", "ws", "wss") and u.netloc != own:
            outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    ctx.route("**/*", route)
    ctx.on("request", lambda req: outside.append(req.url) if EVIL in req.url else None)
    ctx.on("websocket", lambda ws: outside.append(ws.url) if urlparse(ws.url).netloc != own else None)
    return ctx, ctx.new_page(), outside


def main_text(pg) -> str:
    """The main area's text as a visitor reads it (the invisible word joiners out)."""
    return pg.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")


def side_text(pg) -> str:
    return pg.locator('[data-testid="stSidebar"]').inner_text().replace("\u2060", "")


def test_markdown_in_names_from_files_and_uploads_fetches_nothing(evil_server, browser, tmp_path):
    ctx, pg, outside = watched(browser, evil_server)
    pg.goto(evil_server)
    wait_for(pg, lambda: len(probability_texts(pg)) >= 2, 120, "the models' predictions")
    # The class names are shown, as the characters they are.
    wait_for(pg, lambda: "![class" in main_text(pg) and f"http://{EVIL}/class" in main_text(pg), 30,
             "the class names shown as text")
    assert "![d](http:\\\\evil.test\\dir.png)" in main_text(pg)  # the folder name, as it is
    # The examples: label, predictions and the models' names from examples.json.
    pg.get_by_text("Baseline wrong, WSMS right", exact=True).click()
    wait_for(pg, lambda: "![exlabel]" in main_text(pg), 60, "the example's label as text")
    assert "![exbaseline]" in side_text(pg)
    # Pages that show card names and class names.
    for link, marker in (("3 Attributions per stage", "Explaining class"), ("6 Scale robustness", "Accuracy"),
                         ("Lesson", "Lesson")):
        pg.get_by_role("link", name=link).click()
        wait_for(pg, lambda marker=marker: marker in main_text(pg), 120, link)
        pg.wait_for_timeout(1500)
    pg.get_by_role("link", name="1 Zoom compare").click()
    wait_for(pg, lambda: len(probability_texts(pg)) >= 2, 60, "the zoom page again")
    # An upload named as markdown, good and bad.
    good = tmp_path / "good.png"
    Image.new("RGB", (60, 60), (10, 200, 10)).save(good)
    upload = upload_file(pg, good)
    upload.set_input_files(files=[{"name": evil("up") + ".png", "mimeType": "image/png", "buffer": good.read_bytes()}])
    wait_for(pg, lambda: "![up](" in main_text(pg), 60, "the upload's name as text")
    upload.set_input_files(files=[{"name": evil("bad") + ".png", "mimeType": "image/png", "buffer": b"no image" * 9}])
    wait_for(pg, lambda: "![bad](" in side_text(pg), 60, "the bad upload's message with its name as text")
    pg.wait_for_timeout(1500)
    assert pg.locator('[data-testid="stException"]').count() == 0
    made = pg.locator(f'img[src*="{EVIL}"], a[href*="{EVIL}"]')
    assert made.count() == 0, [made.nth(i).evaluate("e => e.outerHTML") for i in range(made.count())]
    ctx.close()
    assert outside == [], f"the browser requested outside the app: {outside}"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e_two")
    for i, name in enumerate(("resnet20", "wsms_resnet20")):
        make_checkpoint(base / "checkpoints", name, i, full_card=False)
    env = {**os.environ, "WSMS_CHECKPOINTS": str(base / "checkpoints"),
           "WSMS_DATA_ROOTS": f"tiny={make_dataset(base / 'data')}"}
    with running_server(env) as url:
        yield url


def image_line(pg) -> str | None:
    """The "Image: ..." caption: which image this visitor's page shows."""
    return next((line for line in main_text(pg).splitlines() if line.startswith("Image:")), None)


def test_one_visitors_upload_and_bad_link_stay_in_that_visitors_session(plain_server, browser, tmp_path):
    a = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    b = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    b.goto(plain_server)
    wait_for(b, lambda: len(probability_texts(b)) == 2, 120, "visitor B's first view")
    b_image = image_line(b)
    # Visitor A opens a bad link (a notice), then uploads a photo.
    a.goto(plain_server + "/?zoom=abc&models=not_a_model")
    wait_for(a, lambda: len(probability_texts(a)) == 2, 120, "visitor A's default view")
    wait_for(a, lambda: a.locator('[data-testid="stToast"]').count() > 0, 30, "A's notice")
    photo = tmp_path / "visitor_a_secret.png"
    Image.new("RGB", (80, 80), (220, 20, 20)).save(photo)
    upload_file(a, photo)
    wait_for(a, lambda: "Image: visitor_a_secret.png" in main_text(a), 60, "A's upload")
    # Visitor B, meanwhile and after a reload, sees neither.
    b.wait_for_timeout(1000)
    assert "visitor_a_secret" not in main_text(b) + side_text(b)
    assert b.locator('[data-testid="stToast"]').count() == 0 and image_line(b) == b_image
    assert "zoom=abc" not in b.url and "not_a_model" not in b.url
    b.get_by_text("Upload your own").click()
    wait_for(b, lambda: "stays in this browser session" in side_text(b), 60, "B's empty upload source")
    assert "visitor_a_secret" not in main_text(b) + side_text(b)
    b.reload()
    wait_for(b, lambda: "Upload your own" in side_text(b), 120, "B reloaded")
    b.wait_for_timeout(1500)
    assert "visitor_a_secret" not in main_text(b) + side_text(b)
    assert b.locator('[data-testid="stToast"]').count() == 0
    # And A still has it.
    a.get_by_role("link", name="2 Receptive fields").click()
    wait_for(a, lambda: "Showing your upload visitor_a_secret.png" in side_text(a), 60, "A's kept upload")
