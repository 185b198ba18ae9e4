"""The architecture page: a model's stages, blocks, shared weights and tensor shapes.

Everything is read from the model itself: the shapes from one
``forward_features`` pass on a 32x32 input, the shared weights by comparing the
convolution weight tensors of each stage's blocks with stage 1's (a WSMS-Net ties them,
an MS-Net does not), the parameter counts from the modules (each shared tensor once).

Example:
    >>> from wsms_viz.models import create_model
    >>> arch = trace(create_model("wsms_resnet20"))
    >>> [s.input_shape for s in arch.stages]
    [(3, 32, 32), (3, 16, 16), (3, 8, 8)]
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from torch import nn

from ..palette import stage_color
from .stage_view import integration_kind, integration_layer, stage_views


@dataclass(frozen=True)
class BlockInfo:
    """One convolution block of one stage (a column cell of Fig. 2).

    Attributes:
        name: "stem" or "block b".
        out_shape: ``(C, H, W)`` after it.
        params: its parameters (shared ones included).
        shared: the fraction of its convolution weights that are the very tensors of
            stage 1's same block (1.0 in a WSMS-Net, 0.0 in an MS-Net or stage 1).
        layers: a short description ("3 residual blocks, 9 convolutions").
    """

    name: str
    out_shape: tuple[int, ...]
    params: int
    shared: float
    layers: str


@dataclass(frozen=True)
class StageInfo:
    index: int
    downscale: int
    input_shape: tuple[int, ...]
    blocks: tuple[BlockInfo, ...]
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class Architecture:
    """What :func:`diagram` draws; also a table for the page."""

    name: str
    stages: tuple[StageInfo, ...]
    concat_shape: tuple[int, ...]
    integration: str
    integrated_shape: tuple[int, ...]
    pooled_shape: tuple[int, ...]
    logits_shape: tuple[int, ...]
    params_total: int
    params_unshared: int  # what the same model would have with nothing shared (an MS-Net)
    integration_params: int
    fc_params: int

    def rows(self) -> list[dict]:
        """One row per step, input to logits, for a table (stage "all": the steps after the stages join)."""
        out = []
        for s in self.stages:
            step = f"input at {size_words(s.downscale)}" if s.downscale else "input"
            out.append({"stage": str(s.index + 1), "step": step,
                        "shape": _fmt(s.input_shape), "parameters": 0, "shared with stage 1": ""})
            for b in s.blocks:
                out.append({"stage": str(s.index + 1), "step": f"{b.name}: {b.layers}", "shape": _fmt(b.out_shape),
                            "parameters": b.params,
                            "shared with stage 1": "" if s.index == 0 else f"{b.shared:.0%} of conv weights"})
        out.append({"stage": "all", "step": "concatenate stage outputs", "shape": _fmt(self.concat_shape),
                    "parameters": 0, "shared with stage 1": ""})
        out.append({"stage": "all", "step": f"integration layer ({self.integration})",
                    "shape": _fmt(self.integrated_shape), "parameters": self.integration_params,
                    "shared with stage 1": ""})
        out.append({"stage": "all", "step": "global average pooling", "shape": _fmt(self.pooled_shape),
                    "parameters": 0, "shared with stage 1": ""})
        out.append({"stage": "all", "step": "fully connected -> class scores", "shape": _fmt(self.logits_shape),
                    "parameters": self.fc_params, "shared with stage 1": ""})
        return out


def _fmt(shape: tuple[int, ...]) -> str:
    return " x ".join(str(d) for d in shape)


def _unique_params(modules: list[nn.Module]) -> int:
    seen, n = set(), 0
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
    return n


def _convs(m: nn.Module) -> list[nn.Conv2d]:
    return [c for c in m.modules() if isinstance(c, nn.Conv2d)]


def _describe(block: nn.Module) -> str:
    convs = len(_convs(block))
    children = list(block.children()) if isinstance(block, nn.Sequential) else [block]
    kinds = {type(c).__name__ for c in children}
    if len(children) > 1 and len(kinds) == 1:
        kind = kinds.pop()
        label = {"BasicBlock": "residual blocks", "DenseLayer": "dense layers"}.get(kind, f"{kind} layers")
        return f"{len(children)} {label}, {convs} convolutions"
    return f"{convs} convolution{'s' if convs != 1 else ''}"


@torch.no_grad()
def trace(model: nn.Module, input_size: int = 32) -> Architecture:
    """Reads the architecture of ``model`` (eval mode) from one pass on a blank image.

    Args:
        model: a WSMS-Net, MS-Net or baseline from the registry.
        input_size: side of the square input.
    """
    views = stage_views(model)
    was_training = model.training
    model.eval()
    try:
        out = model.forward_features(torch.zeros(1, 3, input_size, input_size))
    finally:
        model.train(was_training)
    shape = lambda t: tuple(t.shape[1:])  # noqa: E731
    first = views[0]
    stages = []
    for v, x_s, maps in zip(views, out.stage_inputs, out.stage_features, strict=True):
        blocks = []
        for b, (block, fmap) in enumerate(zip(v.blocks, maps, strict=True)):
            # The stem (the first convolution) runs before block 1 and is counted with it.
            mods, ref = ([v.stem, block], [first.stem, first.blocks[0]]) if b == 0 else ([block], [first.blocks[b]])
            mine = [c for m in mods for c in _convs(m)]
            theirs = [c for m in ref for c in _convs(m)]
            shared = (sum(c.weight is r.weight for c, r in zip(mine, theirs, strict=False)) / len(mine)
                      if mine and v.index > 0 else 0.0)
            layers = ("first convolution, then " if b == 0 and _convs(v.stem) else "") + _describe(block)
            blocks.append(BlockInfo(f"block {b + 1}", shape(fmap), _unique_params(mods), shared, layers))
        stages.append(StageInfo(v.index, v.downscale, shape(x_s), tuple(blocks),
                                shape(out.stage_outputs[v.index])))
    total = _unique_params([model])
    unshared = sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False))
    integ = integration_layer(model)
    return Architecture(
        getattr(model, "model_name", type(model).__name__), tuple(stages), shape(out.concat),
        integration_kind(model), shape(out.integrated), shape(out.pooled), shape(out.logits),
        total, unshared, _unique_params([integ]), _unique_params([model.fc]),
    )


# --- the diagram ---------------------------------------------------------------------

# Text is near-black on boxes filled with a solid pale tint of their stage colour: every
# pair passes WCAG AA (contrast >= 4.5:1, tests/test_figures.py computes it). A shape's
# own ``opacity`` would also fade its outline and leave the text colour to the theme.
TEXT_COLOR = "#1a1a1a"
FILL_TINT = 0.18  # how much of the stage colour goes into a box's fill (the rest is white)


def size_words(downscale: int) -> str:
    """``1 -> "1/2 size"``, ``2 -> "1/4 size"``: what a student reads faster than "halved 2x"."""
    return f"1/{2 ** downscale} size"


def tint(hex_color: str, amount: float = FILL_TINT) -> str:
    """``hex_color`` mixed with white: ``amount`` of the colour, ``1 - amount`` of white."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * amount):02x}" for c in rgb)


def diagram(arch: Architecture) -> go.Figure:
    """Fig. 2 of the paper drawn from ``arch``: one column per stage, shared blocks linked.

    Blocks at the same depth sit on the same row; in a WSMS-Net a dashed line joins the
    blocks whose convolutions are the same tensors. Every box is labelled with the shape
    of the tensor that leaves it.
    """
    fig = go.Figure()
    n_stages = len(arch.stages)
    n_rows = max(len(s.blocks) for s in arch.stages) + 1  # + the input row
    col_w, row_h, box_w, box_h = 3.0, 1.25, 2.3, 0.8
    shapes, notes = [], []

    def box(x, y, text, color, dash=None, hover=""):
        shapes.append(dict(type="rect", x0=x - box_w / 2, x1=x + box_w / 2, y0=y - box_h / 2, y1=y + box_h / 2,
                           line=dict(color=color, width=2, dash=dash), fillcolor=tint(color), layer="below"))
        notes.append(dict(x=x, y=y, text=text, showarrow=False, font=dict(size=12, color=TEXT_COLOR),
                          hovertext=hover or None))

    def arrow(x0, y0, x1, y1):
        notes.append(dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                          showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.5, arrowcolor="#555"))

    bottom = -(n_rows + 1) * row_h
    for s in arch.stages:
        x = s.index * col_w
        color = stage_color(s.index)
        label = f"<b>stage {s.index + 1}</b><br>input {_fmt(s.input_shape)}"
        if s.downscale:
            label += f"<br>(the image at {size_words(s.downscale)})"
        box(x, 0, label, color)
        # A stage with fewer blocks ends higher up; its blocks stay aligned with stage 1's.
        y_prev = 0.0
        for b, blk in enumerate(s.blocks):
            y = -(b + 1) * row_h
            shared = f"<br><i>shared with stage 1 ({blk.shared:.0%})</i>" if s.index and blk.shared else ""
            box(x, y, f"{blk.name}: {_fmt(blk.out_shape)}{shared}", color,
                hover=f"{blk.layers}; {blk.params:,} parameters")
            arrow(x, y_prev - box_h / 2, x, y + box_h / 2)
            y_prev = y
        arrow(x, y_prev - box_h / 2, (n_stages - 1) * col_w / 2, bottom + box_h / 2)
    # Shared-weight links between neighbouring columns: block b of every stage is one
    # set of convolution tensors, so linking neighbours links them all.
    for s in arch.stages[1:]:
        for b, blk in enumerate(s.blocks):
            if blk.shared:
                y = -(b + 1) * row_h
                x0, x1 = (s.index - 1) * col_w + box_w / 2, s.index * col_w - box_w / 2
                shapes.append(dict(type="line", x0=x0, x1=x1, y0=y, y1=y,
                                   line=dict(color="#333", width=2, dash="dash")))
                # Above the line, not on it: the text's bottom edge sits just over the dash.
                notes.append(dict(x=(x0 + x1) / 2, y=y + 0.04, yanchor="bottom", text="same<br>weights",
                                  showarrow=False, font=dict(size=10, color=TEXT_COLOR)))
    cx = (n_stages - 1) * col_w / 2
    steps = [
        f"concatenate: {_fmt(arch.concat_shape)}" if n_stages > 1 else f"last block: {_fmt(arch.concat_shape)}",
        f"integration ({arch.integration}): {_fmt(arch.integrated_shape)}",
        f"global average pool: {_fmt(arch.pooled_shape)}",
        f"fully connected: {_fmt(arch.logits_shape)} class scores",
    ]
    if n_stages == 1:
        steps.pop(1)
    for i, text in enumerate(steps):
        y = bottom - i * row_h
        box(cx, y, text, "#666666")
        if i:
            arrow(cx, y + row_h - box_h / 2, cx, y + box_h / 2)
    notes.append(dict(x=cx, y=0.75, text=f"<b>{arch.name}</b>: {arch.params_total:,} parameters"
                      + (f" ({arch.params_unshared:,} if nothing were shared)"
                         if arch.params_unshared != arch.params_total else ""), showarrow=False,
                      font=dict(size=14, color=TEXT_COLOR)))
    low = bottom - (len(steps) - 1) * row_h - box_h
    fig.update_layout(
        shapes=shapes, annotations=notes, height=int(140 * (n_rows + len(steps) + 1)),
        xaxis=dict(visible=False, range=[-col_w / 2 - 0.2, (n_stages - 0.5) * col_w + 0.2]),
        yaxis=dict(visible=False, range=[low, 1.1]), margin=dict(l=5, r=5, t=5, b=5),
        plot_bgcolor="white", showlegend=False,
    )
    return fig
