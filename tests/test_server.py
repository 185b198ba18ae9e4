"""The app server's own "No such page" for a path of two segments or more
(wsms_viz/app/server.py), called as ASGI with Streamlit's real route list: no server, no
network. tests/test_e2e_links.py opens one in Chromium."""

import ast
import asyncio
from unittest import mock

import pytest
from starlette.applications import Starlette

from wsms_viz.app import server


@pytest.fixture(params=["", "class"], ids=["no base", "base class"])
def streamlit_app(request):
    """A Starlette app holding Streamlit's own routes (as st.App builds them) under the
    base URL path, and that base as a prefix ("/class" or "")."""
    from streamlit import config
    from streamlit.web.server.starlette.starlette_app import create_streamlit_routes

    before = config.get_option("server.baseUrlPath")
    config.set_option("server.baseUrlPath", request.param)
    try:
        routes = create_streamlit_routes(mock.MagicMock())  # the routes only keep the runtime
    finally:
        config.set_option("server.baseUrlPath", before)
    return Starlette(routes=routes), f"/{request.param}" if request.param else ""


def call(app: Starlette, path: str, method: str = "GET", query: bytes = b"",
         kind: str = "http") -> tuple[int | None, dict, str]:
    """(status, headers, body) of the middleware's answer; status None: it passed the request on."""
    sent, passed = [], []

    async def downstream(scope, receive, send):
        passed.append(scope["path"])

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": kind, "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query, "headers": [], "app": app}
    asyncio.run(server.UnknownPathPage(downstream)(scope, receive, send))
    if passed:
        assert not sent
        return None, {}, ""
    start, body = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"].decode()


@pytest.mark.parametrize("path, home", [("/a/b", "../"), ("/a/b/c", "../../"), ("/zoom_compare/x", "../"),
                                        ("/static/js/nowhere.js", "../../"), ("/a/_stcore/health", "../../")])
def test_a_deep_unknown_path_gets_the_no_such_page_with_a_link_home(streamlit_app, path, home):
    app, base = streamlit_app
    status, headers, body = call(app, base + path)
    assert status == 404 and headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>No such page</title>" in body and f"<code>{path[1:]}</code>" in body
    assert f'<a href="{home}">Go to the start page: 1 Zoom compare</a>' in body
    assert "<script" not in body and "src=" not in body and "http" not in body  # nothing to load or run
    assert "default-src 'none'" in headers["content-security-policy"]
    assert int(headers["content-length"]) == len(body.encode())


def test_a_head_gets_the_status_without_the_page(streamlit_app):
    app, base = streamlit_app
    status, headers, body = call(app, base + "/a/b", method="HEAD")
    assert status == 404 and body == "" and int(headers["content-length"]) > 0


def test_the_visitors_path_is_shown_as_text(streamlit_app):
    app, base = streamlit_app
    status, _, body = call(app, base + '/<script>alert("x")</script>/y')
    assert status == 404 and "<script>" not in body
    assert "<code>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;/y</code>" in body
    status, _, body = call(app, base + "/" + "a" * 500 + "/b")
    assert status == 404 and "a" * 119 + "…" in body and "a" * 121 not in body


@pytest.mark.parametrize("path", ["", "/", "/attributions", "/zzz", "/zoom_compare", "/_stcore/health",
                                  "/_stcore/host-config", "/_stcore/upload_file/s/f",
                                  "/media/abc.png", "/media/a/b.png", "/component/x/y", "/favicon.png",
                                  "/manifest.json", "/a/b/", "//evil.example/x", "/a/../b"])
def test_streamlits_own_paths_pages_and_one_segment_pass(streamlit_app, path):
    app, base = streamlit_app
    assert call(app, base + path)[0] is None


def test_streamlits_assets_pass_and_so_does_a_query(streamlit_app):
    from streamlit import file_util

    app, base = streamlit_app
    js = sorted(p.name for p in (file_util.Path(file_util.get_static_dir()) / "static" / "js").glob("*.js"))
    assert js, "Streamlit's bundled scripts"
    assert call(app, f"{base}/static/js/{js[0]}")[0] is None
    assert call(app, f"{base}/zoom_compare", query=b"cx=1&zoom=2")[0] is None
    assert call(app, f"{base}/a/b", method="POST")[0] is None  # only GET and HEAD are answered here
    assert call(app, f"{base}/_stcore/stream", kind="websocket")[0] is None


def test_outside_the_base_url_path_is_left_to_streamlit():
    from streamlit import config
    from streamlit.web.server.starlette.starlette_app import create_streamlit_routes

    before = config.get_option("server.baseUrlPath")
    config.set_option("server.baseUrlPath", "class")
    try:
        app = Starlette(routes=create_streamlit_routes(mock.MagicMock()))
    finally:
        config.set_option("server.baseUrlPath", before)
    assert call(app, "/a/b")[0] is None and call(app, "/classy/a/b")[0] is None
    assert call(app, "/class/a/b")[0] == 404


def test_app_py_and_wsms_app_declare_the_app_streamlit_run_serves():
    from pathlib import Path

    from streamlit.web.server.app_discovery import discover_asgi_app

    repo = Path(__file__).resolve().parents[1]
    checkout, installed = repo / "app.py", repo / "wsms_viz" / "app" / "entry" / "wsms_app.py"
    for path in (checkout, installed):
        found = discover_asgi_app(path)
        assert found.is_asgi_app and found.import_string == f"{path.stem}:app", path
        assert not (path.parent / "pages").exists()  # Streamlit would take it for its old page list
    # The same file but for its docstring.
    code = [ast.unparse(ast.parse(p.read_text(encoding="utf-8")).body[1:]) for p in (checkout, installed)]
    assert code[0] == code[1]


def test_the_lifespan_opens_the_browser_unless_headless(monkeypatch):
    # What `streamlit run` does for a plain script and not for an st.App.
    from streamlit import cli_util, config
    from streamlit.web.server import server_util

    opened, real = [], config.get_option
    monkeypatch.setattr(cli_util, "open_browser", opened.append)

    async def start(headless: bool):
        with mock.patch.object(config, "get_option", lambda k: headless if k == "server.headless" else real(k)):
            async with server.lifespan(None):
                await asyncio.sleep(0)

    asyncio.run(start(headless=True))
    assert opened == []
    asyncio.run(start(headless=False))
    assert opened == [server_util.get_url("localhost")]
