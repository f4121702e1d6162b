"""Tests of sc_neurocore.train.loop: the training loop: data preparation, the teacher cache."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tolerance import rel_tol

from sc_neurocore import train as tr
from sc_neurocore.data import Dataset, load_mnist
from sc_neurocore.train import prepare_data

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_teacher_cache_equals_teacher_forward(mnist):
    from sc_neurocore.train import ANNTeacher
    from sc_neurocore.train.loop import _shift_images, _TeacherCache

    teacher = ANNTeacher(784, 10, seed=3).eval()
    x = torch.as_tensor(mnist.train_x[:300])
    cache = _TeacherCache(teacher, x, 1, batch_size=128)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(300, generator=gen)[:64]
    xb, d = _shift_images(x[idx], 1, gen)
    assert len(set(map(tuple, d.view(2, -1).t().tolist()))) > 4  # several different shifts drawn
    with torch.no_grad():
        want = teacher(xb)
        # the cache ran the same network on other batch sizes: a chain of reductions of each layer's fan-in
        terms = sum(p[0].numel() for n, p in teacher.named_parameters() if n.endswith("weight"))
        tol = rel_tol(np.float32, terms) * max(float(want.abs().max()), 1.0)
        assert torch.allclose(cache.get(idx, d), want, rtol=0, atol=tol)
    assert _TeacherCache(teacher, x, 1).logits is cache.logits  # reused within the process


def _tiny_data(n_train=24, n_val=6, n_test=8, pixels=16, classes=3, **labels) -> tr.Data:
    rng = np.random.default_rng(0)
    ys = {s: np.arange(n) % classes for s, n in (("train_y", n_train), ("val_y", n_val), ("test_y", n_test))}
    ys.update(labels)
    return tr.Data("tiny", rng.integers(0, 256, (n_train, pixels), dtype=np.uint8), ys["train_y"],
                   rng.integers(0, 256, (n_val, pixels), dtype=np.uint8), ys["val_y"],
                   rng.integers(0, 256, (n_test, pixels), dtype=np.uint8), ys["test_y"])


@pytest.mark.parametrize("labels,needle", [
    (np.array([0, 1, 2, 1.5] * 5), "the training labels must be integers, found 1.5"),
    (np.array([0, 1, 2, np.nan] * 5), "the training labels must be integers, found nan"),
    (np.array([0, 1, 2, -1] * 5),
     "the training labels must be integers in [0, 65536) (class indices), found -1"),
    (np.array([0, 1, 2, 2**40] * 5),
     "the training labels must be integers in [0, 65536) (class indices), found 1099511627776"),
    (np.array([True, False] * 10), "the training labels must be integers, not bool"),
])
def test_prepare_data_checks_labels(monkeypatch, labels, needle):
    from sc_neurocore import data as data_mod

    x = np.zeros((20, 16), np.uint8)
    ds = Dataset("bad", x, labels, x[:4], np.arange(4) % 3)
    monkeypatch.setattr(data_mod, "load_dataset", lambda *a: ds)
    with pytest.raises(ValueError, match=r"^bad: " + re.escape(needle)):
        prepare_data(data_dir="anywhere")


def test_mixed_is_self_distillation_plus_the_long_runs_label_loss():
    """``mixed`` = ``self``'s loss (the T=2 run distilled from the detached T=8 run) + the cross-entropy of the
    T=8 run on the labels, so the long run is trained too; both from one module call (DDP's one forward)."""
    import torch.nn.functional as F

    from sc_neurocore.train.loop import _batch_loss

    torch.manual_seed(0)
    model = tr.SpikingMLP(tr.SNNConfig(sizes=(16, 6, 3), T=2, encoding="rate"), seed=1)
    x = torch.randint(0, 256, (32, 16), dtype=torch.uint8)
    y = torch.arange(32) % 3
    log = lambda s: None  # noqa: E731
    losses, grads = {}, {}
    for method in ("self", "mixed"):
        tc = tr.TrainConfig(method=method, teacher_T=8, alpha=0.5, augment=0, quiet=True)
        model.zero_grad()
        loss, pred = _batch_loss(model, tc, None, x, log)(x, y, None, None)
        loss.backward()
        losses[method] = float(loss.detach())
        grads[method] = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    long_ce = F.cross_entropy(model(x, 8).mean_logits, y)
    long_ce.backward()
    tol = rel_tol(np.float32, 16 * 8 * 32) * max(abs(losses["mixed"]), 1.0)
    assert abs(losses["mixed"] - (losses["self"] + float(long_ce.detach()))) <= tol
    moved = 0
    for gs, gm, p in zip(grads["self"], grads["mixed"], model.parameters()):
        scale = float(gm.abs().max()) + 1.0
        assert torch.allclose(gm, gs + p.grad, rtol=0, atol=rel_tol(np.float32, 16 * 8 * 32) * scale)
        moved += int(bool((p.grad != 0).any()))
    assert moved >= 1  # the long run's label loss does reach the weights


@pytest.mark.parametrize("encoding,readout", [("rate", "spike_count"), ("direct", "membrane")])
def test_snn_teacher_cache_gives_the_same_student(tmp_path, monkeypatch, encoding, readout):
    """Without shifts an SNN teacher's logits are computed once for the whole training set; they are integers
    (spike counts, membranes) in float32, so the cached table equals the per-batch forward and the student's
    bytes are the same with and without the cache."""
    from sc_neurocore.train.loop import _TeacherCache

    data = _tiny_data(n_train=96, n_val=16, n_test=16, pixels=16)
    cfg = tr.SNNConfig(sizes=(16, 8, 3), T=8, encoding=encoding, readout=readout)
    tc = tr.TrainConfig(epochs=2, batch_size=16, augment=0, quiet=True, threads=1, seed=3)
    teacher = tr.train_model(cfg, tc, data, tmp_path / "t.scnb")
    assert (tmp_path / "t.pt").is_file() and teacher
    kd = tr.TrainConfig(**{**tc.to_dict(), "quiet": True, "method": "temporal"})
    logs = []
    tr.distill_model(cfg.replace(T=2), kd, data, tmp_path / "t.pt", tmp_path / "cached.scnb", log=logs.append)
    assert any("teacher logits for 96 samples at T=8" in s for s in logs)
    monkeypatch.setattr(_TeacherCache, "MAX_BYTES", 0)  # too small for any table: the teacher runs every step
    monkeypatch.setattr(_TeacherCache, "_last", (None, None))
    logs.clear()
    tr.distill_model(cfg.replace(T=2), kd, data, tmp_path / "t.pt", tmp_path / "direct.scnb", log=logs.append)
    assert not any("teacher logits" in s for s in logs)
    assert (tmp_path / "cached.scnb").read_bytes() == (tmp_path / "direct.scnb").read_bytes()


_FAULTS_PER_STEP = """
import resource, sys, torch
torch.set_num_threads(1)
from sc_neurocore.train import SNNConfig, SpikingMLP, make_optimizer
from sc_neurocore.train.loop import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else None
cfg = SNNConfig.from_arch("16C5-P2-32C5-P2-128-10", (1, 28, 28), T=4)
model = SpikingMLP(cfg, seed=0)
opt = make_optimizer(model, 1e-3)
x, y = torch.rand(32, 784), torch.randint(0, 10, (32,))
def step():
    loss = torch.nn.functional.cross_entropy(model(x).mean_logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
for _ in range(3):
    step()
faults = []
for _ in range(9):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(kept, sorted(faults)[len(faults) // 2])
"""


def test_training_steps_reuse_the_memory_they_free():
    """With :func:`keep_freed_memory` (what the trainer sets up) a conv training step allocates its tens of MB
    of temporaries from memory the previous step freed: almost no page faults, where glibc's default
    takes thousands per step (5 457 at batch 32 and 27 148 at batch 128 on the machine this was written on:
    a third of the step's CPU time). On glibc the setting must take.

    The median step is what is compared: now and then a step grows the heap (its first touch of the new pages
    costs up to a few thousand faults, once), which made a mean over 3 steps anything from 1 to 1 177 from
    run to run, where the median was 1 in every run."""
    import platform
    import subprocess
    import sys

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_STEP, mode], capture_output=True, text=True,
                             check=True).stdout.split()
        return out[0], float(out[1])

    took, kept = faults("kept")
    _, default = faults("default")
    if platform.libc_ver()[0] != "glibc":
        assert took == "False"
        return
    assert took == "True"
    assert kept < 100, f"{kept:.0f} page faults in the median step with the setting ({default:.0f} without)"
