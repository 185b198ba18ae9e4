"""The README's pictures, taken from the real app in headless Chromium: ``python scripts/screenshots.py``.

Serves ``app.py`` with the checkpoints in ``checkpoints/`` (``WSMS_CHECKPOINTS`` overrides)
and opens each view by its link (the same links a teacher hands out: see the README's
"In class"), on the bundled sample photo of a cat, so no dataset image ends up in the
repository. Writes PNGs to ``docs/screenshots/`` (``--out``) and prints each view's link.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from urllib.parse import urlencode

from appserver import CHROMIUM_ARGS, REPO, chromium_path, running_server

CAT = {"source": "Sample photos", "sample": "chelsea (a cat)"}
MODELS = {"models": ["resnet20", "wsms_resnet20", "resnet20_jitter", "wsms_resnet20_jitter"]}
# name: (page path, link parameters, viewport, what must be on screen before the picture)
VIEWS = {
    "lesson": ("lesson", {}, (1400, 900), "2. The idea"),
    "zoom_compare": ("", {**CAT, **MODELS, "zoom": "2.0"}, (1400, 900), "top guess"),
    "presenter": ("", {**CAT, **MODELS, "zoom": "0.6", "presenter": "true"}, (1280, 720), "top guess"),
    "attributions": ("attributions", {**CAT, "zoom": "1.5", "attr_method": "integrated gradients"}, (1400, 900),
                     "Explaining class"),
    "scale_robustness": ("scale_robustness", {}, (1400, 900), "Training curves"),
}


def link(base: str, path: str, params: dict) -> str:
    return f"{base}/{path}" + (f"?{urlencode(params, doseq=True)}" if params else "")


def shoot(base: str, out: Path, names: list[str], settle: float) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for name in names:
            path, params, (w, h), ready = VIEWS[name]
            pg = browser.new_context(viewport={"width": w, "height": h}).new_page()
            url = link(base, path, params)
            pg.goto(url)
            main = pg.locator('[data-testid="stMain"]')
            deadline = time.time() + 180
            busy = '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-testid="stStatusWidget"]'
            while ready not in main.inner_text() or pg.locator(busy).count():
                if time.time() > deadline:
                    raise RuntimeError(f"{name}: '{ready}' did not appear at {url}")
                pg.wait_for_timeout(300)
            if pg.locator('[data-testid="stException"]').count():
                raise RuntimeError(f"{name}: the page shows an exception at {url}")
            pg.wait_for_timeout(settle * 1000)  # charts finish drawing
            pg.screenshot(path=out / f"{name}.png")
            print(f"{out / f'{name}.png'}  {url.replace(base, '')}")
        browser.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    p.add_argument("--only", nargs="+", choices=list(VIEWS), help="these views only")
    p.add_argument("--settle", type=float, default=1.5, help="seconds to let the charts draw")
    args = p.parse_args()
    env = {**os.environ, "WSMS_THREADS": os.environ.get("WSMS_THREADS", "1")}
    with running_server(env) as base:
        shoot(base, args.out, args.only or list(VIEWS), args.settle)


if __name__ == "__main__":
    main()
