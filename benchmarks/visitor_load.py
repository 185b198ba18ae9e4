"""What three visitors hammering the heaviest analysis cost a fourth: `python benchmarks/visitor_load.py`.

It starts `streamlit run app.py` (scripts/appserver.py), and:

1. quiet: a visitor opens the app (a new session on the Zoom compare page, the default)
   ``--loads`` times, one after the other; each load is timed from opening the
   websocket to the server reporting the page's script finished;
2. loaded: ``--hammer`` sessions open the Attributions page, switch NoiseTunnel on and
   then, as fast as the server answers, move the zoom centre to a centre nobody asked
   for yet (so every click computes an Integrated Gradients attribution with 8 noisy
   copies, for the WSMS-Net and the baseline: the heaviest click there is); while they
   do, the visitor opens the app ``--loads`` times again.

It prints the visitor's page-load median and max in both phases, the hammering sessions'
clicks (answered, told the server is busy) and their median time per click, and the
server's CPU use. Every session speaks Streamlit's protocol (protobuf over the websocket),
as benchmarks/class_load.py's ``--no-browser`` clients do: the figures are the server's.

``--repo PATH`` serves another checkout (for a before/after comparison, e.g. main's code
exported with ``git archive main | tar -x -C /tmp/wsms-main``), with its own checkpoints.
The data is ``WSMS_DATA_ROOTS`` when set, else this checkout's ``../shared/datasets/cifar10-jpeg``
for either checkout (else the sample photos).
Linux only (``/proc``). Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))
import appserver  # noqa: E402  (scripts/appserver.py: start the app)
from class_load import cpu_seconds  # noqa: E402


class Session:
    """One Streamlit session over the websocket: reruns and what they sent back."""

    def __init__(self, ws):
        self.ws = ws
        self.page_hash = ""
        self.pages: dict[str, str] = {}  # url path -> page script hash

    async def run(self, fill) -> list:
        """Sends a rerun (``fill`` sets its fields) and returns the new elements' deltas."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        fill(msg.rerun_script)
        await self.ws.send(msg.SerializeToString())
        deltas = []
        while True:
            m = ForwardMsg()
            m.ParseFromString(await self.ws.recv())
            kind = m.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = m.new_session.page_script_hash
            elif kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in m.navigation.app_pages}
                self.page_hash = m.navigation.page_script_hash or self.page_hash
            elif kind == "delta" and m.delta.WhichOneof("type") == "new_element":
                deltas.append(m.delta)
            elif kind == "script_finished":
                return deltas


def _connect(url: str):
    import websockets

    return websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=600)


async def visitor_load(url: str) -> float:
    """Seconds from opening a new session to its first page (Zoom compare) finished."""
    t = time.perf_counter()
    async with _connect(url) as ws:
        deltas = await Session(ws).run(lambda r: None)
    took = time.perf_counter() - t
    if not any(" at 1.0x</p>" in d.new_element.html.body for d in deltas):  # a top-5 card's header
        raise RuntimeError("the visitor's page showed no top-5 table: is a model and an image there?")
    return took


async def hammer(url: str, rng: random.Random, centres: list, stop: asyncio.Event, out: dict) -> None:
    """One session clicking new zoom centres on the Attributions page with NoiseTunnel on."""
    async with _connect(url) as ws:
        s = Session(ws)
        await s.run(lambda r: None)
        page = s.pages.get("attributions")
        if page is None:
            raise RuntimeError(f"no attributions page among {sorted(s.pages)}")
        ids: dict[str, str] = {}

        def fill(r, cx=None, cy=None):
            r.page_script_hash = page
            for key, value in (("noise", True), ("cx", cx), ("cy", cy)):
                if key in ids and value is not None:
                    w = r.widget_states.widgets.add()
                    w.id = ids[key]
                    if key == "noise":
                        w.bool_value = True
                    else:
                        w.double_array_value.data.append(value)

        for d in await s.run(fill):
            el = d.new_element
            kind = el.WhichOneof("type")
            if kind == "checkbox" and el.checkbox.label == "NoiseTunnel":
                ids["noise"] = el.checkbox.id
            elif kind == "slider" and el.slider.label in ("centre x", "centre y"):
                ids["cx" if el.slider.label == "centre x" else "cy"] = el.slider.id
        if set(ids) != {"noise", "cx", "cy"}:
            raise RuntimeError(f"the attributions page's widgets were not found: {sorted(ids)}")
        await s.run(fill)  # NoiseTunnel on, at the first centre
        out["ready"] += 1
        while not stop.is_set():
            cx, cy = centres.pop()
            t = time.perf_counter()
            deltas = await s.run(lambda r, cx=cx, cy=cy: fill(r, cx, cy))
            busy = any("busy" in d.new_element.alert.body or "previous request" in d.new_element.alert.body
                       for d in deltas if d.new_element.WhichOneof("type") == "alert")
            out["busy" if busy else "clicks"].append(time.perf_counter() - t)


async def measure(url: str, loads: int, pause: float) -> list[float]:
    out = []
    for _ in range(loads):
        out.append(await visitor_load(url))
        await asyncio.sleep(pause)
    return out


async def run(args) -> dict:
    port = appserver.free_port()
    env = dict(os.environ)
    data = (REPO.parent / "shared" / "datasets" / "cifar10-jpeg").resolve()
    if "WSMS_DATA_ROOTS" not in env and "WSMS_DATA" not in env and data.is_dir():
        env["WSMS_DATA_ROOTS"] = f"CIFAR-10={data}"  # the same data for any --repo, wherever it lies
    if args.slots:
        env["WSMS_HEAVY_SLOTS"] = str(args.slots)
    server = appserver.start_server(port, env, app_dir=Path(args.repo).resolve() if args.repo else REPO)
    try:
        url = f"ws://127.0.0.1:{port}/_stcore/stream"
        await visitor_load(url)  # the models loaded and the first image's sweeps cached
        quiet = await measure(url, args.loads, args.pause)
        rng = random.Random(args.seed)
        centres = [(x / 20, y / 20) for x in range(1, 20) for y in range(1, 20) if (x, y) != (10, 10)]
        rng.shuffle(centres)
        stop = asyncio.Event()
        out = {"ready": 0, "clicks": [], "busy": []}
        tasks = [asyncio.create_task(hammer(url, rng, centres, stop, out)) for _ in range(args.hammer)]
        while out["ready"] < args.hammer:
            await asyncio.sleep(0.2)
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()
        c0, t0 = cpu_seconds([server.pid]), time.perf_counter()
        loaded = await measure(url, args.loads, args.pause)
        server_util = (cpu_seconds([server.pid]) - c0) / (time.perf_counter() - t0)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        appserver.stop(server)
    return {"quiet": quiet, "loaded": loaded, "clicks": out["clicks"], "busy": out["busy"], "util": server_util}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hammer", type=int, default=3, help="sessions clicking NoiseTunnel attributions")
    ap.add_argument("--loads", type=int, default=10, help="the visitor's page loads per phase")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between the visitor's loads")
    ap.add_argument("--repo", help="serve this checkout instead (before/after comparisons)")
    ap.add_argument("--slots", type=int, help="WSMS_HEAVY_SLOTS for the server (default: the app's own)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    r = asyncio.run(run(args))
    q, ld = r["quiet"], r["loaded"]
    print(f"served: {args.repo or REPO}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
          f"(other jobs on the machine slow every figure); WSMS_HEAVY_SLOTS {args.slots or 'default'}")
    print("| phase | visitor's page loads | load median (s) | load max (s) | hammer clicks answered | told busy "
          "| click median (s) | server CPU use |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| quiet | {len(q)} | {statistics.median(q):.2f} | {max(q):.2f} | - | - | - | - |")
    clicks = r["clicks"]
    print(f"| {args.hammer} sessions hammering | {len(ld)} | {statistics.median(ld):.2f} | {max(ld):.2f} "
          f"| {len(clicks)} | {len(r['busy'])} | {statistics.median(clicks) if clicks else float('nan'):.2f} "
          f"| {r['util']:.2f} cores |", flush=True)


if __name__ == "__main__":
    main()
