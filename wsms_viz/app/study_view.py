"""The scale study in the app: figures, tables and sentences from its summary over seeds
(``results/study.json``, written by ``python -m wsms_viz.evaluation.study`` from the
per-image results that ship in ``results/``), or, where none ships, from the cards'
``scale_study`` blocks (one seed each); and what each page can show of a scale-channel
network.

Nothing here measures. The sentences are :func:`wsms_viz.evaluation.study.answers`,
computed from the stored numbers, so a new seed or a retrained model changes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn

from ..checkpoint import CheckpointError, find_checkpoints, read_card
from ..evaluation.study import (
    ATTR_ZOOMS,
    ONE_SEED,
    REGIMES,
    answers,
    as_summary,
    read_summary,
    regime_of,
    seeds_words,
    study_of,
    summary_from_cards,
    trained_range,
)
from ..evaluation.study_report import studied
from ..models.scale_channel import ScaleChannelNet
from ..palette import model_color, stage_color
from .catalog import teaching_order

ENV_RESULTS = "WSMS_RESULTS"  # the study's results folder, fixed by whoever starts the server

REGIME_WORDS = {
    "none": "no scale jitter (trained at zoom 1 only)",
    "mid": "scale jitter 0.71-1.41x (log-uniform)",
    "full": "scale jitter 0.5-2x (log-uniform)",
    "custom": "scale jitter over another range",
}
REGIME_TITLES = {"none": "none: trained at 1x", "mid": "mid: 0.71-1.41x", "full": "full: 0.5-2x",
                 "custom": "custom range"}  # short: three side by side must fit 1024 px


def study_cards(root: str | Path) -> dict[str, dict]:
    """``{name: card}`` of every checkpoint under ``root`` whose card carries a study,
    in teaching order. Unreadable cards are skipped."""
    out = {}
    for d in sorted(find_checkpoints(root), key=lambda p: teaching_order(p.name)):
        try:
            card = read_card(d)
        except CheckpointError:
            continue
        if study_of(card):
            out[card.get("name") or d.name] = card
    return out


def results_root(checkpoint_root: str | Path) -> Path:
    """Where the study's results are: ``WSMS_RESULTS``, else ``results/`` beside the
    checkpoint folder."""
    env = os.environ.get(ENV_RESULTS)
    return Path(env) if env else Path(checkpoint_root).resolve().parent / "results"


def load_study(checkpoint_root: str | Path) -> tuple[dict | None, str | None]:
    """``(summary, problem)``: the summary over seeds from the results folder, else one
    made from the cards under ``checkpoint_root`` (one seed each), else None; ``problem``
    says why a results summary there could not be used (out of date, unreadable)."""
    problem = None
    try:
        summary = read_summary(results_root(checkpoint_root))
        if summary is not None:
            return summary, None
    except (ValueError, OSError) as e:
        problem = f"The study's results could not be read ({type(e).__name__}): the cards' one-seed study is shown."
        problem += " Rewrite it with `python -m wsms_viz.evaluation.study --results results`."
    cards = study_cards(checkpoint_root)
    return (summary_from_cards(cards) if cards else None), problem


def regime_caption(card: dict) -> str:
    """One line naming a checkpoint's training regime and range, from its recipe."""
    if not card:
        return "Untrained model: no training regime."
    regime = regime_of(card)
    lo, hi = trained_range(card)
    rng = "zoom 1 only" if lo == hi else f"zooms {lo:.2f}-{hi:.2f}"
    return f"Training regime **{regime}**: {REGIME_WORDS[regime]}; trained range {rng}."


def regime_figure(study: dict) -> go.Figure:
    """Small multiples, one panel per regime present: each arm's accuracy against zoom
    (log axis, mean over seeds), its band (min to max over seeds with two or more; the 95%
    interval over images with one), the regime's trained range shaded."""
    arms = studied(study)
    regimes = [r for r in (*REGIMES, "custom") if any(a["regime"] == r for a in arms)]
    fig = make_subplots(rows=1, cols=max(1, len(regimes)), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[REGIME_TITLES[r] for r in regimes])
    for col, regime in enumerate(regimes, start=1):
        for a in arms:
            if a["regime"] != regime:
                continue
            name, color = a["name"], model_color(a["name"])  # each model keeps its colour on every page
            z, acc = a["zooms"], a["val_acc"]
            k = len(a["seeds"])
            lo, hi = (a.get("val_acc_min"), a.get("val_acc_max")) if k >= 2 else \
                tuple(zip(*a["val_acc_ci"], strict=True)) if a.get("val_acc_ci") else (None, None)
            if lo is not None and len(lo) == len(z):
                fig.add_trace(go.Scatter(x=z + z[::-1], y=list(hi) + list(lo)[::-1], mode="lines", fill="toself",
                                         fillcolor=_rgba(color, 0.25 if k >= 2 else 0.15), line=dict(width=0),
                                         hoverinfo="skip", showlegend=False, legendgroup=name,
                                         name=f"{name} {'seed band' if k >= 2 else '95% interval'}"),
                              row=1, col=col)
            label = f"{name} ({k} seeds)" if k >= 2 else name
            fig.add_trace(go.Scatter(x=z, y=acc, mode="lines+markers", name=label, legendgroup=name,
                                     line=dict(color=color), marker=dict(size=5),
                                     hovertemplate="zoom %{x:.3g}: %{y:.2%}<extra>" + label + "</extra>"),
                          row=1, col=col)
        lo, hi = REGIMES.get(regime) or (1.0, 1.0)
        if regime == "custom":
            lo, hi = next(a["trained_range"] for a in arms if a["regime"] == "custom")
        if lo == hi:
            fig.add_vline(x=1.0, line=dict(color="grey", width=6), opacity=0.3, row=1, col=col)
        else:
            fig.add_vrect(x0=lo, x1=hi, fillcolor="grey", opacity=0.15, line_width=0, row=1, col=col)
    fig.update_xaxes(type="log", title_text="zoom (log)", tickvals=[0.25, 0.5, 1, 2, 4], title_standoff=4)
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text="val accuracy", row=1, col=1)
    # the legend goes below the axis titles, with room kept for it, so neither overprints
    fig.update_layout(height=470, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0, font_size=11))
    fig.update_annotations(font_size=12)
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _mean_ci(block: dict | None) -> str:
    if not block:
        return "-"
    lo, hi = block["ci"]
    return f"{100 * block['mean']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"


def inout_rows(study: dict) -> list[dict]:
    """Per arm: seeds, regime, mean accuracy inside and outside its trained range with
    95% intervals over seeds and images, and the worst zoom (few, narrow columns: the
    table must fit a 1024 px screen)."""
    rows = []
    for a in studied(study):
        rows.append({"model": a["name"], "seeds": len(a["seeds"]), "regime": a["regime"],
                     "inside % [95% CI]": _mean_ci(a.get("inside")),
                     "outside % [95% CI]": _mean_ci(a.get("outside")),
                     "worst zoom": f"{a['worst']['zoom']:.3g} ({100 * a['worst']['acc']:.1f}%)"})
    return rows


def spread_rows(study: dict) -> list[dict]:
    """Per arm: the seed spread measured (SD over seeds, points) at zoom 1 and over the
    unseen zooms, beside He et al.'s 0.16; one-seed arms say the spread is not measured."""
    s = as_summary(study)
    he = 100 * s.get("he_et_al_sd", 0.0016)
    rows = []
    for a in studied(s):
        sp = a.get("spread") or {}
        measured = len(a["seeds"]) >= 2 and sp.get("zoom_1") is not None
        rows.append({"model": a["name"], "seeds": len(a["seeds"]),
                     "SD at zoom 1": f"{100 * sp['zoom_1']:.2f}" if measured else ONE_SEED,
                     "SD at unseen zooms (mean)": f"{100 * sp['outside_mean']:.2f}"
                     if measured and sp.get("outside_mean") is not None else "-",
                     "He et al. (zoom 1)": f"{he:.2f}"})
    return rows


def question_sentences(study: dict) -> list[tuple[str, str]]:
    """The issue's four questions and one sentence each, from the numbers."""
    return answers(study)


def stage_share_figure(card: dict) -> go.Figure | None:
    """For one multi-stage model: each stage's attribution share and lesion drop at the
    study's zooms (0.5, 1, 2), from its card; None when the card has no stage study."""
    st = (study_of(card) or {}).get("stages") or {}
    attr, les = st.get("attribution"), st.get("lesion")
    if not attr and not les:
        return None
    zooms = [f"{z:g}x" for z in st.get("zooms", ATTR_ZOOMS)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=[
        f"share of the attribution ({attr['images']} val images)" if attr else "share of the attribution",
        f"accuracy lost with the stage off ({les['images']} val images)" if les else "lesion"])
    stages = len((attr or les)["share" if attr else "drop"][0])
    for s in range(stages):
        color = stage_color(s)
        if attr:
            fig.add_trace(go.Bar(x=zooms, y=[row[s] for row in attr["share"]], name=f"stage {s + 1}",
                                 marker_color=color, legendgroup=str(s)), row=1, col=1)
        if les:
            fig.add_trace(go.Bar(x=zooms, y=[row[s] for row in les["drop"]], name=f"stage {s + 1}",
                                 marker_color=color, legendgroup=str(s), showlegend=not attr), row=1, col=2)
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(title_text="zoom")
    fig.update_layout(height=320, barmode="group", margin=dict(l=10, r=10, t=40, b=10))
    return fig


# --- what a page can show of a scale-channel network ------------------------------------------

_SC_LIMITS = {
    "integration": "{name} is a scale-channel network: it has no integration layer. Its classifier reads the "
                   "element-wise **maximum** of the channels' pooled feature vectors, a fixed operation with no "
                   "weights to show. To see what each scale channel adds, switch channels off on the Zoom "
                   "compare page (its stage toggles) or look at the Attributions page.",
    "receptive_fields": "{name} is a scale-channel network: each scale channel runs the *whole* ResNet, so its "
                        "last maps are 8x8, 4x4 and 2x2 and one output position names a different place in each; "
                        "the per-position view of this page needs stages that end at one size (WSMS-Net, MS-Net). "
                        "Each channel's field is the baseline's, on the image at 1, 1/2 and 1/4 size.",
}


def page_limit(model: nn.Module, page: str, name: str = "This model") -> str | None:
    """Why ``page`` cannot show ``model``, or None when it can."""
    if isinstance(model, ScaleChannelNet) and page in _SC_LIMITS:
        return _SC_LIMITS[page].format(name=name)
    return None


def contrast_rows(study: dict) -> list[dict]:
    """Every contrast, for a table: question, what, seeds per arm, the difference with its
    95% interval over seeds and images, and whether it is settled."""
    rows = []
    for c in sorted(as_summary(study)["contrasts"], key=lambda c: (str(c["question"]), c["id"])):
        lo, hi = c["ci"]
        rows.append({"question": str(c["question"]), "contrast": c["what"],
                     "seeds": seeds_words(c).removesuffix(" per arm"),
                     "difference, points [95% CI]": f"{100 * c['diff']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]",
                     "verdict": "settled" if c.get("settled") else "not settled"})
    return rows
