"""The one zoom transform, on patterns whose answers are known by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from wsms_viz.zoom import CIFAR10_MEAN, crop_box, effective_zoom, normalize, zoom, zoom_sweep

RED, GREEN, BLUE, WHITE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)


def _colour(c):
    return torch.tensor(c).view(3, 1, 1)


def quadrants(size=32, inner=16):
    """Black image whose centre ``inner`` square holds four coloured quadrants."""
    x = torch.zeros(3, size, size)
    o, h = (size - inner) // 2, inner // 2
    for (dy, dx), c in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [RED, GREEN, BLUE, WHITE], strict=True):
        x[:, o + dy * h:o + (dy + 1) * h, o + dx * h:o + (dx + 1) * h] = _colour(c)
    return x


def test_zoom_1_is_the_identity():
    x = torch.rand(3, 32, 32)
    assert torch.equal(zoom(x, 1.0), x)
    assert zoom(x, 1.0) is not x


def test_zoom_2_is_the_centre_crop_enlarged():
    x = quadrants()
    out = zoom(x, 2.0)
    assert out.shape == (3, 32, 32)
    # the four quadrants now fill the frame; away from the seams they are pure
    for (ys, xs), c in zip([((0, 14), (0, 14)), ((0, 14), (18, 32)), ((18, 32), (0, 14)), ((18, 32), (18, 32))],
                           [RED, GREEN, BLUE, WHITE], strict=True):
        patch = out[:, ys[0]:ys[1], xs[0]:xs[1]]
        assert torch.allclose(patch, _colour(c).expand_as(patch))
    assert out.sum(0).min() > 0  # no black from outside the crop leaked in
    ref = F.interpolate(x[None, :, 8:24, 8:24], size=(32, 32), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(out, ref, atol=1e-6)


def test_zoom_half_shrinks_into_the_middle_and_pads_with_the_fill():
    x = torch.ones(3, 32, 32) * _colour((0.2, 0.4, 0.6))
    out = zoom(x, 0.5)
    assert torch.allclose(out[:, 8:24, 8:24], x[:, 8:24, 8:24])
    border = torch.ones(32, 32, dtype=torch.bool)
    border[8:24, 8:24] = False
    assert torch.allclose(out[:, border], torch.tensor(CIFAR10_MEAN).view(3, 1).expand(3, int(border.sum())))
    fill = zoom(x, 0.5, fill=(0.0, 1.0, 0.0))
    assert fill[:, 0, 0].tolist() == [0.0, 1.0, 0.0]
    q = quadrants(inner=32)  # the whole image in four colours
    small = zoom(q, 0.5, fill=(0, 0, 0))[:, 8:24, 8:24]
    assert torch.allclose(small[:, 1:7, 1:7], _colour(RED).expand(3, 6, 6))
    assert torch.allclose(small[:, 9:15, 9:15], _colour(WHITE).expand(3, 6, 6))
    ref = F.interpolate(q[None], size=(16, 16), mode="bilinear", align_corners=False, antialias=True)[0]
    assert torch.allclose(small, ref, atol=1e-6)


def test_centre_moves_the_window_and_it_stays_inside():
    x = quadrants(inner=32)
    top_left = zoom(x, 2.0, center=(0.0, 0.0))
    assert torch.allclose(top_left, _colour(RED).expand(3, 32, 32))
    bottom_right = zoom(x, 2.0, center=(1.0, 1.0))
    assert torch.allclose(bottom_right, _colour(WHITE).expand(3, 32, 32))
    for f in (1.0, 1.3, 2.0, 3.7, 8.0):
        for cy in (0.0, 0.1, 0.5, 0.93, 1.0):
            for cx in (0.0, 0.6, 1.0):
                top, left, h, w = crop_box(32, 40, f, (cy, cx))
                assert 0 <= top and top + h <= 32 and 0 <= left and left + w <= 40
                assert h == max(1, round(32 / f)) and w == max(1, round(40 / f))


def test_batch_and_single_agree():
    xs = torch.rand(4, 3, 32, 32)
    for f in (0.5, 0.8, 1.0, 1.5, 2.0):
        batch = zoom(xs, f, center=(0.4, 0.6))
        assert batch.shape == xs.shape
        for i in range(4):
            assert torch.allclose(batch[i], zoom(xs[i], f, center=(0.4, 0.6)), atol=1e-6)
    sweep = zoom_sweep(xs[0], [0.5, 1.0, 2.0])
    assert sweep.shape == (3, 3, 32, 32) and torch.allclose(sweep[2], zoom(xs[0], 2.0))


def test_uint8_input_is_scaled_to_unit_range():
    u = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    for f in (0.5, 1.0, 2.0):
        out = zoom(u, f)
        assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
        assert torch.allclose(out, zoom(u.float() / 255, f), atol=1e-6)


@pytest.mark.parametrize("factor", [0, -1, 0.2, 9, math.nan, math.inf])
def test_bad_factors_raise(factor):
    with pytest.raises(ValueError, match="zoom factor"):
        zoom(torch.rand(3, 32, 32), factor)


@pytest.mark.parametrize("center", [(-0.1, 0.5), (0.5, 1.01), (math.nan, 0.5)])
def test_bad_centres_raise(center):
    with pytest.raises(ValueError, match="center"):
        zoom(torch.rand(3, 32, 32), 2.0, center=center)


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="shape"):
        zoom(torch.rand(32, 32), 2.0)


def test_large_image_with_out_size_is_antialiased():
    # A one-pixel checkerboard: shrinking it 8x must give grey, not an aliased pattern.
    yy, xx = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    board = ((yy + xx) % 2).float().expand(3, 256, 256)
    out = zoom(board, 1.0, out_size=32)
    assert out.shape == (3, 32, 32)
    assert torch.allclose(out[:, 2:-2, 2:-2], torch.full((3, 28, 28), 0.5), atol=0.02)
    # zooming in on a large image crops first, then resizes to out_size
    x = quadrants(size=256, inner=128)
    z2 = zoom(x, 2.0, out_size=(32, 48))
    assert z2.shape == (3, 32, 48)
    assert torch.allclose(z2[:, 2:14, 2:20], _colour(RED).expand(3, 12, 18), atol=1e-6)
    half = zoom(x, 0.5, out_size=32)
    assert half.shape == (3, 32, 32) and torch.allclose(half[:, 0, 0], torch.tensor(CIFAR10_MEAN))


def test_effective_zoom_reports_whole_pixel_windows():
    assert effective_zoom(32, 2.0) == 2.0
    assert effective_zoom(32, 1.125) == 32 / 28
    assert effective_zoom(32, 0.875) == 28 / 32
    assert effective_zoom(32, 1.0) == 1.0


def test_normalize_of_the_fill_is_zero():
    # The padding colour is the mean: after normalisation it is the networks' own zero padding.
    out = normalize(zoom(torch.rand(3, 32, 32), 0.5))
    assert out[:, 0, 0].abs().max() < 1e-6
