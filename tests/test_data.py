"""The data pipeline: ImageFolder and torchvision sources, the split, the decode cache and
the batched augmentation, on tiny data made in tmp_path."""

import sys
import types

import numpy as np
import PIL.Image
import pytest
import torch
from tiny_data import make_imagefolder

from wsms_viz.data import NORMALIZATION, Augmenter, imagefolder_root, load_dataset, split_indices, to_model_input
from wsms_viz.zoom import CIFAR10_MEAN, CIFAR10_STD


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    pixels = make_imagefolder(root, per_class={"cat": 20, "dog": 10, "frog": 30})
    return root, pixels


def test_imagefolder_pixels_labels_and_files(folder, tmp_path):
    root, pixels = folder
    ds = load_dataset(f"imagefolder:{root}", cache_dir=tmp_path / "cache")
    assert ds.classes == ["cat", "dog", "frog"]
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.shape[1:] == (3, 32, 32)
    assert len(ds.files) == 60
    for split in (ds.train, ds.val):
        for img, lab, src in zip(split.images, split.labels, split.indices, strict=True):
            rel = ds.files[src]
            assert ds.classes[int(lab)] == rel.split("/")[0]
            assert torch.equal(img, torch.from_numpy(pixels[rel]).permute(2, 0, 1))  # PNG: exact
    assert ds.mean == CIFAR10_MEAN and ds.std == CIFAR10_STD


def test_split_is_the_last_tenth_of_each_class(folder, tmp_path):
    root, _ = folder
    ds = load_dataset(f"imagefolder:{root}", cache_dir=None)
    val = sorted(ds.files[i] for i in ds.val.indices)
    assert val == ["cat/0018.png", "cat/0019.png", "dog/0009.png",
                   "frog/0027.png", "frog/0028.png", "frog/0029.png"]
    assert set(ds.train.indices).isdisjoint(ds.val.indices)
    assert len(ds.train.indices) + len(ds.val.indices) == 60
    assert ds.describe()["val_size"] == 6 and ds.describe()["train_size"] == 54


def test_split_of_cifar_sizes_is_45k_5k():
    labels = torch.arange(10).repeat_interleave(5000)
    train, val = split_indices(labels)
    assert len(train) == 45_000 and len(val) == 5_000
    assert val[:500] == list(range(4500, 5000))  # files 4500..4999 of the first class


def test_train_subdirectory_layout_is_accepted(tmp_path):
    make_imagefolder(tmp_path / "ds", per_class=4, train_dir=True)
    assert imagefolder_root(tmp_path / "ds") == tmp_path / "ds" / "train"
    ds = load_dataset(f"imagefolder:{tmp_path / 'ds'}", cache_dir=None)
    assert ds.classes == ["cat", "dog", "frog"] and ds.files[0] == "cat/0000.png"


def test_other_sizes_are_resized(tmp_path):
    make_imagefolder(tmp_path / "big", per_class=2, size=48, suffix=".jpg")
    ds = load_dataset(f"imagefolder:{tmp_path / 'big'}", cache_dir=None)
    assert ds.train.images.shape[1:] == (3, 32, 32)


def test_second_load_reads_the_cache_not_the_images(folder, tmp_path, monkeypatch):
    root, _ = folder
    cache = tmp_path / "cache"
    first = load_dataset(f"imagefolder:{root}", cache_dir=cache)
    assert len(list(cache.glob("*.safetensors"))) == 1
    assert not list(cache.glob("*.tmp"))

    def no_decoding(*a, **k):
        raise AssertionError("decoded an image although the cache holds it")
    monkeypatch.setattr(PIL.Image, "open", no_decoding)
    second = load_dataset(f"imagefolder:{root}", cache_dir=cache)
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.val.labels, second.val.labels)
    assert first.files == second.files

    # A changed file is a different dataset: it must be decoded again.
    monkeypatch.undo()
    PIL.Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "dog" / "0000.png")
    third = load_dataset(f"imagefolder:{root}", cache_dir=cache)
    i = third.train.indices.index(third.files.index("dog/0000.png"))
    assert third.train.images[i].sum() == 0
    assert len(list(cache.glob("*.safetensors"))) == 2


def test_bad_sources_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="imagefolder:PATH"):
        load_dataset("folder:/x", cache_dir=None)
    with pytest.raises(ValueError, match="no such directory"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}", cache_dir=None)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}", cache_dir=None)


class _FakeCIFAR:
    """Stands in for torchvision's CIFAR10/CIFAR100: tests never download, and a CUDA
    torchvision build beside a CPU torch does not import."""

    calls = []

    def __init__(self, root, train, download):
        self.calls.append((root, train, download))
        rng = np.random.default_rng(0)
        self.data = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)  # NHWC, as torchvision keeps it
        self.targets = [i % 4 for i in range(40)]
        self.classes = ["a", "b", "c", "d"]


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_torchvision_sources(monkeypatch, kind):
    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(CIFAR10=_FakeCIFAR, CIFAR100=_FakeCIFAR)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    _FakeCIFAR.calls.clear()
    ds = load_dataset(f"{kind}:/data/cifar", download=False)
    assert _FakeCIFAR.calls == [("/data/cifar", True, False)]
    src = _FakeCIFAR("x", True, False)
    assert ds.classes == ["a", "b", "c", "d"] and ds.files is None
    assert torch.equal(ds.train.images[0], torch.from_numpy(src.data[ds.train.indices[0]]).permute(2, 0, 1))
    assert ds.val.indices == [36, 37, 38, 39]  # the last of each class (targets cycle 0..3)
    assert ds.mean == NORMALIZATION[kind][0]


def test_missing_torchvision_dataset_is_a_value_error(monkeypatch):
    def not_there(root, train, download):
        raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it")
    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(CIFAR10=not_there, CIFAR100=not_there)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    with pytest.raises(ValueError, match="--download"):
        load_dataset("cifar10:/nowhere")


def test_unimportable_torchvision_is_a_value_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes the import fail
    with pytest.raises(ValueError, match="torchvision cannot be imported.*imagefolder"):
        load_dataset("cifar100:/data")


def test_to_model_input_normalises():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = to_model_input(x, CIFAR10_MEAN, CIFAR10_STD, "cpu")
    expect = (1 - torch.tensor(CIFAR10_MEAN)) / torch.tensor(CIFAR10_STD)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], expect)
    assert to_model_input(x, CIFAR10_MEAN, CIFAR10_STD, "cpu", channels_last=True).is_contiguous(
        memory_format=torch.channels_last)


# --- augmentation --------------------------------------------------------------------

def _batch(n=16, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_augmenter_shapes_and_determinism():
    x = _batch()
    aug = Augmenter()
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_crop_is_a_window_of_the_zero_padded_image():
    x = _batch()
    out = Augmenter(pad=4, flip=False)(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws, in the order the Augmenter makes them
    oy = torch.randint(0, 9, (16,), generator=g)
    ox = torch.randint(0, 9, (16,), generator=g)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        assert torch.equal(out[i], padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32])
    assert len(set(zip(oy.tolist(), ox.tolist(), strict=True))) > 1


def test_flip_mirrors_about_half_of_the_images():
    x = _batch(64)
    out = Augmenter(pad=0, flip=True)(x, torch.Generator().manual_seed(4))
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # each is exactly one of the two
    assert 16 < sum(flipped) < 48
    expect = torch.rand(64, generator=torch.Generator().manual_seed(4)) < 0.5
    assert flipped == expect.tolist()


def test_flip_of_a_known_image():
    x = torch.zeros(1, 1, 2, 3)
    x[0, 0, :, 0] = 1  # left column lit
    draws = {s: torch.rand(1, generator=torch.Generator().manual_seed(s)).item() for s in range(20)}
    flip_seed = next(s for s, r in draws.items() if r < 0.5)
    keep_seed = next(s for s, r in draws.items() if r >= 0.5)
    out = Augmenter(pad=0, flip=True)(x, torch.Generator().manual_seed(flip_seed))
    assert out[0, 0].tolist() == [[0, 0, 1], [0, 0, 1]]  # now the right column
    assert torch.equal(Augmenter(pad=0, flip=True)(x, torch.Generator().manual_seed(keep_seed)), x)


def test_scale_jitter_keeps_shape_and_range():
    x = _batch()
    out = Augmenter(pad=0, flip=False, jitter_range=(0.5, 2.0), jitter_p=1.0)(x, torch.Generator().manual_seed(5))
    assert out.shape == x.shape
    # Bilinear sampling mixes pixels and the zero (mean-colour) padding: nothing new.
    assert out.min() >= min(x.min(), 0) - 1e-5 and out.max() <= max(x.max(), 0) + 1e-5
    assert not torch.allclose(out, x)


def test_scale_jitter_zoom_in_stays_inside_zoom_out_pads():
    ones = torch.ones(8, 3, 32, 32)
    zin = Augmenter(pad=0, flip=False, jitter_range=(2.0, 2.0), jitter_p=1.0)(ones, torch.Generator().manual_seed(6))
    assert torch.allclose(zin, ones, atol=1e-5)  # the window never leaves the image: no padding shows
    zout = Augmenter(pad=0, flip=False, jitter_range=(0.5, 0.5), jitter_p=1.0)(ones, torch.Generator().manual_seed(6))
    assert torch.allclose(zout[:, :, 12:20, 12:20], torch.ones(1), atol=1e-5)  # the shrunk image in the middle
    assert zout[:, :, :4, :].abs().max() < 1e-6  # mean-colour (0) border
    off = Augmenter(pad=0, flip=False, jitter_range=(0.5, 2.0), jitter_p=0.0)(_batch(), torch.Generator())
    assert torch.allclose(off, _batch(), atol=1e-5)
