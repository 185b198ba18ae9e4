"""The sidebar every page shares (models, image, zoom centre) and the page opening.

What a visitor can pick is only ever a key into lists the server built: models from the
checkpoint folder, datasets from those whoever started the server shares
(:mod:`wsms_viz.app.roots`), sample photos by name; an upload is decoded in memory.
Every message built from an exception goes through :func:`public`, so none shows a
server path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from . import catalog, presenter, roots
from .images import (
    FORMATS,
    DecodedImage,
    ImageError,
    decode_image,
    load_image_file,
    load_sample,
    sample_photos,
)
from .state import Selection, _stamp, gallery, load_error, load_models

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("Dataset (val split)", "Sample photos", "Upload your own", "Baseline wrong, WSMS right")


def intro(what: str, paper: str) -> None:
    """The two or three sentences every page opens with."""
    st.markdown(what)
    st.caption(f"In the paper: {paper}")


def page(title: str, what: str, paper: str, image: bool = True, presenter_intro: bool = True) -> Selection:
    """What every analysis page opens with: title, :func:`intro`, the shared sidebar, the
    untrained-model warning, and (``image``) a stop with a hint until an image and a
    model are picked. Returns the sidebar's selection.

    ``presenter_intro=False`` leaves the intro out in presenter view, for a page whose
    first screen on a projector has no room for it (the zoom page)."""
    st.title(title)
    opening = st.container()  # filled once the sidebar says whether presenter view is on
    sel = sidebar()
    if presenter_intro or not sel.presenter:
        with opening:
            intro(what, paper)
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
        if sel.image_error:  # where the eye is, not only in the sidebar
            st.error(sel.image_error, icon=":material/error:")
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
    broken = {k: load_error(k, _stamp(k)) for k in keys}
    picked = sb.multiselect("Models to compare", keys, default=catalog.default_selection(keys, broken),
                            format_func=lambda k: catalog.label_of(k) + (" (cannot load)" if broken[k] else ""),
                            key="models", persist_state="session")
    models, errors = load_models(picked)
    for e in errors:
        sb.error(public(e))
    unpicked = [k for k in keys if broken[k] and k not in picked]
    if unpicked:
        with sb.expander(f"{len(unpicked)} checkpoint{'s' if len(unpicked) > 1 else ''} cannot be loaded"):
            for k in unpicked:
                st.markdown(f"**{catalog.label_of(k)}**: {public(broken[k])}")
    sb.subheader("Image")
    st.session_state["_image_error"] = None
    image = _image_picker(sb, root)
    sb.caption("Zoom centre (fractions of width and height)")
    c1, c2 = sb.columns(2)
    cx = c1.slider("centre x", 0.0, 1.0, 0.5, 0.05, key="cx", persist_state="session")
    cy = c2.slider("centre y", 0.0, 1.0, 0.5, 0.05, key="cy", persist_state="session")
    on = presenter.toggle(sb)
    return Selection(image, models, (round(cy, 2), round(cx, 2)), root,
                     st.session_state.get("_image_error") if image is None else None, presenter=on)


def _image_error(sb, message: str) -> None:
    """An image problem: said in the sidebar, and kept for the main area (:func:`need_image`)."""
    sb.error(message)
    st.session_state["_image_error"] = message


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
        _image_error(sb, public(ex_error))
    return _example_image(sb, examples, root)


def data_roots() -> list[roots.DataRoot]:
    """The datasets whoever started the server shares (``WSMS_DATA_ROOTS``, see :mod:`.roots`)."""
    return roots.shared_roots()


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
        _image_error(sb, f"{public(str(e))}. Try the sample photos meanwhile.")
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
        _image_error(sb, public(str(e)))
        return None


def _uploaded_image(sb) -> DecodedImage | None:
    # No ``type=`` filter: the browser would refuse other files with a bare MIME-type
    # message; decode_image says what the file is and which formats work.
    up = sb.file_uploader("Your image", key="upload",
                          help=f"A photo in {FORMATS}; a big one is worked on at the resolution the 3x zoom "
                               "needs (the zoom crops it before shrinking to 32x32).")
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
        _image_error(sb, result)
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
            _image_error(sb, public(f"example {i}: its file {ex.path} is outside the datasets this server shares"))
            return None
        if path is not None:
            img = load_image_file(path)
        elif ex.index is not None and data is not None:
            img = gallery(str(data.path)).at(ex.index)
        else:
            _image_error(sb, public(f"example {i}: its file {ex.path} is not found"))
            return None
    except (ImageError, IndexError) as e:
        _image_error(sb, public(f"example {i}: {e}"))
        return None
    if ex.label is not None:
        img.label = catalog.class_name(ex.label, names)
    return img

