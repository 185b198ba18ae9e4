"""DenseNet for CIFAR as the WSMS paper uses it (section 4.1; Huang et al. 2016).

Three dense blocks of BN-ReLU-3x3 conv layers, each adding ``growth_rate`` channels,
no bottleneck and no compression: a transition is BN-ReLU-1x1 conv (channels kept)
and a 2x2 average pool. Depth 100 and k=24 give 16 + 24*32*3 = 2,320 channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import StagedBackbone, init_weights


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth_rate: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(self.relu(self.bn(x)))], 1)


class Transition(nn.Sequential):
    def __init__(self, channels: int):
        # The 1x1 conv runs before the pool, at full resolution, as in Huang et al.;
        # the paper's 6,889M multiplications count it there.
        super().__init__(
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False), nn.AvgPool2d(2),
        )


@dataclass
class DenseNetConfig:
    depth: int = 100  # 3n+4 layers with weights
    growth_rate: int = 24
    num_classes: int = 10
    stem_channels: int = 16

    def __post_init__(self):
        if self.depth < 7 or (self.depth - 4) % 3:
            raise ValueError(f"DenseNet depth must be 3n+4 with n >= 1, got {self.depth}")
        if self.growth_rate < 1:
            raise ValueError(f"growth_rate must be positive, got {self.growth_rate}")


class DenseNet(StagedBackbone):
    def __init__(self, config: DenseNetConfig):
        super().__init__()
        self.config = config
        n, k = (config.depth - 4) // 3, config.growth_rate
        self.stem = nn.Conv2d(3, config.stem_channels, 3, padding=1, bias=False)
        blocks, channels, self.block_channels = [], config.stem_channels, []
        for i in range(3):
            layers: list[nn.Module] = [Transition(channels)] if i > 0 else []
            for _ in range(n):
                layers.append(DenseLayer(channels, k))
                channels += k
            blocks.append(nn.Sequential(*layers))
            self.block_channels.append(channels)
        self.blocks = nn.ModuleList(blocks)
        self.final = self.make_final(channels)
        self.fc = nn.Linear(channels, config.num_classes)
        init_weights(self)

    def make_final(self, channels: int) -> nn.Module:
        return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU())
