"""What the app's server adds to Streamlit's: its own "No such page" for a path of two
segments or more (``/a/b``), and the browser tab ``streamlit run`` opens.

Both ways of starting the app serve it as an ``st.App`` (Streamlit's ASGI entry point):
``app.py`` in a checkout and ``entry/wsms_app.py`` here for ``wsms-app`` each declare
``app = App(__file__, middleware=middleware(), lifespan=lifespan)``; ``streamlit run`` finds
that line and serves the app with uvicorn, and the ``App`` runs the same file for each
visitor, which calls :func:`wsms_viz.app.main.main` as before.

Why: Streamlit answers every path it has no file for with its ``index.html``, whose
scripts are named relative to the page (``./static/js/...``). Under ``/a/b`` the browser
asks for ``/a/static/js/...``, gets the HTML page again, and nothing runs: a blank page.
A path of one segment (``/zzz``) does load the app, which says "No such page" itself
(:func:`wsms_viz.app.main.unknown_path`). :class:`UnknownPathPage` answers the deeper
ones before Streamlit does, with a small page of its own and status 404.
"""

from __future__ import annotations

import asyncio
import html
import stat
from contextlib import asynccontextmanager
from pathlib import Path

from wsms_viz.app.navigation import PAGES


class UnknownPathPage:
    """ASGI middleware: a GET or HEAD for a path of two segments or more below
    ``server.baseUrlPath`` that none of Streamlit's routes serves and that is no file of
    its static folder gets :func:`not_found_page` with status 404; everything else goes on.

    "Streamlit's routes" are the application's own list (``scope["app"].routes``, which
    Starlette sets before any middleware runs), so a route a later Streamlit adds is
    respected without a list here: health, websocket, uploads, media, components, the
    agent API, ``app/static``. Its static-files mount (the one that would answer with
    ``index.html``) is asked whether the file exists. A path Streamlit refuses as unsafe
    (``//host``, ``..``) or would redirect (a trailing ``/``) is left to Streamlit.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        asked = _unknown_deep_path(scope) if scope["type"] == "http" and scope["method"] in {"GET", "HEAD"} else None
        if asked is None:
            await self.app(scope, receive, send)
            return
        body = not_found_page(asked).encode("utf-8")
        await send({"type": "http.response.start", "status": 404, "headers": [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
            (b"x-content-type-options", b"nosniff"),
            # Nothing on the page runs or loads: no script, no image, no font.
            (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'"),
        ]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def _unknown_deep_path(scope) -> str | None:
    """The path below the base URL when :class:`UnknownPathPage` answers it, else None."""
    from starlette.routing import Match, Mount
    from starlette.staticfiles import StaticFiles
    from streamlit.path_security import is_unsafe_path_pattern

    static = None
    for route in getattr(scope.get("app"), "routes", ()):
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            static = route
        elif route.matches(scope)[0] is not Match.NONE:
            return None  # one of Streamlit's own routes (PARTIAL: the wrong method; it says so)
    if static is None:
        return None
    match, child = static.matches(scope)
    path, root = scope["path"], child.get("root_path", "")
    if match is not Match.FULL or not path.startswith(root):
        return None  # outside server.baseUrlPath: Streamlit's plain 404
    asked = path[len(root):]
    if asked.startswith("//") or not asked.startswith("/"):
        return None  # Streamlit refuses a protocol-relative path (//host/...)
    asked = asked[1:]
    if "/" not in asked or asked.endswith("/") or is_unsafe_path_pattern(asked):
        return None  # one segment: the app's own page says "No such page"; a redirect; a 400
    try:
        full, found = static.app.lookup_path(asked)
    except PermissionError:
        return None  # Streamlit's own answer
    except OSError:  # a name too long, as Starlette's own lookup treats it: no such file
        full, found = "", None
    if found and (stat.S_ISREG(found.st_mode) or (stat.S_ISDIR(found.st_mode) and Path(full, "index.html").is_file())):
        return None  # a file of Streamlit's own (./static/js/..., a bundled component)
    return asked


def not_found_page(asked: str, limit: int = 120) -> str:
    """The 404 page for ``asked`` (the path below the base URL, from a visitor: shown as
    escaped plain text, shortened). Its link home is relative, so it holds under any
    ``server.baseUrlPath`` and behind a proxy that adds a prefix.

    Example:
        >>> page = not_found_page("<b>x/y")
        >>> "&lt;b&gt;x/y" in page and "<b>x" not in page and 'href="../"' in page
        True
    """
    home = "../" * asked.count("/")  # from /base/a/b/c back to /base/
    shown = asked if len(asked) <= limit else asked[:limit - 1] + "…"
    start = next(p for p in PAGES if p.default)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>No such page</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}
code{{background:#f0f2f6;padding:0 .25em;word-break:break-all}}</style>
</head>
<body>
<h1>No such page</h1>
<p>This app has no page <code>{html.escape(shown)}</code>. The link may be mistyped or from another app.</p>
<p><a href="{home}">Go to the start page: {html.escape(start.title)}</a></p>
</body>
</html>
"""


def middleware() -> list:
    """The app's middleware, as ``st.App(middleware=...)`` takes it (it runs before Streamlit's)."""
    from starlette.middleware import Middleware

    return [Middleware(UnknownPathPage)]


@asynccontextmanager
async def lifespan(_app):
    """Opens the browser at the app, as ``streamlit run`` does for a plain script (an
    ``st.App`` it serves does not): not when ``server.headless`` is set."""
    asyncio.get_running_loop().call_soon(_open_browser)
    yield


def _open_browser() -> None:
    from streamlit import cli_util, config
    from streamlit.web.server import server_util

    if config.get_option("server.headless"):
        return
    if config.is_manually_set("browser.serverAddress"):
        addr = config.get_option("browser.serverAddress")
    elif config.is_manually_set("server.address"):
        addr = server_util.get_display_address(config.get_option("server.address"))
    else:
        addr = "localhost"
    cli_util.open_browser(server_util.get_url(addr))
