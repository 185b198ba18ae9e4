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

import torch
from torch import nn

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
                        "shape": fmt_shape(s.input_shape), "parameters": 0, "shared with stage 1": ""})
            for b in s.blocks:
                out.append({"stage": str(s.index + 1), "step": f"{b.name}: {b.layers}", "shape": fmt_shape(b.out_shape),
                            "parameters": b.params,
                            "shared with stage 1": "" if s.index == 0 else f"{b.shared:.0%} of conv weights"})
        out.append({"stage": "all", "step": "concatenate stage outputs", "shape": fmt_shape(self.concat_shape),
                    "parameters": 0, "shared with stage 1": ""})
        out.append({"stage": "all", "step": f"integration layer ({self.integration})",
                    "shape": fmt_shape(self.integrated_shape), "parameters": self.integration_params,
                    "shared with stage 1": ""})
        out.append({"stage": "all", "step": "global average pooling", "shape": fmt_shape(self.pooled_shape),
                    "parameters": 0, "shared with stage 1": ""})
        out.append({"stage": "all", "step": "fully connected -> class scores", "shape": fmt_shape(self.logits_shape),
                    "parameters": self.fc_params, "shared with stage 1": ""})
        return out


def size_words(downscale: int) -> str:
    """``1 -> "1/2 size"``, ``2 -> "1/4 size"``: what a student reads faster than "halved 2x"."""
    return f"1/{2 ** downscale} size"


def fmt_shape(shape: tuple[int, ...]) -> str:
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
