"""A class on one server: `python benchmarks/class_load.py --sessions 1 10 30`.

For each N it starts `streamlit run app.py`, opens N browser sessions at once (one
headless Chromium, Debian's, driven by Playwright; each session its own browser context,
so its own Streamlit session and renderer process), waits until every one shows the zoom
page, then has every session drag the Zoom slider and release it ``--releases`` times,
all at the same time, with ``--pause`` seconds (jittered) between a session's releases,
as students would. It prints:

* p50 / p95 / max latency from the release (the ``pointerup`` event, timed inside the page)
  to the page showing the new zoom in every top-5 header, and in the animation when it is
  on screen (``--viewport``: at the default 1400x900, a laptop's, it is below the first
  screen and moves when scrolled to; at 1400x1600 it is in view and moves at each release);
* the server's CPU seconds per update and its resident memory (RSS, and the peak) at
  the end, read from ``/proc`` of the server process;
* the CPU the browsers (Chromium and the Playwright driver) used over the same window:
  on one machine they share the cores with the server, so part of the latency is theirs;
* the 1-minute load average at the end: everything else the machine was running.

``--no-browser`` replaces the browsers by clients that speak Streamlit's protocol (protobuf
over the websocket) and render nothing: the same releases, so the figures show what the
server alone answers, and the difference what rendering in N browsers on the same cores
adds.

It uses the checkpoints and datasets the app finds by default (``checkpoints/``,
``WSMS_DATA_ROOTS`` or ``../shared/datasets/cifar10-jpeg``), the first four models as the
app selects them. ``--app DIR`` serves another checkout (a before/after on one machine).
``--gc`` runs the server with ``runner.postScriptGC = true`` (Streamlit's default) for
comparison. Linux only (``/proc``). Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import appserver  # noqa: E402  (scripts/appserver.py: start the app, find Chromium)

# Thirty pages in one browser: none may be throttled as a background tab.
CHROMIUM_ARGS = [*appserver.CHROMIUM_ARGS, "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]
TICK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- /proc: CPU time and memory of a process tree ---------------------------------------

def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid: int, exclude: set[int] = frozenset()) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        if p in exclude:
            continue
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def kind(pid: int) -> str:
    """What a process of the browser tree is: a Chromium ``renderer``, its ``gpu`` process
    (software compositing: --disable-gpu), the ``browser`` (with its utility processes:
    network, storage) or the Playwright ``driver`` (node) that sends the mouse events."""
    try:
        # Split on spaces too: Chromium rewrites its children's command line as one string.
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        return "gone"
    exe = Path(cmd[0].decode(errors="replace")).name
    if "chrom" not in exe:
        return "driver" if exe == "node" or "playwright" in b" ".join(cmd).decode(errors="replace") else "other"
    for arg in cmd:
        if arg.startswith(b"--type="):
            t = arg[7:].decode()
            return {"renderer": "renderer", "gpu-process": "gpu"}.get(t, "browser")
    return "browser"


def cpu_by_kind(pids: list[int]) -> dict[str, float]:
    """CPU seconds of ``pids`` summed by :func:`kind`."""
    out: dict[str, float] = {}
    for p in pids:
        k = kind(p)
        out[k] = out.get(k, 0.0) + cpu_seconds([p])
    return out


def memory_mb(pid: int) -> tuple[float, float]:
    """``(RSS, peak RSS)`` of one process in MB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


# --- the server -------------------------------------------------------------------------

def start_server(port: int, gc: bool, app: Path = REPO) -> subprocess.Popen:
    return appserver.start_server(port, None, "--runner.postScriptGC", "true" if gc else "false", app_dir=app)


# --- one student ------------------------------------------------------------------------

# Records when the mouse button goes up, in the page's own clock (pointerup: the slider
# cancels pointerdown, and then the browser sends no mouseup).
_LISTEN = """() => { window.__up = 0;
  document.addEventListener('pointerup', () => { window.__up = performance.now(); }, true); }"""

# Resolves with the ms from the last pointerup to the page showing zoom z: every top-5
# header ends " at <z>x", and the animation's slider label too while the animation is on
# screen (off screen it is moved when it scrolls into view). Text is read with textContent,
# which needs no layout: the measurement adds little to the CPU it measures.
_HEADS = """[...document.querySelectorAll('.wsms-top5 .wsms-head, [data-testid="stMarkdownContainer"] p')]
    .map(p => p.textContent).filter(t => / at \\d\\.\\dx$/.test(t))"""
_UPDATED = """(z) => new Promise((resolve) => {
  const done = () => {
    const heads = __HEADS__;
    const label = document.querySelector('.js-plotly-plot text.slider-label');
    const plot = label && label.closest('.js-plotly-plot').getBoundingClientRect();
    const inView = plot && plot.top < window.innerHeight && plot.bottom > 0;
    return heads.length > 0 && heads.every(t => t.endsWith(' at ' + z + 'x'))
      && label && (!inView || label.textContent.endsWith(z + 'x'));
  };
  const finish = () => { obs.disconnect(); clearInterval(tick); resolve(performance.now() - window.__up); };
  const check = () => { if (done()) finish(); };
  const obs = new MutationObserver(check);
  const tick = setInterval(check, 100);
  obs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
  check();
})""".replace("__HEADS__", _HEADS)

_READY = """(n) => {
  const heads = __HEADS__;
  return heads.length >= n && document.querySelector('.js-plotly-plot text.slider-label') !== null;
}""".replace("__HEADS__", _HEADS)


async def open_session(browser, url: str, models: int, viewport: tuple[int, int] = (1400, 900)):
    ctx = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    pg = await ctx.new_page()
    await pg.goto(url, timeout=600_000)
    await pg.wait_for_function(_READY, arg=models, polling=500, timeout=900_000)
    await pg.evaluate(_LISTEN)
    return ctx, pg


async def student(pg, releases: int, pause: float, rng: random.Random, out: list[float], missed: list[int]):
    slider = pg.locator('[data-testid="stMain"] [data-testid="stSlider"]').filter(has_text="Zoom")
    value = slider.locator('input[type="range"]')
    thumb = value.locator("xpath=../..")
    await thumb.scroll_into_view_if_needed()
    track = await slider.locator('[data-orientation="horizontal"]').nth(1).bounding_box()
    last = await value.input_value()
    for _ in range(releases):
        await asyncio.sleep(pause * rng.uniform(0.5, 1.5))
        box = await thumb.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        target = rng.uniform(0.6, 2.9)
        await pg.mouse.move(x, y)
        await pg.mouse.down()
        await pg.mouse.move(track["x"] + track["width"] * (target - 0.5) / 2.5, y, steps=6)
        z = f"{float(await value.input_value()):.1f}"
        await pg.mouse.up()
        if z == last:  # the thumb did not move: no update to wait for
            missed.append(1)
            continue
        out.append(await pg.evaluate(_UPDATED, z))
        last = z


# --- the same students without browsers: Streamlit's own protocol over a websocket -----

def shows_zoom(element, z: float) -> bool:
    """Whether a new element is a top-5 header at zoom ``z`` (the cards' HTML, or a
    markdown header as an older checkout draws it)."""
    return (f" at {z:.1f}x</p>" in element.html.body if element.WhichOneof("type") == "html"
            else element.markdown.body.endswith(f" at {z:.1f}x"))


async def protocol_student(url: str, releases: int, pause: float, rng: random.Random, out: list[float],
                           missed: list[int], ready: asyncio.Barrier):
    """One session as the browser speaks to the server (protobuf over the websocket),
    with nothing to render: a release is the zoom slider's new value sent as a rerun of
    its fragment; done when the server reports that run finished, having sent the top-5
    headers at the new zoom."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async def run(ws, state: BackMsg) -> list:
        await ws.send(state.SerializeToString())
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

    page: dict = {}
    async with websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=600) as ws:
        first = BackMsg()
        first.rerun_script.query_string = ""
        for d in await run(ws, first):
            el = d.new_element
            if el.WhichOneof("type") == "slider" and el.slider.label == "Zoom":
                slider, fragment = el.slider.id, d.fragment_id
        await ready.wait()
        for _ in range(releases):
            await asyncio.sleep(pause * rng.uniform(0.5, 1.5))
            z = round(rng.uniform(0.6, 2.9), 1)
            msg = BackMsg()
            msg.rerun_script.page_script_hash = page["hash"]
            msg.rerun_script.fragment_id = fragment
            w = msg.rerun_script.widget_states.widgets.add()
            w.id = slider
            w.double_array_value.data.append(z)
            t = time.perf_counter()
            deltas = await run(ws, msg)
            if not any(shows_zoom(d.new_element, z) for d in deltas):
                missed.append(1)
                continue
            out.append(1000 * (time.perf_counter() - t))


async def run_protocol(n: int, releases: int, pause: float, gc: bool, seed: int, app: Path = REPO) -> dict:
    port = appserver.free_port()
    server = start_server(port, gc, app)
    try:
        url = f"ws://127.0.0.1:{port}/_stcore/stream"
        lat: list[float] = []
        missed: list[int] = []
        ready = asyncio.Barrier(n + 1)
        t = time.perf_counter()
        tasks = [asyncio.create_task(protocol_student(url, releases, pause, random.Random(seed + i), lat, missed,
                                                      ready)) for i in range(n)]
        await ready.wait()
        load_s = time.perf_counter() - t
        s0, b0, t0 = cpu_seconds([server.pid]), cpu_seconds([os.getpid()]), time.perf_counter()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
        s1, b1 = cpu_seconds([server.pid]), cpu_seconds([os.getpid()])
        rss, peak = memory_mb(server.pid)
        load = os.getloadavg()[0]
    finally:
        appserver.stop(server)
    return _summary(n, lat, missed, load_s, wall, s1 - s0, b1 - b0, rss, peak, load)


def _summary(n, lat, missed, load_s, wall, server_cpu, client_cpu, rss, peak, load, by_kind=None) -> dict:
    lat = sorted(lat)
    per = {k: v / max(1, len(lat)) for k, v in (by_kind or {}).items()}
    return dict(n=n, updates=len(lat), missed=len(missed), load_s=load_s, wall=wall, per_kind=per,
                p50=statistics.median(lat), p95=lat[min(len(lat) - 1, int(0.95 * len(lat)))], max=lat[-1],
                server_cpu=server_cpu / max(1, len(lat)), server_util=server_cpu / wall,
                browser_util=client_cpu / wall, browser_cpu=client_cpu / max(1, len(lat)), rss=rss, peak=peak,
                load=load)


async def run_class(n: int, releases: int, pause: float, models: int, gc: bool, seed: int, app: Path = REPO,
                    viewport: tuple[int, int] = (1400, 900)) -> dict:
    from playwright.async_api import async_playwright

    port = appserver.free_port()
    server = start_server(port, gc, app)
    try:
        url = f"http://127.0.0.1:{port}/"
        chromium = appserver.chromium_path()
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            t = time.perf_counter()
            # Open them a few at a time: 30 first loads at once time out on 2 cores.
            sessions = []
            for i in range(0, n, 5):
                sessions += await asyncio.gather(*(open_session(browser, url, models, viewport)
                                                   for _ in range(min(5, n - i))))
            load_s = time.perf_counter() - t
            browsers = lambda: tree(os.getpid(), exclude={server.pid})  # noqa: E731
            s0, b0, t0 = cpu_seconds([server.pid]), cpu_by_kind(browsers()), time.perf_counter()
            lat: list[float] = []
            missed: list[int] = []
            await asyncio.gather(*(student(pg, releases, pause, random.Random(seed + i), lat, missed)
                                   for i, (_, pg) in enumerate(sessions)))
            wall = time.perf_counter() - t0
            s1, b1 = cpu_seconds([server.pid]), cpu_by_kind(browsers())
            rss, peak = memory_mb(server.pid)
            load = os.getloadavg()[0]
            await browser.close()
    finally:
        appserver.stop(server)
    by_kind = {k: b1.get(k, 0.0) - b0.get(k, 0.0) for k in b1}
    return _summary(n, lat, missed, load_s, wall, s1 - s0, sum(by_kind.values()), rss, peak, load, by_kind)


def _browser_cell(per: dict[str, float]) -> str:
    """Chromium's CPU per release: all its processes, then split by kind."""
    if not per:
        return "-"
    ms = {k: 1000 * per.get(k, 0.0) for k in ("renderer", "gpu", "browser")}
    return f"{sum(ms.values()):.0f} ({ms['renderer']:.0f} / {ms['gpu']:.0f} / {ms['browser']:.0f})"


def _driver_cell(per: dict[str, float]) -> str:
    """What drives the browsers (Playwright's node driver and this Python process): not a
    student's cost, but it shares the cores."""
    return f"{1000 * (per.get('driver', 0.0) + per.get('other', 0.0)):.0f}" if per else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 30])
    ap.add_argument("--releases", type=int, default=6, help="slider releases per session")
    ap.add_argument("--pause", type=float, default=1.0, help="mean seconds between one session's releases")
    ap.add_argument("--gc", action="store_true", help="runner.postScriptGC = true (Streamlit's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--viewport", default="1400x900", help="each browser's window, WIDTHxHEIGHT: at 1400x900 "
                    "the zoom animation is below the first screen, at 1400x1600 it is in view")
    ap.add_argument("--app", type=Path, default=REPO, help="the checkout to serve (another one for a before/after)")
    ap.add_argument("--no-browser", action="store_true",
                    help="sessions speak Streamlit's protocol directly, with nothing to render: the server alone")
    args = ap.parse_args()
    viewport = tuple(int(v) for v in args.viewport.lower().split("x"))

    sys.path.insert(0, str(REPO))
    from wsms_viz.app.catalog import available, checkpoint_root, label_of

    keys = available(checkpoint_root(REPO))[:4]
    print(f"models: {', '.join(label_of(k) for k in keys)}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} before the run (other jobs on the machine slow every figure); "
          f"postScriptGC {'on' if args.gc else 'off'}; {args.releases} releases per session, "
          f"{args.pause:.1f} s apart on average; "
          + ("protocol clients, no browser" if args.no_browser
             else f"headless Chromium sessions, {viewport[0]}x{viewport[1]} windows")
          + ("" if args.app == REPO else f"; serving {args.app}"))
    print("| sessions | updates | release -> updated p50 / p95 / max (ms) | server CPU per update (ms) "
          "| server CPU use | clients' CPU use (per update) | browser CPU per release (ms): Chromium (renderers "
          "/ gpu / browser) | driver CPU per release (ms) | server RSS / peak (MB) | all sessions loaded (s) "
          "| load average |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sessions:
        r = asyncio.run(run_protocol(n, args.releases, args.pause, args.gc, args.seed, args.app) if args.no_browser
                        else run_class(n, args.releases, args.pause, len(keys), args.gc, args.seed, args.app, viewport))
        print(f"| {r['n']} | {r['updates']} | {r['p50']:.0f} / {r['p95']:.0f} / {r['max']:.0f} "
              f"| {1000 * r['server_cpu']:.1f} | {r['server_util']:.2f} cores | {r['browser_util']:.2f} cores "
              f"({1000 * r['browser_cpu']:.0f} ms) | {_browser_cell(r['per_kind'])} | {_driver_cell(r['per_kind'])} "
              f"| {r['rss']:.0f} / {r['peak']:.0f} | {r['load_s']:.0f} | {r['load']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
