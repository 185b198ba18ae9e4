"""Pick the demo set the app ships: real CIFAR-10 val images for a server with no dataset.

    python scripts/make_demo_set.py            # ../shared/datasets/cifar10-jpeg, 13 a class, seed 0

Every image of the evaluator's two example lists (``checkpoints/examples.json``: "baseline
wrong, WSMS right" and the reverse) is taken, so both lists work with no dataset; each
class is then filled up to ``--per-class`` images drawn at random (``--seed``) from the
rest of that class's val split (the last 10% of its files by name, ``wsms_viz.data.val_part``:
never trained on). A class with more example images than ``--per-class`` keeps them all.

The images are written as lossless PNGs of the decoded JPEG, pixel for pixel what the app
and the evaluator read from the dataset (so the examples' predictions hold for the copies),
into ``wsms_viz/app/demo/<class>/<NNNN>.png``, with ``manifest.json`` listing each file,
its class, the dataset file it was copied from and the example lists it belongs to. The
previous PNGs there are removed first: the same arguments give the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wsms_viz.data import IMAGE_SUFFIXES, val_part  # noqa: E402

LISTS = ("examples", "reverse")  # the example lists the app offers
SIZE = 32


def pick(val_files: dict[str, list[str]], required: dict[str, set[str]], per_class: int,
         seed: int) -> dict[str, list[str]]:
    """Per class: the ``required`` files, then seeded random val files up to ``per_class``.

    Args:
        val_files: class -> its val files (``"<class>/<name>"``), in name order.
        required: class -> files that must be in the set (the examples'); each must be a val file.
        per_class: images per class (more when a class has more required ones).
        seed: seed of the draw; one generator per class, so a class's draw does not depend on another's.

    Returns:
        class -> the picked files, sorted by name.

    Example:
        >>> pick({"cat": ["cat/1", "cat/2", "cat/3"]}, {"cat": {"cat/3"}}, 2, 0)["cat"][-1]
        'cat/3'
    """
    out = {}
    for cls, files in val_files.items():
        need = required.get(cls, set())
        missing = need - set(files)
        if missing:
            raise ValueError(f"examples that are not val images of {cls}: {sorted(missing)}")
        rest = [f for f in files if f not in need]
        extra = random.Random(f"{seed}:{cls}").sample(rest, max(0, min(len(rest), per_class - len(need))))
        out[cls] = sorted(need | set(extra))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "cifar10-jpeg",
                   help="the cifar10-jpeg folder (train/<class>/<NNNN>.jpg)")
    p.add_argument("--examples", type=Path, default=REPO / "checkpoints" / "examples.json",
                   help="the evaluator's examples.json whose images must be in the set")
    p.add_argument("--per-class", type=int, default=13, help="images per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "wsms_viz" / "app" / "demo")
    args = p.parse_args(argv)

    train = args.data / "train"
    classes = sorted(d.name for d in train.iterdir() if d.is_dir())
    val_files = {c: [f"{c}/{f.name}" for f in val_part(sorted(f for f in (train / c).iterdir()
                                                             if f.suffix.lower() in IMAGE_SUFFIXES))]
                 for c in classes}
    ex = json.loads(args.examples.read_text(encoding="utf-8"))
    member: dict[str, list[str]] = {}
    for which in LISTS:
        for r in ex.get(which, []):
            member.setdefault(r["file"], []).append(which)
    required: dict[str, set[str]] = {}
    for f in member:
        required.setdefault(f.split("/")[0], set()).add(f)
    picked = pick(val_files, required, args.per_class, args.seed)

    for old in args.out.glob("*/*.png"):
        old.unlink()
    images = []
    for cls in classes:
        (args.out / cls).mkdir(parents=True, exist_ok=True)
        for src in picked[cls]:
            with Image.open(train / src) as im:
                pixels = np.asarray(im.convert("RGB"))
            if pixels.shape != (SIZE, SIZE, 3):
                raise ValueError(f"{src}: {pixels.shape[1]}x{pixels.shape[0]}, not {SIZE}x{SIZE}")
            name = f"{cls}/{Path(src).stem}.png"
            Image.fromarray(pixels).save(args.out / name, optimize=True)
            images.append({"file": name, "label": cls, "source": src, "lists": member.get(src, [])})
    manifest = {
        "name": "Demo set",
        "about": "CIFAR-10 (Krizhevsky, 2009) val images: the last 10% of each class's files by name in the "
                 "45k/5k split, never trained on; lossless PNG copies of the cifar10-jpeg files. Every image "
                 "of the evaluator's example lists, then a seeded random draw per class.",
        "dataset": "cifar10-jpeg/train",
        "examples": "checkpoints/examples.json",
        "per_class": args.per_class,
        "seed": args.seed,
        "made_by": f"python scripts/make_demo_set.py --per-class {args.per_class} --seed {args.seed}",
        "images": images,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    counts = {c: len(v) for c, v in picked.items()}
    print(f"{len(images)} images ({counts}), {len(member)} of them examples; {size / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
