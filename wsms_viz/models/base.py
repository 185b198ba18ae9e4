"""What every model here has in common: the staged layout of the paper's Fig. 2.

A backbone is a stem followed by ``t`` convolution blocks. Block ``i > 0`` opens with
the downsizing layer that follows block ``i - 1`` in Fig. 2 (a stride-2 convolution for
ResNet, a transition for DenseNet, a max pool for VGG). Keeping the downsizing inside
the next block is what lets stage ``s`` of a WSMS-Net run "the first t-s+1 blocks" and
stop at the right size, and it keeps ResNet's stride-2 convolution inside its residual
block, where He et al. put it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class FeatureOutput:
    """Everything a visualization needs from one forward pass, no hooks required.

    Attributes:
        stage_inputs: the image each stage sees (stage ``s`` gets the input halved ``s``
            times by 2x2 average pooling; a baseline has one stage).
        stage_features: ``stage_features[s][b]`` is stage ``s``'s map after block ``b``.
        stage_outputs: each stage's output after its closing layer, as concatenated.
        concat: the stage outputs concatenated in channels (a baseline: its output).
        integrated: the integration layer's output (``concat`` itself for ``none``).
        pooled: the globally average-pooled feature vector fed to the classifier.
        logits: the classifier's output.
        stage_mask: which stages were on (off stages are zeroed at ``concat``).
    """

    stage_inputs: list[Tensor]
    stage_features: list[list[Tensor]]
    stage_outputs: list[Tensor]
    concat: Tensor
    integrated: Tensor
    pooled: Tensor
    logits: Tensor
    stage_mask: list[bool] = field(default_factory=list)


def run_blocks(stem: nn.Module, blocks: nn.ModuleList | list[nn.Module], x: Tensor) -> list[Tensor]:
    """Runs ``stem`` then each block; returns the map after every block."""
    out = []
    h = stem(x)
    for block in blocks:
        h = block(h)
        out.append(h)
    return out


def init_weights(module: nn.Module) -> None:
    """He et al.'s initialisation (section 4.2 of the WSMS paper follows it)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class StagedBackbone(nn.Module):
    """A plain CNN laid out as ``stem -> blocks -> final -> global pool -> fc``.

    Subclasses set ``stem``, ``blocks`` (an ``nn.ModuleList``), ``block_channels`` (the
    output channels of each block), ``fc`` and implement :meth:`make_final`.
    """

    stem: nn.Module
    blocks: nn.ModuleList
    final: nn.Module
    fc: nn.Linear
    block_channels: list[int]

    def make_final(self, channels: int) -> nn.Module:
        """The layer that closes a stage whose last block has ``channels`` outputs.

        Post-activation nets (ResNet, VGG) need nothing; DenseNet's blocks end in a
        concatenation, so it closes with BN-ReLU. WSMS-Net gives each stage its own.
        """
        return nn.Identity()

    @property
    def num_stages(self) -> int:
        return 1

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        h = self.final(h)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))

    def forward_features(self, x: Tensor, stage_mask: list[bool] | None = None) -> FeatureOutput:
        """Runs the network and returns every intermediate a visualization needs.

        Args:
            x: a batch of images, ``(N, 3, H, W)``, normalised.
            stage_mask: accepted for symmetry with :class:`WSMSNet`; a baseline has one
                stage, and ``[False]`` zeroes its features.
        """
        mask = _check_mask(stage_mask, 1)
        feats = run_blocks(self.stem, self.blocks, x)
        out = self.final(feats[-1])
        concat = out if mask[0] else torch.zeros_like(out)
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(concat, 1), 1)
        return FeatureOutput([x], [feats], [out], concat, concat, pooled, self.fc(pooled), mask)


def check_image_batch(x: Tensor, divisor: int, who: str) -> None:
    """Raises ValueError unless ``x`` is ``(N, C, H, W)`` with H and W multiples of
    ``divisor`` (what a multi-stage or scale-channel net needs to halve its input evenly)."""
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(f"input size {h}x{w} cannot be halved evenly by every stage: this {who} "
                         f"needs height and width that are multiples of {divisor} (e.g. 32x32)")


def _check_mask(stage_mask: list[bool] | None, stages: int) -> list[bool]:
    if stage_mask is None:
        return [True] * stages
    mask = [bool(m) for m in stage_mask]
    if len(mask) != stages:
        raise ValueError(f"stage_mask has {len(mask)} entries, the model has {stages} stages")
    return mask
