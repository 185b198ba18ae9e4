"""The trainer end to end on a tiny generated ImageFolder: checkpoint and card,
repeatability, interruption and resumption, divergence, and DDP over gloo."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_data import make_imagefolder

from wsms_viz import train as train_mod
from wsms_viz.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "imgs"
    make_imagefolder(root, classes=("ant", "bee", "cow", "dog"), per_class=10)  # 36 train, 4 val
    return root


def _args(data_dir, out, *extra, model="resnet20", epochs=2):
    return ["--model", model, "--data", f"imagefolder:{data_dir}", "--cache-dir", str(out.parent / "cache"),
            "--out", str(out), "--epochs", str(epochs), "--batch-size", "8", "--threads", "1", "--deterministic",
            "--no-progress", "--zooms", "0.5", "1", "2", *extra]


def _exits_2(capsys, message, argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train_mod.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err, err
    return err


def _weights_sha(out):
    return hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize("model", ["resnet20", "wsms_resnet20"])
def test_trainer_writes_a_loadable_checkpoint_with_a_complete_card(data_dir, tmp_path, capsys, model):
    out = tmp_path / "run"
    train_mod.main(_args(data_dir, out, "--name", "tiny", model=model))
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "log.tsv", "model.safetensors", "resume.pt"]
    ck = load_checkpoint(out)  # sha, finiteness and class count all checked
    card = ck.card
    assert card["name"] == "tiny" and card["model"] == model
    assert card["config"]["num_classes"] == 4 and card["classes"] == ["ant", "bee", "cow", "dog"]
    assert card["normalization"]["mean"] == pytest.approx([0.4914, 0.4822, 0.4465])
    assert len(card["normalization"]["std"]) == 3 and card["input_size"] == [32, 32]
    assert card["data"]["source"] == f"imagefolder:{data_dir}"
    assert "last 10% of each class" in card["data"]["split"]
    assert (card["data"]["train_size"], card["data"]["val_size"], card["data"]["train_used"]) == (36, 4, 36)
    assert card["recipe"]["name"] == "short" and card["recipe"]["epochs"] == 2
    assert card["recipe"]["batch_size"] == 8 and card["recipe"]["seed"] == 0 and card["recipe"]["processes"] == 1
    assert [row["epoch"] for row in card["log"]] == [1, 2]
    assert set(card["log"][0]) >= {"lr", "train_loss", "train_acc", "val_loss", "val_acc", "images_per_s"}
    assert card["metrics"] == {"train_acc": card["log"][-1]["train_acc"], "val_acc": card["log"][-1]["val_acc"]}
    sr = card["scale_robustness"]
    assert sr["zooms"] == [0.5, 1.0, 2.0] and len(sr["val_acc"]) == 3 and all(0 <= a <= 1 for a in sr["val_acc"])
    assert sr["mean_acc"] == pytest.approx(sum(sr["val_acc"]) / 3)
    assert card["sha256"] == _weights_sha(out)
    assert card["versions"]["torch"] == torch.__version__
    assert {"python", "numpy", "safetensors"} <= set(card["versions"])
    assert "1 threads" in card["hardware"] and card["wall_time_s"] > 0
    log = (out / "log.tsv").read_text().splitlines()
    assert log[0].split("\t")[:2] == ["epoch", "lr"] and len(log) == 3
    printed = capsys.readouterr().out
    assert "epoch=2" in printed and "wrote" in printed


def test_seed_makes_cpu_runs_repeatable(data_dir, tmp_path):
    train_mod.main(_args(data_dir, tmp_path / "a", epochs=1))
    train_mod.main(_args(data_dir, tmp_path / "b", epochs=1))
    train_mod.main(_args(data_dir, tmp_path / "c", "--seed", "1", epochs=1))
    assert _weights_sha(tmp_path / "a") == _weights_sha(tmp_path / "b")
    assert _weights_sha(tmp_path / "a") != _weights_sha(tmp_path / "c")


def _signal_at(monkeypatch, global_step: int, signum=signal.SIGTERM):
    """Sends the process ``signum`` from inside training step ``global_step`` (0-based),
    as a kill from outside would arrive: the trainer's own handler has to deal with it."""
    real, sent = train_mod.learning_rate, []

    def lr(recipe, step, steps_per_epoch):
        if step == global_step and not sent:
            sent.append(step)
            os.kill(os.getpid(), signum)
        return real(recipe, step, steps_per_epoch)
    monkeypatch.setattr(train_mod, "learning_rate", lr)


def test_sigterm_mid_epoch_then_resume_gives_the_uninterrupted_weights(data_dir, tmp_path, monkeypatch, capsys):
    train_mod.main(_args(data_dir, tmp_path / "straight"))
    out = tmp_path / "interrupted"
    with monkeypatch.context() as m:
        _signal_at(m, 5)  # 4 steps an epoch: epoch 2, its second step
        with pytest.raises(SystemExit) as e:
            train_mod.main(_args(data_dir, out))
    assert e.value.code == 128 + signal.SIGTERM
    assert "stopped by signal 15 at epoch 2, step 2" in capsys.readouterr().out
    assert not (out / "model.safetensors").exists()
    state = torch.load(out / "resume.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the trainer gave the handler back

    _exits_2(capsys, "exists: pass --resume", _args(data_dir, out))
    _exits_2(capsys, "belongs to a different run", _args(data_dir, out, "--resume", "--lr", "0.05"))

    train_mod.main(_args(data_dir, out, "--resume"))
    assert "resumed from" in capsys.readouterr().out
    assert _weights_sha(out) == _weights_sha(tmp_path / "straight")
    a, b = (json.loads((d / "card.json").read_text()) for d in (out, tmp_path / "straight"))
    assert [r["train_loss"] for r in a["log"]] == [r["train_loss"] for r in b["log"]]
    assert a["scale_robustness"] == b["scale_robustness"]


def test_ctrl_c_between_epochs_stops_after_saving(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_mod, "_write_log", lambda path, log: (train_mod.atomic_write_bytes(path, b"x"),
                                                                     os.kill(os.getpid(), signal.SIGINT)))
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, tmp_path / "run"))
    assert e.value.code == 128 + signal.SIGINT
    assert "stopped by signal 2 after epoch 1" in capsys.readouterr().out
    state = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 0)


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_non_finite_loss_stops_and_leaves_a_previous_checkpoint_alone(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train_mod.main(_args(data_dir, out, epochs=1))
    (out / "resume.pt").unlink()  # a finished run, its checkpoint kept; train again into the same place
    before = _snapshot(out)
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, "--lr", "1e30"))
    assert e.value.code == 3
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "at epoch 1, step" in err and "try a lower --lr" in err
    assert _snapshot(out) == before  # model, card and log untouched, no resume state of the bad run


def test_non_finite_loss_after_resume_leaves_the_resume_state_alone(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train_mod.main(_args(data_dir, out))
    # Make the stored state go bad the moment training continues: a classifier so large
    # that its logits overflow; the trainer must neither step on it nor save over it.
    state = torch.load(out / "resume.pt", weights_only=True)
    state["epoch"], state["step"] = 1, 0
    state["model"]["fc.weight"] *= 1e38
    torch.save(state, out / "resume.pt")
    before = _snapshot(out)
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, "--resume"))
    assert e.value.code == 3
    assert "non-finite loss" in capsys.readouterr().err
    assert _snapshot(out) == before


@pytest.mark.slow
def test_non_finite_exit_code_from_the_command_line(data_dir, tmp_path):
    run = subprocess.run([sys.executable, "-m", "wsms_viz.train",
                          *_args(data_dir, tmp_path / "run", "--lr", "1e30", epochs=1)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: non-finite loss")
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run" / "resume.pt").exists()


@pytest.mark.slow
def test_sigint_from_outside_saves_state_and_exits_cleanly(data_dir, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "wsms_viz.train", *_args(data_dir, out, epochs=500)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait until it is training
            if line.startswith("epoch=1 "):
                break
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert "stopped by signal 2" in stdout and "continue with --resume" in stdout
    assert "Traceback" not in stderr
    state = torch.load(out / "resume.pt", weights_only=True)
    assert state["epoch"] >= 1 and not (out / "model.safetensors").exists()


_RANK_SCRIPT = """
import json, os, sys, torch
import wsms_viz.train as T
made, renames = [], []
real_create, real_replace = T.create_model, os.replace
def create(*a, **k):
    made.append(real_create(*a, **k))
    return made[-1]
def replace(src, dst, *a, **k):
    renames.append(os.path.basename(dst))  # every file this project writes is renamed into place
    return real_replace(src, dst, *a, **k)
T.create_model, os.replace = create, replace
T.train(T.build_parser().parse_args(sys.argv[1:]))
dump = os.environ["DUMP_DIR"] + "/rank" + os.environ["RANK"]
torch.save(made[-1].state_dict(), dump + ".pt")  # the last: the first is the meta-device check
with open(dump + ".json", "w") as f:
    json.dump(renames, f)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_agree_and_only_rank_0_writes(data_dir, tmp_path):
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
           "DUMP_DIR": str(dump), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    # what torchrun --nproc_per_node=2 sets, one process per rank
    # Each rank writes to files, not pipes: a rank blocked on a full pipe that the test is
    # not reading yet would stall the other rank at its next collective.
    logs = [(tmp_path / f"rank{r}.out", tmp_path / f"rank{r}.err") for r in (0, 1)]
    files = [(open(o, "w"), open(e, "w")) for o, e in logs]
    procs = [subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, *_args(data_dir, out)], cwd=REPO,
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=files[r][0], stderr=files[r][1], text=True) for r in (0, 1)]
    try:
        deadline = time.monotonic() + 240
        for p in procs:
            p.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail("the two ranks did not finish in 240 s: " + " | ".join(e.read_text()[-1500:] for _, e in logs))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for o, e in files:
            o.close()
            e.close()
    outputs = [(o.read_text(), e.read_text()) for o, e in logs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    assert "2 process(es)" in outputs[0][0] and outputs[1][0] == ""  # rank 1 prints nothing
    s0, s1 = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert s0.keys() == s1.keys()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k  # parameters and BatchNorm statistics alike
    renames = [json.loads((dump / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert renames[1] == []
    assert {"model.safetensors", "card.json", "resume.pt", "log.tsv"} <= set(renames[0])
    ck = load_checkpoint(out)
    assert ck.card["recipe"]["processes"] == 2
    for k, v in ck.model.state_dict().items():
        assert torch.equal(v, s0[k]), k


def test_precision_flag_picks_autocast_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not train_mod.use_bf16("auto", cpu) and train_mod.use_bf16("auto", cuda)
    assert train_mod.use_bf16("bf16", cpu) and not train_mod.use_bf16("fp32", cuda)
    with pytest.raises(ValueError, match="precision"):
        train_mod.use_bf16("fp16", cpu)


def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(train_mod, "cpu_has_native_bf16", lambda: False)
    assert "about 10x slower" in train_mod.bf16_cpu_warning(True, cpu)
    assert train_mod.bf16_cpu_warning(False, cpu) is None
    assert train_mod.bf16_cpu_warning(True, torch.device("cuda")) is None
    monkeypatch.setattr(train_mod, "cpu_has_native_bf16", lambda: True)
    assert train_mod.bf16_cpu_warning(True, cpu) is None


def test_bf16_on_cpu_runs_convolutions_in_bf16_and_says_so(data_dir, tmp_path, capsys):
    from wsms_viz.data import Augmenter
    from wsms_viz.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=4)
    dtypes = []
    model.stem[0].register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    opt = train_mod.build_optimizer(model, train_mod.RECIPES["short"])
    images, labels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.tensor([0, 1, 2, 3])
    args = (model, opt, images, labels, (0.5,) * 3, (0.25,) * 3, Augmenter(), torch.Generator(), torch.device("cpu"))
    train_mod.train_step(*args)
    train_mod.train_step(*args, bf16=True)
    assert dtypes == [torch.float32, torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: the weights stay fp32

    out = tmp_path / "bf16"
    train_mod.main(_args(data_dir, out, "--precision", "bf16", epochs=1))
    printed = capsys.readouterr().out
    assert "bf16 autocast" in printed
    assert ("about 10x slower" in printed) == (not train_mod.cpu_has_native_bf16())
    assert load_checkpoint(out).card["precision"] == "bf16 autocast"
    (out / "model.safetensors").unlink()
    (out / "card.json").unlink()
    _exits_2(capsys, "belongs to a different run", _args(data_dir, out, "--resume", epochs=1))  # bf16 != fp32


# --- the trainer trusts nothing ------------------------------------------------

BAD_ARGS = [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--epochs", "-1"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--batch-size", "-1"], "--batch-size must be at least 1"),
    (["--subset", "0"], "--subset must be at least 1"),
    (["--val-subset", "0"], "--val-subset must be at least 1"),
    (["--lr", "0"], "--lr must be a finite number above 0"),
    (["--lr", "nan"], "--lr must be a finite number above 0"),
    (["--lr", "inf"], "--lr must be a finite number above 0"),
    (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1)"),
    (["--schedule", "linear"], "--schedule must be one of cosine, step"),
    (["--warmup", "exp"], "--warmup must be one of linear, constant"),
    (["--warmup-epochs", "-1"], "--warmup-epochs must be between 0 and --epochs"),
    (["--jitter-p", "2"], "--jitter-p must be in [0, 1]"),
    (["--scale-jitter", "1", "1000"], "--scale-jitter needs 0.25 <= LO <= HI <= 8"),
    (["--scale-jitter", "2", "1"], "--scale-jitter needs 0.25 <= LO <= HI <= 8"),
    (["--scale-jitter", "0", "1"], "--scale-jitter needs 0.25 <= LO <= HI <= 8"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--device", "tpu"], "--device"),
    (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "nonsense"], "--device"),
    (["--zooms", "100"], "--zooms must be factors between"),
    (["--set", "width=3"], "--set: bad config for 'resnet20'"),
    (["--set", "noequals"], "--set expects key=value"),
    (["--set", "num_classes=10000000"], "'config.num_classes' must be an integer in [1, 100000]"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_ARGS)
def test_every_bad_argument_exits_2_before_any_data_is_read(tmp_path, capsys, monkeypatch, extra, message):
    read = []
    monkeypatch.setattr(train_mod, "load_dataset", lambda *a, **k: read.append(a))
    argv = _args(tmp_path / "no-data-here", tmp_path / "run") + extra
    _exits_2(capsys, message, argv)
    assert read == [] and not (tmp_path / "run" / "model.safetensors").exists()


def test_unknown_model_and_bad_source_exit_2(tmp_path, capsys):
    _exits_2(capsys, "unknown model 'resnet21'", _args(tmp_path, tmp_path / "run", model="resnet21"))
    _exits_2(capsys, "data source must be", [*_args(tmp_path, tmp_path / "run"), "--data", "ftp:x"])


def test_class_count_is_checked_against_the_data(data_dir, tmp_path, capsys):
    err = _exits_2(capsys, "--set num_classes=5, but the data has 4 classes",
                   _args(data_dir, tmp_path / "run", "--set", "num_classes=5"))
    assert "ant" in err


def test_an_unwritable_output_directory_exits_2_before_training(data_dir, tmp_path, capsys, monkeypatch):
    read = []
    monkeypatch.setattr(train_mod, "load_dataset", lambda *a, **k: read.append(a))
    (tmp_path / "file").write_text("not a directory")
    _exits_2(capsys, "cannot write there", _args(data_dir, tmp_path / "file" / "run"))
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        _exits_2(capsys, "cannot write there", _args(data_dir, ro / "run"))
    assert read == []


def test_a_huge_lr_ends_with_exit_3_and_never_overwrites_good_files(data_dir, tmp_path, capsys):
    # --lr 1e6 used to write NaN tensors into resume.pt and model.safetensors and exit 2.
    out = tmp_path / "run"
    train_mod.main(_args(data_dir, out, epochs=1))
    good_resume = (out / "resume.pt").read_bytes()
    (out / "resume.pt").unlink()
    before = _snapshot(out)
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, "--lr", "1e6", epochs=3))
    err = capsys.readouterr().err
    assert e.value.code == 3 and "non-finite" in err and "Traceback" not in err, err
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k != "resume.pt"} == before  # model, card, log untouched
    if "resume.pt" in after:  # only a finite epoch before the blow-up may have been saved
        state = torch.load(out / "resume.pt", weights_only=True)
        assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert good_resume  # the first run saved one


def test_a_non_finite_val_loss_ends_with_exit_3_before_saving(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_mod, "_evaluate", lambda *a, **k: (float("nan"), 0.0))
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, epochs=1))
    assert e.value.code == 3 and "non-finite val loss" in capsys.readouterr().err
    assert not (out / "resume.pt").exists() and not (out / "model.safetensors").exists()


def test_a_full_disk_is_a_message_and_the_last_good_state_stays(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    calls = []
    real = train_mod.atomic_write_bytes

    def full_after_epoch_1(path, data):
        calls.append(path.name)
        if calls.count("resume.pt") >= 2:
            raise OSError(28, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(train_mod, "atomic_write_bytes", full_after_epoch_1)
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, epochs=2))
    err = capsys.readouterr().err
    assert e.value.code == 4 and "No space left on device" in err and "intact" in err and "Traceback" not in err
    state = torch.load(out / "resume.pt", weights_only=True)
    assert state["epoch"] == 1  # epoch 1's state, complete
    monkeypatch.undo()
    train_mod.main(_args(data_dir, out, "--resume", epochs=2))  # and it finishes from there
    assert load_checkpoint(out).card.epochs_trained == 2


def test_a_corrupt_image_is_skipped_and_counted(tmp_path, capsys):
    data = tmp_path / "imgs"
    make_imagefolder(data, classes=("ant", "bee", "cow", "dog"), per_class=10)
    bad = sorted((data / "bee").iterdir())[3]
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG any more")
    out = tmp_path / "run"
    train_mod.main(_args(data, out, epochs=1))
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable image(s): bee/" in printed
    card = load_checkpoint(out).card
    assert card["data"]["skipped_images"] == 1 and card["data"]["train_size"] + card["data"]["val_size"] == 39


def test_leftover_temporary_files_are_removed(data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".resume.pt.abc123.tmp").write_bytes(b"half a state from a kill -9")
    train_mod.main(_args(data_dir, out, epochs=1))
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "log.tsv", "model.safetensors", "resume.pt"]


def test_library_code_raises_main_maps_to_exit_codes(tmp_path):
    args = train_mod.build_parser().parse_args(_args(tmp_path, tmp_path / "run", epochs=0))
    with pytest.raises(train_mod.UsageError, match="--epochs"):
        train_mod.train(args)
    assert (train_mod.UsageError.exit_code, train_mod.TrainingDiverged.exit_code, train_mod.WriteFailed.exit_code,
            train_mod.Stopped("x", 15).exit_code) == (2, 3, 4, 143)


def test_non_finite_weights_after_a_finite_loss_end_with_exit_3(data_dir, tmp_path, capsys, monkeypatch):
    # The loss of the last step can be finite while the step it takes leaves inf weights.
    real, calls = train_mod.train_step, []

    def step_then_blow_up(net, opt, *a, **k):
        out = real(net, opt, *a, **k)
        calls.append(1)
        if len(calls) == 4:  # the epoch's last step (36 images, batches of 8)
            with torch.no_grad():
                next(net.parameters()).fill_(float("inf"))
        return out
    monkeypatch.setattr(train_mod, "train_step", step_then_blow_up)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, epochs=1))
    assert e.value.code == 3 and "non-finite weights" in capsys.readouterr().err
    assert not (out / "resume.pt").exists() and not (out / "model.safetensors").exists()


def test_a_scale_jitter_run_writes_its_card(data_dir, tmp_path):
    # The recipe holds the jitter range as a tuple; the card (JSON) reads it back as a list.
    # Every jittered run of the scale study ended here with "must be a list, got tuple"
    # once cards were validated before writing.
    out = tmp_path / "jit"
    train_mod.main(_args(data_dir, out, "--scale-jitter", "0.7", "1.4", epochs=1))
    ck = load_checkpoint(out)
    assert ck.card["recipe"]["scale_jitter"] == [0.7, 1.4]


def test_one_class_of_data_exits_2_in_one_line(tmp_path, capsys):
    data = tmp_path / "imgs"
    make_imagefolder(data, classes=("ant",), per_class=20)
    err = _exits_2(capsys, "1 class (ant); a classifier needs at least 2", _args(data, tmp_path / "run"))
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_get_the_permissions_of_the_umask(data_dir, tmp_path, umask, mode):
    out = tmp_path / "run"
    old = os.umask(umask)
    try:
        train_mod.main(_args(data_dir, out, epochs=1))
    finally:
        os.umask(old)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["card.json", "log.tsv", "model.safetensors", "resume.pt"]
    assert {n: oct((out / n).stat().st_mode & 0o777) for n in names} == {n: oct(mode) for n in names}


# A trainer process that pauses inside its PAUSE_AT-th write of a chosen file, after the
# bytes are written and before the rename, and says so: the test kills it right there.
_PAUSE_IN_WRITE = """
import os, sys, time
import wsms_viz.train as T
target, marker, real_fsync = os.environ["PAUSE_IN"], os.environ["PAUSE_MARKER"], os.fsync
writes = []
def fsync(fd):
    real_fsync(fd)
    if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("." + target + "."):
        writes.append(fd)
        if len(writes) == int(os.environ["PAUSE_AT"]):
            open(marker, "w").close()
            time.sleep(600)
os.fsync = fsync
T.main(sys.argv[1:])
"""


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    import time

    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid-epoch", "writing resume.pt", "writing the checkpoint"])
def test_sigkill_then_resume_gives_the_uninterrupted_weights(data_dir, tmp_path, where):
    straight = tmp_path / "straight"
    train_mod.main(_args(data_dir, straight, epochs=3))
    out, marker = tmp_path / "killed", tmp_path / "paused"
    if where == "mid-epoch":
        # 4 steps an epoch: kill as soon as epoch 2's line is printed, while its state is
        # being saved or epoch 3's first steps run.
        proc = subprocess.Popen([sys.executable, "-m", "wsms_viz.train", *_args(data_dir, out, epochs=3)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if line.startswith("epoch=2 "):
                break
    else:
        # epoch 2's resume.pt (epoch 1's is there), or the final weights (after epoch 3's state)
        target, at = ("resume.pt", 2) if where == "writing resume.pt" else ("model.safetensors", 1)
        env = {**os.environ, "PAUSE_IN": target, "PAUSE_AT": str(at), "PAUSE_MARKER": str(marker)}
        proc = subprocess.Popen([sys.executable, "-c", _PAUSE_IN_WRITE, *_args(data_dir, out, epochs=3)],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(marker, proc)
        assert list(out.glob(train_mod.TEMP_GLOB)), "the write was not under way"
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "card.json").exists()
    state = torch.load(out / "resume.pt", weights_only=True)  # the last complete one
    assert state["step"] == 0 and state["epoch"] >= 1
    train_mod.main(_args(data_dir, out, "--resume", epochs=3))
    assert not list(out.glob(train_mod.TEMP_GLOB))
    assert _weights_sha(out) == _weights_sha(straight)
    a, b = (json.loads((d / "card.json").read_text()) for d in (out, straight))
    assert [r["train_loss"] for r in a["log"]] == [r["train_loss"] for r in b["log"]]
