"""Page 4: how the integration layer weighs the stages."""

import streamlit as st

from wsms_viz.analysis import integration
from wsms_viz.app import figures, study_view, ui, verdicts
from wsms_viz.app.plain import md

sel = ui.page(
    "Integration layer",
    "The integration layer mixes the concatenated stage outputs before the classifier. Its weights, split "
    "into one block per stage, show how much each scale *can* matter; for the current image, how much each "
    "stage *does* add to the chosen class's score (switching a stage off, and the exact split).",
    "section 3.3 and Fig. 3 (no conv, 1x1 conv, 3x3 conv integration layers); the lesions follow the "
    "ResNet-ensemble lecture. For a no-conv model the same split is read from the final linear layer.",
)
c1, c2 = st.columns([3, 2])
zoom = ui.zoom_slider(c1)
m = ui.pick_model(c1, sel, "int_model")
if m is not None and (why := study_view.page_limit(m.model, "integration", md(m.label))):
    st.info(why)
    st.stop()
if m is None:
    st.stop()
target = ui.class_index(c2, m, sel, "int_class")
w = integration.integration_weights(m.model)
st.subheader(f"Weights ({w.kind} integration, read from the {w.layer})")
# Summary first: one number per stage, then the full matrix for who wants to look closer.
st.caption("How big each stage's weights are: the square root of the sum of their squares (a weight "
           "matrix's length, like a vector's). Left: all of a stage's weights; right: divided by the square "
           "root of its channel count, so stage 1's 64 channels and stage 3's 16 compare fairly.")
left, right = st.columns(2)
ui.chart(figures.stage_bars(w.norms, "size of each stage's weights", "size (all channels)"),
         key="int_norms", where=left)
ui.chart(figures.stage_bars(w.norms_per_channel, "the same, per input channel", "size per channel"),
         key="int_norms_per_channel", where=right)
st.markdown(f"**Every weight** ({w.matrix.shape[0]} outputs x {w.matrix.shape[1]} input channels)")
st.caption("One column per channel of the concatenation (stage 1's, then stage 2's, then stage 3's, under "
           "their coloured bands), one row per output; red pushes up, blue pushes down. A stage whose part "
           "looks pale is used little.")
ui.chart(figures.integration_weights_figure(w), key="int_weights")
c = ui.analysis(integration.stage_contributions, m, sel, zoom, target=target)
st.subheader(f"This image at {zoom:.1f}x: class {md(m.classes[c.target])} (score {c.logit:.2f})")
st.caption("Switching stages off (left bars, middle bars) and, right bars, the score split into one part per "
           "stage, keeping each ReLU on or off as it is for this image, so the parts add up exactly.")
verdicts.show(verdicts.integration_verdict(c.logit_drop, c.feature_shares, m.classes[c.target]))
left, right = st.columns(2)
ui.chart(figures.contributions_figure(c, m.classes), key="int_contrib", where=left)
ui.chart(figures.stage_bars(c.feature_shares, "share of the pooled feature per stage", "share",
                            percent=True), key="int_feature_shares", where=right)
