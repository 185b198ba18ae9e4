"""Page 2: what part of the image one output unit of each stage can see."""

import streamlit as st

from wsms_viz import ui

st.title("Receptive fields")
ui.intro(
    "Each stage of WSMS-Net runs the same blocks on a smaller copy of the image, so one of its output units "
    "covers twice (stage 2) or four times (stage 3) as much of the picture. The boxes show the theoretical "
    "field of one output position, computed from the model's own layers.",
    "section 3.1 and Fig. 2 (each stage sees the image halved), Fig. 1 (the same features at another scale).",
)
ui.sidebar()
ui.pending("receptive_field")
