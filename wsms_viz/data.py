"""Data: CIFAR from an ImageFolder directory or torchvision, decoded once, augmented on
the training device in batches.

Sources are written ``imagefolder:PATH``, ``cifar10:ROOT`` or ``cifar100:ROOT``.

The split: within each class, the last 10% of the images (in file-name order for an
ImageFolder, in dataset order for torchvision's CIFAR) are validation and never trained
on. For ``../shared/datasets/cifar10-jpeg`` that is exactly its README's split, files
``4500.jpg`` to ``4999.jpg`` of every class (5,000 images), the 45k/5k protocol of He
et al.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor

from .keyed_random import KeyedRandom
from .zoom import CIFAR10_MEAN, CIFAR10_STD, normalize

# Every image file the package reads (datasets, galleries, uploads): what PIL decodes.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
# Pillow's names of those formats: the only ones ever opened (Image.open(..., formats=)),
# whatever a file's bytes claim; Pillow knows many more, some of which hand the file to
# other programs (EPS to Ghostscript). A camera's multi-picture JPEG (MPO) opens as JPEG.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM")
VAL_FRACTION = 0.1
DEFAULT_CACHE = Path(os.environ.get("WSMS_CACHE", Path.home() / ".cache" / "wsms_viz"))

NORMALIZATION = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    # CIFAR-100's own channel statistics.
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclass
class Split:
    images: Tensor  # uint8 (N, 3, H, W)
    labels: Tensor  # int64 (N,)
    indices: list[int]  # positions within the source, for tracing an image back


@dataclass
class Dataset:
    source: str
    classes: list[str]
    train: Split
    val: Split
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: list[str] | None = None  # ImageFolder: relative path of each source image
    skipped: list[str] = field(default_factory=list)  # ImageFolder: files that could not be decoded

    def describe(self) -> dict:
        return {
            "source": self.source,
            "split": f"last {VAL_FRACTION:.0%} of each class is val",
            "train_size": len(self.train.labels),
            "val_size": len(self.val.labels),
            **({"skipped_images": len(self.skipped)} if self.skipped else {}),
        }


def parse_source(source: str) -> tuple[str, str]:
    kind, sep, path = source.partition(":")
    if not sep or kind not in ("imagefolder", "cifar10", "cifar100") or not path:
        raise ValueError(f"data source must be imagefolder:PATH, cifar10:ROOT or cifar100:ROOT, got {source!r}")
    return kind, path


def imagefolder_root(path: str | Path) -> Path:
    """The directory holding the class folders: ``path`` itself, or ``path/train`` when
    that is where the images are (the layout of ``../shared/datasets/cifar10-jpeg``).
    :attr:`Dataset.files` are relative to it."""
    root = Path(path)
    if (root / "train").is_dir() and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.glob("*/*")):
        root = root / "train"
    return root


def _imagefolder_files(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    root = imagefolder_root(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root}: no class folders (expected ImageFolder layout: <class>/<image>)")
    files = []
    for i, c in enumerate(classes):
        imgs = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not imgs:
            raise ValueError(f"{root / c}: no images")
        files += [(str(p), i) for p in imgs]
    return classes, files


def _cache_key(parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def decode_file(path: str | Path, size: int) -> np.ndarray | None:
    """One image as ``(size, size, 3)`` uint8, or None when it cannot be decoded (a
    corrupt or truncated file, not an image at all, a decompression bomb)."""
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _decode_imagefolder(root: Path, cache_dir: Path | None,
                        size: int) -> tuple[list[str], Tensor, Tensor, list[str], list[str]]:
    """Class names, images, labels, the decoded files and the skipped ones."""
    classes, files = _imagefolder_files(root)
    stats = [(f, os.stat(f).st_size, int(os.stat(f).st_mtime)) for f, _ in files]
    key = _cache_key([str(root.resolve()), size, stats])
    cache = cache_dir / f"imagefolder-{key}.safetensors" if cache_dir else None
    if cache is not None and cache.is_file():
        t = load_file(cache)
        kept = t["kept"].tolist() if "kept" in t else range(len(files))  # caches before skipping had all
        return classes, t["images"], t["labels"], *_kept_and_skipped(files, kept)
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    kept = []
    for n, (f, _) in enumerate(files):
        pixels = decode_file(f, size)
        if pixels is not None:
            images[len(kept)] = pixels
            kept.append(n)
    if not kept:
        raise ValueError(f"{root}: none of its {len(files)} images could be decoded")
    imgs = torch.from_numpy(images[:len(kept)]).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([files[i][1] for i in kept], dtype=torch.int64)
    if cache is not None:
        _write_cache(cache, {"images": imgs, "labels": labels, "kept": torch.tensor(kept, dtype=torch.int64)})
    return classes, imgs, labels, *_kept_and_skipped(files, kept)


def _kept_and_skipped(files: list[tuple[str, int]], kept) -> tuple[list[str], list[str]]:
    kept_set = set(kept)
    return [files[i][0] for i in kept], [f for i, (f, _) in enumerate(files) if i not in kept_set]


def _write_cache(cache: Path, tensors: dict[str, Tensor]) -> None:
    # A temporary name of its own: several processes (DDP ranks, two trainings started
    # together) may decode the same folder at once; each renames a complete file into
    # place and the last rename wins with identical content.
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".tmp", dir=cache.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp)
        os.replace(tmp, cache)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _torchvision_cifar(kind: str, root: str, download: bool) -> tuple[list[str], Tensor, Tensor]:
    try:  # imported here: only this source needs it
        from torchvision import datasets
    except Exception as e:  # a torchvision built for another torch fails with RuntimeError, not ImportError
        raise ValueError(f"{kind}: torchvision cannot be imported ({e}); install it with "
                         "`pip install 'wsms-viz[cifar]'`, or use an imagefolder: source instead") from None

    cls = datasets.CIFAR10 if kind == "cifar10" else datasets.CIFAR100
    try:
        ds = cls(root, train=True, download=download)
    except RuntimeError as e:
        raise ValueError(f"{kind} not found under {root!r} ({e}); pass --download on an online machine") from None
    imgs = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return list(ds.classes), imgs, torch.tensor(ds.targets, dtype=torch.int64)


def val_count(n: int, val_fraction: float = VAL_FRACTION) -> int:
    """How many of a class's ``n`` images are val: the one definition of the split.

    Example:
        >>> val_count(5000), val_count(10), val_count(1)
        (500, 1, 0)
    """
    return max(1, round(n * val_fraction)) if n > 1 else 0


def val_part(class_files: list, val_fraction: float = VAL_FRACTION) -> list:
    """The val share of one class's files (already in file-name order): the last
    :func:`val_count` of them. What the app's gallery shows from a training folder."""
    return class_files[len(class_files) - val_count(len(class_files), val_fraction):]


def split_indices(labels: Tensor, val_fraction: float = VAL_FRACTION) -> tuple[list[int], list[int]]:
    """Within each class, the last ``val_fraction`` of its images (in order) are val."""
    train, val = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten().tolist()
        n_val = val_count(len(idx), val_fraction)
        train += idx[: len(idx) - n_val]
        val += idx[len(idx) - n_val:]
    return sorted(train), sorted(val)


def load_dataset(
    source: str, cache_dir: Path | None = DEFAULT_CACHE, download: bool = False, size: int = 32
) -> Dataset:
    """Loads a dataset into uint8 tensors, split into train and val.

    Args:
        source: ``imagefolder:PATH``, ``cifar10:ROOT`` or ``cifar100:ROOT``.
        cache_dir: where decoded ImageFolder images are kept (safetensors); a second
            load of the same files does not decode again. ``None`` disables it.
        download: let torchvision download CIFAR (a user's online machine; never tests).
        size: the side images are resized to if they are not already square ``size``.

    An ImageFolder image that cannot be decoded (corrupt, truncated, not an image) is
    skipped, not fatal: :attr:`Dataset.skipped` lists it and ``describe()`` counts it,
    so the trainer's log and card say how many. The split is made over the images
    that decoded.
    """
    kind, path = parse_source(source)
    files, skipped = None, []
    if kind == "imagefolder":
        root = Path(path)
        if not root.is_dir():
            raise ValueError(f"{root}: no such directory")
        classes, images, labels, files, skipped = _decode_imagefolder(root, cache_dir, size)
        rel_root = imagefolder_root(root)
        files = [Path(f).relative_to(rel_root).as_posix() for f in files]
        skipped = [Path(f).relative_to(rel_root).as_posix() for f in skipped]
    else:
        classes, images, labels = _torchvision_cifar(kind, path, download)
    tr, va = split_indices(labels)
    mean, std = NORMALIZATION["cifar100" if kind == "cifar100" else "cifar10"]
    return Dataset(
        source=source, classes=classes,
        train=Split(images[tr], labels[tr], tr), val=Split(images[va], labels[va], va),
        mean=mean, std=std, files=files, skipped=skipped,
    )


# --- batched augmentation on the training device ------------------------------------

class Augmenter:
    """The paper's augmentation (4-pixel pad, random 32x32 crop, horizontal flip), and
    optionally scale jitter, on whole batches of normalised tensors.

    Padding happens after normalisation with zeros, i.e. with the dataset mean colour,
    the same fill :func:`wsms_viz.zoom.zoom` uses.

    Scale jitter (after VGG's training-scale jittering, ``vgg-lecture.txt``): with
    probability ``jitter_p`` an image is zoomed by a factor drawn log-uniformly from
    ``jitter_range`` (zoom in = crop and enlarge, zoom out = shrink and pad with the
    mean), about a random centre. VGG jittered upwards only (S in [256, 512] for 224
    crops); we jitter both ways over the range the evaluation sweeps, so that the
    jittered baseline is the strongest skeptic of WSMS-Net's scale claim.
    """

    def __init__(self, pad: int = 4, flip: bool = True, jitter_range: tuple[float, float] | None = None,
                 jitter_p: float = 0.5):
        self.pad, self.flip = pad, flip
        self.jitter_range, self.jitter_p = jitter_range, jitter_p

    def __call__(self, x: Tensor, gen: torch.Generator | KeyedRandom) -> Tensor:
        """Augments the batch ``x``; ``gen`` is a CPU ``torch.Generator`` or, for work
        that stays on ``x``'s device (the trainer's captured steps), a
        :class:`~wsms_viz.keyed_random.KeyedRandom` on that device."""
        n, _, h, w = x.shape
        dev = x.device
        if self.jitter_range is not None:
            x = self._jitter(x, gen)
        if self.pad:
            p = self.pad
            padded = F.pad(x, (p, p, p, p))
            oy = _integers(gen, 2 * p + 1, n, dev)
            ox = _integers(gen, 2 * p + 1, n, dev)
            rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
            cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
            b = torch.arange(n, device=dev)[:, None, None, None]
            c = torch.arange(x.shape[1], device=dev)[None, :, None, None]
            x = padded[b, c, rows, cols]
        if self.flip:
            f = _uniform(gen, n, dev) < 0.5
            x = torch.where(f[:, None, None, None], x.flip(3), x)
        return x

    def draw_scales(self, n: int, gen: torch.Generator | KeyedRandom) -> Tensor:
        """The zoom factor of each of ``n`` images: log-uniform in ``jitter_range`` with
        probability ``jitter_p``, else 1 (the regime sampler the scale study tests).
        On the CPU for a generator, on the key's device for a :class:`KeyedRandom`."""
        lo, hi = self.jitter_range
        if isinstance(gen, torch.Generator):
            s = torch.exp(torch.empty(n).uniform_(np.log(lo), np.log(hi), generator=gen))
        else:
            s = torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * gen.rand(n))
        on = _uniform(gen, n, s.device) < self.jitter_p
        return torch.where(on, s, torch.ones_like(s))

    def _jitter(self, x: Tensor, gen: torch.Generator | KeyedRandom) -> Tensor:
        n = x.shape[0]
        s = self.draw_scales(n, gen).to(x.device)
        # The centre moves only as far as keeps a zoomed-in window inside the image.
        room = (1 - 1 / s.clamp(min=1))
        cy = (_uniform(gen, n, x.device) * 2 - 1) * room
        cx = (_uniform(gen, n, x.device) * 2 - 1) * room
        zero = torch.zeros_like(s)
        # Built where x is, from device tensors: nothing is copied from the host mid-step.
        theta = torch.stack([1 / s, zero, cx, zero, 1 / s, cy], 1).view(n, 2, 3)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _uniform(gen: torch.Generator | KeyedRandom, n: int, device) -> Tensor:
    if isinstance(gen, torch.Generator):
        return torch.rand(n, generator=gen).to(device)
    return gen.rand(n)


def _integers(gen: torch.Generator | KeyedRandom, high: int, n: int, device) -> Tensor:
    if isinstance(gen, torch.Generator):
        return torch.randint(0, high, (n,), generator=gen).to(device)
    return gen.randint(high, n)


def to_model_input(images: Tensor, mean, std, device, channels_last: bool = False) -> Tensor:
    """uint8 ``(N, 3, H, W)`` -> normalised float on ``device``."""
    x = normalize(images.to(device, non_blocking=True).float().div_(255), mean, std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
