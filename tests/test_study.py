"""The scale study: its regime sampler, the scale-channel reference's construction and
invariance, the study's measurements, contrasts and sentences, and the report."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.app_fixtures import make_checkpoint
from tests.tiny_data import make_imagefolder
from wsms_viz.analysis.attribution import attribute_stages
from wsms_viz.checkpoint import read_card
from wsms_viz.data import Augmenter
from wsms_viz.evaluation import report, seeds, study
from wsms_viz.evaluation.evaluate import paired_bootstrap
from wsms_viz.evaluation.study_report import study_section
from wsms_viz.models import create_model
from wsms_viz.models.scale_channel import ScaleChannelNet

# --- the regime sampler ---------------------------------------------------------------


@pytest.mark.parametrize("regime", ["mid", "full"])
def test_regime_sampler_draws_log_uniformly_inside_its_range_only(regime):
    lo, hi = study.REGIMES[regime]
    aug = Augmenter(jitter_range=(lo, hi), jitter_p=0.5)
    s = aug.draw_scales(40_000, torch.Generator().manual_seed(0)).numpy()
    jittered = s[s != 1.0]
    assert ((jittered >= lo) & (jittered <= hi)).all()
    assert abs(len(jittered) / len(s) - 0.5) < 0.02  # jitter_p
    # log-uniform: the log of the factor is uniform on [log lo, log hi] (Kolmogorov-Smirnov distance)
    u = np.sort((np.log(jittered) - math.log(lo)) / (math.log(hi) - math.log(lo)))
    ks = np.max(np.abs(u - np.arange(1, len(u) + 1) / len(u)))
    assert ks < 1.63 / math.sqrt(len(u))  # the 1% critical value
    assert u[0] < 0.01 and u[-1] > 0.99  # it reaches both ends
    assert np.mean(np.log(jittered)) == pytest.approx((math.log(lo) + math.log(hi)) / 2, abs=0.01)


def test_regime_is_read_from_the_recipe_in_one_place():
    assert study.regime_of({"recipe": {"scale_jitter": None}}) == "none"
    assert study.regime_of({"recipe": {"scale_jitter": [2 ** -0.5, 2 ** 0.5]}}) == "mid"
    assert study.regime_of({"recipe": {"scale_jitter": [0.5, 2.0]}}) == "full"
    assert study.regime_of({"recipe": {"scale_jitter": [0.8, 1.2]}}) == "custom"
    assert study.trained_range({"recipe": {}}) == (1.0, 1.0)
    zs = study.STUDY_ZOOMS
    assert len(zs) == 17 and zs[0] == 0.25 and zs[8] == 1.0 and zs[-1] == 4.0
    assert [z for z in zs if study.inside(z, study.REGIMES["mid"])] == list(zs[6:11])
    assert [z for z in zs if study.inside(z, study.REGIMES["full"])] == list(zs[4:13])
    assert [z for z in zs if study.inside(z, (1.0, 1.0))] == [1.0]


# --- the scale-channel reference ---------------------------------------------------------

def test_scale_channel_net_shares_every_weight_across_channels():
    torch.manual_seed(0)
    sc, base = create_model("sc_resnet20"), create_model("resnet20")
    assert sum(p.numel() for p in sc.parameters()) == sum(p.numel() for p in base.parameters())
    sc.eval()
    x = torch.randn(2, 3, 32, 32)
    for s in range(sc.num_stages):  # each channel alone reaches every weight, BatchNorm included
        sc.zero_grad()
        mask = [t == s for t in range(sc.num_stages)]
        sc.forward_features(x, stage_mask=mask).logits.sum().backward()
        unused = [n for n, p in sc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert unused == [], f"channel {s} does not use {unused}"


def test_the_classifier_sees_the_max_over_channels():
    torch.manual_seed(0)
    sc = create_model("sc_resnet20").eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = sc.forward_features(x)
        each = sc.channel_features(x)  # (N, S, C)
        assert torch.allclose(out.concat.flatten(1), each.flatten(1))
        assert torch.allclose(out.pooled, each.amax(1))
        assert torch.allclose(out.logits, sc.fc(each.amax(1)), atol=1e-6)
        assert torch.allclose(sc(x), out.logits, atol=1e-6)
        # raising one channel's features above the others changes what the classifier reads
        assert not torch.allclose(sc.fc(each.mean(1)), out.logits, atol=1e-3)
        # a channel left out of the max: the max over the others
        off = sc.forward_features(x, stage_mask=[False, True, True])
        assert torch.allclose(off.pooled, each[:, 1:].amax(1))


def _smooth_images(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.randn(n, 3, 8, 8, generator=g), size=32, mode="bilinear", align_corners=False)


def _rel(u, v):
    return ((u - v).norm(dim=-1) / v.norm(dim=-1)).max().item()


def test_enlarging_2x_moves_the_original_into_the_half_size_channel():
    # The scale-channel property (module docstring of wsms_viz.models.scale_channel): on
    # an image enlarged 2x, the 1/2 channel sees what the full-size channel saw on the
    # original, exactly for nearest-neighbour enlargement, to within resampling error for
    # bilinear; pairing the channels the other way round does not match.
    torch.manual_seed(0)
    sc = create_model("sc_resnet20").eval()
    x = _smooth_images()
    with torch.no_grad():
        orig = sc.channel_features(x)
        nearest = sc.channel_features(F.interpolate(x, scale_factor=2, mode="nearest"))
        bilinear = sc.channel_features(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
    assert torch.allclose(nearest[:, 1], orig[:, 0], atol=1e-5) and torch.allclose(nearest[:, 2], orig[:, 1], atol=1e-5)
    matched = max(_rel(bilinear[:, 1], orig[:, 0]), _rel(bilinear[:, 2], orig[:, 1]))
    # resampling error: bilinear up then 2x2 average = a [1/8, 3/4, 1/8] blur of the original
    blurred = F.avg_pool2d(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), 2)
    assert (blurred - x).abs().mean() < 0.1 * x.abs().mean()
    assert matched < 0.1
    assert _rel(bilinear[:, 1], orig[:, 1]) > 3 * matched  # the wrong pairing


def test_a_plain_resnet_is_not_scale_channel_invariant():
    # The same check on the baseline: its one channel on the enlarged image is far from
    # its channel on the original, so the test above measures the construction.
    torch.manual_seed(0)
    base = create_model("resnet20").eval()
    x = _smooth_images()
    feats = {}
    with torch.no_grad():
        for key, img in (("orig", x), ("big", F.interpolate(x, scale_factor=2, mode="nearest"))):
            h = base.stem(img)
            for b in base.blocks:
                h = b(h)
            feats[key] = F.adaptive_avg_pool2d(h, 1).flatten(1)
    assert _rel(feats["big"], feats["orig"]) > 0.1


# --- measurements ----------------------------------------------------------------------------

def test_batched_stage_shares_equal_the_per_image_attribution():
    torch.manual_seed(0)
    for name in ("wsms_resnet20", "sc_resnet20"):
        m = create_model(name).eval()
        x, t = torch.randn(3, 3, 32, 32), torch.tensor([1, 4, 7])
        batched = study.stage_shares(m, x, t, n_steps=8, batch_size=2)
        for i in range(3):
            one = attribute_stages(m, x[i], int(t[i]), n_steps=8).shares
            np.testing.assert_allclose(batched[i], one, atol=1e-4)


def test_lesions_match_forward_features_with_a_stage_mask():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    for name in ("wsms_resnet20", "sc_resnet20"):
        m = create_model(name).eval()
        with torch.no_grad():
            m.fc.weight.mul_(10)
            x = study._inputs(images, 2.0, mean, std, "cpu")
            preds = [m.forward_features(x, stage_mask=mask).logits.argmax(1)
                     for mask in ([False, True, True], [True, False, True], [True, True, False], [True, False, False])]
        labels = preds[0]  # so that the first row is all correct and the others show disagreements
        got = study.lesion_correct(m, images, labels, 2.0, mean, std, batch_size=4)
        want = np.stack([(p == labels).numpy() for p in preds])
        np.testing.assert_array_equal(got, want)


def _result(name, model, regime, correct, shares=None, lesioned=None):
    zooms = list(study.STUDY_ZOOMS)
    entry = {"zooms": zooms, "val_acc": correct.mean(1).tolist()}
    index = [0, 1] if shares is not None else None
    return study.ModelResult(name, model, regime, entry, correct, shares, lesioned, index)


def test_contrasts_and_sentences_follow_the_numbers():
    rng = np.random.default_rng(0)
    n, z = 400, len(study.STUDY_ZOOMS)

    def correct(p):
        return rng.random((z, n)) < p

    def build(w_mid_acc):
        return [_result("resnet20", "resnet20", "none", correct(0.6)),
                _result("wsms_resnet20", "wsms_resnet20", "none", correct(0.6)),
                _result("resnet20_jitter_mid", "resnet20", "mid", correct(0.6)),
                _result("wsms_resnet20_jitter_mid", "wsms_resnet20", "mid", correct(w_mid_acc))]

    cs = {c["id"]: c for c in study.contrasts(build(0.8), resamples=200)}
    assert cs["interaction/mid/inside"]["diff"] == pytest.approx(0.2, abs=0.05)
    assert cs["interaction/mid/inside"]["zooms"] == list(study.STUDY_ZOOMS[6:11])
    assert cs["wsms-baseline/none/inside"]["zooms"] == [1.0]
    # one seed per arm: the bootstrap interval excludes 0, but nothing is settled
    assert cs["interaction/mid/inside"]["ci"][0] > 0 and cs["interaction/mid/inside"]["settled"] is False
    assert cs["interaction/mid/inside"]["resolved"] == "not settled (one seed: spread not measured)"
    assert "seed_aware_ci" in cs["interaction/mid/inside"]  # He et al.'s comparison, labelled as such
    assert "sc-wsms/none/all" not in cs  # no scale-channel model given

    def sentences(results):
        found = study.contrasts(results, resamples=200)
        study.attach_contrasts(results, found)
        cards = {r.name: {"scale_study": {**r.entry, "version": study.STUDY_VERSION}} for r in results}
        return dict(study.answers(cards))

    up, down = sentences(build(0.8)), sentences(build(0.4))
    q1, q2 = list(up)[0], list(up)[1]
    assert "gains more" in up[q1] and "gains less" in down[q1]
    assert "does better" in up[q2] and "does worse" in down[q2]
    assert up[q1] != down[q1]
    assert "Not measured" in up[list(up)[2]]  # question 3 needs the scale-channel models

    with pytest.raises(ValueError, match="two checkpoints"):
        study.contrasts(build(0.8) + [_result("x", "resnet20", "none", correct(0.5))])


# --- end to end: the command, the cards and the report ----------------------------------------

@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    make_imagefolder(root / "data", classes=classes, per_class=10)
    names = ("resnet20", "wsms_resnet20", "sc_resnet20")
    for i, name in enumerate(names):
        make_checkpoint(root / "ck", name, seed=i, full_card=True)
    # the jitter arms: the same architectures under the mid regime
    for i, (name, arch) in enumerate((("resnet20_jitter_mid", "resnet20"),
                                      ("wsms_resnet20_jitter_mid", "wsms_resnet20"),
                                      ("sc_resnet20_jitter_mid", "sc_resnet20"))):
        make_checkpoint(root / "tmp", arch, seed=10 + i, full_card=True)
        (root / "tmp" / arch).rename(root / "ck" / name)
    for d in (root / "ck").iterdir():
        card = read_card(d).to_dict()
        card["name"] = d.name
        card["recipe"] = {"scale_jitter": list(study.REGIMES["mid"]) if d.name.endswith("_mid") else None}
        card["hardware"] = "test machine"
        card["wall_time_s"] = 60.0
        (d / "card.json").write_text(json.dumps(card))
    dirs = [root / "ck" / n for n in names] + [root / "ck" / f"{n}_jitter_mid" for n in names]
    argv = [str(d) for d in dirs] + ["--data", f"imagefolder:{root / 'data'}", "--cache-dir", str(root / "cache"),
                                     "--results", str(root / "results"), "--threads", "1",
                                     "--attr-images", "4", "--attr-steps", "4", "--resamples", "100",
                                     "--batch-size", "50"]
    results = study.run(study.build_parser().parse_args(argv))
    return root, dirs, results, argv


def test_the_command_writes_every_card_and_every_contrast(studied):
    root, dirs, results, _ = studied
    cards = {d.name: read_card(d) for d in dirs}
    for name, card in cards.items():
        s = study.study_of(card)
        assert s is not None and len(s["val_acc"]) == 17 and len(s["val_acc_ci"]) == 17
        assert s["regime"] == ("mid" if name.endswith("_mid") else "none")
        assert s["val_images"] == 10  # the last 10% of 10 images per class, 10 classes
        assert s["inside"]["zooms"] == ([1.0] if s["regime"] == "none" else list(study.STUDY_ZOOMS[6:11]))
        assert len(s["consistency"]) == 17 and s["consistency"][8] == 1.0  # zoom 1 agrees with itself
        if name.startswith(("wsms_", "sc_")):
            st = s["stages"]
            assert st["attribution"]["images"] == 4 and len(st["lesion"]["drop"]) == 3
            assert all(sum(row) == pytest.approx(1) for row in st["attribution"]["share"])
    ids = set(study.all_contrasts(cards))
    for cid in ("interaction/mid/inside", "interaction/mid/outside", "sc-wsms/none/all", "sc-wsms/mid/enlarged",
                "share23/mid/1", "lesion23/mid/2", "wsms-baseline/none/outside"):
        assert cid in ids
    assert all("Not measured" not in a for _, a in study.answers(cards))


def test_a_second_run_reuses_the_per_image_results(studied, capsys):
    root, dirs, results, argv = studied
    before = {d.name: read_card(d)["scale_study"] for d in dirs}
    study.run(study.build_parser().parse_args(argv))
    assert capsys.readouterr().out.count("reused") == len(dirs)
    assert {d.name: read_card(d)["scale_study"] for d in dirs} == before


def test_the_report_prints_the_study(studied, capsys):
    root, dirs, _, _ = studied
    report.main([str(d) for d in dirs] + ["--results", str(root / "results")])
    out = capsys.readouterr().out
    section = study_section(study.read_summary(root / "results"))
    assert section and section in out
    assert "| sc_resnet20_jitter_mid | 1 | mid | 0.71-1.41 | test machine, fp32 |" in section
    assert "3. How far is WSMS" in section
    assert "| resnet20 | 1 | one seed: spread not measured |" in section
    assert "| ResNet-110 | 6.61 | 93.39 | not run yet | 0 |" in section
    # the cards' one-seed blocks print the same tables where no results ship
    cards_only = study_section(report.read_cards(dirs))
    assert cards_only.splitlines()[2:6] == section.splitlines()[2:6]


def test_bad_input_gets_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        study.main([str(tmp_path / "nope"), "--data", f"imagefolder:{tmp_path}"])
    assert e.value.code == 2 and "error:" in capsys.readouterr().err
    assert isinstance(create_model("sc_resnet20"), ScaleChannelNet)


# --- several seeds: the results files, the hierarchical interval, the summary ----------------

def test_hierarchical_bootstrap_is_the_paired_bootstrap_with_one_seed():
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.7, rng.random(500) < 0.6
    iv = seeds.hierarchical_bootstrap([a[None]], [b[None]], resamples=300, seed=3)
    ref = paired_bootstrap(a, b, 300, 3)
    assert (iv.diff, iv.lo, iv.hi) == pytest.approx((ref.diff, ref.lo, ref.hi), abs=1e-12)
    assert (iv.images_lo, iv.images_hi) == pytest.approx((ref.lo, ref.hi), abs=1e-12)
    assert not iv.spread_measured and not iv.settled


def _seeds(rng, n, accs):
    return np.stack([rng.random(n) < p for p in accs])


def test_the_interval_widens_with_the_seed_spread():
    rng = np.random.default_rng(1)
    n = 2000
    base = _seeds(rng, n, [0.60, 0.60, 0.60])
    alike = _seeds(rng, n, [0.63, 0.63, 0.63])
    spread = _seeds(rng, n, [0.55, 0.63, 0.71])  # same mean, seeds 8 points apart
    tight = seeds.hierarchical_bootstrap([alike], [base], resamples=400)
    wide = seeds.hierarchical_bootstrap([spread], [base], resamples=400)
    assert tight.spread_measured and wide.spread_measured
    assert wide.hi - wide.lo > 2 * (tight.hi - tight.lo)
    assert wide.images_hi - wide.images_lo < 1.3 * (tight.images_hi - tight.images_lo)  # images alone cannot see it
    assert tight.settled and not wide.settled  # +3 points: settled only where the seeds agree


def _fake_run(tmp, arm, model, regime, seed, acc, labels, stages=False, rng=None):
    rng = rng or np.random.default_rng(seed)
    zooms = list(study.STUDY_ZOOMS)
    right = rng.random((len(zooms), len(labels))) < acc
    top1 = np.where(right, labels[None], (labels[None] + 1) % 10)
    meta = {"format": seeds.RESULTS_FORMAT, "version": seeds.RESULTS_VERSION, "arm": arm, "name": arm,
            "model": model, "config": {}, "seed": seed, "regime": regime,
            "trained_range": list(study.REGIMES[regime] or (1.0, 1.0)),
            "recipe": {"name": "short", "epochs": 30, "seed": seed}, "trained_on": "test", "zooms": zooms}
    kw = {}
    if stages:
        kw = {"lesioned": rng.random((3, 4, len(labels))) < acc - 0.1,
              "shares": rng.dirichlet([8, 1, 1], size=(3, 5)), "attr_index": [0, 1, 2, 3, 4]}
    return seeds.write_run(tmp, meta, top1, labels, **kw)


def test_results_files_round_trip_without_pickle(tmp_path):
    labels = np.arange(37) % 10
    path = _fake_run(tmp_path, "wsms_resnet20", "wsms_resnet20", "none", 2, 0.7, labels, stages=True)
    assert path == tmp_path / "wsms_resnet20" / "seed2.npz" and path.with_suffix(".json").is_file()
    with np.load(path, allow_pickle=False) as z:
        assert z["top1"].dtype == np.uint8 and z["lesioned"].dtype == np.uint8  # packed bits
    run = seeds.read_run(path)
    assert run.seed == 2 and run.correct.shape == (17, 37) and run.lesioned.shape == (3, 4, 37)
    assert run.lesioned.dtype == bool and run.shares.shape == (3, 5, 3)
    assert run.consistent[8].all()  # zoom 1 agrees with itself
    assert seeds.arm_name("wsms_resnet20_jitter_mid_seed2") == "wsms_resnet20_jitter_mid"


def test_runs_group_into_arms_and_refuse_what_cannot_be_paired(tmp_path):
    labels = np.arange(50) % 10
    for k in (0, 1, 2):
        _fake_run(tmp_path, "resnet20", "resnet20", "none", k, 0.6, labels)
    _fake_run(tmp_path, "wsms_resnet20", "wsms_resnet20", "none", 0, 0.6, labels)
    arms = seeds.group_runs(seeds.find_runs(tmp_path))
    assert {(a.name, a.k) for a in arms} == {("resnet20", 3), ("wsms_resnet20", 1)}
    _fake_run(tmp_path, "resnet20_again", "resnet20", "none", 1, 0.6, labels)  # the same arm, seed 1 twice
    with pytest.raises(ValueError, match="seed 1"):
        seeds.group_runs(seeds.find_runs(tmp_path))
    other = tmp_path / "other"
    _fake_run(other, "resnet20", "resnet20", "none", 0, 0.6, labels)
    _fake_run(other, "wsms_resnet20", "wsms_resnet20", "none", 0, 0.6, np.arange(50) % 9)
    with pytest.raises(ValueError, match="other val images"):
        seeds.group_runs(seeds.find_runs(other))


def test_a_one_seed_arm_says_so_and_settles_nothing(tmp_path):
    labels = np.arange(1000) % 10
    for k in (0, 1, 2):
        _fake_run(tmp_path, "resnet20", "resnet20", "none", k, 0.5, labels)
    _fake_run(tmp_path, "wsms_resnet20", "wsms_resnet20", "none", 0, 0.8, labels)
    s = study.summarize(seeds.find_runs(tmp_path), resamples=200, root=tmp_path)
    c = next(x for x in s["contrasts"] if x["id"] == "wsms-baseline/none/inside")
    assert c["diff"] > 0.2 and c["ci"][0] > 0 and c["seeds"] == {"wsms_resnet20": 1, "resnet20": 3}
    assert c["spread"] == "one seed: spread not measured" and not c["settled"]
    section = study_section(s)
    assert "| wsms_resnet20 | 1 | one seed: spread not measured |" in section
    assert "| resnet20 | 3 | " in section and "| resnet20 | 3 | one seed" not in section
    _fake_run(tmp_path, "wsms_resnet20", "wsms_resnet20", "none", 1, 0.8, labels)
    with pytest.raises(ValueError, match="out of date"):  # a summary knows the runs it was built from
        study.write_summary(tmp_path, s) and study.read_summary(tmp_path)
    s2 = study.summarize(seeds.find_runs(tmp_path), resamples=200, root=tmp_path)
    c2 = next(x for x in s2["contrasts"] if x["id"] == "wsms-baseline/none/inside")
    assert c2["settled"] and c2["spread"] == "measured" and c2["resolved"] == "settled"


def test_study_and_report_rebuild_from_results_alone(tmp_path, capsys):
    labels = np.arange(400) % 10
    arms = (("resnet20", "resnet20", "none", 0.55), ("wsms_resnet20", "wsms_resnet20", "none", 0.57),
            ("resnet20_jitter_mid", "resnet20", "mid", 0.6), ("wsms_resnet20_jitter_mid", "wsms_resnet20", "mid", 0.7))
    for arm, model, regime, acc in arms:
        for k in (0, 1):
            _fake_run(tmp_path, arm, model, regime, k, acc + 0.02 * k, labels, stages=model.startswith("wsms"))
    study.main(["--results", str(tmp_path), "--resamples", "100"])  # no checkpoints, no data
    assert "4 arm(s)" in capsys.readouterr().out
    summary = study.read_summary(tmp_path)
    assert [len(a["seeds"]) for a in summary["arms"]] == [2, 2, 2, 2]
    a0 = next(a for a in summary["arms"] if a["name"] == "resnet20")
    assert a0["val_acc_sd"] is not None and a0["spread"]["zoom_1"] is not None
    report.main(["--study-only", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.strip() == study_section(summary).strip()
    assert "SD over seeds (points) at each zoom:" in out and "not run yet" in out
    answers = dict(study.answers(summary))
    assert all(a.rstrip(".").endswith(("settled", "0", "measured", "spread", "differences")) or "settled" in a
               for a in answers.values() if not a.startswith("Not measured"))
    assert "2 seeds per arm" in answers[study.QUESTIONS[0]]


@pytest.mark.slow
def test_two_seeds_of_two_tiny_trained_arms(tmp_path, capsys):
    # Real runs: the trainer, three seeds of two arms, a few steps each on a tiny folder;
    # the study measures them, and the report rebuilds from the results once the weights are gone.
    from wsms_viz import train as train_mod

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    make_imagefolder(tmp_path / "data", classes=classes, per_class=10)
    dirs = []
    for model in ("resnet20", "wsms_resnet20"):
        for k in (0, 1, 2):
            out = tmp_path / "ck" / f"{model}_seed{k}"
            train_mod.main(["--model", model, "--data", f"imagefolder:{tmp_path / 'data'}", "--cache-dir",
                            str(tmp_path / "cache"), "--out", str(out), "--epochs", "1", "--batch-size", "30",
                            "--threads", "1", "--no-progress", "--zooms", "1", "--seed", str(k)])
            dirs.append(out)
    results = tmp_path / "results"
    study.main([str(d) for d in dirs] + ["--data", f"imagefolder:{tmp_path / 'data'}", "--cache-dir",
                                         str(tmp_path / "cache"), "--results", str(results), "--attr-images", "3",
                                         "--attr-steps", "2", "--resamples", "100", "--no-card", "--threads", "1"])
    assert sorted(p.relative_to(results).as_posix() for p in results.glob("*/*.npz")) == [
        f"{m}/seed{k}.npz" for m in ("resnet20", "wsms_resnet20") for k in (0, 1, 2)]
    summary = study.read_summary(results)
    assert [(a["name"], a["seeds"]) for a in summary["arms"]] == [("resnet20", [0, 1, 2]),
                                                                  ("wsms_resnet20", [0, 1, 2])]
    c = next(x for x in summary["contrasts"] if x["id"] == "wsms-baseline/none/inside")
    assert c["spread"] == "measured" and c["seeds"] == {"wsms_resnet20": 3, "resnet20": 3}
    import shutil
    shutil.rmtree(tmp_path / "ck")  # no weights from here on
    capsys.readouterr()
    report.main(["--study-only", "--results", str(results)])
    assert "| resnet20 | 3 | none |" in capsys.readouterr().out
