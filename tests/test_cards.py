"""The typed card: old cards load and round-trip, every field the app and the evaluator
read is checked on load, and the loader refuses oversized, mistyped, escaping or
placeholder weights with a CheckpointError naming what is wrong."""

import copy
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from wsms_viz import cards, zoom
from wsms_viz.cards import CheckpointError, epochs_trained, loads_card, parse_card
from wsms_viz.checkpoint import _unique_state, find_checkpoints, load_checkpoint, read_card, save_checkpoint
from wsms_viz.models import create_model

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
CLASSES = [f"c{i}" for i in range(10)]


def _save(directory, name="resnet20", **card):
    torch.manual_seed(0)
    model = create_model(name).eval()
    save_checkpoint(directory, model, {"name": directory.name, "classes": CLASSES, **card})
    return directory


def _edit(directory, fn):
    raw = json.loads((directory / "card.json").read_text())
    fn(raw)
    (directory / "card.json").write_text(json.dumps(raw))


def _good_raw():
    return json.loads((SHIPPED / "wsms_resnet20" / "card.json").read_text())


def test_zoom_range_is_the_zoom_modules():
    assert cards.ZOOM_RANGE == (zoom.MIN_ZOOM, zoom.MAX_ZOOM)


@pytest.mark.parametrize("name", sorted(p.name for p in find_checkpoints(SHIPPED)))
def test_shipped_cards_of_either_version_load_and_round_trip_unchanged(name):
    # The first seven cards predate card_version (version 1); the scale-channel ones are written by
    # the current writer (its version, stated in the card).
    raw = json.loads((SHIPPED / name / "card.json").read_text())
    card = read_card(SHIPPED / name)
    assert card.card_version == raw.get("card_version", 1)
    assert card.card_version in (1, cards.CARD_VERSION)
    assert card.to_dict() == raw and dict(card) == raw
    assert card.epochs_trained == len(raw["log"]) >= 1
    sr = raw["scale_robustness"]
    assert card.scale_robustness.at_zoom_1 == sr["val_acc"][sr["zooms"].index(1.0)]
    assert card.scale_robustness.mean_acc == sr["mean_acc"]


def test_unknown_blocks_survive_a_rewrite(tmp_path):
    d = _save(tmp_path / "m", scale_study={"nested": {"rows": [1, 2.5, "x"]}}, anything=[None])
    card = read_card(d)
    assert card["scale_study"] == {"nested": {"rows": [1, 2.5, "x"]}} and card["anything"] == [None]
    sr = cards.ScaleRobustness.parse({"zooms": [1.0], "val_acc": [0.5], "seed_spread": 0.0016}, "t")
    from wsms_viz.checkpoint import write_card
    write_card(d, card.replace(scale_robustness=sr))
    again = json.loads((d / "card.json").read_text())
    assert again["scale_study"] == {"nested": {"rows": [1, 2.5, "x"]}} and again["anything"] == [None]
    assert again["scale_robustness"]["seed_spread"] == 0.0016 and again["card_version"] == cards.CARD_VERSION
    load_checkpoint(d)  # the weights' sha is untouched


BAD_FIELDS = [
    ("normalization", "xyz", "normalization"),
    ("normalization", {"mean": [0.5] * 3, "std": [0.2, 0.0, 0.2]}, r"normalization.std\[1\]"),
    ("normalization", {"mean": [0.5] * 3, "std": [0.2, -1, 0.2]}, r"normalization.std\[1\]"),
    ("normalization", {"mean": [0.5] * 3, "std": [0.2, 0.2]}, "normalization.std"),
    ("normalization", {"mean": [0.5, "a", 0.5], "std": [0.2] * 3}, r"normalization.mean\[1\]"),
    ("scale_robustness", "curve", "scale_robustness"),
    ("scale_robustness", {"zooms": [1.0, 2.0], "val_acc": [0.5]}, "scale_robustness.val_acc"),
    ("scale_robustness", {"zooms": [1.0], "val_acc": [1.5]}, r"scale_robustness.val_acc\[0\]"),
    ("scale_robustness", {"zooms": [100.0], "val_acc": [0.5]}, r"scale_robustness.zooms\[0\]"),
    ("scale_robustness", {"zooms": [1.0], "val_acc": [0.5], "val_acc_ci": [[0.6, 0.4]]},
     r"scale_robustness.val_acc_ci\[0\]"),
    ("scale_robustness", {"zooms": [1.0], "val_acc": [0.5], "tta": {"val_acc": [0.1, 0.2]}},
     "scale_robustness.tta.val_acc"),
    ("scale_robustness", {"zooms": [1.0], "val_acc": [0.5], "vs_baseline": {"baseline": "r", "mean": 3}},
     "scale_robustness.vs_baseline.mean"),
    ("scale_robustness", {"zooms": [1.0], "val_acc": [0.5], "mean_acc": 0.9}, "scale_robustness.mean_acc"),
    ("log", {"epoch": 1}, "'log' must be a list"),
    ("log", [{"epoch": 0}], r"log\[0\].epoch"),
    ("log", [{"epoch": 1, "val_acc": "high"}], r"log\[0\].val_acc"),
    ("metrics", [0.5], "metrics"),
    ("metrics", {"val_acc": 7}, "metrics.val_acc"),
    ("classes", ["a", 3], r"classes\[1\]"),
    ("classes", [], "classes"),
    ("name", 5, "'name'"),
    ("input_size", [32], "input_size"),
    ("sha256", "abc", "sha256"),
    ("card_version", 99, "card_version"),
    ("recipe", {"scale_jitter": [2, 1]}, "recipe.scale_jitter"),
    ("config", {"num_classes": 10_000_000}, "config.num_classes"),
    ("config", {"num_classes": 10, "backbone_config": {"width": 10**9}}, "config.backbone_config.width"),
]


@pytest.mark.parametrize(("key", "value", "match"), BAD_FIELDS)
def test_each_malformed_field_is_a_checkpoint_error_naming_it(key, value, match):
    raw = _good_raw()
    raw[key] = value
    with pytest.raises(CheckpointError, match=match):
        parse_card(raw)


def test_nan_in_a_card_is_refused():
    text = json.dumps(_good_raw()).replace('"train_acc": 0.', '"train_acc": NaN, "x": 0.', 1)
    with pytest.raises(CheckpointError, match="NaN"):
        loads_card(text)


def test_a_card_nested_100k_deep_is_a_clear_error(tmp_path):
    d = _save(tmp_path / "m")
    _edit(d, lambda raw: raw.update(deep="@"))
    deep = "[" * 100_000 + "]" * 100_000
    (d / "card.json").write_text((d / "card.json").read_text().replace('"@"', deep))
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(d)
    raw = _good_raw()
    raw["deep"] = json.loads("[" * 40 + "]" * 40)  # under the parser's limit, over the card's
    with pytest.raises(CheckpointError, match="nested too deeply"):
        loads_card(json.dumps(raw))


def test_a_huge_class_count_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    d = _save(tmp_path / "m")
    _edit(d, lambda raw: raw.update(config={**raw["config"], "num_classes": 10_000_000},
                                    classes=[f"k{i}" for i in range(10)]))
    built = []
    monkeypatch.setattr("wsms_viz.checkpoint.create_model", lambda *a, **k: built.append(a))
    with pytest.raises(CheckpointError, match="config.num_classes"):
        load_checkpoint(d)
    assert built == []


def test_an_oversized_model_is_refused_on_the_meta_device(tmp_path):
    d = _save(tmp_path / "m")
    _edit(d, lambda raw: raw.update(config={**raw["config"], "num_classes": 90_000},
                                    classes=[f"k{i}" for i in range(90_000)]))
    import wsms_viz.checkpoint as ck
    old = ck.MAX_PARAMS
    ck.MAX_PARAMS = 1_000_000
    try:
        with pytest.raises(CheckpointError, match="parameters"):
            load_checkpoint(d)
    finally:
        ck.MAX_PARAMS = old


def test_an_oversized_weights_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    d = _save(tmp_path / "m")
    with (d / "model.safetensors").open("ab") as f:
        f.truncate(4 * 2**30)  # a sparse 4 GB file: no disk used
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    with pytest.raises(CheckpointError, match="more than this model's weights can take"):
        load_checkpoint(d)
    assert not any(p.name == "model.safetensors" for p in reads)


def test_a_git_lfs_pointer_says_git_lfs_pull(tmp_path):
    d = _save(tmp_path / "m")
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1100000\n"
    (d / "model.safetensors").write_bytes(pointer)
    with pytest.raises(CheckpointError, match="git lfs pull"):
        load_checkpoint(d)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.int64])
def test_weights_of_another_dtype_are_refused_not_cast(tmp_path, dtype):
    d = _save(tmp_path / "m")
    state = _unique_state(create_model("resnet20").eval())
    state["fc.weight"] = state["fc.weight"].to(dtype)
    data = st_save(state)
    (d / "model.safetensors").write_bytes(data)
    _edit(d, lambda raw: raw.update(sha256=hashlib.sha256(data).hexdigest()))
    with pytest.raises(CheckpointError, match=f"fc.weight is {dtype}, expected torch.float32"):
        load_checkpoint(d)


def test_a_checkpoint_symlinked_outside_its_root_is_refused(tmp_path):
    outside = _save(tmp_path / "elsewhere" / "secret")
    root = tmp_path / "checkpoints"
    _save(root / "inside")
    os.symlink(outside, root / "escape")
    assert [p.name for p in find_checkpoints(root)] == ["inside"]
    with pytest.raises(CheckpointError, match="outside the checkpoint folder"):
        load_checkpoint(root / "escape", root=root)
    load_checkpoint(root / "inside", root=root)
    from wsms_viz.app import catalog
    with pytest.raises(CheckpointError, match="outside the checkpoint folder"):
        catalog.load(str(root / "escape"))


def test_epochs_trained_decides_what_the_app_calls_trained(tmp_path):
    from wsms_viz.app import catalog

    untrained = catalog.load(str(_save(tmp_path / "a")))
    log = [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.5}]
    trained = catalog.load(str(_save(tmp_path / "b", log=log)))
    assert (untrained.trained, trained.trained) == (False, True)
    assert epochs_trained(trained.card) == 2 == trained.card.epochs_trained
    assert epochs_trained({}) == epochs_trained(None) == epochs_trained({"log": "x"}) == 0
    assert epochs_trained({"log": [{"epoch": 3}]}) == 3


def test_writer_refuses_a_card_the_reader_would_refuse(tmp_path):
    with pytest.raises(CheckpointError, match="normalization"):
        _save(tmp_path / "m", normalization={"mean": [0.5] * 3, "std": [0, 0, 0]})
    assert not (tmp_path / "m").exists()


def test_card_is_a_read_only_mapping_of_its_json():
    raw = _good_raw()
    card = parse_card(copy.deepcopy(raw))
    assert card["classes"] == raw["classes"] and card.get("nothing") is None and len(card) == len(raw)
    with pytest.raises(TypeError):
        card["classes"] = []


def test_a_block_can_be_added_through_the_card_or_a_plain_dict(tmp_path):
    from wsms_viz.checkpoint import write_card

    d = _save(tmp_path / "m")
    write_card(d, read_card(d).with_block("scale_study", {"rows": [1]}))
    assert read_card(d)["scale_study"] == {"rows": [1]}
    write_card(d, {**read_card(d), "scale_study": {"rows": [2]}})
    assert read_card(d)["scale_study"] == {"rows": [2]}
    with pytest.raises(ValueError, match="typed field"):
        read_card(d).with_block("classes", [])
    with pytest.raises(CheckpointError, match="normalization"):
        write_card(d, {**read_card(d), "normalization": "xyz"})
    load_checkpoint(d)


@pytest.mark.parametrize("name", __import__("wsms_viz.models", fromlist=["x"]).list_models())
def test_every_registered_models_config_passes_the_card_check(name):
    from wsms_viz.models import model_config

    with torch.device("meta"):
        config = model_config(create_model(name))
    assert cards.check_config(json.loads(json.dumps(config)), "t") == json.loads(json.dumps(config))


def test_vgg_round_trips_through_the_card(tmp_path):
    d = _save(tmp_path / "v", "vgg")
    assert load_checkpoint(d).card.config["widths"] == list(create_model("vgg").config.widths)
    _edit(d, lambda raw: raw["config"].update(widths=[64, 10**9, 256]))
    with pytest.raises(CheckpointError, match=r"config.widths\[1\]"):
        load_checkpoint(d)
