"""The demo set shipped with the app: real CIFAR-10 val images for a server with no dataset.

The files themselves (each listed with its source, 32x32, class-balanced, under 1 MB, every
example image among them), the shipped models' examples holding on the copies, and the
app on a fresh-clone-like server (no dataset: ``WSMS_DATA_ROOTS`` names a missing folder)
opening on the demo set and offering both example lists.
"""

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from app_fixtures import make_checkpoints
from PIL import Image
from test_links import notices, opened

from wsms_viz.app import catalog, demo
from wsms_viz.zoom import normalize

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "checkpoints" / "examples.json"
DATASET = REPO.parent / "shared" / "datasets" / "cifar10-jpeg" / "train"
LISTS = ("examples", "reverse")


def _pngs() -> list[Path]:
    return sorted(demo.FOLDER.glob("*/*.png"))


def test_the_manifest_lists_every_file_with_its_val_source_and_every_png_is_32x32():
    records = demo.images()
    on_disk = sorted(p.relative_to(demo.FOLDER).as_posix() for p in _pngs())
    assert sorted(r["file"] for r in records) == on_disk and len(on_disk) >= 100
    for r in records:
        cls, name = r["file"].split("/")
        src_cls, src = r["source"].split("/")
        assert cls == r["label"] == src_cls and Path(name).stem == Path(src).stem, r
        assert src.endswith(".jpg") and 4500 <= int(Path(src).stem) <= 4999, r  # the val split's files
        with Image.open(demo.FOLDER / r["file"]) as im:
            assert im.format == "PNG" and im.size == (32, 32) and im.mode == "RGB", r["file"]
    per_class = Counter(r["label"] for r in records)
    assert sorted(per_class) == catalog.CIFAR10_CLASSES
    assert 10 <= min(per_class.values()) and max(per_class.values()) <= 15, per_class
    assert demo.manifest()["seed"] == 0 and "make_demo_set.py" in demo.manifest()["made_by"]


def test_the_folder_is_under_one_megabyte():
    files = [p for p in demo.FOLDER.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 1_000_000


def test_every_image_of_both_example_lists_has_a_demo_copy():
    ex = json.loads(EXAMPLES.read_text())
    for which in LISTS:
        assert ex[which], which
        for r in ex[which]:
            copy = demo.copy_of(r["file"])
            assert copy is not None and copy.parent.name == r["label"], r["file"]
            assert which in next(m["lists"] for m in demo.images() if m["source"] == r["file"])
    # Only names the manifest lists resolve, and only inside the folder.
    for name in ("../../checkpoints/resnet20/card.json", "/etc/passwd", "cat/9999.jpg", "", None):
        assert demo.copy_of(name) is None
    # An examples file of another dataset with the same file names does not map to CIFAR-10 images.
    some = ex["examples"][0]["file"]
    assert demo.copy_of(some, ex["image_root"]) is not None and demo.copy_of(some, "/srv/photos/train") is None


@pytest.mark.skipif(not DATASET.is_dir(), reason="needs ../shared/datasets/cifar10-jpeg")
def test_the_copies_hold_the_dataset_files_pixels():
    for r in demo.images():
        with Image.open(DATASET / r["source"]) as a, Image.open(demo.FOLDER / r["file"]) as b:
            np.testing.assert_array_equal(np.asarray(a.convert("RGB")), np.asarray(b), err_msg=r["file"])


def test_the_shipped_models_examples_hold_on_the_copies():
    """Baseline wrong and WSMS right (and the reverse) on the demo copies, with the
    probabilities the evaluator wrote: the copies are the pixels it saw."""
    ex = json.loads(EXAMPLES.read_text())
    models = {k: catalog.load(str(REPO / "checkpoints" / ex[k])) for k in ("baseline", "wsms")}
    for which in LISTS:
        files = [r["file"] for r in ex[which]]
        x = torch.stack([torch.from_numpy(np.asarray(Image.open(demo.copy_of(f))).copy()).permute(2, 0, 1)
                         for f in files]).float() / 255
        for k, m in models.items():
            with torch.no_grad():
                p = m.model(normalize(x, m.mean, m.std)).softmax(1)
            for r, row in zip(ex[which], p, strict=True):
                assert m.classes[int(row.argmax())] == r[k]["pred"], (which, k, r["file"])
                assert abs(float(row.max()) - r[k]["prob"]) < 2e-3, (which, k, r["file"])
            right = [m.classes[int(row.argmax())] == r["label"] for r, row in zip(ex[which], p, strict=True)]
            assert all(right) if (k == "wsms") == (which == "examples") else not any(right), (which, k)


# --- the app on a server with no dataset ----------------------------------------------

@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """Random-init checkpoints beside the shipped examples.json, and no dataset at all."""
    base = tmp_path_factory.mktemp("demo")
    ckpts = base / "checkpoints"
    make_checkpoints(ckpts)
    shutil.copy(EXAMPLES, ckpts / "examples.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSMS_CHECKPOINTS", str(ckpts))
        mp.setenv("WSMS_DATA_ROOTS", str(base / "no-such-folder"))
        yield base


def test_with_no_dataset_the_app_opens_on_the_demo_set(bare):
    at = opened({})
    assert at.radio(key="source").value == "Dataset (val split)"
    assert at.selectbox(key="dataset").options == [demo.LABEL]
    assert at.selectbox(key="data_class").options == catalog.CIFAR10_CLASSES
    assert at.number_input(key="data_index").max == 12
    assert any("shares no dataset" in c.value for c in at.sidebar.caption)
    assert any("CIFAR-10 val, 130 images" in c.value for c in at.sidebar.caption)
    assert any(c.value.startswith("Image: **airplane #0**, true class **airplane**") for c in at.caption)
    assert not at.error and not at.sidebar.error
    text = " ".join(m.value for m in [*at.markdown, *at.caption, *at.sidebar.caption])
    assert str(demo.FOLDER) not in text and "/wsms_viz/" not in text  # no server path


def test_with_no_dataset_both_example_lists_show_their_images_from_the_demo_set(bare):
    ex = json.loads(EXAMPLES.read_text())
    for source, key, which in (("Baseline wrong, WSMS right", "example", "examples"),
                               ("Baseline right, WSMS wrong", "reverse", "reverse")):
        at = opened({"source": source})
        assert source in at.radio(key="source").options and at.radio(key="source").value == source
        options = at.selectbox(key=key).options
        assert len(options) == len(ex[which])
        for i in (0, len(options) - 1):
            shown = opened({"source": source, key: options[i]})
            assert not shown.error and not shown.sidebar.error and not notices(shown), (key, i)
            assert any(f"true class **{ex[which][i]['label']}**" in c.value for c in shown.caption), (key, i)


@pytest.mark.slow
def test_with_no_dataset_fig1_is_measured_on_the_demo_images(bare):
    at = opened({"models": ["wsms_resnet20", "ms_resnet20"]}, "wsms_viz/app/pages/feature_maps.py")
    assert any("16 val images of Demo set" in c.value for c in at.caption), [c.value for c in at.caption]
    assert not any("blobs" in c.value for c in at.caption) and not at.error
