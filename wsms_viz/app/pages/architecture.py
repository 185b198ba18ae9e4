"""Page 7: the chosen model drawn as in the paper's Fig. 2, with real tensor shapes."""

import streamlit as st

from wsms_viz.app import presenter, ui

sel = ui.page(
    "Architecture",
    "The chosen model drawn from the model itself: one column per stage, each stage seeing the image at "
    "half the size of the previous one, blocks at the same depth joined where they use **the same "
    "weights**, then the concatenation, the integration layer and the classifier. Every box shows the "
    "shape (channels x height x width) of the tensor that leaves it, for one 32x32 image.",
    "section 3.1 and Fig. 2 (stages and shared weights), section 3.3 and Fig. 3 (the integration "
    "layer), Fig. 6 (WSMS-ResNet); an MS-Net (section 3.2) has the same shape with nothing shared.",
    image=False,
)
if not sel.models:
    st.info("Pick a model in the sidebar.")
    st.stop()
labels = [m.label for m in sel.models]
pick = st.selectbox("Model", labels, index=next((i for i, m in enumerate(sel.models) if not m.is_baseline), 0),
                    key="arch_model")
arch, fig = ui.architecture(sel.models[labels.index(pick)].key)
ui.chart(fig, key="arch_diagram", config={"displayModeBar": False})
shared = arch.params_unshared - arch.params_total
if shared:
    st.caption(f"Sharing saves {shared:,} parameters: {arch.params_total:,} instead of {arch.params_unshared:,}.")
presenter.table(arch.rows(), hide_index=True, height="content")  # every step shown, no inner scroll
