"""Checkpoints: ``model.safetensors`` (weights only) plus ``card.json`` (everything else).

One loader, :func:`load_checkpoint`, serves the app, the evaluator and the tests. It
never unpickles anything and never imports a name found in a file: the card names a
model, which is looked up in the registry. Every failure raises :class:`CheckpointError`
with a message that says what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .cards import (
    CARD_VERSION,
    FORMAT_VERSION,
    MAX_CARD_BYTES,
    Card,
    CheckpointError,
    dumps_card,
    loads_card,
    parse_card,
)
from .files import FileRefused, inside_any, open_regular, read_regular
from .models import create_model, model_config

WEIGHTS = "model.safetensors"
CARD = "card.json"
MAX_PARAMS = 200_000_000  # the largest registry model (MS-DenseNet) has 42M
LFS_POINTER = b"version https://git-lfs.github.com/spec/"

__all__ = ["CARD", "WEIGHTS", "Checkpoint", "CheckpointError", "atomic_write_bytes", "atomic_write_json",
           "find_checkpoints", "load_checkpoint", "read_card", "save_checkpoint", "write_card"]


@dataclass
class Checkpoint:
    model: nn.Module
    card: Card
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def _create_temp(directory: Path, name: str) -> tuple[int, str]:
    """A new file ``.NAME.<random>.tmp`` in ``directory``, opened for writing, with the
    permissions the umask gives any new file (0644 under umask 022). ``tempfile.mkstemp``
    would make it 0600, and the rename would carry that to the checkpoint: an app
    running as another user could not read it."""
    while True:
        tmp = str(directory / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it into place,
    so a kill at any moment leaves either the old file or the new one, never half. The
    file gets the umask's permissions, as any new file would."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor once (WSMS-Net ties conv weights)."""
    seen, out = set(), {}
    for key, t in model.state_dict().items():
        ptr = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)) if t.numel() else None
        if ptr is not None and ptr in seen:
            continue
        if ptr is not None:
            seen.add(ptr)
        out[key] = t.detach().cpu().contiguous()
    return out


def save_checkpoint(directory: str | Path, model: nn.Module, card: dict) -> Path:
    """Writes ``directory/model.safetensors`` and ``directory/card.json``.

    The card gets the model's registry name, its config, the class count and the
    weights' sha256 added; the caller supplies the rest (classes, normalisation, ...).
    The card is validated (:func:`wsms_viz.cards.parse_card`) before either file is
    written, so a card the loader would refuse is never written.
    """
    directory = Path(directory)
    data = st_save(_unique_state(model), metadata={"format": "pt"})
    full = {**card, "card_version": CARD_VERSION, "format_version": FORMAT_VERSION, "model": model.model_name,
            "config": model_config(model), "sha256": hashlib.sha256(data).hexdigest()}
    try:  # the card as it will read back: JSON has lists, not tuples (a recipe's scale_jitter is one)
        full = json.loads(json.dumps(full))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / CARD}: the card is not JSON ({e})") from None
    full = parse_card(full, str(directory / CARD))
    _write_pair(directory, {WEIGHTS: data, CARD: dumps_card(full).encode()})
    return directory


def _write_pair(directory: Path, files: dict[str, bytes]) -> None:
    """Writes every file to a temporary name first and renames them only when all are
    complete, so a full disk leaves the previous weights and card as they were (never
    new weights beside an old card)."""
    directory.mkdir(parents=True, exist_ok=True)
    temps = {}
    try:
        for name, data in files.items():
            fd, temps[name] = _create_temp(directory, name)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for name, tmp in temps.items():
            os.replace(tmp, directory / name)
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)


def write_card(directory: str | Path, card: Card | dict) -> None:
    """The one writer of ``card.json`` (atomic; the weights are not touched). A dict is
    validated first (``write_card(d, {**read_card(d), "scale_study": block})`` works)."""
    atomic_write_bytes(Path(directory) / CARD, dumps_card(card).encode())


_WHERE = "the checkpoint folder"


def read_card(directory: str | Path, root: str | Path | None = None) -> Card:
    """The validated card of a checkpoint directory (:mod:`wsms_viz.cards`).

    ``card.json`` must be a regular file (or a link to one) inside ``root`` (the folder of
    checkpoints), or inside ``directory`` when no root is given, and at most
    :data:`wsms_viz.cards.MAX_CARD_BYTES` long (checked before reading): a link to
    ``/etc/passwd``, a FIFO or ``/dev/zero`` is refused by name, never read.
    """
    directory = Path(directory)
    path = directory / CARD
    if not os.path.lexists(path):
        raise CheckpointError(f"{directory}: no {CARD} (a checkpoint is a directory with {WEIGHTS} and {CARD})")
    try:
        text = read_regular(path, (root if root is not None else directory,), MAX_CARD_BYTES, _WHERE)
    except FileRefused as e:
        if e.size is not None:
            raise CheckpointError(f"{directory.name}: {CARD} is {e.size} bytes, too big for a card") from None
        raise CheckpointError(f"{directory.name}: {e}") from None
    return loads_card(text, str(path))


_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _read_weights(path: Path, expected_sha: str, max_bytes: int, within: str | Path) -> dict[str, torch.Tensor]:
    if not os.path.lexists(path):
        raise CheckpointError(f"{path.parent}: no {WEIGHTS}")
    try:
        with open_regular(path, (within,), where=_WHERE) as f:  # regular, inside: or refused by name
            size = os.fstat(f.fileno()).st_size
            head = f.read(len(LFS_POINTER))
            if head == LFS_POINTER:
                raise CheckpointError(f"{path}: a Git LFS pointer, not the weights; run `git lfs pull` to fetch them")
            if size > max_bytes:  # refused before reading: the model cannot need more
                raise CheckpointError(f"{path}: {size} bytes, more than this model's weights can take "
                                      f"({max_bytes}); not read")
            data = head + f.read(max_bytes + 1 - len(head))
        if len(data) > max_bytes:
            raise CheckpointError(f"{path.parent.name}: {WEIGHTS} grew past {max_bytes} bytes while it was read")
    except FileRefused as e:
        raise CheckpointError(f"{path.parent.name}: {e}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or e})") from None
    if data.startswith(_PICKLE_MAGIC):
        raise CheckpointError(
            f"{path}: this is a pickle (a torch.save file), not safetensors; pickles can run "
            "code when loaded, so they are never opened here"
        )
    if hashlib.sha256(data).hexdigest() != expected_sha:
        raise CheckpointError(f"{path}: the weights' sha256 does not match the card (file changed or truncated)")
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def _build(directory: Path, card: Card) -> nn.Module:
    """The card's model, after its size is known: built on the meta device first (no
    memory), refused over :data:`MAX_PARAMS`, then built for real."""
    try:
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(card.model, **card.config).parameters())
        if params > MAX_PARAMS:
            raise CheckpointError(f"{directory}: card field 'config' gives {card.model} {params:,} parameters "
                                  f"(at most {MAX_PARAMS:,})")
        return create_model(card.model, **card.config)
    except CheckpointError:
        raise
    except Exception as e:  # any config a builder rejects (e.g. integration="5x5")
        raise CheckpointError(f"{directory}: card field 'config': cannot build {card.model!r} from it: {e}") from None


def _resolve_inside(directory: Path, root: str | Path | None) -> Path:
    if root is None:
        return directory
    real, real_root = directory.resolve(), Path(root).resolve()
    if real != real_root and real_root not in real.parents:
        raise CheckpointError(f"{directory.name}: resolves outside the checkpoint folder; not loaded")
    return directory


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu",
                    root: str | Path | None = None) -> Checkpoint:
    """Loads a checkpoint directory into a fresh model in eval mode.

    Checks, in order: the directory resolves inside ``root`` (when given; a symlink out
    of it is refused); ``card.json`` and ``model.safetensors`` are regular files (a FIFO
    or device is refused) that resolve inside ``root`` (or inside the directory when no
    root is given: a file-level link out of it is refused by its name); the card is
    valid (:func:`wsms_viz.cards.parse_card`: every field typed and in range, the model
    registered, the config bounded); the model it describes is not oversized (built on
    the meta device first); the weights file is no bigger than that model's tensors, is
    not a Git LFS pointer nor a pickle, and its sha256 matches the card; every tensor
    has the model's own dtype (float32 weights) and is finite; the tensors fit the model
    exactly (names and shapes; shared tensors may appear once); the classifier has as
    many outputs as the card has class names.

    Raises:
        CheckpointError: with a message naming what is wrong.
    """
    directory = _resolve_inside(Path(directory), root)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    within = root if root is not None else directory
    card = read_card(directory, within)
    model = _build(directory, card)
    if model.fc.out_features != len(card.classes):
        raise CheckpointError(f"{directory}: the card lists {len(card.classes)} classes but {card.model} has "
                              f"{model.fc.out_features} outputs")
    own = model.state_dict()
    cap = sum(t.numel() * t.element_size() for t in own.values()) + 2**20  # + the header
    state = _read_weights(directory / WEIGHTS, card.sha256, cap, within)
    wrong = [f"{k} is {t.dtype}, expected {own[k].dtype}"
             for k, t in state.items() if k in own and t.dtype != own[k].dtype]
    if wrong:
        raise CheckpointError(f"{directory}: weights of the wrong dtype: {'; '.join(wrong[:3])}")
    bad = [k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{directory}: non-finite values (NaN or inf) in {', '.join(bad[:5])}")
    _load_strict(model, state, directory)
    return Checkpoint(model.to(device).eval(), card, directory)


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    own = model.state_dict()
    aliases: dict[tuple, list[str]] = {}
    for key, t in own.items():
        if t.numel():
            aliases.setdefault((t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)), []).append(key)
    unexpected = [k for k in state if k not in own]
    missing = []
    for group in aliases.values():
        if not any(k in state for k in group):
            missing += group
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in state if k in own and state[k].shape != own[k].shape]
    if unexpected or missing or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"shape mismatch: {'; '.join(shapes[:3])}")
        raise CheckpointError(f"{where}: the weights do not fit {model.model_name}: {'; '.join(parts)}")
    with torch.no_grad():
        for key, t in state.items():
            own[key].copy_(t)


def find_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories (those with a card) directly under ``root``, sorted; one
    that resolves outside ``root`` (a symlink out of it), or whose card is not a regular
    file inside ``root`` (a link out of it, a FIFO), is not listed, so no page reads it."""
    root = Path(root)
    if not root.is_dir():
        return []
    real_root = root.resolve()
    return sorted(p for p in root.iterdir()
                  if (p / CARD).is_file() and real_root in p.resolve().parents and inside_any(p / CARD, (root,)))
