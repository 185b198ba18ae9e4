"""The integration layer per stage: weight blocks and norms by hand, exact linear
contributions for no conv, exact pre-BN parts, gated split and lesions otherwise."""

import numpy as np
import pytest
import torch

from wsms_viz.analysis.integration import integration_weights, stage_contributions
from wsms_viz.models import create_model

SMALL_VGG = {"widths": (4, 8, 16), "convs_per_block": 1}  # stage channels 16, 8, 4



def _model(name="wsms_vgg", seed=0, **cfg):
    torch.manual_seed(seed)
    m = create_model(name, **cfg)
    # Non-trivial BatchNorm statistics, so eval-mode BN is a real affine map.
    with torch.no_grad():
        for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    return m.eval()


def test_weight_blocks_and_norms_by_hand():
    m = create_model("wsms_vgg", backbone_config=SMALL_VGG, channels=2)
    conv = m.integration[0]
    with torch.no_grad():
        conv.weight[:, :16] = 1.0
        conv.weight[:, 16:24] = 2.0
        conv.weight[:, 24:] = 3.0
    w = integration_weights(m)
    assert (w.kind, w.layer, w.offsets, w.channels) == ("1x1", "integration conv", [0, 16, 24, 28], [16, 8, 4])
    assert [b.shape for b in w.blocks] == [(2, 16), (2, 8), (2, 4)]
    # ||W_s||_F = v * sqrt(out * C_s): 1*sqrt(32), 2*sqrt(16), 3*sqrt(8)
    np.testing.assert_allclose(w.norms, [np.sqrt(32), 8.0, 3 * np.sqrt(8)], rtol=1e-6)
    np.testing.assert_allclose(w.norms_per_channel, [np.sqrt(2), 2 * np.sqrt(2), 3 * np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(w.norm_shares, np.array([32, 64, 72]) / 168, rtol=1e-6)
    assert w.matrix.shape == (2, 28) and w.matrix[0, 20] == 2.0


def test_3x3_blocks_keep_the_kernel_and_draw_kernel_norms():
    m = create_model("wsms_resnet20", integration="3x3", channels=8)
    w = integration_weights(m)
    weight = m.integration[0].weight.detach()
    assert [b.shape for b in w.blocks] == [(8, 64, 3, 3), (8, 32, 3, 3), (8, 16, 3, 3)]
    np.testing.assert_allclose(np.concatenate(w.blocks, 1), weight.numpy())
    np.testing.assert_allclose(w.matrix[2, 70], float(weight[2, 70].norm()), rtol=1e-6)
    assert np.sqrt((w.norms**2).sum()) == pytest.approx(float(weight.norm()), rel=1e-5)


@pytest.mark.parametrize("name", ["wsms_resnet20", "resnet20"])
def test_no_conv_reads_the_classifier(name):
    m = create_model(name, **({"integration": "none"} if name.startswith("wsms") else {}))
    w = integration_weights(m)
    assert w.kind == "none" and w.layer == "fc"
    np.testing.assert_allclose(np.concatenate(w.blocks, 1), m.fc.weight.detach().numpy())
    assert len(w.blocks) == (3 if name.startswith("wsms") else 1)


@pytest.mark.parametrize("name", ["wsms_resnet20", "ms_vgg", "resnet20"])
def test_no_conv_logit_is_exactly_the_sum_of_stage_terms(name):
    kwargs = {"integration": "none"} if "_" in name else {}
    if name == "ms_vgg":
        kwargs["backbone_config"] = SMALL_VGG
    m = _model(name, **kwargs)
    x = torch.randn(3, 32, 32)
    c = stage_contributions(m, x, target=4)
    bias = m.fc.bias[4].item()
    assert c.linear.sum() + bias == pytest.approx(c.logit, abs=1e-5)
    with torch.no_grad():
        out = m.forward_features(x.unsqueeze(0))
    for s, part in enumerate(c.feature_parts):
        cols = slice(sum(len(p) for p in c.feature_parts[:s]), sum(len(p) for p in c.feature_parts[:s + 1]))
        np.testing.assert_allclose(part, out.pooled[0, cols].numpy(), rtol=1e-6)
        assert c.linear[s] == pytest.approx((m.fc.weight[4, cols] @ out.pooled[0, cols]).item(), abs=1e-5)
    # Linear in the stages: switching only stage s on adds exactly its term to the bias.
    np.testing.assert_allclose(c.logit_only - c.logit_none, c.linear, atol=1e-5)
    assert c.logit_none == pytest.approx(bias, abs=1e-6)
    np.testing.assert_allclose(c.gated, c.linear)


@pytest.mark.parametrize("integration", ["1x1", "3x3"])
def test_conv_integration_parts_are_exact_before_bn_and_the_gated_split_sums_to_the_logit(integration):
    m = _model("wsms_vgg", integration=integration, channels=16, backbone_config=SMALL_VGG)
    x = torch.randn(3, 32, 32)
    c = stage_contributions(m, x)
    with torch.no_grad():
        out = m.forward_features(x.unsqueeze(0))
        pre_bn = m.integration[0](out.concat).mean((2, 3))[0]
    assert c.target == int(out.logits.argmax()) and c.linear is None
    np.testing.assert_allclose(sum(c.feature_parts), pre_bn.numpy(), rtol=1e-5, atol=1e-5)
    assert [p.shape for p in c.feature_parts] == [(16,)] * 3
    assert c.gated.sum() + c.gated_bias == pytest.approx(c.logit, abs=1e-4)
    assert c.feature_shares.sum() == pytest.approx(1.0)


def test_lesion_figures_are_the_models_own_masked_logits():
    m = _model("wsms_resnet20")
    x = torch.randn(1, 3, 32, 32)
    c = stage_contributions(m, x, target=7)
    with torch.no_grad():
        for s in range(3):
            only = m.forward_features(x, stage_mask=[t == s for t in range(3)]).logits[0, 7]
            off = m.forward_features(x, stage_mask=[t != s for t in range(3)]).logits[0, 7]
            assert c.logit_only[s] == pytest.approx(float(only), abs=1e-5)
            assert c.logit_drop[s] == pytest.approx(c.logit - float(off), abs=1e-5)
        assert c.logit_none == pytest.approx(float(m.forward_features(x, stage_mask=[False] * 3).logits[0, 7]))
    # The integration is nonlinear: the drops need not add up to the full-minus-none gap.
    assert c.logit_drop.sum() != pytest.approx(c.logit - c.logit_none, abs=1e-3)


def test_training_mode_and_bad_targets_are_refused():
    m = create_model("wsms_resnet20")
    with pytest.raises(ValueError, match="eval"):
        stage_contributions(m, torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="target class 10"):
        stage_contributions(m.eval(), torch.randn(3, 32, 32), target=10)
