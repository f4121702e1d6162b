"""Tests of sc_neurocore.train.kernels: the fused training kernels (_QuantDense, _LIFLayer) against the plain-autograd reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tolerance import rel_tol

from sc_neurocore import train as tr
from sc_neurocore.data import load_mnist
from sc_neurocore.train import SNNConfig
from test_train import _scaled_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


GRAD_CASES = [  # (encoding, reset, readout, membrane_bits, out_leak_shift, gain, output shift) and the paths taken
    ("direct", "subtract", "membrane", 16, 0, 1.0, None, {"spk const", "spk seq", "readout = currents"}),
    ("direct", "subtract", "membrane", 10, 0, 3.0, None, {"spk const sat", "spk seq sat", "readout = currents"}),
    ("direct", "zero", "spike_count", 10, 0, 3.0, None, {"spk const sat zero", "spk seq sat zero"}),
    ("rate", "subtract", "membrane", 16, 2, 1.0, None, {"spk seq", "out seq"}),
    ("rate", "zero", "membrane", 9, 0, 8.0, 0, {"spk seq sat zero", "out seq sat"}),
]


@pytest.mark.parametrize("tables", [True, False], ids=["tables", "no-tables"])
@pytest.mark.parametrize("encoding,reset,readout,mbits,out_leak,gain,out_shift,paths", GRAD_CASES)
def test_fast_forward_and_gradients_equal_plain_autograd(mnist, monkeypatch, encoding, reset, readout, mbits,
                                                         out_leak, gain, out_shift, paths, tables):
    """The fused training path (_QuantDense, _LIFLayer, _LIFTable) against the plain-autograd reference loop;
    ``no-tables``: constant currents through the recurrence (_LIFLayer) as well, as for tables too large."""
    from sc_neurocore import train as tr

    cfg = SNNConfig(sizes=(784, 48, 24, 10), T=6, encoding=encoding, reset=reset, readout=readout, leak_shift=3,
                    membrane_bits=mbits, out_leak_shift=out_leak)
    x = torch.as_tensor(mnist.test_x[:96])
    y = torch.as_tensor(mnist.test_y[:96])
    seen = set()
    backward = tr.kernels._LIFLayer.backward
    table_backward = tr.kernels._LIFTable.backward
    monkeypatch.setattr(tr.kernels, "_TABLES", {})  # built in this test, not by an earlier one
    if not tables:
        monkeypatch.setattr(tr.kernels, "_TABLE_ENTRIES", 0)
    building = []
    real_table = tr.kernels.lif_table

    def table_spy(*args):  # the table's own evaluation of the recurrence is not a path the model takes
        building.append(1)
        try:
            return real_table(*args)
        finally:
            building.pop()

    def spy_table(ctx, g):
        seen.add("spk const table")
        return table_backward(ctx, g)

    monkeypatch.setattr(tr.model, "lif_table", table_spy)
    monkeypatch.setattr(tr.kernels._LIFTable, "backward", staticmethod(spy_table))

    def spy(ctx, g):  # which branch of the hand-written backward runs
        if building:
            return backward(ctx, g)
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
    if tables:  # every spiking layer with a constant current is looked up
        paths = {"spk const table" if p.startswith("spk const") else p for p in paths}
    assert seen == paths


@pytest.mark.parametrize("cols", [1, 10, 15, 16, 40])
def test_narrow_products_run_transposed_with_the_same_integers(cols, monkeypatch):
    """kernels._mm: ``a @ b`` (transposed below 16 columns) equals an int64 product exactly on integer
    operands in float32, and hands on a contiguous result; the transposed form is the one taken."""
    from sc_neurocore.train import kernels

    gen = torch.Generator().manual_seed(cols)
    a = torch.randint(0, 2, (37, 129), generator=gen).float()
    b = torch.randint(-127, 128, (129, cols), generator=gen).float()
    want = (a.to(torch.int64) @ b.to(torch.int64)).float()
    taken = []
    real_t = torch.Tensor.t
    monkeypatch.setattr(torch.Tensor, "t", lambda self: (taken.append(self.shape), real_t(self))[1])
    out = kernels._mm(a, b)
    monkeypatch.undo()
    assert torch.equal(out, want)
    assert out.is_contiguous() and out.shape == (37, cols)
    assert bool(taken) == (cols < kernels._NARROW)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_sum_pool_equals_the_window_sums_and_their_gradient(q):
    """_SumPool (the conv layers' pooling in training): forward the window sums of 0/1 spikes, backward every
    position gets its window's gradient -- compared with a reshape-and-sum written with plain autograd."""
    from sc_neurocore.train.kernels import _SumPool

    gen = torch.Generator().manual_seed(q)
    z = (torch.rand(3, 2, 6 * q // 2 * 2, 4 * q, generator=gen) < 0.3).float()
    g = torch.randn(3, 2, z.shape[2] // q, z.shape[3] // q, generator=gen)
    a = z.clone().requires_grad_()
    out = _SumPool.apply(a, q)
    out.backward(g)
    b = z.clone().requires_grad_()
    n, c, h, w = z.shape
    ref = b.reshape(n, c, h // q, q, w // q, q).sum((3, 5))
    ref.backward(g)
    assert torch.equal(out, ref)
    assert q == 1 or out.max() > 1  # windows that hold several spikes
    assert torch.equal(a.grad, b.grad)
    assert torch.equal(a.grad[:, :, :q, :q], g[:, :, :1, :1].expand(n, c, q, q))  # one window, by hand


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("peak,shortcut", [(31, True), (32, False)])
def test_lif_skips_the_clamp_only_when_no_step_can_saturate(monkeypatch, reset, peak, shortcut):
    """_LIFLayer with a constant current leaves out the clamp when T * max|I| fits the membrane (here T=4, an 8-bit
    membrane: 4 * 31 = 124 <= 127 does, 4 * 32 = 128 does not): spikes equal to the plain-autograd loop in both
    cases, gradients within float32 rounding, and the search for clamped values skipped exactly when it fits."""
    from types import SimpleNamespace

    from sc_neurocore.train import kernels

    gen = torch.Generator().manual_seed(peak)
    cur = torch.randint(-peak, peak + 1, (64, 40), generator=gen).float()
    cur[0, 0], cur[1, 1] = peak, -peak
    g = torch.randn(4, 64, 40, generator=gen)
    searched = []
    real = kernels._saturates
    monkeypatch.setattr(kernels, "_saturates", lambda *a: searched.append(1) or real(*a))
    a = cur.clone().requires_grad_()
    out = kernels._LIFLayer.apply(a, 4, True, 20.0, 2, -128.0, 127.0, True, reset == "subtract", 5.0)
    out.backward(g)
    fake = SimpleNamespace(cfg=SimpleNamespace(reset=reset, surrogate_slope=5.0))
    b = cur.clone().requires_grad_()
    ref = tr.SpikingMLP._lif_reference(fake, b, 4, True, SimpleNamespace(leak=2, theta=20), True, -128.0, 127.0)
    ref.backward(g)
    assert torch.equal(out, ref) and out.sum() > 0
    assert torch.allclose(a.grad, b.grad, rtol=0, atol=rel_tol(np.float32, 4 * 4) * float(b.grad.abs().max()))
    assert bool(searched) != shortcut


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("T", [1, 4, 7])
def test_lif_table_equals_the_recurrence_for_every_constant_current(monkeypatch, reset, T):
    """_LIFTable (a constant current looked up in lif_table) against the plain-autograd loop, on every current of
    the clamp range of an 8-bit membrane (|I| <= 2^8: saturating high and low, never firing, firing every step)
    plus random ones: the same spikes bit for bit, gradients within float32 rounding of T-term sums."""
    from types import SimpleNamespace

    from sc_neurocore.train import kernels

    monkeypatch.setattr(kernels, "_TABLES", {})
    lim = 256.0
    gen = torch.Generator().manual_seed(T)
    every = torch.arange(-256, 257, dtype=torch.float32)
    cur = torch.cat([every, torch.randint(-256, 257, (64 * 40 - len(every),), generator=gen).float()]).reshape(64, 40)
    g = torch.randn(T, 64, 40, generator=gen)
    Z, K = kernels.lif_table(T, 20.0, 2, -128.0, 127.0, reset == "subtract", 5.0, lim, torch.float32,
                             torch.device("cpu"))
    assert Z.shape == K.shape == (T, 513)
    a = cur.clone().requires_grad_()
    out = kernels._LIFTable.apply(a, Z, K, lim)
    out.backward(g)
    fake = SimpleNamespace(cfg=SimpleNamespace(reset=reset, surrogate_slope=5.0))
    b = cur.clone().requires_grad_()
    ref = tr.SpikingMLP._lif_reference(fake, b, T, True, SimpleNamespace(leak=2, theta=20), True, -128.0, 127.0)
    ref.backward(g)
    assert torch.equal(out, ref)
    assert 0 < float(out.detach().mean()) < 1
    assert torch.count_nonzero(b.grad) > 0 and torch.count_nonzero(b.grad == 0) > 0  # clamped currents get none
    assert torch.allclose(a.grad, b.grad, rtol=0, atol=rel_tol(np.float32, 4 * T) * float(b.grad.abs().max()))


def test_lif_table_only_up_to_its_size(monkeypatch):
    """lif_table builds tables of at most _TABLE_ENTRIES entries (T x (2 lim + 1)) and returns None beyond, so
    the model runs the recurrence instead (the no-tables cases above); a table is built once per configuration."""
    from sc_neurocore.train import kernels

    monkeypatch.setattr(kernels, "_TABLES", {})
    monkeypatch.setattr(kernels, "_TABLE_ENTRIES", 4 * 513)
    args = (20.0, 2, -128.0, 127.0, True, 5.0, 256.0, torch.float32, torch.device("cpu"))
    first = kernels.lif_table(4, *args)
    assert first is not None and kernels.lif_table(4, *args) is first
    assert kernels.lif_table(5, *args) is None
    assert len(kernels._TABLES) == 1
