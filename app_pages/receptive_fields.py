"""Page 2: what part of the image one output unit of each stage can see."""

import streamlit as st

from wsms_viz.analysis import receptive_field
from wsms_viz.app import figures, ui

sel = ui.page(
    "Receptive fields",
    "Stage 2 runs stage 1's first blocks on a half-size copy of the image, so each of its blocks covers "
    "**twice as many pixels** of the original as the same block in stage 1 (stage 3: four times); the "
    "table shows the field size after every block. Left: the theoretical field of one output position, "
    "computed from the model's own layers; right: the effective field, where that unit's gradient really "
    "lands for this image (it concentrates near the centre).",
    "section 3.1 and Fig. 2 (each stage sees the image halved), Fig. 1 (the same features at another scale); "
    "Araujo et al. (Distill 2019) for the arithmetic, Luo et al. (NIPS 2016) for the effective field.",
)
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
    left, right = st.columns([1, 2])
    left.plotly_chart(figures.field_boxes_figure(x, receptive_field.field_boxes(model.model, (row, col))),
                      key=f"rf_boxes_{where}")
    erf = ui.analysis(receptive_field.effective_receptive_fields, model, sel, zoom, position=(row, col))
    right.plotly_chart(figures.heatmap_overlays(x, erf, [f"stage {s + 1} (effective)" for s in range(len(erf))]),
                       key=f"rf_erf_{where}")
    st.dataframe(receptive_field.block_table(model.model), hide_index=True,
                 column_config={"size": "field size (px)", "jump": "jump (px between units)", "map": "map side"})
    with st.expander(f"Layer by layer: field size and jump of {model.label} (Araujo et al.'s table)"):
        st.dataframe([r.as_dict() for r in receptive_field.receptive_field_table(model.model)], hide_index=True)
