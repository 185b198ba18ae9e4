"""The sidebar every page shares (models, image, zoom centre) and the page opening.

What a visitor can pick is only ever a key into lists the server built: models from the
checkpoint folder, datasets from those whoever started the server shares
(:mod:`wsms_viz.app.roots`), sample photos by name; an upload is decoded in memory.
Every message built from an exception goes through :func:`public`, so none shows a
server path; every text from a file or an upload (names, labels, those messages) goes
through :func:`wsms_viz.app.plain.md`, so none is rendered as markdown.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from . import catalog, demo, links, presenter, roots
from .images import (
    FORMATS,
    DecodedImage,
    ImageError,
    decode_image,
    load_image_file,
    load_sample,
    sample_photos,
)
from .links import LINK
from .plain import md
from .state import Selection, _stamp, gallery, load_error, load_models

# The folder the server was started in (the repository for `streamlit run app.py`), where
# ./checkpoints is looked for; an installed package's own folder is site-packages.
REPO = Path.cwd()
SOURCES = ("Dataset (val split)", "Sample photos", "Upload your own", "Baseline wrong, WSMS right",
           "Baseline right, WSMS wrong")
EXAMPLE_LISTS = {SOURCES[3]: "examples", SOURCES[4]: "reverse"}  # their lists in examples.json


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
    with opening:
        if not sel.presenter:
            intro(what, paper)
        elif presenter_intro:
            presenter.intro(what, paper)
    untrained_notice(sel)
    if image and not need_image(sel):
        links.stop()  # the link's notice first: it may be why there is no image
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
    on = presenter.toggle(sb)  # first: reachable without scrolling, on a projector too
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
                            key="models", persist_state="session", **LINK)
    models, errors = load_models(picked)
    # What varies with the choices goes into containers, so the widgets after them keep their
    # place in the sidebar: a bound widget that moves is drawn anew and, in Streamlit 1.67, the
    # stale copy's removal unbinds the new one from the URL (the centre then left the link
    # after a switch of the image source).
    notes = sb.container()
    for e in errors:
        notes.error(md(public(e)))
    unpicked = [k for k in keys if broken[k] and k not in picked]
    if unpicked:
        with notes.expander(f"{len(unpicked)} checkpoint{'s' if len(unpicked) > 1 else ''} cannot be loaded"):
            for k in unpicked:
                st.markdown(f"**{md(catalog.label_of(k))}**: {md(public(broken[k]))}")
    sb.subheader("Image")
    st.session_state["_image_error"] = None
    image = _image_picker(sb.container(), root)
    sb.caption("Zoom centre (fractions of width and height)")
    c1, c2 = sb.columns(2)
    cx = c1.slider("centre x", 0.0, 1.0, 0.5, 0.05, key="cx", persist_state="session", **LINK)
    cy = c2.slider("centre y", 0.0, 1.0, 0.5, 0.05, key="cy", persist_state="session", **LINK)
    return Selection(image, models, (round(cy, 2), round(cx, 2)), root,
                     st.session_state.get("_image_error") if image is None else None, presenter=on)


def _image_error(sb, message: str) -> None:
    """An image problem: said in the sidebar, and kept for the main area (:func:`need_image`).
    ``message`` quotes names from files and uploads: it is shown as plain text."""
    message = md(message)
    sb.error(message)
    st.session_state["_image_error"] = message


def _image_picker(sb, root: Path) -> DecodedImage | None:
    lists = {s: catalog.read_examples(root, which) for s, which in EXAMPLE_LISTS.items()}
    # The dataset source is always there (the demo set at least); an example list when it
    # lists images a dataset may hold, or, with no dataset, images the demo set has copies of
    # (every one of the shipped lists').
    operator = bool(roots.shared_roots())
    sources = [s for s in SOURCES if s not in EXAMPLE_LISTS or (
        lists[s][0] and (operator or any(demo.copy_of(e.path, e.image_root) for e in lists[s][0])))]
    source = sb.radio("Source", sources, key="source", persist_state="session", on_change=_example_picked, **LINK)
    if not operator:
        sb.caption(f"This server shares no dataset, so it opens on the {demo.LABEL.lower()} shipped with the app; "
                   "whoever starts it can add one (WSMS_DATA_ROOTS).")
    if source == SOURCES[0]:
        return _dataset_image(sb)
    if source == SOURCES[1]:
        name = sb.selectbox("Photo", sample_photos(), key="sample", persist_state="session", **LINK)
        return load_sample(name)
    if source == SOURCES[2]:
        return _uploaded_image(sb)
    examples, ex_error = lists[source]
    if ex_error or not examples:
        _image_error(sb, public(ex_error or "the examples file lists no images"))
        return None
    return _example_image(sb, examples, root, source)


def _example_picked() -> None:
    """An example is shown as the evaluator saw it: zoom 1, centred (the callback of its pickers)."""
    if st.session_state.get("source") in EXAMPLE_LISTS:
        st.session_state.update(zoom=1.0, cx=0.5, cy=0.5)


def data_roots() -> list[roots.DataRoot]:
    """The datasets whoever started the server shares (``WSMS_DATA_ROOTS``, see :mod:`.roots`),
    then the demo set shipped with the app (:mod:`.demo`), always there."""
    shared = roots.shared_roots()
    label = demo.LABEL if roots.by_label(shared, demo.LABEL) is None else f"{demo.LABEL} (shipped)"
    return [*shared, demo.root(label)]


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
    labels = [r.label for r in shared]
    label = sb.selectbox("Dataset", labels, key="dataset", persist_state="session", **LINK,
                         help="The datasets this server shares; whoever starts the app chooses them.")
    root = roots.by_label(shared, label) or shared[0]
    try:
        g = gallery(str(root.path))
    except ImageError as e:
        _image_error(sb, f"{public(str(e))}. Try the sample photos meanwhile.")
        return None
    sb.caption(demo.caption() if root.path == demo.FOLDER else f"{md(g.kind)}: {md(g.split_note)}.")
    cls = sb.selectbox("Class", g.classes, key="data_class", persist_state="session", **LINK)
    items = g.of_class(g.classes.index(cls))
    if not items:
        sb.warning(f"no images of class {md(cls)}")
        return None
    i = sb.number_input(f"Image number (0-{len(items) - 1})", 0, len(items) - 1, 0, 1, key="data_index",
                        persist_state="session", **LINK)
    try:
        return g.load(items[int(i)])
    except ImageError as e:
        _image_error(sb, public(str(e)))
        return None


def _upload_cleared() -> None:
    """The uploader's own change: a new file replaces the kept one, its X clears it."""
    if st.session_state.get("upload") is None:
        _forget_upload()


def _forget_upload() -> None:
    st.session_state["_upload_cache"] = None


def _uploaded_image(sb) -> DecodedImage | None:
    # No ``type=`` filter: the browser would refuse other files with a bare MIME-type
    # message; decode_image says what the file is and which formats work.
    up = sb.file_uploader("Your image", key="upload", on_change=_upload_cleared,
                          help=f"A photo in {FORMATS}; a big one is worked on at the resolution the 3x zoom "
                               "needs (the zoom crops it before shrinking to 32x32).")
    cached = st.session_state.get("_upload_cache")
    if up is None:
        # The uploader is a new widget on every page: the photo is kept in the session
        # (decoded, never written to disk) until it is replaced or cleared.
        if cached is None or isinstance(cached[1], str):
            sb.caption("Your photo stays in this browser session only: a link cannot carry it.")
            return None
        sb.caption(f"Showing your upload **{md(cached[1].name)}**, kept while you switch pages: drop another "
                   "photo to replace it.")
        sb.button("Clear the upload", key="upload_clear", on_click=_forget_upload)
        return cached[1]
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
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
        sb.info(md(n))
    return result


def _example_image(sb, examples: list[catalog.Example], root: Path, source: str) -> DecodedImage | None:
    names = catalog.CIFAR10_CLASSES
    # The labels are the options, so a link names the example as the list shows it.
    labels = [f"#{i + 1} {catalog.class_name(e.label, names)}: baseline said "
              f"{catalog.class_name(e.baseline_pred, names)}, WSMS said {catalog.class_name(e.wsms_pred, names)}"
              for i, e in enumerate(examples)]
    key = "example" if source == SOURCES[3] else "reverse"  # two lists: two widgets, two link parameters
    i = labels.index(sb.selectbox("Example", labels, key=key, persist_state="session",
                                  on_change=_example_picked, **LINK))
    n = catalog.example_counts(root)
    b, w = md(n.get("baseline", "the baseline")), md(n.get("wsms", "WSMS"))
    counts = (f" Of the val images, {n['candidates']} are {b} wrong and {w} right, {n['reverse_candidates']} "
              "the other way round." if {"candidates", "reverse_candidates"} <= n.keys() else "")
    which = f"{b} was wrong and {w} right" if key == "example" else f"{w} was wrong and {b} right"
    sb.caption(f"{len(examples)} val images picked at random among those where {which}, at **zoom 1**; "
               f"picking one sets the zoom to 1 and the centre to the middle.{counts}")
    ex = examples[i]
    data = chosen_root()
    shared = [r.path for r in data_roots()] + [root]
    try:
        path = catalog.resolve_example_path(ex, root, *(r.path for r in data_roots()), REPO)
        if path is None or not roots.inside(path, shared):  # no dataset here: the demo set's copy, if any
            path = demo.copy_of(ex.path, ex.image_root) or path
        if path is not None and not roots.inside(path, shared):
            _image_error(sb, public(f"example #{i + 1}: its file {ex.path} is outside the datasets this server shares"))
            return None
        if path is not None:
            img = load_image_file(path)
        elif ex.index is not None and data is not None:
            img = gallery(str(data.path)).at(ex.index)
        else:
            _image_error(sb, public(f"example #{i + 1}: its file {ex.path} is not found"))
            return None
    except (ImageError, IndexError) as e:
        _image_error(sb, public(f"example #{i + 1}: {e}"))
        return None
    if ex.label is not None:
        img.label = catalog.class_name(ex.label, names)
    return img

