"""The README's Results tables, printed from the checkpoints' cards.

``python -m wsms_viz.evaluation.report [CKPT_DIR ...]`` (default: every checkpoint under
``checkpoints/``, baseline first) prints, as Markdown, what ``python -m
wsms_viz.evaluation.evaluate`` stored in each card: val accuracy at zoom 1 and the mean over the
zoom sweep, with and without multi-scale averaging (+TTA), the difference from the
baseline with its paired bootstrap 95% interval and verdict, and the accuracy at every
zoom. It re-evaluates nothing (a second, not minutes), and ``tests/test_shipped.py``
checks that the README quotes exactly these tables for the shipped checkpoints, so the
README cannot drift from the weights it describes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..app.catalog import teaching_order
from ..checkpoint import CheckpointError, find_checkpoints, read_card
from .complexity import count_params


def describe(card: dict) -> str:
    """The model's name and what sets it apart: ``wsms_resnet20 (1x1, c=128)``."""
    name = card.get("name") or card.get("model", "?")
    config = card.get("config") or {}
    jitter = (card.get("recipe") or {}).get("scale_jitter")
    extra = []
    if str(card.get("model", "")).startswith(("wsms_", "ms_")):
        extra.append(str(config.get("integration", "?")))
        if str(card["model"]).startswith("wsms_"):
            extra.append(f"c={config.get('channels', '?')}")
    if jitter:
        extra.append(f"scale jitter {jitter[0]:g}-{jitter[1]:g}x")
    return f"{name} ({', '.join(extra)})" if extra else name


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _diff(d: dict | None) -> str:
    if not d:
        return ""
    lo, hi = d["ci"]
    return f"{100 * d['diff']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}], {d['resolved']}"


def _sr(card: dict, where: str) -> dict:
    sr = card.get("scale_robustness")
    if not isinstance(sr, dict) or not sr.get("zooms") or not sr.get("val_acc"):
        raise CheckpointError(f"{where}: no scale-robustness curve in the card; "
                              "run python -m wsms_viz.evaluation.evaluate on it")
    return sr


def _at1(entry: dict) -> float | None:
    zooms, acc = entry.get("zooms"), entry.get("val_acc")
    if not isinstance(acc, list):
        return None
    return acc[(zooms or []).index(1.0)] if 1.0 in (zooms or []) else None


def summary_table(cards: dict[str, dict]) -> str:
    """One row per card: params, zoom 1, mean over zooms, both with +TTA, and the
    difference from the evaluator's baseline (blank for the baseline itself)."""
    srs = {k: _sr(c, k) for k, c in cards.items()}
    zooms = next(iter(srs.values()))["zooms"]
    baselines = {(sr.get("vs_baseline") or {}).get("baseline") for sr in srs.values()} - {None}
    vs = f"vs {baselines.pop()}" if len(baselines) == 1 else "vs the baseline"
    lines = [f"| model | params | zoom 1 | mean over zooms {min(zooms):g}-{max(zooms):g} | zoom 1, +TTA | mean, +TTA "
             f"| {vs} at zoom 1 (95% CI), resolved? | {vs}, mean over zooms |",
             "|---|---|---|---|---|---|---|---|"]
    for key, card in cards.items():
        sr = srs[key]
        tta = sr.get("tta") or {}
        d = sr.get("vs_baseline") or {}
        params = count_params(card["model"], **(card.get("config") or {})) / 1e6
        cells = [describe(card), f"{params:.3f}M", _pct(_at1(sr)), _pct(sr.get("mean_acc")),
                 _pct(_at1({"zooms": sr["zooms"], "val_acc": tta.get("val_acc")})), _pct(tta.get("mean_acc")),
                 _diff(d.get("at_zoom_1")), _diff(d.get("mean"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def zoom_table(cards: dict[str, dict]) -> str:
    """Val accuracy (%) of each card at every zoom of its sweep."""
    srs = {k: _sr(c, k) for k, c in cards.items()}
    zooms = next(iter(srs.values()))["zooms"]
    if any(sr["zooms"] != zooms for sr in srs.values()):
        raise CheckpointError("the cards were evaluated at different zooms; evaluate them together")
    lines = ["| model | " + " | ".join(f"{z:g}" for z in zooms) + " |", "|---" * (len(zooms) + 1) + "|"]
    for key, card in cards.items():
        lines.append(f"| {card.get('name') or key} | " + " | ".join(_pct(a) for a in srs[key]["val_acc"]) + " |")
    return "\n".join(lines)


def read_cards(dirs: list[Path]) -> dict[str, dict]:
    """``{name: card}`` in the order given."""
    cards = {}
    for d in dirs:
        card = read_card(d)
        cards[card.get("name") or d.name] = card
    return cards


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m wsms_viz.evaluation.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", type=Path, metavar="CKPT_DIR",
                   help="default: every checkpoint under checkpoints/, baseline first")
    args = p.parse_args(argv)
    dirs = args.checkpoints or sorted(find_checkpoints(Path(__file__).resolve().parents[2] / "checkpoints"),
                                      key=lambda d: teaching_order(d.name))
    try:
        if not dirs:
            raise CheckpointError("no checkpoints found")
        cards = read_cards(dirs)
        print(summary_table(cards))
        print()
        print(zoom_table(cards))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
