"""A plain VGG-style CIFAR network: stacks of 3x3 conv-BN-ReLU, 2x2 max-pool downsizing.

Section 3.1's first example of a backbone, and the lectures' VGG recipe at CIFAR size.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import StagedBackbone, init_weights


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


@dataclass
class VGGConfig:
    widths: tuple[int, ...] = (64, 128, 256)  # channels of each block
    convs_per_block: int = 2
    num_classes: int = 10

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or self.convs_per_block < 1:
            raise ValueError(f"VGG needs at least one block of one conv, got {self}")


class VGG(StagedBackbone):
    def __init__(self, config: VGGConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Identity()
        blocks, channels = [], 3
        for i, width in enumerate(config.widths):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for _ in range(config.convs_per_block):
                layers += _conv_bn_relu(channels, width)
                channels = width
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.block_channels = list(config.widths)
        self.final = nn.Identity()
        self.fc = nn.Linear(channels, config.num_classes)
        init_weights(self)
