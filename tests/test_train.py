"""QAT trainer: bit-exact emulation of the integer spec, learning, determinism, CLI errors."""

from __future__ import annotations

import dataclasses
import itertools
import json
import zipfile

import numpy as np
import pytest
import torch
from tolerance import rel_tol

from sc_neurocore.bundle import load_bundle
from sc_neurocore.cli import main
from sc_neurocore.data import load_mnist, write_idx
from sc_neurocore.golden import infer
from sc_neurocore.train import SNNConfig, SpikingMLP, layer_design, prepare_data, to_bundle

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _scaled_model(cfg: SNNConfig, seed: int = 1, gain: float = 3.0) -> SpikingMLP:
    m = SpikingMLP(cfg, seed=seed)
    with torch.no_grad():
        for w in m.weights:
            w.mul_(gain)  # push some weights to the clip and make layers fire at a healthy rate
    return m


COMBOS = list(itertools.product(("direct", "rate"), ("subtract", "zero"), ("membrane", "spike_count")))


@pytest.mark.parametrize("encoding,reset,readout", COMBOS)
def test_qat_forward_equals_golden(mnist, encoding, reset, readout):
    cfg = SNNConfig(sizes=(784, 48, 24, 10), T=7, encoding=encoding, reset=reset, readout=readout, leak_shift=3)
    model = _scaled_model(cfg)
    x = mnist.test_x[:256]
    out = model(torch.as_tensor(x))
    bundle = to_bundle(model, provenance={"test": True})
    r = infer(bundle.network, x, record=True)
    assert np.array_equal(out.scores.numpy().astype(np.int64), r.scores)
    n_spiking = len(out.spikes)
    assert n_spiking == (3 if readout == "spike_count" else 2)
    for li in range(n_spiking):
        ours = out.spikes[li].detach().numpy().astype(np.uint8)
        assert np.array_equal(ours, r.spikes[li])
        rate = ours.mean()
        assert 0.02 < rate < 0.98, f"layer {li} rate {rate}: the test would not exercise spiking"
    # the per-step logits sum to the integer score (membrane increments / output spikes)
    # (float32 sums of T steps: each ratio is off by at most gamma_T times its cancellation sum|l_t| / |sum l_t|)
    logits = out.logits.detach().double()
    unit = logits.sum(0) / torch.as_tensor(r.scores, dtype=torch.float64)
    finite = torch.as_tensor(r.scores) != 0
    cancel = (logits.abs().sum(0) / logits.sum(0).abs())[finite]
    u = unit[finite]
    scale = u.median()
    assert torch.all((u - scale).abs() <= rel_tol(np.float32, cfg.T) * (cancel + cancel.max()) * scale.abs())
    # some weights were clipped and the membrane saturated somewhere: the edge cases were exercised
    assert any(np.abs(layer.weight).max() == 127 for layer in bundle.network.layers)


def test_qat_saturation_and_float64_layer1_exact(mnist):
    # bright synthetic images and mostly positive clipped weights: direct layer-1 sums exceed 2^24
    # (float32 would round them) and, with a small current shift, the 12-bit membrane saturates
    cfg = SNNConfig(sizes=(784, 32, 10), T=5, membrane_bits=12, leak_shift=2)
    model = _scaled_model(cfg, gain=20.0)
    with torch.no_grad():
        model.weights[0].abs_()
        model.weights[0][:5].neg_()
    assert layer_design(cfg)[0].exact64
    model.design[0] = dataclasses.replace(model.design[0], shift=4)
    x = np.concatenate([np.random.default_rng(0).integers(200, 256, (64, 784)), mnist.test_x[:64]]).astype(np.uint8)
    out = model(torch.as_tensor(x))
    r = infer(to_bundle(model).network, x, record=True)
    assert np.array_equal(out.scores.numpy().astype(np.int64), r.scores)
    assert np.array_equal(out.spikes[0].detach().numpy().astype(np.uint8), r.spikes[0])
    layer = to_bundle(model).network.layers[0]
    a = x.astype(np.int64) @ layer.weight
    assert np.abs(a).max() > (1 << 24)  # beyond float32's exact integers
    assert np.any(a.astype(np.float32).astype(np.int64) != a)  # float32 would have been wrong
    assert np.abs(a >> layer.current_shift).max() > (1 << 11)  # the integrate step saturated
def test_export_for_another_T_matches_forward(mnist):
    model = _scaled_model(SNNConfig(T=4, sizes=(784, 32, 10)))
    x = mnist.test_x[:100]
    for T in (1, 9):
        b = to_bundle(model, T)
        assert b.T == T
        assert np.array_equal(model.predict_scores(torch.as_tensor(x), T).numpy().astype(np.int64),
                              infer(b.network, x).scores)
    with pytest.raises(ValueError):
        to_bundle(model, 0)


def _train_cli(out, seed=0, extra=()):
    return main(["train", "--T", "3", "--epochs", "1", "--limit", "400", "--hidden", "16", "--threads", "1",
                 "--seed", str(seed), "--quiet", "-o", str(out), *extra])


def test_seed_determinism_identical_bytes(tmp_path):
    assert _train_cli(tmp_path / "a.scnb") == 0
    assert _train_cli(tmp_path / "b.scnb") == 0
    assert _train_cli(tmp_path / "c.scnb", seed=1) == 0
    a, b, c = ((tmp_path / f"{n}.scnb").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_distill_temporal_self_and_ann(tmp_path, capsys):
    assert _train_cli(tmp_path / "teacher.scnb", extra=("--T", "8")) == 0
    common = ["--T", "2", "--epochs", "1", "--limit", "300", "--threads", "1", "--quiet"]
    assert main(["distill", "--teacher", str(tmp_path / "teacher.pt"), *common, "-o", str(tmp_path / "s.scnb")]) == 0
    prov = load_bundle(tmp_path / "s.scnb").provenance
    assert prov["method"] == "distill-temporal" and prov["init"] == "teacher" and prov["teacher"]["T"] == 8
    assert len(prov["teacher"]["sha256"]) == 64
    assert load_bundle(tmp_path / "s.scnb").T == 2
    assert main(["distill", "--method", "self", "--teacher-T", "6", "--hidden", "16", *common,
                 "-o", str(tmp_path / "self.scnb")]) == 0
    assert load_bundle(tmp_path / "self.scnb").provenance["method"] == "distill-self"
    assert main(["train", "--ann", "--epochs", "1", "--limit", "300", "--threads", "1", "--quiet",
                 "-o", str(tmp_path / "ann.scnb")]) == 0
    assert main(["distill", "--teacher", str(tmp_path / "ann.pt"), "--hidden", "16", *common,
                 "-o", str(tmp_path / "fromann.scnb")]) == 0
    prov = load_bundle(tmp_path / "fromann.scnb").provenance
    assert prov["teacher"]["kind"] == "ann" and prov["init"] == "random"


@pytest.mark.parametrize("argv,needle", [
    (["train", "--T", "0"], "--T must be between"),
    (["train", "--epochs", "0"], "--epochs must be at least 1"),
    (["distill", "--teacher", "/nonexistent/teacher.pt"], "teacher checkpoint not found"),
    (["distill"], "needs --teacher"),
    (["train", "--data-dir", "/nonexistent/data"], "data directory not found"),
    (["train", "--sizes", "784-x-10"], "--sizes must look like"),
    (["train", "--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
    (["train", "--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["distill", "--method", "self", "--surrogate-slope", "0"], "--surrogate-slope must be positive"),
])
def test_bad_arguments_exit_2(tmp_path, capsys, argv, needle):
    assert main([*argv, "--quiet", "-o", str(tmp_path / "o.scnb")]) == 2
    err = capsys.readouterr().err
    assert "sc-neurocore: error:" in err and needle in err, err
    assert not (tmp_path / "o.scnb").exists()


def test_unreadable_data_dir_and_bad_teacher_files(tmp_path, capsys):
    d = tmp_path / "idx"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    (d / "train-labels-idx1-ubyte").write_bytes(b"garbage")
    write_idx(d / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(10, np.uint8))
    assert main(["train", "--data-dir", str(d), "--quiet", "-o", str(tmp_path / "o.scnb")]) == 2
    assert "not an IDX file" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["distill", "--teacher", str(bad), "--quiet", "-o", str(tmp_path / "o.scnb")]) == 2
    assert "not an sc_neurocore checkpoint" in capsys.readouterr().err


def test_recipe_options_reach_the_trainer(tmp_path):
    """--label-smoothing, --surrogate-slope, --weight-decay, --train-on-val, --method average from a CNN teacher."""
    common = ["--epochs", "2", "--limit", "300", "--hidden", "16", "--threads", "1", "--quiet"]
    assert main(["train", "--ann", *common, "-o", str(tmp_path / "cnn.scnb")]) == 0
    assert main(["distill", "--teacher", str(tmp_path / "cnn.pt"), "--T", "2", "--method", "average",
                 "--label-smoothing", "0.1", "--surrogate-slope", "2", "--weight-decay", "0.01", *common,
                 "-o", str(tmp_path / "s.scnb")]) == 0
    prov = load_bundle(tmp_path / "s.scnb").provenance
    tc = prov["train_config"]
    assert (tc["method"], tc["label_smoothing"], tc["weight_decay"], tc["train_on_val"]) == ("average", 0.1, 0.01, False)
    assert prov["config"]["surrogate_slope"] == 2.0 and prov["teacher"]["kind"] == "ann"
    assert "--label-smoothing 0.1" in prov["command"] and "--surrogate-slope 2.0" in prov["command"]
    assert main(["train", "--T", "2", "--train-on-val", *common, "-o", str(tmp_path / "all.scnb")]) == 0
    prov = load_bundle(tmp_path / "all.scnb").provenance
    assert prov["train_config"]["train_on_val"] and prov["best_epoch"] == 2  # no selection: the last epoch
    assert prov["train_images"] == 300 + 300  # --limit 300 of each split, validation included


def test_teacher_student_class_mismatch(tmp_path, capsys):
    assert main(["train", "--sizes", "784-16-12", "--T", "2", "--epochs", "1", "--limit", "200", "--threads", "1",
                 "--quiet", "-o", str(tmp_path / "t12.scnb")]) == 0
    for extra in ([], ["--sizes", "784-16-10"]):
        assert main(["distill", "--teacher", str(tmp_path / "t12.pt"), "--T", "2", "--epochs", "1", "--limit", "200",
                     "--threads", "1", "--quiet", "-o", str(tmp_path / "s.scnb"), *extra]) == 2
        assert "teacher/student class mismatch" in capsys.readouterr().err
    assert not (tmp_path / "s.scnb").exists()


def test_idx_data_dir_with_validation_split(tmp_path):
    src = load_mnist()
    d = tmp_path / "idx"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", src.train_x[:600].reshape(-1, 28, 28))
    write_idx(d / "train-labels-idx1-ubyte", src.train_y[:600].astype(np.uint8), compress=True)
    write_idx(d / "t10k-images-idx3-ubyte", src.test_x[:200].reshape(-1, 28, 28))
    write_idx(d / "t10k-labels-idx1-ubyte", src.test_y[:200].astype(np.uint8))
    data = prepare_data(data_dir=d)
    assert len(data.train_x) == 500 and len(data.val_x) == 100
    assert main(["train", "--data-dir", str(d), "--T", "2", "--epochs", "1", "--hidden", "16", "--threads", "1",
                 "--quiet", "-o", str(tmp_path / "o.scnb")]) == 0
    with zipfile.ZipFile(tmp_path / "o.scnb") as zf:
        prov = json.loads(zf.read("manifest.json"))["provenance"]
    assert prov["dataset"] == "idx" and prov["test_images"] == 200


@pytest.mark.parametrize("input_bits", [1, 3])
def test_qat_forward_equals_golden_with_input_bits(mnist, input_bits):
    """Spec §3.1 in the torch view: layer 1 sees p >> (8 - input_bits), bit-exact with the golden model."""
    cfg = SNNConfig(sizes=(784, 48, 10), T=5, leak_shift=3, input_bits=input_bits)
    model = _scaled_model(cfg)
    x = mnist.test_x[:256]
    out = model(torch.as_tensor(x))
    net = to_bundle(model).network
    assert net.input_bits == input_bits
    r = infer(net, x, record=True)
    assert np.array_equal(out.scores.numpy().astype(np.int64), r.scores)
    assert np.array_equal(out.spikes[0].detach().numpy().astype(np.uint8), r.spikes[0])
    assert 0.02 < r.spikes[0].mean() < 0.98
    # float pixels (the augmentation path) quantise the same way
    out_f = model(torch.as_tensor(x, dtype=torch.float32))
    assert np.array_equal(out_f.scores.numpy().astype(np.int64), r.scores)
    # the design scales layer 1 for x_max = 2^b - 1, not 255: about 8 - b fewer bits to shift away
    full = layer_design(SNNConfig(sizes=(784, 48, 10), T=5, leak_shift=3))[0].shift
    assert full - layer_design(cfg)[0].shift in (8 - input_bits - 1, 8 - input_bits, 8 - input_bits + 1)
