"""The demo set: real CIFAR-10 val images shipped with the app, for a server with no dataset.

130 images, 13 a class, 32x32 PNG in ``<class>/<NNNN>.png`` (an ImageFolder the gallery
reads as it is), picked by ``scripts/make_demo_set.py``: every image of the evaluator's
two example lists (``checkpoints/examples.json``) and a seeded, class-balanced draw from
the rest of the val split. ``manifest.json`` lists each file with the dataset file it was
copied from, so an example (which names its dataset file) resolves to its copy here.

The app always offers it as a dataset under :data:`LABEL` (after those the server
shares), and opens on it when the server shares none. No streamlit here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path, PurePosixPath

from ..roots import DataRoot

FOLDER = Path(__file__).resolve().parent
MANIFEST = FOLDER / "manifest.json"
LABEL = "Demo set"


@lru_cache(maxsize=1)
def manifest() -> dict:
    """The parsed ``manifest.json`` (shared: never modified); empty when it cannot be read."""
    try:
        data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def images() -> list[dict]:
    """The manifest's records: ``{"file", "label", "source", "lists"}`` each."""
    return [r for r in manifest().get("images", []) if isinstance(r, dict) and isinstance(r.get("file"), str)]


def root(label: str = LABEL) -> DataRoot:
    """The demo set as a dataset the sidebar lists."""
    return DataRoot(label, FOLDER)


def caption() -> str:
    """What the sidebar says about it, with its counts from the manifest."""
    n = len(images())
    per = manifest().get("per_class")
    each = f", {per} a class" if isinstance(per, int) else ""
    return (f"CIFAR-10 val, {n} images{each}, shipped with the app (the last 10% of each class's files, never "
            "trained on); every image of the two example lists is among them.")


def copy_of(source: str | None, image_root: str | None = None) -> Path | None:
    """The demo copy of the dataset file ``source`` (``"airplane/4577.jpg"``, as the manifest and the
    evaluator's examples name it, relative to the dataset's class folders), else None.

    Only a name the manifest lists maps to a file, and only to a file in this folder;
    ``image_root`` (where the examples file says its files are) must be a copy of the
    dataset the demo set was taken from (``.../cifar10-jpeg/train``), or an example of
    another dataset that happens to use the same file names would show a CIFAR-10 image.

    Example:
        >>> copy_of("airplane/4577.jpg").relative_to(FOLDER).as_posix()
        'airplane/4577.png'
        >>> copy_of("../../etc/passwd") is None, copy_of("airplane/4577.jpg", "/srv/photos/train") is None
        (True, True)
    """
    if not source:
        return None
    dataset = manifest().get("dataset")
    if image_root and isinstance(dataset, str):
        tail = PurePosixPath(str(image_root).replace("\\", "/")).parts[-len(PurePosixPath(dataset).parts):]
        if PurePosixPath(*tail) != PurePosixPath(dataset):
            return None
    key = PurePosixPath(str(source).replace("\\", "/"))
    key = PurePosixPath(*key.parts[-2:])  # "<class>/<file>": an absolute or rooted name keeps its tail
    file = _by_source().get(str(key))
    if file is None:
        return None
    path = (FOLDER / file).resolve()
    return path if path.is_relative_to(FOLDER) and path.is_file() else None


@lru_cache(maxsize=1)
def _by_source() -> dict[str, str]:
    return {r["source"]: r["file"] for r in images() if isinstance(r.get("source"), str)}
