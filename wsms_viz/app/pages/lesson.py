"""Page 0, the Lesson: the paper's story in seven steps on the live models, every number
from the checkpoints' cards or computed on the spot."""

import streamlit as st

from wsms_viz.app import lesson, ui

st.title("Lesson: does sharing filters across scales make a CNN scale-robust?")
ui.intro(
    "Seven short steps, about fifteen minutes. Each has one thing to try, then the answer measured on this "
    "app's trained networks, a take-home sentence, the new words explained, and a button that opens the full "
    "page on the same photo and zoom.",
    "the whole paper: the idea (Fig. 1, 2, section 3), the claim (Table 2, section 4.2), the open question "
    "(section 5).",
)
lesson.render()
