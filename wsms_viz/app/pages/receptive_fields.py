"""Page 2: what part of the image one output unit of each stage can see."""

import streamlit as st

from wsms_viz.analysis import receptive_field
from wsms_viz.app import figures, links, presenter, study_view, ui
from wsms_viz.app.plain import md

sel = ui.page(
    "Receptive fields",
    "Stage 2 runs stage 1's first blocks on a half-size copy of the image, so each of its blocks covers "
    "**twice as many pixels** of the original as the same block in stage 1 (stage 3: four times); the "
    "table shows the field size after every block. Left: the theoretical field of one output position, "
    "computed from the model's own layers (drawn whole, past the image's edges, when it is larger than the "
    "image); right: the effective field, where that unit's gradient really lands for this image (it "
    "concentrates near the centre), beside the image itself.",
    "section 3.1 and Fig. 2 (each stage sees the image halved), Fig. 1 (the same features at another scale); "
    "Araujo et al. (Distill 2019) for the arithmetic, Luo et al. (NIPS 2016) for the effective field.",
)
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
zoom = ui.zoom_slider(c1)
m = ui.pick_model(c1, sel, "rf_model")
if m is not None and (why := study_view.page_limit(m.model, "receptive_fields", md(m.label))):
    st.info(why)
    links.stop()
n = receptive_field.block_fields(m.model)[0][-1].map_size if m else 8
row = c2.slider("Output row", 0, n - 1, n // 2, key="rf_row", **ui.LINK, help="A position in the last maps (the "
                "same place in every stage); at an earlier block, the unit there that looks at the same place.")
col = c3.slider("Output column", 0, n - 1, n // 2, key="rf_col", **ui.LINK)
blocks_of = receptive_field.stage_blocks(m.model) if m else [3]
# Opens on the last block every stage has (block 1 of WSMS-ResNet-20), so all stages are drawn.
labels, shared = [f"block {b + 1}" for b in range(max(blocks_of))], min(blocks_of)
block = labels.index(c4.selectbox(
    "After block", labels, index=shared - 1, key="rf_block", **ui.LINK,
    help=f"Fields grow block by block; after the last they are larger than the 32x32 image. Every stage has "
         f"blocks 1-{shared}; after that only the stages that have the block are drawn."))
x = ui.current_input(sel, zoom)
for model, where in ((m, "WSMS / MS"), (ui.baseline(sel), "baseline")):
    if model is None:
        continue
    st.subheader(f"{md(model.label)} ({where})")
    blocks = receptive_field.stage_blocks(model.model)
    b = min(block, max(blocks) - 1)
    boxes = receptive_field.field_boxes(model.model, (row, col), block=b)
    missing = [s + 1 for s, k in enumerate(blocks) if k <= b]
    if missing:
        st.caption(f"Stage {', '.join(map(str, missing))} has no block {b + 1}: it stops earlier, its map "
                   "already at the last size.")
    left, right = st.columns([1, 2])
    ui.chart(figures.field_boxes_figure(x, boxes), key=f"rf_boxes_{where}", where=left)
    erf = ui.analysis(receptive_field.effective_receptive_fields, model, sel, zoom, position=(row, col), block=b)
    ui.chart(figures.heatmap_overlays(x, erf, [f"stage {bx.stage + 1} (effective)" for bx in boxes],
                                      opacity=0.5, with_image=True), key=f"rf_erf_{where}", where=right)
    note = receptive_field.final_field_note(model.model)
    if note:
        st.caption(note)
    # `start` (where unit 0's field begins) is left to the layer-by-layer table, which explains it.
    presenter.table([{k: v for k, v in r.items() if k != "start"} for r in receptive_field.block_table(model.model)],
                    hide_index=True, column_config={"size": "field size (px)", "jump": "jump (px between units)",
                                                    "map": "map side"})
    with st.expander(f"Layer by layer: field size and jump of {md(model.label)} (Araujo et al.'s table)"):
        st.caption("size: the side of one unit's field in input pixels; jump: input pixels between neighbouring "
                   "units; start: where the field of unit 0 begins, negative where it reaches past the image's "
                   "edge into the zero padding.")
        presenter.table([r.as_dict() for r in receptive_field.receptive_field_table(model.model)], hide_index=True)
