"""Attributions of one class logit taken through each stage separately (Captum).

Design. A WSMS-Net sees one image at ``S`` scales (section 3.1); to ask what each scale
contributes, stage ``s`` is attributed on its own input. For stage ``s`` the model is
wrapped as a function of stage ``s``'s input image (the image halved ``s`` times), with
the other stages held at their actual outputs for this image; the full model's logit
(integration layer, pooling, classifier included) is attributed to that input.
Consequences:

* Integrated Gradients is complete per stage: the attributions for stage ``s`` sum to
  ``f(x) - f(x with only stage s's input replaced by the baseline)``. The baseline is 0
  in normalised units, the dataset's mean colour (the colour :mod:`wsms_viz.zoom` pads
  with), so "stage s sees a blank image" is the reference. The stages' sums do not add
  up to ``f(x) - f(baseline)`` in general: the integration layer is nonlinear, so the
  stages interact.
* The share carried by each stage is the share of total absolute attribution:
  ``share_s = sum|map_s| / sum_t sum|map_t|``, over the pixels of the map shown (colour
  channels summed first). For Integrated Gradients this is well defined because each
  stage's map is in logit units; for Saliency and Grad-CAM it is a heuristic.
* Maps come back at the stage's own resolution (``native``) and at the input size
  (``map``). A stage-``s`` pixel is the average of a ``2**s x 2**s`` block of input
  pixels, so the input-size map spreads each value evenly over that block (nearest
  upsampling divided by ``4**s``): sums are kept, and one colour scale across stages
  compares attribution per input pixel. Grad-CAM maps live on the last block's grid,
  the same ``8 x 8`` for every stage; they are upsampled bilinearly as usual.

Methods: ``integrated_gradients`` (Sundararajan et al. 2017), ``saliency`` (|gradient|,
Simonyan et al. 2014), ``grad_cam`` (Selvaraju et al. 2017, ``LayerGradCam`` on the stage's
last block), each optionally wrapped in ``NoiseTunnel`` smoothgrad (Smilkov et al. 2017;
not Grad-CAM). A baseline backbone is one stage. Captum registers and removes its own
hooks; this module adds none. LayerGradCam hooks a per-call wrapper around the stage's
last block (:attr:`StageFunction.last_block`), never the block itself: the app shares one
model between sessions, and a hook on the shared block would also fire on another
session's forward pass running at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerGradCam, NoiseTunnel, Saliency
from torch import Tensor, nn

from ..zoom import normalize, zoom
from .stage_view import StageView, as_batch, head, require_eval, stage_views

METHODS = ("integrated_gradients", "saliency", "grad_cam")


@dataclass
class StageAttribution:
    """One stage's attribution of the target logit.

    Attributes:
        stage: 0-based stage index.
        map: ``(H, W)`` at the input size, colour channels summed, values spread so that
            sums are kept (see the module docstring); signed for Integrated Gradients.
        native: the map at the stage's own resolution (Grad-CAM: its last block's grid).
        total: signed sum of the attribution (Integrated Gradients: ``logit - reference``).
        abs_total: ``sum |native|``, what :attr:`share` is a share of.
        share: this stage's share of the total absolute attribution over all stages.
        reference_logit: Integrated Gradients without smoothgrad: the logit with this
            stage's input at the baseline, the others unchanged; None otherwise.
    """

    stage: int
    map: np.ndarray
    native: np.ndarray
    total: float
    abs_total: float
    share: float
    reference_logit: float | None


@dataclass
class Attributions:
    """Every stage's attribution of one logit for one image."""

    method: str
    target: int
    logit: float
    stages: list[StageAttribution]
    smoothgrad_samples: int

    @property
    def shares(self) -> np.ndarray:
        """``(S,)`` shares of total absolute attribution, summing to 1 (or all 0)."""
        return np.array([s.share for s in self.stages])

    @property
    def maps(self) -> list[np.ndarray]:
        return [s.map for s in self.stages]

    def completeness_gaps(self) -> list[float]:
        """Integrated Gradients: ``total - (logit - reference_logit)`` per stage, the
        numerical integration error (0 for an exact integral)."""
        if any(s.reference_logit is None for s in self.stages):
            raise ValueError("completeness holds for integrated_gradients without smoothgrad only")
        return [s.total - (self.logit - s.reference_logit) for s in self.stages]


class _Tap(nn.Module):
    """Calls ``block``; a module of its own so that a hook on it sees only this call's passes."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class StageFunction:
    """The model as a function of stage ``s``'s own input, the other stages held fixed.

    Calling it with a batch ``(N, 3, h_s, w_s)`` of stage-``s`` inputs returns the
    model's logits ``(N, classes)``; the other stages' outputs are those of the image
    the object was built for (computed once, without gradients). The stage's last block
    runs through :attr:`last_block`, a wrapper private to this object, which is what
    Grad-CAM hooks.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        stage: 0-based stage index.
    """

    def __init__(self, model: nn.Module, image: Tensor, stage: int):
        require_eval(model)
        self.model = model
        self.views = stage_views(model)
        if not 0 <= stage < len(self.views):
            raise ValueError(f"stage {stage} does not exist; the model has {len(self.views)} stages (0-based)")
        self.stage = stage
        x = as_batch(image, model)
        with torch.no_grad():
            self.inputs = [v.scale_input(x) for v in self.views]
            self.fixed = [v.output(xi) for v, xi in zip(self.views, self.inputs, strict=True)]
        self.last_block = _Tap(self.view.blocks[-1])

    @property
    def view(self) -> StageView:
        return self.views[self.stage]

    @property
    def own_input(self) -> Tensor:
        """The stage's actual input for the image, ``(1, 3, h_s, w_s)``."""
        return self.inputs[self.stage]

    def stage_output(self, x_s: Tensor) -> Tensor:
        """The stage's output from its own input, as :meth:`StageView.output`.

        Args:
            x_s: a batch of stage inputs ``(N, 3, h_s, w_s)``.
        """
        h = self.view.stem(x_s)
        for block in self.view.blocks[:-1]:
            h = block(h)
        return self.view.close(self.last_block(h))

    def __call__(self, x_s: Tensor) -> Tensor:
        n = x_s.shape[0]
        outs = [self.stage_output(x_s) if t == self.stage else f.expand(n, *f.shape[1:])
                for t, f in enumerate(self.fixed)]
        return head(self.model, torch.cat(outs, 1))


def grad_cam_layer(model: nn.Module, stage: int) -> nn.Module:
    """The module Grad-CAM reads for a stage: the stage's last block.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone.
        stage: 0-based stage index.
    """
    return stage_views(model)[stage].blocks[-1]


def _spread(native: Tensor, factor: int) -> Tensor:
    # A stage-s pixel averages a factor x factor block of input pixels (2x2 avg pools):
    # spreading its value evenly over that block keeps every sum.
    if factor == 1:
        return native
    return native.repeat_interleave(factor, -2).repeat_interleave(factor, -1) / factor**2


def _stage_attribution(
    fn: StageFunction, target: int, method: str, n_steps: int, internal_batch_size: int | None,
    smoothgrad_samples: int, smoothgrad_stdev: float, out_size: tuple[int, int],
) -> tuple[Tensor, Tensor, float | None]:
    """(native map (h, w), input-size map (H, W), reference logit or None)."""
    x_s = fn.own_input.clone().requires_grad_(True)
    reference = None
    if method == "grad_cam":
        cam = LayerGradCam(fn, fn.last_block).attribute(x_s, target=target, relu_attributions=True)
        native = cam[0, 0].detach()
        return native, F.interpolate(cam.detach(), size=out_size, mode="bilinear", align_corners=False)[0, 0], None
    base = torch.zeros_like(x_s)
    if method == "integrated_gradients":
        algo = IntegratedGradients(fn)
        kwargs = {"baselines": base, "n_steps": n_steps,
                  "internal_batch_size": internal_batch_size or n_steps}
    else:
        algo, kwargs = Saliency(fn), {"abs": True}
    if smoothgrad_samples:
        # Smilkov et al.: noise of 10-20% of the input's range works best.
        sigma = smoothgrad_stdev * float(fn.own_input.max() - fn.own_input.min())
        attr = NoiseTunnel(algo).attribute(x_s, nt_type="smoothgrad", nt_samples=smoothgrad_samples,
                                           stdevs=sigma, target=target, **kwargs)
    else:
        attr = algo.attribute(x_s, target=target, **kwargs)
        if method == "integrated_gradients":
            with torch.no_grad():
                reference = float(fn(base)[0, target])
    native = attr.detach()[0].sum(0)
    return native, _spread(native, 2 ** fn.view.downscale), reference


def attribute_stages(
    model: nn.Module, image: Tensor, target: int | None = None, method: str = "integrated_gradients",
    n_steps: int = 32, internal_batch_size: int | None = None, smoothgrad_samples: int = 0,
    smoothgrad_stdev: float = 0.15,
) -> Attributions:
    """Attributes one logit to each stage's input, stage by stage (module docstring).

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        target: the class whose logit is attributed; None takes the predicted class.
        method: one of :data:`METHODS`.
        n_steps: Integrated Gradients' integration steps (Gauss-Legendre).
        internal_batch_size: how many interpolated images go through the model at once;
            None runs all ``n_steps`` in one batch.
        smoothgrad_samples: > 0 wraps the method in NoiseTunnel smoothgrad with this many
            noisy copies (Integrated Gradients and Saliency only).
        smoothgrad_stdev: the noise's standard deviation as a fraction of the input's range.

    Returns:
        An :class:`Attributions` with one :class:`StageAttribution` per stage.

    Example:
        >>> from wsms_viz.models import create_model
        >>> m = create_model("wsms_resnet20").eval()
        >>> a = attribute_stages(m, torch.randn(3, 32, 32), method="saliency")
        >>> [s.map.shape for s in a.stages], round(float(a.shares.sum()), 6)
        ([(32, 32), (32, 32), (32, 32)], 1.0)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if smoothgrad_samples < 0:
        raise ValueError(f"smoothgrad_samples must be >= 0, got {smoothgrad_samples}")
    if smoothgrad_samples and method == "grad_cam":
        raise ValueError("smoothgrad (NoiseTunnel) wraps integrated_gradients or saliency, not grad_cam")
    if n_steps < 1:
        raise ValueError(f"n_steps must be positive, got {n_steps}")
    require_eval(model)
    x = as_batch(image, model)
    with torch.no_grad():
        logits = model(x)[0]
    if target is None:
        target = int(logits.argmax())
    if not 0 <= target < logits.numel():
        raise ValueError(f"target class {target} does not exist; the model has {logits.numel()} classes")
    out_size = (x.shape[-2], x.shape[-1])
    results = []
    with torch.enable_grad():
        for s in range(len(stage_views(model))):
            fn = StageFunction(model, x, s)
            native, full, ref = _stage_attribution(fn, target, method, n_steps, internal_batch_size,
                                                   smoothgrad_samples, smoothgrad_stdev, out_size)
            results.append((native, full, ref))
    abs_totals = [float(n.abs().sum()) for n, _, _ in results]
    grand = sum(abs_totals)
    stages = [StageAttribution(s, full.numpy(), native.numpy(), float(native.sum()), a,
                               a / grand if grand > 0 else 0.0, ref)
              for s, ((native, full, ref), a) in enumerate(zip(results, abs_totals, strict=True))]
    return Attributions(method, target, float(logits[target]), stages, smoothgrad_samples)


@dataclass
class ZoomShares:
    """How each stage's share of attribution moves with the zoom factor.

    Attributes:
        factors: the zoom factors, as given.
        target: the class attributed at every factor.
        shares: ``(F, S)`` shares of total absolute attribution.
        totals: ``(F, S)`` signed attribution sums (IG: logit minus the stage's reference).
        logits: ``(F,)`` the target logit at each factor.
    """

    factors: list[float]
    target: int
    shares: np.ndarray
    totals: np.ndarray
    logits: np.ndarray


def stage_shares_across_zoom(
    model: nn.Module, image: Tensor, factors: Sequence[float], target: int | None = None,
    method: str = "integrated_gradients", center: tuple[float, float] = (0.5, 0.5), **kwargs,
) -> ZoomShares:
    """Attributes the same class at every zoom factor and collects the stage shares.

    Args:
        model: a WSMS-Net, MS-Net or baseline backbone, in eval mode.
        image: one unnormalised image in [0, 1], ``(3, H, W)`` (zoom works before
            normalisation, as in the evaluation).
        factors: zoom factors for :func:`wsms_viz.zoom.zoom`.
        target: the class to follow; None takes the class predicted at zoom 1.
        method: one of :data:`METHODS`.
        center: the zoom centre ``(y, x)`` as fractions.
        **kwargs: passed to :func:`attribute_stages` (``n_steps``, ``smoothgrad_samples``...).
    """
    if not factors:
        raise ValueError("factors is empty")
    require_eval(model)
    if image.dim() == 4:
        image = image[0]
    if target is None:
        with torch.no_grad():
            target = int(model(normalize(zoom(image, 1.0)).unsqueeze(0))[0].argmax())
    results = [attribute_stages(model, normalize(zoom(image, f, center)), target, method, **kwargs)
               for f in factors]
    return ZoomShares([float(f) for f in factors], target, np.stack([r.shares for r in results]),
                      np.array([[s.total for s in r.stages] for r in results]),
                      np.array([r.logit for r in results]))
