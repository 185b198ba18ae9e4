"""One view of the stages of every model, so the analysis modules need no model-type checks.

A WSMS-Net or MS-Net has ``S`` stages (section 3.1, Fig. 2); a baseline backbone is read
as a single stage with no input downscaling. The receptive-field, attribution,
integration and feature modules all go through :func:`stage_views` and :func:`head`, so
every analysis of a WSMS model works on its baseline too, with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import StagedBackbone, run_blocks
from ..models.scale_channel import ScaleChannelNet
from ..models.wsms import WSMSNet


@dataclass(frozen=True)
class StageView:
    """One column of Fig. 2, whatever the model.

    Attributes:
        index: 0-based stage number (the paper's stage ``index + 1``).
        downscale: how many times the input is halved by 2x2 average pooling first.
        stem: the layers before the first block.
        blocks: the stage's blocks, in order.
        final: the layer that closes the stage before the concatenation.
        channels: where the stage's output sits in the concatenated channels.
        pooled: the stage closes with global average pooling (a scale channel, whose
            maps differ in size and meet only as pooled vectors).
    """

    index: int
    downscale: int
    stem: nn.Module
    blocks: tuple[nn.Module, ...]
    final: nn.Module
    channels: slice
    pooled: bool = False

    def scale_input(self, x: Tensor) -> Tensor:
        """The image this stage sees: ``x`` halved ``downscale`` times (section 3.1).

        Args:
            x: a normalised batch ``(N, 3, H, W)``.
        """
        for _ in range(self.downscale):
            x = F.avg_pool2d(x, 2)
        return x

    def block_maps(self, x_s: Tensor) -> list[Tensor]:
        """The stage's map after every block, from the stage's own (downscaled) input.

        Args:
            x_s: the stage's input, as :meth:`scale_input` returns it.
        """
        return run_blocks(self.stem, self.blocks, x_s)

    def output(self, x_s: Tensor) -> Tensor:
        """What the stage contributes to the concatenation, from its own input.

        Args:
            x_s: the stage's input, as :meth:`scale_input` returns it.
        """
        return self.close(self.block_maps(x_s)[-1])

    def close(self, h: Tensor) -> Tensor:
        """The stage's closing layer on its last block's map (and the pooling, if ``pooled``)."""
        h = self.final(h)
        return F.adaptive_avg_pool2d(h, 1) if self.pooled else h


def stage_views(model: nn.Module) -> list[StageView]:
    """The stages of a :class:`WSMSNet` (or MS-Net), or a baseline as one stage.

    A :class:`ScaleChannelNet`'s scale channels are its stages: each runs every block
    and is closed by the global average pooling (``pooled``), so what a channel
    contributes to ``concat`` is its pooled vector ``(N, C, 1, 1)``, as in its
    ``forward_features``.

    Args:
        model: a model from :func:`wsms_viz.models.create_model`.

    Example:
        >>> from wsms_viz.models import create_model
        >>> [v.downscale for v in stage_views(create_model("wsms_resnet20"))]
        [0, 1, 2]
    """
    if isinstance(model, WSMSNet):
        views, offset = [], 0
        for s, (stage, c) in enumerate(zip(model.stages, model.stage_channels, strict=True)):
            views.append(StageView(s, stage.downscale, stage.stem, tuple(stage.blocks), stage.final,
                                   slice(offset, offset + c)))
            offset += c
        return views
    if isinstance(model, ScaleChannelNet):
        c = model.block_channels[-1]
        return [StageView(s, s, model.stem, tuple(model.blocks), model.final, slice(s * c, (s + 1) * c), pooled=True)
                for s in range(model.num_stages)]
    if isinstance(model, StagedBackbone):
        return [StageView(0, 0, model.stem, tuple(model.blocks), model.final,
                          slice(0, model.block_channels[-1]))]
    raise ValueError(f"expected a WSMSNet, a ScaleChannelNet or a StagedBackbone, got {type(model).__name__}")


def integration_layer(model: nn.Module) -> nn.Module:
    """The integration layer of section 3.3 (``nn.Identity`` for no conv and baselines).

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
    """
    return model.integration if isinstance(model, WSMSNet) else nn.Identity()


def integration_kind(model: nn.Module) -> str:
    """``"none"``, ``"1x1"`` or ``"3x3"`` (Fig. 3); a baseline reads as ``"none"``.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
    """
    return model.config.integration if isinstance(model, WSMSNet) else "none"


def head(model: nn.Module, concat: Tensor) -> Tensor:
    """Integration layer, global average pooling and the classifier: concat -> logits.

    Args:
        model: a WSMS-Net, MS-Net, scale-channel net or baseline backbone.
        concat: the stage outputs concatenated in channels, ``(N, sum C_s, h, w)``
            (a scale-channel net: its channels' pooled vectors, ``(N, S*C, 1, 1)``).
    """
    if isinstance(model, ScaleChannelNet):  # max over the scale channels, then the classifier
        return model.fc(concat.flatten(1).unflatten(1, (model.num_stages, -1)).amax(1))
    h = integration_layer(model)(concat)
    return model.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def require_eval(model: nn.Module) -> None:
    """Raises ``ValueError`` for a model in training mode.

    Analyses read one image; in training mode BatchNorm would use that image's own
    statistics (and update the running ones), so every analysis refuses it.

    Args:
        model: any module.
    """
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() before analysing it")


def as_batch(image: Tensor, model: nn.Module | None = None) -> Tensor:
    """One image as a ``(1, C, H, W)`` float batch, checked against the model's sizes.

    Args:
        image: ``(C, H, W)`` or ``(1, C, H, W)``.
        model: if given, a :class:`WSMSNet` checks that every stage can halve H and W.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image (C, H, W) or (1, C, H, W), got shape {tuple(image.shape)}")
    if isinstance(model, WSMSNet | ScaleChannelNet):
        model._check_input(image)
    return image.float()
