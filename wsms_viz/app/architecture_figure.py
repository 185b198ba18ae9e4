"""The architecture page's figure: Fig. 2 of the paper drawn from a traced model
(:func:`wsms_viz.analysis.architecture.trace` computes what it shows).
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..analysis.architecture import Architecture, fmt_shape, size_words
from ..palette import stage_color

# Text is near-black on boxes filled with a solid pale tint of their stage colour: every
# pair passes WCAG AA (contrast >= 4.5:1, tests/test_figures.py computes it). A shape's
# own ``opacity`` would also fade its outline and leave the text colour to the theme.
TEXT_COLOR = "#1a1a1a"
FILL_TINT = 0.18  # how much of the stage colour goes into a box's fill (the rest is white)


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
        label = f"<b>stage {s.index + 1}</b><br>input {fmt_shape(s.input_shape)}"
        if s.downscale:
            label += f"<br>(the image at {size_words(s.downscale)})"
        box(x, 0, label, color)
        # A stage with fewer blocks ends higher up; its blocks stay aligned with stage 1's.
        y_prev = 0.0
        for b, blk in enumerate(s.blocks):
            y = -(b + 1) * row_h
            shared = f"<br><i>shared with stage 1 ({blk.shared:.0%})</i>" if s.index and blk.shared else ""
            box(x, y, f"{blk.name}: {fmt_shape(blk.out_shape)}{shared}", color,
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
        f"{'concatenate' if n_stages > 1 else 'last block'}: {fmt_shape(arch.concat_shape)}",
        f"integration ({arch.integration}): {fmt_shape(arch.integrated_shape)}",
        f"global average pool: {fmt_shape(arch.pooled_shape)}",
        f"fully connected: {fmt_shape(arch.logits_shape)} class scores",
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
