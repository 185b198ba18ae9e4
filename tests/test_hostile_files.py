"""Hostile files in the folders the operator shares, and hostile uploads: every case
through the real code (the gallery, load_image_file, decode_image, load_checkpoint,
redact, and the app itself for the data-root links).

Whoever can write into a shared dataset folder or the checkpoint folder is not trusted:
links out of it, FIFOs, devices and huge sparse files are neither listed nor read, and
messages name a file by its name only. Uploads open only through the documented formats
and decode with bounded memory (the RSS figures are in benchmarks/upload_memory.py; here
tracemalloc, which sees numpy's arrays, shows no full-size float copy is ever made).
"""

import io
import os
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from app_fixtures import make_checkpoint, make_dataset
from PIL import Image, ImageOps

from wsms_viz.app import images
from wsms_viz.app.images import Gallery, ImageError, decode_image, load_image_file
from wsms_viz.app.roots import redact
from wsms_viz.checkpoint import CheckpointError, find_checkpoints, load_checkpoint, read_card

APP = str(Path(__file__).resolve().parent.parent / "app.py")
# The browser refuses a file over server.maxUploadSize = 25 in .streamlit/config.toml,
# which Streamlit counts in megabytes of 10**6 bytes.
MAX_UPLOAD_BYTES = 25_000_000


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg(colour=(200, 30, 30), size=(32, 32)) -> bytes:
    return encode(Image.new("RGB", size, colour), "JPEG", quality=95)


@pytest.fixture
def evil(tmp_path):
    """A shared ImageFolder root whose cat folder holds links out of it, a FIFO, a link
    to /dev/zero and a sparse file far over the size limit, plus a class folder that is a
    link out of the root; the outside folder holds a real image."""
    root, outside = tmp_path / "evil", tmp_path / "outside"
    (root / "cat").mkdir(parents=True)
    (outside / "dog").mkdir(parents=True)
    (root / "cat" / "a_real.jpg").write_bytes(jpeg())
    (outside / "secret.png").write_bytes(encode(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG"))
    (outside / "dog" / "d.jpg").write_bytes(jpeg((0, 0, 200)))
    (root / "cat" / "zz_escape.png").symlink_to(outside / "secret.png")
    (root / "cat" / "b_inside_link.jpg").symlink_to(root / "cat" / "a_real.jpg")  # stays inside: fine
    (root / "dog").symlink_to(outside / "dog", target_is_directory=True)
    os.mkfifo(root / "cat" / "zz_fifo.jpg")
    (root / "cat" / "zz_zero.jpg").symlink_to("/dev/zero")
    with open(root / "cat" / "zz_big.jpg", "wb") as f:
        f.truncate(200 * 2**20)  # sparse: no disk, but reading it whole takes 200 MB
    return root, outside


# --- a shared dataset folder ----------------------------------------------------------

def test_gallery_lists_only_regular_files_and_folders_inside_its_root(evil):
    root, _ = evil
    g = Gallery(root)
    assert g.classes == ["cat"]  # the dog folder is a link out of the root
    names = [Path(it.path).name for it in g.items]
    assert names == ["a_real.jpg", "b_inside_link.jpg"]
    assert all(g.at(i).pixels.shape == (32, 32, 3) for i in range(len(g)))


def test_a_link_out_of_the_root_is_not_read_even_when_asked_for(evil):
    root, _ = evil
    with pytest.raises(ImageError, match="zz_escape.png is a link to a file outside") as e:
        load_image_file(root / "cat" / "zz_escape.png", within=(root,))
    assert "/" not in str(e.value)
    with pytest.raises(ImageError, match="outside"):
        load_image_file(root / "dog" / "d.jpg", within=(root,))  # through a linked folder
    g = Gallery(root)
    forged = images.GalleryItem(0, 9, str(root / "cat" / "zz_escape.png"))
    with pytest.raises(ImageError, match="outside"):
        g.load(forged)


def test_a_fifo_is_refused_at_once_not_waited_on(evil):
    root, _ = evil
    fifo = root / "cat" / "zz_fifo.jpg"
    result = []

    def read():
        try:
            load_image_file(fifo, within=(root,))
        except ImageError as e:
            result.append(str(e))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # release the reader blocked in open(), so the test run goes on
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
    assert result and "zz_fifo.jpg is a FIFO" in result[0] and "/" not in result[0], result


def test_a_huge_sparse_file_is_refused_from_its_size_without_reading_it(evil):
    root, _ = evil
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=r"zz_big.jpg is 209.7 MB; the limit is 25 MB"):
            load_image_file(root / "cat" / "zz_big.jpg", within=(root,))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak  # reading it would take 200 MB


def test_a_link_to_dev_zero_is_neither_listed_nor_read(evil):
    root, _ = evil
    assert "zz_zero.jpg" not in [Path(it.path).name for it in Gallery(root).items]
    with pytest.raises(ImageError, match="outside"):  # /dev is outside the root
        load_image_file(root / "cat" / "zz_zero.jpg", within=(root,))
    with pytest.raises(ImageError, match="zz_zero.jpg is a character device"):  # and never a regular file
        load_image_file(root / "cat" / "zz_zero.jpg")


def test_val_and_class_folders_linking_out_are_not_picked(tmp_path):
    outside = make_dataset(tmp_path / "outside")
    root = tmp_path / "root"
    root.mkdir()
    (root / "val").symlink_to(outside / "train", target_is_directory=True)
    with pytest.raises(ImageError, match="not an ImageFolder"):
        Gallery(root)


def test_a_cifar_batch_that_is_a_fifo_or_link_out_is_refused(tmp_path):
    d = tmp_path / "root" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    (tmp_path / "meta").write_bytes(b"\x80\x04N.")
    (d / "batches.meta").symlink_to(tmp_path / "meta")
    (d / "test_batch").write_bytes(b"\x80\x04N.")
    with pytest.raises(ImageError, match="batches.meta is a link to a file outside"):
        Gallery(tmp_path / "root")


@pytest.mark.slow
def test_the_app_never_shows_a_file_linked_out_of_a_shared_folder(evil, monkeypatch, tmp_path):
    """The probe's own request: ?dataset=Evil&data_class=...&data_index=... for every index."""
    from streamlit.testing.v1 import AppTest

    root, outside = evil
    ckpts = tmp_path / "checkpoints"
    make_checkpoint(ckpts, "resnet20", 1, full_card=False)
    monkeypatch.setenv("WSMS_CHECKPOINTS", str(ckpts))
    monkeypatch.setenv("WSMS_DATA_ROOTS", f"Evil={root}")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(source="Dataset (val split)", dataset="Evil", data_class="cat", data_index="0")
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="data_class").options == ["cat"]
    assert at.sidebar.number_input(key="data_index").max == 1  # two images, no link out
    for i in (0, 1):
        at.sidebar.number_input(key="data_index").set_value(i).run()
        assert not at.exception and not at.sidebar.error
        assert any(f"cat #{i}" in c.value for c in at.caption)


# --- messages name files, never paths ---------------------------------------------------

@pytest.mark.parametrize("message,shown", [
    ("example #1: its file ../../../../../srv/outside/secret.png is outside the datasets",
     "example #1: its file secret.png is outside the datasets"),
    ("cannot read srv/outside/secret.png", "cannot read secret.png"),
    ("cannot read ./x/../card.json", "cannot read card.json"),
    ("~/photos/x.png is empty", "x.png is empty"),
    ("Photos/../../etc/passwd.txt", "passwd.txt"),
    ("stage 1/2 and/or val/, test/ or train/ inside, see https://x.org/a/b.png", None),
])
def test_relative_paths_are_redacted_to_their_file_name(message, shown):
    assert redact(message, {"/srv/photos": "Photos"}) == (message if shown is None else shown)


def test_a_shared_folder_keeps_its_label_and_redacting_twice_changes_nothing():
    named = {"/srv/photos": "Our photos"}
    once = redact("/srv/photos/cat/1.jpg is damaged; /srv/photosets/x.jpg too", named)
    assert once == "Our photos/cat/1.jpg is damaged; x.jpg too"
    assert redact(once, named) == once


# --- the checkpoint folder ---------------------------------------------------------------

@pytest.fixture
def ckpt_root(tmp_path):
    root = tmp_path / "checkpoints"
    make_checkpoint(root, "resnet20", 1, full_card=False)
    return root


def test_weights_linked_out_of_the_checkpoint_folder_are_refused_by_name(ckpt_root, tmp_path):
    d = ckpt_root / "resnet20"
    moved = tmp_path / "elsewhere" / "model.safetensors"
    moved.parent.mkdir()
    (d / "model.safetensors").rename(moved)
    (d / "model.safetensors").symlink_to(moved)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(d, root=ckpt_root)
    msg = str(e.value)
    assert msg == "resnet20: model.safetensors is a link to a file outside the checkpoint folder; not read"
    with pytest.raises(CheckpointError, match="outside the checkpoint folder"):
        load_checkpoint(d)  # without a root: outside its own directory


def test_a_card_linked_to_etc_passwd_is_never_read_nor_listed(ckpt_root):
    d = ckpt_root / "resnet20"
    (d / "card.json").unlink()
    (d / "card.json").symlink_to("/etc/passwd")
    assert find_checkpoints(ckpt_root) == []  # so no page (the Lesson, the study) reads it
    for call in (lambda: read_card(d, ckpt_root), lambda: load_checkpoint(d, root=ckpt_root), lambda: read_card(d)):
        with pytest.raises(CheckpointError) as e:
            call()
        assert str(e.value) == "resnet20: card.json is a link to a file outside the checkpoint folder; not read"


@pytest.mark.parametrize("which", ["card.json", "model.safetensors"])
def test_fifo_and_device_files_in_a_checkpoint_are_refused(ckpt_root, which):
    d = ckpt_root / "resnet20"
    (d / which).unlink()
    os.mkfifo(d / which)
    with pytest.raises(CheckpointError, match=f"resnet20: {which} is a FIFO"):
        load_checkpoint(d, root=ckpt_root)
    (d / which).unlink()
    (d / which).symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=f"resnet20: {which} is a link to a file outside"):
        load_checkpoint(d, root=ckpt_root)


# --- uploads: formats, EXIF, size -------------------------------------------------------

def test_only_the_documented_formats_are_opened(monkeypatch):
    from PIL import EpsImagePlugin

    asked = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: asked.append(1))
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n"
    with pytest.raises(ImageError) as e:
        decode_image(eps, "drawing.eps")
    assert "not an image this app can read" in str(e.value) and "Ghostscript" not in str(e.value)
    assert asked == []  # Pillow's EPS plugin (and Ghostscript behind it) never sees the file


@pytest.mark.parametrize("fmt", ["PCX", "TGA", "ICO", "SGI", "DDS"])
def test_formats_pillow_knows_but_the_app_does_not_document_are_refused(fmt):
    data = encode(Image.new("RGB", (16, 16), (9, 9, 9)), fmt)
    with pytest.raises(ImageError, match="not an image this app can read"):
        decode_image(data, f"x.{fmt.lower()}")


def test_the_training_loader_skips_other_formats_too(tmp_path):
    from wsms_viz.data import decode_file

    (tmp_path / "x.png").write_bytes(encode(Image.new("RGB", (16, 16), (9, 9, 9)), "PCX"))
    (tmp_path / "y.png").write_bytes(encode(Image.new("RGB", (16, 16), (9, 9, 9)), "PNG"))
    assert decode_file(tmp_path / "x.png", 32) is None and decode_file(tmp_path / "y.png", 32).shape == (32, 32, 3)


def test_a_camera_mpo_jpeg_still_opens():
    im = Image.new("RGB", (40, 30), (10, 200, 10))
    data = encode(im, "MPO", save_all=True, append_images=[Image.new("RGB", (40, 30), (200, 0, 0))])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    px = decode_image(data, "camera.jpg").pixels
    assert px.shape == (30, 40, 3) and px[..., 1].mean() > 150


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_an_orientation_that_is_none_is_not_claimed(orientation):
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 40, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img = decode_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "odd.jpg")
    assert img.pixels.shape == (20, 40, 3) and img.pixels[2, 20, 0] > 200  # as stored: red on top
    assert not any("EXIF" in n for n in img.notes), img.notes


@pytest.mark.parametrize("orientation", range(2, 9))
def test_orientations_two_to_eight_turn_as_pillow_does_and_say_so(orientation):
    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 255, (12, 20, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "PNG", exif=exif.tobytes())
    img = decode_image(data, "turned.png")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(img.pixels, expected)
    assert any(f"EXIF orientation (tag {orientation})" in n for n in img.notes)


def test_the_upload_limit_is_the_browsers_25_000_000_bytes():
    with pytest.raises(ImageError, match=r"25.0 MB; the limit is 25 MB"):
        decode_image(b"\0" * (MAX_UPLOAD_BYTES + 1), "over.png")
    with pytest.raises(ImageError, match="not an image"):  # exactly at the limit: size is not the problem
        decode_image(b"\0" * MAX_UPLOAD_BYTES, "at.png")


# --- memory -----------------------------------------------------------------------------

def _peak_traced(fn):
    """fn()'s result and the peak of memory tracemalloc sees meanwhile (numpy's arrays,
    Python objects; not Pillow's own rasters)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _float_tiff(side: int) -> bytes:
    a = np.zeros((side, side), np.float32)
    a[::3] = 7.5
    a[0, 0] = -1.0
    return encode(Image.fromarray(a, "F"), "TIFF", compression="tiff_adobe_deflate")


def test_a_float_tiff_is_never_copied_whole_as_float():
    data = _float_tiff(4000)  # 16 MP: 64 MB as float32, 128 MB as float64
    img, peak = _peak_traced(lambda: decode_image(data, "f.tif"))
    assert img.pixels.shape == (512, 512, 3) and any("stretched from [-1, 7.5]" in n for n in img.notes)
    assert peak < 40 * 2**20, peak / 2**20  # tiles of 1 MP; the old full-size float64 copy alone was 128 MB


@pytest.mark.parametrize("shape", [(700, 1300), (3100, 3300)])  # without and with a box reduction first
def test_the_tiles_give_the_image_a_whole_conversion_gives(shape):
    blocks = np.random.default_rng(0).normal(100, 2000, (shape[0] // 5, shape[1] // 5))
    a = np.kron(blocks, np.ones((5, 5))).astype(np.float32)  # detail at 5 pixels, and small as a file
    data = encode(Image.fromarray(a, "F"), "TIFF", compression="tiff_adobe_deflate")
    lo, hi = float(a.min()), float(a.max())
    full = np.clip(np.rint((a.astype(np.float64) - lo) * (255 / (hi - lo))), 0, 255).astype(np.uint8)
    size = images.working_size((shape[1], shape[0]))
    ref = Image.fromarray(full).convert("RGB").resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    got = decode_image(data, "f.tif").pixels
    assert got.shape == (512, size[0], 3)
    assert np.abs(got.astype(int) - np.asarray(ref).astype(int)).max() <= 1


def test_nan_and_infinity_in_a_float_image_do_not_spoil_the_range():
    a = np.array([[np.nan, np.inf, -np.inf, 0.0, 10.0]], np.float32)
    img = decode_image(encode(Image.fromarray(a, "F"), "TIFF"), "nan.tif")
    assert list(img.pixels[0, :, 0]) == [0, 255, 0, 0, 10]


def test_a_long_panorama_is_shrunk_and_an_absurd_one_refused_from_its_header():
    img = decode_image(encode(Image.new("RGB", (20000, 100), (5, 5, 5)), "PNG"), "pano.png")
    assert img.pixels.shape == (20, 4096, 3) and any("far longer" in n for n in img.notes)
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 49_000_000, 1, 8, 2, 0, 0, 0))
    with pytest.raises(ImageError, match="49,000,000 pixels along one side.*refused before decoding"):
        decode_image(header + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""), "line.png")


def test_big_rasters_decode_one_at_a_time(monkeypatch):
    """Two uploads at once: the second waits for the first instead of adding its raster."""
    active, most = [0], [0]
    real = images._working_rgb
    lock = threading.Lock()

    def counting(*a, **k):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            threading.Event().wait(0.3)  # long enough for the other thread to arrive
            return real(*a, **k)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(images, "_working_rgb", counting)
    monkeypatch.setattr(images, "BIG_DECODE_PIXELS", 1_000_000)
    data = encode(Image.new("L", (1200, 1000), 9), "PNG")
    small = encode(Image.new("L", (300, 300), 9), "PNG")
    threads = [threading.Thread(target=decode_image, args=(d, "x.png")) for d in (data, data)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == 1
    most[0] = 0
    threads = [threading.Thread(target=decode_image, args=(small, "s.png")) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == 2  # small images are not queued


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float", "png16"])
def test_fifty_megapixel_wide_images_two_at_once_stay_small(kind):
    if kind == "float":
        data = _float_tiff(7000)
    else:
        a = np.zeros((7000, 7000), np.uint16)
        a[::7] = 60000
        data = encode(Image.fromarray(a), "PNG")
    results = []

    def both():
        threads = [threading.Thread(target=lambda: results.append(decode_image(data, "x"))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)

    _, peak = _peak_traced(both)
    assert len(results) == 2 and all(r.pixels.shape == (512, 512, 3) for r in results)
    # One decode at a time, each a few 1-MP tiles plus a 1750x1750 box-reduced copy; the
    # old code made several 392 MB float64 copies per upload.
    assert peak < 64 * 2**20, peak / 2**20


def test_examples_json_that_is_a_fifo_a_link_out_or_huge_is_refused(ckpt_root, tmp_path):
    from wsms_viz.app.catalog import read_examples

    ex = ckpt_root / "examples.json"
    os.mkfifo(ex)
    assert read_examples(ckpt_root) == ([], None)  # not a regular file: as if there were none
    ex.unlink()
    (tmp_path / "outside.json").write_text('[{"path": "x.png", "label": 1}]')
    ex.symlink_to(tmp_path / "outside.json")
    examples, error = read_examples(ckpt_root)
    assert examples == [] and "examples.json is a link to a file outside the checkpoint folder" in error
    ex.unlink()
    with open(ex, "wb") as f:
        f.truncate(200 * 2**20)
    tracemalloc.start()
    try:
        examples, error = read_examples(ckpt_root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert examples == [] and "more than the 16,777,216 allowed" in error and peak < 2**20


_RSS_AFTER_THREADS = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from wsms_viz.app.images import decode_image
data = Path(sys.argv[2]).read_bytes()
def rss():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))
after = []
for _ in range(4):  # as Streamlit does: every rerun in a new thread
    t = threading.Thread(target=decode_image, args=(data, "x"))
    t.start()
    t.join()
    after.append(rss())
print(max(after) - after[0])
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_decoding_in_fresh_threads_gives_the_raster_back(tmp_path):
    import subprocess
    import sys

    tif = tmp_path / "f.tif"
    tif.write_bytes(_float_tiff(4000))  # a 64 MB raster
    out = subprocess.run([sys.executable, "-c", _RSS_AFTER_THREADS, str(Path(images.__file__).parents[2]), str(tif)],
                         capture_output=True, text=True, timeout=300, check=True)
    growth = int(out.stdout.split()[-1])
    assert growth < 24 * 2**20, growth / 2**20  # decoded in each caller thread, 146 MB stayed behind
