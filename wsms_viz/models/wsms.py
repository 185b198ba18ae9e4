"""WSMS-Net (section 3.1, Fig. 2) and MS-Net (section 3.2) over any staged backbone.

Stage ``s`` (0-based) sees the input halved ``s`` times by 2x2 average pooling and runs
the first ``t - s`` blocks of the backbone, so every stage ends at the same size. In a
WSMS-Net each convolution's weights are one tensor shared by every stage that has that
layer; BatchNorm is per stage (section 3.1). An MS-Net has the same shape and shares
nothing. The stage outputs are concatenated in channels and go through the integration
layer (section 3.3, Fig. 3), global average pooling and the fully connected layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FeatureOutput, StagedBackbone, _check_mask, check_image_batch, init_weights, run_blocks

INTEGRATIONS = ("none", "1x1", "3x3")


@dataclass
class WSMSConfig:
    backbone: str = "resnet20"  # registry name of the backbone
    backbone_config: dict = field(default_factory=dict)  # passed to that builder
    num_classes: int = 10
    stages: int = 3  # S in the paper
    integration: str = "1x1"  # "none", "1x1" or "3x3" (Fig. 3)
    channels: int = 128  # c, the integration layer's output channels
    shared: bool = True  # False gives the MS-Net

    def __post_init__(self):
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")
        if self.stages < 1:
            raise ValueError(f"stages must be at least 1, got {self.stages}")
        if self.channels < 1:
            raise ValueError(f"channels must be positive, got {self.channels}")


class Stage(nn.Module):
    """One column of Fig. 2: downscale the input, run a prefix of the blocks, close."""

    def __init__(self, downscale: int, stem: nn.Module, blocks: list[nn.Module], final: nn.Module):
        super().__init__()
        self.downscale = downscale  # how many times the input is halved
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.final = final

    def scale_input(self, x: Tensor) -> Tensor:
        for _ in range(self.downscale):
            x = F.avg_pool2d(x, 2)
        return x


def tie_convolutions(source: nn.Module, target: nn.Module) -> int:
    """Makes every Conv2d in ``target`` use the weight tensors of ``source``'s twin.

    The two modules must have the same structure. Returns how many convs were tied.
    BatchNorm and everything else in ``target`` stays its own.
    """
    pairs = list(zip(source.named_modules(), target.named_modules(), strict=True))
    tied = 0
    for (name_s, src), (name_t, dst) in pairs:
        if name_s != name_t or type(src) is not type(dst):
            raise ValueError(f"cannot tie {name_t!r} to {name_s!r}: structures differ")
        if isinstance(dst, nn.Conv2d):
            dst.weight = src.weight
            if dst.bias is not None:
                dst.bias = src.bias
            tied += 1
    return tied


class WSMSNet(nn.Module):
    """Weight-shared multi-stage network (or, with ``shared=False``, the MS-Net).

    Args:
        config: the :class:`WSMSConfig`.
        make_backbone: builds a fresh :class:`StagedBackbone`; called once per stage
            (each stage takes its stem and its prefix of blocks from its own build, so
            an MS-Net's stages start from independent random weights).
    """

    def __init__(self, config: WSMSConfig, make_backbone):
        super().__init__()
        self.config = config
        backbones: list[StagedBackbone] = [make_backbone() for _ in range(config.stages)]
        t = len(backbones[0].blocks)
        if config.stages > t:
            raise ValueError(f"{config.backbone} has {t} blocks, so at most {t} stages, got {config.stages}")
        self.num_blocks = t
        self.stages = nn.ModuleList()
        for s, bb in enumerate(backbones):
            n = t - s
            self.stages.append(Stage(s, bb.stem, list(bb.blocks[:n]), bb.make_final(bb.block_channels[n - 1])))
        if config.shared:
            first = self.stages[0]
            for stage in self.stages[1:]:
                tie_convolutions(first.stem, stage.stem)
                for b, block in enumerate(stage.blocks):
                    tie_convolutions(first.blocks[b], block)
        self.stage_channels = [bb.block_channels[t - s - 1] for s, bb in enumerate(backbones)]
        concat_channels = sum(self.stage_channels)
        if config.integration == "none":
            self.integration: nn.Module = nn.Identity()
            out_channels = concat_channels
        else:
            k = int(config.integration[0])
            self.integration = nn.Sequential(
                nn.Conv2d(concat_channels, config.channels, k, padding=k // 2, bias=False),
                nn.BatchNorm2d(config.channels), nn.ReLU(),
            )
            init_weights(self.integration)
            out_channels = config.channels
        self.fc = nn.Linear(out_channels, config.num_classes)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def min_divisor(self) -> int:
        """Input height and width must be multiples of this for the stages to line up."""
        return 2 ** (self.num_blocks - 1)

    def _check_input(self, x: Tensor) -> None:
        check_image_batch(x, self.min_divisor, "WSMS-Net")

    def _stage_outputs(self, x: Tensor) -> tuple[list[Tensor], list[list[Tensor]], list[Tensor]]:
        inputs, feats, outs = [], [], []
        for stage in self.stages:
            xi = stage.scale_input(x)
            f = run_blocks(stage.stem, stage.blocks, xi)
            inputs.append(xi)
            feats.append(f)
            outs.append(stage.final(f[-1]))
        return inputs, feats, outs

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        outs = [stage.final(run_blocks(stage.stem, stage.blocks, stage.scale_input(x))[-1])
                for stage in self.stages]
        h = self.integration(torch.cat(outs, 1))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))

    def forward_features(self, x: Tensor, stage_mask: list[bool] | None = None) -> FeatureOutput:
        """Runs the network and returns every intermediate a visualization needs.

        Args:
            x: a batch of images, ``(N, 3, H, W)``, normalised; H and W multiples of
                :attr:`min_divisor`.
            stage_mask: one bool per stage; a stage set to False is still computed (its
                maps are returned) but its channels are zeroed at the concatenation,
                the lesion study of the ensemble lecture.

        Example:
            >>> from wsms_viz.models import create_model
            >>> out = create_model("wsms_resnet20").eval().forward_features(torch.zeros(1, 3, 32, 32))
            >>> [f[-1].shape[-1] for f in out.stage_features]
            [8, 8, 8]
        """
        self._check_input(x)
        mask = _check_mask(stage_mask, self.num_stages)
        inputs, feats, outs = self._stage_outputs(x)
        concat = torch.cat([o if on else torch.zeros_like(o) for o, on in zip(outs, mask, strict=True)], 1)
        integrated = self.integration(concat)
        pooled = torch.flatten(F.adaptive_avg_pool2d(integrated, 1), 1)
        return FeatureOutput(inputs, feats, outs, concat, integrated, pooled, self.fc(pooled), mask)
