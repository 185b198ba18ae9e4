"""Page 4: how the integration layer weighs the stages."""

import streamlit as st

from wsms_viz.analysis import integration
from wsms_viz.app import figures, ui

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
if m is None:
    st.stop()
target = ui.class_index(c2, m, sel, "int_class")
w = integration.integration_weights(m.model)
st.subheader(f"Weights ({w.kind} integration, read from the {w.layer})")
st.plotly_chart(figures.integration_weights_figure(w), key="int_weights")
left, right = st.columns(2)
left.plotly_chart(figures.stage_bars(w.norms, "weight norm per stage", "Frobenius norm"), key="int_norms")
right.plotly_chart(figures.stage_bars(w.norms_per_channel, "weight norm per input channel", "norm / sqrt(C)"),
                   key="int_norms_per_channel")
c = ui.analysis(integration.stage_contributions, m, sel, zoom, target=target)
st.subheader(f"This image at {zoom:.1f}x: class {m.classes[c.target]} (logit {c.logit:.2f})")
left, right = st.columns(2)
left.plotly_chart(figures.contributions_figure(c), key="int_contrib")
right.plotly_chart(figures.stage_bars(c.feature_shares, "share of the pooled feature per stage", "share"),
                   key="int_feature_shares")
