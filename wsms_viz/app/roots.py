"""What the app may read from disk: chosen by whoever starts the server, never by a visitor.

A class runs the app on one server and hands out its URL, so a visitor must not be able
to name a folder: they pick a dataset from a list by its label, and the app reads only
the folders that list was built from. The list is fixed at start:

* ``WSMS_DATA_ROOTS``: ``label=folder`` entries separated by ``os.pathsep`` (``:`` on
  Linux and macOS), e.g. ``CIFAR-10=/data/cifar10-jpeg:Our photos=/srv/class-photos``;
  an entry without ``label=`` is labelled with its folder's name.
* else ``WSMS_DATA``: one folder (the older, single-dataset setting);
* else ``../shared/datasets/cifar10-jpeg`` beside the repository, when it is there.

Folders that do not exist are left out (the server's log says which). Checkpoints come
from ``WSMS_CHECKPOINTS`` (default ``checkpoints/``), fixed the same way
(:func:`wsms_viz.app.catalog.checkpoint_root`).

Messages shown to visitors go through :func:`redact`, which replaces every server path
with a label, so an error never reveals the server's directory layout. No streamlit here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ENV_ROOTS = "WSMS_DATA_ROOTS"
ENV_ONE = "WSMS_DATA"
REPO = Path.cwd()  # the folder the server was started in: the repository for `streamlit run app.py`
DEFAULT_LABEL, DEFAULT_FOLDER = "CIFAR-10", ("shared", "datasets", "cifar10-jpeg")  # beside the repository


@dataclass(frozen=True)
class DataRoot:
    """One dataset folder the operator shares, under the label visitors see."""

    label: str
    path: Path  # absolute, symlinks resolved


def parse_roots(spec: str) -> list[tuple[str, str]]:
    """``(label, folder)`` pairs of a ``WSMS_DATA_ROOTS`` value (see the module docstring).

    Example:
        >>> parse_roots("CIFAR-10=/data/c10" + os.pathsep + "/srv/photos")
        [('CIFAR-10', '/data/c10'), ('photos', '/srv/photos')]
    """
    out = []
    for entry in spec.split(os.pathsep):
        entry = entry.strip()
        if not entry:
            continue
        label, sep, folder = entry.partition("=")
        if not sep:
            label, folder = Path(entry).name or entry, entry
        out.append((label.strip(), folder.strip()))
    return out


def configured_roots(environ: Mapping[str, str] | None = None, repo: Path = REPO) -> list[DataRoot]:
    """The dataset folders this server shares, in the operator's order, each label once."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_ROOTS):
        pairs = parse_roots(environ[ENV_ROOTS])
    elif environ.get(ENV_ONE):
        folder = environ[ENV_ONE]
        pairs = [(Path(folder).name or folder, folder)]
    else:
        default = repo.parent.joinpath(*DEFAULT_FOLDER)
        pairs = [(DEFAULT_LABEL, str(default))]
        if not default.is_dir():
            return []  # no dataset beside the repository: sample photos and uploads still work
    roots: list[DataRoot] = []
    for label, folder in pairs:
        path = Path(folder).expanduser()
        path = (path if path.is_absolute() else repo / path).resolve()
        if not path.is_dir():
            print(f"wsms-viz: dataset {label!r} left out: {path} is not a folder", file=sys.stderr)
            continue
        if label in {r.label for r in roots}:
            label = f"{label} ({len(roots) + 1})"
        roots.append(DataRoot(label, path))
    return roots


def shared_roots() -> list[DataRoot]:
    """:func:`configured_roots` of this process's environment, looked up once per setting
    (the list is fixed at start; the folders are not stat'ed again on every rerun)."""
    return list(_cached_roots(os.environ.get(ENV_ROOTS), os.environ.get(ENV_ONE)))


@lru_cache(maxsize=8)
def _cached_roots(env_roots: str | None, env_one: str | None) -> tuple[DataRoot, ...]:
    env = {k: v for k, v in ((ENV_ROOTS, env_roots), (ENV_ONE, env_one)) if v}
    return tuple(configured_roots(env))


def by_label(roots: Iterable[DataRoot], label: str | None) -> DataRoot | None:
    """The root called ``label``, else None: a visitor's choice is only ever a key into the list."""
    return next((r for r in roots if r.label == label), None)


def inside(path: str | Path, folders: Iterable[str | Path]) -> bool:
    """Whether ``path`` (symlinks resolved) lies in one of ``folders``."""
    try:
        p = Path(path).resolve()
    except (OSError, RuntimeError):
        return False
    return any(p.is_relative_to(Path(f).resolve()) for f in folders)


# A path in a message: absolute, ~/..., a named folder's placeholder followed by more, or
# relative (segments joined by "/"); not the middle of a URL nor of a word.
_SEGMENT = r"[^\s/`'\"(),:;\x00]+"
_PATH = re.compile(rf"(?<![\w.:/~\x00])(?:\x00\d+\x00|~)?(?:{_SEGMENT})?(?:/{_SEGMENT})+")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_FILE_NAME = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")  # ends like a file name: secret.png, card.json


def _public_path(token: str) -> str:
    """What of one path in a message a visitor may see (see :func:`redact`)."""
    placeholder = _PLACEHOLDER.match(token)
    parts = [p for p in token[placeholder.end() if placeholder else 0:].split("/") if p]
    if placeholder:  # inside a shared folder: its label and the path in it, unless it climbs out
        return token if ".." not in parts else parts[-1]
    relative_file = "." in parts or ".." in parts or _FILE_NAME.search(parts[-1])
    if token.startswith(("/", "~")) or relative_file:
        return parts[-1]
    return token  # "1/2", "and/or": not a path


def redact(message: str, named: Mapping[str | Path, str] = ()) -> str:
    """``message`` with every server path replaced: ``named`` folders by their label (and
    the path inside them kept), any other absolute path, or relative one that names a file
    or climbs with ``..``, by its last part (the file or folder name a person can act on).

    Example:
        >>> redact("/srv/data/cat/1.jpg is damaged", {"/srv/data": "CIFAR-10"})
        'CIFAR-10/cat/1.jpg is damaged'
        >>> redact("dataset directory /home/me/x does not exist")
        'dataset directory x does not exist'
        >>> redact("its file ../../../srv/outside/secret.png is outside")
        'its file secret.png is outside'
    """
    named = dict(named)
    labels: list[str] = []
    # Longest first, so a folder inside another one gets its own label; a folder's name
    # is replaced only where it ends (/srv/data is not the start of /srv/database).
    for folder, label in sorted(named.items(), key=lambda kv: -len(str(kv[0]))):
        for form in {str(folder), str(Path(folder).resolve())}:
            if form and form != "/":
                message = re.sub(re.escape(form) + rf"(?!{_SEGMENT})", f"\x00{len(labels)}\x00", message)
        labels.append(label)
    for i, label in enumerate(labels):  # a label already in the message (redacted before) stays one
        message = re.sub(rf"(?<![\w.:/~\x00]){re.escape(label)}(?=/)", f"\x00{i}\x00", message)
    message = _PATH.sub(lambda m: _public_path(m.group(0)), message)
    return _PLACEHOLDER.sub(lambda m: labels[int(m.group(1))], message)
