"""The trainer's sync-free step (wsms_viz.train.Stepper) and its keyed augmentation
(wsms_viz.keyed_random), on the CPU: what a captured CUDA step runs, minus the capture."""

import re

import pytest
import torch
from tiny_data import make_imagefolder

from wsms_viz import train as train_mod
from wsms_viz.data import Augmenter
from wsms_viz.keyed_random import KeyedRandom, hash32, seed_salt
from wsms_viz.models import create_model

CPU = torch.device("cpu")


# --- keyed random numbers ---------------------------------------------------------------

def test_hash32_is_the_same_on_ints_and_tensors_and_a_bijection():
    xs = list(range(0, 2**32, 2**32 // 4099)) + [0, 1, 2**32 - 1]
    t = hash32(torch.tensor(xs, dtype=torch.int64))
    assert t.tolist() == [hash32(x) for x in xs]
    assert ((t >= 0) & (t < 2**32)).all()
    sample = hash32(torch.arange(2**16, dtype=torch.int64))
    assert len(sample.unique()) == 2**16  # no two inputs of 65,536 collide
    assert hash32(0) == 0 and hash32(1) != 1  # lowbias32 keeps 0; everything else moves


def _rng(step=7, seed=0, rank=0):
    return KeyedRandom(torch.tensor(step), seed_salt(seed, rank))


def test_keyed_random_is_a_function_of_seed_rank_step_and_draw():
    a, b = _rng(), _rng()
    first, second = a.rand(64), a.rand(64)
    assert torch.equal(first, b.rand(64)) and torch.equal(second, b.rand(64))  # the same sequence again
    assert not torch.equal(first, second)  # each draw new numbers
    for other in (_rng(step=8), _rng(seed=1), _rng(rank=1)):
        assert not torch.equal(first, other.rand(64))
    assert seed_salt(0, 1) != seed_salt(1, 0) and seed_salt(2**40) != seed_salt(0)


def test_keyed_random_is_uniform():
    r = _rng(step=123)
    ints = r.randint(9, 90_000)
    counts = torch.bincount(ints, minlength=9)
    assert ints.min() >= 0 and ints.max() < 9
    assert ((counts - 10_000).abs() < 400).all(), counts  # 4 standard deviations
    u = r.rand(100_000)
    assert u.dtype == torch.float32 and u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.004 and abs(u.var().item() - 1 / 12) < 0.002
    # consecutive values are not correlated (adjacent indices go through the hash)
    assert abs(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1].item()) < 0.02


def test_augmenter_with_keyed_random_crops_windows_and_flips_about_half():
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = Augmenter(pad=4, flip=True)(x, _rng(step=5))
    replay = _rng(step=5)  # the draws in the Augmenter's order: rows, columns, flips
    oy, ox, flip = replay.randint(9, 64), replay.randint(9, 64), replay.rand(64) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(64):
        window = padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32]
        assert torch.equal(out[i], window.flip(2) if flip[i] else window)
    assert 16 < int(flip.sum()) < 48 and len(set(zip(oy.tolist(), ox.tolist(), strict=True))) > 10


def test_scale_jitter_with_keyed_random_draws_log_uniform_scales_on_the_key_device():
    aug = Augmenter(jitter_range=(0.5, 2.0), jitter_p=0.5)
    s = aug.draw_scales(20_000, _rng())
    jittered = s[s != 1]
    assert abs(len(jittered) / len(s) - 0.5) < 0.02
    assert jittered.min() >= 0.5 and jittered.max() <= 2.0
    assert abs(torch.log(jittered).mean().item()) < 0.02  # log-uniform on [log 1/2, log 2]: mean 0
    x = torch.randn(8, 3, 32, 32)
    out = Augmenter(jitter_range=(0.5, 2.0), jitter_p=1.0)(x, _rng())
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert torch.equal(out, Augmenter(jitter_range=(0.5, 2.0), jitter_p=1.0)(x, _rng()))


# --- the optimizer and the step -------------------------------------------------------

def _model_and_batch(seed=0):
    torch.manual_seed(seed)
    model = create_model("resnet20", num_classes=4).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g)
    return model, images, torch.randint(0, 4, (32,), generator=g)


def test_zero_momentum_buffers_give_exactly_the_lazy_first_step():
    recipe = train_mod.RECIPES["short"]
    (a, x, y), (b, _, _) = _model_and_batch(), _model_and_batch()
    lazy = train_mod.build_optimizer(a, recipe)
    lazy.state.clear()  # torch's own way: each buffer is created from the first gradient
    ours = train_mod.build_optimizer(b, recipe)
    assert all("momentum_buffer" in ours.state[p] for p in b.parameters())
    for model, opt in ((a, lazy), (b, ours)):
        for _ in range(2):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x.float() / 255), y).backward()
            opt.step()
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k  # bit for bit


@pytest.mark.parametrize("capture", ["graph", "compile"])
def test_a_captured_step_reads_one_shared_tensor_learning_rate(capture):
    model, _, _ = _model_and_batch()
    opt = train_mod.build_optimizer(model, train_mod.RECIPES["short"], capture)
    lrs = [g["lr"] for g in opt.param_groups]
    assert isinstance(lrs[0], torch.Tensor) and all(lr is lrs[0] for lr in lrs)
    assert bool(opt.param_groups[0]["fused"]) is (capture == "graph")


def _stepper(capture="none", jitter=True, **kw):
    model, images, labels = _model_and_batch()
    opt = train_mod.build_optimizer(model, train_mod.RECIPES["short"], capture)
    aug = Augmenter(jitter_range=(0.5, 2.0) if jitter else None)
    s = train_mod.Stepper(model, opt, images, labels, (0.5,) * 3, (0.25,) * 3, aug, CPU, False, capture,
                          batch_size=8, **kw)
    s.set_epoch(torch.randperm(32, generator=torch.Generator().manual_seed(1)))
    return s, model


def test_steps_never_read_a_value_back_from_the_device(monkeypatch):
    stepper, model = _stepper()
    stepper.step(0, 0, 0.1)  # the first step may set things up

    def no(*a, **k):
        raise AssertionError("a host read of a device value inside a step")
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, no)
    for step in range(1, 4):
        stepper.step(step, step, 0.1)
    monkeypatch.undo()
    loss_sum, correct, bad = stepper.read()
    assert bad == -1 and 0 <= correct <= 32 and loss_sum > 0


def test_running_sums_are_what_the_steps_computed(monkeypatch):
    stepper, _ = _stepper(jitter=False)
    seen = []
    real = train_mod.train_step

    def record(*a, **k):
        loss, logits = real(*a, **k)
        seen.append((loss.item(), logits.argmax(1), a[3]))
        return loss, logits
    monkeypatch.setattr(train_mod, "train_step", record)
    stepper.load(1.5, 2.0)  # a resumed epoch's figures
    for step in range(4):
        stepper.step(step, step, 0.05)
    loss_sum, correct, bad = stepper.read()
    assert loss_sum == pytest.approx(1.5 + sum(loss * 8 for loss, _, _ in seen), rel=1e-12)
    assert correct == 2 + sum(int((pred == y).sum()) for _, pred, y in seen)
    assert bad == -1


def test_a_non_finite_loss_is_flagged_with_its_step():
    stepper, model = _stepper()
    for step in range(2):
        stepper.step(step, step, 0.1)
    with torch.no_grad():
        model.fc.weight.fill_(float("inf"))
    stepper.step(2, 2, 0.1)
    stepper.step(3, 3, 0.1)
    assert stepper.read()[2] == 2  # the first one, not the last
    stepper.load(0.0, 0.0)
    assert stepper.read()[2] == -1


def test_a_failed_recording_says_so_and_trains_on_eagerly_from_the_same_state(capsys, monkeypatch):
    # A CPU stands in for the GPU: streams do nothing, the warm-up steps really run, and
    # the recording itself fails, as it would on a GPU for an op that cannot be captured.
    import contextlib

    class Stream:
        def __init__(self, *a, **k):
            pass

        def wait_stream(self, other):
            pass

    def no_graph():
        raise RuntimeError("operation not permitted when stream is capturing")
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", no_graph)
    warmups = []
    real_device_step = train_mod.Stepper._device_step
    monkeypatch.setattr(train_mod.Stepper, "_device_step", lambda self: (warmups.append(1), real_device_step(self)))
    model, images, labels = _model_and_batch()
    opt = train_mod.build_optimizer(model, train_mod.RECIPES["short"], "graph")  # fused SGD, tensor lr
    failed = train_mod.Stepper(model, opt, images, labels, (0.5,) * 3, (0.25,) * 3, Augmenter(), CPU, False,
                               "graph", batch_size=8)
    ref_model, _, _ = _model_and_batch()
    ref_opt = train_mod.build_optimizer(ref_model, train_mod.RECIPES["short"], "graph")
    ref = train_mod.Stepper(ref_model, ref_opt, images, labels, (0.5,) * 3, (0.25,) * 3, Augmenter(), CPU, False,
                            "none", batch_size=8)
    order = torch.randperm(32, generator=torch.Generator().manual_seed(1))
    for s in (failed, ref):
        s.set_epoch(order)
        for step in range(3):
            s.step(step, step, 0.1)
    err = capsys.readouterr().err
    assert err.count("could not record the training step as a CUDA graph (RuntimeError: operation not") == 1, err
    assert len(warmups) == train_mod.Stepper.WARMUP_STEPS + 3  # the warm-up ran, then 3 eager steps
    assert failed.capture == "graph failed" and failed.graph is None
    assert failed.read() == pytest.approx(ref.read(), rel=1e-5)
    for (k, u), v in zip(model.state_dict().items(), ref_model.state_dict().values(), strict=True):
        if u.is_floating_point():  # the warm-up steps of the failed recording left no trace
            assert torch.allclose(u, v, rtol=1e-5, atol=1e-6), k
    with pytest.raises(RuntimeError, match="not permitted"):
        strict = train_mod.Stepper(model, opt, images, labels, (0.5,) * 3, (0.25,) * 3, Augmenter(), CPU, False,
                                   "graph", batch_size=8, fallback=False)
        strict.set_epoch(order)
        strict.step(0, 0, 0.1)


def test_ranks_draw_different_batches_and_augmentations():
    a, _ = _stepper(rank=0, world=2)
    b, _ = _stepper(rank=1, world=2)
    assert a.per_rank == 4 and a.salt != b.salt
    assert a.offsets.tolist() == [0, 1, 2, 3] and b.offsets.tolist() == [4, 5, 6, 7]


# --- the command line -------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "imgs"
    make_imagefolder(root, classes=("ant", "bee", "cow", "dog"), per_class=10)  # 36 train, 4 val
    return root


def _args(data_dir, out, *extra, epochs=2):
    return ["--model", "resnet20", "--data", f"imagefolder:{data_dir}", "--cache-dir", str(out.parent / "cache"),
            "--out", str(out), "--epochs", str(epochs), "--batch-size", "8", "--threads", "1", "--deterministic",
            "--no-progress", "--zooms", "1", *extra]


def test_capture_modes_that_cannot_work_exit_2(tmp_path, capsys, monkeypatch):
    assert train_mod.capture_mode("auto", CPU, 1) == "none"
    assert train_mod.capture_mode("auto", torch.device("cuda"), 1) == "graph"
    assert train_mod.capture_mode("auto", torch.device("cuda"), 2) == "none"
    for extra, message in ((["--capture", "graph", "--device", "cpu"], "--capture graph needs a CUDA device"),
                           (["--check-every", "0"], "--check-every must be at least 1")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            train_mod.main(_args(tmp_path, tmp_path / "run", *extra))
        assert e.value.code == 2 and message in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(train_mod.UsageError, match="under torchrun use --capture none"):
        train_mod.capture_mode("compile", CPU, 2)


def test_a_divergence_is_noticed_at_the_check_and_names_its_step(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, "--lr", "1e30", "--check-every", "3", epochs=1))
    err = capsys.readouterr().err
    assert e.value.code == 3, err
    m = re.search(r"non-finite loss at epoch 1, step (\d) \(the trainer reads the loss every --check-every=3", err)
    assert m and int(m.group(1)) <= 3, err
    assert not (out / "resume.pt").exists() and not (out / "model.safetensors").exists()


def test_a_signal_between_checks_saves_a_checked_state(data_dir, tmp_path, monkeypatch, capsys):
    import os
    import signal

    real, sent = train_mod.learning_rate, []

    def lr(recipe, step, steps_per_epoch):
        if step == 5 and not sent:
            sent.append(step)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(recipe, step, steps_per_epoch)
    monkeypatch.setattr(train_mod, "learning_rate", lr)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_mod.main(_args(data_dir, out, "--check-every", "100"))
    assert e.value.code == 128 + signal.SIGTERM
    state = torch.load(out / "resume.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    assert state["partial"]["seen"] == 16 and 0 <= state["partial"]["correct"] <= 16 and state["partial"]["loss"] > 0
    assert all(isinstance(g["lr"], float) for g in state["optimizer"]["param_groups"])


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="Inductor takes tens of minutes on a small shared CPU")
def test_compiled_steps_train_like_eager_ones():
    eager, a = _stepper("none")
    compiled, b = _stepper("compile")
    for step in range(3):
        for s in (eager, compiled):
            s.step(step, step, 0.05 + 0.01 * step)
    ea, ca = eager.read(), compiled.read()
    assert ca[2] == -1 and ea[1] == ca[1] and ea[0] == pytest.approx(ca[0], rel=1e-3)
    for (k, u), v in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if u.is_floating_point():
            assert torch.allclose(u, v, rtol=1e-3, atol=1e-4), k


@pytest.mark.slow
def test_the_gpu_benchmark_runs_its_cpu_path(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "table.md"
    run = subprocess.run([sys.executable, "benchmarks/gpu_throughput.py", "--device", "cpu", "--models", "resnet20",
                          "--batch-size", "8", "--steps", "1", "--warmup", "1", "--train-images", "64",
                          "--concurrency", "1", "2", "--seconds", "0.1", "--out", str(out)],
                         cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    table = out.read_text()
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in table.splitlines()
            if line.startswith("| resnet20")}
    assert set(rows) == {("resnet20", "bare eager"), ("resnet20", "bare graph"), ("resnet20", "trainer graph"),
                         ("resnet20", "trainer none"), ("resnet20", "1 runs, trainer none"),
                         ("resnet20", "2 runs, trainer none")}, table
    assert "unavailable (no CUDA)" in rows[("resnet20", "bare graph")]
    for key in (("resnet20", "bare eager"), ("resnet20", "trainer none"), ("resnet20", "2 runs, trainer none")):
        images_per_s = rows[key].split("|")[3].replace(",", "").replace("total", "").strip()
        assert float(images_per_s) > 0, rows[key]
