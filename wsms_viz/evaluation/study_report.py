"""The scale study's tables, as Markdown, from the cards' ``scale_study`` blocks.

``python -m wsms_viz.evaluation.report`` prints :func:`study_section` after the Results
tables; ``tests/test_shipped.py`` checks that the README quotes it. Nothing here
re-evaluates: it formats what :mod:`wsms_viz.evaluation.study` stored.
"""

from __future__ import annotations

from .study import ATTR_ZOOMS, REGIMES, all_contrasts, answers, study_of

FAMILIES = ("resnet20", "wsms_resnet20", "ms_resnet20", "sc_resnet20")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _mean_ci(block: dict | None) -> str:
    if not block:
        return ""
    lo, hi = block["ci"]
    return f"{100 * block['mean']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"


def _range(rng: list[float]) -> str:
    lo, hi = rng
    return "1 only" if lo == hi == 1 else f"{lo:.2f}-{hi:.2f}"


def _wall(card: dict) -> str:
    s = card.get("wall_time_s")
    return "" if not isinstance(s, int | float) else f"{s / 60:.0f} min"


def _machine(card: dict) -> str:
    hw = str(card.get("hardware") or "?")
    return f"{hw}, {card.get('precision') or 'fp32'}"


def studied(cards: dict[str, dict]) -> dict[str, dict]:
    """The cards that carry a scale study, by regime (none, mid, full) and then
    architecture (baseline, WSMS, MS, scale channel), whatever order they came in."""
    regimes, families = list(REGIMES), list(FAMILIES)

    def order(item):
        key, card = item
        s = study_of(card)
        fam = str(card.get("model"))
        return (regimes.index(s["regime"]) if s["regime"] in regimes else len(regimes),
                families.index(fam) if fam in families else len(families), key)

    return dict(sorted(((k, c) for k, c in cards.items() if study_of(c)), key=order))


def arms_table(cards: dict[str, dict]) -> str:
    """Each model's regime, trained range, machine and training wall time, and the
    mean accuracy inside and outside its trained range."""
    lines = ["| model | regime | trained range | trained on | wall time | zoom 1 | mean inside the range [95% CI] "
             "| mean outside [95% CI] | worst zoom (acc) | same top-1 as at zoom 1, outside |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, card in studied(cards).items():
        s = study_of(card)
        at1 = s["val_acc"][s["zooms"].index(1.0)]
        cons = s.get("consistency_outside")
        lines.append("| " + " | ".join([
            key, s["regime"], _range(s["trained_range"]), _machine(card), _wall(card), _pct(at1),
            _mean_ci(s.get("inside")), _mean_ci(s.get("outside")),
            f"{s['worst']['zoom']:.3g} ({_pct(s['worst']['acc'])})", _pct(cons)]) + " |")
    return "\n".join(lines)


def zoom_table(cards: dict[str, dict], key: str = "val_acc") -> str:
    """Val accuracy (%) at each of the study's zooms (``key="consistency"``: the % of val
    images whose top-1 there is the model's own top-1 at zoom 1)."""
    st = studied(cards)
    if not st:
        return ""
    zooms = study_of(next(iter(st.values())))["zooms"]
    lines = ["| model | " + " | ".join(f"{z:.3g}" for z in zooms) + " |", "|---" * (len(zooms) + 1) + "|"]
    for name, card in st.items():
        s = study_of(card)
        if s["zooms"] != zooms:
            raise ValueError(f"{name}: measured at other zooms than the first card; run the study on them together")
        lines.append(f"| {name} | " + " | ".join(_pct(a) for a in s[key]) + " |")
    return "\n".join(lines)


def contrast_table(cards: dict[str, dict]) -> str:
    """Every stored contrast: its difference, bootstrap interval, seed-aware interval and verdict."""
    cs = sorted(all_contrasts(cards).values(), key=lambda c: (c["question"], c["id"]))
    if not cs:
        return ""
    lines = ["| question | contrast | zooms | difference, points [95% CI] | seed-aware 95% CI | resolved? |",
             "|---|---|---|---|---|---|"]
    for c in cs:
        lo, hi = c["ci"]
        sa = c.get("seed_aware_ci")
        zs = c["zooms"]
        zdesc = f"{zs[0]:.3g}" if len(zs) == 1 else f"{len(zs)} ({zs[0]:.3g}-{zs[-1]:.3g})"
        lines.append("| " + " | ".join([
            str(c["question"]), c["what"], zdesc, f"{100 * c['diff']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]",
            f"[{100 * sa[0]:+.2f}, {100 * sa[1]:+.2f}]" if sa else "", c["resolved"]]) + " |")
    return "\n".join(lines)


def stages_table(cards: dict[str, dict]) -> str:
    """Multi-stage models: each stage's attribution share and lesion drop at 0.5, 1, 2."""
    lines = ["| model | zoom | attribution share, stages 1 / 2 / 3 | accuracy lost without stage 1 / 2 / 3, points "
             "| without stages 2+3 |", "|---|---|---|---|---|"]
    rows = 0
    for key, card in studied(cards).items():
        st = study_of(card).get("stages")
        if not st:
            continue
        attr, les = st.get("attribution") or {}, st.get("lesion") or {}
        for a, z in enumerate(st.get("zooms", ATTR_ZOOMS)):
            share = " / ".join(f"{v:.3f}" for v in attr["share"][a]) if attr else ""
            drop = " / ".join(f"{100 * v:+.2f}" for v in les["drop"][a]) if les else ""
            d23 = f"{100 * les['drop_stages_2_3'][a]:+.2f}" if les else ""
            lines.append(f"| {key} | {z:g} | {share} | {drop} | {d23} |")
            rows += 1
    return "\n".join(lines) if rows else ""


def study_section(cards: dict[str, dict]) -> str:
    """Everything the README's "Scale study" quotes: the tables and one sentence per question."""
    st = studied(cards)
    if not st:
        return ""
    s0 = study_of(next(iter(st.values())))
    attr_n = next((study_of(c)["stages"]["attribution"]["images"] for c in st.values()
                   if (study_of(c).get("stages") or {}).get("attribution")), None)
    parts = [f"Scale study: {s0['val_images']} val images, {len(s0['zooms'])} zooms "
             f"{min(s0['zooms']):g}-{max(s0['zooms']):g}; accuracy (%), 95% bootstrap intervals "
             f"({s0['resamples']} resamples)"
             + (f"; attribution shares on {attr_n} val images" if attr_n else ""),
             "", arms_table(cards), "", "Accuracy (%) at each zoom:", "", zoom_table(cards), "",
             "Label consistency (% of val images with the same top-1 as at zoom 1):", "",
             zoom_table(cards, "consistency")]
    for table in (contrast_table(cards), stages_table(cards)):
        if table:
            parts += ["", table]
    parts.append("")
    parts += [f"- **{q}** {a}" for q, a in answers(cards)]
    return "\n".join(parts)
