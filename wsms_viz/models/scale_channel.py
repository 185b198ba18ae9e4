"""A scale-channel network: the reference that is scale-invariant by construction.

After Jansson & Lindeberg's scale-channel networks (and Sosnovik et al.'s scale-equivariant
nets, ``shared/notes``): one backbone, every weight shared (convolutions *and* BatchNorm),
applied to the image at 1, 1/2 and 1/4 of its size, made by the same 2x2 average pooling
WSMS-Net uses for its stages. Each scale channel runs the *whole* backbone and is global
average pooled; the pooled vectors are max-pooled over the channels and one classifier
reads the result.

Which direction of zoom it is invariant to: enlarging an image 2x (the whole image, at 64x64)
turns its 1/2 channel into the original's full-size channel exactly where the enlargement
and the 2x2 average pooling undo each other (exactly for nearest-neighbour enlargement,
to within resampling error for bilinear). The set of channels of the enlarged image
therefore *contains* the channels of the original at 1 and 1/2, so the max over channels
cannot lose what the original's two larger channels found: it is invariant to
enlargement by 2 and 4 as far as the channel the max picks is one of the shared ones.
Shrinking an image moves the channels the other way (its full-size channel is the
original's 1/2 channel), so it loses the original's full-size view: the network is
built to recognise objects that appear *larger* than in training, not smaller ones.

The project's zoom > 1 crops the centre and enlarges it back to 32x32, which is not the
same as enlarging the whole image: the border is lost and the channels see different
content, so the invariance holds only approximately for that transform.

In the app its scale channels play the role of stages: ``forward_features`` returns each
channel's input and block maps as ``stage_inputs``/``stage_features``; ``concat`` holds
the channels' pooled vectors side by side (``(N, S*C, 1, 1)``) and ``integrated`` their
max (``(N, C, 1, 1)``). A channel switched off by ``stage_mask`` is left out of the max.

BatchNorm is shared too, and in training it normalises with statistics taken over the
pixels of *all* channels at once (:func:`_lockstep`), so its running statistics are the
ones every channel was trained with. Normalising each channel with its own batch
statistics (a plain call per channel) trains with three different normalisations but
evaluates with one mixed set of running statistics: that first version reached 93% on
training images with batch statistics but 85% with its running statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FeatureOutput, StagedBackbone, _check_mask, check_image_batch, run_blocks
from .resnet import BasicBlock


@dataclass
class ScaleChannelConfig:
    backbone: str = "resnet20"  # registry name of the backbone
    backbone_config: dict = field(default_factory=dict)  # passed to that builder
    num_classes: int = 10
    stages: int = 3  # scale channels: the image at 1, 1/2, ... 1/2^(stages-1)

    def __post_init__(self):
        if self.stages < 1:
            raise ValueError(f"stages must be at least 1, got {self.stages}")


class ScaleChannelNet(nn.Module):
    """One backbone over ``stages`` scale channels, max over channels, one classifier.

    Args:
        config: the :class:`ScaleChannelConfig`.
        backbone: the :class:`StagedBackbone` every channel runs (its own ``fc`` is not
            used; the network's ``fc`` reads the max over channels).
    """

    family = "scale-channel"

    def __init__(self, config: ScaleChannelConfig, backbone: StagedBackbone):
        super().__init__()
        self.config = config
        self.stem = backbone.stem
        self.blocks = backbone.blocks
        self.final = backbone.final
        self.block_channels = list(backbone.block_channels)
        self.num_blocks = len(self.blocks)
        self.fc = nn.Linear(self.block_channels[-1], config.num_classes)

    @property
    def num_stages(self) -> int:
        return self.config.stages

    @property
    def min_divisor(self) -> int:
        """Input height and width must be multiples of this for every channel to exist."""
        return 2 ** (self.config.stages - 1)

    def _check_input(self, x: Tensor) -> None:
        check_image_batch(x, self.min_divisor, "scale-channel net")

    def channel_inputs(self, x: Tensor) -> list[Tensor]:
        """The image at 1, 1/2, 1/4 ... of its size (2x2 average pooling, as WSMS-Net)."""
        out = [x]
        for _ in range(1, self.config.stages):
            out.append(F.avg_pool2d(out[-1], 2))
        return out

    def channel_features(self, x: Tensor) -> Tensor:
        """Each channel's globally pooled feature vector, ``(N, stages, C)``."""
        inputs = self.channel_inputs(x)
        if self.training:  # BatchNorm statistics over all channels at once (see _lockstep)
            maps = _lockstep(nn.Sequential(self.stem, *self.blocks, self.final), inputs)
        else:
            maps = [self.final(run_blocks(self.stem, self.blocks, xi)[-1]) for xi in inputs]
        return torch.stack([torch.flatten(F.adaptive_avg_pool2d(m, 1), 1) for m in maps], 1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.fc(self.channel_features(x).amax(1))

    def forward_features(self, x: Tensor, stage_mask: list[bool] | None = None) -> FeatureOutput:
        """Runs the network and returns every intermediate a visualization needs; the
        scale channels are its stages (see the module docstring for ``concat`` and
        ``integrated``). A channel off in ``stage_mask`` is left out of the max; with
        every channel off the pooled vector is zero."""
        self._check_input(x)
        mask = _check_mask(stage_mask, self.num_stages)
        inputs = self.channel_inputs(x)
        feats = [run_blocks(self.stem, self.blocks, xi) for xi in inputs]
        outs = [self.final(f[-1]) for f in feats]
        pooled_each = torch.stack([torch.flatten(F.adaptive_avg_pool2d(o, 1), 1) for o in outs], 1)
        concat = torch.flatten(pooled_each, 1)[:, :, None, None]
        on = torch.tensor(mask, device=x.device)
        if on.any():
            masked = pooled_each.masked_fill(~on[None, :, None], float("-inf"))
            pooled = masked.amax(1)
        else:
            pooled = torch.zeros_like(pooled_each[:, 0])
        return FeatureOutput(inputs, feats, outs, concat, pooled[:, :, None, None], pooled, self.fc(pooled), mask)


def _lockstep(module: nn.Module, xs: list[Tensor]) -> list[Tensor]:
    """Runs ``module`` on every scale channel's map in lock step, layer by layer, so that
    each BatchNorm in training mode normalises all channels with one set of statistics
    (taken over every pixel of every channel) and updates its running statistics once.

    Knows the CIFAR ResNet's modules; any other module is applied to each map alone.
    """
    if isinstance(module, nn.BatchNorm2d) and module.training:
        packed = torch.cat([x.flatten(2) for x in xs], 2).unsqueeze(-1)  # (N, C, sum of H*W, 1)
        out = module(packed).squeeze(-1)
        sizes = [x.shape[2] * x.shape[3] for x in xs]
        return [o.reshape(x.shape) for o, x in zip(out.split(sizes, 2), xs, strict=True)]
    if isinstance(module, nn.Sequential):
        for child in module:
            xs = _lockstep(child, xs)
        return xs
    if isinstance(module, BasicBlock):
        out = _lockstep(module.relu1, _lockstep(module.bn1, _lockstep(module.conv1, xs)))
        out = _lockstep(module.bn2, _lockstep(module.conv2, out))
        return [module.relu2(o + module.shortcut(x)) for o, x in zip(out, xs, strict=True)]
    return [module(x) for x in xs]
