"""The widgets the pages share: the zoom slider and what follows it, model and class pickers.

The zoom slider's value (key ``zoom``) is kept across pages for the session; on the zoom
page :func:`sync_animation` moves the animation to it in the browser, with the script
in ``zoom_sync.js`` (package data).
"""

from __future__ import annotations

from importlib.resources import files

import streamlit as st
import torch

from . import catalog, predict
from .framing import frame, network_inputs
from .images import ImageError
from .links import LINK
from .plain import html
from .sidebar import chosen_root
from .state import Selection, _fig1, gallery

ZOOM_MIN, ZOOM_MAX = predict.ZOOMS[0], predict.ZOOMS[-1]
STAGE_NAMES = ("full image", "1/2 size", "1/4 size", "1/8 size", "1/16 size")
# Our own constant script with two values we format, hence unsafe_allow_javascript.
_SYNC_JS = files(__package__).joinpath("zoom_sync.js").read_text(encoding="utf-8")


def zoom_slider(where=None) -> float:
    """The zoom slider; its value (key ``zoom``) is kept across pages for the session."""
    where = where or st
    return float(where.slider(
        "Zoom", ZOOM_MIN, ZOOM_MAX, 1.0, 0.1, key="zoom", format="%.1fx", persist_state="session", **LINK,
        help="1x is the image as it is; 2x crops half its width around the centre and enlarges "
             "it; 0.5x shrinks it to half size inside a grey frame.",
    ))



def sync_animation(zoom: float, token: str) -> None:
    """Shows frame ``zoom`` of the zoom animation tagged ``token``, without re-sending it."""
    js = _SYNC_JS.replace('"__ZOOM__"', f'"{zoom:.1f}"').replace('"__TOKEN__"', f'"{token}"')
    st.html(f"<script>{js}</script>", unsafe_allow_javascript=True, width="content")


def stage_toggles(where, models: list[catalog.LoadedModel]) -> tuple[bool, ...]:
    """One on/off toggle per WSMS stage (the lesion study); all on when no model has stages.

    All in one container, so what follows keeps its place whether they are drawn or not
    (see :func:`wsms_viz.app.sidebar.sidebar`); with every stage off, a note says what the
    models' answers then are (:func:`stages_note`).
    """
    n = predict.stage_count(models)
    if n == 1:
        return ()
    box = where.container()
    box.caption("Stages of the multi-stage models (switch one off: a lesion)")
    # A row that wraps, each toggle as wide as its label: fixed columns cut the labels off
    # at 1024 px (three columns in two fifths of the page).
    row = box.container(horizontal=True)
    on = tuple(row.toggle(f"stage {s + 1}", True, key=f"stage_{s}", **LINK, help=f"stage {s + 1} sees the "
                          f"image at {STAGE_NAMES[min(s, len(STAGE_NAMES) - 1)]}") for s in range(n))
    note = stages_note(on)
    if note:
        box.warning(note, icon=":material/visibility_off:")
    return on


def stages_note(stages_on: tuple[bool, ...]) -> str | None:
    """What the page says when every stage is off, else None.

    With no stage the integration layer gets only zeros, so a multi-stage model answers with
    its biases alone: the same probabilities for every image and zoom, however confident.

    Example:
        >>> stages_note((True, False, False)) is None, "biases" in stages_note((False, False, False))
        (True, True)
    """
    if not stages_on or any(stages_on):
        return None
    return ("Every stage is off: the multi-stage models see nothing, so what they answer comes from their "
            "integration layer's biases alone, the same for every image and zoom (however confident it looks). "
            "Switch a stage on to compare.")


def class_picker(where, sweeps: list[predict.Sweep], label: str | None, image_key: str = "") -> str:
    """The class whose probability the curve follows: the true one, else the first model's guess.

    Kept (and in the link) while the image stays; a new image starts from its own default.
    """
    classes = list(sweeps[0].classes)
    default = label if label in classes else sweeps[0].top(1.0, 1)[0][0]
    state = st.session_state
    if state.get("_follow_image", image_key) != image_key or state.get("follow") not in (*classes, None):
        state["follow"] = default
    state["_follow_image"] = image_key
    # The default only for a widget that has no value yet (else Streamlit warns of two).
    kw = {} if "follow" in state else {"index": classes.index(default)}
    return where.selectbox("Class to follow", classes, key="follow", **LINK, **kw)


# The top-5 tables: one card per model with a fixed width, in a row that wraps onto more
# rows, so four models plus their multi-scale averages (six tables) stay readable on a
# 1024-pixel screen, where six equal columns overlapped. All of them are one HTML element:
# a slider release re-renders one element instead of three per model through Streamlit's
# markdown (benchmarks/class_load.py: ~90 ms of a browser's CPU less per release with the
# first screen's image and top guesses done the same way).
CARD_WIDTH = 270  # pixels: rank, "automobile", the bar and "100.0%" on one line; two fit at 1024
BAR_CELLS = 8
TOP5_CSS = (
    ".wsms-top5 { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; } "
    f".wsms-top5 .wsms-card {{ width: {CARD_WIDTH}px; }} "
    ".wsms-top5 .wsms-head { margin: 0 0 0.25rem; } "
    ".wsms-top5 table { border-collapse: collapse; margin-bottom: 0.25rem; } "
    # Greys at part opacity and the text's own colour dimmed: readable on the light theme
    # and the dark one (Streamlit follows the visitor's system setting).
    ".wsms-top5 th, .wsms-top5 td { border: 1px solid rgba(128, 128, 128, 0.25); padding: 0.25rem 0.375rem; "
    "text-align: left; font-weight: 400; } "
    ".wsms-top5 th { font-weight: 600; } "
    ".wsms-top5 td.p { white-space: nowrap; } "
    ".wsms-top5 code { font-size: 0.75em; padding: 0.1em 0.2em; border-radius: 0.25rem; "
    "background: rgba(128, 128, 128, 0.2); } "
    ".wsms-top5 .wsms-note { font-size: 0.875rem; opacity: 0.7; margin: 0; }"
)


def top5_style() -> None:
    """The top-5 cards' style (a style-only ``st.html``: it takes no room on the page)."""
    st.html(f"<style>{TOP5_CSS}</style>")


def top5_table(s: predict.Sweep, zoom: float, cls: str) -> str:
    """One model's top-5 at ``zoom`` as an HTML table, the followed class in bold (names
    escaped: they come from files)."""
    rows = "".join(f"<tr><td>{i + 1}</td><td>{f'<strong>{html(c)}</strong>' if c == cls else html(c)}</td>"
                   f'<td class="p"><code>{_bar(p)}</code>&nbsp;{p:.1%}</td></tr>'
                   for i, (c, p) in enumerate(s.top(zoom)))
    return f"<table><thead><tr><th></th><th>class</th><th>probability</th></tr></thead><tbody>{rows}</tbody></table>"


def top5_card(s: predict.Sweep, zoom: float, cls: str) -> str:
    """One model's card: its name and the zoom, its top-5 table, its top guess and the
    followed class's probability.

    Example:
        >>> import numpy as np
        >>> s = predict.Sweep("m", (1.0,), np.array([[0.9, 0.1]]), ("cat", "dog"), "m")
        >>> card = top5_card(s, 1.0, "dog")
        >>> "<strong>m</strong> at 1.0x" in card, card.count("<tr>"), "P(dog) = 10.0%" in card
        (True, 3, True)
    """
    p = float(s.curve(cls)[predict.nearest(s.zooms, zoom)])
    top = s.top(zoom, 1)[0]
    return (f'<div class="wsms-card"><p class="wsms-head"><strong>{html(s.label)}</strong> at {zoom:.1f}x</p>'
            f"{top5_table(s, zoom, cls)}"
            f'<p class="wsms-note">top guess: {html(top[0])} ({top[1]:.1%}) · P({html(cls)}) = {p:.1%}</p></div>')


def top5_columns(sweeps: list[predict.Sweep], zoom: float, cls: str) -> None:
    """Each model's top-5 at ``zoom``, in cards that wrap onto as many rows as needed: one
    ``st.html``, styled by :func:`top5_style`, which the page draws once outside its fragment."""
    st.html('<div class="wsms-top5">' + "".join(top5_card(s, zoom, cls) for s in sweeps) + "</div>")


def _bar(p: float, width: int = BAR_CELLS) -> str:
    n = round(p * width)
    return "█" * n + "·" * (width - n)


def pick_model(where, sel: Selection, key: str, multi_stage: bool = True) -> catalog.LoadedModel | None:
    """A selectbox over the selected models, a multi-stage one first when ``multi_stage``."""
    multi = [m for m in sel.models if not m.is_baseline]
    models = multi if multi_stage else multi + [m for m in sel.models if m.is_baseline]
    if not models:
        where.info("Pick a multi-stage model (WSMS-Net or MS-Net) in the sidebar for this view.")
        return None
    labels = [m.label for m in models]
    return models[labels.index(where.selectbox("Model", labels, key=key, **LINK))]


def baseline(sel: Selection) -> catalog.LoadedModel | None:
    return next((m for m in sel.models if m.is_baseline), None)


def class_index(where, m: catalog.LoadedModel, sel: Selection, key: str) -> int | None:
    """A class to explain: the predicted one (None) or one picked by name."""
    options = ["the predicted class"] + list(m.classes)
    default = options.index(sel.image.label) if sel.image.label in options else 0
    pick = where.selectbox("Class to explain", options, index=default, key=key, **LINK)
    return None if pick == options[0] else m.classes.index(pick)


def fig1_rows(sel: Selection) -> list:
    """Fig. 1's similarity for the selected multi-stage models over 16 real images: val
    images of the chosen dataset, which is the demo set shipped with the app when the
    server shares none; the smooth synthetic images of the features module only when
    even that cannot be read."""
    from ..analysis.features import blob_images

    keys = tuple(m.key for m in sel.models if not m.is_baseline)
    if not keys:
        st.info("Pick a WSMS-Net (and an MS-Net to compare) in the sidebar for this measurement.")
        return []
    data = chosen_root()
    try:
        if data is None:
            raise ImageError("no dataset")
        g = gallery(str(data.path))
        n = min(16, len(g))
        if n < 2:
            raise ImageError("fewer than 2 images")
        # Evenly spaced in gallery order (class by class), so every class is among them.
        imgs = [g.at(i * len(g) // n).pixels for i in range(n)]
        images = torch.stack([network_inputs(p, frame(p.shape), [1.0])[0] for p in imgs])
        source, said = f"{g.root}:{n}", f"{n} val images of {data.label}, spread over its classes"
    except (ImageError, IndexError):
        images, source, said = blob_images(16), "blobs", "16 synthetic blobs (no readable dataset)"
    st.caption(f"Images: {said}.")
    return _fig1(keys, source, images)

