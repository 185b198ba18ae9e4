"""Parameter and multiplication counts beside the paper's Tables 1 and 2 and section 4.

``python -m wsms_viz.evaluation.complexity`` prints the table quoted in docs/library.md. Models are
built on the meta device, so counting a 42M-parameter MS-DenseNet costs no memory.
``--write-json`` rewrites ``complexity_table.json`` beside this module, which the app's
scale-robustness page reads (:func:`table_rows`) rather than counting for ~20 s.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..models import create_model

COMPLEXITY_JSON = Path(__file__).resolve().with_name("complexity_table.json")


@dataclass(frozen=True)
class PaperRow:
    label: str
    name: str
    config: tuple  # (key, value) pairs, hashable
    params_c10: float | None  # millions, as printed in the paper
    params_c100: float | None
    mults: float | None = None  # millions, section 4 (one 32x32 image)
    source: str = ""


_R = (("integration", "1x1"),)
PAPER_ROWS: list[PaperRow] = [
    PaperRow("ResNet-110", "resnet110", (), 1.73, 1.73, 252, "Table 2"),
    PaperRow("WSMS-ResNet-110 (no conv)", "wsms_resnet110", (("integration", "none"),), 1.73, 1.74, None, "Table 2"),
    PaperRow("WSMS-ResNet-110 (1x1)", "wsms_resnet110", _R, 1.75, 1.76, 301, "Table 2"),
    PaperRow("WSMS-ResNet-110 (3x3)", "wsms_resnet110", (("integration", "3x3"),), 1.86, 1.87, None, "Table 2"),
    PaperRow("MS-ResNet-110 (1x1)", "ms_resnet110", _R, 2.23, 2.25, None, "Table 2"),
    PaperRow("DenseNet-100 (k=24)", "densenet", (), 27.2, 27.2, 6889, "Table 1"),
    PaperRow("DenseNet-100 (k=26)", "densenet", (("growth_rate", 26),), 31.9, 31.9, None, "Table 1"),
    PaperRow("WSMS-DenseNet (no conv)", "wsms_densenet", (("integration", "none"),), 27.4, 27.8, None, "Table 1"),
    PaperRow("WSMS-DenseNet (1x1)", "wsms_densenet", _R, 28.0, 28.0, 8454, "Table 1"),
    PaperRow("WSMS-DenseNet (3x3)", "wsms_densenet", (("integration", "3x3"),), 32.7, 32.7, None, "Table 1"),
    PaperRow("MS-DenseNet (1x1)", "ms_densenet", _R, 41.3, 41.3, None, "Table 1"),
]


def _build(name: str, config: dict, device: str) -> torch.nn.Module:
    if "growth_rate" in config and name != "densenet":
        config = {"backbone_config": {"growth_rate": config.pop("growth_rate")}, **config}
    with torch.device(device):
        return create_model(name, **config).eval()


def count_params(name: str, device: str = "meta", **config) -> int:
    """Trainable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in _build(name, dict(config), device).parameters())


def count_mults(name: str, size: int = 32, device: str = "meta", **config) -> int:
    """Multiply-accumulates of one forward pass on one ``size`` x ``size`` image.

    ``FlopCounterMode`` counts a multiply-add as two FLOPs; the paper counts
    multiplications, so this returns FLOPs / 2.
    """
    model = _build(name, dict(config), device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops() // 2


def table() -> list[dict]:
    rows = []
    for r in PAPER_ROWS:
        cfg = dict(r.config)
        rows.append({
            "model": r.label, "source": r.source,
            "params_c10": count_params(r.name, **cfg) / 1e6, "paper_c10": r.params_c10,
            "params_c100": count_params(r.name, num_classes=100, **cfg) / 1e6, "paper_c100": r.params_c100,
            "mults": count_mults(r.name, **cfg) / 1e6, "paper_mults": r.mults,
        })
    return rows


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def format_table(rows: list[dict]) -> str:
    lines = [
        "| model | source | params C10 (ours / paper) | params C100 (ours / paper) | mults, M (ours / paper) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['source']} | {r['params_c10']:.3f}M / {_fmt(r['paper_c10'], '.2f')}M"
            f" | {r['params_c100']:.3f}M / {_fmt(r['paper_c100'], '.2f')}M"
            f" | {r['mults']:,.1f} / {_fmt(r['paper_mults'], ',')} |"
        )
    return "\n".join(lines)


def table_rows() -> list[dict]:
    """:func:`table`, read from ``complexity_table.json`` if present, else computed."""
    if COMPLEXITY_JSON.is_file():
        return json.loads(COMPLEXITY_JSON.read_text(encoding="utf-8"))
    return table()


def write_table_json(path: Path = COMPLEXITY_JSON) -> list[dict]:
    rows = table()
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-json", action="store_true", help=f"also rewrite {COMPLEXITY_JSON.name}")
    args = parser.parse_args(argv)
    rows = write_table_json() if args.write_json else table()
    print(format_table(rows))
    if args.write_json:
        print(f"wrote {len(rows)} rows to {COMPLEXITY_JSON.name}")


if __name__ == "__main__":
    main()
