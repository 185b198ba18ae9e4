"""Page 6: how accuracy holds up as images are zoomed, and what WSMS-Net costs."""

import streamlit as st

from wsms_viz.app import robustness, study_view, ui, verdicts
from wsms_viz.app.plain import md

sel = ui.page(
    "Scale robustness",
    "How each network's validation accuracy changes when **every** validation image is zoomed in or out, "
    "measured by the evaluator and stored with the checkpoint. A scale-robust network keeps a flatter "
    "curve. Below: what the extra stages cost in parameters and multiplications, and how training went.",
    "section 4.2 and Table 2 (accuracy and parameters of WSMS-ResNet), section 4.1 (the +20% "
    "multiplications), section 5 (the conclusion's scale-robustness claim).",
    image=False,
)
if not sel.models:
    st.info("Pick one or more models in the sidebar: this page compares their accuracy against zoom, what "
            "they cost and how their training went.")
    st.stop()

st.subheader("Accuracy against zoom")
tta = st.toggle("Add VGG multi-scale averaging (+TTA, dashed)", key="robustness_tta", **ui.LINK,
                help="Each model's softmax averaged over the image at 0.875x, 1x and 1.125x the zoom "
                     "(python -m wsms_viz.evaluation.evaluate --tta), where the card has it.")
curves, missing = robustness.accuracy_curves(sel.models, tta)
if curves:  # the figure first: on a projector it is what the first screen is for
    ui.chart(robustness.accuracy_figure(curves), key="acc_vs_zoom")
verdicts.show(verdicts.robustness_verdict(sel.models))
if missing:
    st.info(f"No scale-robustness curve in the card of: {', '.join(map(md, missing))}. "
            "Run `python -m wsms_viz.evaluation.evaluate` on the checkpoint to measure it.")
# height="content": every row shown, no table scrolling inside itself.
if any(m.trained for m in sel.models):
    st.dataframe(robustness.tidy(robustness.summary_rows(sel.models), robustness.SUMMARY_PERCENT),
                 hide_index=True, height="content")
comparisons = robustness.comparison_rows(sel.models, tta)
if comparisons:
    st.markdown("**Is a difference real, or luck of the draw?** Each model against the evaluator's baseline, "
                "on the same val images (paired bootstrap).")
    st.dataframe(comparisons, hide_index=True, height="content")
    st.caption("The 95% interval covers which val images were drawn; a second training seed moves a model too "
               "(He et al.: 0.16 points std for ResNet-110), so the verdict uses the interval widened by that "
               "spread. *yes*: it excludes 0. *one seed only*: only the bare interval does; more seeds are "
               "needed to tell. *no*: not even that. The shaded bands above are each model's own 95% interval.")

st.subheader("Scale study: when does sharing weights across scales help?")
study, problem = study_view.load_study(sel.checkpoint_root)  # every studied arm, whatever the sidebar picks
if problem:
    st.warning(problem)
if study:
    st.caption("Every arm the study measured (`python -m wsms_viz.evaluation.study`), one panel per training regime; "
               "grey: the zooms that regime trained on. Log zoom axis, 0.25x to 4x. Lines: mean over seeds; bands: "
               "min to max over seeds where an arm has two or more, else the 95% interval over the val images.")
    ui.chart(study_view.regime_figure(study), key="study_curves")
    st.dataframe(study_view.inout_rows(study), hide_index=True, width="stretch")
    st.markdown("**How much does a second seed move a model?** The spread measured over seeds, beside the "
                "0.16 points He et al. report for ResNet-110 at zoom 1.")
    st.dataframe(study_view.spread_rows(study), hide_index=True, width="stretch")
    verdicts.show(verdicts.seed_spread_verdict(study))
    for question, answer in study_view.question_sentences(study):
        st.markdown(f"**{question}** {md(answer)}")
    verdicts.show(verdicts.settled_verdict(study))
    with st.expander("Every contrast of the study (bootstrap over seeds and val images)"):
        st.dataframe(study_view.contrast_rows(study), hide_index=True, width="stretch")
    st.caption("*settled*: every arm in the contrast has two seeds or more and the 95% interval over seeds and "
               "images excludes 0. With one seed per arm the seed spread is not measured, so nothing is settled.")
else:
    st.info("No scale study ships yet: run `python -m wsms_viz.evaluation.study` on the checkpoints.")

st.subheader("Cost: parameters and multiplications")
st.caption("Multiplications of one 32x32 image. Sharing the convolutions keeps the parameters of WSMS-Net "
           "close to the baseline's, but stages 2 and 3 still compute: about 20% more multiplications.")
st.dataframe(robustness.tidy(ui.model_costs(sel.model_keys), digits=robustness.COST_DIGITS), hide_index=True,
             height="content")
with st.expander("The paper's Tables 1 and 2 beside our counts"):
    st.dataframe(robustness.tidy(ui.complexity_table(), digits=robustness.COMPLEXITY_DIGITS,
                                 names=robustness.COMPLEXITY_NAMES), hide_index=True, height="content")

st.subheader("Training curves")
fig, no_log = robustness.training_figure(sel.models)
if fig is not None:
    ui.chart(fig, key="training_curves")
if no_log:
    st.info(f"No training log in the card of: {', '.join(map(md, no_log))}.")
