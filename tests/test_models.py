"""The models against the paper's Tables 1 and 2, section 4 and section 3.1."""

import pytest
import torch
from torch import nn

from wsms_viz.evaluation.complexity import PAPER_ROWS, count_mults, count_params
from wsms_viz.models import create_model, list_models, model_config
from wsms_viz.models.wsms import WSMSNet

TOL = {"MS-": 0.02}


def _tolerance(label):
    return 0.02 if label.startswith("MS-") else 0.01


@pytest.mark.parametrize("row", PAPER_ROWS, ids=lambda r: r.label)
@pytest.mark.parametrize("classes", [10, 100])
def test_parameter_counts_match_tables(row, classes):
    paper = row.params_c10 if classes == 10 else row.params_c100
    ours = count_params(row.name, num_classes=classes, **dict(row.config)) / 1e6
    assert abs(ours - paper) / paper <= _tolerance(row.label), f"{row.label}: {ours:.3f}M vs {paper}M"


@pytest.mark.parametrize("row", [r for r in PAPER_ROWS if r.mults], ids=lambda r: r.label)
def test_multiplications_match_section_4(row):
    ours = count_mults(row.name, **dict(row.config)) / 1e6
    assert abs(ours - row.mults) / row.mults <= 0.02, f"{row.label}: {ours:.1f}M vs {row.mults}M"


def test_mults_are_counted_on_real_tensors_too():
    # The meta-device count must equal a real forward pass's count.
    assert count_mults("wsms_resnet20", device="cpu") == count_mults("wsms_resnet20")


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_wsms_shares_every_convolution_and_no_batchnorm():
    m = create_model("wsms_resnet20")
    s0, s1, s2 = m.stages
    for b, block in enumerate(s1.blocks):
        for c0, c1 in zip(_convs(s0.blocks[b]), _convs(block), strict=True):
            assert c0.weight is c1.weight
    for c0, c2 in zip(_convs(s0.blocks[0]), _convs(s2.blocks[0]), strict=True):
        assert c0.weight is c2.weight
    assert _convs(s0.stem)[0].weight is _convs(s2.stem)[0].weight
    bn0 = [m for m in s0.modules() if isinstance(m, nn.BatchNorm2d)]
    bn1 = [m for m in s1.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not {id(p) for b in bn0 for p in b.parameters()} & {id(p) for b in bn1 for p in b.parameters()}


def test_shared_weight_gets_gradient_from_every_stage():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20")
    x = torch.randn(4, 3, 32, 32)
    shared = _convs(m.stages[0].blocks[0])[0].weight  # used by all three stages
    only_stage1 = _convs(m.stages[0].blocks[2])[0].weight  # block 3: stage 1 alone

    def grads(mask):
        m.zero_grad(set_to_none=False)
        m.forward_features(x, stage_mask=mask).logits.sum().backward()
        return shared.grad.clone(), only_stage1.grad.clone()

    g_all, _ = grads([True, True, True])
    g_second, g3_second = grads([False, True, False])
    g_third, _ = grads([False, False, True])
    assert g_second.abs().sum() > 0 and g_third.abs().sum() > 0  # stages 2, 3 reach it
    assert torch.count_nonzero(g3_second) == 0  # stage 2 never runs block 3
    assert not torch.allclose(g_all, g_second)


def test_each_stage_keeps_its_own_batchnorm_statistics():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").train()
    m(torch.rand(8, 3, 32, 32) * 4)
    bn = [next(x for x in s.modules() if isinstance(x, nn.BatchNorm2d)) for s in m.stages]
    assert not torch.allclose(bn[0].running_var, bn[1].running_var)
    assert not torch.allclose(bn[1].running_var, bn[2].running_var)


@pytest.mark.parametrize("backbone", ["resnet20", "vgg"])
def test_ms_net_has_exactly_the_duplicated_convolutions_more(backbone):
    w = create_model(f"wsms_{backbone}")
    ms = create_model(f"ms_{backbone}")
    dup = sum(p.numel() for s in w.stages[1:] for c in _convs(s) for p in c.parameters())
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(ms) - n(w) == dup > 0
    c0, c1 = _convs(ms.stages[0])[0], _convs(ms.stages[1])[0]
    assert c0.weight is not c1.weight and not torch.equal(c0.weight, c1.weight)


@pytest.mark.parametrize("name", ["resnet20", "wsms_resnet20", "ms_resnet20", "vgg", "wsms_vgg", "ms_vgg"])
def test_every_model_maps_images_to_logits(name):
    m = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet", "wsms_densenet"])
def test_small_densenets_map_images_to_logits(name):
    cfg = {"depth": 10, "growth_rate": 4}
    kwargs = cfg if name == "densenet" else {"backbone_config": cfg}
    m = create_model(name, **kwargs).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_stage_maps_have_the_sizes_fig2_implies():
    m = create_model("wsms_resnet20").eval()
    with torch.no_grad():
        out = m.forward_features(torch.randn(1, 3, 32, 32))
    sizes = [[f.shape[-1] for f in stage] for stage in out.stage_features]
    assert sizes == [[32, 16, 8], [16, 8], [8]]
    assert [x.shape[-1] for x in out.stage_inputs] == [32, 16, 8]
    assert [o.shape[1] for o in out.stage_outputs] == [64, 32, 16]
    assert out.concat.shape == (1, 112, 8, 8)
    assert out.integrated.shape == (1, 128, 8, 8)
    assert out.pooled.shape == (1, 128)


def test_forward_features_agrees_with_forward_and_lesions_change_logits():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = m.forward_features(x)
        torch.testing.assert_close(full.logits, m(x))
        off = m.forward_features(x, stage_mask=[True, False, True])
    assert torch.count_nonzero(off.concat[:, 64:96]) == 0
    assert torch.equal(off.concat[:, :64], full.concat[:, :64])
    assert not torch.allclose(off.logits, full.logits)


def test_baseline_forward_features_has_one_stage():
    m = create_model("resnet20").eval()
    with torch.no_grad():
        out = m.forward_features(torch.randn(1, 3, 32, 32))
        torch.testing.assert_close(out.logits, m(torch.randn(1, 3, 32, 32) * 0 + out.stage_inputs[0]))
    assert len(out.stage_features) == 1 and len(out.stage_features[0]) == 3


@pytest.mark.parametrize("size", [30, 33, 34])
def test_sizes_the_stages_cannot_halve_give_a_clear_error(size):
    m = create_model("wsms_resnet20")
    with pytest.raises(ValueError, match=f"{size}x{size}"):
        m(torch.randn(1, 3, size, size))


def test_other_multiples_of_four_work():
    m = create_model("wsms_resnet20").eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 64, 48)).shape == (1, 10)


def test_every_relu_is_its_own_non_inplace_module():
    for name in ["resnet20", "wsms_resnet20", "wsms_vgg"]:
        m = create_model(name)
        relus = [x for x in m.modules() if isinstance(x, nn.ReLU)]
        assert relus and not any(r.inplace for r in relus)
        # A module reached by two paths would appear once in modules() but twice here.
        names = [n for n, x in m.named_modules(remove_duplicate=False) if isinstance(x, nn.ReLU)]
        assert len(names) == len(relus)


@pytest.mark.parametrize("name", ["resnet20", "wsms_resnet20", "ms_vgg"])
def test_config_round_trip_rebuilds_the_same_model(name):
    a = create_model(name, num_classes=5)
    b = create_model(name, **model_config(a))
    assert [k for k in a.state_dict()] == [k for k in b.state_dict()]
    assert model_config(a) == model_config(b)


@pytest.mark.parametrize("bad", [
    ("resnet21", {}), ("nope", {}), ("resnet", {}), ("wsms_resnet20", {"integration": "5x5"}),
    ("wsms_resnet20", {"stages": 4}), ("resnet20", {"depth": 21}), ("densenet", {"depth": 50}),
    ("resnet20", {"widths": [1]}),
])
def test_bad_names_and_configs_raise_value_error_naming_them(bad):
    name, cfg = bad
    with pytest.raises(ValueError) as e:
        create_model(name, **cfg)
    shown = str(e.value)
    assert name in shown or any(str(v) in shown for v in cfg.values())


def test_registry_lists_the_models_the_app_offers():
    names = list_models()
    for n in ["resnet20", "resnet32", "resnet56", "resnet110", "densenet", "vgg",
              "wsms_resnet20", "ms_resnet20", "wsms_densenet", "ms_densenet", "wsms_vgg"]:
        assert n in names
    assert isinstance(create_model("wsms_vgg"), WSMSNet)
