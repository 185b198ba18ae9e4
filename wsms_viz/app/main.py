"""The teaching app's entry: ``streamlit run app.py`` in a checkout, ``wsms-app`` from an
installed package (both run :func:`main`, from ``app.py`` and ``entry/wsms_app.py``).

The entry page only routes. Each page is a thin script in ``pages/`` (listed once in
``navigation.py``) that draws the shared
sidebar (image, models, zoom centre) with ``ui.page()`` and calls into wsms_viz.
The sidebar is drawn by the pages, not here: Streamlit 1.67 does not resend unchanged
entrypoint elements on a rerun, and AppTest, which builds its tree from one run's
messages, then loses them.
"""

from pathlib import Path
from urllib.parse import urlparse

import streamlit as st
import torch

from wsms_viz.app import links
from wsms_viz.app.catalog import app_threads
from wsms_viz.app.navigation import PAGES

# A bundled file, served by this server: a ":material/...:" favicon is fetched from a font
# CDN, which a classroom without internet (or behind a proxy) never reaches.
ICON = Path(__file__).resolve().parent / "icon.png"


def main() -> None:
    """Configure the page, build the navigation from the registry and run the chosen page."""
    # The models are small (32x32 inputs), so a second intra-op thread gains little, and when
    # anything else uses the CPU, OpenMP threads waiting on each other make it far slower:
    # Integrated Gradients on wsms_resnet20 took 0.11 s with one thread and 10.8 s with two
    # beside a training run on a 2-core machine (benchmarks/attribution_speed.py --threads).
    # $WSMS_THREADS overrides. Process-wide, so every session gets it; set by the app at each
    # run, not when a module is imported.
    if torch.get_num_threads() != app_threads():
        torch.set_num_threads(app_threads())
    # No traceback reaches a visitor however the server was started (.streamlit/config.toml
    # is read only from the directory it starts in): Streamlit's generic notice, the log keeps it.
    st.set_option("client.showErrorDetails", "none")
    st.set_page_config(page_title="wsms-viz: WSMS-Net in class", page_icon=str(ICON), layout="wide")
    pages = [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES]
    page = st.navigation(pages)
    links.opening()  # the link's parameters, before a widget drops the bad ones
    links.sync_server_copy()
    asked = unknown_path(st.context.url, st.get_option("server.baseUrlPath"))
    if asked is not None:
        no_such_page(asked, next(sp for sp, p in zip(pages, PAGES, strict=True) if p.default))
        return
    page.run()
    links.report_pending()  # a page that stops early reports first (links.stop())


def unknown_path(url: str | None, base: str = "") -> str | None:
    """The page path the browser asked for when no page has it, else None.

    Streamlit runs the default page for an unknown path (``/zoom-compare``, a mistyped
    link) after a generic message; the app says so itself, with a way back. ``base`` is the
    server's ``server.baseUrlPath``. (A path of two segments or more, ``/a/b``, never gets
    here: the app's server answers it with a "No such page" of its own, status 404, before
    Streamlit's HTML page, whose scripts the browser would then ask for under ``/a/`` and
    never get: :mod:`wsms_viz.app.server`. Through AppTest, which has no server, it does.)

    Example:
        >>> unknown_path("http://h:8501/zzz"), unknown_path("http://h:8501/attributions")
        ('zzz', None)
        >>> unknown_path("http://h/class/"), unknown_path("http://h/class/zzz", "class")
        ('class', 'zzz')
    """
    if not url:
        return None
    path = urlparse(url).path.strip("/")
    base = (base or "").strip("/")
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base):].strip("/")
    return path if path and path not in {p.key for p in PAGES} else None


def no_such_page(asked: str, home) -> None:
    """The app's own answer to an unknown path: what was asked for, plainly, and the way home."""
    st.title("No such page")
    st.markdown(f"This app has no page `{links._shown(asked)}`. The link may be mistyped or from another app.")
    st.page_link(home, label=f"Go to the start page: {home.title}", icon=":material/home:")
    st.caption("Or pick a page in the sidebar.")


if __name__ == "__main__":  # this file run as the script itself (AppTest; streamlit run .../main.py)
    main()
