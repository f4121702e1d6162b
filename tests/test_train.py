"""QAT trainer: bit-exact emulation of the integer spec, learning, determinism, CLI errors."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerance import rel_tol

from sc_neurocore import train as tr
from sc_neurocore.bundle import load_bundle
from sc_neurocore.cli import main
from sc_neurocore.data import Dataset, load_mnist, write_idx
from sc_neurocore.golden import infer
from sc_neurocore.train import (CHECKPOINT_FORMAT, CheckpointError, SNNConfig, SpikingMLP, TrainConfig, evaluate,
                                layer_design, load_checkpoint, prepare_data, save_checkpoint, to_bundle, train_model)

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


GRAD_CASES = [  # (encoding, reset, readout, membrane_bits, out_leak_shift, gain, output shift) and the paths taken
    ("direct", "subtract", "membrane", 16, 0, 1.0, None, {"spk const", "spk seq", "readout = currents"}),
    ("direct", "subtract", "membrane", 10, 0, 3.0, None, {"spk const sat", "spk seq sat", "readout = currents"}),
    ("direct", "zero", "spike_count", 10, 0, 3.0, None, {"spk const sat zero", "spk seq sat zero"}),
    ("rate", "subtract", "membrane", 16, 2, 1.0, None, {"spk seq", "out seq"}),
    ("rate", "zero", "membrane", 9, 0, 8.0, 0, {"spk seq sat zero", "out seq sat"}),
]


@pytest.mark.parametrize("encoding,reset,readout,mbits,out_leak,gain,out_shift,paths", GRAD_CASES)
def test_fast_forward_and_gradients_equal_plain_autograd(mnist, monkeypatch, encoding, reset, readout, mbits,
                                                         out_leak, gain, out_shift, paths):
    """The fused training path (_QuantDense, _LIFLayer) against the plain-autograd reference loop."""
    from sc_neurocore import train as tr

    cfg = SNNConfig(sizes=(784, 48, 24, 10), T=6, encoding=encoding, reset=reset, readout=readout, leak_shift=3,
                    membrane_bits=mbits, out_leak_shift=out_leak)
    x = torch.as_tensor(mnist.test_x[:96])
    y = torch.as_tensor(mnist.test_y[:96])
    seen = set()
    backward = tr.kernels._LIFLayer.backward

    def spy(ctx, g):  # which branch of the hand-written backward runs
        pre = ctx.saved_tensors[0]
        _, constant, _, _, mmin, mmax, spiking, subtract, _ = ctx.cfg
        sat = bool(pre.min() < mmin) or bool(pre.max() > mmax)
        seen.add(" ".join(["spk" if spiking else "out", "const" if constant else "seq"] + ["sat"] * sat
                          + ["zero"] * (spiking and not subtract)))
        return backward(ctx, g)

    monkeypatch.setattr(tr.kernels._LIFLayer, "backward", staticmethod(spy))
    res = []
    for reference in (False, True):
        m = _scaled_model(cfg, gain=gain)
        if out_shift is not None:  # large output currents: the readout membrane saturates
            m.design[-1] = dataclasses.replace(m.design[-1], shift=out_shift)
        m.autograd_reference = reference
        out = m(x)
        loss = torch.nn.functional.cross_entropy(out.mean_logits, y) + 0.1 * sum(s.mean() for s in out.spikes)
        loss.backward()
        res.append((out, [w.grad for w in m.weights] + [m.log_logit_scale.grad]))
    (fast, gfast), (ref, gref) = res
    assert torch.equal(fast.scores, ref.scores) and torch.equal(fast.logits, ref.logits)
    assert all(torch.equal(a, b) for a, b in zip(fast.spikes, ref.spikes))
    for a, b in zip(gfast, gref):
        assert torch.count_nonzero(b) > 0
        # each gradient entry reduces over batch x time x the neurons downstream, in a different order on each path
        terms = len(x) * cfg.T * sum(cfg.sizes[1:])
        assert torch.allclose(a, b, rtol=0, atol=rel_tol(np.float32, terms) * float(b.abs().max())), \
            float((a - b).abs().max())
    if readout == "membrane" and not any(p.startswith("out") for p in seen):
        seen.add("readout = currents")  # the non-spiking output skipped _LIFLayer (never saturated)
    assert seen == paths
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


def test_learns_and_export_matches_trained_model(tmp_path):
    data = prepare_data(limit=2000)
    cfg = SNNConfig(T=4, sizes=(784, 64, 10))
    tc = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0, threads=1, quiet=True)
    r = train_model(cfg, tc, data, tmp_path / "m.scnb", log=lambda s: None)
    assert r["test_acc"] > 0.75, r["test_acc"]  # chance is 0.10
    b = load_bundle(tmp_path / "m.scnb")
    prov = b.provenance
    assert prov["dataset"] == "mnist" and prov["seed"] == 0 and prov["test_accuracy"] == round(r["test_acc"], 6)
    assert prov["method"] == "train" and prov["tool_version"] and prov["config"]["T"] == 4
    # the trained (float-emulated) model and the golden model on the exported bundle agree exactly
    model, meta = load_checkpoint(tmp_path / "m.pt")
    acc_model = evaluate(model, torch.as_tensor(data.test_x), torch.as_tensor(data.test_y))
    acc_golden = float((infer(b.network, data.test_x).classes == data.test_y).mean())
    assert acc_model == acc_golden == r["test_acc"]
    assert meta["test_acc"] == r["test_acc"]


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


def test_input_bits_config_errors():
    with pytest.raises(ValueError, match="input_bits must be between 1 and 8, not 0"):
        SNNConfig(input_bits=0)
    with pytest.raises(ValueError, match="input_bits must be 8 with 'rate' encoding"):
        SNNConfig(encoding="rate", input_bits=1)


# --------------------------------------------------------------------------------------------
# hostile input: checkpoints, labels, options (issue 12)
# --------------------------------------------------------------------------------------------

_SNN_CFG = SNNConfig(sizes=(9, 4, 3), T=2)
_DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool, torch.complex64]
_SHAPES = st.lists(st.integers(0, 5), max_size=3).map(tuple)


@st.composite
def _tensors(draw, shape=None):
    shape = draw(_SHAPES) if shape is None else shape
    dtype = draw(st.sampled_from(_DTYPES))
    t = torch.zeros(shape, dtype=dtype)
    fill = draw(st.sampled_from([0.0, 1.5, float("nan"), float("inf")]))
    if dtype.is_floating_point or dtype.is_complex:
        t = t + fill
    if draw(st.integers(0, 3)) == 0 and t.numel() > 1:  # a stride-0 view: a large tensor from a small storage
        t = t.flatten()[:1].clone().expand(*shape)
    return t


_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.integers(-3, 70), max_size=4), st.dictionaries(st.text(max_size=3),
                                                                                     st.integers(), max_size=2),
    _tensors(),
)


def _valid_snn_checkpoint() -> dict:
    return tr.checkpoint._checkpoint_object(SpikingMLP(_SNN_CFG, seed=0), {"test_acc": 0.5})


def _valid_ann_checkpoint() -> dict:
    return tr.checkpoint._checkpoint_object(tr.ANNTeacher(144, 3), {})


@st.composite
def _mutated(draw, d: dict, plausible: dict):
    """Drop some keys, replace some values (by junk or by a plausible alternative), add some keys."""
    d = dict(d)
    for k in list(d):
        action = draw(st.sampled_from(["keep"] * 4 + ["drop", "junk", "plausible"]))
        if action == "drop":
            del d[k]
        elif action == "junk":
            d[k] = draw(_JUNK)
        elif action == "plausible" and k in plausible:
            d[k] = draw(plausible[k])
    for k in draw(st.lists(st.text(max_size=8), max_size=2)):
        d[k] = draw(_JUNK)
    return d


_SIZE = st.integers(-1, 12)
_PLAUSIBLE_SNN = {
    "sizes": st.lists(st.one_of(_SIZE, st.just(10**12)), max_size=4),
    "T": st.integers(-1, 70000), "encoding": st.sampled_from(["direct", "rate", "morse"]),
    "reset": st.sampled_from(["subtract", "zero", ""]), "readout": st.sampled_from(["membrane", "spike_count", "x"]),
    "weight_bits": st.integers(0, 20), "membrane_bits": st.integers(0, 40), "leak_shift": st.integers(-1, 40),
    "out_leak_shift": st.integers(-1, 40), "rate_seed": st.integers(-1, 70000), "input_bits": st.integers(0, 9),
    "theta": st.floats(allow_nan=True, allow_infinity=True), "surrogate_slope": st.floats(allow_nan=True),
}
_PLAUSIBLE_ANN = {"n_inputs": st.sampled_from([0, 9, 144, 145, 10**12, 10**400]), "n_classes": st.integers(-1, 10**9)}


@st.composite
def _checkpoints(draw) -> dict:
    kind = draw(st.sampled_from(["snn", "ann"]))
    obj = _valid_snn_checkpoint() if kind == "snn" else _valid_ann_checkpoint()
    if draw(st.integers(0, 9)) == 0:
        obj["kind"] = draw(st.one_of(st.sampled_from(["snn", "ann", "cnn"]), _JUNK))
    what = draw(st.sampled_from(["config", "state_dict", "both", "top", "none"]))
    if what in ("config", "both"):
        obj["config"] = draw(_mutated(obj["config"], _PLAUSIBLE_SNN if kind == "snn" else _PLAUSIBLE_ANN))
    if what in ("state_dict", "both"):
        shapes = {k: tuple(v.shape) for k, v in obj["state_dict"].items()}
        plausible = {k: st.one_of(_tensors(), _tensors(shape=s)) for k, s in shapes.items()}
        obj["state_dict"] = draw(_mutated(obj["state_dict"], plausible))
    if what == "top":
        obj = draw(_mutated(obj, {"config": _JUNK, "state_dict": _JUNK, "meta": _JUNK}))
        obj["format"], obj["version"] = CHECKPOINT_FORMAT, 1
    return obj


def _check_fuzzed_checkpoint(obj: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.pt"
        torch.save(obj, p)
        try:
            model, meta = load_checkpoint(p)
        except CheckpointError as e:
            assert str(p) in str(e) and "\n" not in str(e), str(e)
        else:  # a model: then the file held a checkpoint this model really is
            assert isinstance(meta, dict) and isinstance(model, (SpikingMLP, tr.ANNTeacher))
            assert all(torch.isfinite(v).all() for v in model.state_dict().values())


_FUZZ = dict(deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)


@settings(max_examples=200, derandomize=True, **_FUZZ)
@given(_checkpoints())
def test_fuzzed_checkpoints_raise_only_checkpoint_error(obj):
    _check_fuzzed_checkpoint(obj)


@pytest.mark.slow
@settings(max_examples=5000, **_FUZZ)
@given(_checkpoints())
def test_fuzzed_checkpoints_raise_only_checkpoint_error_long(obj):
    _check_fuzzed_checkpoint(obj)


def test_valid_checkpoints_still_load(tmp_path):
    for obj in (_valid_snn_checkpoint(), _valid_ann_checkpoint()):
        torch.save(obj, tmp_path / "ok.pt")
        model, meta = load_checkpoint(tmp_path / "ok.pt")
        assert model.kind == obj["kind"] and meta == obj["meta"]
        assert all(torch.equal(model.state_dict()[k], v) for k, v in obj["state_dict"].items())
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(CheckpointError, match="is not a checkpoint file"):
        load_checkpoint(tmp_path / "dir.pt")


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


@pytest.mark.parametrize("labels,needle", [
    ({"val_y": np.array([0, 1, 2, 3, 0, 1])}, "tiny: the validation labels must be integers in [0, 3) for a network "
                                              "with 3 outputs, found 3"),
    ({"train_y": np.arange(24) % 3 - 1}, "tiny: the training labels must be integers in [0, 3) for a network with 3 "
                                         "outputs, found -1"),
    ({"test_y": np.full(8, 0.5)}, "tiny: the test labels must be integers, found 0.5"),
])
@pytest.mark.parametrize("entry", ["train", "distill", "ann"])
def test_training_entry_points_check_labels_first(tmp_path, monkeypatch, labels, needle, entry):
    monkeypatch.setattr(tr.pipeline, "fit", lambda *a, **k: pytest.fail("training started"))
    tc = TrainConfig(epochs=1, augment=0, quiet=True, method="self" if entry == "distill" else "none")
    with pytest.raises(ValueError, match=re.escape(needle)):
        if entry == "train":
            train_model(SNNConfig(sizes=(16, 4, 3), T=2), tc, _tiny_data(**labels), tmp_path / "o.scnb")
        elif entry == "distill":
            tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=2), tc, _tiny_data(**labels), None, tmp_path / "o.scnb")
        else:
            tr.train_ann(tc, _tiny_data(pixels=144, **labels), tmp_path / "o.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change,needle", [
    ({"lr": float("inf")}, "lr must be a positive finite number, not inf"),
    ({"lr": float("nan")}, "lr must be a positive finite number, not nan"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number >= 0, not nan"),
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number >= 0, not inf"),
    ({"dropout": 1.0}, "dropout must be in [0, 1), not 1.0"),
    ({"epochs": 0}, "epochs must be at least 1, not 0"),
    ({"seed": -1}, "seed must be an integer between 0 and"),
    ({"augment": 1}, "image shifts (augment=1) need square images, not 15 pixels; use augment=0"),
])
def test_train_model_checks_options_before_training(tmp_path, monkeypatch, change, needle):
    monkeypatch.setattr(tr.pipeline, "fit", lambda *a, **k: pytest.fail("training started"))
    tc = TrainConfig(epochs=1, augment=0, quiet=True)
    with pytest.raises(ValueError, match=r"^" + re.escape(needle)) as e:
        for k, v in change.items():  # a TrainConfig is mutable: the entry point checks it again
            setattr(tc, k, v)
        train_model(SNNConfig(sizes=(15, 4, 3), T=2), tc, _tiny_data(pixels=15), tmp_path / "o.scnb")
    assert "--" not in str(e.value)  # a library message names the field, not a command-line flag
    assert list(tmp_path.iterdir()) == []


def test_library_messages_name_no_flags(tmp_path):
    data = _tiny_data()
    tc = TrainConfig(epochs=1, augment=0, quiet=True, method="temporal")
    with pytest.raises(ValueError, match=r"^method 'temporal' needs a teacher checkpoint$"):
        tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=2), tc, data, None, tmp_path / "o.scnb")
    with pytest.raises(ValueError, match=r"^self-distillation needs teacher_T greater than the student's T"):
        tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=4), dataclasses.replace(tc, method="self", teacher_T=4),
                         data, None, tmp_path / "o.scnb")
    with pytest.raises(ValueError, match=r"^init must be 'auto', 'teacher' or 'random', not 'x'$"):
        tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=2), dataclasses.replace(tc, method="self"), data, None,
                         tmp_path / "o.scnb", init="x")
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_interrupted_leaves_nothing(tmp_path, monkeypatch):
    real = torch.save

    def interrupted(obj, f, *a, **k):
        real(obj, f, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(torch, "save", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(SpikingMLP(_SNN_CFG), out / "x.pt")
    assert _tree(tmp_path) == ["out"]
    (out / "x.pt").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(SpikingMLP(_SNN_CFG), out / "x.pt")
    assert _tree(tmp_path) == ["out", "out/x.pt"] and (out / "x.pt").read_bytes() == b"old"


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))
