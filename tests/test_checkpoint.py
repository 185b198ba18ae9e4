"""load_checkpoint: a round trip, and one clear CheckpointError for every way a
checkpoint directory can be broken."""

import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from wsms_viz import checkpoint as ckpt_mod
from wsms_viz.cards import ScaleRobustness
from wsms_viz.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    find_checkpoints,
    load_checkpoint,
    read_card,
    save_checkpoint,
)
from wsms_viz.models import create_model

CLASSES = [f"c{i}" for i in range(10)]


def _save(directory, name="resnet20", **config):
    torch.manual_seed(0)
    model = create_model(name, **config)
    model.eval()
    save_checkpoint(directory, model, {"name": directory.name, "classes": CLASSES[:model.fc.out_features]})
    return model


def _edit_card(directory, **changes):
    card = json.loads((directory / "card.json").read_text())
    card.update(changes)
    (directory / "card.json").write_text(json.dumps(card))


def _rehash(directory):
    data = (directory / "model.safetensors").read_bytes()
    _edit_card(directory, sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("name", ["resnet20", "wsms_resnet20"])
def test_round_trip_gives_the_same_outputs(tmp_path, name):
    model = _save(tmp_path / "m", name)
    loaded = load_checkpoint(tmp_path / "m")
    assert not loaded.model.training and loaded.name == "m"
    assert loaded.card["model"] == name and loaded.card["classes"] == CLASSES
    assert loaded.card["sha256"] == hashlib.sha256((tmp_path / "m" / "model.safetensors").read_bytes()).hexdigest()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), model(x), atol=1e-6)
    assert find_checkpoints(tmp_path) == [tmp_path / "m"]


def test_shared_weights_are_stored_once_and_stay_shared(tmp_path):
    _save(tmp_path / "w", "wsms_resnet20")
    from safetensors.torch import load_file
    stored = load_file(tmp_path / "w" / "model.safetensors")
    full = create_model("wsms_resnet20").state_dict()
    assert len(stored) < len(full)
    m = load_checkpoint(tmp_path / "w").model
    convs = [[c for c in stage.modules() if isinstance(c, torch.nn.Conv2d)] for stage in m.stages]
    assert convs[0][0].weight is convs[2][0].weight  # the stem is shared by every stage, still after loading
    assert torch.equal(convs[1][0].weight, stored[next(k for k in stored if k.endswith("stem.0.weight"))])


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no card.json"):
        load_checkpoint(tmp_path / "empty")
    _save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_checkpoint(tmp_path / "m")


def test_truncated_weights_fail_the_sha_check(tmp_path):
    _save(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        load_checkpoint(tmp_path / "m")


@pytest.mark.parametrize("cut", [0, 7, 100, -10])
def test_corrupt_weights_with_a_matching_sha_are_unreadable(tmp_path, cut):
    _save(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[:cut] if cut >= 0 else data[:cut] + b"\x00" * 3)
    _rehash(tmp_path / "m")  # someone rewrote the card too: the format check still catches it
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(tmp_path / "m")


def test_a_pickle_renamed_safetensors_is_refused_without_unpickling(tmp_path, monkeypatch):
    model = _save(tmp_path / "m")
    torch.save(model.state_dict(), tmp_path / "m" / "model.safetensors")
    _rehash(tmp_path / "m")

    def unpickle(*a, **k):
        raise AssertionError("tried to unpickle")
    monkeypatch.setattr(torch, "load", unpickle)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "m")


def test_card_for_another_architecture(tmp_path):
    _save(tmp_path / "m", "wsms_resnet20")
    _edit_card(tmp_path / "m", model="resnet20", config={"num_classes": 10})
    with pytest.raises(CheckpointError, match="do not fit resnet20.*unexpected"):
        load_checkpoint(tmp_path / "m")
    _save(tmp_path / "d", "resnet20")
    _edit_card(tmp_path / "d", model="resnet32", config={"num_classes": 10, "depth": 32})
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "d")


def test_nan_weights_are_refused(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet20")
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")
        model.stem[0].weight[0, 0, 0, 0] = float("inf")
    save_checkpoint(tmp_path / "m", model, {"classes": CLASSES})  # the sha matches: only the values are bad
    with pytest.raises(CheckpointError, match=r"non-finite values \(NaN or inf\) in") as e:
        load_checkpoint(tmp_path / "m")
    assert "stem.0.weight" in str(e.value) and "fc.weight" in str(e.value)


def test_unknown_model_name(tmp_path):
    _save(tmp_path / "m")
    _edit_card(tmp_path / "m", model="resnet21")
    with pytest.raises(CheckpointError, match="unknown model 'resnet21'"):
        load_checkpoint(tmp_path / "m")
    _edit_card(tmp_path / "m", model=["resnet20"])
    with pytest.raises(CheckpointError, match="unknown model"):
        load_checkpoint(tmp_path / "m")


def test_sha_mismatch(tmp_path):
    _save(tmp_path / "m")
    _edit_card(tmp_path / "m", sha256="0" * 64)
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        load_checkpoint(tmp_path / "m")


def test_class_count_mismatch(tmp_path):
    _save(tmp_path / "m")
    _edit_card(tmp_path / "m", classes=CLASSES[:9])
    with pytest.raises(CheckpointError, match="lists 9 classes but resnet20 has 10 outputs"):
        load_checkpoint(tmp_path / "m")
    _save(tmp_path / "h", num_classes=100)
    _edit_card(tmp_path / "h", classes=CLASSES)
    with pytest.raises(CheckpointError, match="10 classes but resnet20 has 100"):
        load_checkpoint(tmp_path / "h")


def test_bad_configs(tmp_path):
    _save(tmp_path / "m")
    _edit_card(tmp_path / "m", config={"num_classes": 10, "width": 3})
    with pytest.raises(CheckpointError, match="cannot build 'resnet20'"):
        load_checkpoint(tmp_path / "m")
    _edit_card(tmp_path / "m", config={"num_classes": -1})
    with pytest.raises(CheckpointError, match="'config.num_classes' must be an integer in"):
        load_checkpoint(tmp_path / "m")
    _edit_card(tmp_path / "m", config=[1, 2])
    with pytest.raises(CheckpointError, match="'config' must be an object"):
        load_checkpoint(tmp_path / "m")


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe", "[1, 2]", '{"model": "resnet20"}'])
def test_card_that_is_not_a_usable_json_object(tmp_path, text):
    _save(tmp_path / "m")
    (tmp_path / "m" / "card.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(CheckpointError, match="not valid JSON|expected a JSON object|has no 'config' field"):
        load_checkpoint(tmp_path / "m")


def test_safetensors_with_the_wrong_shapes(tmp_path):
    _save(tmp_path / "m")
    state = create_model("resnet20", num_classes=10).state_dict()
    state["fc.weight"] = torch.zeros(10, 32)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "m" / "model.safetensors")
    _rehash(tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"shape mismatch: fc\.weight \(10, 32\) vs \(10, 64\)"):
        load_checkpoint(tmp_path / "m")


def test_card_rewrite_keeps_the_checkpoint_valid(tmp_path):
    # The evaluator rewrites the card; the weights and their sha stay as they were.
    _save(tmp_path / "m")
    card = read_card(tmp_path / "m")
    sr = ScaleRobustness.parse({"zooms": [1.0], "val_acc": [0.5], "mean_acc": 0.5}, "test")
    ckpt_mod.write_card(tmp_path / "m", card.replace(scale_robustness=sr))
    assert load_checkpoint(tmp_path / "m").card["scale_robustness"]["mean_acc"] == 0.5
    assert load_checkpoint(tmp_path / "m").card.scale_robustness.at_zoom_1 == 0.5


def test_interrupted_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "resume.pt"
    atomic_write_bytes(target, b"old complete state")

    def killed(src, dst):
        raise KeyboardInterrupt  # the moment before the rename
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new state, never complete")
    assert target.read_bytes() == b"old complete state"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume.pt"]  # no temporary left behind
