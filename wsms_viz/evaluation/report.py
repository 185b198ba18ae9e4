"""The results tables of docs/evaluation.md and docs/scale-study.md, printed from the checkpoints' cards.

``python -m wsms_viz.evaluation.report [CKPT_DIR ...]`` (default: every checkpoint under
``./checkpoints``, baseline first) prints, as Markdown, what ``python -m
wsms_viz.evaluation.evaluate`` stored in each card: val accuracy at zoom 1 and the mean over the
zoom sweep, with and without multi-scale averaging (+TTA), the difference from the
baseline with its paired bootstrap 95% interval and verdict, and the accuracy at every
zoom. It re-evaluates nothing (a second, not minutes), and ``tests/test_shipped.py``
checks that the docs quote exactly these tables for the shipped checkpoints, so the
docs cannot drift from the weights it describes.

Then it prints the scale study (:func:`wsms_viz.evaluation.study_report.study_section`)
from ``./results/study.json`` (``--results DIR``), the summary over seeds that
``python -m wsms_viz.evaluation.study`` writes from the per-image results that ship
there; where there is none, from the cards' ``scale_study`` blocks (one seed each). With
``--study-only`` it needs no checkpoints at all. Both defaults are found from the working
directory, never from where the package is installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._cli import bad_input_exits_2
from ..cards import Card, Difference, ScaleRobustness
from ..checkpoint import CheckpointError, find_checkpoints, read_card
from ..models import model_family, teaching_order
from .complexity import count_params
from .study import read_summary
from .study_report import study_section


def describe(card: Card) -> str:
    """The model's name and what sets it apart: ``wsms_resnet20 (1x1, c=128)``."""
    family = model_family(card.model)
    extra = []
    if family in ("wsms", "ms"):
        extra.append(str(card.config.get("integration", "?")))
        if family == "wsms":
            extra.append(f"c={card.config.get('channels', '?')}")
    if card.scale_jitter:
        lo, hi = card.scale_jitter
        extra.append(f"scale jitter {lo:g}-{hi:g}x")
    name = card.name or card.model
    return f"{name} ({', '.join(extra)})" if extra else name


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _diff(d: Difference | None) -> str:
    if d is None:
        return ""
    lo, hi = d.ci
    return f"{100 * d.diff:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}], {d.resolved}"


def _sr(card: Card, where: str) -> ScaleRobustness:
    if card.scale_robustness is None:
        raise CheckpointError(f"{where}: no scale-robustness curve in the card; "
                              "run python -m wsms_viz.evaluation.evaluate on it")
    return card.scale_robustness


def one_run(cards: dict[str, Card]) -> None:
    """Refuses cards written by different evaluator runs (their baselines, intervals and
    images may differ). Cards from before run ids (version 1) pass together."""
    runs = {k: _sr(c, k).run_id for k, c in cards.items()}
    if len(set(runs.values())) > 1:
        listed = ", ".join(f"{k}: {r or 'no run id'}" for k, r in runs.items())
        raise CheckpointError(f"the cards come from different evaluator runs ({listed}); "
                              "evaluate them together with one python -m wsms_viz.evaluation.evaluate")


def summary_table(cards: dict[str, Card]) -> str:
    """One row per card: params, zoom 1, mean over zooms, both with +TTA, and the
    difference from the evaluator's baseline (blank for the baseline itself)."""
    one_run(cards)
    srs = {k: _sr(c, k) for k, c in cards.items()}
    zooms = next(iter(srs.values())).zooms
    baselines = {sr.vs_baseline.baseline for sr in srs.values() if sr.vs_baseline} - {None}
    vs = f"vs {baselines.pop()}" if len(baselines) == 1 else "vs the baseline"
    lines = [f"| model | params | zoom 1 | mean over zooms {min(zooms):g}-{max(zooms):g} | zoom 1, +TTA | mean, +TTA "
             f"| {vs} at zoom 1 (95% CI), resolved? | {vs}, mean over zooms |",
             "|---|---|---|---|---|---|---|---|"]
    for key, card in cards.items():
        sr = srs[key]
        d = sr.vs_baseline
        params = count_params(card.model, **card.config) / 1e6
        cells = [describe(card), f"{params:.3f}M", _pct(sr.at_zoom_1), _pct(sr.mean_acc),
                 _pct(sr.tta.at_zoom_1 if sr.tta else None), _pct(sr.tta.mean_acc if sr.tta else None),
                 _diff(d and d.at_zoom_1), _diff(d and d.mean)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def zoom_table(cards: dict[str, Card]) -> str:
    """Val accuracy (%) of each card at every zoom of its sweep."""
    one_run(cards)
    srs = {k: _sr(c, k) for k, c in cards.items()}
    zooms = next(iter(srs.values())).zooms
    if any(sr.zooms != zooms for sr in srs.values()):
        raise CheckpointError("the cards were evaluated at different zooms; evaluate them together")
    lines = ["| model | " + " | ".join(f"{z:g}" for z in zooms) + " |", "|---" * (len(zooms) + 1) + "|"]
    for key, card in cards.items():
        lines.append(f"| {card.name or key} | " + " | ".join(_pct(a) for a in srs[key].val_acc) + " |")
    return "\n".join(lines)


def read_cards(dirs: list[Path]) -> dict[str, Card]:
    """``{name: card}`` in the order given."""
    cards = {}
    for d in dirs:
        card = read_card(d)
        cards[card.name or d.name] = card
    return cards


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m wsms_viz.evaluation.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", type=Path, metavar="CKPT_DIR",
                   help="default: every checkpoint under --checkpoint-root, baseline first")
    p.add_argument("--checkpoint-root", type=Path, default=Path("checkpoints"), metavar="DIR",
                   help="where the default checkpoints are (default: ./checkpoints)")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="the scale study's per-image results and study.json (default: ./results)")
    p.add_argument("--study-only", action="store_true",
                   help="print only the scale study, from --results (no checkpoints needed)")
    args = p.parse_args(argv)
    with bad_input_exits_2():
        summary = read_summary(args.results)
        if args.study_only:
            if summary is None:
                raise CheckpointError(f"no {args.results}/study.json: run python -m wsms_viz.evaluation.study "
                                      f"--results {args.results}")
            print(study_section(summary))
            return
        dirs = args.checkpoints or sorted(find_checkpoints(args.checkpoint_root), key=lambda d: teaching_order(d.name))
        if not dirs:
            raise CheckpointError(f"no checkpoints found under {args.checkpoint_root} (run from the repository, "
                                  "or give --checkpoint-root or CKPT_DIR)")
        cards = read_cards(dirs)
        print(summary_table(cards))
        print()
        print(zoom_table(cards))
        study = study_section(summary if summary is not None else cards)
        if study:
            print()
            print(study)


if __name__ == "__main__":
    main()
