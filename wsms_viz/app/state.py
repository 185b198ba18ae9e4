"""What the pages share and compute once: the selection, the caches and cached results.

Models are cached with ``st.cache_resource`` (one copy for every session; never
modified), per-image results with ``st.cache_data`` keyed by short hashable ids (the
image's content hash, the centre, the model keys), the pixels themselves passed as
``_pixels`` so they are not hashed. Everything a session could share lives here, shared.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ..checkpoint import CheckpointError
from ..zoom import normalize
from . import catalog, framing, guard, predict
from .images import DecodedImage, Gallery
from .zoom_figures import animation_figure

_LOG = logging.getLogger(__name__)


@dataclass
class Selection:
    """What the sidebar picked, for the page that drew it."""

    image: DecodedImage | None
    models: list[catalog.LoadedModel]
    center: tuple[float, float]
    checkpoint_root: Path
    image_error: str | None = None  # why the picked image cannot be shown (also in the sidebar)
    presenter: bool = False  # presenter view (a projector): see :mod:`wsms_viz.app.presenter`

    @property
    def model_keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.models)

    @property
    def any_untrained(self) -> bool:
        return any(not m.trained for m in self.models)


@st.cache_resource(show_spinner="Loading model ...", max_entries=16)
def model(key: str, stamp: tuple = ()) -> catalog.LoadedModel:
    """One loaded model for everybody; ``stamp`` (:func:`catalog.stamp`: the card's and the
    weights' mtime and size) reloads a checkpoint when either file is replaced."""
    return catalog.load(key)


def _stamp(key: str) -> tuple:
    return catalog.stamp(key)


@st.cache_data(max_entries=64, show_spinner="Checking the checkpoints ...")
def load_error(key: str, stamp: tuple) -> str | None:
    """Why ``key`` cannot be loaded, or None (loading it into :func:`model` on the way)."""
    try:
        model(key, stamp)
    except Exception as e:  # noqa: BLE001 - one bad checkpoint must not take the page down
        return failure_message(key, e)
    return None


def failure_message(key: str, e: Exception) -> str:
    """What a visitor is told about checkpoint ``key`` failing with ``e``: a
    :class:`CheckpointError`'s own message (it names the file and field), else only that
    it cannot be loaded; the whole traceback goes to the server's log for the operator."""
    if isinstance(e, CheckpointError):
        return str(e)
    _LOG.error("checkpoint %s cannot be loaded", key, exc_info=e)
    return f"{Path(key).name}: cannot be loaded (an unexpected {type(e).__name__}; the server log has the details)"


def load_models(keys: list[str]) -> tuple[list[catalog.LoadedModel], list[str]]:
    """The loaded models of ``keys`` and, for those that fail (any exception), why."""
    out, errors = [], []
    for k in keys:
        try:
            out.append(model(k, _stamp(k)))
        except Exception as e:  # noqa: BLE001 - the others still load
            errors.append(failure_message(k, e))
    return out, errors


@st.cache_resource(show_spinner="Reading the dataset folder ...", max_entries=4)
def gallery(root: str) -> Gallery:
    return Gallery(root)



@st.cache_data(max_entries=32, show_spinner=False)
def zoom_inputs(image_key: str, center: tuple[float, float], _pixels: np.ndarray) -> np.ndarray:
    """``(Z, 3, 32, 32)`` float32: the image at every zoom of :data:`predict.ZOOMS`."""
    return framing.network_inputs(_pixels, framing.frame(_pixels.shape, center), predict.ZOOMS).numpy()


@st.cache_data(max_entries=64, show_spinner="Running the models over every zoom ...")
def sweeps(image_key: str, center: tuple[float, float], model_keys: tuple[str, ...],
           stages_on: tuple[bool, ...], tta: bool, _pixels: np.ndarray) -> list[predict.Sweep]:
    """Every selected model's predictions at every zoom (plus the TTA baseline when asked)."""
    stack = torch.from_numpy(zoom_inputs(image_key, center, _pixels))
    models, _ = load_models(list(model_keys))
    out = [predict.sweep(m, stack, stage_mask=predict.mask_for(m, stages_on)) for m in models]
    if tta:
        where = framing.frame(_pixels.shape, center)
        out += [predict.tta_sweep(m, _pixels, where) for m in models if m.is_baseline]
    return out


@st.cache_resource(max_entries=16, show_spinner=False)
def animation(image_key: str, center: tuple[float, float], model_keys: tuple[str, ...],
              stages_on: tuple[bool, ...], tta: bool, cls: str, _pixels: np.ndarray,
              presenter: bool = False) -> dict:
    """The zoom animation as a plain dict, built and validated once (about 0.3 s).

    Cached as a resource and never modified; it always opens at 1x and
    :func:`wsms_viz.app.widgets.sync_animation` moves it to the slider's zoom in the browser.
    ``presenter`` (part of the cache key) lays it out for presenter view's larger text;
    its token is the same, since the page shows one of the two.
    """
    s = sweeps(image_key, center, model_keys, stages_on, tta, _pixels)
    inputs = (zoom_inputs(image_key, center, _pixels).transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    fig = animation_figure(_pixels, framing.frame(_pixels.shape, center), inputs, s, cls, 1.0, presenter)
    fig.update_layout(meta=animation_token(image_key, center, model_keys, stages_on, tta, cls))
    return fig.to_dict()


def animation_token(*key) -> str:
    """A short id of one animation figure (its cache key), for :func:`sync_animation`."""
    return hashlib.sha256(repr(key).encode()).hexdigest()[:12]


@st.cache_resource(max_entries=8, show_spinner="Tracing the model ...")
def architecture(key: str):
    """``(Architecture, figure)`` of a loaded model, computed once."""
    from ..analysis.architecture import trace
    from .architecture_figure import diagram

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


def current_input(sel: Selection, zoom: float) -> torch.Tensor:
    """The ``(3, 32, 32)`` image in [0, 1] the networks see at ``zoom`` (not normalised)."""
    stack = zoom_inputs(sel.image.key, sel.center, sel.image.pixels)
    return torch.from_numpy(stack[predict.nearest(predict.ZOOMS, zoom)].copy())


@st.cache_data(max_entries=64, show_spinner="Computing ...")
def _analysis(_fn, fn_name: str, model_key: str, input_id: str, kwargs: tuple, _model, _x):
    with guard.shared().take():  # only a computation not cached yet takes one of the server's slots
        return _fn(_model, _x, **dict(kwargs))


def analysis(fn, m: catalog.LoadedModel, sel: Selection, zoom: float, normalized: bool = True, **kwargs):
    """``fn(model, image_at_zoom, **kwargs)``, cached per model, image, centre, zoom and kwargs.

    The image is normalised with the model's own statistics unless ``normalized=False``.
    """
    x = current_input(sel, zoom)
    if normalized:
        x = normalize(x, m.mean, m.std)
    input_id = f"{sel.image.key}|{sel.center}|{zoom:.1f}|{normalized}"
    slots = guard.shared()
    queued = st.empty()
    if slots.full:
        queued.caption(f"Other visitors' analyses are running ({slots.n} at a time on this server): "
                       "yours starts when one ends.")
    try:
        with guard.session_slot(st.session_state):
            return _analysis(fn, f"{fn.__module__}.{fn.__qualname__}", m.key, input_id,
                             tuple(sorted(kwargs.items())), m.model, x)
    except guard.Busy as e:
        queued.empty()
        st.info(f"Not computed: {e}.", icon=":material/hourglass_empty:")
        st.stop()
    finally:
        queued.empty()


@st.cache_data(max_entries=8, show_spinner="Comparing stage 1 and stage 2 over 16 images ...")
def _fig1(model_keys: tuple[str, ...], data_key: str, _images) -> list:
    from ..analysis.features import fig1_similarity

    models = {m.label: m.model for m in load_models(list(model_keys))[0]}
    return fig1_similarity(models, _images)

