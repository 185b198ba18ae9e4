"""Page 4: how the integration layer weighs the stages."""

import streamlit as st

from wsms_viz import ui

st.title("Integration layer")
ui.intro(
    "The integration layer mixes the concatenated stage outputs before the classifier. Its weights, split "
    "into one block per stage, show how much each scale can matter; for the current image, each stage's "
    "share of the chosen class's score.",
    "section 3.3 and Fig. 3 (no conv, 1x1 conv, 3x3 conv integration layers).",
)
ui.sidebar()
ui.pending("integration")
