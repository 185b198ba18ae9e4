"""Feature maps per stage and Fig. 1 measured: aligned stage maps of a WSMS-Net agree,
an MS-Net's do not, unrelated images give the floor."""

import numpy as np
import pytest
import torch

from wsms_viz.analysis.features import (
    aligned_maps,
    blob_images,
    color_ranges,
    fig1_similarity,
    map_similarity,
    shared_filter_responses,
    stage_feature_maps,
    top_channels,
)
from wsms_viz.models import create_model
from wsms_viz.zoom import normalize


def _pair(seed=0):
    torch.manual_seed(seed)
    wsms = create_model("wsms_resnet20").eval()
    torch.manual_seed(seed)
    ms = create_model("ms_resnet20").eval()
    return wsms, ms


def test_stage_maps_of_every_block_with_three_scalings():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = normalize(blob_images(1)[0])
    f = stage_feature_maps(m, x, scaling="local")
    assert [[a.shape for a in s] for s in f.maps] == [
        [(16, 32, 32), (32, 16, 16), (64, 8, 8)], [(16, 16, 16), (32, 8, 8)], [(16, 8, 8)]]
    with torch.no_grad():
        ref = m.forward_features(x.unsqueeze(0)).stage_features
    np.testing.assert_allclose(f.maps[1][1], ref[1][1][0].numpy(), rtol=1e-6)
    local, stage, glob = f.ranges, color_ranges(f.maps, "stage"), color_ranges(f.maps, "global")
    a = f.maps[1][0]
    np.testing.assert_allclose(local[1][0][:, 0], a.reshape(16, -1).min(1))
    np.testing.assert_allclose(local[1][0][:, 1], a.reshape(16, -1).max(1))
    assert (stage[1][0] == [a.min(), a.max()]).all()
    # "global": block 1 has one range across the three stages, wide enough for all.
    assert (glob[0][0] == glob[1][0]).all() and (glob[1][0] == glob[2][0]).all()
    assert glob[0][0][0, 1] == max(s[0].max() for s in f.maps)
    assert not (glob[0][1][0] == glob[0][0][0]).all()
    with pytest.raises(ValueError, match="scaling"):
        color_ranges(f.maps, "per-pixel")


def test_shared_filter_response_at_every_stage_that_has_the_block():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = normalize(blob_images(1)[0])
    maps = shared_filter_responses(m, x, block=0, channel=5)
    assert [r.shape for r in maps] == [(32, 32), (16, 16), (8, 8)]
    with torch.no_grad():
        ref = m.forward_features(x.unsqueeze(0)).stage_features
    for s, r in enumerate(maps):
        np.testing.assert_allclose(r, ref[s][0][0, 5].numpy(), rtol=1e-6)
    assert len(shared_filter_responses(m, x, block=1, channel=0)) == 2
    assert len(shared_filter_responses(m, x, block=2, channel=0)) == 1
    with pytest.raises(ValueError, match="channel 16"):
        shared_filter_responses(m, x, block=0, channel=16)
    with pytest.raises(ValueError, match="block 3"):
        shared_filter_responses(m, x, block=3, channel=0)


def test_top_channels_are_the_strongest_first():
    a = np.zeros((4, 2, 2))
    a[2] += 3
    a[0] += 1
    a[3] += 2
    assert top_channels(a, 3) == [2, 3, 0]


def test_similarity_metrics_by_hand():
    rng = np.random.default_rng(0)
    a = rng.random((6, 5, 5))
    same = map_similarity(a, 3 * a)
    assert same == pytest.approx({"cosine": 1.0, "correlation": 1.0, "cka": 1.0})
    flipped = map_similarity(a, -a)
    assert flipped["correlation"] == pytest.approx(-1.0) and flipped["cka"] == pytest.approx(1.0)
    # Permuting channels keeps the representation (CKA 1) but breaks channel identity.
    perm = map_similarity(a, a[[1, 2, 3, 4, 5, 0]])
    assert perm["cka"] == pytest.approx(1.0) and perm["correlation"] < 0.5
    dead = a.copy()
    dead[0] = 0.0  # a constant channel is left out, not counted as 0 or NaN
    assert map_similarity(a, dead)["correlation"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        map_similarity(a, a[:, :4])


SMALL_VGG = {"widths": (8, 8, 8), "convs_per_block": 1}


@pytest.mark.parametrize("gap", [1, 2])
def test_shared_weights_make_the_aligned_views_identical_on_a_flat_image(gap):
    # Worked by hand: a flat colour survives both resamplings unchanged; the mean-colour
    # frame is 0 after normalisation, which the first conv sees exactly as zero padding;
    # at init BN is the same in every stage. So with one conv per block, a WSMS-Net's
    # stage 1 block 1 on the shrunk image equals stage 1 + gap on the original everywhere,
    # and block 2 (max pool aligned with the copy, then one 3x3 conv) everywhere but the
    # outer ring, where its conv sees the frame's activations instead of padding.
    # Any misaligned crop breaks this; an MS-Net's maps never agree.
    torch.manual_seed(0)
    wsms = create_model("wsms_vgg", backbone_config=SMALL_VGG).eval()
    torch.manual_seed(0)
    ms = create_model("ms_vgg", backbone_config=SMALL_VGG).eval()
    flat = torch.tensor([0.8, 0.2, 0.5]).view(3, 1, 1).expand(3, 32, 32)
    fine, coarse = aligned_maps(wsms, flat, flat, block=0, gap=gap)
    assert fine.shape == coarse.shape == (8, 32 // 2**gap, 32 // 2**gap)
    np.testing.assert_allclose(fine, coarse, atol=1e-5)
    assert not np.allclose(*aligned_maps(ms, flat, flat, block=0, gap=gap), atol=1e-2)
    if gap == 1:
        fine, coarse = aligned_maps(wsms, flat, flat, block=1, gap=1)
        assert fine.shape == (8, 8, 8)
        np.testing.assert_allclose(fine[:, 1:-1, 1:-1], coarse[:, 1:-1, 1:-1], atol=1e-5)
        assert not np.allclose(fine, coarse, atol=1e-3)  # the ring does differ


def test_fig1_on_a_wsms_resnet_with_the_flat_image_agrees_in_the_interior():
    wsms, _ = _pair()
    flat = torch.tensor([0.8, 0.2, 0.5]).view(3, 1, 1).expand(3, 32, 32)
    fine, coarse = aligned_maps(wsms, flat, flat)
    # Block 1 of ResNet-20 has 7 convs: a ring of 7 units along the border differs.
    np.testing.assert_allclose(fine[:, 7:9, 7:9], coarse[:, 7:9, 7:9], atol=1e-5)


def _mean(rows, model, pairs, metric):
    (row,) = [r for r in rows if r.model == model and r.pairs == pairs and r.metric == metric]
    return row.mean


@pytest.mark.parametrize("pairing", ["shrink", "enlarge"])
def test_fig1_wsms_stages_agree_ms_stages_do_not(pairing):
    wsms, ms = _pair(seed=1)
    images = blob_images(8, seed=3)
    rows = fig1_similarity({"wsms": wsms, "ms": ms}, images, pairing=pairing)
    assert len(rows) == 2 * 2 * 3 and all(r.n == 8 for r in rows)
    for metric in ("correlation", "cosine"):
        same, floor = _mean(rows, "wsms", "same image", metric), _mean(rows, "wsms", "unrelated images", metric)
        ms_same = _mean(rows, "ms", "same image", metric)
        assert same > floor + 0.2, (metric, same, floor)
        assert same > ms_same + 0.2, (metric, same, ms_same)
    # Enlarging interpolates pixels, so its views agree less (module docstring).
    assert _mean(rows, "wsms", "same image", "correlation") > (0.6 if pairing == "shrink" else 0.3)
    assert abs(_mean(rows, "ms", "same image", "correlation")) < 0.2


def test_aligned_maps_refuse_stages_and_blocks_that_do_not_exist():
    wsms, _ = _pair()
    x = blob_images(1)[0]
    with pytest.raises(ValueError, match="stages 2 and 3"):
        aligned_maps(wsms, x, x, stage=2)
    with pytest.raises(ValueError, match="block 2"):
        aligned_maps(wsms, x, x, block=2)
    with pytest.raises(ValueError, match="pairing"):
        aligned_maps(wsms, x, x, pairing="rotate")
    with pytest.raises(ValueError, match="at least 2"):
        fig1_similarity({"w": wsms}, x.unsqueeze(0))


def test_blob_images_are_smooth_and_seeded():
    a, b = blob_images(3, seed=5), blob_images(3, seed=5)
    assert torch.equal(a, b) and a.shape == (3, 3, 32, 32)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    # Smooth: neighbouring pixels differ far less than white noise's ~0.33 on average.
    assert float((a[..., 1:] - a[..., :-1]).abs().mean()) < 0.05


def test_fig1_command_on_checkpoints_and_a_val_split(tmp_path, capsys):
    from tiny_data import make_imagefolder

    from wsms_viz.analysis.features import main
    from wsms_viz.app.catalog import CIFAR10_CLASSES
    from wsms_viz.checkpoint import save_checkpoint

    wsms, ms = _pair()
    for name, model in (("wsms_resnet20", wsms), ("ms_resnet20", ms)):
        save_checkpoint(tmp_path / name, model, {"classes": CIFAR10_CLASSES})
    make_imagefolder(tmp_path / "imgs", classes=("ant", "bee"), per_class=20)  # 2 val images per class
    main(["--checkpoint", str(tmp_path / "wsms_resnet20"), "--checkpoint", str(tmp_path / "ms_resnet20"),
          "--data", f"imagefolder:{tmp_path / 'imgs'}", "--cache-dir", str(tmp_path / "cache"), "--images", "4"])
    out = capsys.readouterr().out
    assert "4 images from the val split of imagefolder:" in out
    assert "wsms_resnet20" in out and "ms_resnet20" in out
