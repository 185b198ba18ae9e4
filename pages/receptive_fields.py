"""Page 2: what part of the image one output unit of each stage can see."""

import streamlit as st

from wsms_viz import figures, receptive_field, ui

st.title("Receptive fields")
ui.intro(
    "Each stage of WSMS-Net runs the same blocks on a smaller copy of the image, so one of its output units "
    "covers twice (stage 2) or four times (stage 3) as much of the picture. Left: the theoretical field of "
    "one output position, computed from the model's own layers; right: the effective field, where that "
    "unit's gradient really lands for this image (it concentrates near the centre).",
    "section 3.1 and Fig. 2 (each stage sees the image halved), Fig. 1 (the same features at another scale); "
    "Araujo et al. (Distill 2019) for the arithmetic, Luo et al. (NIPS 2016) for the effective field.",
)
sel = ui.sidebar()
ui.untrained_notice(sel)
if not ui.need_image(sel):
    st.stop()
c1, c2, c3 = st.columns([3, 2, 2])
zoom = ui.zoom_slider(c1)
m = ui.pick_model(c1, sel, "rf_model")
n = receptive_field.block_fields(m.model)[0][-1].map_size if m else 8
row = c2.slider("Output row", 0, n - 1, n // 2, key="rf_row")
col = c3.slider("Output column", 0, n - 1, n // 2, key="rf_col")
x = ui.current_input(sel, zoom)
for model, where in ((m, "WSMS / MS"), (ui.baseline(sel), "baseline")):
    if model is None:
        continue
    st.subheader(f"{model.label} ({where})")
    left, right = st.columns(2)
    left.plotly_chart(figures.field_boxes_figure(x, receptive_field.field_boxes(model.model, (row, col))),
                      key=f"rf_boxes_{where}")
    erf = ui.analysis(receptive_field.effective_receptive_fields, model, sel, zoom, position=(row, col))
    right.plotly_chart(figures.heatmap_overlays(x, erf, [f"stage {s + 1} (effective)" for s in range(len(erf))]),
                       key=f"rf_erf_{where}")
    with st.expander(f"Layer by layer: field size and jump of {model.label} (Araujo et al.'s table)"):
        st.dataframe([r.as_dict() for r in receptive_field.receptive_field_table(model.model)], hide_index=True)
