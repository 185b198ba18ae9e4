"""The dataset folders a server shares: configured at start, picked by label, never shown."""

import os
from pathlib import Path

from wsms_viz.app.roots import by_label, configured_roots, inside, parse_roots, redact


def test_roots_come_from_the_environment_only(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    spec = os.pathsep.join([f"CIFAR={tmp_path / 'a'}", str(tmp_path / "b"), f"gone={tmp_path / 'c'}", ""])
    roots = configured_roots({"WSMS_DATA_ROOTS": spec, "WSMS_DATA": str(tmp_path)}, repo=tmp_path)
    assert [(r.label, r.path) for r in roots] == [("CIFAR", tmp_path / "a"), ("b", tmp_path / "b")]
    assert [r.label for r in configured_roots({"WSMS_DATA": str(tmp_path / "a")}, repo=tmp_path)] == ["a"]
    repo = tmp_path / "repo"
    assert configured_roots({}, repo=repo) == []  # no ../shared/datasets beside this "repository"
    (tmp_path / "shared" / "datasets" / "cifar10-jpeg").mkdir(parents=True)
    assert [r.label for r in configured_roots({}, repo=repo)] == ["CIFAR-10"]


def test_a_label_is_only_a_key(tmp_path):
    (tmp_path / "a").mkdir()
    roots = configured_roots({"WSMS_DATA_ROOTS": f"CIFAR={tmp_path / 'a'}"}, repo=tmp_path)
    for attack in ("/", "/etc", "../../..", "~", "CIFAR/..", str(tmp_path), None):
        assert by_label(roots, attack) is None
    assert by_label(roots, "CIFAR").path == tmp_path / "a"


def test_inside_follows_symlinks(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (tmp_path / "root" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    (tmp_path / "root" / "ok.jpg").write_bytes(b"x")
    assert inside(tmp_path / "root" / "ok.jpg", [tmp_path / "root"])
    assert not inside(tmp_path / "root" / "link.jpg", [tmp_path / "root"])
    assert not inside(tmp_path / "root" / ".." / "secret.jpg", [tmp_path / "root"])


def test_redact_hides_every_absolute_path():
    named = {Path("/srv/data"): "CIFAR-10"}
    assert redact("/srv/data/cat/1.jpg is damaged", named) == "CIFAR-10/cat/1.jpg is damaged"
    assert redact("cannot read `/etc/passwd`: denied") == "cannot read `passwd`: denied"
    assert redact("~/photos/x.png is empty") == "x.png is empty"
    assert redact("stage 1/2 at 50% / 30%, see https://x.org/a/b") == "stage 1/2 at 50% / 30%, see https://x.org/a/b"
    assert parse_roots("x=/a" + os.pathsep + " /b/c ") == [("x", "/a"), ("c", "/b/c")]
