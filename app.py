"""wsms-viz, the teaching app: ``streamlit run app.py``.

The entry page only routes. Each page is a thin script in app_pages/ (not pages/: Streamlit
would also auto-discover that folder, and a first visit straight to a page's URL would then
skip this file and its st.navigation) that draws the shared
sidebar (image, models, zoom centre) with ``ui.page()`` and calls into wsms_viz.
The sidebar is drawn by the pages, not here: Streamlit 1.67 does not resend unchanged
entrypoint elements on a rerun, and AppTest, which builds its tree from one run's
messages, then loses them.
"""

from pathlib import Path

import streamlit as st
import torch

from wsms_viz.app import links
from wsms_viz.app.catalog import app_threads

# The models are small (32x32 inputs), so a second intra-op thread gains little, and when
# anything else uses the CPU, OpenMP threads waiting on each other make it far slower:
# Integrated Gradients on wsms_resnet20 took 0.11 s with one thread and 10.8 s with two
# beside a training run on the 2-core machine (benchmarks/attribution_speed.py --threads).
# $WSMS_THREADS overrides. Process-wide, so every session gets it; set here, by the app,
# not when a module is imported.
if torch.get_num_threads() != app_threads():
    torch.set_num_threads(app_threads())

# A bundled file, served by this server: a ":material/...:" favicon is fetched from a font
# CDN, which a classroom without internet (or behind a proxy) never reaches.
ICON = Path(__file__).resolve().parent / "wsms_viz" / "app" / "icon.png"
st.set_page_config(page_title="wsms-viz: WSMS-Net in class", page_icon=str(ICON), layout="wide")

PAGES = [
    st.Page("app_pages/lesson.py", title="Lesson", icon=":material/school:"),
    st.Page("app_pages/zoom_compare.py", title="1 Zoom compare", icon=":material/zoom_in:", default=True),
    st.Page("app_pages/receptive_fields.py", title="2 Receptive fields", icon=":material/filter_center_focus:"),
    st.Page("app_pages/attributions.py", title="3 Attributions per stage", icon=":material/highlight:"),
    st.Page("app_pages/integration.py", title="4 Integration layer", icon=":material/merge:"),
    st.Page("app_pages/feature_maps.py", title="5 Feature maps", icon=":material/grid_on:"),
    st.Page("app_pages/scale_robustness.py", title="6 Scale robustness", icon=":material/show_chart:"),
    st.Page("app_pages/architecture.py", title="7 Architecture", icon=":material/account_tree:"),
]

page = st.navigation(PAGES)
opened_with = links.opening()  # the link's parameters, before a widget drops the bad ones
try:
    page.run()
finally:  # also after a page's st.stop(): the sidebar's widgets are drawn by then
    links.report(opened_with)
