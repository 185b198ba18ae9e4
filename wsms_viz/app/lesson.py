"""The Lesson page: the paper's story in seven short steps on the live models.

Each step has one thing to try, the measured answer and a link to the page that shows the
topic in full. Every number of ours is read at run time from the checkpoints' cards (the
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from ..analysis import attribution, integration, receptive_field
from ..analysis.features import shared_filter_responses
from ..analysis.stage_view import stage_views
from ..cards import Card, CheckpointError, curve_of, read_card_file
from ..models import model_family
from ..zoom import normalize
from . import catalog, figures, navigation, predict, presenter, robustness, ui, verdicts
from .images import load_sample
from .plain import md

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
    """What every step reads: the roles, every readable checkpoint, and the zoom picked in step 1."""

    cast: Cast
    entries: list[Entry]
    zoom: float = 1.0


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
    return (f"Over all validation images, **{md(entry.label)}** is right {sr.at_zoom_1:.1%} of the time at 1x, "
            f"but {sr.at_zoom(lo):.1%} at {lo:g}x and {sr.at_zoom(hi):.1%} at {hi:g}x.")


def jitter_verdict(c: Cast) -> str | None:
    """Step 5: what training with scale jitter changes, against the same baseline, over
    the zooms (the card's comparison), beside what the WSMS-Net changes."""
    j = c.baseline_jitter
    vs = curve_of(j.card).vs_baseline if j and curve_of(j.card) else None
    if vs is None or vs.mean is None:
        return None
    lo, hi = j.card.scale_jitter
    text = (f"Trained on images zoomed at random between {lo:.2g}x and {hi:.2g}x, **{md(j.label)}** differs from "
            f"**{md(vs.baseline)}** by {verdicts.comparison_clause(vs.mean)} averaged over zooms")
    w = curve_of(c.wsms.card).vs_baseline if c.wsms and curve_of(c.wsms.card) else None
    if w is not None and w.mean is not None:
        bigger = "more" if abs(vs.mean.diff) > abs(w.mean.diff) else "less"
        text += (f"; the WSMS-Net **{md(c.wsms.label)}** changes it by {verdicts.pts(w.mean.diff)} points: "
                 f"scale jitter moves it {bigger}")
    return text + "."


def jitter_pair_sentence(c: Cast) -> str | None:
    """Both trained with jitter: the WSMS-Net's mean over zooms against the baseline's
    (from the two curves; the cards hold no interval for this pair)."""
    if not (c.baseline_jitter and c.wsms_jitter):
        return None
    a, b = curve_of(c.wsms_jitter.card), curve_of(c.baseline_jitter.card)
    if a is None or b is None or a.zooms != b.zooms:
        return None
    return (f"Both trained with jitter, **{md(c.wsms_jitter.label)}** averages {a.mean_acc:.1%} over the zooms and "
            f"**{md(c.baseline_jitter.label)}** {b.mean_acc:.1%} ({verdicts.pts(a.mean_acc - b.mean_acc)} points; "
            "no interval in the cards for this pair).")


def study_answers(c: Cast, entries: list[Entry]) -> list[tuple[str, str]] | None:
    """What a scale study found, when a card holds one (``scale_study``); None when none
    does. The sentences are the study module's own, computed from the stored numbers."""
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


def paper_rows(c: Cast) -> list[dict]:
    """The paper's Table 2 (CIFAR-10+) beside our models at zoom 1, accuracy in %."""
    ours = (c.baseline, c.ms, c.wsms)
    rows = []
    for (name, err), e in zip(PAPER_TABLE2_C10, ours, strict=True):
        acc = accuracy_at(e, 1.0)
        rows.append({"the paper's network": name, "the paper's accuracy (%)": round(100 - err, 2),
                     "our network": e.label if e else "-",
                     "our accuracy at zoom 1 (%)": round(100 * acc, 2) if acc is not None else None})
    return rows


def paper_verdict(c: Cast) -> str:
    """Step 7: the paper's gain against ours (at zoom 1, with our interval)."""
    (base, base_err), _, (wsms, wsms_err) = PAPER_TABLE2_C10
    text = (f"The paper reports {wsms} {base_err - wsms_err:+.2f} points above {base} (mean of five runs, "
            "no interval given)")
    vs = curve_of(c.wsms.card).vs_baseline if c.wsms and curve_of(c.wsms.card) else None
    if vs is None or vs.at_zoom_1 is None:
        return text + "; we have not measured ours yet."
    return (text + f"; we measure **{md(c.wsms.label)}** at {verdicts.comparison_clause(vs.at_zoom_1)} against "
            f"**{md(vs.baseline)}** at zoom 1, on {_networks(c)} instead of the paper's 110-layer ResNets.")


def _networks(c: Cast) -> str:
    """The registry models behind the lesson's checkpoints (``resnet20, wsms_resnet20``)."""
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


# --- the steps -----------------------------------------------------------------------------

def _link(topic: str) -> None:
    page = navigation.BY_KEY[PAGES[topic]]
    st.page_link(page.path, label=f"Open {page.label} for the full view", icon=":material/arrow_forward:")


def _no_model() -> None:
    st.info(NO_MODEL, icon=":material/info:")


def step_zoom(ctx: Context) -> None:
    """1. A CNN and scale; the zoom the reader picks is kept for step 6."""
    c = ctx.cast
    st.markdown("A CNN learns objects at the size they had in its training photos. **Try:** drag the zoom "
                "and watch each network's top guess for this photo of a cat.")
    z = ctx.zoom = st.slider("Zoom", ui.ZOOM_MIN, ui.ZOOM_MAX, 1.0, 0.1, key="lesson_zoom", format="%.1fx", **ui.LINK)
    models = [m for m in (load(c.baseline), load(c.wsms)) if m is not None]
    if not models:
        _no_model()
        return
    img = photo()
    keys = tuple(m.key for m in models)
    sweeps = ui.sweeps(img.key, CENTER, keys, (), False, _pixels=img.pixels)
    stack = ui.zoom_inputs(img.key, CENTER, img.pixels)
    cols = st.columns([1, 2, 2])
    seen = torch.from_numpy(stack[predict.nearest(predict.ZOOMS, z)].copy())
    cols[0].image(_pixels(seen), caption=f"what the networks see at {z:.1f}x (32x32)", width=160)
    for col, s in zip(cols[1:], sweeps, strict=False):
        cls, p = s.top(z, 1)[0]
        col.metric(md(s.label), md(cls), f"{p:.0%} sure", delta_color="off", delta_arrow="off")
    verdicts.show(verdicts.zoom_verdict(sweeps, PHOTO_CLASS))
    measured = baseline_drop(c.baseline)
    st.markdown(measured or NOT_EVALUATED)
    _link("zoom")


def step_idea(ctx: Context) -> None:
    """2. The idea: the same filters on the image at 1/2 and 1/4 (Fig. 1 and 2)."""
    c = ctx.cast
    st.markdown("WSMS-Net runs **the same filters** on the image, on the image at half size and at a quarter "
                "size (stages 1, 2, 3), and joins what they find before deciding (paper, Fig. 1 and 2). A close-up "
                "at half size looks like a long shot to stage 2. **Try:** pick a filter and see it respond to "
                "the three sizes of the photo.")
    m = load(c.wsms)
    if m is None:
        _no_model()
        return
    img = photo()
    raw = torch.from_numpy(ui.zoom_inputs(img.key, CENTER, img.pixels)[predict.nearest(predict.ZOOMS, 1.0)].copy())
    x = normalize(raw, m.mean, m.std)
    sizes = st.columns(3)
    for s, view in enumerate(stage_views(m.model)[:3]):
        seen = view.scale_input(raw.unsqueeze(0))[0]
        sizes[s].image(_pixels(seen), caption=f"stage {s + 1} sees {seen.shape[-1]}x{seen.shape[-1]}", width=128)
    n = filter_count(m.model)
    channel = st.slider("Filter (channel of block 1)", 0, n - 1, 0, key="lesson_channel")
    maps = shared_filter_responses(m.model, x, block=0, channel=channel)
    ui.chart(figures.shared_filter_figure(maps, channel, 0), key="lesson_filter")
    sentence = parameters_sentence({e.label: load(e) for e in (c.baseline, c.wsms, c.ms) if e}, c)
    if sentence:
        st.markdown(sentence)
    _link("features")


def step_fields(ctx: Context) -> None:
    """3. What each stage sees: the receptive fields (computed from the layers alone)."""
    c = ctx.cast
    st.markdown("The same filter on a half-size image covers **twice as many pixels** of the original. "
                "**Try:** compare the boxes: the part of the photo one unit of each stage can see.")
    m = load(c.wsms)
    if m is None:
        _no_model()
        return
    fields = receptive_field.block_fields(m.model)
    st.markdown("After the first block, one unit sees " + ", ".join(
        f"{f[0].size}x{f[0].size} pixels in stage {s + 1}" for s, f in enumerate(fields)) + " of the 32x32 image.")
    img = photo()
    x = ui.zoom_inputs(img.key, CENTER, img.pixels)[predict.nearest(predict.ZOOMS, 1.0)]
    last = fields[0][-1].map_size
    boxes = receptive_field.field_boxes(m.model, (last // 2, last // 2))
    ui.chart(figures.field_boxes_figure(torch.from_numpy(x.copy()), boxes, height=320), key="lesson_fields")
    st.markdown("After the last block, before the stages are joined, one unit at the centre sees "
                + ", ".join(f"{b.size}x{b.size}" for b in boxes) + " pixels through stages "
                + ", ".join(str(b.stage + 1) for b in boxes) + ": more than the whole image (the boxes are clipped).")
    _link("fields")


def step_curves(ctx: Context) -> None:
    """4. Does it work? The zoom curves of the three kinds, and the verdict."""
    c = ctx.cast
    st.markdown("The evaluator zoomed **every** validation image and measured each network. **Try:** hover the "
                "curves: a scale-robust network keeps a flatter one.")
    shown = [e for e in (c.baseline, c.wsms, c.ms) if e]
    if not shown:
        _no_model()
        return
    curves, missing = robustness.accuracy_curves(shown)
    if curves:
        ui.chart(robustness.accuracy_figure(curves), key="lesson_curves")
    sentence = verdicts.robustness_verdict([e for e in (c.wsms, c.ms) if e])
    verdicts.show(sentence)
    if missing or not sentence:
        st.markdown(NOT_EVALUATED)
    _link("robustness")


def step_jitter(ctx: Context) -> None:
    """5. What does work: scale jitter, and a scale study when the cards hold one."""
    c, entries = ctx.cast, ctx.entries
    st.markdown("Show the network zoomed images while it trains (scale jitter). **Try:** compare the jittered "
                "curves with the plain baseline.")
    shown = [e for e in (c.baseline, c.baseline_jitter, c.wsms_jitter) if e]
    if not c.baseline_jitter:
        st.info("No checkpoint trained with scale jitter here." if c.any else NO_MODEL, icon=":material/info:")
    else:
        curves, _ = robustness.accuracy_curves(shown)
        if curves:
            ui.chart(robustness.accuracy_figure(curves), key="lesson_jitter")
        verdicts.show(jitter_verdict(c))
        pair = jitter_pair_sentence(c)
        if pair:
            st.markdown(pair)
    found = study_answers(c, entries)
    st.markdown("**The scale study** (WSMS-Net and the baseline, each with and without jitter):")
    if found is None:
        st.markdown("Not measured yet: no card holds a `scale_study` block.")
    else:
        for question, answer in found:
            st.markdown(f"- *{question}* {md(answer)}")
    _link("robustness")


def step_stages(ctx: Context) -> None:
    """6. Which stage carries the answer: attributions and lesions, on the photo."""
    c, zoom = ctx.cast, ctx.zoom
    st.markdown(f"Which stage did the WSMS-Net use for **{PHOTO_CLASS}**? Integrated Gradients splits the "
                "answer over the stages; switching a stage off (a lesion) shows what it was worth. **Try:** "
                "change the zoom in step 1 and come back.")
    m = load(c.wsms)
    if m is None:
        _no_model()
        return
    shares, factors, by_zoom, drop, feat, target = _stage_answer(m.key, zoom, m)
    left, right = st.columns(2)
    ui.chart(figures.stage_bars(shares, f"share of the attribution at {zoom:.1f}x", "share", percent=True),
             key="lesson_shares", where=left)
    ui.chart(figures.stage_bars(drop, "score lost when the stage is off", "logit drop"),
             key="lesson_lesions", where=right)
    verdicts.show(verdicts.attribution_verdict(shares, zoom))
    verdicts.show(verdicts.shares_move_verdict(factors, by_zoom))
    verdicts.show(verdicts.integration_verdict(drop, feat, m.classes[target]))
    _link("attributions")
    _link("integration")


def step_paper(ctx: Context) -> None:
    """7. What the paper claimed, and what we measured."""
    c = ctx.cast
    st.markdown("The paper trained each 110-layer network five times on CIFAR-10 and reports the mean error; "
                f"here there is one checkpoint of each kind ({_networks(c)}). **Try:** read both columns, then "
                "the sentence: a gain of a few tenths of a point needs an interval before it is believed.")
    st.dataframe(paper_rows(c), hide_index=True, column_config={
        k: st.column_config.NumberColumn(format="%.2f") for k in ("the paper's accuracy (%)",
                                                                 "our accuracy at zoom 1 (%)")})
    if not c.any:
        _no_model()
    verdicts.show(paper_verdict(c))
    _link("robustness")


STEPS = (
    ("1. A CNN and scale", step_zoom),
    ("2. The idea: the same filters at 1/2 and 1/4 size", step_idea),
    ("3. What each stage sees", step_fields),
    ("4. Does it work?", step_curves),
    ("5. What does work: scale jitter", step_jitter),
    ("6. Which stage carries the answer?", step_stages),
    ("7. What the paper claimed, what we measured", step_paper),
)


def render(root: str | Path | None = None) -> None:
    """The whole lesson, every step under its own header."""
    if presenter.is_on():  # no sidebar here (where the toggle draws it): the link's ?presenter=true
        presenter.style()
    entries, errors = read_entries(root or catalog.checkpoint_root(ui.REPO))
    for e in errors:
        st.warning(md(ui.public(e)))
    ctx = Context(cast(entries), entries)
    if not ctx.cast.any:
        st.warning(NO_MODEL_AT_ALL, icon=":material/warning:")
    for title, step in STEPS:
        st.subheader(title)
        step(ctx)


__all__ = ["Cast", "Context", "Entry", "PAPER_TABLE2_C10", "STEPS", "cast", "jitter_verdict", "paper_rows",
           "paper_verdict", "read_entries", "render", "study_answers"]
