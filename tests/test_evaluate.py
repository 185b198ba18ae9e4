"""The evaluator: statistics with answers known by hand, and the command on tiny
checkpoints whose predictions are fixed by construction."""

import json

import numpy as np
import pytest
import torch
from tiny_data import make_imagefolder

from wsms_viz.checkpoint import load_checkpoint, save_checkpoint
from wsms_viz.evaluation import evaluate as ev
from wsms_viz.evaluation import report
from wsms_viz.evaluation.metrics import DEFAULT_ZOOMS, predict_at_zoom
from wsms_viz.models import create_model
from wsms_viz.zoom import CIFAR10_MEAN, CIFAR10_STD

CLASSES = ["ant", "bee", "cow", "dog"]


# --- paired bootstrap -----------------------------------------------------------------

def _pair(n, seed=0, pa=0.80, pb=0.75):
    rng = np.random.default_rng(seed)
    return rng.random(n) < pa, rng.random(n) < pb


def test_bootstrap_interval_contains_the_observed_difference():
    a, b = _pair(500)
    iv = ev.paired_bootstrap(a, b, resamples=2000, seed=0)
    assert iv.diff == pytest.approx(a.mean() - b.mean())
    assert iv.lo < iv.diff < iv.hi
    assert (iv.images, iv.resamples, iv.level) == (500, 2000, 0.95)
    assert ev.paired_bootstrap(a, b, resamples=2000, seed=0) == iv  # seeded: repeatable
    assert ev.paired_bootstrap(a, b, resamples=2000, seed=1) != iv


def test_bootstrap_interval_narrows_with_more_images_as_one_over_sqrt_n():
    widths = {}
    for n in (200, 2000):
        a, b = _pair(n, seed=n)
        iv = ev.paired_bootstrap(a, b, resamples=2000)
        d = a.astype(float) - b
        # the normal approximation of the same interval
        expect = 2 * 1.96 * d.std() / np.sqrt(n)
        assert iv.hi - iv.lo == pytest.approx(expect, rel=0.15)
        widths[n] = iv.hi - iv.lo
    assert widths[2000] < widths[200] / 2


def test_bootstrap_of_identical_models_is_zero_and_pairing_matters():
    a, _ = _pair(300)
    iv = ev.paired_bootstrap(a, a)
    assert (iv.diff, iv.lo, iv.hi) == (0.0, 0.0, 0.0) and not iv.excludes_zero
    # b = a with 15 wrong answers fixed: unpaired, two 80% models of 300 images could not
    # be told apart; paired, every resample sees b ahead, so the interval excludes 0.
    b = a.copy()
    b[np.flatnonzero(~a)[:15]] = True
    iv = ev.paired_bootstrap(b, a)
    assert iv.diff == pytest.approx(15 / 300) and iv.lo > 0 and iv.excludes_zero


def test_bootstrap_over_a_sweep_is_the_difference_of_mean_accuracies():
    rng = np.random.default_rng(3)
    a, b = rng.random((9, 400)) < 0.7, rng.random((9, 400)) < 0.6
    iv = ev.paired_bootstrap(a, b, resamples=500)
    assert iv.diff == pytest.approx(a.mean(1).mean() - b.mean(1).mean())
    assert iv.lo < iv.diff < iv.hi and iv.images == 400


def test_seed_spread_widens_the_interval():
    iv = ev.Interval(0.004, 0.001, 0.007, 0.95, 2000, 5000)
    lo, hi = iv.with_seed_spread()
    half = np.hypot(0.003, 1.959964 * np.sqrt(2) * 0.0016)
    assert (lo, hi) == pytest.approx((0.004 - half, 0.004 + half))
    assert iv.excludes_zero and lo < 0  # resolved by the bootstrap alone, not once seeds are counted


def test_verdicts_of_a_difference():
    tight = ev.Interval(0.004, 0.001, 0.007, 0.95, 2000, 5000)  # only the bootstrap excludes 0
    assert ev.resolved(tight)[2] == "one seed only"
    assert ev.resolved(tight, same_weights=True) == (0.001, 0.007, "yes")  # no seed noise between them
    assert ev.resolved(ev.Interval(0.03, 0.02, 0.04, 0.95, 2000, 5000))[2] == "yes"
    assert ev.resolved(ev.Interval(-0.03, -0.04, -0.02, 0.95, 2000, 5000))[2] == "yes"
    assert ev.resolved(ev.Interval(0.001, -0.002, 0.004, 0.95, 2000, 5000))[2] == "no"


def test_accuracy_interval_of_one_model():
    rng = np.random.default_rng(5)
    c = rng.random(1000) < 0.8
    iv = ev.bootstrap_accuracy(c, resamples=2000)
    assert iv.diff == pytest.approx(c.mean()) and iv.lo < iv.diff < iv.hi
    p = c.mean()  # the binomial normal approximation
    assert iv.hi - iv.lo == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 1000), rel=0.15)
    sweep = ev.bootstrap_accuracy(np.stack([c, ~c]), resamples=200)
    assert sweep.diff == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [dict(a=[1, 0], b=[1]), dict(a=[], b=[]),
                                 dict(a=np.ones((2, 2, 2)), b=np.ones((2, 2, 2)))])
def test_bootstrap_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        ev.paired_bootstrap(bad["a"], bad["b"])


# --- multi-scale averaging and examples -------------------------------------------------

def test_tta_zooms_and_average():
    zs = ev.tta_zooms([1.0, 2.0])
    assert zs == [0.875, 1.0, 1.125, 1.75, 2.0, 2.25]
    probs = {z: torch.full((2, 3), z) for z in zs}
    assert torch.allclose(ev.tta_probs(probs, 1.0), torch.full((2, 3), 1.0))
    assert torch.allclose(ev.tta_probs(probs, 2.0, [0.875, 1.125]), torch.full((2, 3), 2.0))


def test_tta_row_averages_softmax_over_scales():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=4).eval()
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    plain, tta = ev.evaluate_model(model, images, labels, [0.5, 1.0], CIFAR10_MEAN, CIFAR10_STD, "m",
                                   tta_scales=ev.TTA_SCALES)
    assert (plain.label, tta.label, tta.tta) == ("m", "m +tta", True)
    expect = sum(predict_at_zoom(model, images, z, CIFAR10_MEAN, CIFAR10_STD) for z in (0.875, 1.0, 1.125)) / 3
    assert torch.allclose(tta.probs1, expect, atol=1e-6)
    assert tta.correct_at(1.0).tolist() == (expect.argmax(1) == labels).tolist()
    at_half = sum(predict_at_zoom(model, images, z, CIFAR10_MEAN, CIFAR10_STD) for z in (0.4375, 0.5, 0.5625)) / 3
    assert tta.val_acc[0] == pytest.approx((at_half.argmax(1) == labels).float().mean().item())
    with pytest.raises(ValueError, match="contain 1.0"):
        ev.evaluate_model(model, images, labels, [0.5, 2.0], CIFAR10_MEAN, CIFAR10_STD, "m")


def test_select_examples_takes_baseline_wrong_wsms_right():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    onehot = torch.eye(3)
    base = onehot[torch.tensor([0, 0, 0, 0, 0, 0, 0, 0])]  # right on 0, 3, 6
    wsms = onehot[torch.tensor([0, 1, 2, 1, 1, 0, 0, 1])]  # right on 0, 1, 2, 4, 6, 7
    chosen, random, reverse = ev.select_examples(labels, base, wsms, n=10, seed=0)
    assert chosen == [1, 2, 4, 7] and len(random) == 4 and len(set(random)) == 4
    assert reverse == [3]  # baseline right, WSMS wrong: the other way round
    few, few_random, few_reverse = ev.select_examples(labels, base, wsms, n=2, seed=0)
    assert len(few) == 2 and set(few) <= {1, 2, 4, 7} and len(few_random) == 2 and few_reverse == [3]
    assert ev.select_examples(labels, base, wsms, n=2, seed=0) == (few, few_random, few_reverse)


# --- the command ------------------------------------------------------------------------

def _constant_checkpoint(directory, name, favourite, classes=CLASSES):
    """A model that answers ``favourite`` for every image at every zoom (the classifier's
    weights zeroed, its bias picking the class): its accuracies are known by hand."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=len(classes))
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[favourite] = 5.0
    save_checkpoint(directory, model, {"name": directory.name, "classes": classes,
                                       "normalization": {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD)},
                                       "scale_robustness": {"zooms": [1.0], "val_acc": [0.0], "mean_acc": 0.0}})
    return directory


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    # val = the last 10%: 1 ant, 3 bee, 2 cow, 2 dog
    make_imagefolder(data, classes=CLASSES, per_class={"ant": 10, "bee": 30, "cow": 20, "dog": 20})
    ck = tmp_path / "ckpts"
    base = _constant_checkpoint(ck / "base", "resnet20", 0)  # right on the 1 ant: 1/8
    wsms = _constant_checkpoint(ck / "wsms", "wsms_resnet20", 1)  # right on the 3 bees: 3/8
    common = ["--data", f"imagefolder:{data}", "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]
    return base, wsms, common


def test_command_prints_table_updates_cards_and_writes_examples(setup, capsys):
    base, wsms, common = setup
    before = {d: json.loads((d / "card.json").read_text()) for d in (base, wsms)}
    ev.main([str(base), str(wsms), *common, "--tta", "--examples", "2"])
    out = capsys.readouterr().out
    table = out[out.index("model "):out.index("difference from")]
    rows = {line.split()[0] + (" +tta" if "+tta" in line else ""): line.split() for line in table.splitlines()
            if line.startswith(("base", "wsms"))}
    assert set(rows) == {"base", "base +tta", "wsms", "wsms +tta"}
    assert rows["base"][1:] == ["12.50"] * (len(DEFAULT_ZOOMS) + 1)  # every zoom, then the mean
    assert rows["wsms +tta"][2:] == ["37.50"] * (len(DEFAULT_ZOOMS) + 1)
    assert "difference from base" in out and "+25.00 [" in out

    for d, acc in ((base, 0.125), (wsms, 0.375)):
        card = load_checkpoint(d).card  # still loads: the weights' sha256 is still right
        sr = card["scale_robustness"]
        assert sr["zooms"] == list(DEFAULT_ZOOMS) and sr["val_acc"] == pytest.approx([acc] * len(DEFAULT_ZOOMS))
        assert sr["mean_acc"] == pytest.approx(acc) and sr["val_images"] == 8 and sr["split"] == "val"
        assert sr["tta"]["scales"] == list(ev.TTA_SCALES) and sr["tta"]["mean_acc"] == pytest.approx(acc)
        for lo, hi in sr["val_acc_ci"] + [sr["mean_acc_ci"]] + sr["tta"]["val_acc_ci"]:
            assert 0 <= lo <= acc <= hi <= 1 and hi - lo > 0.1  # 8 images: wide
        assert sr["ci_level"] == 0.95 and sr["resamples"] == 2000
        assert {k: v for k, v in card.items() if k != "scale_robustness"} == \
            {k: v for k, v in before[d].items() if k != "scale_robustness"}
    base_sr = json.loads((base / "card.json").read_text())["scale_robustness"]
    assert "vs_baseline" not in base_sr  # the baseline itself
    same = base_sr["tta"]["vs_baseline"]  # its TTA row: the same weights, no seed spread added
    assert same["at_zoom_1"]["diff"] == 0 and same["at_zoom_1"]["seed_aware_ci"] == same["at_zoom_1"]["ci"]
    vs = json.loads((wsms / "card.json").read_text())["scale_robustness"]["vs_baseline"]
    assert vs["baseline"] == "base"
    for key in ("at_zoom_1", "mean"):
        d = vs[key]
        assert d["diff"] == pytest.approx(0.25) and d["ci"][0] <= 0.25 <= d["ci"][1]
        assert d["seed_aware_ci"][0] < d["ci"][0] and d["seed_aware_ci"][1] > d["ci"][1]
        assert d["resolved"] in ("yes", "one seed only", "no")
    printed = next(line for line in out[out.index("difference from"):].splitlines() if line.startswith("wsms "))
    assert printed.split("]")[1].strip().startswith(vs["at_zoom_1"]["resolved"])  # the card says what was printed

    table = report.summary_table(report.read_cards([base, wsms])).splitlines()  # the README's table, from the cards
    assert "vs base at zoom 1" in table[0]  # params from the card's config: 4 classes, a smaller classifier
    assert table[2].startswith("| base | 0.269M | 12.50 | 12.50 | 12.50 | 12.50 |")
    assert f"| +25.00 [{100 * vs['at_zoom_1']['ci'][0]:+.2f}, " in table[3] and table[3].startswith("| wsms (1x1, c=")
    assert report.zoom_table(report.read_cards([wsms])).splitlines()[2] == "| wsms |" + " 37.50 |" * len(DEFAULT_ZOOMS)

    examples = json.loads((base.parent / "examples.json").read_text())
    assert (examples["baseline"], examples["wsms"], examples["candidates"]) == ("base", "wsms", 3)
    assert len(examples["examples"]) == 2 and len(examples["random"]) == 2
    val_files = {"ant/0009.png", "bee/0027.png", "bee/0028.png", "bee/0029.png",
                 "cow/0018.png", "cow/0019.png", "dog/0018.png", "dog/0019.png"}
    for e in examples["examples"]:
        assert e["file"] in {"bee/0027.png", "bee/0028.png", "bee/0029.png"} and e["label"] == "bee"
        assert e["source"] == examples["source"] and e["source"].startswith("imagefolder:")
        top = pytest.approx(np.e**5 / (np.e**5 + 3), abs=1e-4)
        assert e["baseline"] == {"name": "base", "pred": "ant", "prob": top}
        assert e["wsms"]["name"] == "wsms" and e["wsms"]["pred"] == "bee"
    for e in examples["random"]:
        assert e["file"] in val_files and e["label"] == e["file"].split("/")[0]
        assert set(e) >= {"file", "source", "label", "baseline", "wsms"}


def test_command_examples_out_and_subset_leave_cards_alone(setup, tmp_path, capsys):
    base, wsms, common = setup
    cards = [(d / "card.json").read_bytes() for d in (base, wsms)]
    target = tmp_path / "elsewhere" / "ex.json"
    ev.main([str(base), str(wsms), *common, "--val-subset", "4", "--zooms", "1", "2", "--examples-out", str(target)])
    assert [(d / "card.json").read_bytes() for d in (base, wsms)] == cards
    assert "cards not updated" in capsys.readouterr().out
    assert target.is_file() and not (base.parent / "examples.json").exists()


def test_command_errors_are_plain(setup, tmp_path, capsys):
    base, _, common = setup
    other = _constant_checkpoint(tmp_path / "other", "resnet20", 0, classes=["w", "x", "y", "z"])
    with pytest.raises(SystemExit) as e:
        ev.main([str(base), str(other), *common])
    assert e.value.code == 2 and "trained on classes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        ev.main([str(tmp_path / "missing"), *common])
    assert e.value.code == 2 and "no such checkpoint directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        ev.main([str(base), *common, "--zooms", "0.1"])
    assert e.value.code == 2 and "between 0.25 and 8" in capsys.readouterr().err


def test_single_checkpoint_needs_no_comparison(setup, capsys):
    base, _, common = setup
    ev.main([str(base), *common, "--zooms", "1"])
    out = capsys.readouterr().out
    assert "difference from" not in out and "no examples.json" in out


def test_report_refuses_a_card_without_a_curve(tmp_path, capsys):
    d = _constant_checkpoint(tmp_path / "m", "resnet20", 0)
    card = json.loads((d / "card.json").read_text())
    del card["scale_robustness"]
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(SystemExit) as e:
        report.main([str(d)])
    assert e.value.code == 2 and "python -m wsms_viz.evaluation.evaluate" in capsys.readouterr().err


def test_one_run_stamps_every_card_and_the_report_refuses_a_mix(setup, capsys):
    # A run killed between two card writes leaves cards of two runs: the report says so.
    base, wsms, common = setup
    ev.main([str(base), str(wsms), *common, "--zooms", "1", "--resamples", "50", "--examples", "0"])
    runs = {json.loads((d / "card.json").read_text())["scale_robustness"]["run_id"] for d in (base, wsms)}
    assert len(runs) == 1 and None not in runs
    report.main([str(base), str(wsms)])  # one run: fine
    capsys.readouterr()
    ev.main([str(wsms), *common, "--zooms", "1", "--resamples", "50", "--examples", "0"])  # wsms alone, later
    with pytest.raises(SystemExit) as e:
        report.main([str(base), str(wsms)])
    assert e.value.code == 2 and "different evaluator runs" in capsys.readouterr().err


def test_a_malformed_normalization_stops_the_evaluator_before_it_measures(setup, capsys):
    base, _, common = setup
    card = json.loads((base / "card.json").read_text())
    card["normalization"]["std"] = [0.2, 0.0, 0.2]  # would divide by zero: NaN inputs, a silent 0% before
    (base / "card.json").write_text(json.dumps(card))
    with pytest.raises(SystemExit) as e:
        ev.main([str(base), *common, "--zooms", "1"])
    assert e.value.code == 2 and "normalization.std[1]" in capsys.readouterr().err
