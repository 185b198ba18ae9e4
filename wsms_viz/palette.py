"""The colours of every figure: one per stage, one per model, the same on every page.

A stage keeps its colour from the receptive fields to the attributions, the integration
layer and the architecture diagram; a model keeps its colour from the zoom page to the
accuracy and training curves, whichever models are selected beside it (the colour
follows the name, not the position in a list). No plotting here, no streamlit.

Example:
    >>> stage_color(0) == STAGE_COLORS[0], model_color("wsms_resnet20") == model_color("wsms_resnet20")
    (True, True)
"""

from __future__ import annotations

import hashlib

# Saturated and far apart, so stage 1, 2 and 3 read apart on a photo and on white.
STAGE_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")

# The models of this repository by name; any other model draws from the same list by a
# hash of its name, so it too keeps one colour wherever it appears.
MODEL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22")
_KNOWN = {
    "resnet20": 0, "wsms_resnet20": 1, "ms_resnet20": 2, "resnet20_jitter": 3,
    "wsms_resnet20_jitter": 4, "resnet20_jitter_mid": 5, "wsms_resnet20_jitter_mid": 6, "sc_resnet20": 7,
    "sc_resnet20_jitter_mid": 8,
}


def stage_color(stage: int) -> str:
    """The colour of a stage (0-based) on every figure."""
    return STAGE_COLORS[stage % len(STAGE_COLORS)]


def model_color(name: str) -> str:
    """The colour of the model called ``name`` (an untrained one's " (untrained)" ignored)."""
    base = name.removesuffix(" (untrained)")
    i = _KNOWN.get(base)
    if i is None:
        i = int(hashlib.sha256(base.encode()).hexdigest(), 16)
    return MODEL_COLORS[i % len(MODEL_COLORS)]
