"""What every command-line tool here does with bad input: one line on stderr, exit 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .checkpoint import CheckpointError


@contextmanager
def bad_input_exits_2() -> Iterator[None]:
    """A bad checkpoint, data source, image folder or argument value (``CheckpointError``,
    ``ValueError``) inside the block becomes ``error: <message>`` and exit code 2."""
    try:
        yield
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
