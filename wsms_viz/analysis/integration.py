"""The integration layer (section 3.3, Fig. 3) read per stage: its weights and, for one
image, what each stage puts into the pooled feature and the logit.

Weights. The integration conv sees the concatenated stage outputs, so its weight splits
along the input channels into one block per stage: ``W[:, channels of stage s]``, of
shape ``(c, C_s)`` for ``1x1`` and ``(c, C_s, k, k)`` for ``3x3``. For ``no conv`` the same
split is read from the classifier's weight, ``fc.weight[:, channels of stage s]``. The
weight a stage receives is the Frobenius norm of its block; since stages have different
channel counts (64/32/16 for ResNet-20), the norm per input channel
(``||W_s||_F / sqrt(C_s)``) is given too.

Contributions for one image (the model in eval mode):

* ``no conv``: the logit is exactly linear in the pooled per-stage features:
  ``logit = sum_s W[:, cols_s] @ pooled[cols_s] + b``, so ``contribution_s`` is that term.
* ``1x1`` / ``3x3``: the integration is conv -> BN -> ReLU, nonlinear. Exact statements:
  (1) the pre-BN output is linear, ``conv(concat) = sum_s conv(W_s, x_s)``: the pooled
  pre-BN part of each stage is reported exactly and sums to the pooled pre-BN output;
  (2) lesions (``stage_mask``, the ensemble lecture's lesion study): the logit with only
  stage ``s`` on, the logit drop when stage ``s`` alone is switched off, and the logit with
  every stage off; (3) a gated split: with BN in eval mode an affine map and each ReLU's
  on/off pattern held at its value for this image, the logit is a sum of one term per
  stage plus a bias term, and that sum equals the logit exactly. The gated split is exact
  as an identity but holds the gates fixed; the lesions move them. The page shows the
  lesion figures as the headline and the gated split as the decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .stage_view import as_batch, integration_kind, integration_layer, require_eval, stage_views


@dataclass
class IntegrationWeights:
    """The integration weights split per stage.

    Attributes:
        kind: ``"none"``, ``"1x1"`` or ``"3x3"`` (a baseline reads as ``"none"``).
        layer: ``"integration conv"`` or ``"fc"`` (for no conv): where the weights come from.
        blocks: per stage, ``(out, C_s)`` (1x1, fc) or ``(out, C_s, k, k)`` (3x3).
        matrix: ``(out, sum C_s)`` to draw: the weights themselves, or for 3x3 each
            kernel's Frobenius norm.
        offsets: the column where each stage's block starts, then the total (``S + 1``).
        norms: ``(S,)`` Frobenius norm of each stage's block.
        norms_per_channel: ``(S,)`` ``norms / sqrt(C_s)``.
    """

    kind: str
    layer: str
    blocks: list[np.ndarray]
    matrix: np.ndarray
    offsets: list[int]
    norms: np.ndarray
    norms_per_channel: np.ndarray

    @property
    def channels(self) -> list[int]:
        return [b - a for a, b in zip(self.offsets, self.offsets[1:], strict=False)]

    @property
    def norm_shares(self) -> np.ndarray:
        """Each stage's share of the squared Frobenius norm (sums to 1)."""
        sq = self.norms**2
        return sq / sq.sum() if sq.sum() > 0 else sq


def integration_weights(model: nn.Module) -> IntegrationWeights:
    """The integration layer's weights split into per-stage blocks, with their norms.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone (one block: the fc weight).

    Example:
        >>> from wsms_viz.models import create_model
        >>> w = integration_weights(create_model("wsms_resnet20"))
        >>> w.kind, [b.shape for b in w.blocks], w.offsets
        ('1x1', [(128, 64), (128, 32), (128, 16)], [0, 64, 96, 112])
    """
    views = stage_views(model)
    kind = integration_kind(model)
    if kind == "none":
        weight, layer = model.fc.weight.detach(), "fc"
    else:
        weight, layer = integration_layer(model)[0].weight.detach(), "integration conv"
        if kind == "1x1":
            weight = weight[:, :, 0, 0]
    blocks = [weight[:, v.channels].numpy().copy() for v in views]
    matrix = weight.flatten(2).norm(dim=2) if weight.dim() == 4 else weight
    norms = np.array([float(np.linalg.norm(b)) for b in blocks])
    per_channel = norms / np.sqrt([b.shape[1] for b in blocks])
    offsets = [v.channels.start for v in views] + [views[-1].channels.stop]
    return IntegrationWeights(kind, layer, blocks, matrix.numpy().copy(), offsets, norms, per_channel)


@dataclass
class StageContributions:
    """What each stage puts into the pooled feature and the target logit, for one image.

    Attributes:
        kind: the integration kind.
        target: the class whose logit is read.
        logit: the target logit with every stage on.
        feature_parts: per stage, its exact additive part of the pooled feature: for no
            conv the stage's own slice of ``pooled`` (``(C_s,)``), else its pooled pre-BN
            part of the integration output (``(c,)``).
        feature_norms: ``(S,)`` the L2 norm of each part.
        linear: no conv only: ``(S,)`` exact linear contributions to the logit, summing
            to ``logit - fc.bias[target]``; None otherwise.
        gated: ``(S,)`` the gated split (module docstring); equals ``linear`` for no conv.
        gated_bias: the gated split's bias term, so ``gated.sum() + gated_bias == logit``.
        logit_only: ``(S,)`` the logit with only stage ``s`` on.
        logit_without: ``(S,)`` the logit with stage ``s`` off and the others on.
        logit_none: the logit with every stage off.
    """

    kind: str
    target: int
    logit: float
    feature_parts: list[np.ndarray]
    feature_norms: np.ndarray
    linear: np.ndarray | None
    gated: np.ndarray
    gated_bias: float
    logit_only: np.ndarray
    logit_without: np.ndarray
    logit_none: float

    @property
    def logit_drop(self) -> np.ndarray:
        """``(S,)`` how much the logit falls when stage ``s`` alone is switched off."""
        return self.logit - self.logit_without

    @property
    def feature_shares(self) -> np.ndarray:
        """``(S,)`` each stage's share of the summed part norms."""
        total = self.feature_norms.sum()
        return self.feature_norms / total if total > 0 else self.feature_norms


def _masked_logit(model: nn.Module, x: Tensor, mask: list[bool], target: int) -> float:
    return float(model.forward_features(x, stage_mask=mask).logits[0, target])


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    # Eval-mode BatchNorm is y = a * z + b per channel.
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def stage_contributions(model: nn.Module, image: Tensor, target: int | None = None) -> StageContributions:
    """Each stage's contribution to the pooled feature and to one logit (module docstring).

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        target: the class; None takes the predicted class.

    Example:
        >>> from wsms_viz.models import create_model
        >>> m = create_model("wsms_resnet20", integration="none").eval()
        >>> c = stage_contributions(m, torch.randn(3, 32, 32))
        >>> bool(abs(c.linear.sum() + m.fc.bias[c.target].item() - c.logit) < 1e-4)
        True
    """
    require_eval(model)
    x = as_batch(image, model)
    views = stage_views(model)
    kind = integration_kind(model)
    n = len(views)
    with torch.no_grad():
        out = model.forward_features(x)
        if target is None:
            target = int(out.logits[0].argmax())
        if not 0 <= target < out.logits.shape[1]:
            raise ValueError(f"target class {target} does not exist; the model has {out.logits.shape[1]} classes")
        w_fc = model.fc.weight[target]
        if kind == "none":
            parts = [out.pooled[0, v.channels] for v in views]
            linear = torch.stack([w_fc[v.channels] @ p for v, p in zip(views, parts, strict=True)])
            gated, gated_bias = linear, float(model.fc.bias[target])
        else:
            conv, bn, _ = integration_layer(model)
            pad = conv.padding
            # The conv is linear in the concatenation: one conv per stage's channel block.
            pre = [F.conv2d(out.concat[:, v.channels], conv.weight[:, v.channels], padding=pad) for v in views]
            parts = [p.mean((2, 3))[0] for p in pre]
            scale, shift = _bn_affine(bn)
            gate = (out.integrated > 0).float()[0]  # the ReLU's on/off pattern for this image
            hw = gate.shape[-1] * gate.shape[-2]
            gated = torch.stack([(w_fc * (gate * scale[:, None, None] * p[0]).sum((1, 2)) / hw).sum() for p in pre])
            gated_bias = float((w_fc * (gate * shift[:, None, None]).sum((1, 2)) / hw).sum() + model.fc.bias[target])
            linear = None
        only = [_masked_logit(model, x, [t == s for t in range(n)], target) for s in range(n)]
        without = [_masked_logit(model, x, [t != s for t in range(n)], target) for s in range(n)]
        none = _masked_logit(model, x, [False] * n, target)
    return StageContributions(
        kind, target, float(out.logits[0, target]), [p.numpy().copy() for p in parts],
        np.array([float(p.norm()) for p in parts]), None if linear is None else linear.numpy().copy(),
        gated.numpy().copy(), gated_bias, np.array(only), np.array(without), none,
    )
