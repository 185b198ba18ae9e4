"""What the command-line tools here share: the checkpoints-and-val-data arguments, and
what they do with bad input (one line on stderr, exit 2)."""

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


@contextmanager
def bad_input_exits_2() -> Iterator[None]:
    """A bad checkpoint, data source, image folder or argument value (``CheckpointError``,
    ``ValueError``) inside the block becomes ``error: <message>`` and exit code 2."""
    try:
        yield
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
