"""Page 1, the heart of the app: zoom in and out and watch the models' predictions."""

import streamlit as st

from wsms_viz.app import presenter, ui, verdicts
from wsms_viz.app.plain import md
from wsms_viz.app.zoom_figures import Prebuilt

sel = ui.page(
    "Zoom compare",
    "Zoom into the image or out of it and watch each network's top-5 guesses. A plain CNN has learned "
    "objects at the size they appear in its training photos; WSMS-Net also looks at the image at half "
    "and a quarter of its size with **the same filters**, so a close-up and a long shot can look alike "
    "to it. Switch its stages off to see which scale carries the answer.",
    "Fig. 1 and section 3.1 (the idea), section 4.1 and Fig. 5 (close-ups and long shots that only "
    "WSMS-Net gets right); the multi-scale averaging is VGG's test-time trick (Simonyan & Zisserman, 4.2).",
)
if not sel.presenter:  # on a projector the image's caption names it
    st.caption(f"Image: **{md(sel.image.name)}**"
               + (f", true class **{md(sel.image.label)}**" if sel.image.label else "") + ".")

top = st.columns([2, 3])  # the stage toggles on one row
stages_on = ui.stage_toggles(top[1], sel.models)
plain = [m.label for m in sel.models if m.is_baseline]
tta = top[1].toggle("Multi-scale averaging", key="tta", **ui.LINK, disabled=not plain,
                    help="VGG's test-time trick, for the plain CNNs: average each one's softmax over the "
                         "image at 0.875x, 1x and 1.125x the current zoom (VGG's Q = {S-32, S, S+32}); "
                         "shown as an extra table.")
if tta and plain and not sel.presenter:  # presenter view: each table's name says "+ multi-scale"
    top[1].caption("Averaged: " + ", ".join(f"**{md(p)}**" for p in plain)
                   + " (each as '+ multi-scale'; the multi-stage models are not).")
args = (sel.image.key, sel.center, sel.model_keys, stages_on, tta)
sweeps = ui.sweeps(*args, _pixels=sel.image.pixels)
cls = ui.class_picker(top[0], sweeps, sel.image.label, sel.image.key)
verdict = verdicts.zoom_verdict(sweeps, cls)


# Only the zoom slider and what it changes rerun on release: the first screen (the image
# the networks see, the slider, each model's top guess; in presenter view the verdict),
# the top-5 tables and the script that moves the animation. The animation (26 frames, ~160 KB of JSON)
# stays outside, so a release does not serialise and send it again.
@st.fragment
def live():
    zoom = presenter.zoom_screen(sweeps, lambda z: ui.current_input(sel, z), ui.zoom_slider,
                                 verdict if sel.presenter else None,
                                 sel.image.name + (f" ({sel.image.label})" if sel.image.label else ""),
                                 image_px=presenter.IMAGE_PX if sel.presenter else presenter.IMAGE_PX_NORMAL)
    ui.top5_columns(sweeps, zoom, cls)
    ui.sync_animation(zoom, ui.animation_token(*args, cls))


presenter.zoom_style()
ui.top5_style()
live()
if not sel.presenter:  # beside the image on a projector
    verdicts.show(verdict)
st.caption("Drag the slider under the figure for a live preview: the browser already holds every zoom "
           "step. The Zoom slider above sets the zoom the other pages use. Non-square photos are cut to a "
           "square as tall as their short side, which slides to follow the zoom centre; the zoom then crops "
           "that square (a big photo at the resolution the 3x zoom needs) and only then shrinks it to the "
           "32x32 pixels the networks see.")
ui.chart(Prebuilt(ui.animation(*args, cls, _pixels=sel.image.pixels, presenter=sel.presenter)), key="zoom_animation",
         config={"displayModeBar": False})
