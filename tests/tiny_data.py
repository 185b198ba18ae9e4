"""Tiny datasets and checkpoints made on the spot, so the tests need no /work/shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_imagefolder(root: Path, classes=("cat", "dog", "frog"), per_class: int | dict = 10, size: int = 32,
                     seed: int = 0, train_dir: bool = False, suffix: str = ".png") -> dict[str, np.ndarray]:
    """Writes ``root/<class>/<NNNN><suffix>`` (under ``root/train/`` if ``train_dir``) of
    random RGB noise, a different mean brightness per class; PNG keeps the pixels exact.

    Returns the written pixels, ``{relative path: (H, W, 3) uint8}``.
    """
    rng = np.random.default_rng(seed)
    base = Path(root) / "train" if train_dir else Path(root)
    written = {}
    for c, name in enumerate(classes):
        n = per_class[name] if isinstance(per_class, dict) else per_class
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            px = rng.integers(0, 256, (size, size, 3)).astype(np.int64)
            px = np.clip(px // 2 + 40 * c, 0, 255).astype(np.uint8)
            Image.fromarray(px).save(base / name / f"{i:04d}{suffix}")
            written[f"{name}/{i:04d}{suffix}"] = px
    return written
