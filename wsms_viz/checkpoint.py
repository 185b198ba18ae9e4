"""Checkpoints: ``model.safetensors`` (weights only) plus ``card.json`` (everything else).

One loader, :func:`load_checkpoint`, serves the app, the evaluator and the tests. It
never unpickles anything and never imports a name found in a file: the card names a
model, which is looked up in the registry. Every failure raises :class:`CheckpointError`
with a message that says what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .models import create_model, list_models, model_config

WEIGHTS = "model.safetensors"
CARD = "card.json"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint directory that cannot be loaded; the message says why."""


@dataclass
class Checkpoint:
    model: nn.Module
    card: dict
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it into place,
    so a kill at any moment leaves either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    """
    directory = Path(directory)
    data = st_save(_unique_state(model), metadata={"format": "pt"})
    full = {
        **card,
        "format_version": FORMAT_VERSION,
        "model": model.model_name,
        "config": model_config(model),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    atomic_write_bytes(directory / WEIGHTS, data)
    atomic_write_json(directory / CARD, full)
    return directory


def read_card(directory: str | Path) -> dict:
    path = Path(directory) / CARD
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {CARD} (a checkpoint is a directory with {WEIGHTS} and {CARD})")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(card).__name__}")
    for key in ("model", "config", "classes", "sha256"):
        if key not in card:
            raise CheckpointError(f"{path}: the card has no {key!r} field")
    return card


_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _read_weights(path: Path, expected_sha: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: no {WEIGHTS}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e})") from None
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


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Loads a checkpoint directory into a fresh model in eval mode.

    Checks, in order: the card is JSON with the needed fields; it names a registered
    model with a config that builds; the weights file is safetensors (not a pickle)
    whose sha256 matches the card; every tensor is finite; the tensors fit the model
    exactly (names and shapes; shared tensors may appear once); the classifier has as
    many outputs as the card has class names.

    Raises:
        CheckpointError: with a message naming what is wrong.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    card = read_card(directory)
    name, config = card["model"], card["config"]
    if not isinstance(name, str) or name not in list_models():
        raise CheckpointError(f"{directory}: the card names unknown model {name!r}")
    if not isinstance(config, dict):
        raise CheckpointError(f"{directory}: the card's config is not an object")
    try:
        model = create_model(name, **config)
    except Exception as e:  # any config a builder rejects (e.g. num_classes=-1 fails inside nn.Linear)
        raise CheckpointError(f"{directory}: cannot build {name!r} from the card's config: {e}") from None
    classes = card["classes"]
    if not isinstance(classes, list) or model.fc.out_features != len(classes):
        n = len(classes) if isinstance(classes, list) else classes
        raise CheckpointError(
            f"{directory}: the card lists {n} classes but {name} has {model.fc.out_features} outputs"
        )
    state = _read_weights(directory / WEIGHTS, card["sha256"])
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
    """Checkpoint directories (those with a card) directly under ``root``, sorted."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if (p / CARD).is_file()) if root.is_dir() else []


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
