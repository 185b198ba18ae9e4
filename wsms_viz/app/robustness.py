"""The scale-robustness page: accuracy against zoom and training curves from the cards,
and the parameter / multiplication table beside the paper's.

Every figure here is read from what a checkpoint's card records (``scale_robustness``
and ``log``, written by the trainer and the evaluator); a card without them (an untrained
model, an older card) is listed as missing rather than guessed.

The paper-table rows come from ``wsms_viz/evaluation/complexity_table.json``
(:func:`wsms_viz.evaluation.complexity.table_rows`; rewrite it with
``python -m wsms_viz.evaluation.complexity --write-json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..cards import ZoomCurve, curve_of, epochs_trained, log_of
from ..evaluation.complexity import COMPLEXITY_JSON, table_rows  # noqa: F401 (COMPLEXITY_JSON: tests read it here)
from ..palette import model_color
from .catalog import LoadedModel


class Curve(NamedTuple):
    """One line of the accuracy-against-zoom figure, as a card records it."""

    label: str
    zooms: list[float]
    acc: list[float]
    ci: list[tuple[float, float]] | None = None  # 95% bootstrap interval at each zoom, if the card has it


def accuracy_curves(models: Sequence[LoadedModel], tta: bool = False) -> tuple[list[Curve], list[str]]:
    """A :class:`Curve` per model whose card has a scale-robustness curve, and the
    labels of those without one (or with a malformed one). With ``tta``, each model's
    multi-scale averaging curve follows its own, labelled ``"<label> +TTA"``, where the
    card has one."""
    curves, missing = [], []
    for m in models:
        sr = curve_of(m.card)
        if sr is None:
            missing.append(m.label)
            continue
        curves.append(Curve(m.label, list(sr.zooms), list(sr.val_acc), _ci(sr)))
        if tta and sr.tta is not None:
            curves.append(Curve(m.label + TTA_SUFFIX, list(sr.zooms), list(sr.tta.val_acc), _ci(sr.tta)))
    return curves, missing


def _ci(curve: ZoomCurve) -> list[tuple[float, float]] | None:
    return list(curve.val_acc_ci) if curve.val_acc_ci is not None else None


TTA_SUFFIX = " +TTA"


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def accuracy_figure(curves: Sequence[Curve]) -> go.Figure:
    """Validation accuracy against zoom, one line per model; ``+TTA`` curves dashed, in
    their model's colour. A model's 95% bootstrap interval over the val images, where the
    card has it, is a pale band around its solid line and is listed in the hover."""
    fig = go.Figure()
    for c in curves:
        curve = Curve(*c)
        base = curve.label.removesuffix(TTA_SUFFIX)
        color = model_color(base)
        scale = 1.0 if max(curve.acc) <= 1.0 else 0.01
        y = [a * scale for a in curve.acc]
        ci = [(lo * scale, hi * scale) for lo, hi in curve.ci] if curve.ci else None
        if ci and curve.label == base:
            outline = [hi for _, hi in ci] + [lo for lo, _ in ci][::-1]  # along the top, back along the bottom
            # mode="lines": without it plotly marks every vertex of the outline (above and below
            # each point, in the band's colour), which reads as stray data points
            fig.add_trace(go.Scatter(x=curve.zooms + curve.zooms[::-1], y=outline, mode="lines",
                                     fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, legendgroup=base,
                                     name=f"{curve.label} 95% interval"))
        hover = "zoom %{x:g}: %{y:.2%}" + (" [%{customdata[0]:.2%}, %{customdata[1]:.2%}]" if ci else "")
        fig.add_trace(go.Scatter(x=curve.zooms, y=y, mode="lines+markers", name=curve.label, legendgroup=base,
                                 customdata=ci, hovertemplate=hover + f"<extra>{curve.label}</extra>",
                                 line=dict(color=color, width=2, dash="dash" if curve.label != base else "solid")))
    fig.add_vline(x=1.0, line=dict(color="grey", dash="dot"))
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=60, b=10), xaxis_title="zoom factor",
                      yaxis=dict(title="val accuracy", tickformat=".0%"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    return fig


def _points(x: float) -> str:
    return f"{100 * x:+.2f}"


def comparison_rows(models: Sequence[LoadedModel], tta: bool = False) -> list[dict]:
    """Each model's difference from the evaluator's baseline, as its card records it
    (``scale_robustness.vs_baseline``, :func:`wsms_viz.evaluation.evaluate.scale_robustness_entry`):
    two rows per model (at zoom 1, mean over zooms), in points, with the 95% bootstrap
    interval, that interval widened by the seed-to-seed spread, and the verdict. With
    ``tta``, also the +TTA rows. Models whose card has no comparison are left out."""
    rows = []
    for m in models:
        sr = curve_of(m.card)
        entries = [(m.label, sr)] + ([(m.label + TTA_SUFFIX, sr.tta)] if tta and sr and sr.tta else [])
        for label, entry in entries:
            vs = entry.vs_baseline if entry is not None else None
            if vs is None:
                continue
            for d, what in ((vs.at_zoom_1, "at zoom 1"), (vs.mean, "mean over zooms")):
                if d is None:
                    continue
                (lo, hi), (slo, shi) = d.ci, d.seed_aware_ci
                rows.append({"model": label, "compared with": vs.baseline, "accuracy": what,
                             "difference (points)": _points(d.diff),
                             "95% interval": f"[{_points(lo)}, {_points(hi)}]",
                             "with seed-to-seed spread": f"[{_points(slo)}, {_points(shi)}]",
                             "resolved?": d.resolved})
    return rows


def summary_rows(models: Sequence[LoadedModel]) -> list[dict]:
    """Per model: val accuracy at zoom 1 and the mean over the zoom range, from the card
    (:class:`wsms_viz.cards.ScaleRobustness`, the figures the report prints)."""
    rows = []
    for m in models:
        metrics = m.card.get("metrics") if isinstance(m.card.get("metrics"), dict) else {}
        sr = curve_of(m.card)
        rows.append({
            "model": m.label, "trained": m.trained,
            "train acc": metrics.get("train_acc"), "val acc": metrics.get("val_acc"),
            "val acc at zoom 1": sr.at_zoom_1 if sr else None,
            "mean val acc over zooms": sr.mean_acc if sr else None,
            "zoom range": f"{min(sr.zooms):g}x-{max(sr.zooms):g}x" if sr else None,
            "epochs": epochs_trained(m.card) or None,
        })
    return rows


def training_figure(models: Sequence[LoadedModel]) -> tuple[go.Figure | None, list[str]]:
    """Loss and accuracy per epoch (train solid, val dashed) from each card's ``log``."""
    logged = [(m.label, log_of(m.card)) for m in models]
    logged = [(lab, log) for lab, log in logged if log]
    missing = [m.label for m in models if m.label not in {lab for lab, _ in logged}]
    if not logged:
        return None, missing
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for label, log in logged:
        c = model_color(label)
        ep = [r.epoch for r in log]
        for col, key in ((1, "loss"), (2, "acc")):
            for split, dash in (("train", None), ("val", "dash")):
                y = [r.get(f"{split}_{key}") for r in log]
                if all(v is None for v in y):
                    continue
                fig.add_trace(go.Scatter(x=ep, y=y, mode="lines", name=f"{label} {split}",
                                         line=dict(color=c, dash=dash), legendgroup=label,
                                         showlegend=col == 1), 1, col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig, missing


MISSING = "–"  # what a table shows for a value the card does not have (not "None")


def tidy(rows: Sequence[dict], percent: Sequence[str] = (), digits: dict[str, int] | None = None,
         names: dict[str, str] | None = None) -> list[dict]:
    """Rows ready to show: ``percent`` columns as "87.9%", other floats rounded to
    ``digits[column]`` places (default 2), None as "–", booleans as yes/no, columns
    renamed by ``names``. Every value becomes text, so a column mixing numbers and gaps
    still reads cleanly."""
    digits, names = digits or {}, names or {}

    def cell(key: str, v) -> str:
        if v is None:
            return MISSING
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, int | float) and key in percent:
            return f"{v:.1%}"
        if isinstance(v, float):
            return f"{v:,.{digits.get(key, 2)}f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    return [{names.get(k, k): cell(k, v) for k, v in r.items()} for r in rows]


SUMMARY_PERCENT = ("train acc", "val acc", "val acc at zoom 1", "mean val acc over zooms")
COST_DIGITS = {"parameters (M)": 3, "multiplications (M)": 1}
COMPLEXITY_NAMES = {"params_c10": "params C10 (M)", "paper_c10": "paper C10 (M)", "params_c100": "params C100 (M)",
                    "paper_c100": "paper C100 (M)", "mults": "multiplications (M)", "paper_mults": "paper (M)"}
COMPLEXITY_DIGITS = {"params_c10": 3, "paper_c10": 2, "params_c100": 3, "paper_c100": 2, "mults": 1,
                     "paper_mults": 0}


def complexity_rows() -> list[dict]:
    """The paper-table rows (:func:`wsms_viz.evaluation.complexity.table_rows`)."""
    return table_rows()


def model_cost_rows(models: Sequence[LoadedModel]) -> list[dict]:
    """Parameters and multiplications of the selected models themselves (one 32x32 image)."""
    from ..evaluation.complexity import count_mults, count_params
    from ..models import model_config

    rows = []
    for m in models:
        name, config = m.registry_name, model_config(m.model)
        rows.append({"model": m.label, "registry name": name,
                     "parameters (M)": count_params(name, **config) / 1e6,
                     "multiplications (M)": count_mults(name, **config) / 1e6})
    base = next((r for r, m in zip(rows, models, strict=True) if m.is_baseline), None)
    for r in rows:  # the paper's "+20% multiplications" (section 4.1), for these models
        r["vs baseline"] = (f"{r['parameters (M)'] / base['parameters (M)'] - 1:+.0%} params, "
                            f"{r['multiplications (M)'] / base['multiplications (M)'] - 1:+.0%} mults") if base else ""
    return rows
