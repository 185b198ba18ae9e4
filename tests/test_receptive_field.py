"""Receptive-field arithmetic against fields worked out by hand (Araujo et al. 2019;
cnn-architectures-lecture.txt: a stack of 3x3 convolutions sees 3, 5, 7 pixels)."""

import numpy as np
import pytest
import torch
from torch import nn

from wsms_viz.analysis.receptive_field import (
    Field,
    block_fields,
    block_table,
    effective_receptive_field,
    effective_receptive_fields,
    field_boxes,
    final_field_note,
    receptive_field_table,
    stage_blocks,
    union,
    walk,
)
from wsms_viz.analysis.stage_view import stage_views
from wsms_viz.models import create_model

SMALL_VGG = {"widths": (4, 8, 16), "convs_per_block": 1}
ERF_VGG = {"widths": (16, 16, 16), "convs_per_block": 1}  # enough channels that no unit is all dead


def _input(size=32):
    return Field(1, 1, 0, size)


def test_a_stack_of_3x3_convs_sees_3_5_7_pixels():
    stack = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(4)])
    out, rows = walk(stack, _input())
    assert [f.size for _, _, f in rows] == [3, 5, 7, 9]
    assert [f.start for _, _, f in rows] == [-1, -2, -3, -4]  # padding 1 reaches one pixel out
    assert out == Field(9, 1, -4, 32)


def test_a_stride_2_layer_doubles_the_jump_and_the_growth_after_it():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(1, 1, 3, padding=1),
                        nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1))
    _, rows = walk(net, _input())
    # 3; 3 + 2*2 = 7; pool 2x2 at jump 2: 7 + 1*2 = 9, jump 4; 9 + 2*4 = 17.
    assert [(f.size, f.jump, f.map_size) for _, _, f in rows] == [(3, 2, 16), (7, 2, 16), (9, 4, 8), (17, 4, 8)]


def test_dilation_and_padding_enter_the_arithmetic():
    out, _ = walk(nn.Conv2d(1, 1, 3, padding=2, dilation=2), _input(10))
    assert out == Field(5, 1, -2, 10)


def test_union_spans_both_paths():
    assert union(Field(3, 1, -1, 8), Field(7, 1, -3, 8)) == Field(7, 1, -3, 8)
    assert union(Field(3, 2, 0, 8), Field(3, 2, 2, 8)) == Field(5, 2, 0, 8)
    with pytest.raises(ValueError):
        union(Field(3, 1, 0, 8), Field(3, 2, 0, 4))


def test_a_downscaled_stage_counts_its_average_pools():
    # Stage 2 (index 1): one 2x2 avg pool (r=2, j=2), then a 3x3 conv: 2 + 2*2 = 6.
    # Stage 3 (index 2): two pools (r = 2 + 1*2 = 4, j = 4), then 4 + 2*4 = 12.
    m = create_model("wsms_vgg", backbone_config=SMALL_VGG)
    fields = block_fields(m)
    assert (fields[1][0].size, fields[1][0].jump) == (6, 2)
    assert (fields[2][0].size, fields[2][0].jump) == (12, 4)
    rows = [r for r in receptive_field_table(m) if r.stage == 2]
    assert [r.kind for r in rows[:2]] == ["avg pool 2x2 /2"] * 2
    assert [r.size for r in rows[:3]] == [2, 4, 12]


def test_resnet20_fields_by_hand():
    # Stem conv and 6 convs at jump 1: 1 + 2*7 = 15. Block 2: a stride-2 conv at jump 1
    # (+2), then 5 convs at jump 2 (+20) = 37. Block 3: +2*2, then 5 convs at jump 4 = 81.
    (fields,) = block_fields(create_model("resnet20"))
    assert [(f.size, f.jump, f.map_size) for f in fields] == [(15, 1, 32), (37, 2, 16), (81, 4, 8)]


def test_wsms_stage_fields_grow_with_the_downscaling():
    m = create_model("wsms_resnet20")
    fields = block_fields(m)
    table = block_table(m)
    assert [(r["stage"], r["block"], r["size"]) for r in table] == [
        (1, 1, 15), (1, 2, 37), (1, 3, 81), (2, 1, 30), (2, 2, 74), (3, 1, 60)]
    assert [len(f) for f in fields] == [3, 2, 1]  # stage s runs the first t - s blocks
    assert fields[0] == block_fields(create_model("resnet20"))[0]  # stage 1 is the backbone
    # Same block, input halved s times: every layer steps 2**s times further.
    assert fields[1][0].size == 2 + 2 * 2 * 7 == 30
    assert fields[2][0].size == 4 + 2 * 4 * 7 == 60
    assert fields[2][0].size == 4 * fields[0][0].size
    assert fields[1][1].size > fields[0][1].size
    # Every stage ends on the same grid (section 3.1: "the sizes ... are the same").
    assert {f[-1].jump for f in fields} == {4} and {f[-1].map_size for f in fields} == {8}


def test_residual_sum_is_the_union_with_the_option_a_shortcut():
    rows = [r for r in receptive_field_table(create_model("resnet20")) if r.layer.startswith("blocks.1.0")]
    by_layer = {r.layer: r for r in rows}
    short, main, total = by_layer["blocks.1.0.shortcut"], by_layer["blocks.1.0.conv2"], by_layer["blocks.1.0"]
    assert (short.size, short.jump, short.start) == (15, 2, -7)  # 1x1 with stride 2
    assert (total.size, total.start) == (main.size, main.start) == (21, -10)


def test_densenet_layers_and_transitions_by_hand():
    # Stem 3; a dense layer +2 = 5; transition: 1x1 conv (5), 2x2 avg pool (6, jump 2);
    # a dense layer at jump 2: 6 + 4 = 10; then pool (10 + 2 = 12, jump 4), layer 12 + 8 = 20.
    m = create_model("densenet", depth=7, growth_rate=2)
    (fields,) = block_fields(m)
    assert [(f.size, f.jump) for f in fields] == [(5, 1), (10, 2), (20, 4)]


def test_unknown_modules_are_refused_not_skipped():
    with pytest.raises(ValueError, match="Upsample"):
        walk(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)), _input())


def test_boxes_are_clipped_and_keep_the_unclipped_size():
    m = create_model("wsms_vgg", backbone_config=SMALL_VGG)
    centre, corner = field_boxes(m, (4, 4)), field_boxes(m, (0, 0))
    # Stage 1 last map: r = 18, j = 4, u = -7: unit 4 spans 9..26.
    assert (centre[0].top, centre[0].bottom, centre[0].size) == (9, 26, 18)
    assert (corner[0].top, corner[0].left, corner[0].bottom) == (0, 0, 10)
    assert corner[0].size == 18 and corner[0].height == 11
    with pytest.raises(ValueError, match="outside"):
        field_boxes(m, (8, 0))


def test_a_3x3_integration_widens_the_field_by_two_jumps():
    m = create_model("wsms_vgg", backbone_config=SMALL_VGG, integration="3x3")
    plain, wide = field_boxes(m, (4, 4)), field_boxes(m, (4, 4), through_integration=True)
    assert [w.size - p.size for p, w in zip(plain, wide, strict=True)] == [8, 8, 8]
    one = create_model("wsms_vgg", backbone_config=SMALL_VGG, integration="1x1")
    assert field_boxes(one, (4, 4), through_integration=True) == field_boxes(one, (4, 4))


def test_non_square_inputs_get_boxes_per_axis():
    m = create_model("wsms_vgg", backbone_config=SMALL_VGG)
    box = field_boxes(m, (0, 11), input_size=(32, 48))[0]
    assert (box.left, box.right) == (37, 47)  # 11*4 - 7 = 37, clipped at 47


@pytest.mark.parametrize("name", ["wsms_vgg", "vgg"])
@pytest.mark.parametrize("position", [(4, 4), (0, 0), (3, 6)])
def test_effective_field_lies_inside_the_theoretical_one(name, position):
    torch.manual_seed(0)
    m = create_model(name, **({"backbone_config": ERF_VGG} if name.startswith("wsms") else ERF_VGG)).eval()
    x = torch.randn(3, 32, 32)
    erfs = effective_receptive_fields(m, x, position)
    assert len(erfs) == len(stage_views(m))
    for box, erf in zip(field_boxes(m, position), erfs, strict=True):
        assert erf.shape == (32, 32) and erf.max() == pytest.approx(1.0)
        inside = np.zeros_like(erf, dtype=bool)
        inside[box.top:box.bottom + 1, box.left:box.right + 1] = True
        assert not erf[~inside].any(), f"stage {box.stage}: gradient outside the theoretical field"
        rows, cols = np.nonzero(erf)
        # The field is tight: the gradient reaches the box's first and last rows and columns.
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (box.top, box.bottom, box.left, box.right)


def _centroid(erf):
    rows, cols = np.mgrid[:erf.shape[0], :erf.shape[1]]
    return (erf * rows).sum() / erf.sum(), (erf * cols).sum() / erf.sum()


def test_effective_field_of_resnet_stages_centres_on_the_unit():
    # ResNet-20's theoretical fields (60 to 81 px) cover the whole image, so the
    # interesting fact is Luo et al.'s: the gradient piles up around the unit's centre.
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = torch.randn(1, 3, 32, 32)
    for s, box in enumerate(field_boxes(m, (4, 4))):
        erf = effective_receptive_field(m, x, s, (4, 4), unit="concat")
        cy, cx = _centroid(erf)
        assert abs(cy - box.center[0]) < 1.5 and abs(cx - box.center[1]) < 1.5
        assert erf[12:20, 12:20].mean() > 1.8 * erf.mean()
        # Moving the unit up and right moves its effective field the same way.
        cy2, cx2 = _centroid(effective_receptive_field(m, x, s, (2, 5), unit="concat"))
        assert cy2 < cy - 3 and cx2 > cx + 1.5


def test_erf_refuses_training_mode_and_bad_arguments():
    m = create_model("wsms_vgg", backbone_config=SMALL_VGG)
    with pytest.raises(ValueError, match="eval"):
        effective_receptive_field(m, torch.randn(3, 32, 32), 0, (4, 4))
    m.eval()
    with pytest.raises(ValueError, match="stage 3"):
        effective_receptive_field(m, torch.randn(3, 32, 32), 3, (4, 4))
    with pytest.raises(ValueError, match="outside"):
        effective_receptive_field(m, torch.randn(3, 32, 32), 0, (8, 4))
    with pytest.raises(ValueError, match="unit"):
        effective_receptive_field(m, torch.randn(3, 32, 32), 0, (4, 4), unit="pool")


def test_field_boxes_at_an_earlier_block_look_at_the_same_place():
    m = create_model("wsms_resnet20")
    assert [b.size for b in field_boxes(m, (4, 4), block=0)] == [15, 30, 60]  # x2 per stage, block for block
    two = field_boxes(m, (4, 4), block=1)
    assert [(b.stage, b.size) for b in two] == [(0, 37), (1, 74)]  # stage 3 stops after block 1
    last = field_boxes(m, (2, 6))
    for b in field_boxes(m, (2, 6), block=0):
        assert abs(b.center[0] - last[b.stage].center[0]) <= b.jump and abs(b.center[1] - last[b.stage].center[1]) \
            <= b.jump
    assert stage_blocks(m) == [3, 2, 1]
    note = final_field_note(m)
    assert "60 px" in note and "81 px" in note and "fewer blocks" in note
    assert final_field_note(create_model("resnet20")) is None


def test_effective_field_at_an_earlier_block_stays_in_its_box():
    torch.manual_seed(0)
    m = create_model("wsms_resnet20").eval()
    x = torch.randn(3, 32, 32)
    assert len(effective_receptive_fields(m, x, (4, 4), block=1)) == 2  # stages 1 and 2 have a block 2
    erfs = effective_receptive_fields(m, x, (1, 6), block=0)
    boxes = field_boxes(m, (1, 6), block=0)
    assert boxes[0].size == 15 and len(erfs) == 3
    for box, erf in zip(boxes, erfs, strict=True):
        inside = np.zeros_like(erf, dtype=bool)
        inside[box.top:box.bottom + 1, box.left:box.right + 1] = True
        assert erf[inside].max() == 1 and (inside.all() or erf[~inside].max() == 0)
    assert 0 < (erfs[0] > 0).sum() <= 15 * 15  # stage 1 after block 1: a 15 px square, not the image
    with pytest.raises(ValueError, match="no block 2"):
        effective_receptive_field(m, x, 2, (4, 4), block=1)
