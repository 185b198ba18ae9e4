"""What the command-line tools here share: the checkpoints-and-val-data arguments, and
what they do with bad input (one line on stderr, exit 2) and with a file they cannot
write (one line on stderr, exit 4, as the trainer)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .checkpoint import CheckpointError
from .data import DEFAULT_CACHE


def add_val_data_arguments(p: argparse.ArgumentParser) -> None:
    """The checkpoints to measure and the data whose val split measures them (evaluate, study)."""
    p.add_argument("checkpoints", nargs="+", type=Path, metavar="CKPT_DIR")
    p.add_argument("--data", default="imagefolder:../shared/datasets/cifar10-jpeg",
                   help="imagefolder:PATH, cifar10:ROOT or cifar100:ROOT (its val split is evaluated)")
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR (online machines)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)


class WriteError(Exception):
    """A file the command writes could not be written; the message names it (exit 4)."""


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """An ``OSError`` inside the block (read-only file or folder, full disk, an immutable
    file) becomes a :class:`WriteError` naming ``path``."""
    try:
        yield
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None


@contextmanager
def bad_input_exits_2() -> Iterator[None]:
    """A bad checkpoint, data source, image folder or argument value (``CheckpointError``,
    ``ValueError``) inside the block becomes ``error: <message>`` and exit code 2; a
    :class:`WriteError` becomes its message and exit code 4."""
    try:
        yield
    except WriteError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(4) from None
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def at_least(value: int | None, lo: int, flag: str) -> None:
    """Refuses ``flag``'s ``value`` below ``lo`` (a ``ValueError``: exit 2, one line)."""
    if value is not None and value < lo:
        raise ValueError(f"{flag} must be {lo} or more, got {value}")
