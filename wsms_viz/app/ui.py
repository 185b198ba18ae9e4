"""Streamlit helpers shared by the pages: the sidebar, the zoom slider and the caches.

The only module of the package that imports streamlit. Models are cached with
``st.cache_resource`` (one copy for every session; never modified), per-image results
with ``st.cache_data`` keyed by short hashable ids (the image's content hash, the centre,
the model keys), the pixels themselves passed as ``_pixels`` so they are not hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ..checkpoint import CheckpointError
from ..zoom import normalize
from . import catalog, predict, roots
from .images import (
    IMAGE_SUFFIXES,
    DecodedImage,
    Gallery,
    ImageError,
    decode_image,
    load_image_file,
    load_sample,
    sample_photos,
    square_box,
    square_crop,
)
from .zoom_figures import animation_figure

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("Dataset (val split)", "Sample photos", "Upload your own", "Baseline wrong, WSMS right")
ZOOM_MIN, ZOOM_MAX = predict.ZOOMS[0], predict.ZOOMS[-1]

# The models are small (32x32 inputs), so a second intra-op thread gains little, and when
# anything else uses the CPU, OpenMP threads waiting on each other make it far slower:
# Integrated Gradients on wsms_resnet20 took 0.11 s with one thread and 10.8 s with two
# beside a training run on the 2-core machine (benchmarks/attribution_speed.py --threads).
# $WSMS_THREADS overrides; torch.set_num_threads is process-wide, so every session gets it.
torch.set_num_threads(catalog.app_threads())


@dataclass
class Selection:
    """What the sidebar picked, for the page that drew it."""

    image: DecodedImage | None
    models: list[catalog.LoadedModel]
    center: tuple[float, float]
    checkpoint_root: Path

    @property
    def model_keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.models)

    @property
    def any_untrained(self) -> bool:
        return any(not m.trained for m in self.models)


# --- caches ---------------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading model ...", max_entries=16)
def model(key: str, stamp: float = 0.0) -> catalog.LoadedModel:
    """One loaded model for everybody; ``stamp`` (the card's mtime) reloads a new checkpoint."""
    return catalog.load(key)


def _stamp(key: str) -> float:
    card = Path(key) / "card.json"
    return card.stat().st_mtime if card.is_file() else 0.0


def load_models(keys: list[str]) -> tuple[list[catalog.LoadedModel], list[str]]:
    out, errors = [], []
    for k in keys:
        try:
            out.append(model(k, _stamp(k)))
        except CheckpointError as e:
            errors.append(str(e))
    return out, errors


@st.cache_resource(show_spinner="Reading the dataset folder ...", max_entries=4)
def gallery(root: str) -> Gallery:
    return Gallery(root)


@st.cache_data(max_entries=32, show_spinner=False)
def zoom_inputs(image_key: str, center: tuple[float, float], _pixels: np.ndarray) -> np.ndarray:
    """``(Z, 3, 32, 32)`` float32: the image at every zoom of :data:`predict.ZOOMS`."""
    return predict.zoom_stack(predict.prepare(_pixels, center), predict.ZOOMS).numpy()


@st.cache_data(max_entries=64, show_spinner="Running the models over every zoom ...")
def sweeps(image_key: str, center: tuple[float, float], model_keys: tuple[str, ...],
           stages_on: tuple[bool, ...], tta: bool, _pixels: np.ndarray) -> list[predict.Sweep]:
    """Every selected model's predictions at every zoom (plus the TTA baseline when asked)."""
    stack = torch.from_numpy(zoom_inputs(image_key, center, _pixels))
    models, _ = load_models(list(model_keys))
    out = [predict.sweep(m, stack, stage_mask=predict.mask_for(m, stages_on)) for m in models]
    if tta:
        prepared = predict.prepare(_pixels, center)
        out += [predict.tta_sweep(m, prepared) for m in models if m.is_baseline]
    return out


@st.cache_resource(max_entries=16, show_spinner=False)
def animation(image_key: str, center: tuple[float, float], model_keys: tuple[str, ...],
              stages_on: tuple[bool, ...], tta: bool, cls: str, _pixels: np.ndarray) -> dict:
    """The zoom animation as a plain dict, built and validated once (about 0.3 s).

    Cached as a resource and never modified; it always opens at 1x and
    :func:`sync_animation` moves it to the slider's zoom in the browser.
    """
    s = sweeps(image_key, center, model_keys, stages_on, tta, _pixels)
    inputs = (zoom_inputs(image_key, center, _pixels).transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    _, inner = square_crop(_pixels, center)
    fig = animation_figure(_pixels, square_box(_pixels.shape, center), inner, inputs, s, cls, 1.0)
    fig.update_layout(meta=animation_token(image_key, center, model_keys, stages_on, tta, cls))
    return fig.to_dict()


# --- widgets --------------------------------------------------------------------------

def zoom_slider(where=None) -> float:
    """The zoom slider; its value (key ``zoom``) is kept across pages for the session."""
    where = where or st
    return float(where.slider(
        "Zoom", ZOOM_MIN, ZOOM_MAX, 1.0, 0.1, key="zoom", format="%.1fx", persist_state="session",
        help="1x is the image as it is; 2x crops half its width around the centre and enlarges "
             "it; 0.5x shrinks it to half size inside a grey frame.",
    ))


# Moves the zoom animation to the Streamlit slider's zoom in the browser. Re-sending the
# 26-frame figure on every slider step costs the browser ~250 ms of re-rendering; this
# keeps the figure's spec unchanged (so Streamlit leaves it alone) and asks Plotly to
# show frame ``Z``, as if its own slider had been dragged there. The figure carries a
# token in ``layout.meta``; the script waits for the figure with that token, so after a
# new image, class or lesion it acts on the new figure once it is drawn, not the old one.
# It also installs, once per browser tab, an observer on the Streamlit zoom slider's
# value (``aria-valuetext``, which react-aria updates while the thumb moves): the
# animation then follows the hand during the drag and is already there on release,
# without waiting for the server. Animations never queue up: while one is being drawn,
# only the latest requested frame is kept.
# Our own constant script with two values we format, hence unsafe_allow_javascript.
_SYNC_JS = """<script>
(() => {
  const frame = "Z", token = "T";
  const z = window.__wsmsZoom || (window.__wsmsZoom = {token: null, busy: false, next: null});
  z.token = token;
  const figure = () => [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.layout && g.layout.meta === z.token);
  const show = (f) => {
    const gd = figure();
    if (!gd || !window.Plotly) return false;
    if (z.busy) { z.next = f; return true; }
    const s = gd.layout.sliders[0];
    if (s.steps[s.active] && s.steps[s.active].label === f) return true;
    z.busy = true;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true; z.busy = false;
      const n = z.next; z.next = null; if (n) show(n);
    };
    setTimeout(done, 1000);  // a figure removed mid-animation never settles the promise
    // An animation interrupted by another one rejects: nothing to report.
    window.Plotly.animate(gd, [f], {mode: "immediate", frame: {duration: 0, redraw: true},
                                    transition: {duration: 0}}).then(done, done);
    return true;
  };
  if (!z.observer) {
    z.observer = new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target;
        if (el.type === "range" && el.getAttribute("aria-label") === "Zoom" && el.closest('[data-testid="stMain"]')) {
          const v = (el.getAttribute("aria-valuetext") || "").replace(/x$/, "");
          if (/^\\d\\.\\d$/.test(v)) show(v);
        }
      }
    });
    z.observer.observe(document.body, {subtree: true, attributes: true, attributeFilter: ["aria-valuetext"]});
  }
  let tries = 0;
  const go = () => { if (!show(frame) && tries++ < 400) setTimeout(go, 25); };
  go();
})();
</script>"""


def sync_animation(zoom: float, token: str) -> None:
    """Shows frame ``zoom`` of the zoom animation tagged ``token``, without re-sending it."""
    js = _SYNC_JS.replace('"Z"', f'"{zoom:.1f}"').replace('"T"', f'"{token}"')
    st.html(js, unsafe_allow_javascript=True, width="content")


def animation_token(*key) -> str:
    """A short id of one animation figure (its cache key), for :func:`sync_animation`."""
    return hashlib.sha256(repr(key).encode()).hexdigest()[:12]


def intro(what: str, paper: str) -> None:
    """The two or three sentences every page opens with."""
    st.markdown(what)
    st.caption(f"In the paper: {paper}")


def page(title: str, what: str, paper: str, image: bool = True) -> Selection:
    """What every analysis page opens with: title, :func:`intro`, the shared sidebar, the
    untrained-model warning, and (``image``) a stop with a hint until an image and a
    model are picked. Returns the sidebar's selection."""
    st.title(title)
    intro(what, paper)
    sel = sidebar()
    untrained_notice(sel)
    if image and not need_image(sel):
        st.stop()
    return sel


def untrained_notice(sel: Selection) -> None:
    if sel.any_untrained:
        st.warning(
            "These models are **untrained** (random weights): the pages work, but their predictions "
            "mean nothing yet. This server has no trained checkpoints yet: train with "
            f"`{catalog.TRAIN_HINT}`.", icon=":material/warning:")


def need_image(sel: Selection) -> bool:
    """Shows a hint and returns False when there is no image or no model to show."""
    if sel.image is None:
        st.info("Pick an image in the sidebar (a dataset image, a sample photo or your own).")
        return False
    if not sel.models:
        st.info("Pick at least one model in the sidebar.")
        return False
    return True


def sidebar() -> Selection:
    """Draws the sidebar every page shares (each page calls it first) and returns the selection."""
    sb = st.sidebar
    root = catalog.checkpoint_root(REPO)
    keys = catalog.available(root)
    trained = not keys[0].startswith(catalog.UNTRAINED_PREFIX)
    sb.subheader("Models")
    if not trained:
        sb.caption("No trained checkpoints on this server yet: train with `python -m wsms_viz.train ...`. "
                   "Showing untrained models.")
    picked = sb.multiselect("Models to compare", keys, default=keys[:4], format_func=catalog.label_of,
                            key="models", persist_state="session")
    models, errors = load_models(picked)
    for e in errors:
        sb.error(public(e))
    sb.subheader("Image")
    image = _image_picker(sb, root)
    sb.caption("Zoom centre (fractions of width and height)")
    c1, c2 = sb.columns(2)
    cx = c1.slider("centre x", 0.0, 1.0, 0.5, 0.05, key="cx", persist_state="session")
    cy = c2.slider("centre y", 0.0, 1.0, 0.5, 0.05, key="cy", persist_state="session")
    return Selection(image, models, (round(cy, 2), round(cx, 2)), root)


def _image_picker(sb, root: Path) -> DecodedImage | None:
    examples, ex_error = catalog.read_examples(root)
    sources = list(SOURCES) if examples else list(SOURCES[:3])
    source = sb.radio("Source", sources, key="source", persist_state="session")
    if source == SOURCES[0]:
        return _dataset_image(sb)
    if source == SOURCES[1]:
        name = sb.selectbox("Photo", sample_photos(), key="sample", persist_state="session")
        return load_sample(name)
    if source == SOURCES[2]:
        return _uploaded_image(sb)
    if ex_error:
        sb.error(public(ex_error))
    return _example_image(sb, examples, root)


def data_roots() -> list[roots.DataRoot]:
    """The datasets whoever started the server shares (``WSMS_DATA_ROOTS``, see :mod:`.roots`)."""
    return roots.configured_roots()


def chosen_root() -> roots.DataRoot | None:
    """The dataset this session picked, by label (the first one until it picks)."""
    shared = data_roots()
    return roots.by_label(shared, st.session_state.get("dataset")) or (shared[0] if shared else None)


def public(message: str) -> str:
    """``message`` with every server path replaced by a label (see :func:`roots.redact`)."""
    named = {r.path: r.label for r in data_roots()}
    named |= {catalog.checkpoint_root(REPO): "checkpoints", REPO: "the app folder"}
    return roots.redact(message, named)


def _dataset_image(sb) -> DecodedImage | None:
    shared = data_roots()
    if not shared:
        sb.info("This server shares no dataset (whoever starts it lists them in WSMS_DATA_ROOTS). "
                "Try the sample photos or upload your own.")
        return None
    labels = [r.label for r in shared]
    label = sb.selectbox("Dataset", labels, key="dataset", persist_state="session",
                         help="The datasets this server shares; whoever starts the app chooses them.")
    root = roots.by_label(shared, label) or shared[0]
    try:
        g = gallery(str(root.path))
    except ImageError as e:
        sb.error(f"{public(str(e))}. Try the sample photos meanwhile.")
        return None
    sb.caption(f"{g.kind}: {g.split_note}.")
    cls = sb.selectbox("Class", g.classes, key="data_class", persist_state="session")
    items = g.of_class(g.classes.index(cls))
    if not items:
        sb.warning(f"no images of class {cls}")
        return None
    i = sb.number_input(f"Image number (0-{len(items) - 1})", 0, len(items) - 1, 0, 1, key="data_index",
                        persist_state="session")
    try:
        return g.load(items[int(i)])
    except ImageError as e:
        sb.error(public(str(e)))
        return None


def _uploaded_image(sb) -> DecodedImage | None:
    up = sb.file_uploader("Your image", type=[s.lstrip(".") for s in IMAGE_SUFFIXES], key="upload",
                          help="Any photo; it keeps its full resolution (the zoom crops it before shrinking).")
    if up is None:
        return None
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    cached = st.session_state.get("_upload_cache")
    if cached and cached[0] == digest:  # decoding a big photo again on every rerun is slow
        result = cached[1]
    else:
        try:
            result = decode_image(data, up.name)
            result.key = f"upload:{digest}"
        except ImageError as e:
            result = str(e)
        st.session_state["_upload_cache"] = (digest, result)
    if isinstance(result, str):
        sb.error(result)
        return None
    for n in result.notes:
        sb.info(n)
    return result


def _example_image(sb, examples: list[catalog.Example], root: Path) -> DecodedImage | None:
    names = catalog.CIFAR10_CLASSES
    labels = [f"{i}: {catalog.class_name(e.label, names)} (baseline said {catalog.class_name(e.baseline_pred, names)}"
              f", WSMS said {catalog.class_name(e.wsms_pred, names)})" for i, e in enumerate(examples)]
    i = sb.selectbox("Example", range(len(examples)), format_func=labels.__getitem__, key="example",
                     persist_state="session")
    ex = examples[int(i)]
    data = chosen_root()
    shared = [r.path for r in data_roots()] + [root]
    try:
        path = catalog.resolve_example_path(ex, root, *(r.path for r in data_roots()), REPO)
        if path is not None and not roots.inside(path, shared):
            sb.error(public(f"example {i}: its file {ex.path} is outside the datasets this server shares"))
            return None
        if path is not None:
            img = load_image_file(path)
        elif ex.index is not None and data is not None:
            img = gallery(str(data.path)).at(ex.index)
        else:
            sb.error(public(f"example {i}: its file {ex.path} is not found"))
            return None
    except (ImageError, IndexError) as e:
        sb.error(public(f"example {i}: {e}"))
        return None
    if ex.label is not None:
        img.label = catalog.class_name(ex.label, names)
    return img


STAGE_NAMES = ("full image", "1/2 size", "1/4 size", "1/8 size", "1/16 size")


def stage_toggles(where, models: list[catalog.LoadedModel]) -> tuple[bool, ...]:
    """One on/off toggle per WSMS stage (the lesion study); all on when no model has stages."""
    n = predict.stage_count(models)
    if n == 1:
        return ()
    where.caption("Stages of the multi-stage models (switch one off: a lesion)")
    cols = where.columns(n)
    return tuple(cols[s].toggle(f"stage {s + 1}", True, key=f"stage_{s}", help=f"stage {s + 1} sees the "
                                f"image at {STAGE_NAMES[min(s, len(STAGE_NAMES) - 1)]}") for s in range(n))


def class_picker(where, sweeps: list[predict.Sweep], label: str | None) -> str:
    """The class whose probability the curve follows: the true one, else the first model's guess."""
    classes = list(sweeps[0].classes)
    default = label if label in classes else sweeps[0].top(1.0, 1)[0][0]
    return where.selectbox("Class to follow", classes, index=classes.index(default), key=f"follow_{label}")


def top5_columns(sweeps: list[predict.Sweep], zoom: float, cls: str) -> None:
    """Each model's top-5 at ``zoom``, side by side, the followed class in bold.

    A markdown table per model: cheap for the browser to redraw on every slider step
    (a canvas data grid per model costs ~100 ms more), and large on a projector.
    """
    cols = st.columns(len(sweeps))
    width = 10 if len(sweeps) <= 3 else 5  # four or more columns: keep bar and figure on one line
    for col, s in zip(cols, sweeps, strict=True):
        rows = [f"| {i + 1} | {f'**{c}**' if c == cls else c} | `{_bar(p, width)}` {p:.1%} |"
                for i, (c, p) in enumerate(s.top(zoom))]
        col.markdown(f"**{s.label}** at {zoom:.1f}x")
        col.markdown("\n".join(["| | class | probability |", "|---|---|---|", *rows]))
        p = float(s.curve(cls)[predict.nearest(s.zooms, zoom)])
        top = s.top(zoom, 1)[0]
        col.caption(f"top guess: {top[0]} ({top[1]:.1%}) · P({cls}) = {p:.1%}")


def _bar(p: float, width: int = 10) -> str:
    n = round(p * width)
    return "█" * n + "·" * (width - n)


@st.cache_resource(max_entries=8, show_spinner="Tracing the model ...")
def architecture(key: str):
    """``(Architecture, figure)`` of a loaded model, computed once."""
    from ..analysis.architecture import diagram, trace

    arch = trace(model(key, _stamp(key)).model)
    return arch, diagram(arch)


@st.cache_data(show_spinner="Counting parameters and multiplications ...")
def complexity_table() -> list[dict]:
    from .robustness import complexity_rows

    return complexity_rows()


@st.cache_data(max_entries=16, show_spinner="Counting parameters and multiplications ...")
def model_costs(keys: tuple[str, ...]) -> list[dict]:
    from .robustness import model_cost_rows

    return model_cost_rows(load_models(list(keys))[0])


# --- the analysis pages: the image at the current zoom, one model, cached results -------

def current_input(sel: Selection, zoom: float) -> torch.Tensor:
    """The ``(3, 32, 32)`` image in [0, 1] the networks see at ``zoom`` (not normalised)."""
    stack = zoom_inputs(sel.image.key, sel.center, sel.image.pixels)
    return torch.from_numpy(stack[predict.nearest(predict.ZOOMS, zoom)].copy())


def pick_model(where, sel: Selection, key: str, multi_stage: bool = True) -> catalog.LoadedModel | None:
    """A selectbox over the selected models, a multi-stage one first when ``multi_stage``."""
    multi = [m for m in sel.models if not m.is_baseline]
    models = multi if multi_stage else multi + [m for m in sel.models if m.is_baseline]
    if not models:
        where.info("Pick a multi-stage model (WSMS-Net or MS-Net) in the sidebar for this view.")
        return None
    labels = [m.label for m in models]
    return models[labels.index(where.selectbox("Model", labels, key=key))]


def baseline(sel: Selection) -> catalog.LoadedModel | None:
    return next((m for m in sel.models if m.is_baseline), None)


@st.cache_data(max_entries=64, show_spinner="Computing ...")
def _analysis(_fn, fn_name: str, model_key: str, input_id: str, kwargs: tuple, _model, _x):
    return _fn(_model, _x, **dict(kwargs))


def analysis(fn, m: catalog.LoadedModel, sel: Selection, zoom: float, normalized: bool = True, **kwargs):
    """``fn(model, image_at_zoom, **kwargs)``, cached per model, image, centre, zoom and kwargs.

    The image is normalised with the model's own statistics unless ``normalized=False``.
    """
    x = current_input(sel, zoom)
    if normalized:
        x = normalize(x, m.mean, m.std)
    input_id = f"{sel.image.key}|{sel.center}|{zoom:.1f}|{normalized}"
    return _analysis(fn, f"{fn.__module__}.{fn.__qualname__}", m.key, input_id, tuple(sorted(kwargs.items())),
                     m.model, x)


def class_index(where, m: catalog.LoadedModel, sel: Selection, key: str) -> int | None:
    """A class to explain: the predicted one (None) or one picked by name."""
    options = ["the predicted class"] + list(m.classes)
    default = options.index(sel.image.label) if sel.image.label in options else 0
    pick = where.selectbox("Class to explain", options, index=default, key=key)
    return None if pick == options[0] else m.classes.index(pick)


@st.cache_data(max_entries=8, show_spinner="Comparing stage 1 and stage 2 over 16 images ...")
def _fig1(model_keys: tuple[str, ...], data_key: str, _images) -> list:
    from ..analysis.features import fig1_similarity

    models = {m.label: m.model for m in load_models(list(model_keys))[0]}
    return fig1_similarity(models, _images)


def fig1_rows(sel: Selection) -> list:
    """Fig. 1's similarity for the selected multi-stage models over 16 images: val images
    of the dataset when there is one, else the smooth synthetic images of the features module."""
    from ..analysis.features import blob_images

    keys = tuple(m.key for m in sel.models if not m.is_baseline)
    if not keys:
        st.info("Pick a WSMS-Net (and an MS-Net to compare) in the sidebar for this measurement.")
        return []
    try:
        data = chosen_root()
        if data is None:
            raise ImageError("no dataset")
        g = gallery(str(data.path))
        n = min(16, len(g))
        imgs = [g.at(i * (len(g) // n)).pixels for i in range(n)]
        images = torch.stack([predict.zoom_stack(predict.prepare(p), [1.0])[0] for p in imgs])
        source = f"{g.root}:{n}"
        if n < 2:
            raise ImageError("fewer than 2 images")
    except (ImageError, IndexError):
        images, source = blob_images(16), "blobs"
    st.caption(f"Images: {'synthetic blobs (no dataset)' if source == 'blobs' else '16 images of the dataset'}.")
    return _fig1(keys, source, images)
