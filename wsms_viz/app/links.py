"""Links that reopen a view: the page and its widgets live in the URL.

The page is the URL's path (``/attributions``); every widget a view depends on is bound to
a query parameter of its own key (Streamlit's ``bind="query-params"``), so the address
bar always holds the view on screen: ``/?zoom=2.0&models=resnet20&models=wsms_resnet20``.
A teacher copies it; a student who opens it, in a fresh browser, sees the same page,
image, zoom, centre, models, stage switches, method and class. An uploaded photo cannot
travel in a link (only its source, "Upload your own", does).

Streamlit drops a value a widget cannot take (``zoom=abc``, a model this server does not
have) and the widget shows its default; :func:`report` says so in a short notice, once,
when the link is opened. No server path is ever read from a link: every parameter is a
key into a list the server built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import streamlit as st

# For a keyed widget: its value lives in the URL under its key.
LINK = {"bind": "query-params"}

# Every parameter a link can carry, and what it sets (the README's table is this one).
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
    "attr_model": "Attributions: the multi-stage model",
    "attr_method": "Attributions: the method as the list shows it (integrated gradients, saliency, grad cam)",
    "attr_class": "Attributions: the class explained", "attr_noise": "Attributions: NoiseTunnel on/off",
    "attr_scale": "Attributions: one colour scale or one per stage",
    "int_model": "Integration layer: the model", "int_class": "Integration layer: the class",
    "fm_model": "Feature maps: the model", "fm_channel": "Feature maps: the channel",
    "robustness_tta": "Scale robustness: multi-scale averaging on/off",
    "lesson_zoom": "Lesson: the zoom of step 1",
}
_OPENED = "_link_opened"


def opening() -> dict[str, list[str]] | None:
    """The query parameters the session was opened with, on its first run only (else None).

    Read before any widget is drawn: Streamlit removes the values its widgets reject.
    """
    if st.session_state.get(_OPENED):
        return None
    st.session_state[_OPENED] = True
    return {k: st.query_params.get_all(k) for k in st.query_params}


def rejected(raw: Mapping[str, Sequence[str]], state: Mapping, after: Mapping[str, Sequence[str]]) -> list[str]:
    """The parameters of ``raw`` that did not become a widget's value (``key=value`` each).

    ``state`` holds the widgets' values after the run, ``after`` the URL after it: a value
    the widget took stays there as the link said it (an option by its label); a rejected
    one is gone (Streamlit resets an out-of-range number to the default rather than
    clamping it), or filtered (a multiselect keeps the options it knows). A value equal to
    the default is gone too, so a gone one is judged by the widget's value. A parameter
    of a widget this page does not draw is not judged (it belongs to another page), nor
    is one no page knows (``utm_source``, ``fbclid``: what chat and mail apps append).

    Example:
        >>> rejected({"zoom": ["abc"], "cx": ["0.3"], "tta": ["true"], "fbclid": ["1"]},
        ...          {"zoom": 1.0, "cx": 0.3, "tta": True}, {"cx": ["0.3"], "tta": ["true"]})
        ['zoom=abc']
    """
    out = []
    for key, values in raw.items():
        if key not in PARAMS or key not in state:
            continue
        if key in after:
            ok = list(after[key]) == list(values)
        else:
            ok = same(values, _written(key, state[key]))
        if not ok:
            out.append(f"{key}={','.join(values)}")
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


def report(raw: Mapping[str, Sequence[str]] | None) -> None:
    """After the page drew its widgets: a short notice for every parameter that fell back."""
    if not raw:
        return
    bad = rejected(raw, st.session_state, {k: st.query_params.get_all(k) for k in st.query_params})
    if bad:
        st.toast("This link's " + ", ".join(f"`{_shown(b)}`" for b in bad) + (" was" if len(bad) == 1 else " were")
                 + " not usable here, so the default is shown instead.", icon=":material/link_off:", duration="long")


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
