"""Runs that span device sessions (scripts/gpu_carry.py, scripts/gpu_session.sh and
scripts/train_gpu.sh), played on the CPU: pack, carry, unpack, resume, and the final
weights of a run stopped in one "session" and finished in the next."""

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_data import make_imagefolder

from wsms_viz import train as train_mod

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gpu_carry", REPO / "scripts" / "gpu_carry.py")
carry_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(carry_mod)


def _fake_runs(root: Path) -> Path:
    runs = root / "runs"
    done, going = runs / "done", runs / "going"
    for d in (done, going, runs / "proof-graph"):
        d.mkdir(parents=True)
        (d / "log.tsv").write_text("epoch\tlr\n1\t0.1\n2\t0.1\n")
    (done / "model.safetensors").write_bytes(os.urandom(5000))
    (done / "card.json").write_text("{}")
    (done / "resume.pt").write_bytes(os.urandom(7000))  # a finished run's state: not carried
    (going / "resume.pt").write_bytes(os.urandom(9000))
    (runs / "proof-graph" / "resume.pt").write_bytes(b"x")
    (runs / "going.log").write_text("epoch=1 ...\n")
    return runs


def test_pack_collect_unpack_round_trip(tmp_path):
    runs = _fake_runs(tmp_path)
    out = tmp_path / "out"
    manifest = carry_mod.pack(runs, out, part=4000, max_files=20)  # several parts
    assert manifest["files"] == ["done/card.json", "done/log.tsv", "done/model.safetensors", "going.log",
                                 "going/log.tsv", "going/resume.pt"]
    assert manifest["runs"] == {"done": {"finished": True, "epochs": 2}, "going": {"finished": False, "epochs": 2}}
    assert manifest["left_out"] == [] and len(manifest["parts"]) > 2
    assert all(p["bytes"] <= 4000 for p in manifest["parts"])
    carry, local = tmp_path / "carry", tmp_path / "local"
    carry_mod.collect(out, carry, local)
    device = tmp_path / "device-runs"
    assert sorted(carry_mod.unpack(carry, device)) == manifest["files"]
    for rel in manifest["files"]:
        assert (device / rel).read_bytes() == (runs / rel).read_bytes() == (local / rel).read_bytes()

    (out / manifest["parts"][1]["name"]).write_bytes(b"changed")
    with pytest.raises(SystemExit, match="sha256 does not match"):
        carry_mod.collect(out, tmp_path / "carry2")


def test_pack_leaves_out_the_least_needed_files_first(tmp_path):
    runs = _fake_runs(tmp_path)
    # room (after the manifest and the session log) for the checkpoint and one state only
    m = carry_mod.pack(runs, tmp_path / "out", part=10_000, max_files=4, limit=10**9)
    assert "going/resume.pt" in m["files"] and "done/model.safetensors" in m["files"]
    assert set(m["left_out"]) >= {"going.log"}
    m = carry_mod.pack(runs, tmp_path / "out2", part=8000, max_files=3, limit=10**9)
    assert m["files"] == ["done/card.json", "done/model.safetensors"]  # a checkpoint before a state
    assert m["left_out"][0] == "going/resume.pt"


@pytest.mark.slow
def test_returned_files_stay_within_the_device_limits(tmp_path):
    runs = tmp_path / "runs"
    for name in ("a", "b", "c"):  # three resnet110-sized states, 14 MiB each
        (runs / name).mkdir(parents=True)
        (runs / name / "resume.pt").write_bytes(os.urandom(14 * carry_mod.MIB))
    out = tmp_path / "out"
    m = carry_mod.pack(runs, out)
    files = list(out.iterdir())
    assert len(files) <= carry_mod.OUT_MAX_FILES - 1  # the session log is the last one
    assert all(f.stat().st_size <= carry_mod.OUT_FILE_LIMIT for f in files)
    assert sum(f.stat().st_size for f in files) <= carry_mod.OUT_LIMIT - carry_mod.MIB
    assert m["left_out"] == []


def test_data_archive_round_trip_and_its_folder_name(tmp_path):
    src = tmp_path / "shared" / "cifar10-jpeg"
    written = make_imagefolder(src, classes=("ant", "bee"), per_class=3, train_dir=True, suffix=".jpg")
    carry = tmp_path / "carry"
    a = carry_mod.make_data(src, carry)
    first = a.read_bytes()
    assert carry_mod.make_data(src, carry).read_bytes() == first  # the same bytes again
    dest = tmp_path / "device" / "shared" / "cifar10-jpeg"
    assert "unpacked" in carry_mod.unpack_data(carry, f"imagefolder:{dest}")
    for rel in written:
        assert (dest / "train" / rel).read_bytes() == (src / "train" / rel).read_bytes()
    assert "there already" in carry_mod.unpack_data(carry, f"imagefolder:{dest}")
    with pytest.raises(SystemExit, match="not elsewhere/"):
        carry_mod.unpack_data(carry, f"imagefolder:{tmp_path / 'elsewhere'}")


def test_budget_counts_tracked_files_and_the_carry(tmp_path):
    carry = tmp_path / ".carry"
    carry.mkdir()
    (carry / "x.bin").write_bytes(b"\0" * carry_mod.MIB)
    tracked = carry_mod.tracked_bytes()
    ok, text = carry_mod.budget(carry, limit=tracked + 2 * carry_mod.MIB)
    assert ok and "fits" in text
    ok, text = carry_mod.budget(carry, limit=tracked + carry_mod.MIB // 2)
    assert not ok and "too much" in text


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_run_stopped_in_one_session_finishes_in_the_next_with_the_uninterrupted_weights(tmp_path):
    data = tmp_path / "imgs"
    make_imagefolder(data, classes=("ant", "bee", "cow", "dog"), per_class=20)  # 72 train: 9 steps an epoch
    spec = ["--epochs", "12", "--batch-size", "8", "--deterministic", "--zooms", "1",
            "--cache-dir", str(tmp_path / "cache")]
    train_mod.main(["--model", "resnet20", "--data", f"imagefolder:{data}", "--out", str(tmp_path / "straight"),
                    "--seed", "0", "--threads", "1", "--device", "cpu", "--no-progress", *spec])
    (tmp_path / "runlist").write_text("# name model args\ntiny resnet20 " + " ".join(spec) + "\n")
    carry, local = tmp_path / ".carry", tmp_path / "local"
    env = {**os.environ, "DEVICE": "cpu", "THREADS": "1", "PHASES": "list", "RUNLIST": str(tmp_path / "runlist"),
           "DATA": f"imagefolder:{data}", "CARRY": str(carry), "MIN_START": "0", "PACK_RESERVE": "10",
           "BUDGET": "500", "WSMS_CACHE": str(tmp_path / "cache")}

    # session 1: stopped from outside (as a deadline would) once the run has an epoch done
    out1, runs1 = tmp_path / "out1", tmp_path / "machine1" / "runs"
    proc = subprocess.Popen(["bash", "scripts/gpu_session.sh"], cwd=REPO, env={**env, "OUT": str(out1),
                            "RUNS": str(runs1)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    log = runs1 / "tiny" / "log.tsv"
    while not (log.is_file() and len(log.read_text().splitlines()) >= 2):  # the header and epoch 1
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() - t0 < 300
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    log1 = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, log1
    assert "stopping 1 run(s)" in log1 and "packed" in log1, log1
    m1 = json.loads((out1 / "carry.json").read_text())
    assert m1["runs"]["tiny"]["finished"] is False and 1 <= m1["runs"]["tiny"]["epochs"] < 12, log1
    assert (out1 / "session.log").is_file() and len(list(out1.iterdir())) <= carry_mod.OUT_MAX_FILES
    carry_mod.collect(out1, carry, local)
    assert "stopped by signal 15" in (local / "tiny.log").read_text()

    # session 2, on a "new machine" (nothing but the carry): resumes and finishes
    out2, runs2 = tmp_path / "out2", tmp_path / "machine2" / "runs"
    run2 = subprocess.run(["bash", "scripts/gpu_session.sh"], cwd=REPO, env={**env, "OUT": str(out2),
                          "RUNS": str(runs2)}, capture_output=True, text=True, timeout=600)
    assert run2.returncode == 0, run2.stdout + run2.stderr
    assert "resumed from" in (runs2 / "tiny.log").read_text()
    m2 = carry_mod.collect(out2, carry, local)
    assert m2["runs"]["tiny"] == {"finished": True, "epochs": 12}
    assert "tiny/resume.pt" not in m2["files"]  # a finished run travels as its checkpoint
    assert _sha(local / "tiny" / "model.safetensors") == _sha(tmp_path / "straight" / "model.safetensors")

    # session 3 has nothing left to do: the finished run is not trained again
    out3, runs3 = tmp_path / "out3", tmp_path / "machine3" / "runs"
    run3 = subprocess.run(["bash", "scripts/gpu_session.sh"], cwd=REPO, env={**env, "OUT": str(out3),
                          "RUNS": str(runs3)}, capture_output=True, text=True, timeout=600)
    assert run3.returncode == 0 and "tiny: finished earlier" in run3.stdout, run3.stdout + run3.stderr


def test_the_session_scripts_parse():
    for script in ("train_gpu.sh", "gpu_session.sh"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)
    assert sys.executable
