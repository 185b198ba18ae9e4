"""Page 3: which pixels each stage of WSMS-Net used for its answer."""

import streamlit as st

from wsms_viz import ui

st.title("Attributions per stage")
ui.intro(
    "Which pixels pushed the network towards its answer, taken through each stage separately, on one "
    "colour scale. When you zoom in, does the answer move to the stages that see the image smaller?",
    "Fig. 1 and section 3.1 (each stage contributes features at its own scale); section 5 asks for "
    "exactly this kind of analysis.",
)
ui.sidebar()
ui.pending("attribution")
