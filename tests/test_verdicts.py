"""The verdict sentences and the Lesson's card-derived numbers, on hand-made numbers:
both directions, resolved and not, and the cases with nothing to judge."""

from types import SimpleNamespace

import numpy as np
import pytest

from wsms_viz.app import lesson, verdicts
from wsms_viz.app.predict import Sweep
from wsms_viz.cards import Difference, parse_card

CLASSES = ("cat", "dog")


def diff(d, ci, seed_ci=None):
    return Difference(d, ci, seed_ci or (ci[0] - 0.001, ci[1] + 0.001), "ignored: the sentence reads the intervals")


@pytest.mark.parametrize("d,words", [
    (diff(0.012, (0.004, 0.02)), ["+1.20 points", "+0.40 to +2.00", "resolved"]),
    (diff(-0.012, (-0.02, -0.004)), ["-1.20 points", "-2.00 to -0.40", "resolved"]),
    (diff(-0.003, (-0.006, -0.001), (-0.008, 0.002)), ["-0.30 points", "one seed cannot tell"]),
    (diff(0.0046, (-0.0038, 0.013)), ["+0.46 points", "-0.38 to +1.30", "includes 0: not resolved"]),
])
def test_comparison_clause(d, words):
    text = verdicts.comparison_clause(d)
    assert all(w in text for w in words), text
    assert ("excludes 0" in text) == verdicts.excludes_zero(d.ci)


def card(model="wsms_resnet20", vs=None, jitter=None, zooms=(0.5, 1.0, 2.0), acc=(0.3, 0.8, 0.2), name=None):
    raw = {"model": model, "config": {}, "classes": list(CLASSES), "sha256": "0" * 64, "log": [{"epoch": 1}],
           "scale_robustness": {"zooms": list(zooms), "val_acc": list(acc)}}
    if vs:
        raw["scale_robustness"]["vs_baseline"] = vs
    if jitter:
        raw["recipe"] = {"scale_jitter": list(jitter)}
    if name:
        raw["name"] = name
    return parse_card(raw)


def vs_block(d1, ci1, dm, cim, seed_m=None):
    def one(d, ci, seed):
        return {"diff": d, "ci": list(ci), "seed_aware_ci": list(seed or ci), "resolved": "x"}
    return {"baseline": "resnet20", "at_zoom_1": one(d1, ci1, None), "mean": one(dm, cim, seed_m)}


def model(label, c):
    return SimpleNamespace(label=label, card=c)


def test_robustness_verdict_picks_the_plain_wsms_model_and_states_both_differences():
    ms = model("ms", card("ms_resnet20", vs_block(0.05, (0.04, 0.06), 0.05, (0.04, 0.06))))
    jit = model("wsms_jit", card("wsms_resnet20", vs_block(0.1, (0.09, 0.11), 0.1, (0.09, 0.11)), jitter=(0.5, 2)))
    wsms = model("wsms", card("wsms_resnet20", vs_block(0.0046, (-0.0038, 0.013), -0.0084, (-0.013, -0.0038))))
    base = model("resnet20", card("resnet20"))
    text = verdicts.robustness_verdict([base, ms, jit, wsms])
    assert text.startswith("**wsms** against **resnet20**")
    assert "at zoom 1 it is +0.46 points" in text and "not resolved" in text.split(";")[0]
    assert "0.5x to 2x it is -0.84 points" in text and text.endswith("spread: resolved).")
    assert verdicts.robustness_verdict([base, model("plain", {})]) is None
    assert verdicts.robustness_verdict([ms, jit]).startswith("**wsms_jit**")  # a WSMS-Net before an MS-Net


def sweep(label, top_class_at):
    """A sweep over 0.5..1.5 whose top guess at each zoom is the given class index."""
    zooms = (0.5, 0.75, 1.0, 1.25, 1.5)
    probs = np.array([[0.9, 0.1] if c == 0 else [0.1, 0.9] for c in top_class_at])
    return Sweep(label, zooms, probs, CLASSES)


def test_kept_range_is_contiguous_around_one():
    s = sweep("a", [0, 1, 0, 0, 1])
    assert verdicts.kept_range(s.zooms, s.probs, s.classes, "cat") == (1.0, 1.25)
    assert verdicts.kept_range(s.zooms, s.probs, s.classes, "dog") is None  # not the top guess at 1x
    assert verdicts.kept_range(s.zooms, s.probs, s.classes, "bird") is None


@pytest.mark.parametrize("first,second,winner", [
    ([0, 0, 0, 0, 1], [1, 0, 0, 1, 1], "**base** keeps it longest"),
    ([1, 0, 0, 1, 1], [0, 0, 0, 0, 1], "**wsms** keeps it longest"),
    ([1, 0, 0, 0, 1], [1, 0, 0, 0, 1], "all keep it over the same stretch"),
])
def test_zoom_verdict_names_who_keeps_the_top_guess_longer(first, second, winner):
    text = verdicts.zoom_verdict([sweep("base", first), sweep("wsms", second)], "cat")
    assert text.endswith(winner + "."), text


def test_zoom_verdict_when_nobody_has_it_at_one():
    assert verdicts.zoom_verdict([sweep("a", [0] * 5), sweep("b", [1, 1, 0, 0, 0])], "dog") == \
        "At 1x no model's top guess is **dog**; elsewhere: a at none, b at 2 of 5 zooms."
    assert "not even at 1x" in verdicts.zoom_verdict([sweep("a", [0] * 5), sweep("b", [1, 1, 1, 0, 0])], "cat")
    assert verdicts.zoom_verdict([], "cat") is None


def test_attribution_verdicts_both_directions():
    assert "carry 40% of the attribution, stage 1 (the full image) 60%" in verdicts.attribution_verdict(
        [0.6, 0.3, 0.1], 2.0)
    assert verdicts.attribution_verdict([1.0], 1.0) is None
    up = verdicts.shares_move_verdict([2.0, 0.5], np.array([[0.4, 0.4, 0.2], [0.9, 0.05, 0.05]]))
    assert "from 10% to 60%: yes" in up
    down = verdicts.shares_move_verdict([0.5, 2.0], np.array([[0.4, 0.4, 0.2], [0.9, 0.05, 0.05]]))
    assert "from 60% to 10%: no" in down
    flat = verdicts.shares_move_verdict([0.5, 2.0], np.array([[0.5, 0.5], [0.48, 0.52]]))
    assert "barely" in flat
    assert verdicts.shares_move_verdict([1.0], np.array([[0.5, 0.5]])) is None


def test_integration_verdict():
    text = verdicts.integration_verdict([0.5, 2.0, -0.1], [0.2, 0.3, 0.5], "cat")
    assert "switching stage 2 off lowers the score of **cat** most (by 2.00)" in text
    assert "stage 3 makes up the largest part of the pooled feature (50%)" in text
    same = verdicts.integration_verdict([2.0, 0.5], [0.7, 0.3], "cat")
    assert "the same stage makes up" in same
    assert "does not lower" in verdicts.integration_verdict([-0.2, -0.1], [0.5, 0.5], "cat")
    assert verdicts.integration_verdict([1.0], [1.0], "cat") is None


def entry(key, c):
    return lesson.Entry(key, key, c)


def test_cast_by_family_and_recipe_not_by_name():
    entries = [entry("d", card("resnet20", jitter=(0.7, 1.4))), entry("e", card("resnet20", jitter=(0.5, 2.0))),
               entry("f", card("wsms_resnet20", jitter=(0.5, 2.0))), entry("a", card("resnet20")),
               entry("b", card("wsms_resnet20")), entry("c", card("ms_resnet20"))]  # jittered first: not a tie
    c = lesson.cast(entries)
    assert [x.key for x in (c.baseline, c.wsms, c.ms, c.baseline_jitter, c.wsms_jitter)] == list("abcef")
    assert not lesson.cast([]).any


def test_lesson_sentences_follow_the_cards():
    base = entry("resnet20", card("resnet20", acc=(0.4, 0.9, 0.2)))
    wsms = entry("wsms", card("wsms_resnet20", vs_block(-0.01, (-0.02, -0.005), 0.02, (0.01, 0.03))))
    jit = entry("jit", card("resnet20", vs_block(0.0, (-0.01, 0.01), 0.15, (0.14, 0.16)), jitter=(0.5, 2.0)))
    c = lesson.cast([base, wsms, jit])
    assert "right 90.0% of the time at 1x, but 40.0% at 0.5x and 20.0% at 2x" in lesson.baseline_drop(c.baseline)
    assert "+15.00 points" in lesson.jitter_verdict(c) and "+2.00 points: scale jitter moves it more" in \
        lesson.jitter_verdict(c)
    paper = lesson.paper_verdict(c)
    assert "+0.25 points above ResNet-110" in paper and "**wsms** at -1.00 points" in paper
    assert "on resnet20, wsms_resnet20 instead" in paper  # the registry models, from the cards
    assert "not measured ours" in lesson.paper_verdict(lesson.cast([base]))
    rows = lesson.paper_rows(c)
    assert rows[0]["the paper's accuracy (%)"] == 93.39 and rows[0]["our accuracy at zoom 1 (%)"] == 90.0
    assert rows[1]["our network"] == "-"  # no MS-Net here
    assert lesson.jitter_verdict(lesson.cast([base, wsms])) is None
    assert lesson.study_answers(c, [base, wsms]) is None  # no card holds a scale_study block


def test_a_scale_study_in_a_card_is_reported_not_ignored():
    base = entry("resnet20", card("resnet20"))
    studied = lesson.Entry("wsms", "wsms", card("wsms_resnet20").with_block("scale_study", {"version": 0}))
    found = lesson.study_answers(lesson.cast([base, studied]), [base, studied])
    assert found and all(isinstance(q, str) and isinstance(a, str) and a for q, a in found)


def _summary(k_base, k_wsms, diff=0.01, ci=(0.004, 0.016), sd=0.003):
    def arm(name, model, k):
        return {"name": name, "model": model, "regime": "none", "seeds": list(range(k)), "zooms": [0.5, 1.0, 2.0],
                "val_acc": [0.4, 0.9, 0.2],
                "spread": {"zoom_1": sd if k >= 2 else None, "outside_mean": 3 * sd if k >= 2 else None}}
    measured = k_base >= 2 and k_wsms >= 2
    c = {"id": "wsms-baseline/none/inside", "question": 1, "what": "WSMS - baseline", "zooms": [1.0], "diff": diff,
         "ci": list(ci), "seeds": {"wsms_resnet20": k_wsms, "resnet20": k_base},
         "spread": "measured" if measured else "one seed: spread not measured",
         "settled": measured and (ci[0] > 0 or ci[1] < 0)}
    return {"format": "wsms-viz scale study", "version": 1, "he_et_al_sd": 0.0016,
            "arms": [arm("resnet20", "resnet20", k_base), arm("wsms_resnet20", "wsms_resnet20", k_wsms)],
            "contrasts": [c]}


def test_study_verdicts_read_the_seeds():
    one = _summary(1, 1)
    assert "not measured" in verdicts.seed_spread_verdict(one) and "0.16" in verdicts.seed_spread_verdict(one)
    assert verdicts.settled_verdict(one).startswith("Of the study's 1 contrasts, 0 are settled; 1 compares an arm "
                                                    "trained with one seed")
    three = _summary(3, 3)
    assert "0.30-0.30 points at zoom 1 and 0.90-0.90 on average at the unseen zooms" in \
        verdicts.seed_spread_verdict(three)
    assert verdicts.settled_verdict(three) == "Of the study's 1 contrasts, 1 is settled."
    wide = _summary(3, 3, ci=(-0.002, 0.02))
    assert "in 1 the interval over seeds and images includes 0" in verdicts.settled_verdict(wide)
    gap = verdicts.paper_gap_verdict(three)
    assert "+0.25 points above ResNet-110" in gap and "Our ResNet-110 pair: not run yet." in gap
    assert "+1.00 points (95% CI +0.40 to +1.60, 3 seeds per arm), settled" in gap
    assert "one seed per arm, so the seed spread is not measured" in verdicts.paper_gap_verdict(one)
    for f in (verdicts.seed_spread_verdict, verdicts.settled_verdict, verdicts.paper_gap_verdict,
              verdicts.study_verdicts):
        assert f(None) is None
    assert len(verdicts.study_verdicts(three)) == 4
