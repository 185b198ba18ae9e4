"""Page 5: the feature maps of every stage, the analysis the paper left for future work."""

import streamlit as st

from wsms_viz import ui

st.title("Feature maps")
ui.intro(
    "Each stage's feature maps after every block, for the current image. The paper's Fig. 1 claims that "
    "stage 2 sees in the original image what stage 1 sees in a 2x close-up: here that is measured.",
    "section 5 (future work: visualising the feature maps of different stages), Fig. 1.",
)
ui.sidebar()
ui.pending("features")
