"""Conv layers in the torch QAT model: its forward equals the golden model bit for bit on the exported integers
(every encoding, readout, reset, stride, padding and pooling, the float64 path), and conv students train,
distil (temporal, self), export and reload."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sc_neurocore import train as tr
from sc_neurocore.bundle import load_bundle
from sc_neurocore.golden import infer
from sc_neurocore.train import SNNConfig, TrainConfig, load_checkpoint
from sc_neurocore.train.config import ConvSpec, parse_arch
from sc_neurocore.train.model import SpikingMLP, to_network

torch.set_num_threads(1)


def _inputs(cfg: SNNConfig, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if cfg.encoding == "events":
        x = torch.randint(0, cfg.input.x_max + 1, (n, cfg.T, cfg.sizes[0]), generator=g, dtype=torch.uint8)
        x[0] = 0                       # an empty recording
        x[1] = cfg.input.x_max         # every input saturated in every bin
        return x
    x = torch.randint(0, 256, (n, cfg.sizes[0]), generator=g, dtype=torch.uint8)
    x[0], x[1] = 0, 255                # all-zero and all-max images
    return x


def _check_exact(cfg: SNNConfig, seed: int = 0, n: int = 24) -> None:
    model = SpikingMLP(cfg, seed=seed)
    x = _inputs(cfg, n, seed)
    out = model(x)
    net = to_network(model)
    ref = infer(net, x.numpy(), record=True)
    assert np.array_equal(out.scores.numpy().astype(np.int64), ref.scores)
    spiking = [li for li in range(cfg.n_layers) if cfg.spiking(li)]
    assert len(out.spikes) == len(spiking)
    for seq, li in zip(out.spikes, spiking):
        assert np.array_equal(seq.detach().numpy().astype(np.uint8).transpose(0, 1, 2), ref.spikes[li])
    assert sum(int(s.sum()) for s in out.spikes) > 0    # the case exercises the spiking path


@pytest.mark.parametrize("arch, shape, kw", [
    ("4C5-P2-6C3-P2-10", (1, 12, 12), dict(encoding="direct", readout="membrane")),
    ("4C5-P2-6C3-P2-10", (1, 12, 12), dict(encoding="direct", readout="spike_count", reset="zero")),
    ("3C3S2-5", (1, 11, 11), dict(encoding="rate", readout="spike_count")),
    ("3C4P0-P3-8-4", (1, 9, 9), dict(encoding="direct", input_bits=3, readout="membrane")),
    ("4C3-P2-3", (2, 8, 8), dict(encoding="events", input_bits=2, readout="spike_count")),
    ("2C1-P2-3C2P1-4", (1, 6, 6), dict(encoding="direct", readout="spike_count", leak_shift=0)),
])
@pytest.mark.parametrize("T", [1, 3])
def test_conv_forward_equals_golden(arch, shape, kw, T):
    _check_exact(SNNConfig.from_arch(arch, shape, T=T, **kw))


def test_conv_float64_path_is_exact():
    """16-bit weights push the conv's partial-sum bound past 2^24: the float64 convolution must be exact too."""
    cfg = SNNConfig.from_arch("3C5-P2-4", (1, 10, 10), T=2, weight_bits=16, membrane_bits=24)
    from sc_neurocore.train.model import layer_design

    assert layer_design(cfg)[0].exact64
    _check_exact(cfg)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_conv_stays_exact_without_onednn():
    """With oneDNN off, torch ran float32 convolutions through NNPACK's Winograd transform, off the integers by
    3.7e-4 here: exact_conv2d keeps it out, so the convolution and the whole conv forward (fast and reference
    paths) still equal integer arithmetic and the golden model."""
    from sc_neurocore.train.kernels import exact_conv2d

    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 3, (64, 16, 14, 14), generator=g).float()
    w = torch.randint(-50, 51, (32, 16, 5, 5), generator=g).float()
    want = torch.nn.functional.conv2d(x.double(), w.double(), padding=2)  # exact: every sum far below 2^53
    with torch.backends.mkldnn.flags(enabled=False):
        assert torch.equal(exact_conv2d(x, w, 1, 2).double(), want)
        cfg = SNNConfig.from_arch("8C3-P2-16C5-12", (1, 16, 16), T=3, encoding="direct", readout="membrane")
        _check_exact(cfg, n=40)
        model = SpikingMLP(cfg, seed=1)
        model.autograd_reference = True
        x0 = _inputs(cfg, 40, 1)
        assert np.array_equal(model(x0).scores.numpy().astype(np.int64), infer(to_network(model), x0.numpy()).scores)


@pytest.mark.parametrize("device_type,backend", [("cpu", "nnpack"), ("cuda", "cudnn")])
def test_exact_conv_switches_off_the_transforming_backend(device_type, backend):
    """The conv currents run with the device's transforming backend off (NNPACK on the CPU, cuDNN on CUDA: their
    Winograd / FFT algorithms round), and the flag is restored afterwards. The flags are what can be checked
    without a GPU; the CUDA currents themselves were never run here."""
    from sc_neurocore.train.kernels import _direct_conv_only

    def enabled() -> bool:  # NNPACK's flag is read through set_flags (it returns the previous value)
        if backend == "cudnn":
            return torch.backends.cudnn.enabled
        (on,) = torch.backends.nnpack.set_flags(True)
        torch.backends.nnpack.set_flags(on)
        return on

    before = enabled()
    assert before is True
    with _direct_conv_only(device_type):
        assert enabled() is False
    assert enabled() is True


def test_conv_gradients_reach_every_layer():
    cfg = SNNConfig.from_arch("4C5-P2-6C3-P2-10", (1, 12, 12), T=3)
    model = SpikingMLP(cfg, seed=0)
    out = model(_inputs(cfg, 8))
    torch.nn.functional.cross_entropy(out.mean_logits, torch.arange(8) % 10).backward()
    for w in model.weights:
        assert w.grad is not None and bool(torch.isfinite(w.grad).all()) and float(w.grad.abs().sum()) > 0


def test_parse_arch():
    sizes, conv = parse_arch("16C5-P2-32C5-P2-10", (1, 28, 28))
    assert sizes == (784, 16 * 14 * 14, 32 * 7 * 7, 10)
    assert conv == (ConvSpec(16, 5, 1, 2, 2), ConvSpec(32, 5, 1, 2, 2))
    assert parse_arch("8c3s2p0-64-10", (2, 34, 34)) == ((2312, 8 * 16 * 16, 64, 10), (ConvSpec(8, 3, 2, 0, 1),))
    assert SNNConfig.from_arch("8C3S2P0-P2-64-10", (2, 34, 34)).arch == "8C3S2P0-P2-64-10"
    assert SNNConfig(sizes=(784, 128, 10)).arch == "784-128-10"


@pytest.mark.parametrize("arch, message", [
    ("", r"arch must be a string like '16C5-P2-32C5-P2-10', not ''"),
    ("16C5-P2", r"must end with a dense output layer"),
    ("P2-10", r"P2 must follow a conv layer \(once\)"),
    ("16C5-P2-P2-10", r"P2 must follow a conv layer \(once\)"),
    ("16C5-128-8C3-10", r"conv layer 8C3 after a dense layer \(conv layers come first\)"),
    ("16X5-10", r"cannot read '16x5' \(expected e.g. 16C5, 16C3S2, 16C5P0, P2 or 128\)"),
    ("16C5-P3-10", r"pool must divide the convolution's output size 28x28, not 3"),
    ("16C31-10", r"kernel size must be between 1 and 15, not 31"),
])
def test_parse_arch_refuses(arch, message):
    with pytest.raises(ValueError, match=message):
        parse_arch(arch, (1, 28, 28))


def test_config_checks_conv_against_sizes():
    with pytest.raises(ValueError, match=r"conv layers need the input_shape"):
        SNNConfig(sizes=(784, 3136, 10), conv=((4, 5, 1, 2, 2),))
    with pytest.raises(ValueError, match=r"conv layer 0 gives 784 outputs \(4, 14, 14\) but sizes\[1\] is 700"):
        SNNConfig(sizes=(784, 700, 10), conv=((4, 5, 1, 2, 2),), input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\) of the network's 784 inputs"):
        SNNConfig(sizes=(784, 10), input_shape=(1, 27, 28))
    # a dense network's dictionary is what it was before conv layers existed (bundle provenance bytes)
    assert set(SNNConfig().to_dict()) == {"sizes", "T", "encoding", "reset", "readout", "weight_bits",
                                          "membrane_bits", "leak_shift", "out_leak_shift", "rate_seed", "theta",
                                          "surrogate_slope", "input_bits"}


def _image_data(n_train=96, n_val=24, n_test=32, side=8, classes=3) -> tr.Data:
    """Images whose class is where a bright square sits (a conv net learns it quickly)."""
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % classes
        x = rng.integers(0, 40, (n, side, side))
        for i, c in enumerate(y):
            r = 1 + 2 * c
            x[i, r:r + 2, 2:6] = 250
        return x.reshape(n, -1).astype(np.uint8), y

    return tr.Data("squares", *make(n_train), *make(n_val), *make(n_test))


def test_conv_student_trains_exports_and_reloads(tmp_path):
    data = _image_data()
    assert data.input_shape == (1, 8, 8)
    cfg = SNNConfig.from_arch("4C3-P2-3", data.input_shape, T=2)
    tc = TrainConfig(epochs=4, batch_size=16, lr=1e-2, seed=0, threads=1, quiet=True, augment=0)
    r = tr.train_model(cfg, tc, data, tmp_path / "c.scnb", log=lambda s: None)
    assert r["test_acc"] >= 0.9, r["test_acc"]   # chance is 1/3
    b = load_bundle(tmp_path / "c.scnb")
    assert [layer.kind for layer in b.network.layers] == ["conv", "dense"]
    assert float((infer(b.network, data.test_x).classes == data.test_y).mean()) == r["test_acc"]
    model, _ = load_checkpoint(tmp_path / "c.pt")
    assert model.cfg == cfg
    assert to_network(model) == b.network


@pytest.mark.parametrize("method", ["temporal", "self"])
def test_conv_student_distils(tmp_path, method):
    data = _image_data()
    tc = TrainConfig(epochs=2, batch_size=16, lr=1e-2, seed=0, threads=1, quiet=True, augment=0)
    teacher_path = None
    if method == "temporal":
        teacher_cfg = SNNConfig.from_arch("4C3-P2-3", data.input_shape, T=8)
        tr.train_model(teacher_cfg, tc, data, tmp_path / "t.scnb", log=lambda s: None)
        teacher_path = tmp_path / "t.pt"
    cfg = SNNConfig.from_arch("4C3-P2-3", data.input_shape, T=2)
    dtc = TrainConfig(epochs=2, batch_size=16, lr=1e-2, seed=0, threads=1, quiet=True, augment=0, method=method,
                      teacher_T=8 if method == "self" else None)
    r = tr.distill_model(cfg, dtc, data, teacher_path, tmp_path / "s.scnb", log=lambda s: None)
    b = load_bundle(tmp_path / "s.scnb")
    assert b.network.T == 2 and b.network.layers[0].kind == "conv"
    assert b.provenance["method"] == f"distill-{method}"
    assert float((infer(b.network, data.test_x).classes == data.test_y).mean()) == r["test_acc"]


def test_ann_teacher_of_any_conv_arch_trains_reloads_and_teaches(tmp_path):
    """train --ann --arch: a float CNN of any shape is a teacher (its checkpoint records the arch)."""
    data = _image_data()
    tc = TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=0, threads=1, quiet=True, augment=0)
    r = tr.train_ann(tc, data, tmp_path / "cnn.pt", log=lambda s: None, arch="6C3-P2-8C3S2-16-3")
    teacher, _ = load_checkpoint(tmp_path / "cnn.pt")
    assert teacher.cfg["arch"] == "6C3-P2-8C3S2-16-3" and teacher.cfg["input_shape"] == [1, 8, 8]
    kinds = [type(m).__name__ for m in teacher.net]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "Flatten", "Linear", "ReLU", "Linear"]
    assert teacher.net[3].stride == (2, 2)
    assert r["test_acc"] >= 0.9
    cfg = SNNConfig.from_arch("4C3-P2-3", data.input_shape, T=2)
    dtc = TrainConfig(epochs=2, batch_size=16, lr=1e-2, seed=0, threads=1, quiet=True, augment=0, method="average")
    out = tr.distill_model(cfg, dtc, data, tmp_path / "cnn.pt", tmp_path / "s.scnb", log=lambda s: None)
    assert load_bundle(tmp_path / "s.scnb").provenance["method"] == "distill-average"
    assert out["test_acc"] > 1 / 3


@pytest.mark.parametrize("arch, shape, kw, wscale, lim_bits, x_grad", [
    ("5C5-P2-4", (1, 12, 12), dict(), 1.0, None, False),                 # layer 1 on pixels: no input gradient
    ("3C3S2-5", (2, 11, 11), dict(), 3.0, None, True),                   # stride 2, kernels past ±wmax
    ("4C4P0-P3-6", (1, 9, 9), dict(), 1.0, 3, True),                     # even kernel, no padding, current clamp
    ("3C5-P2-4", (1, 10, 10), dict(weight_bits=16, membrane_bits=24), 3.0, 5, True),  # float64 path, both clamps
    # float64 membranes, no shift: currents past 2^24, which float32 would round
    ("3C5-P2-4", (1, 10, 10), dict(weight_bits=16, membrane_bits=30), 3.0, "shift 0", False),
])
def test_fused_conv_current_equals_the_autograd_path_bit_for_bit(arch, shape, kw, wscale, lim_bits, x_grad):
    """_QuantConv (the training path of a conv layer) against ConvQAT's plain-autograd path: the same currents
    and the same input and kernel gradients, ``torch.equal`` -- the fused node must not change what training
    computes (and so the bundles it writes)."""
    from sc_neurocore.train.model import QAT_LAYERS

    cfg = SNNConfig.from_arch(arch, shape, T=2, **kw)
    model = SpikingMLP(cfg, seed=3)
    with torch.no_grad():
        model.weights[0].mul_(wscale)
    d = model.design[0]
    if lim_bits == "shift 0":
        d = dataclasses.replace(d, shift=0)
        lim_bits = None
    lim = float(1 << (d.mbits if lim_bits is None else lim_bits))
    gen = torch.Generator().manual_seed(5)
    n_in = cfg.sizes[0]
    x0 = (torch.randint(0, 256, (6, n_in), generator=gen) if not x_grad
          else torch.randint(0, 5, (6, n_in), generator=gen)).to(torch.float32)
    res = []
    for fast in (True, False):
        model.zero_grad(set_to_none=True)
        x = x0.clone().requires_grad_(x_grad)
        cur = QAT_LAYERS(d).current(model, 0, d, lim, model._state_dtype(0), fast)(x, d.exact64)
        g = torch.randn(cur.shape, generator=torch.Generator().manual_seed(7))
        cur.backward(g)
        res.append((cur.detach(), model.weights[0].grad.clone(), x.grad))
    (cf, wf, xf), (cr, wr, xr) = res
    assert torch.equal(cf, cr)
    assert torch.equal(wf, wr) and float(wr.abs().sum()) > 0
    if x_grad:
        assert torch.equal(xf, xr) and float(xr.abs().sum()) > 0
    else:
        assert xf is None and xr is None
    q = model.int_weight(0).detach()
    if wscale > 1:
        assert float(q.abs().max()) == cfg.weight_format.max        # the kernel clamp was active
    if lim_bits is not None:
        assert float(cr.abs().max()) == lim                          # the current clamp was active
    if d.mbits > 24:
        assert cr.dtype == torch.float64 and bool((cr.abs() > (1 << 24)).any())
        assert bool((cr.remainder(2) == 1).any())                    # odd values: not representable in float32
