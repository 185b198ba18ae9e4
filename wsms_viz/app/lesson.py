"""The Lesson page: the paper's story in seven short steps on the live models.

Each step has one thing to try, the measured answer, one plain take-home sentence, the
words it uses explained (:mod:`.glossary`) and a button that opens the page showing the
topic in full on the same photo, zoom and presenter view. A closing conclusion, computed
from the cards, sums the lesson up. Every number of ours is read at run time from the checkpoints' cards (the
evaluator's ``scale_robustness`` curves and comparisons, a study's ``scale_study`` block)
or computed live on one fixed photo; only the paper's Table 2 figures are typed in, and
they are labelled as the paper's. With no checkpoint, every step still renders and says
that there is no trained model here.

The models play roles (:class:`Cast`), found by registry family and recipe, never by
name: the baseline, the WSMS-Net, the MS-Net (each trained without scale jitter), and the
baseline and WSMS-Net trained with the widest scale jitter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from ..analysis import attribution, integration, receptive_field
from ..analysis.features import aligned_maps, map_similarity, shared_filter_responses
from ..analysis.stage_view import stage_views
from ..cards import Card, CheckpointError, curve_of, read_card_file
from ..models import model_family
from ..zoom import normalize
from . import catalog, figures, glossary, navigation, predict, presenter, robustness, ui, verdicts
from .images import load_sample
from .plain import md  # every name from a card or a folder, shown as plain text

PHOTO = "chelsea (a cat)"  # a bundled photo of a CIFAR-10 class: the lesson needs no dataset
PHOTO_CLASS = "cat"
CENTER = (0.5, 0.5)
SHARE_ZOOMS = (0.5, 1.0, 2.0)  # where step 6 measures the stage shares
NO_MODEL = "No trained model here: this step needs a trained checkpoint."
NO_MODEL_AT_ALL = ("No trained model here: the app's checkpoint folder holds no trained checkpoint, so each step "
                   f"below says what it needs. Train one with `{catalog.TRAIN_HINT}` (and the baseline, "
                   "`resnet20`), then measure them with `python -m wsms_viz.evaluation.evaluate`.")
NOT_EVALUATED = "Not measured yet: run `python -m wsms_viz.evaluation.evaluate` on the checkpoints."

# The paper's Table 2, CIFAR-10 with augmentation: test error (%), mean of five runs. These
# are the paper's numbers, quoted; ours come from the cards.
PAPER_TABLE2_C10 = (("ResNet-110", 6.61), ("MS-ResNet-110 (1x1 conv)", 6.41), ("WSMS-ResNet-110 (1x1 conv)", 6.36))

PAGES = {  # step topic -> the page that shows it in full
    "zoom": "zoom_compare", "fields": "receptive_fields", "features": "feature_maps",
    "attributions": "attributions", "integration": "integration", "robustness": "scale_robustness",
    "architecture": "architecture",
}


class Entry(NamedTuple):
    """A checkpoint as the card-reading helpers want it: ``.label``, ``.card``, ``.key``."""

    key: str
    label: str
    card: Card


@dataclass
class Cast:
    """Which checkpoint plays which role in the lesson (None: there is none)."""

    baseline: Entry | None = None
    wsms: Entry | None = None
    ms: Entry | None = None
    baseline_jitter: Entry | None = None
    wsms_jitter: Entry | None = None
    unreadable: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return any((self.baseline, self.wsms, self.ms, self.baseline_jitter, self.wsms_jitter))

    @property
    def entries(self) -> list[Entry]:
        return [e for e in (self.baseline, self.wsms, self.ms, self.baseline_jitter, self.wsms_jitter) if e]


@dataclass
class Context:
    """What every step reads: the roles, every readable checkpoint, the zoom picked in
    step 1, whether presenter view is on, and what the current step has said so far (for
    its list of words)."""

    cast: Cast
    entries: list[Entry]
    zoom: float = 1.0
    presenter: bool = False
    root: Path | None = None  # the checkpoint folder (the study's results lie beside it)
    step: int = 0
    said: list[str] = field(default_factory=list)


def _vs_baseline(e: Entry | None):
    """The evaluator's comparison of ``e`` with the baseline, from its card (None: not measured)."""
    curve = curve_of(e.card) if e else None
    return curve.vs_baseline if curve else None


def read_entries(root: str | Path) -> tuple[list[Entry], list[str]]:
    """Every checkpoint under ``root`` with a readable card (teaching order), and the
    messages of those that cannot be read."""
    entries, errors = [], []
    for key in catalog.available(root):
        if key.startswith(catalog.UNTRAINED_PREFIX):
            continue
        try:
            card = read_card_file(Path(key) / "card.json")
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if card.epochs_trained >= 1:
            entries.append(Entry(key, catalog.label_of(key), card))
    return entries, errors


def _jitter_width(card: Card) -> float:
    j = card.scale_jitter
    return math.log(j[1] / j[0]) if j else 0.0


def cast(entries: list[Entry]) -> Cast:
    """The roles, by registry family and recipe: without scale jitter for the three
    kinds, the widest jitter range for the two jitter roles; the first in teaching order
    wins a tie."""
    def family(e: Entry) -> str | None:
        try:
            return model_family(e.card.model)
        except ValueError:
            return None

    def plain(fam: str) -> Entry | None:
        return next((e for e in entries if family(e) == fam and not e.card.scale_jitter), None)

    def jittered(fam: str) -> Entry | None:
        found = [e for e in entries if family(e) == fam and e.card.scale_jitter]
        return max(found, key=lambda e: _jitter_width(e.card), default=None)

    return Cast(plain("baseline"), plain("wsms"), plain("ms"), jittered("baseline"), jittered("wsms"))


# --- words -----------------------------------------------------------------------------------

def network_name(model: str | None) -> str:
    """A registry model as a reader knows it: ``resnet20`` -> ``ResNet-20``.

    Example:
        >>> network_name("resnet20"), network_name("vgg11")
        ('ResNet-20', 'vgg11')
    """
    m = re.fullmatch(r"resnet(\d+)", model or "")
    return f"ResNet-{m.group(1)}" if m else (model or "the baseline")


def points(x: float) -> str:
    """An accuracy difference in points, without its sign: ``-0.0084`` -> ``'0.84'``."""
    return f"{100 * abs(x):.2f}"


def certainty(d) -> str:
    """How sure a difference is, in plain words, from its two intervals (a
    :class:`~wsms_viz.cards.Difference`): ``sure``, ``likely`` or ``unclear``."""
    if verdicts.excludes_zero(d.seed_aware_ci):
        return "sure"
    if verdicts.excludes_zero(d.ci):
        return "likely"
    return "unclear"


_HOW_SURE = {
    "sure": "larger than the chance differences between two trainings",
    "likely": "larger than chance on these images, but a second training run could still change it",
    "unclear": "too small to tell apart from chance",
}


# --- numbers, from the cards ---------------------------------------------------------------

def accuracy_at(entry: Entry | None, zoom: float) -> float | None:
    sr = curve_of(entry.card) if entry else None
    return sr.at_zoom(zoom) if sr else None


def baseline_drop(entry: Entry | None) -> str | None:
    """Step 1's measured answer: the baseline's val accuracy at zoom 1 and at the ends of
    the evaluator's sweep."""
    sr = curve_of(entry.card) if entry else None
    if sr is None or sr.at_zoom_1 is None:
        return None
    lo, hi = min(sr.zooms), max(sr.zooms)
    return (f"Over all the validation images, **{md(entry.label)}** is right {sr.at_zoom_1:.1%} of the time at "
            f"1x, but {sr.at_zoom(lo):.1%} at {lo:g}x and {sr.at_zoom(hi):.1%} at {hi:g}x.")


def kept_counts(sweeps, cls: str) -> dict[str, int]:
    """For each sweep, at how many zooms around 1x ``cls`` stays its top guess."""
    out = {}
    for s in sweeps:
        r = verdicts.kept_range(s.zooms, s.probs, s.classes, cls)
        out[s.label] = 0 if r is None else sum(r[0] - 1e-6 <= z <= r[1] + 1e-6 for z in s.zooms)
    return out


def photo_vs_dataset(c: Cast, counts: dict[str, int]) -> str:
    """Step 1: whether the photo's winner is the dataset's, and why one photo can disagree."""
    why = ("One photo is a single example: a network can be lucky or unlucky on it, so only many images show "
           "which network copes better with zoom.")
    vs = _vs_baseline(c.wsms)
    if vs is None or vs.mean is None or not c.baseline or not {c.baseline.label, c.wsms.label} <= counts.keys():
        return why + " Step 4 measures all the validation images."
    b, w = counts[c.baseline.label], counts[c.wsms.label]
    photo = 1 if w > b else -1 if w < b else 0
    data = 0 if certainty(vs.mean) == "unclear" else (1 if vs.mean.diff > 0 else -1)
    name = f"**{md(c.wsms.label)}**"
    if photo == 0:
        on_photo = f"On this photo {name} and **{md(c.baseline.label)}** keep *{PHOTO_CLASS}* equally long"
    else:
        on_photo = f"On this photo {name} keeps *{PHOTO_CLASS}* {'longer' if photo > 0 else 'less long'}"
    on_data = {1: "better", -1: "worse", 0: "no better and no worse, as far as we can tell"}[data]
    if photo != data:
        return f"{on_photo}, yet over all the validation images it copes {on_data} with zoom (step 4). {why}"
    return (f"{on_photo}, and over all the validation images it copes {on_data} with zoom too (step 4). They "
            f"agree here, but they need not: {why[0].lower()}{why[1:]}")


class Clause(NamedTuple):
    """One claim of the conclusion: in plain words, and its number with how sure it is."""

    head: str
    detail: str


def wsms_result(c: Cast) -> Clause | None:
    """Did WSMS-Net make the baseline more robust to zoom? From the card's comparison
    averaged over the evaluator's zooms; None when not measured."""
    sr = curve_of(c.wsms.card) if c.wsms else None
    vs = sr.vs_baseline if sr else None
    if vs is None or vs.mean is None:
        return None
    base = network_name(c.baseline.card.model if c.baseline else None)
    d, how = vs.mean, certainty(vs.mean)
    if how != "unclear" and d.diff > 0:
        head = f"WSMS-Net made {base} more robust to zoom here"
    elif how == "unclear":
        head = f"WSMS-Net did not measurably change how well {base} copes with zoom here"
    else:
        head = f"WSMS-Net did not make {base} more robust to zoom here"
    return Clause(head, f"{points(d.diff)} points {'more' if d.diff > 0 else 'less'} accurate averaged over zooms "
                        f"{min(sr.zooms):g}x to {max(sr.zooms):g}x, a difference {_HOW_SURE[how]}")


def wsms_helped(c: Cast) -> bool:
    r = curve_of(c.wsms.card) if c.wsms else None
    d = r.vs_baseline.mean if r and r.vs_baseline else None
    return bool(d and d.diff > 0 and certainty(d) != "unclear")


def _inside(sr, jitter: tuple[float, float]) -> bool:
    return jitter[0] - 1e-6 <= min(sr.zooms) and max(sr.zooms) <= jitter[1] + 1e-6


def jitter_result(c: Cast, after_wsms: bool = True) -> Clause | None:
    """Did training with scale jitter make the baseline more robust, over the zooms it was
    trained on? None when not measured. ``after_wsms``: the clause follows WSMS-Net's
    in one sentence ("scale jitter did"); else it stands alone (step 5)."""
    j = c.baseline_jitter
    sr = curve_of(j.card) if j else None
    vs = sr.vs_baseline if sr else None
    if vs is None or vs.mean is None:
        return None
    lo, hi = j.card.scale_jitter
    inside = _inside(sr, (lo, hi))
    where = (f"inside its range ({lo:.2g}x to {hi:.2g}x)" if inside
             else f"over zooms {min(sr.zooms):g}x to {max(sr.zooms):g}x (it was trained on {lo:.2g}x to {hi:.2g}x)")
    how, d = certainty(vs.mean), vs.mean
    base = network_name(c.baseline.card.model if c.baseline else j.card.model)
    helped = wsms_helped(c)
    if how != "unclear" and d.diff > 0:
        head = ("so did scale jitter" if helped else "scale jitter did") if after_wsms else \
            f"Scale jitter made {base} more robust to zoom"
    elif how == "unclear":
        head = "scale jitter made no difference we can measure" if after_wsms else \
            f"Scale jitter did not measurably change how well {base} copes with zoom"
    else:
        head = ("scale jitter did not either" if not helped else "scale jitter did not") if after_wsms else \
            f"Scale jitter did not make {base} more robust to zoom"
    zooms = "the zooms it was trained on" if inside else "those zooms"
    return Clause(f"{head}, {where}", f"{points(d.diff)} points {'more' if d.diff > 0 else 'less'} accurate "
                                      f"averaged over {zooms}, a difference {_HOW_SURE[how]}")


def wsms_clause(c: Cast) -> str | None:
    """Step 4's take-home: :func:`wsms_result` as one sentence."""
    r = wsms_result(c)
    return f"{r.head}: {r.detail}." if r else None


def jitter_clause(c: Cast) -> str | None:
    """Step 5's take-home: :func:`jitter_result` as a sentence of its own."""
    r = jitter_result(c, after_wsms=False)
    return f"{r.head}: {r.detail}." if r else None


PAPER_NEVER_ZOOMED = "the paper itself never tested zoomed images"  # a fact about the paper (its section 4)


def conclusion(c: Cast) -> tuple[str, str]:
    """The lesson's closing sentence, each clause from the cards (or saying it is not
    measured yet) and ending with what the paper tested; then the numbers behind it."""
    w, j = wsms_result(c), jitter_result(c)
    heads = [w.head if w else "whether WSMS-Net makes a CNN more robust to zoom is not measured here yet",
             j.head if j else "scale jitter is not measured here yet", PAPER_NEVER_ZOOMED]
    sentence = "; ".join(heads)
    details = [f"WSMS-Net: {w.detail}." if w else "", f"Scale jitter: {j.detail}." if j else ""]
    return sentence[0].upper() + sentence[1:] + ".", " ".join(x for x in details if x)


def jitter_verdict(c: Cast) -> str | None:
    """Step 5's statistics: what training with scale jitter changes against the same
    baseline, over the zooms (the card's comparison), beside what the WSMS-Net changes."""
    j = c.baseline_jitter
    vs = _vs_baseline(j)
    if vs is None or vs.mean is None:
        return None
    lo, hi = j.card.scale_jitter
    text = (f"Trained on images zoomed at random between {lo:.2g}x and {hi:.2g}x, **{md(j.label)}** differs from "
            f"**{md(vs.baseline)}** by {verdicts.comparison_clause(vs.mean)} averaged over zooms")
    w = _vs_baseline(c.wsms)
    if w is not None and w.mean is not None:
        bigger = "more" if abs(vs.mean.diff) > abs(w.mean.diff) else "less"
        text += (f"; the WSMS-Net **{md(c.wsms.label)}** changes it by {verdicts.pts(w.mean.diff)} points: "
                 f"scale jitter moves it {bigger}")
    return text + "."


def jitter_plain(c: Cast) -> str | None:
    """Step 5's answer in one plain sentence, from the two curves."""
    j, b = c.baseline_jitter, c.baseline
    sj, sb = (curve_of(j.card) if j else None), (curve_of(b.card) if b else None)
    if sj is None or sb is None or sj.zooms != sb.zooms:
        return None
    span = f"{min(sj.zooms):g}x to {max(sj.zooms):g}x"
    text = (f"Averaged over zooms {span}, **{md(j.label)}** is right {sj.mean_acc:.1%} of the time, "
            f"**{md(b.label)}** {sb.mean_acc:.1%}: "
            f"{points(sj.mean_acc - sb.mean_acc)} points {'more' if sj.mean_acc > sb.mean_acc else 'less'}")
    if sj.at_zoom_1 is not None and sb.at_zoom_1 is not None:
        d = sj.at_zoom_1 - sb.at_zoom_1
        text += f"; at 1x it is {points(d)} points {'more' if d > 0 else 'less'} accurate"
    return text + "."


def jitter_pair_sentence(c: Cast) -> str | None:
    """Both trained with jitter: the WSMS-Net's mean over zooms against the baseline's
    (from the two curves; the cards hold no interval for this pair)."""
    if not (c.baseline_jitter and c.wsms_jitter):
        return None
    a, b = curve_of(c.wsms_jitter.card), curve_of(c.baseline_jitter.card)
    if a is None or b is None or a.zooms != b.zooms:
        return None
    return (f"Both trained with jitter, **{md(c.wsms_jitter.label)}** averages {a.mean_acc:.1%} over the zooms "
            f"and **{md(c.baseline_jitter.label)}** {b.mean_acc:.1%} ({verdicts.pts(a.mean_acc - b.mean_acc)} "
            "points; no interval in the cards for this pair).")


def study_answers(c: Cast, entries: list[Entry], root: str | Path | None = None) -> list[tuple[str, str]] | None:
    """What the scale study found: from its results over seeds (``results/study.json``
    beside ``root``) when they ship, else from the cards that hold one (``scale_study``,
    one seed each); None when neither does. The sentences are the study module's own,
    computed from the stored numbers, each ending settled or not settled."""
    if root is not None:
        from . import study_view

        summary, _ = study_view.load_study(root)
        if summary is not None:
            from ..evaluation.study import answers

            return answers(summary)
    cards = {e.label: e.card.to_dict() for e in entries}
    if not any("scale_study" in card for card in cards.values()):
        return None
    try:
        from ..evaluation.study import answers
    except ImportError:
        return [("Scale study", "The cards hold a scale study; the Scale robustness page shows it.")]
    try:
        return answers(cards)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        return [("Scale study", f"The cards' scale study cannot be read ({e}).")]


PAPER_COLUMNS = ("the paper's network", "the paper's accuracy (%)", "our accuracy at zoom 1 (%)", "our network")
# The headers drawn: short, so at 1024 px every column fits, the two accuracies side by side.
PAPER_HEADERS = ("the paper's network", "paper (%)", "ours at 1x (%)", "our network")


def paper_rows(c: Cast) -> list[dict]:
    """The paper's Table 2 (CIFAR-10+) beside our models at zoom 1, accuracy in %; the two
    accuracies side by side."""
    ours = (c.baseline, c.ms, c.wsms)
    rows = []
    for (name, err), e in zip(PAPER_TABLE2_C10, ours, strict=True):
        acc = accuracy_at(e, 1.0)
        rows.append(dict(zip(PAPER_COLUMNS, (name, round(100 - err, 2),
                                             round(100 * acc, 2) if acc is not None else None,
                                             e.label if e else "-"), strict=True)))
    return rows


def paper_verdict(c: Cast) -> str:
    """Step 7: the paper's gain against ours (at zoom 1, with our interval)."""
    (base, base_err), _, (wsms, wsms_err) = PAPER_TABLE2_C10
    text = (f"The paper reports {wsms} {base_err - wsms_err:+.2f} points above {base} (mean of five runs, "
            "no interval given)")
    vs = _vs_baseline(c.wsms)
    if vs is None or vs.at_zoom_1 is None:
        return text + "; we have not measured ours yet."
    return (text + f"; we measure **{md(c.wsms.label)}** at {verdicts.comparison_clause(vs.at_zoom_1)} against "
            f"**{md(vs.baseline)}** at zoom 1, on {_networks(c)} instead of the paper's 110-layer ResNets.")


def paper_take_home(c: Cast) -> str:
    """Step 7's take-home: the paper's gain (its number, labelled) and ours at zoom 1, in words."""
    (_, base_err), _, (_, wsms_err) = PAPER_TABLE2_C10
    paper = (f"The paper's gain is small ({base_err - wsms_err:.2f} points at the training size, in its own "
             "Table 2) and comes without an interval")
    vs = _vs_baseline(c.wsms)
    if vs is None or vs.at_zoom_1 is None:
        return paper + "; ours is not measured yet, so we cannot say whether we see it too."
    d = vs.at_zoom_1
    return (paper + f"; ours at zoom 1 is {points(d.diff)} points {'more' if d.diff > 0 else 'less'} accurate, a "
            f"difference {_HOW_SURE[certainty(d)]}. A gain this size needs many runs before anyone believes it.")


def _networks(c: Cast) -> str:
    """The registry models behind the lesson's checkpoints (``resnet20, wsms_resnet20``):
    registry names (the roles are found by them), so safe as markdown as they are."""
    names = dict.fromkeys(e.card.model for e in (c.baseline, c.ms, c.wsms) if e)
    return ", ".join(names) or "no checkpoint"


def parameters_sentence(models: dict, c: Cast) -> str | None:
    """Step 2: what sharing saves, counted on the loaded models (baseline, WSMS, MS)."""
    counts = {label: sum(p.numel() for p in m.model.parameters()) for label, m in models.items() if m is not None}
    if not (c.baseline and c.wsms) or c.baseline.label not in counts or c.wsms.label not in counts:
        return None
    base = counts[c.baseline.label]

    def more(label: str) -> str:
        return f"**{md(label)}** {counts[label]:,} ({counts[label] / base - 1:+.0%})"

    text = (f"Parameters: **{md(c.baseline.label)}** {base:,}; sharing its filters over three stages, "
            f"{more(c.wsms.label)}")
    if c.ms and c.ms.label in counts:
        text += f"; with separate filters per stage, {more(c.ms.label)}"
    return text + "."


def _pixels(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def filter_count(model) -> int:
    """Channels of stage 1's first block (how many filters step 2 can show)."""
    view = stage_views(model)[0]
    with torch.no_grad():
        return int(view.block_maps(torch.zeros(1, 3, 32, 32))[0].shape[1])


def fig1_correlation(model, image: torch.Tensor) -> float:
    """Fig. 1 measured on one image: the per-channel correlation between stage 2's
    block-1 maps of ``image`` and stage 1's block-1 maps of ``image`` at half size
    (:func:`wsms_viz.analysis.features.aligned_maps`), averaged over the channels."""
    return map_similarity(*aligned_maps(model, image, image, block=0, stage=0, gap=1))["correlation"]


def fig1_sentence(corr: dict[str, float], c: Cast) -> str | None:
    """Step 2's measured answer: the correlation of the WSMS-Net against the MS-Net's."""
    w = corr.get(c.wsms.label) if c.wsms else None
    if w is None or not math.isfinite(w):
        return None
    text = (f"Measured on this photo: stage 2's maps of the photo and stage 1's maps of the photo at half size "
            f"have a correlation of {w:.2f} in **{md(c.wsms.label)}** (shared filters)")
    m = corr.get(c.ms.label) if c.ms else None
    if m is not None and math.isfinite(m):
        text += f" and {m:.2f} in **{md(c.ms.label)}** (separate filters)"
    return text + " (each channel of block 1 compared with the same channel, then averaged)."


def fig1_take_home(corr: dict[str, float], c: Cast) -> str:
    w = corr.get(c.wsms.label) if c.wsms else None
    m = corr.get(c.ms.label) if c.ms else None
    if w is None or not math.isfinite(w):
        return ("WSMS-Net's idea: one set of filters, run on the image at three sizes, so a small stage can "
                "recognise a close-up the way the full-size stage recognises a long shot.")
    if m is None or not math.isfinite(m):
        return (f"With shared filters, stage 2 responds to the half-size photo with a correlation of {w:.2f} to "
                "what stage 1 sees in the full photo (1 would be the same pattern, 0 unrelated).")
    if w - m >= 0.1:
        return (f"Sharing filters works as the paper's Fig. 1 draws it: on this photo stage 2 sees the half-size "
                f"photo much as stage 1 sees the full one (correlation {w:.2f}), while separate filters do not "
                f"({m:.2f}).")
    return (f"On this photo, sharing filters does not make stage 2 see like stage 1 more than separate filters "
            f"do (correlation {w:.2f} against {m:.2f}), unlike the paper's Fig. 1.")


# --- live computations, cached -------------------------------------------------------------

def photo():
    return load_sample(PHOTO)


def load(entry: Entry | None) -> catalog.LoadedModel | None:
    if entry is None:
        return None
    models, errors = ui.load_models([entry.key])
    for e in errors:
        st.error(md(ui.public(e)))
    return models[0] if models else None


def _photo_input(zoom: float = 1.0) -> torch.Tensor:
    """The 32x32 input the networks see of the photo at ``zoom``, unnormalised."""
    img = photo()
    return torch.from_numpy(ui.zoom_inputs(img.key, CENTER, img.pixels)[predict.nearest(predict.ZOOMS, zoom)].copy())


@st.cache_data(max_entries=16, show_spinner=False)
def _fig1(key: str, _m: catalog.LoadedModel) -> float:
    return fig1_correlation(_m.model, _photo_input(1.0))


@st.cache_data(max_entries=16, show_spinner="Attributing the answer to each stage ...")
def _stage_answer(key: str, zoom: float, _m: catalog.LoadedModel) -> tuple:
    """Step 6's numbers on the photo: Integrated Gradients' stage shares at ``zoom`` and at
    :data:`SHARE_ZOOMS` (the 32x32 inputs of the zoom page), the lesion drops and the
    stages' parts of the pooled feature, for the photo's class."""
    img = photo()
    stack = torch.from_numpy(ui.zoom_inputs(img.key, CENTER, img.pixels))

    def at(z: float) -> torch.Tensor:
        return normalize(stack[predict.nearest(predict.ZOOMS, z)], _m.mean, _m.std)

    target = _m.classes.index(PHOTO_CLASS) if PHOTO_CLASS in _m.classes else None
    attr = attribution.attribute_stages(_m.model, at(zoom), target)
    by_zoom = np.stack([attribution.attribute_stages(_m.model, at(z), attr.target).shares for z in SHARE_ZOOMS])
    contrib = integration.stage_contributions(_m.model, at(zoom), attr.target)
    return attr.shares, SHARE_ZOOMS, by_zoom, contrib.logit_drop, contrib.feature_shares, attr.target


def stages_take_home(factors, by_zoom) -> str:
    """Step 6's take-home, from the smaller stages' share at the smallest and largest zoom."""
    s = np.asarray(by_zoom, dtype=float)
    totals = s.sum(1)
    frac = np.where(totals > 0, s[:, 1:].sum(1) / np.where(totals > 0, totals, 1), 0.0)
    order = np.argsort(factors)
    f0, f1, a, b = factors[order[0]], factors[order[-1]], frac[order[0]], frac[order[-1]]
    if b - a >= verdicts.SHARE_STEP:
        return (f"On this photo the answer moves to the smaller stages as the cat grows ({a:.0%} at {f0:g}x, "
                f"{b:.0%} at {f1:g}x), as the paper's idea predicts; one photo, so check others.")
    return (f"On this photo the answer does not move to the smaller stages as the cat grows ({a:.0%} at {f0:g}x, "
            f"{b:.0%} at {f1:g}x): here the stages do not split the work by size the way the idea hoped.")


# --- how the steps say things --------------------------------------------------------------

def say(ctx: Context, text: str | None, where=None) -> None:
    """A sentence of the step (markdown of our own; names in it go through :func:`md`)."""
    if text:
        ctx.said.append(text)
        (where or st).markdown(text)


def verdict(ctx: Context, text: str | None) -> None:
    """A measured answer, drawn as the other pages draw theirs."""
    if text:
        ctx.said.append(text)
        verdicts.show(text)


TAKE_HOME = "Take-home:"


def take_home(ctx: Context, text: str) -> None:
    """The step's one plain sentence, in a box of its own, the same on every step; its
    words' definitions on hover."""
    ctx.said.append(text)
    terms = glossary.used_in(text)  # hover help: the words of this sentence, defined
    with st.container(border=True, key=f"lesson_takehome_{ctx.step}"):
        st.markdown(f":material/lightbulb: **{TAKE_HOME}** {text}",
                    help="  \n".join(glossary.lines(terms)) if terms else None)


def words(ctx: Context) -> None:
    """The glossary's definitions of the words this step used, in an expander."""
    used = glossary.used_in(" ".join(ctx.said))
    if used:
        with st.expander("Words used in this step: " + ", ".join(used), icon=":material/menu_book:"):
            for t in used:
                st.markdown(f"**{t}**: {glossary.TERMS[t]}")


def link_params(zoom: float) -> dict[str, str]:
    """The query parameters that open a page on the lesson's photo at ``zoom``."""
    return {"source": ui.SOURCES[1], "sample": PHOTO, "zoom": f"{zoom:.1f}", "cx": "0.5", "cy": "0.5"}


_GOTO = "_lesson_goto"  # the page a step button asked for, and the zoom, until the next run opens it


def _clicked(page_key: str, zoom: float, presenter_on: bool) -> None:
    """A step button's callback: the sidebar's values for the lesson's photo, zoom and
    presenter view, set in the session before any widget is drawn (a link's query
    parameters alone lose to the values a session already has); :func:`follow` then
    opens the page."""
    st.session_state.update(source=ui.SOURCES[1], sample=PHOTO, zoom=zoom, cx=0.5, cy=0.5)
    st.session_state[presenter.KEY] = presenter_on
    st.session_state[_GOTO] = (page_key, zoom)


def follow() -> None:
    """Opens the page a step button asked for, with the same values in its URL (the address
    bar then holds them, ready to copy; presenter view is added by its own toggle there)."""
    goto = st.session_state.pop(_GOTO, None)
    if goto and goto[0] in navigation.BY_KEY:
        st.switch_page(navigation.BY_KEY[goto[0]].path, query_params=link_params(goto[1]))


def _open(ctx: Context, topic: str) -> None:
    """A button that opens the topic's page on the lesson's photo at the lesson's zoom, in
    presenter view when the lesson is in it."""
    page = navigation.BY_KEY[PAGES[topic]]
    zoom = round(ctx.zoom, 1)
    st.button(f"Open {page.label} on this photo at {zoom:.1f}x", key=f"lesson_open_{ctx.step}_{page.key}",
              icon=":material/arrow_forward:", type="tertiary", on_click=_clicked, args=(page.key, zoom, ctx.presenter))


def _no_model() -> None:
    st.info(NO_MODEL, icon=":material/info:")


# --- the steps -----------------------------------------------------------------------------

def step_zoom(ctx: Context) -> None:
    """1. A CNN and scale; the zoom the reader picks is kept for step 6."""
    c = ctx.cast
    say(ctx, "A CNN learns what objects look like at the size they had in its training photos. **Try:** drag the "
             "zoom and watch each network's top guess for this photo of a cat.")
    z = ctx.zoom = st.slider("Zoom", ui.ZOOM_MIN, ui.ZOOM_MAX, 1.0, 0.1, key="lesson_zoom", format="%.1fx", **ui.LINK)
    models = [m for m in (load(c.baseline), load(c.wsms)) if m is not None]
    curve = curve_of(c.baseline.card) if c.baseline else None
    if not models:
        _no_model()
    else:
        img = photo()
        sweeps = ui.sweeps(img.key, CENTER, tuple(m.key for m in models), (), False, _pixels=img.pixels)
        # A row that wraps: the image keeps its width, each answer its own, so at 1024 px
        # nothing is drawn over anything else.
        with st.container(horizontal=True, key="lesson_guesses", gap="medium", vertical_alignment="center"):
            st.image(_pixels(_photo_input(z)), caption=f"what the networks see at {z:.1f}x (32x32)", width=160)
            for s in sweeps:
                cls, p = s.top(z, 1)[0]
                st.metric(md(s.label), md(cls), f"{p:.0%} sure", delta_color="off", delta_arrow="off", width=170)
        verdict(ctx, verdicts.zoom_verdict(sweeps, PHOTO_CLASS))
        say(ctx, baseline_drop(c.baseline) or NOT_EVALUATED)
        say(ctx, photo_vs_dataset(c, kept_counts(sweeps, PHOTO_CLASS)))
    if curve is not None and curve.at_zoom_1 is not None:
        lo, hi = min(curve.zooms), max(curve.zooms)
        numbers = (f"on the validation images {network_name(c.baseline.card.model)} is right {curve.at_zoom_1:.0%} "
                   f"of the time at 1x, {curve.at_zoom(lo):.0%} at {lo:g}x and {curve.at_zoom(hi):.0%} at {hi:g}x")
        best = curve.at_zoom_1 >= max(curve.val_acc) - 1e-9
        take_home(ctx, (f"An ordinary CNN is best at the size it was trained on: {numbers}." if best else
                        f"Zoom changes how often an ordinary CNN is right: {numbers}."))
    else:
        take_home(ctx, "A CNN is best at the size of the objects in its training photos (not measured here yet); "
                       "one photo is an example, only many images are evidence.")
    words(ctx)
    _open(ctx, "zoom")


def step_idea(ctx: Context) -> None:
    """2. The idea: the same filters on the image at 1/2 and 1/4 (Fig. 1 and 2)."""
    c = ctx.cast
    say(ctx, "WSMS-Net runs **the same filters** on the photo, on the photo at half size and at a quarter size "
             "(stages 1, 2, 3), and joins what they find before deciding (paper, Fig. 1 and 2). A close-up at half "
             "size looks like a long shot to stage 2. **Try:** pick a filter and see it respond to the three sizes.")
    m = load(c.wsms)
    if m is None:
        _no_model()
        take_home(ctx, fig1_take_home({}, c))
        words(ctx)
        return
    raw = _photo_input(1.0)
    x = normalize(raw, m.mean, m.std)
    with st.container(horizontal=True, key="lesson_sizes"):
        for s, view in enumerate(stage_views(m.model)[:3]):
            seen = view.scale_input(raw.unsqueeze(0))[0]
            st.image(_pixels(seen), caption=f"stage {s + 1} sees {seen.shape[-1]}x{seen.shape[-1]}", width=128)
    n = filter_count(m.model)
    channel = st.slider("Filter (channel of block 1)", 0, n - 1, 0, key="lesson_channel")
    maps = shared_filter_responses(m.model, x, block=0, channel=channel)
    ui.chart(figures.shared_filter_figure(maps, channel, 0), key="lesson_filter")
    corr = {e.label: _fig1(lm.key, lm) for e in (c.wsms, c.ms) if e and (lm := load(e)) is not None}
    verdict(ctx, fig1_sentence(corr, c))
    say(ctx, parameters_sentence({e.label: load(e) for e in (c.baseline, c.wsms, c.ms) if e}, c))
    take_home(ctx, fig1_take_home(corr, c))
    words(ctx)
    _open(ctx, "features")


def step_fields(ctx: Context) -> None:
    """3. What each stage sees: the receptive fields after block 1 (from the layers alone)."""
    c = ctx.cast
    say(ctx, "The same filter on a half-size image covers **twice as many pixels** of the original. **Try:** "
             "compare the boxes: the part of the photo one unit of each stage sees after the first block.")
    m = load(c.wsms)
    if m is None:
        _no_model()
        take_home(ctx, "Each time the image is halved, the same filter covers twice as much of the original "
                       "photo, so the small stages can take in a big object whole.")
        words(ctx)
        return
    fields = receptive_field.block_fields(m.model)
    last = fields[0][-1].map_size
    boxes = receptive_field.field_boxes(m.model, (last // 2, last // 2), block=0)
    fig = figures.field_boxes_figure(_photo_input(1.0), boxes, height=320)
    fig.layout.annotations = ()  # its note is said below the figure instead (it crossed a box)
    ui.chart(fig, key="lesson_fields")
    sizes = ", ".join(f"{b.size}x{b.size} pixels through stage {b.stage + 1}" for b in boxes)
    jumps = ", ".join(str(b.jump) for b in boxes)
    text = f"After the first block, one unit at the centre sees {sizes} (the boxes; their jump is {jumps} pixels)."
    big = [b for b in boxes if b.exceeds_image]
    if big:
        text += (" A dashed box is larger than the 32x32 image and is drawn whole, past the image's edges: the grey "
                 "around the photo stands for the zeros the network sees there.")
    say(ctx, text)
    ratio = [boxes[i + 1].size / boxes[i].size for i in range(len(boxes) - 1)]
    if ratio and all(abs(r - 2) < 0.01 for r in ratio):
        take_home(ctx, "Each time the image is halved, the same filter covers twice as much of the original photo ("
                       + " -> ".join(f"{b.size} px" for b in boxes) + "), so the small stages see big objects whole.")
    else:
        take_home(ctx, "The smaller the image a stage sees, the more of the original photo one filter covers ("
                       + " -> ".join(f"{b.size} px" for b in boxes) + ").")
    words(ctx)
    _open(ctx, "fields")


def step_curves(ctx: Context) -> None:
    """4. Does it work? The zoom curves of the three kinds, and the verdict."""
    c = ctx.cast
    say(ctx, "The paper itself never tested zoomed images: it measured accuracy at the training size only (step 7). "
             "Here the evaluator zoomed **every** validation image and measured each network. **Try:** hover the "
             "curves: a network that copes with zoom keeps a flatter one.")
    shown = [e for e in (c.baseline, c.wsms, c.ms) if e]
    if not shown:
        _no_model()
    else:
        curves, missing = robustness.accuracy_curves(shown)
        if curves:
            ui.chart(robustness.accuracy_figure(curves), key="lesson_curves")
        means = [(e, sr) for e in shown if (sr := curve_of(e.card)) is not None]
        if means:
            say(ctx, "Averaged over the zooms, " + ", ".join(
                f"**{md(e.label)}** is right {sr.mean_acc:.1%} of the time" if i == 0 else
                f"**{md(e.label)}** {sr.mean_acc:.1%}" for i, (e, sr) in enumerate(means)) + ".")
        sentence = verdicts.robustness_verdict([e for e in (c.wsms, c.ms) if e])
        if sentence:
            with st.expander("The statistics behind this (the 95% interval)", icon=":material/functions:"):
                ctx.said.append(sentence)
                verdicts.show(sentence)
        if missing or not sentence:
            say(ctx, NOT_EVALUATED)
    take_home(ctx, wsms_clause(c) or "Whether WSMS-Net copes better with zoom is not measured here yet.")
    words(ctx)
    _open(ctx, "robustness")


def step_jitter(ctx: Context) -> None:
    """5. What does work: scale jitter; the statistics and the scale study in an expander."""
    c, entries = ctx.cast, ctx.entries
    say(ctx, "Scale jitter: show the network zoomed photos while it trains, so it learns objects at many sizes. "
             "**Try:** compare the jittered curve with the plain baseline's.")
    if not c.baseline_jitter:
        st.info("No checkpoint trained with scale jitter here." if c.any else NO_MODEL, icon=":material/info:")
    else:
        shown = [e for e in (c.baseline, c.baseline_jitter, c.wsms_jitter) if e]
        curves, _ = robustness.accuracy_curves(shown)
        if curves:
            ui.chart(robustness.accuracy_figure(curves), key="lesson_jitter")
        say(ctx, jitter_plain(c))
    take_home(ctx, jitter_clause(c) or "Whether scale jitter helps is not measured here yet.")
    found = study_answers(c, entries, ctx.root)
    with st.expander("The statistics behind this: intervals, seeds and the scale study", icon=":material/functions:"):
        for text in (jitter_verdict(c), jitter_pair_sentence(c)):
            if text:
                ctx.said.append(text)
                st.markdown(text)
        say(ctx, "**The scale study** (WSMS-Net and the baseline, each with and without jitter, and a "
                 "scale-channel network: another design for scale):")
        if found is None:
            st.markdown("Not measured yet: no card holds a `scale_study` block.")
        else:
            for question, answer in found:
                ctx.said.append(f"{question} {answer}")
                st.markdown(f"- *{question}* {md(answer)}")
    words(ctx)
    _open(ctx, "robustness")


def step_stages(ctx: Context) -> None:
    """6. Which stage carries the answer: attributions and lesions, on the photo."""
    c, zoom = ctx.cast, ctx.zoom
    say(ctx, f"Which stage did the WSMS-Net use for **{PHOTO_CLASS}**? Integrated Gradients splits the answer "
             "over the stages (an attribution); switching a stage off (a lesion) shows what it was worth. **Try:** "
             "change the zoom in step 1 and come back.")
    m = load(c.wsms)
    if m is None:
        _no_model()
        take_home(ctx, "Attribution and lesions ask the same question two ways: which stage did the work?")
        words(ctx)
        return
    shares, factors, by_zoom, drop, feat, target = _stage_answer(m.key, zoom, m)
    left, right = st.columns(2)
    ui.chart(figures.stage_bars(shares, f"share of the attribution at {zoom:.1f}x", "share", percent=True),
             key="lesson_shares", where=left)
    lost = "score lost when the stage is off"
    ctx.said.append(f"{lost} (logit drop)")  # the chart's words, for the step's list
    ui.chart(figures.stage_bars(drop, lost, "logit drop"), key="lesson_lesions", where=right)
    verdict(ctx, verdicts.attribution_verdict(shares, zoom))
    verdict(ctx, verdicts.shares_move_verdict(factors, by_zoom))
    verdict(ctx, verdicts.integration_verdict(drop, feat, m.classes[target]))
    take_home(ctx, stages_take_home(factors, by_zoom))
    words(ctx)
    _open(ctx, "attributions")
    _open(ctx, "integration")


def step_paper(ctx: Context) -> None:
    """7. What the paper claimed, and what we measured."""
    c = ctx.cast
    ours = (f"here there is one checkpoint of each kind ({_networks(c)})" if any((c.baseline, c.ms, c.wsms))
            else "here there is no trained checkpoint of these kinds yet")
    say(ctx, "The paper trained each 110-layer network five times on CIFAR-10 and reports the mean error at the "
             f"training size; {ours}. **Try:** compare the two accuracy columns: the paper's, and ours at zoom 1 "
             "(1x).")
    st.dataframe(paper_rows(c), hide_index=True, column_config={
        PAPER_COLUMNS[0]: st.column_config.TextColumn(PAPER_HEADERS[0]),
        PAPER_COLUMNS[1]: st.column_config.NumberColumn(PAPER_HEADERS[1], format="%.2f", help=PAPER_COLUMNS[1]),
        PAPER_COLUMNS[2]: st.column_config.NumberColumn(PAPER_HEADERS[2], format="%.2f", help=PAPER_COLUMNS[2]),
        PAPER_COLUMNS[3]: st.column_config.TextColumn(PAPER_HEADERS[3])})
    if not c.any:
        _no_model()
    verdict(ctx, paper_verdict(c))
    take_home(ctx, paper_take_home(c))
    words(ctx)
    _open(ctx, "robustness")


STEPS = (
    ("1. A CNN and scale", step_zoom),
    ("2. The idea: the same filters at 1/2 and 1/4 size", step_idea),
    ("3. What each stage sees", step_fields),
    ("4. Does it work?", step_curves),
    ("5. What does work: scale jitter", step_jitter),
    ("6. Which stage carries the answer?", step_stages),
    ("7. What the paper claimed, what we measured", step_paper),
)
CONCLUSION = "What we learned"

# Presenter view: the top guesses grow with the rest (the shared style sets every
# markdown paragraph, the metric's value among them, to 1.15rem).
_PRESENTER_CSS = """<style>
[data-testid="stMain"] .st-key-lesson_guesses [data-testid="stMetricValue"],
[data-testid="stMain"] .st-key-lesson_guesses [data-testid="stMetricValue"] p { font-size: 2.75rem; }
[data-testid="stMain"] .st-key-lesson_guesses [data-testid="stMetricLabel"] p { font-size: 1.25rem; }
[data-testid="stMain"] .st-key-lesson_guesses [data-testid="stMetricDelta"] p { font-size: 1.25rem; }
</style>"""


def render(root: str | Path | None = None) -> None:
    """The whole lesson, every step under its own header, then the conclusion.

    The presenter toggle is drawn in the sidebar here too, so presenter view stays in the
    URL (``?presenter=true``) on the Lesson as on every other page."""
    follow()
    on = presenter.toggle(st.sidebar)
    if on:
        st.html(_PRESENTER_CSS)
    root = Path(root or catalog.checkpoint_root(ui.REPO))
    entries, errors = read_entries(root)
    for e in errors:
        st.warning(md(ui.public(e)))
    ctx = Context(cast(entries), entries, presenter=on, root=root)
    if not ctx.cast.any:
        st.warning(NO_MODEL_AT_ALL, icon=":material/warning:")
    for n, (title, step) in enumerate(STEPS, 1):
        ctx.step, ctx.said = n, []
        st.subheader(title)
        step(ctx)
    st.subheader(CONCLUSION)
    sentence, details = conclusion(ctx.cast)
    with st.container(border=True, key="lesson_conclusion"):
        st.markdown(f":material/school: **{sentence}**")
        if details:
            st.markdown(details)
    with st.expander("Glossary: every word this lesson explains", icon=":material/menu_book:"):
        for t, d in glossary.TERMS.items():
            st.markdown(f"**{t}**: {d}")


__all__ = ["CONCLUSION", "Cast", "Clause", "Context", "Entry", "PAPER_TABLE2_C10", "STEPS", "TAKE_HOME", "cast",
           "conclusion", "jitter_clause", "jitter_result", "jitter_verdict", "link_params", "md", "paper_rows",
           "paper_verdict", "read_entries", "render", "study_answers", "wsms_clause", "wsms_result"]
