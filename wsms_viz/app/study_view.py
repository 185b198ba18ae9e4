"""The scale study in the app: figures, tables and sentences from the cards' ``scale_study``
blocks (written by ``python -m wsms_viz.evaluation.study``), and what each page can show
of a scale-channel network.

Nothing here measures: a card without a study is listed as such. The sentences are
:func:`wsms_viz.evaluation.study.answers`, computed from the stored numbers, so a
retrained model changes them.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn

from ..checkpoint import CheckpointError, find_checkpoints, read_card
from ..evaluation.study import ATTR_ZOOMS, REGIMES, all_contrasts, answers, regime_of, study_of, trained_range
from ..evaluation.study_report import studied
from ..models.scale_channel import ScaleChannelNet
from ..palette import model_color, stage_color
from .catalog import teaching_order

REGIME_WORDS = {
    "none": "no scale jitter (trained at zoom 1 only)",
    "mid": "scale jitter 0.71-1.41x (log-uniform)",
    "full": "scale jitter 0.5-2x (log-uniform)",
    "custom": "scale jitter over another range",
}


def study_cards(root: str | Path) -> dict[str, dict]:
    """``{name: card}`` of every checkpoint under ``root`` whose card carries a study,
    by regime and then architecture, as the report orders them. Unreadable cards are skipped."""
    out = {}
    for d in sorted(find_checkpoints(root), key=lambda p: teaching_order(p.name)):
        try:
            card = read_card(d)
        except CheckpointError:
            continue
        if study_of(card):
            out[card.get("name") or d.name] = card
    return studied(out)


def regime_caption(card: dict) -> str:
    """One line naming a checkpoint's training regime and range, from its recipe."""
    if not card:
        return "Untrained model: no training regime."
    regime = regime_of(card)
    lo, hi = trained_range(card)
    rng = "zoom 1 only" if lo == hi else f"zooms {lo:.2f}-{hi:.2f}"
    return f"Training regime **{regime}**: {REGIME_WORDS[regime]}; trained range {rng}."


def regime_figure(cards: dict[str, dict]) -> go.Figure:
    """Small multiples, one panel per regime present: each model's accuracy against zoom
    (log axis) with its 95% band, the regime's trained range shaded."""
    regimes = [r for r in (*REGIMES, "custom") if any(study_of(c)["regime"] == r for c in cards.values())]
    fig = make_subplots(rows=1, cols=max(1, len(regimes)), shared_yaxes=True,
                        subplot_titles=[f"{r}: {REGIME_WORDS[r]}" for r in regimes])
    for col, regime in enumerate(regimes, start=1):
        for name, card in cards.items():
            s = study_of(card)
            if s["regime"] != regime:
                continue
            color = model_color(name)  # each model keeps its colour on every page
            z, acc = s["zooms"], s["val_acc"]
            ci = s.get("val_acc_ci")
            if ci and len(ci) == len(z):
                fig.add_trace(go.Scatter(x=z + z[::-1], y=[hi for _, hi in ci] + [lo for lo, _ in ci][::-1],
                                         fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0),
                                         hoverinfo="skip", showlegend=False), row=1, col=col)
            fig.add_trace(go.Scatter(x=z, y=acc, mode="lines+markers", name=name, line=dict(color=color),
                                     hovertemplate="zoom %{x:.3g}: %{y:.2%}<extra>" + name + "</extra>"),
                          row=1, col=col)
        lo, hi = REGIMES.get(regime) or (1.0, 1.0)
        if regime == "custom":
            lo, hi = trained_range(next(c for c in cards.values() if study_of(c)["regime"] == "custom"))
        if lo == hi:
            fig.add_vline(x=1.0, line=dict(color="grey", width=6), opacity=0.3, row=1, col=col)
        else:
            fig.add_vrect(x0=lo, x1=hi, fillcolor="grey", opacity=0.15, line_width=0, row=1, col=col)
    fig.update_xaxes(type="log", title_text="zoom (log scale)", tickvals=[0.25, 0.5, 1, 2, 4])
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text="val accuracy", row=1, col=1)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.25))
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


def inout_rows(cards: dict[str, dict]) -> list[dict]:
    """Per model: regime, trained range, mean accuracy inside and outside it with 95%
    intervals, the worst zoom, and where it was trained."""
    rows = []
    for name, card in cards.items():
        s = study_of(card)
        lo, hi = s["trained_range"]
        rows.append({"model": name, "regime": s["regime"],
                     "trained range": "zoom 1 only" if lo == hi else f"{lo:.2f}-{hi:.2f}",
                     "inside: mean % [95% CI]": _mean_ci(s.get("inside")),
                     "outside: mean % [95% CI]": _mean_ci(s.get("outside")),
                     "worst zoom": f"{s['worst']['zoom']:.3g} ({100 * s['worst']['acc']:.1f}%)",
                     "trained on": str(card.get("hardware") or "?")})
    return rows


def question_sentences(cards: dict[str, dict]) -> list[tuple[str, str]]:
    """The issue's four questions and one sentence each, from the numbers."""
    return answers(cards)


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


def contrast_rows(cards: dict[str, dict]) -> list[dict]:
    """Every stored contrast, for a table: question, what, zooms, difference and intervals."""
    rows = []
    for c in sorted(all_contrasts(cards).values(), key=lambda c: (c["question"], c["id"])):
        lo, hi = c["ci"]
        sa = c.get("seed_aware_ci")
        rows.append({"question": c["question"], "contrast": c["what"], "zooms": len(c["zooms"]),
                     "difference (points)": f"{100 * c['diff']:+.2f}",
                     "95% interval": f"[{100 * lo:+.2f}, {100 * hi:+.2f}]",
                     "with seed-to-seed spread": f"[{100 * sa[0]:+.2f}, {100 * sa[1]:+.2f}]" if sa else "-",
                     "resolved?": c["resolved"]})
    return rows
