"""End to end in a real headless Chromium (Debian's chromium, driven by Playwright; no
browser is downloaded): start `streamlit run app.py`, drag the zoom sliders, see the
predictions change, upload an image.

scripts/test.sh installs chromium when it is missing; this test fails rather than skips
without it, so CI always runs it.
"""

import os
import time

import pytest
from app_fixtures import make_checkpoint, make_dataset
from appserver import CHROMIUM_ARGS, chromium_path, running_server  # scripts/appserver.py
from PIL import Image


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    make_checkpoint(base / "checkpoints", "resnet20", 1, full_card=False)
    make_checkpoint(base / "checkpoints", "wsms_resnet20", 2, full_card=True)
    env = {**os.environ, "WSMS_CHECKPOINTS": str(base / "checkpoints"),
           "WSMS_DATA_ROOTS": f"tiny={make_dataset(base / 'data')}"}
    with running_server(env) as url:
        yield url, base


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1600})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server[0])
        yield pg
        browser.close()
        assert not errors, errors


def probability_texts(pg) -> list[str]:
    """The "P(class) = x%" line under each model's top-5 table."""
    return pg.locator('.wsms-top5 .wsms-note').all_inner_texts()


def wait_for(pg, predicate, timeout=60.0, what=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        pg.wait_for_timeout(200)
    raise AssertionError(f"timed out waiting for {what}")


def upload_file(pg, path):
    """Picks "Upload your own" and sends ``path`` through the real file input; returns the input."""
    pg.get_by_text("Upload your own").click()
    upload = pg.locator('[data-testid="stFileUploaderDropzoneInput"]')
    upload.wait_for(state="attached", timeout=30000)
    upload.set_input_files(str(path))
    return upload


def drag(pg, handle, dx: float, steps: int = 12, release: bool = True):
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pg.mouse.move(x, y)
    pg.mouse.down()
    pg.mouse.move(x + dx, y, steps=steps)
    if release:
        pg.mouse.up()


@pytest.mark.slow
def test_drag_zoom_and_upload_in_a_real_browser(page, tmp_path):
    pg = page
    wait_for(pg, lambda: len(probability_texts(pg)) == 2, what="both models' predictions")
    before = probability_texts(pg)

    # The Plotly slider animates in the browser: its frames change while the mouse is still down.
    plot = pg.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    grip = plot.locator(".slider-grip-rect")
    current = plot.locator("text.slider-label").first  # "zoom (drag me): 1.0x"
    assert "1.0x" in current.text_content()
    drag(pg, grip, 300, release=False)
    wait_for(pg, lambda: "1.0x" not in current.text_content(), 10, "the Plotly slider to follow the drag")
    pg.mouse.up()

    # The Streamlit slider reruns on release: the predictions change.
    slider = pg.locator('[data-testid="stMain"] [data-testid="stSlider"]').filter(has_text="Zoom")
    value = slider.locator('input[type="range"]')  # react-aria: a hidden range input inside the thumb
    thumb = value.locator("xpath=../..")
    thumb.scroll_into_view_if_needed()
    drag(pg, thumb, 160, release=False)
    wait_for(pg, lambda: float(value.input_value()) > 1, 10, "the zoom slider to move")
    # Still dragging: the animation already follows the Streamlit slider in the browser.
    dragged = float(value.input_value())
    wait_for(pg, lambda: current.text_content().endswith(f"{dragged:.1f}x"), 10,
             "the animation to follow the zoom slider during the drag")
    assert probability_texts(pg) == before  # the server has not been asked yet
    pg.mouse.up()
    wait_for(pg, lambda: probability_texts(pg) != before and len(probability_texts(pg)) == 2, 60,
             "the predictions to change after the zoom")
    zoom = float(value.input_value())
    assert zoom > 1.0
    wait_for(pg, lambda: f"at {zoom:.1f}x" in pg.locator('.wsms-top5 .wsms-head').all_inner_texts()
             .__str__(), 30, "the top-5 headers to show the new zoom")
    # ... and the animation in the browser moves to that zoom too, without being re-sent.
    wait_for(pg, lambda: current.text_content().endswith(f"{zoom:.1f}x"), 30, "the animation to follow the slider")

    # Upload a photo through the real file input.
    photo = tmp_path / "red_square.png"
    Image.new("RGB", (120, 80), (220, 20, 20)).save(photo)
    upload = upload_file(pg, photo)
    wait_for(pg, lambda: "red_square.png" in " ".join(pg.locator('[data-testid="stCaptionContainer"]')
                                                      .all_inner_texts()), 60, "the uploaded image to be used")
    wait_for(pg, lambda: len(probability_texts(pg)) == 2, 60, "predictions for the upload")

    # A bad upload: a message, and the app keeps working.
    bad = tmp_path / "not_really.png"
    bad.write_bytes(b"this is text, not a PNG")
    upload.set_input_files(str(bad))
    wait_for(pg, lambda: "not an image" in " ".join(pg.locator('[data-testid="stAlertContainer"]')
                                                    .all_inner_texts()), 60, "the bad-upload message")
    assert pg.locator('[data-testid="stException"]').count() == 0


def _rerun(ws_url: str, releases: list[float]) -> tuple[list[str], list[list]]:
    """Speaks Streamlit's own protocol (protobuf over the websocket, as the browser does):
    one full run, then each zoom in ``releases`` sent as the zoom slider's release. Returns
    the element types of the full run and the new elements each release got back."""
    import asyncio
    import concurrent.futures

    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async def run(ws, msg: BackMsg, page: dict) -> list:
        await ws.send(msg.SerializeToString())
        deltas = []
        while True:
            m = ForwardMsg()
            m.ParseFromString(await ws.recv())
            kind = m.WhichOneof("type")
            if kind == "new_session":
                page["hash"] = m.new_session.page_script_hash
            elif kind == "delta" and m.delta.WhichOneof("type") == "new_element":
                deltas.append(m.delta)
            elif kind == "script_finished":
                return deltas

    async def go():
        page: dict = {}
        async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None) as ws:
            first = BackMsg()
            first.rerun_script.query_string = ""
            full = await run(ws, first, page)
            zoom = next(d for d in full if d.new_element.WhichOneof("type") == "slider"
                        and d.new_element.slider.label == "Zoom")
            answers = []
            for z in releases:
                msg = BackMsg()
                msg.rerun_script.page_script_hash = page["hash"]
                msg.rerun_script.fragment_id = zoom.fragment_id
                w = msg.rerun_script.widget_states.widgets.add()
                w.id = zoom.new_element.slider.id
                w.double_array_value.data.append(z)
                answers.append(await run(ws, msg, page))
            return [d.new_element.WhichOneof("type") for d in full], answers

    # Its own thread: the module's Playwright page keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result(timeout=120)


@pytest.mark.slow
def test_a_zoom_release_does_not_send_the_animation_again(server):
    """A class shares one server: a slider release reruns only the tables that follow the
    zoom, never the 26-frame animation (serialising it on every release cost the server
    ~14 ms each time)."""
    url = server[0].replace("http://", "ws://") + "/_stcore/stream"
    full, answers = _rerun(url, [2.0, 0.7])
    assert "plotly_chart" in full
    for z, deltas in zip([2.0, 0.7], answers, strict=True):
        kinds = [d.new_element.WhichOneof("type") for d in deltas]
        assert "plotly_chart" not in kinds, kinds
        cards = [d.new_element.html.body for d in deltas
                 if d.new_element.html.body.startswith('<div class="wsms-top5">')]
        assert len(cards) == 1 and cards[0].count(f" at {z:.1f}x</p>") == 2  # both models' cards, one element
