"""Presenter view: the app on a projector (a sidebar toggle, also settable by link).

The toggle's key is ``presenter``; it is bound to the URL (``?presenter=true``), so a
teacher can hand out a link that opens in presenter view. When it is on:

* every Plotly chart the pages draw through :func:`chart` gets its text at
  :data:`MIN_FONT` pixels or more (:func:`bigger`, a pure function on the figure);
* :func:`style` makes the body text, captions and tables a little larger;
* the zoom page opens with :func:`zoom_screen`: the image the networks see, the zoom
  slider, each model's top guess in the model's colour and the verdict, on one screen
  of a 1280x720 projector.

With it off, none of this is drawn and the pages are as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Number

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ..palette import model_color
from . import plain
from .zoom_figures import Prebuilt, input_uri

KEY = "presenter"
MIN_FONT = 16  # pixels: plot text a back row can read
IMAGE_PX = 320  # the network's 32x32 input, each pixel drawn as a 10x10 square
IMAGE_PX_NORMAL = 224  # the same out of presenter view: 7x7 squares, beside the intro on a laptop


def toggle(where=None) -> bool:
    """The switch (first in the sidebar); True while presenter view is on.

    On, the sidebar opens collapsed (a projector's width is for the figures; its arrow
    opens it, the switch at its top), unless this browser's visitor opened or closed it by
    hand before: Streamlit keeps that choice. Off, it is back to Streamlit's default."""
    where = where or st.sidebar
    on = bool(where.toggle("Presenter view", key=KEY, bind="query-params", persist_state="session",
                           help="For a projector: the sidebar collapsed, every page's figure first, all text "
                                "16 px or more; on Zoom compare the image, the zoom, each model's top guess "
                                "and the verdict on one screen."))
    st.set_page_config(initial_sidebar_state="collapsed" if on else "auto")
    if on:
        style()
    return on


def intro(what: str, paper: str) -> None:
    """A page's opening in presenter view: collapsed into one line, so the figure comes first."""
    with st.expander("What this page shows, and where it is in the paper"):
        st.markdown(what)
        st.caption(f"In the paper: {paper}")


def table(rows, **kwargs):
    """``st.dataframe`` (``kwargs`` its options), or in presenter view ``st.table``: the
    data grid draws its text on a canvas at 14 px that no style reaches; a plain table's
    text follows the page's (16 px and up). ``column_config`` names are applied either way."""
    if not is_on():
        return st.dataframe(rows, **kwargs)
    names = {k: v for k, v in (kwargs.get("column_config") or {}).items() if isinstance(v, str)}
    return st.table([{names.get(k, k): v for k, v in r.items()} for r in rows] if names else rows,
                    hide_index=kwargs.get("hide_index"))


def is_on() -> bool:
    """Whether this session is in presenter view: the toggle's value once drawn, else the
    link's ``?presenter=true`` (a page without the sidebar, such as the lesson)."""
    if KEY in st.session_state:
        return bool(st.session_state[KEY])
    on = str(st.query_params.get(KEY, "")).lower() == "true"
    if on:  # kept for the session: the next page's toggle opens on, not at its default
        st.session_state[KEY] = True
    return on


# ---------------------------------------------------------------- figures

def bigger(fig, size: int = MIN_FONT):
    """A copy of ``fig`` whose every text is at least ``size`` pixels; ``fig`` is untouched.

    Raises every font size the figure sets (layout, axes, legend, annotations such as
    subplot titles, sliders, traces' text and colour bars) to ``size`` and sets ``size``
    on the fonts the figure leaves to the defaults (Plotly's 12 px, or a theme's), so no
    text falls back to a smaller one. Nothing else changes: the shapes, data and frames
    are shared with ``fig`` where no font is in them (the zoom animation's 26 frames are
    not copied), so a cached figure must not be modified through the result either.

    Args:
        fig: a ``go.Figure``, its ``to_dict()``, or a :class:`~wsms_viz.app.zoom_figures.Prebuilt`.
        size: the smallest font size in pixels.

    Returns:
        The same kind of object as ``fig``.

    Example:
        >>> out = bigger({"layout": {"font": {"size": 10}, "annotations": [{"text": "a", "font": {"size": 9}}]}})
        >>> out["layout"]["font"]["size"], out["layout"]["annotations"][0]["font"]["size"]
        (16, 16)
    """
    if isinstance(fig, Prebuilt):
        return Prebuilt(bigger(fig.to_dict(), size))
    if isinstance(fig, go.Figure):
        return go.Figure(bigger(fig.to_dict(), size))
    if not isinstance(fig, Mapping):
        raise TypeError(f"bigger() takes a plotly Figure or its dict, not {type(fig).__name__}")
    out = _raise_fonts(dict(fig), size)
    layout = dict(out.get("layout") or {})
    for path in (("font",), ("hoverlabel", "font"), ("title", "font"), ("legend", "font"),
                 ("legend", "title", "font")):
        layout = _at_least_at(layout, path, size)
    # Every axis by name, the first pair too when the figure leaves it to the defaults:
    # Streamlit's theme sets their tick size itself (12 px), so they would not inherit.
    axes = {"xaxis", "yaxis"} | {k for k in layout if k.startswith(("xaxis", "yaxis"))}
    for k in sorted(axes):
        layout = _at_least_at(layout, (k, "tickfont"), size)
        layout = _at_least_at(layout, (k, "title", "font"), size)
    for k in [k for k in layout if k.startswith("coloraxis")]:
        layout = _at_least_at(layout, (k, "colorbar", "tickfont"), size)
        layout = _at_least_at(layout, (k, "colorbar", "title", "font"), size)
    legend = layout.get("legend") or {}
    if legend.get("orientation") == "h" and "y" not in legend:
        # Plotly's default place, 10% of the plot's height below it, was made for 12 px
        # tick labels: 16 px ones run under the legend.
        layout["legend"] = {**legend, "y": -0.2, "yanchor": "top"}
    for k, path in (("annotations", ("font",)), ("sliders", ("font",)), ("updatemenus", ("font",))):
        if layout.get(k):
            layout[k] = [_at_least_at(dict(item), path, size) for item in layout[k]]
    if layout.get("sliders"):
        layout["sliders"] = [_at_least_at(s, ("currentvalue", "font"), size) for s in layout["sliders"]]
    out["layout"] = layout
    if out.get("data"):
        out["data"] = [_trace_fonts(t, size) for t in out["data"]]
    return out


_COLOURED = {"heatmap", "contour", "histogram2d", "histogram2dcontour"}  # traces with their own colour bar


def _trace_fonts(trace: dict, size: int) -> dict:
    if trace.get("type") in _COLOURED and "coloraxis" not in trace:
        trace = _at_least_at(dict(trace), ("colorbar", "tickfont"), size)
        trace = _at_least_at(trace, ("colorbar", "title", "font"), size)
    return trace


def _at_least(value, size: int):
    """``value`` (a font size, a list of them, or None) raised to ``size``."""
    if isinstance(value, Number) and not isinstance(value, bool):
        return value if value >= size else size
    if isinstance(value, (list, tuple)):
        new = [_at_least(v, size) for v in value]
        return value if all(a is b for a, b in zip(new, value, strict=True)) else new
    return size if value is None else value


def _at_least_at(node: dict, path: tuple[str, ...], size: int) -> dict:
    """A copy of ``node`` (a dict) whose font at ``path`` has a size of at least ``size``;
    the dicts on the way are copied, nothing is modified."""
    out = dict(node)
    if len(path) == 1:
        font = dict(out.get(path[0]) or {})
        font["size"] = _at_least(font.get("size"), size)
        out[path[0]] = font
        return out
    child = out.get(path[0])
    out[path[0]] = _at_least_at(dict(child) if isinstance(child, Mapping) else {}, path[1:], size)
    return out


def _raise_fonts(node, size: int, in_font: bool = False):
    """``node`` with every size inside a ``*font`` dict raised to ``size``: a new object
    where something changed, the same object where nothing did (copy on write)."""
    if isinstance(node, Mapping):
        changed = {}
        for k, v in node.items():
            if in_font and k == "size":
                new = _at_least(v, size)
            elif isinstance(v, (Mapping, list)):
                new = _raise_fonts(v, size, in_font=isinstance(k, str) and k.endswith("font"))
            else:
                continue
            if new is not v:
                changed[k] = new
        return {**node, **changed} if changed else node
    if isinstance(node, list):
        new = [_raise_fonts(v, size) for v in node]
        return node if all(a is b for a, b in zip(new, node, strict=True)) else new
    return node


def chart(fig, *, key: str, where=None, **kwargs):
    """``st.plotly_chart`` (in ``where``), the figure made :func:`bigger` in presenter view.

    Every page draws its Plotly figures through this, so the text of every chart grows
    with the toggle; ``fig`` itself (often a cached figure) is never modified."""
    if is_on():
        # Only font sizes change, to valid ones: a figure's dict is not validated again.
        fig = bigger(fig if isinstance(fig, (Mapping, Prebuilt)) else Prebuilt(fig.to_dict()))
    return (where or st).plotly_chart(fig, key=key, **kwargs)


# ---------------------------------------------------------------- page text

# Larger body text, captions, widget labels and tables in the main area. Every other
# text there and in the sidebar (select boxes, slider values, the sidebar's links and
# labels, Streamlit's 14 px defaults) is raised to 1rem: max(1rem, 1em) leaves a text
# that is larger than its parent's (a heading's) as it is. Sizes in rem, so they follow
# the browser's. Less room above the title (Streamlit's 6rem leaves 96 px empty on a
# 720 px screen); 3.5rem still clears the toolbar.
_CSS = """<style>
:is([data-testid="stMain"], [data-testid="stSidebar"]) :is(p, span:not([data-testid="stIconMaterial"]), label, li,
  input, textarea, small, code, summary, button, td, th, div) { font-size: max(1rem, 1em); }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.15rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1rem; }
[data-testid="stMain"] [data-testid="stWidgetLabel"] p { font-size: 1.05rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] table { font-size: 1rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] table p { font-size: inherit; }
[data-testid="stMain"] [data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
[data-testid="stMain"] .wsms-top1 .model { font-size: 1.05rem; font-weight: 600; }
[data-testid="stMain"] .wsms-top1 .guess { font-size: 1.6rem; font-weight: 700; white-space: nowrap; }
[data-testid="stMain"] .wsms-top5 :is(p, td, th, code),
[data-testid="stMain"] .wsms-input figcaption { font-size: 1rem; }
</style>"""


def style() -> None:
    """The presenter view's CSS (a style-only ``st.html``: it takes no room on the page)."""
    st.html(_CSS)


# ---------------------------------------------------------------- the zoom page

def input_html(x, px: int = IMAGE_PX, caption: str = "") -> str:
    """A ``(3, H, W)`` image in [0, 1] as an ``<img>`` ``px`` pixels wide, with ``caption``
    (plain text) under it. The image itself stays HxW (a PNG data URI of ~3 KB, no file
    for the server to keep); the browser scales it with square pixels, so the 32 pixels
    the network sees stay visible as pixels.

    Example:
        >>> page = input_html(np.ones((3, 32, 32)) * 0.5, 320, "<b>x")
        >>> 'src="data:image/png;base64,' in page, 'width="320"' in page, "&lt;b&gt;x" in page
        (True, True, True)
    """
    a = np.asarray(x, dtype=np.float32).transpose(1, 2, 0)
    a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    text = plain.html(caption)
    return (f'<figure class="wsms-input"><img src="{input_uri(a)}" width="{px}" height="{px}" alt="{text}">'
            f"<figcaption>{text}</figcaption></figure>")


def top1_line(label: str, model: str, cls: str, p: float) -> str:
    """One model's top guess as HTML in the model's colour (label and class escaped); a
    variant of the model (its multi-scale average, a lesion) has a dashed bar, as its
    bars are hatched in the zoom animation.

    Example:
        >>> top1_line("resnet20", "resnet20", "cat", 0.931)  # doctest: +ELLIPSIS
        '<div class="wsms-top1" ...><span class="model">resnet20</span> <span class="guess" ...>cat 93.1%</span></div>'
    """
    color = model_color(model or label)
    line = "dashed" if model and label != model else "solid"
    return (f'<div class="wsms-top1" style="color: {color}; border-left: 6px {line} {color}; padding-left: 0.5rem">'
            f'<span class="model">{plain.html(label)}</span> '
            f'<span class="guess" style="font-weight: 700; white-space: nowrap">{plain.html(cls)} {p:.1%}</span>'
            '</div>')


def zoom_style() -> None:
    """The zoom page's style, drawn once outside its fragment (a release then re-renders one
    element less): the first screen's row, the image, the top-guess lines (presenter view's
    style, more specific, makes them larger)."""
    st.html("<style>[data-testid=\"stMain\"] [data-testid=\"stLayoutWrapper\"]:has(> .st-key-presenter_answers) "
            "{ flex: 1 1 13rem; } .wsms-top1 { line-height: 1.25; margin-bottom: 0.3rem; } "
            ".wsms-top1 .guess { font-size: 1.2rem; } "
            ".wsms-input { margin: 0; } .wsms-input img { image-rendering: pixelated; display: block; } "
            ".wsms-input figcaption { font-size: 0.875rem; opacity: 0.7; text-align: center; "
            "margin-top: 0.375rem; }</style>")


def zoom_screen(sweeps: Sequence, image_at, zoom_slider, verdict: str | None, image_name: str = "",
                image_px: int = IMAGE_PX) -> float:
    """The zoom page's first screen, returning the zoom.

    Left, the image the networks see at the zoom, ``image_px`` pixels wide (:data:`IMAGE_PX`
    in presenter view); right, the zoom slider, each sweep's top guess with its
    probability in its model's colour, and the verdict. Called inside the page's
    ``st.fragment``, so a slider release redraws only this and the top-5 tables.

    Args:
        sweeps: the :class:`~wsms_viz.app.predict.Sweep` of each table on the page.
        image_at: ``zoom -> (3, 32, 32)`` image in [0, 1] the networks see.
        zoom_slider: draws the page's zoom slider and returns its value (the one widget,
            key ``zoom``, the other pages share); called inside the right-hand column.
        verdict: the page's sentence (:func:`wsms_viz.app.verdicts.zoom_verdict`), or None
            to leave it to the page (out of presenter view it follows the tables, outside
            the fragment: it does not change with the zoom).
        image_name: what the image is (its name, its true class), for the caption.
    """
    from .verdicts import show

    # A row that wraps: the image keeps its width, the answers take the rest, and go
    # under the image where less than 13rem is left (zoom_style's flex basis), rather
    # than being squeezed to nothing or covered by the image.
    with st.container(key="presenter_screen", horizontal=True, gap="medium"):
        left = st.container(width=image_px, key="presenter_image")
        right = st.container(key="presenter_answers")
    with right:
        zoom = zoom_slider()
        # One HTML element for every line, and the image below as one more: a slider
        # release re-renders two elements here, not one markdown block per model and an
        # image file fetched from the server (see widgets.top5_columns).
        with st.container(key="presenter_top1", gap=None):
            st.html("".join(top1_line(s.label, s.model, *s.top(zoom, 1)[0]) for s in sweeps))
        if verdict is not None:
            show(verdict)
    with left:
        st.html(input_html(image_at(zoom), image_px, f"{image_name + ': ' if image_name else ''}what the networks "
                                                     f"see at {zoom:.1f}x (32x32 pixels)"))
    return zoom
