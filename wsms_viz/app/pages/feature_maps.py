"""Page 5: the feature maps of every stage, the analysis the paper left for future work."""

import streamlit as st

from wsms_viz.analysis import features
from wsms_viz.app import figures, ui

sel = ui.page(
    "Feature maps",
    "Each stage's feature maps after a block, for the current image; then one shared filter's response at "
    "every stage (in WSMS-Net it is literally the same filter on smaller copies of the image); then Fig. 1's "
    "claim measured: stage 2's maps of the image against stage 1's maps of the same image at half size, "
    "compared with unrelated images and with an MS-Net, whose stages share nothing.",
    "section 5 (future work: visualising the feature maps of different stages), Fig. 1.",
)
c1, c2, c3 = st.columns([3, 2, 2])
zoom = ui.zoom_slider(c1)
m = ui.pick_model(c1, sel, "fm_model", multi_stage=False)
scaling = c2.radio("Colour scale", features.SCALINGS, key="fm_scaling", **ui.LINK, horizontal=True,
                   help="local: each map its own range; stage: one range per stage and block; global: one "
                        "range per block across stages, so stages can be compared.")
f = ui.analysis(features.stage_feature_maps, m, sel, zoom, scaling=scaling)
blocks = [f"block {b + 1}" for b in range(len(f.maps[0]))]
block = blocks.index(c3.selectbox("Block", blocks, key="fm_block", **ui.LINK))
for s, stage_maps in enumerate(f.maps):
    if block < len(stage_maps):
        st.markdown(f"**Stage {s + 1}**, block {block + 1}: {stage_maps[block].shape[0]} channels of "
                    f"{stage_maps[block].shape[1]}x{stage_maps[block].shape[2]} (the 16 most active)")
        top = features.top_channels(stage_maps[block], 16)
        ui.chart(figures.feature_grid(stage_maps[block], f.ranges[s][block], top), key=f"fm_grid_{s}")
st.subheader("One shared filter at every stage")
channel = st.slider("Channel", 0, f.maps[0][block].shape[0] - 1, 0, key="fm_channel", **ui.LINK)
resp = ui.analysis(features.shared_filter_responses, m, sel, zoom, block=block, channel=channel)
ui.chart(figures.shared_filter_figure(resp, channel, block), key="fm_shared")
st.subheader("Fig. 1 measured")
rows = ui.fig1_rows(sel)
if rows:
    ui.chart(figures.similarity_figure(rows), key="fm_fig1")
