"""Links that reopen a view: the page and its widgets live in the URL.

The page is the URL's path (``/attributions``); every widget a view depends on is bound to
a query parameter of its own key (Streamlit's ``bind="query-params"``), so the address
bar always holds the view on screen: ``/?zoom=2.0&models=resnet20&models=wsms_resnet20``.
A teacher copies it; a student who opens it, in a fresh browser, sees the same page,
image, zoom, centre, models, stage switches, method and class. An uploaded photo cannot
travel in a link (only its source, "Upload your own", does).

Streamlit drops a value a widget cannot take (``zoom=abc``, a model this server does not
have) and the widget shows its default; :func:`report_pending` says so in a short notice,
once, when the link is opened, naming exactly what fell back. No server path is ever read
from a link: every parameter is a key into a list the server built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import NoReturn

import streamlit as st

# For a keyed widget: its value lives in the URL under its key.
LINK = {"bind": "query-params"}

# Every parameter a link can carry, and what it sets (docs/app.md's table is this one).
PARAMS: dict[str, str] = {
    "models": "the models compared (repeat it: models=resnet20&models=wsms_resnet20)",
    "source": "where the image comes from: 'Dataset (val split)', 'Sample photos', "
              "'Upload your own', 'Baseline wrong, WSMS right', 'Baseline right, WSMS wrong'",
    "dataset": "which shared dataset (its label)",
    "data_class": "the class folder of the dataset image",
    "data_index": "the image's number within that class",
    "sample": "the bundled sample photo",
    "example": "the 'Baseline wrong, WSMS right' example, as the list shows it",
    "reverse": "the 'Baseline right, WSMS wrong' example, as the list shows it",
    "cx": "zoom centre, fraction of the width (0-1)",
    "cy": "zoom centre, fraction of the height (0-1)",
    "zoom": "the zoom factor, 0.5-3.0",
    "presenter": "presenter view on a projector (true/false)",
    "stage_0": "stage 1 of the multi-stage models on/off", "stage_1": "stage 2 on/off",
    "stage_2": "stage 3 on/off",
    "tta": "Zoom compare: multi-scale averaging on/off",
    "follow": "Zoom compare: the class whose probability the curve follows",
    "rf_model": "Receptive fields: the multi-stage model",
    "rf_row": "Receptive fields: the output row", "rf_col": "Receptive fields: the output column",
    "rf_block": "Receptive fields: the block, as the list shows it (block 1, block 2, ...)",
    "attr_model": "Attributions: the multi-stage model",
    "attr_method": "Attributions: the method as the list shows it (integrated gradients, saliency, grad cam)",
    "attr_class": "Attributions: the class explained", "attr_noise": "Attributions: NoiseTunnel on/off",
    "attr_scale": "Attributions: one colour scale or one per stage",
    "int_model": "Integration layer: the model", "int_class": "Integration layer: the class",
    "fm_model": "Feature maps: the model", "fm_channel": "Feature maps: the channel",
    "fm_scaling": "Feature maps: the colour scale (local, stage, global)",
    "fm_block": "Feature maps: the block, as the list shows it (block 1, block 2, ...)",
    "robustness_tta": "Scale robustness: multi-scale averaging on/off",
    "lesson_zoom": "Lesson: the zoom of step 1",
}
_OPENED, _PENDING, _PAGE = "_link_opened", "_link_pending", "_link_page"


def opening() -> None:
    """Keeps the query parameters the session was opened with, on its first run only, for
    :func:`report_pending`. Called by the entry before any widget is drawn: Streamlit
    removes the values its widgets reject.

    A link with more parameters (or characters) than Streamlit reads is dropped by it as a
    whole, and ``st.query_params`` is then empty; the raw query string says so.
    """
    if st.session_state.get(_OPENED):
        return
    st.session_state[_OPENED] = True
    raw = {k: st.query_params.get_all(k) for k in st.query_params}
    st.session_state[_PENDING] = (raw, ignored_query(_raw_query_string()))


def sync_server_copy() -> None:
    """Tells Streamlit's server-side copy of the URL what the browser's address bar holds.

    Streamlit 1.67 writes a bound widget's new value into the address bar in the browser,
    and does not refresh its own copy of the query string on a rerun of the same page. When
    a run then sets a bound widget's value itself (the class to follow, reset for a new
    image), it sends its stale copy back as the whole query string, and the browser loses
    what the visitor had just picked (the sample photo: picked, shown, but no longer in the
    link). Every rerun carries the browser's query string, so the bound parameters of this
    app are copied from it first. Not on a page switch, where Streamlit filters the
    parameters for the new page itself. A no-op where Streamlit's internals differ.
    """
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        from streamlit.runtime.state.query_params import _parse_query_string

        ctx = get_script_run_ctx()
        if ctx is None:
            return
        page, last = ctx.page_script_hash, st.session_state.get(_PAGE)
        st.session_state[_PAGE] = page
        if page != last:
            return
        browser = _parse_query_string(str(ctx.query_string or ""))
        with ctx.session_state.query_params() as qp:
            for key in PARAMS:
                if key in browser and qp.is_bound(key):
                    values = browser[key]
                    qp.set_with_no_forward_msg(key, values if key == "models" or len(values) > 1 else values[0])
    except (AttributeError, ImportError, TypeError):  # another Streamlit: its own behaviour stands
        return


def _raw_query_string() -> str:
    """The query string as the browser sent it (before Streamlit's limits), "" when unknown."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return str(getattr(ctx, "query_string", "") or "")


try:  # Streamlit's own limits on a query string it reads (1.67); the same numbers otherwise
    from streamlit.runtime.state.query_params import (
        CLIENT_STATE_QUERY_STRING_MAX_FIELDS as MAX_FIELDS,
    )
    from streamlit.runtime.state.query_params import (
        CLIENT_STATE_QUERY_STRING_MAX_LENGTH as MAX_LENGTH,
    )
except ImportError:  # pragma: no cover
    MAX_FIELDS, MAX_LENGTH = 1000, 512 * 1024


def ignored_query(query_string: str) -> str | None:
    """Why Streamlit ignores ``query_string`` as a whole (too many parameters or characters), else None.

    Example:
        >>> ignored_query("&".join(["models=resnet20"] * 2000))
        'it has 2,000 parameters and this server reads at most 1,000'
        >>> ignored_query("zoom=2.0") is None
        True
    """
    if len(query_string) > MAX_LENGTH:
        return f"it has {len(query_string):,} characters and this server reads at most {MAX_LENGTH:,}"
    fields = query_string.count("&") + 1 if query_string else 0
    if fields > MAX_FIELDS:
        return f"it has {fields:,} parameters and this server reads at most {MAX_FIELDS:,}"
    return None


def rejected(raw: Mapping[str, Sequence[str]], state: Mapping, after: Mapping[str, Sequence[str]]) -> list[str]:
    """The parameters of ``raw`` that did not become a widget's value: ``key=value`` each for
    one that fell back to the default as a whole, ``key=value`` of the values left out for a
    widget of several values that kept the others (see :func:`fallbacks`).

    Example:
        >>> rejected({"zoom": ["abc"], "cx": ["0.3"], "tta": ["true"], "fbclid": ["1"]},
        ...          {"zoom": 1.0, "cx": 0.3, "tta": True}, {"cx": ["0.3"], "tta": ["true"]})
        ['zoom=abc']
    """
    return [text for text, _ in fallbacks(raw, state, after)]


def fallbacks(raw: Mapping[str, Sequence[str]], state: Mapping,
              after: Mapping[str, Sequence[str]]) -> list[tuple[str, bool]]:
    """What of ``raw`` did not become a widget's value: ``(key=value, partial)`` each.

    ``state`` holds the widgets' values after the run, ``after`` the URL after it: a value
    the widget took stays there as the link said it (an option by its label); a rejected
    one is gone (Streamlit resets an out-of-range number to the default rather than
    clamping it), or filtered (a multiselect keeps the options it knows: ``partial``, and
    only the values left out are named). A value repeated in the link counts once. A value
    equal to the default is gone too, so a gone one is judged by the widget's value. A
    parameter of a widget this page does not draw is not judged (it belongs to another
    page), nor is one no page knows (``utm_source``, ``fbclid``: what chat and mail apps
    append).

    Example:
        >>> fallbacks({"models": ["zz", "a", "a"]}, {"models": ["/srv/a"]}, {"models": ["a"]})
        [('models=zz', True)]
    """
    out = []
    for key, values in raw.items():
        if key not in PARAMS or key not in state:
            continue
        given = list(dict.fromkeys(values))  # a repeated value counts once, as the widget takes it
        taken = list(after[key]) if key in after else None
        if taken is None:
            ok = same(given, _written(key, state[key]))
            if not ok and isinstance(state[key], (list, tuple)):
                taken = [str(v) for v in _written(key, state[key])]
        else:
            ok = taken == given
        if ok:
            continue
        kept = [v for v in given if taken and v in taken]
        dropped = [v for v in given if v not in kept]
        partial = bool(kept) and len(given) > 1
        out.append((f"{key}={','.join(dropped if partial else given)}", partial))
    return out


def same(values: Sequence[str], value) -> bool:
    """Whether a widget's ``value`` is what the URL's ``values`` say.

    Example:
        >>> same(["2.0"], 2.0), same(["true"], True), same(["a", "b"], ["a", "b"]), same(["x"], "y")
        (True, True, True, False)
    """
    values = list(values)
    if isinstance(value, bool):
        return values == [str(value).lower()]
    if isinstance(value, (int, float)):
        try:
            return len(values) == 1 and math.isclose(float(values[0]), float(value), abs_tol=1e-9)
        except ValueError:
            return False
    if isinstance(value, (list, tuple)):
        return values == [str(v) for v in value]
    return values == [str(value)]


def _written(key: str, value):
    """``value`` as the URL writes it: the models by their labels (the options are server paths)."""
    if key == "models":
        from .catalog import label_of

        return [label_of(k) for k in value]
    return value


def notice(items: Sequence[tuple[str, bool]], ignored: str | None = None) -> str | None:
    """The notice's text for what fell back (:func:`fallbacks`), None when nothing did.

    Example:
        >>> notice([("zoom=abc", False)])
        'Part of this link was not usable here: `zoom=abc` replaced by the default.'
        >>> notice([("models=zz", True)]).endswith("`models=zz` left out (the link's other values are shown).")
        True
    """
    if ignored:
        return f"This link was not read at all ({_shown(ignored, 80)}), so the default view is shown."
    if not items:
        return None
    said = [f"`{_shown(text)}` " + ("left out (the link's other values are shown)" if partial
                                    else "replaced by the default") for text, partial in items]
    return "Part of this link was not usable here: " + "; ".join(said) + "."


def report_pending() -> None:
    """After the page drew its widgets (or just before it stops): one notice naming every
    parameter of the opening link that fell back, once per session."""
    pending = st.session_state.pop(_PENDING, None)
    if not pending:
        return
    raw, ignored = pending
    text = notice(fallbacks(raw, st.session_state, {k: st.query_params.get_all(k) for k in st.query_params}),
                  ignored)
    if text:
        st.toast(text, icon=":material/link_off:", duration="long")
    elif not raw:  # the server saw no parameters: the browser checks whether Streamlit dropped them all
        st.html(f"<script>{_IGNORED_JS}</script>", unsafe_allow_javascript=True, width="content")


# Streamlit's server empties a query string over its limits before the app sees it (a
# test harness passes it on, hence ignored_query above), so the browser, which still has
# it, says so: plain text in a box of its own, closable; our constant script, two numbers
# formatted in, hence unsafe_allow_javascript.
_IGNORED_JS = """(() => {
  const q = window.location.search.replace(/^\\?/, "");
  const fields = q ? q.split("&").length : 0, n = (x) => x.toLocaleString("en");
  const why = q.length > __LENGTH__ ? `it has ${n(q.length)} characters and this server reads at most ${n(__LENGTH__)}`
    : fields > __FIELDS__ ? `it has ${n(fields)} parameters and this server reads at most ${n(__FIELDS__)}` : null;
  if (!why || document.getElementById("wsms-link-ignored")) return;
  const box = document.createElement("div");
  box.id = "wsms-link-ignored";
  box.setAttribute("role", "alert");
  box.style.cssText = "position:fixed;top:4rem;left:50%;transform:translateX(-50%);z-index:1000;max-width:40rem;" +
    "padding:.75rem 1rem;border-radius:.5rem;background:#fff3cd;color:#3d2c00;border:1px solid #e0c36a;" +
    "box-shadow:0 2px 8px rgba(0,0,0,.2);font-family:sans-serif";
  box.textContent = `This link was not read at all (${why}), so the default view is shown.`;
  const close = document.createElement("button");
  close.textContent = "\u00d7";
  close.setAttribute("aria-label", "Close");
  close.style.cssText = "margin-left:1rem;border:none;background:none;font-size:1.2rem;cursor:pointer";
  close.onclick = () => box.remove();
  box.appendChild(close);
  document.body.appendChild(box);
})();""".replace("__LENGTH__", str(MAX_LENGTH)).replace("__FIELDS__", str(MAX_FIELDS))


def stop() -> NoReturn:
    """``st.stop()``, after the link's notice: once a script is stopping, Streamlit drops what it draws."""
    report_pending()
    st.stop()


def _shown(text: str, limit: int = 40) -> str:
    """A visitor's text, shown as plain characters only and short: anything that could
    end the code span or make markdown (backticks, brackets, line breaks, HTML) becomes ``?``.

    Example:
        >>> _shown("zoom=\\n\\n[Log in](https://ev.il)")
        'zoom=???Log in?(https:??ev.il)'
    """
    text = _UNSAFE.sub("?", text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:#=+%()-]")
