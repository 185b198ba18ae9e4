"""Per-stage attributions: hand-computable answers on linear nets, completeness of
Integrated Gradients on a real WSMS-ResNet, shapes for every method and model."""

import numpy as np
import pytest
import torch
from torch import nn

from wsms_viz.analysis.attribution import (
    METHODS,
    StageFunction,
    attribute_stages,
    grad_cam_layer,
    stage_shares_across_zoom,
)
from wsms_viz.models import create_model
from wsms_viz.models.base import StagedBackbone
from wsms_viz.models.wsms import WSMSConfig, WSMSNet
from wsms_viz.zoom import normalize


class LinearBackbone(StagedBackbone):
    """Every layer linear: the logit is a fixed linear function of the input."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1, bias=False)
        self.blocks = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1, bias=False),
                                     nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False)])
        self.block_channels = [4, 4]
        self.final = nn.Identity()
        self.fc = nn.Linear(4, 3)


def _linear_wsms():
    torch.manual_seed(0)
    return WSMSNet(WSMSConfig(backbone="linear", stages=2, integration="none"), LinearBackbone).eval()


def _gradient(fn, x_s, target):
    x_s = x_s.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x_s)[0, target], x_s)
    return g


def test_on_a_linear_net_ig_is_gradient_times_input_and_saliency_is_its_size():
    m = _linear_wsms()
    x = torch.randn(3, 32, 32)
    ig = attribute_stages(m, x, target=1, n_steps=4)
    sal = attribute_stages(m, x, target=1, method="saliency")
    for s in range(2):
        fn = StageFunction(m, x, s)
        g = _gradient(fn, fn.own_input, 1)
        np.testing.assert_allclose(ig.stages[s].native, (g * fn.own_input)[0].sum(0).numpy(), atol=1e-5)
        np.testing.assert_allclose(sal.stages[s].native, g.abs()[0].sum(0).numpy(), atol=1e-6)
    # Linear: every stage's sum is exactly logit minus the logit with that stage blanked.
    assert np.abs(ig.completeness_gaps()).max() < 1e-4


def test_stage_function_moves_only_with_its_own_stage_input():
    # On a linear net a unit bump of one stage-2 pixel changes the logit by exactly
    # that pixel's gradient, and the other stage stays at the image's own output.
    m = _linear_wsms()
    x = torch.randn(3, 32, 32)
    fn = StageFunction(m, x, 1)
    x_s = fn.own_input
    g = _gradient(fn, x_s, 2)
    bump = torch.zeros_like(x_s)
    bump[0, 1, 5, 7] = 1.0
    with torch.no_grad():
        fd = fn(x_s + bump)[0, 2] - fn(x_s)[0, 2]
    assert float(fd) == pytest.approx(float(g[0, 1, 5, 7]), abs=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(fn(x_s), m(x.unsqueeze(0)))


def test_spread_maps_keep_sums_at_the_input_size():
    m = _linear_wsms()
    a = attribute_stages(m, torch.randn(3, 32, 32), target=0, n_steps=4)
    assert a.stages[1].native.shape == (16, 16) and a.stages[1].map.shape == (32, 32)
    for st in a.stages:
        assert st.map.sum() == pytest.approx(st.native.sum(), rel=1e-5, abs=1e-6)
    # One stage-2 pixel is the mean of 2x2 input pixels: its value spreads evenly over them.
    np.testing.assert_allclose(a.stages[1].map[:2, :2], a.stages[1].native[0, 0] / 4, rtol=1e-6)


def test_integrated_gradients_is_complete_per_stage_on_wsms_resnet20():
    torch.manual_seed(1)
    m = create_model("wsms_resnet20").eval()
    x = torch.randn(3, 32, 32)
    a = attribute_stages(m, x, n_steps=32)
    for st, gap in zip(a.stages, a.completeness_gaps(), strict=True):
        # sum of attributions = f(x) - f(x with only stage s's input at the baseline)
        assert abs(gap) < 2e-3 * (1 + abs(a.logit - st.reference_logit)), (st.stage, gap)
    with torch.no_grad():
        blank = StageFunction(m, x, 2)(torch.zeros(1, 3, 8, 8))[0, a.target]
    assert a.stages[2].reference_logit == pytest.approx(float(blank), abs=1e-5)
    assert a.shares.sum() == pytest.approx(1.0)
    assert all(st.abs_total >= abs(st.total) - 1e-6 for st in a.stages)


@pytest.mark.parametrize("name", ["resnet20", "wsms_resnet20"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_finite_maps_for_every_stage(name, method):
    torch.manual_seed(0)
    m = create_model(name).eval()
    a = attribute_stages(m, torch.randn(1, 3, 32, 32), method=method, n_steps=4)
    stages = 3 if name.startswith("wsms") else 1
    assert len(a.stages) == stages and a.method == method
    for st in a.stages:
        assert st.map.shape == (32, 32) and np.isfinite(st.map).all() and np.abs(st.map).sum() > 0
        expected = (8, 8) if method == "grad_cam" else (32 // 2**st.stage,) * 2
        assert st.native.shape == expected
    assert a.shares.sum() == pytest.approx(1.0) and (a.shares >= 0).all()
    if method != "integrated_gradients":
        assert all(st.reference_logit is None for st in a.stages)


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_grad_cam_reads_the_last_block_of_the_right_stage(stage):
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    assert grad_cam_layer(m, stage) is m.stages[stage].blocks[-1]
    assert StageFunction(m, torch.zeros(3, 32, 32), stage).last_block.block is m.stages[stage].blocks[-1]
    x = torch.randn(1, 3, 32, 32)
    a = attribute_stages(m, x, target=3, method="grad_cam")
    # Grad-CAM by hand from forward_features: channel weights = mean gradient over space.
    out = m.forward_features(x)
    act = out.stage_features[stage][-1]
    (grad,) = torch.autograd.grad(out.logits[0, 3], act)
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * act).sum(1))[0].detach()
    np.testing.assert_allclose(a.stages[stage].native, cam.numpy(), rtol=1e-4, atol=1e-6)


def test_smoothgrad_wraps_ig_and_saliency_only():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = torch.randn(3, 32, 32)
    plain = attribute_stages(m, x, method="saliency")
    torch.manual_seed(0)
    smooth = attribute_stages(m, x, method="saliency", smoothgrad_samples=4)
    assert smooth.smoothgrad_samples == 4
    for p, s in zip(plain.stages, smooth.stages, strict=True):
        assert np.isfinite(s.map).all() and not np.allclose(p.map, s.map)
    ig = attribute_stages(m, x, smoothgrad_samples=2, n_steps=4)
    assert all(st.reference_logit is None for st in ig.stages)
    with pytest.raises(ValueError, match="completeness"):
        ig.completeness_gaps()
    with pytest.raises(ValueError, match="grad_cam"):
        attribute_stages(m, x, method="grad_cam", smoothgrad_samples=2)


def test_grad_cam_ignores_forward_passes_of_other_sessions_on_the_shared_model():
    # The app shares one model between sessions: a forward pass through the same block
    # during a Grad-CAM call must not be taken for that call's activations.
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = torch.randn(1, 3, 32, 32)
    clean = attribute_stages(m, x, target=1, method="grad_cam")
    fn = StageFunction(m, x, 0)
    other = torch.randn(1, 3, 32, 32)

    def busy(x_s):
        out = fn(x_s)
        m(other)  # another session's prediction, through every block, after ours
        return out

    from captum.attr import LayerGradCam

    cam = LayerGradCam(busy, fn.last_block).attribute(fn.own_input, target=1, relu_attributions=True)
    np.testing.assert_allclose(cam[0, 0].detach().numpy(), clean.stages[0].native, rtol=1e-5, atol=1e-7)


def test_no_hooks_are_left_behind():
    m = create_model("wsms_resnet20").eval()
    for method in METHODS:
        attribute_stages(m, torch.randn(3, 32, 32), method=method, n_steps=4)
    for mod in m.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks and not mod._backward_hooks


def test_target_defaults_to_the_prediction_and_bad_arguments_are_refused():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20", num_classes=5).eval()
    x = torch.randn(3, 32, 32)
    with torch.no_grad():
        pred = int(m(x.unsqueeze(0)).argmax())
    a = attribute_stages(m, x, method="saliency")
    assert a.target == pred
    with pytest.raises(ValueError, match="target class 5"):
        attribute_stages(m, x, target=5, method="saliency")
    with pytest.raises(ValueError, match="lime"):
        attribute_stages(m, x, method="lime")
    with pytest.raises(ValueError, match="eval"):
        attribute_stages(m.train(), x)


def test_shares_across_zoom():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    image = torch.rand(3, 32, 32)
    z = stage_shares_across_zoom(m, image, [0.5, 1.0, 2.0], target=2, method="saliency")
    assert z.shares.shape == (3, 3) and z.totals.shape == (3, 3) and z.logits.shape == (3,)
    np.testing.assert_allclose(z.shares.sum(1), 1.0, rtol=1e-6)
    direct = attribute_stages(m, normalize(image), target=2, method="saliency")
    np.testing.assert_allclose(z.shares[1], direct.shares, rtol=1e-5)
    assert not np.allclose(z.shares[0], z.shares[2])  # the zoom moves the shares
    with torch.no_grad():
        pred = int(m(normalize(image).unsqueeze(0)).argmax())
    assert stage_shares_across_zoom(m, image, [1.0], method="grad_cam").target == pred


@pytest.mark.parametrize(("name", "cfg"), [
    ("wsms_densenet", {"backbone_config": {"depth": 10, "growth_rate": 4}, "integration": "3x3"}),
    ("ms_vgg", {"backbone_config": {"widths": (8, 16, 32)}, "integration": "none"}),
])
def test_other_backbones_and_integrations_are_complete_too(name, cfg):
    torch.manual_seed(0)
    m = create_model(name, **cfg).eval()
    a = attribute_stages(m, torch.randn(3, 32, 32), n_steps=32)
    assert len(a.stages) == 3 and all(np.isfinite(s.map).all() for s in a.stages)
    for st, gap in zip(a.stages, a.completeness_gaps(), strict=True):
        assert abs(gap) < 2e-3 * (1 + abs(a.logit - st.reference_logit)), (st.stage, gap)
    cam = attribute_stages(m, torch.randn(3, 32, 32), method="grad_cam")
    assert [s.native.shape for s in cam.stages] == [(8, 8)] * 3
