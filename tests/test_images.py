"""Image handling: every kind of bad or unusual upload through the real decode function,
the gallery over a generated ImageFolder and CIFAR root, and the square crop."""

import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsms_viz.app.framing import frame
from wsms_viz.app.images import (
    BACKGROUND,
    MAX_PIXELS,
    WORKING_SIDE,
    Gallery,
    ImageError,
    decode_image,
    load_sample,
    sample_photos,
)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_with_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width x height``, with one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


# --- refused, with a message ---------------------------------------------------------

def test_zero_bytes():
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", "empty.png")


def test_text_file_is_not_an_image():
    with pytest.raises(ImageError, match="not an image"):
        decode_image(b"hello, this is a text file\n" * 10, "notes.txt")


def test_truncated_jpeg():
    data = encode(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=90)
    with pytest.raises(ImageError, match="damaged or truncated"):
        decode_image(data[: len(data) // 2], "cut.jpg")


def test_truncated_png():
    data = encode(Image.effect_noise((128, 128), 60).convert("RGB"), "PNG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        decode_image(data[: len(data) // 3], "cut.png")


@pytest.mark.parametrize("size", [(30000, 30000), (60_000_000, 1), (8000, 7000)])
def test_decompression_bomb_refused_from_the_header(size):
    # The header claims the size; nothing is decoded (decoding 30000x30000 would take 2.7 GB).
    assert size[0] * size[1] > MAX_PIXELS
    with pytest.raises(ImageError, match="million pixels"):
        decode_image(png_with_header(*size), "bomb.png")


def test_real_one_bit_bomb_refused():
    # A genuinely encoded 1-bit 8000x8000 PNG compresses to a few KB.
    data = encode(Image.new("1", (8000, 8000), 0), "PNG")
    assert len(data) < 200_000
    with pytest.raises(ImageError, match="refused before decoding"):
        decode_image(data, "bomb1bit.png")


def test_oversized_upload_refused():
    with pytest.raises(ImageError, match="MB"):
        decode_image(b"\0" * (26 * 1024 * 1024), "huge.bin")


# --- decoded correctly -------------------------------------------------------------

def test_exif_rotated_jpeg_comes_out_upright():
    # Upright content: red top half, blue bottom half, 40 wide x 20 high. Stored rotated
    # (20 wide x 40 high) with EXIF orientation 6 ("rotate 90 CW to view").
    upright = Image.new("RGB", (40, 20), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 40, 10))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6
    img = decode_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "phone.jpg")
    px = img.pixels
    assert px.shape == (20, 40, 3)
    assert px[2, 20, 0] > 200 and px[2, 20, 2] < 60  # top is red
    assert px[17, 20, 2] > 200 and px[17, 20, 0] < 60  # bottom is blue
    assert any("EXIF" in n for n in img.notes)


def test_cmyk():
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    px = decode_image(encode(im, "JPEG", quality=95), "cmyk.jpg").pixels
    assert px.shape == (8, 8, 3) and px[..., 0].mean() > 200 and px[..., 1].mean() < 60


def test_cmyk_tiff_note():
    img = decode_image(encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "TIFF"), "cmyk.tif")
    assert img.pixels.mean() > 250 and any("CMYK" in n for n in img.notes)


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    a = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (4, 1))
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16")
    img = decode_image(encode(im, "PNG"), "sixteen.png")
    g = img.pixels[..., 0]
    assert g[0, 0] == 0 and g[0, -1] == 255 and 100 < g[0, 8] < 160  # a ramp, not white
    assert (img.pixels[..., 0] == img.pixels[..., 2]).all()


def test_thirty_two_bit_integer_image():
    a = np.tile(np.arange(0, 1600, 100, dtype=np.int32), (4, 1))
    img = decode_image(encode(Image.fromarray(a, "I"), "TIFF"), "int.tif")
    assert img.pixels[0, 0, 0] == 0 and img.pixels[0, -1, 0] == 255


def test_float_image():
    a = np.tile(np.linspace(-1, 1, 16, dtype=np.float32), (4, 1))
    img = decode_image(encode(Image.fromarray(a, "F"), "TIFF"), "float.tif")
    assert img.pixels[0, 0, 0] == 0 and img.pixels[0, -1, 0] == 255


def test_palette_with_transparency_composited_on_grey():
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0] + [0, 255, 0] * 255)
    im.paste(1, (0, 0, 4, 8))  # left half index 1 (green), made transparent below
    img = decode_image(encode(im, "PNG", transparency=1), "pal.png")
    assert tuple(img.pixels[0, 0]) == BACKGROUND
    assert tuple(img.pixels[0, 7]) == (255, 0, 0)
    assert any("transparent" in n for n in img.notes)


def test_la_greyscale_with_alpha():
    im = Image.new("LA", (6, 6), (200, 255))
    im.putpixel((0, 0), (200, 0))
    px = decode_image(encode(im, "PNG"), "la.png").pixels
    assert tuple(px[0, 0]) == BACKGROUND and tuple(px[3, 3]) == (200, 200, 200)


def test_rgba_half_transparent_blends():
    im = Image.new("RGBA", (4, 4), (255, 255, 255, 128))
    px = decode_image(encode(im, "PNG"), "half.png").pixels
    assert all(BACKGROUND[c] < px[0, 0, c] < 255 for c in range(3))


def test_greyscale_and_one_bit():
    g = decode_image(encode(Image.new("L", (5, 5), 77), "PNG"), "g.png").pixels
    assert g.shape == (5, 5, 3) and (g == 77).all()
    b = decode_image(encode(Image.new("1", (5, 5), 1), "PNG"), "b.png").pixels
    assert (b == 255).all()


def test_animated_gif_first_frame_and_flag():
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = decode_image(data, "anim.gif")
    assert img.pixels[5, 5, 0] > 200 and img.pixels[5, 5, 1] < 50
    assert any("first frame" in n and "3 frames" in n for n in img.notes)


@pytest.mark.parametrize("size", [(1, 1), (1, 37), (53, 1)])
def test_one_pixel_wide_images(size):
    img = decode_image(encode(Image.new("RGB", size, (10, 20, 30)), "PNG"), "thin.png")
    assert img.pixels.shape == (size[1], size[0], 3)
    assert any("tiny image" in n for n in img.notes)
    f = frame(img.pixels.shape, (0.5, 0.5))
    assert f.square(img.pixels).shape[:2] == (1, 1) and all(0 <= c <= 1 for c in f.center)


def test_photo_up_to_the_working_side_keeps_its_resolution():
    img = decode_image(encode(Image.new("RGB", (700, WORKING_SIDE), (1, 2, 3)), "JPEG"), "mid.jpg")
    assert img.pixels.shape == (WORKING_SIDE, 700, 3) and not img.notes
    img = decode_image(encode(Image.new("RGB", (1500, 1000), (1, 2, 3)), "JPEG"), "big.jpg")
    assert img.pixels.shape == (WORKING_SIDE, 768, 3) and any("1500x1000" in n for n in img.notes)


def _photo(width: int, height: int) -> Image.Image:
    """Detail at every scale: noise blocks of 1 to 64 pixels added up (a JPEG-able photo stand-in)."""
    rng = np.random.default_rng(0)
    a = np.zeros((height, width, 3))
    for block in (1, 4, 16, 64):
        small = rng.random((height // block + 1, width // block + 1, 3))
        a += np.kron(small, np.ones((block, block, 1)))[:height, :width]
    return Image.fromarray((a / 4 * 255).astype(np.uint8))


@pytest.mark.parametrize("fmt,size", [("JPEG", (3600, 2400)), ("PNG", (2400, 1600))])
def test_big_photo_becomes_a_working_copy_the_networks_cannot_tell_apart(fmt, size):
    from wsms_viz.app.framing import frame, network_inputs
    from wsms_viz.app.predict import ZOOMS
    from wsms_viz.zoom import TTA_SCALES

    im = _photo(*size)
    data = encode(im, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    img = decode_image(data, f"big.{fmt.lower()}")
    h, w = img.pixels.shape[:2]
    assert h == WORKING_SIDE and w / h == pytest.approx(1.5, abs=0.01)
    assert any(f"{size[0]}x{size[1]}" in n and "3x zoom" in n for n in img.notes)
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # every pixel, as before
    factors = [ZOOMS[0] * TTA_SCALES[0], 1.0, 2.0, ZOOMS[-1], ZOOMS[-1] * TTA_SCALES[-1]]  # down to 3.375x
    for center in ((0.5, 0.5), (0.2, 0.85)):
        ours, ref = (network_inputs(p, frame(p.shape, center), factors) for p in (img.pixels, full))
        # What the networks see, in [0, 1]: the same to within JPEG's own rounding noise.
        d = (ours - ref).abs()  # measured: mean 0.001-0.003, max 0.07 (a few pixels of high-contrast noise)
        assert float(d.mean()) < 0.005 and float(d.max()) < 0.1


def test_multi_page_tiff_says_pages():
    pages = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 255, 0)]]
    img = decode_image(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "scan.tif")
    assert any("2 pages" in n and "first page" in n for n in img.notes)
    assert not any("animated" in n for n in img.notes)


def test_a_real_ten_thousand_pixel_square_photo_is_too_large_not_a_bomb():
    data = encode(Image.new("1", (10000, 10000), 1), "PNG")  # a real (blank) 100 MP image
    with pytest.raises(ImageError) as e:
        decode_image(data, "huge.png")
    msg = str(e.value)
    assert "too large" in msg and "100 million pixels" in msg and "Shrink it" in msg
    assert "bomb" not in msg and "refused before decoding" in msg


@pytest.mark.parametrize("data", [b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
                                  b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'])
def test_svg_is_named_and_the_readable_formats_listed(data):
    with pytest.raises(ImageError, match="SVG") as e:
        decode_image(data, "logo.svg")
    assert "PNG" in str(e.value) and "JPEG" in str(e.value)


def test_webp_and_bmp():
    for fmt in ("WEBP", "BMP"):
        assert decode_image(encode(Image.new("RGB", (9, 7), (5, 6, 7)), fmt), f"x.{fmt}").pixels.shape == (7, 9, 3)


# --- square crop, samples, gallery -------------------------------------------------

def test_square_crop_follows_the_centre():
    a = np.zeros((10, 30, 3), np.uint8)
    a[:, 20:] = 255
    f = frame(a.shape, (0.5, 0.9))
    assert f.square(a).shape == (10, 10, 3) and f.square(a).mean() == 255  # slid to the right edge
    assert f.center[0] == 0.5 and 0.6 < f.center[1] <= 1.0
    f = frame(a.shape, (0.5, 0.5))
    assert f.square(a).shape == (10, 10, 3) and f.center == (0.5, 0.5)


SAMPLES = Path(__file__).resolve().parents[1] / "wsms_viz" / "app" / "samples"


def test_sample_photos_need_no_dataset():
    names = sample_photos()
    assert any("cat" in n for n in names)
    keys = set()
    for n in names:
        img = load_sample(n)
        assert img.pixels.ndim == 3 and img.pixels.shape[2] == 3 and img.pixels.dtype == np.uint8
        assert min(img.pixels.shape[:2]) >= 256 and img.notes  # a real photo, with its caption
        keys.add(img.key)
    assert len(keys) == len(names)
    assert load_sample(names[0]).label == "cat"
    with pytest.raises(ValueError, match="unknown sample photo"):
        load_sample("motorcycle")


def test_the_lessons_cat_is_the_photo_it_always_was():
    # scikit-image's data.chelsea() pixels, bit for bit: the Lesson's sentences about the
    # top guesses were written for this photo, so it is stored losslessly.
    import hashlib

    cat = load_sample("chelsea (a cat)").pixels
    assert cat.shape == (300, 451, 3)
    assert hashlib.sha256(cat.tobytes()).hexdigest() == \
        "416b729128bfb2c3d1eb69bf9b1734a796293abc17939267b2dc94f8a5784031"


def test_the_horse_is_a_black_shape_on_white():
    a = load_sample("horse (silhouette)").pixels
    assert set(np.unique(a)) == {0, 255}
    assert (a[0, 0] == 255).all() and (a[-1, -1] == 255).all()  # the background
    assert 0.2 < (a[..., 0] == 0).mean() < 0.5  # the horse


def test_every_sample_file_is_used_and_has_its_source_and_licence():
    from wsms_viz.app.images import _SAMPLES

    files = {f for f, _, _ in _SAMPLES.values()}
    on_disk = {p.name for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg")}
    assert files == on_disk
    manifest = (SAMPLES / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in manifest.splitlines() if line.startswith("| `")}
    assert set(rows) == files
    for f, row in rows.items():
        assert "CC0" in row or "public domain" in row, f"{f}: no licence that allows redistribution"
        assert "scikit-image `data." in row, f"{f}: no source"
    # Small enough to ship in every install.
    assert sum((SAMPLES / f).stat().st_size for f in files) < 600_000


def make_image_folder(root, classes=("cat", "dog"), numbers=(0, 4500, 4501)):
    for c, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for n in numbers:
            Image.new("RGB", (32, 32), (40 * c, n % 255, 9)).save(root / cls / f"{n:04d}.jpg")
    return root


def test_gallery_cifar10_jpeg_layout_uses_the_val_split(tmp_path):
    # One meaning of "val": the gallery shows exactly the images the trainer never trains on.
    from wsms_viz.data import load_dataset

    make_image_folder(tmp_path / "train", numbers=range(4490, 4510))  # 20 a class: the last 2 are val
    g = Gallery(tmp_path)
    assert g.classes == ["cat", "dog"] and len(g) == 4
    assert "val split" in g.split_note
    data = load_dataset(f"imagefolder:{tmp_path}", cache_dir=None)
    assert [Path(it.path).relative_to(tmp_path / "train").as_posix() for it in g.items] == \
        [data.files[i] for i in data.val.indices] == ["cat/4508.jpg", "cat/4509.jpg", "dog/4508.jpg", "dog/4509.jpg"]
    img = g.at(3)
    assert img.label == "dog" and img.name == "dog #1" and img.pixels.shape == (32, 32, 3)


def test_gallery_plain_image_folder(tmp_path):
    make_image_folder(tmp_path, numbers=(1, 2))
    g = Gallery(tmp_path)
    assert len(g) == 4 and len(g.of_class(0)) == 2


def test_gallery_reads_a_cifar_root_without_unpickling_code(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    data = np.arange(4 * 3072, dtype=np.int64).astype(np.uint8).reshape(4, 3072)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": [3, 1, 3, 0]}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat"]}, f)
    g = Gallery(tmp_path)
    assert len(g) == 4 and g.at(0).label == "cat" and g.at(2).name == "cat #1"
    assert g.at(0).pixels.shape == (32, 32, 3)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_gallery_refuses_a_doctored_cifar_pickle(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"data": _Evil(), "labels": []}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": []}, f)
    with pytest.raises(ImageError, match="refusing to load builtins.print"):
        Gallery(tmp_path)


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_gallery_bad_directories_say_why(tmp_path, setup):
    # (A train/ folder always has a val split now: the last 10% of each class, as the trainer splits.)
    root = tmp_path / "data"
    if setup == "empty":
        root.mkdir()
    with pytest.raises(ImageError):
        Gallery(root)
