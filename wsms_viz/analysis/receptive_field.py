"""Receptive fields of each stage, theoretical (from the model's own layers) and effective.

Why this page exists: the WSMS slides motivate the method by "the receptive field of a CNN
does not cover the same area" at different object scales. Stage ``s`` sees the input halved
``s`` times (section 3.1), so with the same blocks its units cover ``2**s`` times more of
the image: that is the multi-scale claim of Fig. 1, measured in pixels.

Theoretical field (Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019). Walking the layers from the input, with ``r`` the field
size, ``j`` the jump (input pixels between neighbouring units, the effective stride) and
``u`` the top/left edge of unit 0's field (negative where it reaches into the padding)::

    r_out = r_in + (k - 1) * d * j_in
    j_out = j_in * s
    u_out = u_in - p * j_in

starting from ``r = 1, j = 1, u = 0`` at the input. Unit ``i`` then covers input pixels
``u + i*j`` to ``u + i*j + r - 1`` (inclusive). The per-stage downscaling counts as 2x2
average pools (``r = 2, j = 2`` each) at the start of the stage. A residual block is the
union of its main path and its shortcut (option A: a 1x1 "kernel" with the block's stride);
a DenseNet layer is the union of its identity path and its conv path. The walk reads the
layers from the model through :data:`RULES`, one rule per module type; an unknown module
raises ``ValueError`` rather than being skipped, so a new block type gets a rule, not a
silently wrong field.

Effective field (Luo, Li, Urtasun and Zemel, "Understanding the Effective Receptive Field
in Deep Convolutional Neural Networks", NIPS 2016): the gradient of one unit with respect
to the input image. It is zero outside the theoretical field and concentrates near its
centre.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..models.densenet import DenseLayer
from ..models.resnet import BasicBlock, ShortcutA
from .stage_view import StageView, as_batch, integration_kind, integration_layer, require_eval, stage_views


@dataclass(frozen=True)
class Field:
    """The receptive field of every unit of one map, along one axis.

    Attributes:
        size: ``r``, the side of each unit's field in input pixels.
        jump: ``j``, input pixels between neighbouring units.
        start: ``u``, the top/left edge of unit 0's field (negative: into the padding).
        map_size: ``n``, units along the axis for the input size the walk started from.
    """

    size: int
    jump: int
    start: int
    map_size: int

    def span(self, i: int) -> tuple[int, int]:
        """First and last input pixel (inclusive, unclipped) seen by unit ``i``.

        Args:
            i: the unit's index along the axis.
        """
        first = self.start + i * self.jump
        return first, first + self.size - 1

    def layer(self, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> Field:
        """The field after one window layer, by Araujo et al.'s recurrences.

        Args:
            k: kernel size.
            s: stride.
            p: padding (on each side).
            d: dilation.
            ceil_mode: pooling's ``ceil_mode`` (changes the map size only).
        """
        span = d * (k - 1) + 1
        rnd = math.ceil if ceil_mode else math.floor
        n = rnd((self.map_size + 2 * p - span) / s) + 1
        return Field(self.size + (k - 1) * d * self.jump, self.jump * s, self.start - p * self.jump, n)


def union(a: Field, b: Field) -> Field:
    """The field of a sum or concatenation of two paths from the same input.

    Args:
        a: the field after one path.
        b: the field after the other; it must have the same jump and map size.
    """
    if a.jump != b.jump or a.map_size != b.map_size:
        raise ValueError(f"the two paths of a block do not line up: {a} vs {b}")
    start = min(a.start, b.start)
    end = max(a.start + a.size, b.start + b.size)
    return Field(end - start, a.jump, start, a.map_size)


@dataclass(frozen=True)
class Row:
    """One row of the per-layer table (Araujo et al.'s table): the field after ``layer``."""

    stage: int  # 0-based
    block: str  # "input /2", "stem", "block 1", ...
    layer: str  # module name inside the stage, or what the row stands for
    kind: str  # "conv 3x3 /2", "avg pool 2x2", "residual sum", ...
    size: int
    jump: int
    start: int
    map_size: int

    def as_dict(self) -> dict:
        """For a table on a page: the paper counts stages and blocks from 1."""
        return {"stage": self.stage + 1, "block": self.block, "layer": self.layer, "kind": self.kind,
                "size": self.size, "jump": self.jump, "start": self.start, "map": self.map_size}


Rule = Callable[[nn.Module, Field, str], tuple[Field, list[tuple[str, str, Field]]]]


def _pair(v, what: str, name: str) -> int:
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ValueError(f"{name}: non-square {what} {v} is not supported")
        v = v[0]
    return int(v)


def _window(m: nn.Module, f: Field, name: str):
    k = _pair(m.kernel_size, "kernel", name)
    s = _pair(m.stride if m.stride is not None else m.kernel_size, "stride", name)
    p = m.padding
    if isinstance(p, str):
        raise ValueError(f"{name}: string padding {p!r} is not supported")
    p = _pair(p, "padding", name)
    d = _pair(getattr(m, "dilation", 1), "dilation", name)
    out = f.layer(k, s, p, d, bool(getattr(m, "ceil_mode", False)))
    kind = {nn.Conv2d: "conv", nn.MaxPool2d: "max pool", nn.AvgPool2d: "avg pool"}[type(m)]
    kind += f" {k}x{k}" + (f" /{s}" if s > 1 else "") + (f" dil {d}" if d > 1 else "")
    return out, [(name, kind, out)]


def _pointwise(m: nn.Module, f: Field, name: str):
    return f, []


def _sequential(m: nn.Module, f: Field, name: str):
    rows = []
    for child_name, child in m.named_children():
        f, r = walk(child, f, f"{name}.{child_name}" if name else child_name)
        rows += r
    return f, rows


def _basic_block(m: BasicBlock, f: Field, name: str):
    main, rows = f, []
    for part in ("conv1", "bn1", "relu1", "conv2", "bn2"):
        main, r = walk(getattr(m, part), main, f"{name}.{part}")
        rows += r
    short, r = walk(m.shortcut, f, f"{name}.shortcut")
    out = union(main, short)
    return out, rows + r + [(name, "residual sum (main path and shortcut)", out)]


def _shortcut_a(m: ShortcutA, f: Field, name: str):
    # Option A subsamples x[::s, ::s]: a 1x1 window with the block's stride.
    out = f.layer(1, m.stride, 0)
    return out, [(name, f"shortcut 1x1 /{m.stride}" if m.stride > 1 else "shortcut", out)]


def _dense_layer(m: DenseLayer, f: Field, name: str):
    conv = f
    rows = []
    for part in ("bn", "relu", "conv"):
        conv, r = walk(getattr(m, part), conv, f"{name}.{part}")
        rows += r
    out = union(f, conv)
    return out, rows + [(name, "concat (identity and conv path)", out)]


POINTWISE = (nn.Identity, nn.BatchNorm2d, nn.ReLU, nn.Dropout, nn.Dropout2d, nn.GroupNorm,
             nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh)

#: How each module type changes the field. A new block type is one rule here.
RULES: dict[type, Rule] = {
    nn.Conv2d: _window, nn.MaxPool2d: _window, nn.AvgPool2d: _window,
    BasicBlock: _basic_block, ShortcutA: _shortcut_a, DenseLayer: _dense_layer,
    **{t: _pointwise for t in POINTWISE},
}


def walk(module: nn.Module, field: Field, name: str = "") -> tuple[Field, list[tuple[str, str, Field]]]:
    """The field after ``module`` given the field of its input, and a row per layer.

    Args:
        module: a layer or block; its type needs a rule in :data:`RULES`, or it must be a
            plain ``nn.Sequential`` (subclasses that keep Sequential's forward count too).
        field: the field of the module's input.
        name: the module's name, for the rows.
    """
    rule = RULES.get(type(module))
    if rule is None and isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        rule = _sequential
    if rule is None:
        raise ValueError(f"no receptive-field rule for {name or 'module'} of type {type(module).__name__}; "
                         "add one to wsms_viz.analysis.receptive_field.RULES")
    return rule(module, field, name)


def _stage_rows(view: StageView, input_size: int) -> tuple[list[Row], list[Field]]:
    f = Field(1, 1, 0, input_size)
    rows: list[Row] = []
    for i in range(view.downscale):
        # Section 3.1: stage s's input is halved s times by 2x2 average pooling.
        f = f.layer(2, 2, 0)
        rows.append(Row(view.index, "input /2", f"downscale {i + 1}", "avg pool 2x2 /2", f.size, f.jump,
                        f.start, f.map_size))
    f, r = walk(view.stem, f, "stem")
    rows += [Row(view.index, "stem", n, k, x.size, x.jump, x.start, x.map_size) for n, k, x in r]
    after_blocks = []
    for b, block in enumerate(view.blocks):
        f, r = walk(block, f, f"blocks.{b}")
        rows += [Row(view.index, f"block {b + 1}", n, k, x.size, x.jump, x.start, x.map_size) for n, k, x in r]
        after_blocks.append(f)
    f, _ = walk(view.final, f, "final")
    return rows, after_blocks


def receptive_field_table(model: nn.Module, input_size: int = 32) -> list[Row]:
    """Araujo et al.'s table for every stage: the field after every layer, in order.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
        input_size: the input's side in pixels (only ``map_size`` depends on it).

    Example:
        >>> from wsms_viz.models import create_model
        >>> rows = receptive_field_table(create_model("resnet20"))
        >>> rows[0].kind, rows[0].size
        ('conv 3x3', 3)
    """
    return [row for view in stage_views(model) for row in _stage_rows(view, input_size)[0]]


def block_fields(model: nn.Module, input_size: int = 32) -> list[list[Field]]:
    """``block_fields(m)[s][b]``: the field of stage ``s``'s map after block ``b``.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
        input_size: the input's side in pixels (only ``map_size`` depends on it).
    """
    return [_stage_rows(view, input_size)[1] for view in stage_views(model)]


def block_table(model: nn.Module, input_size: int = 32) -> list[dict]:
    """One row per stage and block: the field of the map after that block, for a page.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
        input_size: the input's side in pixels (only ``map`` depends on it).

    Example:
        >>> from wsms_viz.models import create_model
        >>> block_table(create_model("wsms_resnet20"))[3]
        {'stage': 2, 'block': 1, 'size': 30, 'jump': 2, 'start': -14, 'map': 16}
    """
    return [{"stage": s + 1, "block": b + 1, "size": f.size, "jump": f.jump, "start": f.start, "map": f.map_size}
            for s, fields in enumerate(block_fields(model, input_size)) for b, f in enumerate(fields)]


def same_place(last: Field, i: int, other: Field) -> int:
    """The unit of map ``other`` whose field is centred nearest to unit ``i`` of map ``last``.

    One position of the last maps names the same place in every stage (they end at one
    size); at an earlier block the maps differ in size, and this finds the unit there
    that looks at that place.

    Args:
        last: the field of the map position ``i`` is in.
        i: the unit's index along the axis.
        other: the field of the map to find a unit in.
    """
    centre = last.start + i * last.jump + (last.size - 1) / 2
    j = round((centre - other.start - (other.size - 1) / 2) / other.jump)
    return int(min(max(j, 0), other.map_size - 1))


def stage_blocks(model: nn.Module) -> list[int]:
    """How many blocks each stage runs (WSMS-ResNet-20: 3, 2, 1: stage ``s`` stops when
    its map reaches the last map size)."""
    return [len(f) for f in block_fields(model)]


def final_field_note(model: nn.Module, input_size: int = 32) -> str | None:
    """One sentence on why a later stage can end with a smaller field than stage 1, or
    None when it does not (a baseline, or no such stage)."""
    fields = block_fields(model, input_size)
    last = [f[-1].size for f in fields]
    small = [s for s in range(1, len(fields)) if last[s] < last[0]]
    if not small:
        return None
    s = small[-1]
    b = len(fields[s])
    return (f"Stage {s + 1}'s last field ({last[s]} px) is smaller than stage 1's ({last[0]} px) because it runs "
            f"fewer blocks ({b} instead of {len(fields[0])}: its map is already {fields[s][-1].map_size}x"
            f"{fields[s][-1].map_size} after block {b}); block for block its field is {2 ** s} times stage 1's "
            f"({fields[s][0].size} px against {fields[0][0].size} px after block 1).")


@dataclass(frozen=True)
class FieldBox:
    """The input pixels one output position depends on, through one stage.

    Rows ``top..bottom`` and columns ``left..right`` are inclusive and clipped to the
    image; ``size`` is the unclipped side (the field can be larger than the image) and
    ``center`` the unclipped centre ``(row, column)`` in pixel coordinates.
    """

    stage: int
    top: int
    left: int
    bottom: int
    right: int
    size: int
    jump: int
    center: tuple[float, float]

    block: int = -1  # 0-based block whose output unit this is (-1: the stage's last)

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def unclipped(self) -> tuple[float, float, float, float]:
        """``(top, left, bottom, right)`` of the whole field, reaching past the image
        (into the zero padding) where it is larger than the image."""
        half = (self.size - 1) / 2
        return self.center[0] - half, self.center[1] - half, self.center[0] + half, self.center[1] + half

    @property
    def exceeds_image(self) -> bool:
        top, left, bottom, right = self.unclipped
        return top < self.top or left < self.left or bottom > self.bottom or right > self.right


def field_boxes(
    model: nn.Module, position: tuple[int, int], input_size: tuple[int, int] = (32, 32),
    through_integration: bool = False, block: int | None = None,
) -> list[FieldBox]:
    """For position ``(i, j)`` of the last maps, the field box of each stage in the input.

    Every stage ends at the same map size (section 3.1), so one position names the same
    place in every stage's output, and the boxes differ only through the downscaling.
    With ``block``, the box of the unit after that block that looks at the same place
    (:func:`same_place`), for the stages that have that block.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
        position: ``(row, column)`` in the last feature map (e.g. 0..7 for a 32x32 input).
        input_size: the input's ``(height, width)``.
        through_integration: add the integration layer's kernel (a ``3x3`` integration
            widens every stage's field by ``2 * jump``; ``1x1`` and no conv change nothing).
        block: 0-based block; None for each stage's last (then ``through_integration`` applies).

    Example:
        >>> from wsms_viz.models import create_model
        >>> [b.size for b in field_boxes(create_model("wsms_resnet20"), (4, 4))]
        [81, 74, 60]
    """
    height, width = input_size
    all_h, all_w = block_fields(model, height), block_fields(model, width)
    fields_h = [bf[-1] for bf in all_h]
    fields_w = [bf[-1] for bf in all_w]
    k = int(integration_kind(model)[0]) if integration_kind(model) != "none" else 1
    if through_integration and k > 1 and block is None:
        conv = integration_layer(model)[0]
        fields_h = [f.layer(k, 1, _pair(conv.padding, "padding", "integration")) for f in fields_h]
        fields_w = [f.layer(k, 1, _pair(conv.padding, "padding", "integration")) for f in fields_w]
    i, j = position
    boxes = []
    for s, (fh, fw) in enumerate(zip(fields_h, fields_w, strict=True)):
        if not (0 <= i < fh.map_size and 0 <= j < fw.map_size):
            raise ValueError(f"position {position} is outside stage {s + 1}'s {fh.map_size}x{fw.map_size} map")
        ii, jj = i, j
        if block is not None:
            if not 0 <= block < len(all_h[s]):
                continue  # this stage stops before that block
            ii, jj = same_place(fh, i, all_h[s][block]), same_place(fw, j, all_w[s][block])
            fh, fw = all_h[s][block], all_w[s][block]
        top, bottom = fh.span(ii)
        left, right = fw.span(jj)
        boxes.append(FieldBox(s, max(top, 0), max(left, 0), min(bottom, height - 1), min(right, width - 1),
                              fh.size, fh.jump, ((top + bottom) / 2, (left + right) / 2),
                              -1 if block is None else block))
    return boxes


UNITS = ("block", "concat")


def _unit(view: StageView, x: Tensor, position: tuple[int, int], unit: str, block: int | None = None) -> Tensor:
    x_s = view.scale_input(x)
    maps = view.block_maps(x_s)
    out = maps[-1] if unit == "block" else view.final(maps[-1])
    i, j = position
    if not (0 <= i < out.shape[-2] and 0 <= j < out.shape[-1]):
        raise ValueError(f"position {position} is outside stage {view.index + 1}'s "
                         f"{out.shape[-2]}x{out.shape[-1]} map")
    if block is not None:  # the unit after ``block`` that looks where (i, j) of the last map does
        fields_h, fields_w = (_stage_rows(view, n)[1] for n in x.shape[-2:])
        i, j = same_place(fields_h[-1], i, fields_h[block]), same_place(fields_w[-1], j, fields_w[block])
        out = maps[block]
    return out[0, :, i, j].sum()


def effective_receptive_field(
    model: nn.Module, image: Tensor, stage: int, position: tuple[int, int], unit: str = "block",
    block: int | None = None,
) -> np.ndarray:
    """Luo et al.'s effective receptive field of one unit of one stage, for one image.

    The unit is position ``(i, j)`` of stage ``stage``'s last map, summed over channels
    (``unit="block"``), or the same position of the concatenation restricted to that
    stage's channels (``unit="concat"``, after the stage's closing layer). The map is
    ``|d unit / d image|`` summed over colour channels, divided by its maximum.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        stage: 0-based stage index.
        position: ``(row, column)`` in the stage's last map.
        unit: ``"block"`` or ``"concat"``.
        block: 0-based block: the unit after it that looks where ``position`` of the
            last map does (:func:`same_place`); None for the last map itself.

    Returns:
        An ``(H, W)`` float array in [0, 1] (all zeros if the gradient is zero).

    Example:
        >>> from wsms_viz.models import create_model
        >>> m = create_model("wsms_resnet20").eval()
        >>> effective_receptive_field(m, torch.randn(3, 32, 32), 1, (4, 4)).shape
        (32, 32)
    """
    require_eval(model)
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    views = stage_views(model)
    if not 0 <= stage < len(views):
        raise ValueError(f"stage {stage} does not exist; the model has {len(views)} stages (0-based)")
    if block is not None and not 0 <= block < len(views[stage].blocks):
        raise ValueError(f"stage {stage + 1} has no block {block + 1}; it runs {len(views[stage].blocks)}")
    x = as_batch(image, model).detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(_unit(views[stage], x, position, unit, block), x)
    heat = grad[0].abs().sum(0)
    peak = heat.max()
    return (heat / peak if peak > 0 else heat).numpy()


def effective_receptive_fields(
    model: nn.Module, image: Tensor, position: tuple[int, int], unit: str = "block", block: int | None = None,
) -> list[np.ndarray]:
    """:func:`effective_receptive_field` for every stage (with ``block``: every stage that
    has that block), in stage order.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        position: ``(row, column)`` in the last maps (the same for every stage).
        unit: ``"block"`` or ``"concat"``.
        block: 0-based block, or None for each stage's last.
    """
    views = stage_views(model)
    return [effective_receptive_field(model, image, s, position, unit, block) for s in range(len(views))
            if block is None or block < len(views[s].blocks)]
