"""CIFAR ResNet of depth 6n+2 (He et al. 2016, section 4.2).

Three compartments of ``n`` basic blocks with 16/32/64 channels, maps of 32/16/8
pixels, parameter-free "option A" shortcuts (strided identity, zero-padded channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from .base import StagedBackbone, init_weights


def conv3x3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)


class ShortcutA(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the new channels; no weights."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pad = planes - in_planes

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()  # a module of its own: Captum hooks break on reused ReLUs
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = ShortcutA(in_planes, planes, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


@dataclass
class ResNetConfig:
    depth: int = 20  # 6n+2: 20, 32, 44, 56, 110, ...
    num_classes: int = 10

    def __post_init__(self):
        if self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {self.depth}")


class CifarResNet(StagedBackbone):
    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        n = (config.depth - 2) // 6
        self.stem = nn.Sequential(conv3x3(3, 16), nn.BatchNorm2d(16), nn.ReLU())
        blocks, in_planes = [], 16
        for i, planes in enumerate((16, 32, 64)):
            layers = []
            for j in range(n):
                # Block i > 0 opens with the stride-2 convolution that halves the map.
                layers.append(BasicBlock(in_planes, planes, 2 if i > 0 and j == 0 else 1))
                in_planes = planes
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.block_channels = [16, 32, 64]
        self.final = nn.Identity()
        self.fc = nn.Linear(64, config.num_classes)
        init_weights(self)
