"""The scale study's tables, as Markdown, from its summary over seeds.

``python -m wsms_viz.evaluation.report`` prints :func:`study_section` after the Results
tables, from ``results/study.json`` (written by ``python -m wsms_viz.evaluation.study``
from the per-image results that ship in ``results/``; no weights needed). Cards that
carry ``scale_study`` blocks, one seed each, print the same tables
(:func:`wsms_viz.evaluation.study.summary_from_cards`). Nothing here re-evaluates.
"""

from __future__ import annotations

from .evaluate import SEED_SPREAD
from .study import ATTR_ZOOMS, ONE_SEED, REGIMES, _verdict_words, answers, as_summary, seeds_words

FAMILIES = ("resnet20", "wsms_resnet20", "ms_resnet20", "sc_resnet20")

# The paper's Table 2 (CIFAR-10 with augmentation, test error %, mean of five runs).
PAPER_TABLE2 = (("ResNet-110", "resnet110", 6.61), ("MS-ResNet-110 (1x1)", "ms_resnet110", 6.41),
                ("WSMS-ResNet-110 (1x1)", "wsms_resnet110", 6.36))
OURS_20 = (("ResNet-20", "resnet20"), ("MS-ResNet-20 (1x1)", "ms_resnet20"), ("WSMS-ResNet-20 (1x1, c=128)",
                                                                               "wsms_resnet20"))
NOT_RUN = "not run yet"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _mean_ci(block: dict | None) -> str:
    if not block:
        return ""
    lo, hi = block["ci"]
    return f"{100 * block['mean']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"


def _mean_sd(mean: float, sd: float | None) -> str:
    return f"{100 * mean:.2f}" if sd is None else f"{100 * mean:.2f} ± {100 * sd:.2f}"


def _range(rng: list[float]) -> str:
    lo, hi = rng
    return "1 only" if lo == hi == 1 else f"{lo:.2f}-{hi:.2f}"


def _machines(arm: dict) -> str:
    seen = []
    for r in arm.get("runs") or []:
        m = f"{r.get('trained_on') or '?'}, {r.get('precision') or 'fp32'}"
        if m not in seen:
            seen.append(m)
    return "; ".join(seen) or "?"


def studied(summary: dict) -> list[dict]:
    """The summary's arms by regime (none, mid, full) and then architecture (baseline,
    WSMS, MS, scale channel), whatever order they came in."""
    regimes, families = list(REGIMES), list(FAMILIES)

    def order(arm):
        return (regimes.index(arm["regime"]) if arm["regime"] in regimes else len(regimes),
                families.index(arm["model"]) if arm["model"] in families else len(families), arm["name"])

    return sorted(as_summary(summary)["arms"], key=order)


def _at1(arm: dict) -> tuple[float, float | None]:
    i = arm["zooms"].index(1.0)
    sd = arm.get("val_acc_sd")
    return arm["val_acc"][i], (sd[i] if sd else None)


def arms_table(summary: dict) -> str:
    """Each arm's seeds, regime, trained range and machines, accuracy at zoom 1 (mean ±
    SD over seeds), and the mean inside and outside its trained range with 95% intervals
    over seeds and images."""
    lines = ["| arm | seeds | regime | trained range | trained on | zoom 1 (± SD over seeds) "
             "| mean inside the range [95% CI] | mean outside [95% CI] | worst zoom (acc) "
             "| same top-1 as at zoom 1, outside |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for a in studied(summary):
        lines.append("| " + " | ".join([
            a["name"], str(len(a["seeds"])), a["regime"], _range(a["trained_range"]), _machines(a),
            _mean_sd(*_at1(a)), _mean_ci(a.get("inside")), _mean_ci(a.get("outside")),
            f"{a['worst']['zoom']:.3g} ({_pct(a['worst']['acc'])})", _pct(a.get("consistency_outside"))]) + " |")
    return "\n".join(lines)


def zoom_table(summary: dict, key: str = "val_acc") -> str:
    """Mean over seeds (%) at each of the study's zooms of ``key``: ``val_acc``,
    ``consistency`` (the % of val images whose top-1 there is the arm's own top-1 at zoom
    1) or ``val_acc_sd`` (the SD over seeds; blank for one-seed arms)."""
    arms = studied(summary)
    if not arms:
        return ""
    zooms = arms[0]["zooms"]
    lines = ["| arm | " + " | ".join(f"{z:.3g}" for z in zooms) + " |", "|---" * (len(zooms) + 1) + "|"]
    for a in arms:
        if a["zooms"] != zooms:
            raise ValueError(f"{a['name']}: measured at other zooms than the first arm; run the study on them together")
        values = a.get(key)
        lines.append(f"| {a['name']} | " + " | ".join(_pct(v) for v in (values or [None] * len(zooms))) + " |")
    return "\n".join(lines)


def spread_table(summary: dict) -> str:
    """The seed spread measured per arm: the SD over seeds of the accuracy at zoom 1, of
    the mean outside the trained range, and of the accuracy at each unseen zoom (mean and
    largest), beside He et al.'s 0.16 points (ResNet-110, zoom 1, fully trained)."""
    he = f"{100 * as_summary(summary).get('he_et_al_sd', SEED_SPREAD):.2f}"
    lines = ["| arm | seeds | SD at zoom 1 | SD of the mean outside the range | SD at an unseen zoom: mean "
             "| largest (zoom) | He et al., zoom 1 |", "|---|---|---|---|---|---|---|"]
    for a in studied(summary):
        sp = a.get("spread") or {}
        k = len(a["seeds"])
        if k < 2 or sp.get("zoom_1") is None:
            cells = [ONE_SEED, "", "", ""]
        else:
            out_sd = (a.get("outside") or {}).get("sd")
            cells = [f"{100 * sp['zoom_1']:.2f}", "" if out_sd is None else f"{100 * out_sd:.2f}",
                     "" if sp.get("outside_mean") is None else f"{100 * sp['outside_mean']:.2f}",
                     "" if sp.get("outside_max") is None else
                     f"{100 * sp['outside_max']:.2f} ({sp['outside_max_zoom']:.3g})"]
        lines.append("| " + " | ".join([a["name"], str(k), *cells, he]) + " |")
    return "\n".join(lines)


def contrast_table(summary: dict) -> str:
    """Every contrast: its difference with the 95% interval over seeds and images, the
    interval over images alone, He et al.'s comparison where an arm has one seed, and
    whether it is settled."""
    cs = sorted(as_summary(summary)["contrasts"], key=lambda c: (str(c["question"]), c["id"]))
    if not cs:
        return ""
    lines = ["| question | contrast | zooms | seeds per arm | difference, points [95% CI over seeds and images] "
             "| over images only | one seed: widened by He et al.'s 0.16 | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for c in cs:
        lo, hi = c["ci"]
        il, ih = c.get("ci_images") or c["ci"]
        he = c.get("seed_aware_ci")
        zs = c["zooms"]
        zdesc = f"{zs[0]:.3g}" if len(zs) == 1 else f"{len(zs)} ({zs[0]:.3g}-{zs[-1]:.3g})"
        lines.append("| " + " | ".join([
            str(c["question"]), c["what"], zdesc, seeds_words(c).removesuffix(" per arm"),
            f"{100 * c['diff']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]", f"[{100 * il:+.2f}, {100 * ih:+.2f}]",
            f"[{100 * he[0]:+.2f}, {100 * he[1]:+.2f}]" if he else "",
            "settled" if c.get("settled") else "not settled"]) + " |")
    return "\n".join(lines)


def stages_table(summary: dict) -> str:
    """Multi-stage arms: each stage's attribution share and lesion drop at 0.5, 1, 2,
    means over seeds."""
    lines = ["| arm | seeds | zoom | attribution share, stages 1 / 2 / 3 "
             "| accuracy lost without stage 1 / 2 / 3, points | without stages 2+3 |", "|---|---|---|---|---|---|"]
    rows = 0
    for a in studied(summary):
        st = a.get("stages")
        if not st:
            continue
        attr, les = st.get("attribution") or {}, st.get("lesion") or {}
        for i, z in enumerate(st.get("zooms", ATTR_ZOOMS)):
            share = " / ".join(f"{v:.3f}" for v in attr["share"][i]) if attr else ""
            drop = " / ".join(f"{100 * v:+.2f}" for v in les["drop"][i]) if les else ""
            d23 = f"{100 * les['drop_stages_2_3'][i]:+.2f}" if les else ""
            lines.append(f"| {a['name']} | {len(a['seeds'])} | {z:g} | {share} | {drop} | {d23} |")
            rows += 1
    return "\n".join(lines) if rows else ""


def table2_block(summary: dict) -> str:
    """The paper's Table 2 beside ours: its CIFAR-10 test accuracy (100 - error, mean of
    five runs) and ours, val accuracy at zoom 1 on the 5,000 held-out training images,
    mean ± SD over seeds, trained without scale jitter; each difference from the baseline
    with its interval over seeds and images. ResNet-110 rows say "not run yet" until their
    results ship."""
    s = as_summary(summary)
    plain = {a["model"]: a for a in s["arms"] if a["regime"] == "none"}
    cs = {c["id"]: c for c in s["contrasts"]}

    def ours(model: str) -> tuple[str, str]:
        a = plain.get(model)
        return (NOT_RUN, "0") if a is None else (_mean_sd(*_at1(a)), str(len(a["seeds"])))

    lines = ["| network | the paper: test error (%) | the paper: accuracy (%) | ours: val accuracy at zoom 1 (%), "
             "mean ± SD over seeds | our seeds |", "|---|---|---|---|---|"]
    for label, model, err in PAPER_TABLE2:
        lines.append(f"| {label} | {err:.2f} | {100 - err:.2f} | " + " | ".join(ours(model)) + " |")
    for label, model in OURS_20:
        lines.append(f"| {label} | | | " + " | ".join(ours(model)) + " |")
    base_err = PAPER_TABLE2[0][2]
    lines += ["", "| difference from the baseline | the paper (mean of five runs) | ours, points [95% CI over seeds "
              "and images] | verdict |", "|---|---|---|---|"]
    diffs = (("WSMS - ResNet, depth 110", base_err - 6.36, "wsms-baseline/resnet110/zoom1"),
             ("MS - ResNet, depth 110", base_err - 6.41, "ms-baseline/resnet110/zoom1"),
             ("WSMS - ResNet, depth 20", None, "wsms-baseline/none/inside"),
             ("MS - ResNet, depth 20", None, "ms-baseline/resnet20/zoom1"))
    for label, paper, cid in diffs:
        c = cs.get(cid)
        mine = NOT_RUN if c is None else \
            f"{100 * c['diff']:+.2f} [{100 * c['ci'][0]:+.2f}, {100 * c['ci'][1]:+.2f}], {seeds_words(c)}"
        verdict = "" if c is None else _verdict_words(c)
        lines.append(f"| {label} | {'' if paper is None else f'{paper:+.2f}'} | {mine} | {verdict} |")
    return "\n".join(lines)


def study_section(summary: dict) -> str:
    """Everything the scale study's documentation quotes: the tables and one sentence per
    question. ``summary``: ``results/study.json`` or cards ``{name: card}``."""
    s = as_summary(summary)
    arms = studied(s)
    if not arms:
        return ""
    a0 = arms[0]
    attr_n = next((a["stages"]["attribution"]["images"] for a in arms if (a.get("stages") or {}).get("attribution")),
                  None)
    seeds = sorted({len(a["seeds"]) for a in arms})
    seed_words = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    parts = [f"Scale study: {a0['val_images']} val images, {len(a0['zooms'])} zooms "
             f"{min(a0['zooms']):g}-{max(a0['zooms']):g}, {len(arms)} arms of {seed_words} seed(s) each; accuracy "
             f"(%), mean over seeds; 95% intervals over seeds and images ({s.get('resamples')} resamples)"
             + (f"; attribution shares on {attr_n} val images" if attr_n else ""),
             "", arms_table(s), "", "Accuracy (%) at each zoom, mean over seeds:", "", zoom_table(s)]
    if any(len(a["seeds"]) >= 2 for a in arms):
        parts += ["", "SD over seeds (points) at each zoom:", "", zoom_table(s, "val_acc_sd")]
    parts += ["", "Label consistency (% of val images with the same top-1 as at zoom 1), mean over seeds:", "",
              zoom_table(s, "consistency"), "", "Seed spread measured (SD of accuracy over seeds, points):", "",
              spread_table(s), "", "Against the paper's Table 2:", "", table2_block(s)]
    for table in (contrast_table(s), stages_table(s)):
        if table:
            parts += ["", table]
    parts.append("")
    parts += [f"- **{q}** {a}" for q, a in answers(s)]
    return "\n".join(parts)
