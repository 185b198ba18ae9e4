"""Which models the app can show: trained checkpoints, or untrained registry models.

The app looks for checkpoint directories under ``$WSMS_CHECKPOINTS`` (default
``checkpoints/`` in the repository). Until the real ones are trained it offers
randomly initialised models from the registry, labelled as untrained, so every page
still works; their predictions mean nothing and the pages say so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import CARD, WEIGHTS, CheckpointError, find_checkpoints, load_checkpoint  # noqa: F401
from ..files import read_regular
from ..models import create_model, family_of_checkpoint, list_models, model_family, teaching_order
from ..zoom import CIFAR10_MEAN, CIFAR10_STD

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The paper's three kinds of network; offered untrained while checkpoints/ is empty.
UNTRAINED = ("resnet20", "wsms_resnet20", "ms_resnet20")
UNTRAINED_PREFIX = "untrained:"
TRAIN_HINT = "python -m wsms_viz.train --model wsms_resnet20 --out checkpoints/wsms_resnet20"
DEFAULT_COUNT = 4  # models selected when the app opens
MAX_EXAMPLES_BYTES = 16 * 2**20  # the evaluator writes a few KB


@dataclass
class LoadedModel:
    """A model ready to predict, with what the pages need to label it.

    Attributes:
        key: ``checkpoints/<name>`` path or ``untrained:<registry name>``.
        label: what the page calls it ("wsms_resnet20", "resnet20 (untrained)").
        model: in eval mode; shared by every session, never modified.
        classes: class names, in output order.
        mean, std: the normalisation the model was trained with.
        trained: False for random-init models and for checkpoints whose card records
            no epoch of training (:attr:`wsms_viz.cards.Card.epochs_trained`).
        card: the checkpoint card ({} when untrained).
    """

    key: str
    label: str
    model: nn.Module
    classes: list[str]
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    trained: bool = True
    card: dict = field(default_factory=dict)

    @property
    def num_stages(self) -> int:
        return int(getattr(self.model, "num_stages", 1))

    @property
    def registry_name(self) -> str:
        return getattr(self.model, "model_name", self.card.get("model", self.label))

    @property
    def is_baseline(self) -> bool:
        """One stage: a plain CNN, the side WSMS-Net is compared against."""
        return self.num_stages == 1


def checkpoint_root(repo_root: str | Path | None = None) -> Path:
    env = os.environ.get("WSMS_CHECKPOINTS")
    if env:
        return Path(env).expanduser()
    # The folder the app or command was started in, not the package's: installed from a
    # wheel, the package sits in site-packages, far from any checkpoints.
    repo = Path(repo_root) if repo_root else Path.cwd()
    return repo / "checkpoints"


def positive_int_env(name: str, default: int) -> int:
    """``$name`` as a positive integer, else ``default``; anything else is a ValueError
    naming the variable (an operator's typo should stop the server, not be guessed at)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return n


def app_threads() -> int:
    """Intra-op threads for the app: ``$WSMS_THREADS`` (a positive integer), else 1."""
    return positive_int_env("WSMS_THREADS", 1)


def available(root: str | Path) -> list[str]:
    """Keys of what can be loaded: checkpoint directories under ``root`` (baseline first,
    see :func:`teaching_order`), else untrained models."""
    found = sorted(find_checkpoints(root), key=lambda p: teaching_order(p.name))
    return [str(p) for p in found] or [UNTRAINED_PREFIX + n for n in UNTRAINED]


def stamp(key: str) -> tuple[int, ...]:
    """What says a checkpoint changed on disk: mtime and size of its card and of its
    weights (either can be replaced alone), for the app's model cache key."""
    if key.startswith(UNTRAINED_PREFIX):
        return ()
    out: list[int] = []
    for f in (Path(key) / CARD, Path(key) / WEIGHTS):
        try:
            st = f.stat()
            out += [st.st_mtime_ns, st.st_size]
        except OSError:
            out += [0, -1]
    return tuple(out)


PAPER_FAMILIES = ("baseline", "wsms", "ms")  # the networks the paper compares


def default_selection(keys: list[str], errors: dict[str, str | None], n: int = DEFAULT_COUNT) -> list[str]:
    """The models selected when the app opens: the first ``n`` of ``keys`` that load, the
    checkpoints of the paper's registered models (``resnet20``, ``wsms_resnet20``,
    ``ms_resnet20``: the kinds a class compares) before their variants, the baseline's
    variants (``resnet20_jitter``) first, each group otherwise in ``keys``' (teaching) order;
    the scale study's reference (``sc_resnet20``) is not one of the paper's kinds and comes
    with the variants. A broken checkpoint never takes a default slot; ``errors`` maps a
    key to its load error, or None."""
    ok = [k for k in keys if not errors.get(k)]
    registered = {m for m in list_models() if model_family(m) in PAPER_FAMILIES}
    kinds = [k for k in ok if k.startswith(UNTRAINED_PREFIX) or Path(k).name in registered]
    # Of the variants, the baseline's first (``resnet20_jitter``): a jittered plain CNN is the
    # control the WSMS-Net's scale claim must beat.
    variants = sorted((k for k in ok if k not in kinds),
                      key=lambda k: family_of_checkpoint(Path(k).name) != "baseline")
    return (kinds + variants)[:n]


def label_of(key: str) -> str:
    if key.startswith(UNTRAINED_PREFIX):
        return f"{key[len(UNTRAINED_PREFIX):]} (untrained)"
    return Path(key).name


def load(key: str, seed: int = 0) -> LoadedModel:
    """Loads a checkpoint directory, or builds an untrained registry model with ``seed``.

    Raises:
        CheckpointError: a checkpoint that cannot be loaded (the message says why).
    """
    if key.startswith(UNTRAINED_PREFIX):
        name = key[len(UNTRAINED_PREFIX):]
        torch.manual_seed(seed)
        model = create_model(name).eval()
        # Random BatchNorm statistics are all 0/1, so an untrained net's output barely
        # depends on its input; one pass in train mode over noise makes them the
        # statistics of real activations and the predictions move with the image.
        _calibrate_batchnorm(model, seed)
        return LoadedModel(key, label_of(key), model, list(CIFAR10_CLASSES), trained=False)
    ckpt = load_checkpoint(key, root=Path(key).parent)  # a symlink out of the checkpoint folder is refused
    card = ckpt.card
    mean, std = (card.normalization.mean, card.normalization.std) if card.normalization else (CIFAR10_MEAN, CIFAR10_STD)
    # Shown as trained only when the card says it trained for an epoch or more.
    return LoadedModel(key, ckpt.name, ckpt.model, list(card.classes), mean, std, card.epochs_trained >= 1, card)


def _calibrate_batchnorm(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, 32, 32, generator=g)
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


@dataclass
class Example:
    """One "baseline wrong, WSMS right" image saved by the evaluator (paper Fig. 5a)."""

    label: str | int | None
    baseline_pred: str | int | None
    wsms_pred: str | int | None
    path: str | None = None
    index: int | None = None
    image_root: str | None = None


def _pred(record: dict, key: str):
    value = record.get(key)
    if isinstance(value, dict):  # the evaluator writes {"name", "pred", "prob"}
        return value.get("pred")
    return record.get(f"{key}_pred", value)


def _examples_file(path: Path):
    """The parsed ``examples.json`` (shared: never modified), None when there is none, or
    the error that kept it from being read; parsed once per version of the file."""
    try:
        st = path.stat()
    except OSError:
        return None
    return _parse_examples(str(path), st.st_mtime_ns, st.st_size) if path.is_file() else None


@lru_cache(maxsize=8)
def _parse_examples(path: str, mtime_ns: int, size: int):
    try:  # a regular file inside the checkpoint folder, size capped (files.open_regular)
        return json.loads(read_regular(path, (Path(path).parent,), MAX_EXAMPLES_BYTES, "the checkpoint folder"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON, not UTF-8, or refused (FileRefused)
        return e


def read_examples(root: str | Path, which: str = "examples") -> tuple[list[Example], str | None]:
    """``root/examples.json``, as ``python -m wsms_viz.evaluation.evaluate`` writes it.

    ``which`` list of the evaluator's: ``examples`` (baseline wrong, WSMS right: Fig. 5a),
    ``reverse`` (baseline right, WSMS wrong) or ``random``.

    Accepts the evaluator's object (``{"image_root", "examples": [{"file", "index",
    "label", "baseline": {"pred"}, "wsms": {"pred"}}]}``) or a plain list of
    ``{path or index, label, baseline_pred, wsms_pred}``, where ``index`` is a position
    in the app's gallery. The evaluator's ``index`` is the image's position in the whole
    dataset it evaluated, not in a gallery, so it is not used to find an image: a record
    of the evaluator's is shown from its file or not at all (a torchvision CIFAR source
    has no files; its gallery is the official test set, other images than the val split
    the evaluator used). Returns the examples and a message when the file exists but
    cannot be used (a missing file is not an error: the evaluator has not run yet).
    """
    path = Path(root) / "examples.json"
    raw = _examples_file(path)
    if raw is None:
        return [], None
    if isinstance(raw, OSError | ValueError):
        return [], f"{path}: cannot read it ({raw})"
    image_root = None
    evaluator = isinstance(raw, dict)
    if evaluator:
        image_root = raw.get("image_root")
        raw = raw.get(which, [])
    elif which != "examples":  # a plain list is the baseline-wrong list only
        return [], None
    if not isinstance(raw, list):
        return [], f"{path}: expected a list of examples"
    out = []
    for r in raw:
        if not isinstance(r, dict):
            continue
        file = r.get("path") or r.get("file")
        idx = r.get("index")
        idx = int(idx) if isinstance(idx, int | float) and not isinstance(idx, bool) and not evaluator else None
        if file is None and idx is None:
            continue
        out.append(Example(r.get("label"), _pred(r, "baseline"), _pred(r, "wsms"), file, idx, image_root))
    return out, None


def example_counts(root: str | Path) -> dict:
    """From ``root/examples.json``: the models compared and how many val images each list
    was drawn from (``candidates``, ``reverse_candidates``); empty when unknown."""
    raw = _examples_file(Path(root) / "examples.json")
    if not isinstance(raw, dict):
        return {}
    keep = {k: raw[k] for k in ("baseline", "wsms") if isinstance(raw.get(k), str)}
    return keep | {k: raw[k] for k in ("candidates", "reverse_candidates") if isinstance(raw.get(k), int)}


def resolve_example_path(example: Example, *roots: str | Path) -> Path | None:
    """The image file of ``example``: absolute, or relative to its ``image_root`` or one of ``roots``."""
    if not example.path:
        return None
    p = Path(example.path).expanduser()
    if p.is_absolute():
        return p if p.is_file() else None
    bases = [Path(example.image_root)] if example.image_root else []
    for r in roots:
        if r:
            bases += [Path(r), Path(r) / "train"]
            if example.image_root and not Path(example.image_root).is_absolute():
                bases.append(Path(r) / example.image_root)
    return next((b / p for b in bases if (b / p).is_file()), None)


def class_name(value: str | int | None, classes: list[str]) -> str:
    if isinstance(value, int) and 0 <= value < len(classes):
        return classes[value]
    return "?" if value is None else str(value)
