"""Images for the app: a labelled gallery, sample photos and safe decoding of uploads.

Everything returns ``(H, W, 3)`` uint8 numpy arrays at the image's own resolution, or for
a big photo a working copy whose short side is :data:`WORKING_SIDE` (all the 3x zoom can
use) and long side at most :data:`MAX_WORKING_LONG`; the app zooms them with :func:`wsms_viz.zoom.zoom` and only then
resizes to 32x32, so a large photo shows real detail when zoomed into.

* :class:`Gallery` reads the validation images of a dataset directory: an ImageFolder
  (``root/<class>/<file>``; the shared ``cifar10-jpeg`` layout with ``train/`` uses its
  val split, the last 10% of each class's files by name, as :mod:`wsms_viz.data` splits) or a torchvision CIFAR
  root (``cifar-10-batches-py`` / ``cifar-100-python``, its test set). It lists and reads
  only real folders and regular files inside the root (links out of it, FIFOs, devices and
  files over the upload limit are left out; :mod:`wsms_viz.files`).
* :func:`sample_photos` are real photos bundled with the package: a cat, a horse, ...
* :func:`decode_image` turns untrusted bytes into RGB or raises :class:`ImageError`
  with a message for a person: zero bytes, not an image (an SVG is named as such), truncated,
  too many pixels (checked from the header before anything is decoded: "too large", with
  how to shrink it), and it converts EXIF-rotated, palette, transparent, CMYK, 16-bit,
  greyscale, animated and multi-page images correctly. It opens only :data:`FORMATS`, and
  its memory is bounded: the decoded raster plus a few MB (tiles), one big raster at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import os
import pickle
import re
import stat
import struct
import sys
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data import IMAGE_FORMATS, IMAGE_SUFFIXES, VAL_FRACTION, val_part  # noqa: F401 (IMAGE_SUFFIXES: ui imports it here)
from ..files import FileRefused, inside_any, open_regular, read_regular
from ..zoom import CIFAR10_MEAN

# A 12-megapixel phone photo is 12M pixels; 50M leaves room for large camera files while
# refusing the classic decompression bombs (a few KB that claim gigapixels). Decoding a
# 50M-pixel RGB image takes 150 MB, which this app can afford; PIL's own guard is set to
# the same limit so it also protects code paths that do not go through decode_image.
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Streamlit's server.maxUploadSize (.streamlit/config.toml) is in megabytes of 10**6 bytes:
# the browser refuses a file over 25 * 10**6 bytes, and so does the app, files from a
# data root included.
MAX_UPLOAD_MB = 25  # keep equal to server.maxUploadSize in .streamlit/config.toml
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000
# Transparent areas are filled with the CIFAR-10 mean colour, the same grey the zoom
# transform pads with: after normalisation it is 0, so it adds no edge the network has
# not seen at every border of every training image.
BACKGROUND = tuple(round(255 * m) for m in CIFAR10_MEAN)
SMALL_SIDE = 8  # below this many pixels on a side the app warns the image is tiny
# The networks see 32x32 and the app zooms in at most 3x (3.375x with the multi-scale
# averaging), so the square it crops never needs more than 32 * 3.375 = 108 pixels a side
# to give the network every pixel it can take. A photo is decoded into a working copy
# whose short side is WORKING_SIDE (a JPEG decoded straight at 1/2, 1/4 or 1/8 of its size
# by the decoder, then every image resized to that short side): 4x that margin,
# so the anti-aliased shrink to 32x32 sees the same detail (tests/test_images.py
# compares the network inputs with the full-resolution ones) and the thumbnail on the
# page stays sharp. A 50 MP photo then costs 1 MB instead of 150 MB per step.
WORKING_SIDE = 512
ZOOM_NEEDS = 108  # 32 * 3.375: below this short side the largest zoom gets fewer pixels than it could use
# A panorama's long side is capped too (a 60,000x800 one would otherwise stay 38,400x512,
# 59 MB per session): at 8x the short side of a working copy, at most 4096x512x3 = 6 MB.
MAX_WORKING_LONG = 8 * WORKING_SIDE
# Decoding a row tens of millions of pixels long needs buffers of several full rows (a
# 49,000,000x1 PNG took 470 MB), and no camera writes one: refused from the header.
MAX_SIDE = 65_535
# Rasters over this many pixels (16 MB at Pillow's 4 bytes a pixel; a phone's JPEG is
# decoded at a quarter of its size, below this) decode one at a time, in one thread.
BIG_DECODE_PIXELS = 4_000_000
_BIG_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wsms-big-decode")
# Converting and shrinking work on tiles of about this many pixels (8 MB as float64).
TILE_PIXELS = 1 << 20
REDUCING_GAP = 3.0  # box-reduce first while the result stays >= 3x the target, as Pillow's resize


class ImageError(ValueError):
    """An upload that cannot be shown; the message says why, for the person who sent it."""


@dataclass
class DecodedImage:
    """An image ready for the app.

    Attributes:
        pixels: ``(H, W, 3)`` uint8 RGB at the file's own resolution, upright.
        name: where it came from (file name, ``cat #3``, ...).
        notes: what was done to it, in words for the page ("rotated upright ...").
        label: the true class name when known (gallery images), else None.
        key: a short stable id (content hash) for caches.
    """

    pixels: np.ndarray
    name: str
    notes: list[str] = field(default_factory=list)
    label: str | None = None
    key: str = ""

    def __post_init__(self):
        if not self.key:
            self.key = hashlib.sha256(self.pixels.tobytes()).hexdigest()[:16] + f"-{self.pixels.shape}"


# --- decoding untrusted bytes -------------------------------------------------------

def decode_image(data: bytes, name: str = "upload") -> DecodedImage:
    """Decodes an uploaded file into an upright RGB image, or raises :class:`ImageError`.

    Only the formats of :data:`ALLOWED_FORMATS` are opened (Pillow knows many more, some
    of which hand the file to other programs: EPS to Ghostscript). Memory is bounded: the
    pixel count is checked from the header before decoding, and the decoded image is
    converted to 8-bit RGB and shrunk tile by tile (:func:`_working_rgb`), so no full-size
    copy in another mode (a float64 one of a float TIFF, an RGBA one of a palette PNG) is
    ever made: a 50-million-pixel image costs its decoded raster (at most 4 bytes a pixel)
    plus a few MB.

    Args:
        data: the file's bytes.
        name: the file name, used in messages.

    Example:
        >>> buf = io.BytesIO(); Image.new("L", (4, 2), 128).save(buf, "PNG")
        >>> decode_image(buf.getvalue()).pixels.shape
        (2, 4, 3)
    """
    if not data:
        raise ImageError(f"{name} is empty (0 bytes): nothing to show. Pick another file.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(_too_many_bytes(name, len(data)))
    try:
        with warnings.catch_warnings():
            # PIL warns (rather than raises) between MAX_IMAGE_PIXELS and twice that.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            _check_size(im.size, name)  # from the header only: nothing decoded yet
            notes: list[str] = []
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                im.seek(0)
                notes.append(f"multi-page TIFF with {frames} pages: showing the first page only"
                             if im.format == "TIFF" else
                             f"animated image with {frames} frames: showing the first frame only")
            full = im.size
            target = working_size(full)
            if im.format in ("JPEG", "MPO") and target != full:
                # The decoder itself scales by 1/2, 1/4 or 1/8 (never below the request).
                im.draft(im.mode, target)
            if im.size[0] * im.size[1] > BIG_DECODE_PIXELS:
                # A big raster decodes one at a time, server-wide, in one thread: uploads
                # that arrive together wait their turn (a second or two each) instead of
                # adding their peaks up, and the memory freed afterwards is given back.
                rgb, orientation = _BIG_DECODER.submit(_decode_big, im, target, notes).result()
            else:
                rgb, orientation = _decode_loaded(im, target, notes)
            rgb = _upright(rgb, orientation, notes)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # PIL refuses at open() when the header claims over twice MAX_PIXELS; its message
        # has the pixel count. Said as "too large", with the way out: this is usually a
        # real photo (a real bomb gets the same refusal, before anything is decoded).
        claimed = re.search(r"\((\d+) pixels\)", str(e))
        raise ImageError(_too_large(name, f"{int(claimed.group(1)) / 1e6:.0f} million pixels" if claimed
                                    else f"more than {MAX_PIXELS / 1e6:.0f} million pixels")) from None
    except UnidentifiedImageError:
        raise ImageError(_unreadable(name, data)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        # PIL reports truncated and corrupt data as OSError ("image file is truncated"),
        # SyntaxError (bad headers) or ValueError; all mean the same to the user.
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded ({e}).") from None
    h, w = rgb.shape[:2]
    up_w, up_h = (full[1], full[0]) if orientation in _SIDEWAYS else full
    if (w, h) != (up_w, up_h):
        notes.append(f"a {up_w}x{up_h} photo, worked on at {w}x{h}: enough for the 3x zoom, since the networks "
                     "see 32x32 pixels (and much faster)" if min(h, w) >= ZOOM_NEEDS else
                     f"a {up_w}x{up_h} image, far longer than it is wide: worked on at {w}x{h} (its long "
                     f"side at most {MAX_WORKING_LONG} pixels)")
    if min(h, w) < SMALL_SIDE:
        notes.append(f"tiny image ({w}x{h} pixels): the network will see little more than flat colour")
    return DecodedImage(rgb, name, notes)


FORMATS = "JPEG, PNG, GIF, BMP, WebP, TIFF or PPM"
ALLOWED_FORMATS = IMAGE_FORMATS  # Pillow's names of FORMATS: nothing else is ever opened


def _unreadable(name: str, data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head) or name.lower().endswith(".svg"):
        return (f"{name} is an SVG drawing (a vector format this app cannot read). Export it as PNG or JPEG "
                f"and upload that: this app reads {FORMATS}.")
    return f"{name} is not an image this app can read: it reads {FORMATS}."


def _too_many_bytes(name: str, size: int) -> str:
    return f"{name} is {size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB."


def _too_large(name: str, how_big: str) -> str:
    side = int((MAX_PIXELS * 0.9) ** 0.5) // 100 * 100
    return (f"{name} is too large: {how_big}, and this app decodes at most {MAX_PIXELS / 1e6:.0f} million. "
            f"Shrink it, e.g. to {side}x{side} or less (any photo editor's 'resize' or 'export for web' "
            "does it), and upload that: the networks see 32x32 pixels, so nothing is lost. "
            "(Checked from the file's header: refused before decoding.)")


def _check_size(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageError(f"{name} has no pixels ({w}x{h}).")
    if w * h > MAX_PIXELS:
        raise ImageError(_too_large(name, f"{w}x{h} = {w * h / 1e6:.0f} million pixels"))
    if max(w, h) > MAX_SIDE:
        raise ImageError(f"{name} is {w}x{h} pixels: {max(w, h):,} pixels along one side, and this app takes at "
                         f"most {MAX_SIDE:,} (the JPEG format's own limit). Crop it to the part you want the "
                         "networks to see and upload that. (Checked from the file's header: refused before "
                         "decoding.)")


def working_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` of the working copy of an image of ``size``: its short side at
    most :data:`WORKING_SIDE` and its long side at most :data:`MAX_WORKING_LONG`, the
    aspect ratio kept; ``size`` itself when it is within both.

    Example:
        >>> working_size((3600, 2400)), working_size((60_000, 20)), working_size((300, 200))
        ((768, 512), (4096, 1), (300, 200))
    """
    w, h = size
    s = min(WORKING_SIDE / min(w, h), MAX_WORKING_LONG / max(w, h))
    if s >= 1:
        return size
    return min(max(1, round(w * s)), MAX_WORKING_LONG), min(max(1, round(h * s)), MAX_WORKING_LONG)


def _decode_loaded(im: Image.Image, target: tuple[int, int], notes: list[str]) -> tuple[np.ndarray, object]:
    """Decodes ``im`` and makes its working copy; its raster is freed before returning."""
    try:
        im.load()
        orientation = im.getexif().get(0x0112)
        return _working_rgb(im, target, notes), orientation
    finally:
        im.close()


def _libc_malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def _decode_big(im: Image.Image, target: tuple[int, int], notes: list[str]) -> tuple[np.ndarray, object]:
    """:func:`_decode_loaded` in the one big-decode thread, then the freed memory given back.

    glibc keeps freed memory in the malloc arena of the thread that freed it, and Streamlit
    runs every rerun in a new thread: decoding in the session's thread, each big upload
    left up to its raster's worth of resident memory behind in some arena (the idle
    server grew by about 200 MB per 49 MP upload). One thread means one arena, trimmed
    after each decode (milliseconds)."""
    try:
        return _decode_loaded(im, target, notes)
    finally:
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)


def _working_rgb(im: Image.Image, target: tuple[int, int], notes: list[str]) -> np.ndarray:
    """The loaded image ``im`` (any mode) as ``(H, W, 3)`` uint8 of ``target`` size.

    Tile by tile (about :data:`TILE_PIXELS` each): converted to 8-bit RGB, then box-reduced
    by the whole factor Pillow's own ``resize(reducing_gap=3)`` would use, into one small
    array; a Lanczos resize of that gives ``target``. Tiles span whole reduction boxes, so
    this is the same image a full-size convert and resize give (the conversions are per
    pixel), without their full-size temporaries.
    """
    w, h = im.size
    tw, th = target
    kx, ky = max(1, int(w / tw / REDUCING_GAP)), max(1, int(h / th / REDUCING_GAP))
    convert = _tile_converter(im, notes)
    out = np.empty((-(-h // ky), -(-w // kx), 3), np.uint8)
    tile_w = max(kx, min(w, 1024) // kx * kx)
    tile_h = max(ky, TILE_PIXELS // tile_w // ky * ky)
    for y in range(0, h, tile_h):
        for x in range(0, w, tile_w):
            tile = Image.fromarray(convert(im.crop((x, y, min(x + tile_w, w), min(y + tile_h, h)))))
            if kx > 1 or ky > 1:
                tile = tile.reduce((kx, ky))
            out[y // ky:y // ky + tile.height, x // kx:x // kx + tile.width] = np.asarray(tile)
    if (out.shape[1], out.shape[0]) != target:
        out = np.asarray(Image.fromarray(out).resize(target, Image.Resampling.LANCZOS, box=(0, 0, w / kx, h / ky)))
    return out


def _tile_converter(im: Image.Image, notes: list[str]):
    """A function from a tile of ``im`` to ``(h, w, 3)`` uint8 RGB, the same for every tile
    (so ranges and notes are settled here, for the whole image)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _wide_grey_converter(im, notes)
    if mode == "P":
        alpha = "transparency" in im.info
        to = "RGBA" if alpha else "RGB"
        if not alpha:
            return lambda t: np.asarray(t.convert("RGB"))
        mode = to
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        seen_transparent = []

        def composite(t: Image.Image) -> np.ndarray:
            rgba = t.convert("RGBA")
            if not seen_transparent and rgba.getextrema()[3][0] < 255:
                seen_transparent.append(True)
                notes.append("transparent areas filled with grey (the CIFAR-10 mean colour)")
            bg = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
            return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))

        return composite
    if mode == "CMYK":
        notes.append("converted from CMYK to RGB")
    elif mode in ("L", "1"):
        notes.append("greyscale: the same grey in all three colour channels")
    return lambda t: np.asarray(t.convert("RGB"))


def _tiles(im: Image.Image):
    w, h = im.size
    rows = max(1, TILE_PIXELS // w)
    for y in range(0, h, rows):
        for x in range(0, w, TILE_PIXELS):
            yield im.crop((x, y, min(x + TILE_PIXELS, w), min(y + rows, h)))


def _grey_values(tile: Image.Image) -> np.ndarray:
    a = np.asarray(tile)
    return (a[..., 0] if a.ndim == 3 else a).astype(np.float64)


def _wide_grey_converter(im: Image.Image, notes: list[str]):
    """16-bit, 32-bit integer or float greyscale to 8 bits by its value range.

    ``Image.convert("L")`` clips such images at 255 (a 16-bit photo comes out white), so
    the values are scaled: 16-bit data by 65535 / 255 (its full range, as a viewer shows
    it), 32-bit integers and floats, whose range the file does not say, from their own
    min and max (over the finite values; NaN comes out black, infinities black or white).
    """
    if im.mode.startswith("I;16"):
        notes.append("16-bit greyscale scaled to 8 bits")
        scale = (0.0, 1 / 257)
    else:
        lo, hi = np.inf, -np.inf
        for t in _tiles(im):  # a first pass for the range, a tile at a time
            a = _grey_values(t)
            a = a[np.isfinite(a)]
            if a.size:
                lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
        if not lo <= hi:  # no finite value at all
            lo = hi = 0.0
        if lo >= 0 and hi <= 255:
            scale = (0.0, 1.0)
        else:
            scale = (lo, 255 / (hi - lo) if hi > lo else 0.0)
            notes.append(f"{im.mode} greyscale stretched from [{lo:g}, {hi:g}] to 8 bits")

    def convert(t: Image.Image) -> np.ndarray:
        a = (_grey_values(t) - scale[0]) * scale[1]
        g = np.clip(np.rint(np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)

    return convert


# EXIF orientation -> the transpose that turns the stored pixels upright (as
# ImageOps.exif_transpose does); 1 is upright, and any other value (0, 9, 65535 occur
# in the wild) is not an orientation: nothing is turned and nothing is said.
_EXIF_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_90}
_SIDEWAYS = (5, 6, 7, 8)


def _upright(rgb: np.ndarray, orientation, notes: list[str]) -> np.ndarray:
    """``rgb`` turned by its EXIF ``orientation`` (after shrinking, so it costs little)."""
    turn = _EXIF_TURNS.get(orientation) if isinstance(orientation, int) else None
    if turn is None:
        return rgb
    notes.append(f"turned upright using the photo's EXIF orientation (tag {orientation})")
    return np.asarray(Image.fromarray(rgb).transpose(turn))


def load_image_file(path: str | Path, within: Iterable[str | Path] = ()) -> DecodedImage:
    """Reads an image file from disk through the same checks as an upload, after the
    checks of :func:`wsms_viz.files.open_regular`: a regular file (no FIFO, no device),
    inside ``within`` when given (symlinks resolved), at most :data:`MAX_UPLOAD_BYTES`
    (its size known before a byte is read). Messages name it by its file name only."""
    path = Path(path)
    try:
        data = read_regular(path, within, MAX_UPLOAD_BYTES)
    except FileRefused as e:
        if e.size is not None:
            raise ImageError(_too_many_bytes(path.name, e.size)) from None
        raise ImageError(str(e)) from None
    return decode_image(data, path.name)


# --- sample photos with no dataset -----------------------------------------------

# name -> (file in samples/, CIFAR-10 class or None, caption). The photos are scikit-image's
# sample data, copied into the package so the app needs no image library's data; each one's
# source and licence are in samples/README.md.
_SAMPLES: dict[str, tuple[str, str | None, str]] = {
    "chelsea (a cat)": ("chelsea.png", "cat", "Chelsea the cat, scikit-image's sample photo"),
    "horse (silhouette)": ("horse.png", "horse", "a black-and-white horse silhouette"),
    "rocket": ("rocket.jpg", None, "a rocket on its launch pad (no CIFAR-10 class)"),
    "coffee": ("coffee.jpg", None, "a cup of coffee (no CIFAR-10 class)"),
    "astronaut": ("astronaut.jpg", None, "astronaut Eileen Collins (no CIFAR-10 class)"),
}


def sample_photos() -> list[str]:
    """Names of the sample photos bundled with the package (``wsms_viz/app/samples/``)."""
    return list(_SAMPLES)


@lru_cache(maxsize=8)
def _sample_pixels(file: str) -> np.ndarray:
    data = (resources.files(__package__) / "samples" / file).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("RGB"))  # the horse is a 1-bit PNG: black shape on white
    a.setflags(write=False)
    return a


def load_sample(name: str) -> DecodedImage:
    """A bundled sample photo, labelled with its CIFAR-10 class when it has one.

    Example:
        >>> load_sample("chelsea (a cat)").label
        'cat'
    """
    if name not in _SAMPLES:
        raise ValueError(f"unknown sample photo {name!r}; known: {', '.join(_SAMPLES)}")
    file, label, caption = _SAMPLES[name]
    return DecodedImage(_sample_pixels(file), name, [caption], label=label,
                        key=f"sample:{file.rsplit('.', 1)[0]}")


# --- a labelled gallery from a dataset directory -------------------------------------



@dataclass(frozen=True)
class GalleryItem:
    label: int
    index: int  # position within its class
    path: str | None = None  # an image file, or None for an in-memory CIFAR array


class Gallery:
    """Labelled validation images of one dataset directory.

    Args:
        root: an ImageFolder directory (``root/<class>/<image>``), a directory holding
            such a folder as ``val/``, ``test/`` or ``train/`` (``train/`` in the
            ``cifar10-jpeg`` layout gives its val split), or a torchvision CIFAR root.

    Raises:
        ImageError: when ``root`` is none of these; the message says what was found.
    """

    def __init__(self, root: str | Path):
        self.root = Path(os.path.realpath(Path(root).expanduser()))
        self._array: np.ndarray | None = None
        if not self.root.is_dir():
            raise ImageError(f"dataset directory {self.root} does not exist")
        cifar = _find_cifar_batches(self.root)
        if cifar is not None:
            self.kind = "torchvision CIFAR (test set)"
            self.classes, self._array, labels = cifar
            per: dict[int, int] = {}
            items = []
            for lab in labels:
                items.append(GalleryItem(int(lab), per.get(int(lab), 0)))
                per[int(lab)] = per.get(int(lab), 0) + 1
            self.items = items
            self.split_note = f"the {len(items):,} images of the official test set"
            return
        folder, split_note = _pick_image_folder(self.root)
        self.kind = "ImageFolder"
        # Only real folders and regular files inside the root: a link out of it, a FIFO or
        # a device in it is never listed (and reading checks again, see load_image_file).
        self.classes = sorted(p.name for p in _class_folders(folder, self.root))
        items, left_out = [], 0
        use_val_range = folder.name == "train"
        for c, cls in enumerate(self.classes):
            files = sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if use_val_range:  # the trainer's val split: data.val_part, over the same names it lists
                files = val_part(files)
            safe = [p for p in files if _regular_inside(p, self.root)]
            left_out += len(files) - len(safe)
            items += [GalleryItem(c, i, str(p)) for i, p in enumerate(safe)]
        if left_out:
            print(f"wsms-viz: {left_out} entries of {self.root} left out of its gallery: links out of the folder, "
                  f"not regular files, or over {MAX_UPLOAD_BYTES:,} bytes", file=sys.stderr)
        if not items:
            raise ImageError(f"{folder} has class folders but no images in them")
        self.items = items
        self.split_note = split_note

    def __len__(self) -> int:
        return len(self.items)

    def of_class(self, label: int) -> list[GalleryItem]:
        return [it for it in self.items if it.label == label]

    def load(self, item: GalleryItem) -> DecodedImage:
        cls = self.classes[item.label]
        name = f"{cls} #{item.index}"
        if item.path is None:
            a = self._array[self.items.index(item)]
            return DecodedImage(a, name, label=cls, key=f"cifar:{self.root}:{item.label}:{item.index}")
        img = load_image_file(item.path, within=(self.root,))
        img.name, img.label, img.key = name, cls, f"file:{item.path}"
        return img

    def at(self, index: int) -> DecodedImage:
        """The ``index``-th image in gallery order (class by class, files sorted)."""
        if not 0 <= index < len(self.items):
            raise IndexError(f"gallery index {index} out of range 0..{len(self.items) - 1}")
        return self.load(self.items[index])


def _regular_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is a regular file, or a link to one, that lies inside ``root`` and
    is no bigger than an upload may be."""
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            if not inside_any(path, (root,)):
                return False
            st = path.stat()
        return stat.S_ISREG(st.st_mode) and st.st_size <= MAX_UPLOAD_BYTES
    except OSError:
        return False


def _folder_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is a folder, or a link to one, that lies inside ``root``."""
    return path.is_dir() and inside_any(path, (root,))


def _class_folders(path: Path, root: Path) -> list[Path]:
    return [p for p in path.iterdir() if not p.name.startswith(".") and _folder_inside(p, root)]


def _is_image_folder(path: Path, root: Path) -> bool:
    subdirs = _class_folders(path, root) if _folder_inside(path, root) else []
    return any(any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir()) for d in subdirs[:50])


def _pick_image_folder(root: Path) -> tuple[Path, str]:
    for sub, note in (("val", "its val/ folder"), ("test", "its test/ folder")):
        if _is_image_folder(root / sub, root):
            return root / sub, note
    train = root / "train"
    if _is_image_folder(train, root):
        return train, (f"the val split: the last {VAL_FRACTION:.0%} of each class's files by name, "
                       "never trained on")
    if _is_image_folder(root, root):
        return root, "every image in it"
    raise ImageError(
        f"{root} is not an ImageFolder (class sub-folders with images), a folder with val/, test/ or "
        "train/ inside, nor a torchvision CIFAR root (cifar-10-batches-py)"
    )


class _ArraysOnly(pickle.Unpickler):
    """CIFAR's python batches are pickles; this unpickler builds only plain containers
    and numpy arrays, so a doctored file cannot run code (torchvision uses plain
    ``pickle.load``, and is only an optional extra here)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


MAX_CIFAR_BATCH_BYTES = 256 * 2**20  # a CIFAR test batch is 31 MB


def _unpickle(path: Path, root: Path) -> dict:
    with open_regular(path, (root,), MAX_CIFAR_BATCH_BYTES) as f:
        return _ArraysOnly(f, encoding="latin1").load()


def _find_cifar_batches(root: Path) -> tuple[list[str], np.ndarray, list[int]] | None:
    for sub, meta_name, test_name, label_key, names_key in (
        ("cifar-10-batches-py", "batches.meta", "test_batch", "labels", "label_names"),
        ("cifar-100-python", "meta", "test", "fine_labels", "fine_label_names"),
    ):
        d = root / sub if (root / sub).is_dir() else (root if root.name == sub else None)
        if d is None or not (d / test_name).is_file():
            continue
        try:
            meta, test = _unpickle(d / meta_name, root), _unpickle(d / test_name, root)
            data = np.asarray(test["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return list(meta[names_key]), data, [int(x) for x in test[label_key]]
        except (OSError, KeyError, ValueError, pickle.UnpicklingError, EOFError) as e:
            # FileRefused is a ValueError: a link out of the root, a FIFO, an oversized batch.
            raise ImageError(f"{d} looks like a CIFAR root but cannot be read: {e}") from None
    return None


def encode(pixels: np.ndarray, max_side: int | None = None, fmt: str = "PNG") -> bytes:
    """PNG (or JPEG) bytes of an ``(H, W, 3)`` uint8 image, shrunk to ``max_side`` if larger."""
    im = Image.fromarray(np.ascontiguousarray(pixels))
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()
