"""The Lesson's rendered text, read from an AppTest run in page order: what the lesson
tests scan (take-homes, glossary words) and count (reading time)."""

from __future__ import annotations

import re

KINDS = ("markdown", "success", "info", "warning", "subheader", "caption", "metric", "title")


def rendered_blocks(at) -> list[tuple[str, str, bool]]:
    """``(kind, text, folded)`` for every text element of the main area, in page order;
    ``folded``: inside an expander (read only by whoever opens it)."""
    out = []

    def visit(node, folded: bool) -> None:
        kind = getattr(node, "type", None)
        if kind == "metric":
            out.append((kind, f"{node.label} {node.value} {node.proto.delta}", folded))
        elif kind == "expander":
            out.append(("expander", node.label, folded))
            folded = True
        elif kind in KINDS and hasattr(node, "value"):
            out.append((kind, str(node.value), folded))
        for k in sorted(getattr(node, "children", {}) or {}):
            visit(node.children[k], folded)

    visit(at.main, False)
    return out


def words(text: str) -> int:
    """Words as a reader counts them: markdown's markers and icon codes left out."""
    text = re.sub(r":material/[a-z_]+:", " ", text)
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'.,%/+-]*", text.replace("\\", "")))


def by_step(at, titles: list[str]) -> dict[str, list[tuple[str, str, bool]]]:
    """The blocks under each of ``titles`` (subheaders), up to the next one."""
    out, current = {}, None
    for kind, text, folded in rendered_blocks(at):
        if kind == "subheader" and text in titles:
            current = text
            out[current] = []
        elif current is not None:
            out[current].append((kind, text, folded))
    return out
