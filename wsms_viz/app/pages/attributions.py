"""Page 3: which pixels each stage of WSMS-Net used for its answer."""

import streamlit as st

from wsms_viz.analysis import attribution
from wsms_viz.app import figures, study_view, ui, verdicts
from wsms_viz.app.plain import md

sel = ui.page(
    "Attributions per stage",
    "Which pixels pushed the network towards its answer, taken through each stage separately and drawn on "
    "**one colour scale** (or one per stage, to see a weak stage's pattern), with the baseline beside. "
    "The bars give each stage's share of the attribution; "
    "the last chart shows how the shares move when you zoom: does the answer move to the stages that see "
    "the image smaller?",
    "Fig. 1 and section 3.1 (each stage contributes features at its own scale); section 5 asks for exactly "
    "this kind of analysis. Methods: Integrated Gradients, Saliency, Grad-CAM (Captum), NoiseTunnel = SmoothGrad.",
)
c1, c2, c3 = st.columns([3, 2, 2])
zoom = ui.zoom_slider(c1)
m = ui.pick_model(c1, sel, "attr_model")
if m is None:
    st.stop()
method = c2.selectbox("Method", attribution.METHODS, key="attr_method", **ui.LINK,
                      format_func=lambda s: s.replace("_", " "))
target = ui.class_index(c2, m, sel, "attr_class")
noise = c3.toggle("NoiseTunnel", key="attr_noise", **ui.LINK, disabled=method == "grad_cam",
                  help="SmoothGrad: averages the method over 8 noisy copies of the image (8x slower). "
                       "Not for Grad-CAM, which is smooth already.")
noise = noise and method != "grad_cam"
shared = c3.radio("Colour scale", ("one for all stages", "one per stage"), key="attr_scale", **ui.LINK, horizontal=True,
                  help="One for all: stages compare, and a stage that carries little looks blank. One per "
                       "stage: each map uses the whole scale, so a weak stage's pattern shows.") == "one for all stages"
kw = dict(method=method, target=target, smoothgrad_samples=8 if noise else 0)
attr = ui.analysis(attribution.attribute_stages, m, sel, zoom, **kw)
maps, titles = list(attr.maps), [f"stage {s + 1}" for s in range(len(attr.maps))]
base = ui.baseline(sel)
if base is not None:
    b = ui.analysis(attribution.attribute_stages, base, sel, zoom, **{**kw, "target": attr.target})
    maps, titles = maps + b.maps, titles + ["baseline"]
st.caption(f"Explaining class **{md(m.classes[attr.target])}** (logit {attr.logit:.2f}) at zoom {zoom:.1f}x: "
           f"the stages of **{md(m.label)}**" + (f", then the baseline **{md(base.label)}**" if base else "") + ".")
st.caption("Colours: **one scale for all panels**, so their strengths compare." if shared else
           "Colours: **one scale per panel**: each map's strongest pixel is the darkest, so strengths do "
           "not compare across panels (the bars below do that).")
ui.chart(figures.heatmap_overlays(ui.current_input(sel, zoom), maps, titles, shared_scale=shared),
         key="attr_maps")
left, right = st.columns(2)
ui.chart(figures.stage_bars(attr.shares, "share of the attribution per stage", "share", percent=True),
         key="attr_shares", where=left)
verdicts.show(verdicts.attribution_verdict(attr.shares, zoom), left)
if right.toggle("Shares across zoom", key="attr_sweep",
                help="Runs the method at 6 zooms from 0.5x to 3x (slow with Integrated Gradients)."):
    z = ui.analysis(attribution.stage_shares_across_zoom, m, sel, 1.0, normalized=False,
                    factors=(0.5, 0.75, 1.0, 1.5, 2.0, 3.0), target=attr.target, method=method)
    ui.chart(figures.shares_vs_zoom_figure(z, current=zoom), key="attr_zoom_shares", where=right)
    verdicts.show(verdicts.shares_move_verdict(z.factors, z.shares), right)
st.subheader(f"Over the val set: how {md(m.label)}'s stage shares move with zoom")
st.caption(study_view.regime_caption(m.card))
shares = study_view.stage_share_figure(m.card)
if shares is not None:
    ui.chart(shares, key="attr_study_shares")
else:
    st.info("Its card has no stage study: run `python -m wsms_viz.evaluation.study` on the checkpoint.")
