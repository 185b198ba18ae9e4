"""Layout and offline checks in a real headless Chromium: with four models and
multi-scale averaging the six top-5 tables do not overlap and no percentage wraps under
its bar, at a projector's 1024x768 and at 1400x900; the page makes no request outside
its own server (the favicon is a bundled file, not a font CDN's icon); an SVG upload is
answered in the main area with the formats that work. Out of presenter view, Zoom
compare's first screen at 1400x900 holds the zoomed image, the slider and every top
guess. Presenter view: at 1280x720 the zoom page's first screen holds the image, the
slider, every top guess and the verdict; every page, walked at 1280x720 and 1024x768,
opens with its figure on the first screen, the sidebar collapsed (its first widget the
switch), the link's presenter=true kept, no text under 16 px in the main area or the
sidebar, and no two boxes, plot texts or labels overlapping or cut off.

Same server and browser set-up as tests/test_e2e.py.
"""

import os
import shutil

import pytest
from app_fixtures import make_checkpoints, make_dataset
from appserver import running_server
from test_e2e import drag, wait_for

from wsms_viz.app.navigation import PAGES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e_layout")
    ckpts = base / "checkpoints"
    make_checkpoints(ckpts)  # wsms_resnet20's card has the curve: Scale robustness draws its chart
    shutil.copytree(ckpts / "resnet20", ckpts / "resnet20_jitter")  # a second plain CNN: averaged too
    env = {**os.environ, "WSMS_CHECKPOINTS": str(ckpts), "WSMS_DATA": str(make_dataset(base / "data"))}
    with running_server(env) as url:
        yield url


# Every top-5 table's box, and for every row whether its probability cell is on one line.
_TABLES = """() => {
  const tables = [...document.querySelectorAll('[data-testid="stMain"] .wsms-top5 table')]
    .filter(t => t.innerText.includes('probability'));
  const boxes = tables.map(t => { const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });
  const spread = tables.flatMap(t => [...t.tBodies[0].rows].map(tr => {
    const range = document.createRange(); range.selectNodeContents(tr.cells[2]);
    const mids = [...range.getClientRects()].map(r => (r.top + r.bottom) / 2);
    return Math.max(...mids) - Math.min(...mids);
  }));
  return {boxes, spread};
}"""


def _intersect(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


@pytest.mark.parametrize("viewport,presenter", [((1024, 768), False), ((1400, 900), False), ((1024, 768), True)])
def test_six_top5_tables_neither_overlap_nor_wrap(server, browser, viewport, presenter):
    pg = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    outside = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)
    pg.goto(server + ("/?presenter=true" if presenter else ""))
    tables = lambda: pg.evaluate(_TABLES)  # noqa: E731
    wait_for(pg, lambda: len(tables()["boxes"]) == 4, 90, "four models' top-5 tables")
    pg.get_by_text("Multi-scale averaging", exact=True).click()
    wait_for(pg, lambda: len(tables()["boxes"]) == 6, 90, "six tables with the averaging on")
    text = pg.locator('[data-testid="stMain"]').inner_text()
    if presenter:  # each averaged model's top guess is named "+ multi-scale" on the first screen instead
        def drawn():
            got = pg.evaluate(_FIRST_SCREEN)
            return len(got["top1"]) == 6 and got["image"] and got["slider"] and got["verdict"]
        wait_for(pg, drawn, 30, "six top guesses beside the image and the slider")
        pg.wait_for_timeout(500)
        assert "resnet20_jitter + multi-scale" in text
    else:
        assert "Averaged:" in text and "resnet20_jitter" in text.split("Averaged:")[1][:200]
    got = tables()
    boxes = got["boxes"]
    if presenter:  # the first screen's parts neither overlap each other nor the tables under them
        first = pg.evaluate(_FIRST_SCREEN)
        parts = [first["image"], first["slider"], *first["top1"], first["verdict"]]
        assert all(parts) and first["image"][2] - first["image"][0] >= 300, first
        for i in range(len(parts)):
            for j in range(i + 1, len(parts)):
                assert not _intersect(parts[i], parts[j]), ("first screen", i, j, parts[i], parts[j])
        assert all(not _intersect(first["screen"], b) for b in boxes), (first["screen"], boxes)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not _intersect(boxes[i], boxes[j]), (viewport, i, j, boxes[i], boxes[j])
    main = pg.locator('[data-testid="stMain"]').bounding_box()
    assert all(b[2] <= main["x"] + main["width"] + 0.5 for b in boxes), "a table runs off the page"
    assert len(got["spread"]) == 30 and max(got["spread"]) < 8, got["spread"]  # bar and % on one line
    pg.wait_for_timeout(1000)  # the favicon and any late request
    assert not outside, f"requests leave the server: {outside}"
    pg.close()


# Presenter view's first screen on the zoom page: the boxes of the network's input image,
# the zoom slider, each top guess and the verdict (each null when missing), and of the block.
_FIRST_SCREEN = """() => {
  const box = e => {
    if (!e) return null;
    const r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  const one = s => box(document.querySelector(s));
  return {
    screen: one('.st-key-presenter_screen'),
    image: one('.st-key-presenter_image .wsms-input img'),
    slider: one('.st-key-presenter_answers [data-testid="stSlider"]'),
    top1: [...document.querySelectorAll('.st-key-presenter_top1 .wsms-top1')].map(box),
    guess: [...document.querySelectorAll('.st-key-presenter_top1 .wsms-top1')].map(e => e.innerText),
    verdict: one('.st-key-presenter_answers [data-testid="stAlertContainer"]'),
  };
}"""

# The computed size of every piece of text in the main area's Plotly charts, and how many charts.
_PLOT_TEXT = """() => {
  const charts = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')];
  const texts = charts.flatMap(c => [...c.querySelectorAll('svg text')]).filter(t => t.textContent.trim());
  return {charts: charts.length, sizes: texts.map(t => parseFloat(getComputedStyle(t).fontSize)),
          small: texts.filter(t => parseFloat(getComputedStyle(t).fontSize) < 16).map(t => t.textContent).slice(0, 10)};
}"""


def _guess_px(pg) -> float:
    return float(pg.evaluate("getComputedStyle(document.querySelector('.wsms-top1 .guess')).fontSize")[:-2])


def _inside(b, width, height) -> bool:
    return b is not None and b[0] >= -0.5 and b[1] >= -0.5 and b[2] <= width + 0.5 and b[3] <= height + 0.5


def test_presenter_view_shows_image_zoom_and_every_top_guess_on_the_first_screen(server, browser):
    # A projector at 1280x720, opened by link.
    pg = browser.new_page(viewport={"width": 1280, "height": 720})
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + "/?presenter=true")
    first = lambda: pg.evaluate(_FIRST_SCREEN)  # noqa: E731
    wait_for(pg, lambda: len(first()["top1"]) == 4, 90, "each of the four models' top guess")
    wait_for(pg, lambda: pg.evaluate(_PLOT_TEXT)["charts"] == 1 and pg.evaluate(_PLOT_TEXT)["sizes"], 90,
             "the zoom animation")
    assert pg.locator('[data-testid="stSidebar"]').bounding_box()["x"] < 0  # collapsed: the width is the figures'
    got = first()
    assert got["image"][2] - got["image"][0] >= 300, got["image"]  # CSS pixels
    for name in ("image", "slider", "verdict"):
        assert _inside(got[name], 1280, 720), (name, got[name])
    for b, text in zip(got["top1"], got["guess"], strict=True):
        assert _inside(b, 1280, 720) and "%" in text, (text, b)
    assert _guess_px(pg) >= 24
    plot = pg.evaluate(_PLOT_TEXT)
    assert min(plot["sizes"]) >= 16, plot["small"]
    # A release reruns only the fragment: the same slider, the lines follow, the style stays.
    before = got["guess"]
    value = pg.locator('.st-key-presenter_answers [data-testid="stSlider"] input[type="range"]')
    drag(pg, value.locator("xpath=../.."), 120)  # the thumb, as tests/test_e2e.py drags it
    wait_for(pg, lambda: float(value.input_value()) > 1, 10, "the zoom slider to move")
    zoom = f"{float(value.input_value()):.1f}x"
    wait_for(pg, lambda: f"at {zoom}" in pg.locator(".st-key-presenter_image").inner_text(), 30, "the image's zoom")
    wait_for(pg, lambda: f"resnet20 at {zoom}" in pg.locator('[data-testid="stMain"]').inner_text(), 30, "the tables")
    assert len(first()["top1"]) == 4 and first()["guess"] != before
    assert _guess_px(pg) >= 24  # presenter view's style outlives the fragment's rerun
    assert _inside(first()["verdict"], 1280, 720)
    # The link's presenter view holds on the other pages: their charts' text too.
    pg.locator('[data-testid="stExpandSidebarButton"]').click()  # the collapsed sidebar holds the pages
    pg.get_by_text("4 Integration layer").click()
    wait_for(pg, lambda: pg.evaluate(_PLOT_TEXT)["charts"] >= 4, 120, "the integration page's charts")
    pg.wait_for_timeout(500)
    assert "presenter=true" in pg.url
    plot = pg.evaluate(_PLOT_TEXT)
    assert min(plot["sizes"]) >= 16, plot["small"]
    assert pg.locator('[data-testid="stException"]').count() == 0 and not errors, errors
    pg.close()


def test_svg_upload_is_answered_in_the_main_area(server, browser, tmp_path):
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    pg.goto(server)
    pg.get_by_text("Upload your own").click()
    upload = pg.locator('[data-testid="stFileUploaderDropzoneInput"]')
    upload.wait_for(state="attached", timeout=30000)
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>')
    upload.set_input_files(str(svg))
    main_alerts = lambda: " ".join(pg.locator('[data-testid="stMain"] [data-testid="stAlertContainer"]')  # noqa: E731
                                   .all_inner_texts())
    wait_for(pg, lambda: "SVG" in main_alerts(), 60, "the SVG message in the main area")
    assert "PNG" in main_alerts() and "JPEG" in main_alerts()
    assert pg.locator('[data-testid="stException"]').count() == 0
    pg.close()


def test_scale_robustness_tables_show_every_row(server, browser):
    pg = browser.new_page(viewport={"width": 1024, "height": 768})
    pg.goto(server + "/scale_robustness")
    pg.get_by_text("The paper's Tables 1 and 2 beside our counts").click()
    grids = '[data-testid="stMain"] [data-testid="stDataFrame"] .dvn-scroller'
    wait_for(pg, lambda: pg.locator(grids).count() >= 2, 90, "the cost tables")
    pg.wait_for_timeout(1000)
    sizes = pg.evaluate(f"() => [...document.querySelectorAll('{grids}')].map(s => [s.scrollHeight, s.clientHeight])")
    assert all(h <= c + 1 for h, c in sizes), f"a table scrolls inside itself: {sizes}"
    pg.close()


# For each stage toggle on the zoom page: its label's text, the width of the box that clips
# it (Streamlit's markdown container, overflow hidden) and the text's own width.
_STAGE_LABELS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stCheckbox"]')]
  .map(t => [...t.querySelectorAll('p')].find(p => p.innerText.startsWith('stage')))
  .filter(p => p)
  .map(p => ({text: p.innerText, full: p.getBoundingClientRect().width,
              shown: p.closest('[data-testid="stMarkdownContainer"]').getBoundingClientRect().width}))"""


def test_every_stage_toggle_shows_its_label_at_1024(server, browser):
    pg = browser.new_page(viewport={"width": 1024, "height": 768})
    pg.goto(server)
    wait_for(pg, lambda: len(pg.evaluate(_STAGE_LABELS)) == 3, 90, "three stage toggles")
    for label in pg.evaluate(_STAGE_LABELS):
        assert label["shown"] >= label["full"] - 1 and label["shown"] > 20, label  # not cut off, not hidden
    pg.close()


# What a page shows a projector, measured in the page: texts under 16 px (main area, and
# the sidebar when it is open), overlapping element boxes, boxes past the right edge or
# text clipped by its box, plot texts that overlap, leave their chart or spill out of the
# box drawn around them, and the top of the first figure (a chart or an image).
_AUDIT = """() => {
  const vw = window.innerWidth;
  const R = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const visible = e => {
    const r = e.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    for (let a = e; a && a.nodeType === 1; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.display === 'none' || s.visibility === 'hidden' || s.opacity === '0') return false;
    }
    return !e.closest('details:not([open]) > :not(summary)');
  };
  const name = e => (e.innerText || e.textContent || e.value || '').trim().slice(0, 60);
  const hit = (a, b) => a[0] < b[2] - 1 && b[0] < a[2] - 1 && a[1] < b[3] - 1 && b[1] < a[3] - 1;
  const typed = e => e.tagName === 'INPUT' && !['range', 'file', 'checkbox', 'radio'].includes(e.type)
    && (e.value || e.placeholder);
  const out = {small: [], overlaps: [], cut: [], plot: [], figureTop: null};
  for (const area of ['stMain', 'stSidebar']) {
    const root = document.querySelector(`[data-testid="${area}"]`);
    if (!root || (area === 'stSidebar' && root.getBoundingClientRect().right < 50)) continue;  // collapsed
    for (const e of root.querySelectorAll('*')) {
      const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()) || typed(e);
      if (!own || !visible(e)) continue;
      const px = parseFloat(getComputedStyle(e).fontSize);
      if (px < 15.9) out.small.push([area, px, e.tagName, e.closest('[data-testid]')?.dataset.testid, name(e)]);
    }
  }
  const main = document.querySelector('[data-testid="stMain"]');
  const right = Math.min(vw, main.getBoundingClientRect().right);
  const leaves = [...main.querySelectorAll('[data-testid="stElementContainer"]')]
    .filter(e => visible(e) && !e.querySelector('[data-testid="stElementContainer"]'));
  const boxes = leaves.map(e => ({box: R(e), what: (e.firstElementChild?.dataset.testid || '') + ': ' + name(e)}));
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++)
      if (hit(boxes[i].box, boxes[j].box)) out.overlaps.push([boxes[i].what, boxes[j].what]);
  for (const b of boxes) if (b.box[2] > right + 1) out.cut.push(['past the right edge', b.what, b.box]);
  for (const e of main.querySelectorAll('p, span, label, div, h1, h2, h3, summary, li, td, th')) {
    if (!visible(e) || e.closest('.js-plotly-plot, [data-testid="stDataFrame"]')) continue;
    const s = getComputedStyle(e);
    const clips = s.overflowX === 'hidden' || s.overflowX === 'clip' || s.textOverflow === 'ellipsis';
    if (clips && e.scrollWidth > e.clientWidth + 1 && e.innerText.trim())
      out.cut.push(['clipped', e.tagName, e.dataset.testid || '', name(e), e.scrollWidth, e.clientWidth]);
  }
  for (const [k, c] of [...main.querySelectorAll('.js-plotly-plot')].filter(visible).entries()) {
    const frame = R(c.querySelector('svg.main-svg'));
    const texts = [...c.querySelectorAll('svg text')]
      .filter(t => t.textContent.trim() && visible(t) && !t.closest('.hoverlayer'));
    const tb = texts.map(t => ({box: R(t), what: t.textContent.trim().slice(0, 40)}));
    for (const t of tb) {
      const [l, tp, r, b] = t.box;
      if (l < frame[0] - 1 || r > frame[2] + 1 || tp < frame[1] - 1 || b > frame[3] + 1 || r > right + 1)
        out.plot.push([k, 'outside the chart', t.what, t.box.map(Math.round), frame.map(Math.round)]);
    }
    for (let i = 0; i < tb.length; i++)
      for (let j = i + 1; j < tb.length; j++)
        if (hit(tb[i].box, tb[j].box)) out.plot.push([k, 'texts overlap', tb[i].what, tb[j].what]);
    const rects = [...c.querySelectorAll('.shapelayer path')].map(R).filter(b => b[2] - b[0] > 10 && b[3] - b[1] > 10);
    for (const t of c.querySelectorAll('.annotation')) {
      const b = R(t.querySelector('text') || t), cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
      const box = rects.find(r => r[0] <= cx && cx <= r[2] && r[1] <= cy && cy <= r[3]);
      if (box && (b[0] < box[0] - 1 || b[2] > box[2] + 1 || b[1] < box[1] - 1 || b[3] > box[3] + 1))
        out.plot.push([k, 'text spills out of its box', t.textContent.trim().slice(0, 40)]);
    }
  }
  const first = [...main.querySelectorAll('.js-plotly-plot, [data-testid="stImage"] img, .wsms-input img')]
    .filter(visible)[0];
  out.figureTop = first ? first.getBoundingClientRect().top : null;
  const side = document.querySelector('[data-testid="stSidebar"]');
  out.sidebar = side ? R(side) : null;
  return out;
}"""


def _settled(pg, timeout=120) -> None:
    """Waits until the page has run (a chart or image drawn, no spinner, no running status)."""
    def done():
        drawn = '[data-testid="stMain"] :is(.js-plotly-plot, [data-testid="stImage"] img, .wsms-input img)'
        return (pg.locator(drawn).count()
                and not pg.locator('[data-testid="stSpinner"]').count()
                and not pg.locator('[data-testid="stStatusWidget"]').count())
    wait_for(pg, done, timeout, "the page to run")
    pg.wait_for_timeout(1500)  # charts finish drawing


def _problems(audit: dict) -> list:
    return [(k, x) for k in ("small", "overlaps", "cut", "plot") for x in audit[k]]


@pytest.mark.parametrize("viewport", [(1280, 720), (1024, 768)])
@pytest.mark.parametrize("page", [p.key for p in PAGES])
def test_presenter_view_every_page_is_projector_ready(server, browser, page, viewport):
    w, h = viewport
    ctx = browser.new_context(viewport={"width": w, "height": h})  # fresh: no sidebar state kept
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{server}/{'' if page == 'zoom_compare' else page}?presenter=true")
    _settled(pg)
    assert "presenter=true" in pg.url, pg.url
    got = pg.evaluate(_AUDIT)
    if page != "lesson":  # the Lesson draws no sidebar of its own
        assert got["sidebar"][2] <= 1, f"the sidebar is open: {got['sidebar']}"
    if viewport == (1280, 720):
        top = got["figureTop"]
        assert top is not None and top < h - 40, top
    assert not _problems(got), _problems(got)[:12]
    if page != "lesson":
        pg.locator('[data-testid="stExpandSidebarButton"]').click()
        toggle = pg.locator('[data-testid="stSidebar"] [data-testid="stCheckbox"]').filter(has_text="Presenter view")
        wait_for(pg, lambda: toggle.count() == 1 and toggle.bounding_box()["x"] >= 0, 30, "the sidebar to open")
        pg.wait_for_timeout(600)  # its slide-in
        box = toggle.bounding_box()
        assert box["y"] + box["height"] <= h, box  # the switch is on the first screen of the sidebar
        side = pg.evaluate(_AUDIT)
        assert not side["small"], side["small"][:12]
    assert pg.locator('[data-testid="stException"]').count() == 0 and not errors, errors
    ctx.close()


def test_zoom_compare_first_screen_out_of_presenter_view(server, browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    pg.goto(server)
    first = lambda: pg.evaluate(_FIRST_SCREEN)  # noqa: E731
    wait_for(pg, lambda: len(first()["top1"]) == 4 and first()["image"], 90, "the image and the four top guesses")
    pg.wait_for_timeout(1000)
    got = first()
    assert got["image"][2] - got["image"][0] >= 200, got["image"]
    for name in ("image", "slider"):
        assert _inside(got[name], 1400, 900), (name, got[name])
    for b, text in zip(got["top1"], got["guess"], strict=True):
        assert _inside(b, 1400, 900) and "%" in text, (text, b)
    parts = [got["image"], got["slider"], *got["top1"]]
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            assert not _intersect(parts[i], parts[j]), (i, j, parts[i], parts[j])
    pg.close()
