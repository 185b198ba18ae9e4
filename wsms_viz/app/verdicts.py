"""One plain sentence per page that answers the page's question from the numbers it shows.

Each ``*_verdict`` function takes the numbers (a card's comparison, the sweeps the zoom
page just computed, the attribution shares, the lesion drops) and returns a sentence, or
None when there is nothing to judge; :func:`show` draws it. Nothing here is typed in: when
a retrain changes the numbers, the sentence changes. The sentence functions are pure (no
streamlit), so they are tested on hand-made numbers.

Example:
    >>> from wsms_viz.cards import Difference
    >>> d = Difference(0.0046, (-0.0038, 0.013), (-0.0049, 0.0141), "no")
    >>> comparison_clause(d)
    '+0.46 points (95% interval -0.38 to +1.30, which includes 0: not resolved)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..cards import Difference, curve_of
from ..models import model_family
from .plain import md

# A stage share that moves by less than this across the zoom range is "barely" moving.
SHARE_STEP = 0.05


def pts(x: float) -> str:
    """A difference of accuracies in points with its sign: ``0.0046`` -> ``'+0.46'``."""
    return f"{100 * x:+.2f}"


def excludes_zero(ci: tuple[float, float]) -> bool:
    lo, hi = ci
    return lo > 0 or hi < 0


def resolution(d: Difference) -> str:
    """What the intervals say, from the intervals themselves (the evaluator's rule: the
    bare 95% interval, then that interval widened by the seed-to-seed spread)."""
    if excludes_zero(d.seed_aware_ci):
        return "which excludes 0 even widened by the seed-to-seed spread: resolved"
    if excludes_zero(d.ci):
        return "which excludes 0, but not once widened by the seed-to-seed spread: one seed cannot tell"
    return "which includes 0: not resolved"


def comparison_clause(d: Difference) -> str:
    """``+0.46 points (95% interval -0.38 to +1.30, which includes 0: not resolved)``."""
    lo, hi = d.ci
    return f"{pts(d.diff)} points (95% interval {pts(lo)} to {pts(hi)}, {resolution(d)})"


def _label(card: Mapping, fallback: str) -> str:
    return str(card.get("name") or fallback)


def headline_model(models: Sequence) -> object | None:
    """Of ``models`` (anything with ``.card`` and ``.label``), the one whose comparison
    with the baseline answers the paper's question: a WSMS-Net trained without scale
    jitter first, then any WSMS-Net, then any model; only models whose card compares."""
    def rank(m) -> tuple[int, int]:
        card = m.card or {}
        try:
            family = model_family(card.get("model", ""))
        except ValueError:
            family = None
        jitter = bool((card.get("recipe") or {}).get("scale_jitter"))
        return (0 if family == "wsms" else 1 if family == "ms" else 2, int(jitter))

    comparable = [m for m in models if (sr := curve_of(m.card)) is not None and sr.vs_baseline is not None]
    return min(comparable, key=rank, default=None)


def robustness_verdict(models: Sequence) -> str | None:
    """Page 6: the headline model against the baseline at zoom 1 and over the zooms, with
    the 95% intervals and whether they exclude 0; None when no card compares."""
    m = headline_model(models)
    if m is None:
        return None
    sr = curve_of(m.card)
    vs = sr.vs_baseline
    parts = []
    if vs.at_zoom_1 is not None:
        parts.append(f"at zoom 1 it is {comparison_clause(vs.at_zoom_1)}")
    if vs.mean is not None:
        parts.append(f"averaged over zooms {min(sr.zooms):g}x to {max(sr.zooms):g}x it is "
                     f"{comparison_clause(vs.mean)}")
    if not parts:
        return None
    return f"**{md(m.label)}** against **{md(vs.baseline)}**: " + "; ".join(parts) + "."


def kept_range(zooms: Sequence[float], probs: np.ndarray, classes: Sequence[str], cls: str,
               at: float = 1.0) -> tuple[float, float] | None:
    """The zooms, contiguous around ``at``, at which ``cls`` stays the top guess; None when
    it is not the top guess at ``at`` itself."""
    if cls not in classes:
        return None
    top = np.asarray(probs).argmax(1) == list(classes).index(cls)
    i = int(np.argmin(np.abs(np.asarray(zooms) - at)))
    if not top[i]:
        return None
    lo = hi = i
    while lo > 0 and top[lo - 1]:
        lo -= 1
    while hi < len(top) - 1 and top[hi + 1]:
        hi += 1
    return float(zooms[lo]), float(zooms[hi])


def _top_count(s, cls: str) -> int:
    """At how many zooms of sweep ``s`` the class ``cls`` is the top guess."""
    return int((np.asarray(s.probs).argmax(1) == list(s.classes).index(cls)).sum()) if cls in s.classes else 0


def zoom_verdict(sweeps: Sequence, cls: str) -> str | None:
    """Page 1: which model keeps ``cls`` as its top guess over the longest stretch of
    zooms around 1x (``sweeps``: :class:`wsms_viz.app.predict.Sweep`)."""
    if not sweeps:
        return None
    ranges = [(md(s.label), kept_range(s.zooms, s.probs, s.classes, cls)) for s in sweeps]  # labels as shown
    if all(r is None for _, r in ranges):
        where = [f"{label} at {n} of {len(s.zooms)} zooms" if (n := _top_count(s, cls)) else f"{label} at none"
                 for s, (label, _) in zip(sweeps, ranges, strict=True)]
        return f"At 1x no model's top guess is **{md(cls)}**; elsewhere: " + ", ".join(where) + "."
    steps = {label: (0 if r is None else sum(r[0] - 1e-6 <= z <= r[1] + 1e-6 for z in sweeps[0].zooms))
             for label, r in ranges}
    parts = [f"{label} from {r[0]:.1f}x to {r[1]:.1f}x" if r else f"{label} not even at 1x" for label, r in ranges]
    best = max(steps.values())
    winners = [label for label, n in steps.items() if n == best]
    if len(sweeps) == 1:
        return f"**{ranges[0][0]}** keeps **{md(cls)}** as its top guess from {ranges[0][1][0]:.1f}x to " \
               f"{ranges[0][1][1]:.1f}x."
    if len(winners) == len(sweeps):
        end = "all keep it over the same stretch."
    elif len(winners) > 1:
        end = f"{' and '.join(winners)} keep it longest, over the same stretch."
    else:
        end = f"**{winners[0]}** keeps it longest."
    return f"Top guess **{md(cls)}** kept: " + "; ".join(parts) + f": {end}"


def _stage_words(n: int) -> str:
    return "stage 2" if n == 2 else f"stages 2 to {n}" if n > 3 else "stages 2 and 3"


def attribution_verdict(shares: Sequence[float], zoom: float) -> str | None:
    """Page 3, for the image at ``zoom``: the share of the attribution that the stages
    seeing the image smaller (2 and up) carry, against stage 1's."""
    shares = np.asarray(shares, dtype=float)
    if shares.size < 2 or shares.sum() <= 0:
        return None
    small = float(shares[1:].sum() / shares.sum())
    return (f"At {zoom:.1f}x the smaller stages ({_stage_words(shares.size)}) carry {small:.0%} of the "
            f"attribution, stage 1 (the full image) {1 - small:.0%}.")


def shares_move_verdict(factors: Sequence[float], shares_by_zoom: np.ndarray) -> str | None:
    """Page 3's question, "does the answer move to the smaller stages?", from the shares
    at several zoom ``factors`` (``(F, S)``): the smaller stages' share at the smallest
    zoom against the largest; "barely" when it moves less than :data:`SHARE_STEP`."""
    s = np.asarray(shares_by_zoom, dtype=float)
    if len(factors) < 2 or s.ndim != 2 or s.shape[1] < 2:
        return None
    totals = s.sum(1)
    frac = np.where(totals > 0, s[:, 1:].sum(1) / np.where(totals > 0, totals, 1), 0.0)
    order = np.argsort(factors)
    f0, f1 = float(factors[order[0]]), float(factors[order[-1]])
    a, b = float(frac[order[0]]), float(frac[order[-1]])
    if b - a >= SHARE_STEP:
        answer = "yes, the answer moves to the smaller stages as the object grows"
    elif a - b >= SHARE_STEP:
        answer = "no, it moves to stage 1 instead"
    else:
        answer = f"barely: less than {100 * SHARE_STEP:.0f} points either way"
    return (f"Does the answer move to the smaller stages? Zooming from {f0:g}x to {f1:g}x, their share goes "
            f"from {a:.0%} to {b:.0%}: {answer}.")


def integration_verdict(logit_drop: Sequence[float], feature_shares: Sequence[float], cls: str) -> str | None:
    """Page 4: which stage the class score depends on most (the lesion drop) and which
    stage makes up most of the pooled feature."""
    drop = np.asarray(logit_drop, dtype=float)
    share = np.asarray(feature_shares, dtype=float)
    if drop.size < 2:
        return None
    k, j = int(drop.argmax()), int(share.argmax())
    cls = md(cls)  # a class name from the card: shown as plain text
    lesion = (f"switching stage {k + 1} off lowers the score of **{cls}** most (by {drop[k]:.2f})"
              if drop[k] > 0 else f"switching any one stage off does not lower the score of **{cls}**")
    same = "the same stage" if j == k and drop[k] > 0 else f"stage {j + 1}"
    return f"For this image, {lesion}; {same} makes up the largest part of the pooled feature ({share[j]:.0%})."


# --- the scale study over seeds (results/study.json; the Lesson and the Scale robustness page) ---

def study_verdicts(study: Mapping | None) -> list[tuple[str, str]] | None:
    """The study's four questions, each with its sentence ending settled or not settled,
    from a summary over seeds (:func:`wsms_viz.app.study_view.load_study`) or cards
    carrying ``scale_study``; None without a study."""
    if not study:
        return None
    from ..evaluation.study import answers

    return answers(dict(study))


def settled_verdict(study: Mapping | None) -> str | None:
    """How many of the study's contrasts are settled, and why the others are not."""
    if not study:
        return None
    from ..evaluation.study import as_summary

    cs = as_summary(dict(study))["contrasts"]
    if not cs:
        return None
    done = sum(bool(c.get("settled")) for c in cs)
    one = sum(c.get("spread") != "measured" for c in cs)
    text = f"Of the study's {len(cs)} contrasts, {done} {'is' if done == 1 else 'are'} settled"
    if one:
        text += (f"; {one} compare{'s' if one == 1 else ''} an arm trained with one seed, whose seed spread is not "
                 "measured, so {0} cannot be settled yet".format("it" if one == 1 else "they"))
    rest = len(cs) - done - one
    if rest:
        text += f"; in {rest} the interval over seeds and images includes 0"
    return text + "."


def seed_spread_verdict(study: Mapping | None) -> str | None:
    """The seed spread measured at zoom 1 and at the unseen zooms, against He et al.'s
    0.16 points; with one seed per arm, that it is not measured."""
    if not study:
        return None
    from ..evaluation.study import as_summary

    s = as_summary(dict(study))
    he = 100 * s.get("he_et_al_sd", 0.0016)
    measured = [a for a in s["arms"] if len(a["seeds"]) >= 2 and (a.get("spread") or {}).get("zoom_1") is not None]
    if not measured:
        return (f"One seed per arm: the spread over seeds is not measured; He et al.'s {he:.2f} points (ResNet-110, "
                "zoom 1, fully trained) is the only comparison, and at unseen zooms it is probably too small.")
    at1 = [100 * a["spread"]["zoom_1"] for a in measured]
    out = [100 * a["spread"]["outside_mean"] for a in measured if a["spread"].get("outside_mean") is not None]
    text = (f"Measured over {min(len(a['seeds']) for a in measured)} seeds or more in {len(measured)} of "
            f"{len(s['arms'])} arms, the SD of accuracy is {min(at1):.2f}-{max(at1):.2f} points at zoom 1")
    if out:
        text += f" and {min(out):.2f}-{max(out):.2f} on average at the unseen zooms"
    return text + f", against He et al.'s {he:.2f} at zoom 1."


def paper_gap_verdict(study: Mapping | None) -> str | None:
    """The paper's Table 2 gain (WSMS-ResNet-110 over ResNet-110, +0.25 points, mean of
    five runs) beside ours at zoom 1 with its interval over seeds and images."""
    if not study:
        return None
    from ..evaluation.study import _verdict_words, as_summary, interval_words

    cs = {c["id"]: c for c in as_summary(dict(study))["contrasts"]}
    text = "The paper: WSMS-ResNet-110 is +0.25 points above ResNet-110 on the CIFAR-10 test set (mean of five runs)."
    deep = cs.get("wsms-baseline/resnet110/zoom1")
    text += (f" Our ResNet-110 pair: {interval_words(deep)}, {_verdict_words(deep)}." if deep else
             " Our ResNet-110 pair: not run yet.")
    ours = cs.get("wsms-baseline/none/inside")
    if ours:
        text += (f" Our ResNet-20 pair, val accuracy at zoom 1: {interval_words(ours)}, {_verdict_words(ours)}.")
    return text


def show(sentence: str | None, where=None) -> None:
    """Draws a verdict line (nothing when ``sentence`` is None)."""
    if sentence:
        import streamlit as st

        (where or st).success(sentence, icon=":material/gavel:")


__all__ = ["attribution_verdict", "comparison_clause", "excludes_zero", "headline_model", "integration_verdict",
           "kept_range", "paper_gap_verdict", "pts", "resolution", "robustness_verdict", "seed_spread_verdict",
           "settled_verdict", "shares_move_verdict", "show", "study_verdicts", "zoom_verdict"]
