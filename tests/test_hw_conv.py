"""The conv layer's gateware (hw/conv.py) in Amaranth simulation: bit-exact against the golden model
(``np.array_equal`` of classes and every score) and, with a free-flowing stream, every image's cycles equal to
the latency model; plus the component's parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.golden import infer
from sc_neurocore.hw.config import CoreConfig, CoreGeometry
from sc_neurocore.hw.conv import ConvLayer, div_const
from sc_neurocore.hw.latency import image_cycles, worst_case_cycles
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.hw.testbench import simulate
from sc_neurocore.params import ConvParams, LayerParams, NetworkParams


def _w(rng, shape, bits, extreme=False):
    top = (1 << (bits - 1)) - 1
    return rng.choice([-top, top], size=shape) if extreme else rng.integers(-top, top + 1, size=shape)


def _images(n_in, count, seed, top=255):
    """All-zero, all-max, then random sparse images."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, top + 1, (count, n_in)) * (rng.random((count, n_in)) < 0.5)
    x[0], x[1] = 0, top
    return x.astype(np.int64)


def _check(net, x, config, *, timing=True, **kw):
    r = simulate(net, x, config, **kw)
    g = infer(net, x)
    assert np.array_equal(r.scores, g.scores), (r.scores, g.scores)
    assert np.array_equal(r.classes, g.classes)
    if timing:
        assert np.array_equal(r.cycles, image_cycles(net, config, x)), (r.cycles, image_cycles(net, config, x))
        assert r.cycles.max() <= worst_case_cycles(net, config)
    return r


def two_conv(seed=0, T=3, encoding="direct", reset="subtract", readout="membrane", mb=12, extreme=False):
    """(1, 6, 6) -> 3C3 padding 1, pool 2 -> 2C2 padding 1 (an odd 4x4 output, no pool) -> dense 4."""
    rng = np.random.default_rng(seed)
    c1 = ConvParams(_w(rng, (3, 1, 3, 3), 8, extreme), (1, 6, 6), 8, min(100, (1 << (mb - 1)) - 1), 2, 2, mb,
                    padding=1, pool=2)
    c2 = ConvParams(_w(rng, (2, 3, 2, 2), 4, extreme), c1.out_shape, 4, 3, 1, 0, 10, padding=1)
    out = LayerParams(_w(rng, (c2.n_out, 4), 4), 4, 5, 0, 0, 12)
    return NetworkParams((c1, c2, out), T, encoding, reset, readout)


@pytest.mark.parametrize("encoding, reset, readout", [("direct", "subtract", "membrane"),
                                                      ("rate", "zero", "spike_count"),
                                                      ("direct", "zero", "spike_count"),
                                                      ("rate", "subtract", "membrane")])
def test_two_conv_layers_exact(encoding, reset, readout):
    net = two_conv(1, 3, encoding, reset, readout)
    r = _check(net, _images(36, 5, 2), CoreConfig(pixels_per_beat=4))
    assert infer(net, _images(36, 5, 2)).spike_counts[1].sum() > 0   # the second conv layer fires


def test_stride_2_no_padding_pool_3_and_three_lanes_per_beat():
    rng = np.random.default_rng(3)
    c1 = ConvParams(_w(rng, (2, 1, 3, 3), 6), (1, 13, 13), 6, 40, 1, 1, 10, stride=2, padding=0, pool=3)
    assert c1.conv_shape == (2, 6, 6) and c1.out_shape == (2, 2, 2)
    out = LayerParams(_w(rng, (8, 3), 8), 8, 30, 0, 0, 12)
    net = NetworkParams((c1, out), 2, "direct", "zero", "spike_count")
    _check(net, _images(169, 4, 4), CoreConfig(pixels_per_beat=3, events=(3, 1)))


def test_event_input_into_a_conv_layer():
    rng = np.random.default_rng(5)
    c1 = ConvParams(_w(rng, (3, 2, 3, 3), 8), (2, 4, 4), 8, 20, 1, 0, 10, padding=1, pool=2)
    out = LayerParams(_w(rng, (c1.n_out, 3), 6), 6, 4, 0, 0, 12)
    net = NetworkParams((c1, out), 3, "events", "subtract", "membrane", input_bits=2)
    x = rng.integers(0, 4, (4, 3, 32)) * (rng.random((4, 3, 32)) < 0.4)
    x[0], x[1] = 0, 3
    _check(net, x, CoreConfig(pixels_per_beat=4))


def test_a_conv_layer_fed_by_a_dense_layer():
    """The spec allows a conv layer after a dense one: the spike scanner feeds it (chunks of spikes)."""
    rng = np.random.default_rng(6)
    d1 = LayerParams(_w(rng, (16, 18), 8), 8, 150, 1, 0, 12)
    c2 = ConvParams(_w(rng, (2, 2, 2, 2), 6), (2, 3, 3), 6, 2, 1, 0, 10, padding=1, pool=2)
    out = LayerParams(_w(rng, (c2.n_out, 3), 6), 6, 2, 0, 0, 12)
    net = NetworkParams((d1, c2, out), 3, "direct", "subtract", "spike_count")
    _check(net, _images(16, 5, 7), CoreConfig(pixels_per_beat=4, events=(2, 3, 1)))
    assert infer(net, _images(16, 5, 7)).spike_counts[1].sum() > 0


def test_power_of_two_sides_and_taps_past_the_last_row():
    """4x4 and 4x8 inputs: a tap of the last input row with padding reaches row H_o (outside); the width of
    that row index once truncated it onto row 0 (found by this test)."""
    rng = np.random.default_rng(5)
    for shape, q in [((1, 4, 4), 1), ((1, 4, 8), 2), ((2, 4, 4), 2)]:
        c1 = ConvParams(_w(rng, (2, shape[0], 3, 3), 8), shape, 8, 20, 1, 0, 10, padding=1, pool=q)
        out = LayerParams(np.eye(c1.n_out, dtype=np.int64), 2, 1, 0, 0, 12)   # the scores are the pooled counts
        _check(NetworkParams((c1, out), 1, "direct", "subtract", "membrane"), _images(c1.n_in, 3, 1),
               CoreConfig(pixels_per_beat=4))


def test_saturation_T1_and_T16():
    net = two_conv(8, 1, mb=6, extreme=True)
    _check(net, _images(36, 4, 9), CoreConfig(pixels_per_beat=8))
    net = two_conv(9, 16, "rate", readout="spike_count", mb=6, extreme=True)
    _check(net, _images(36, 3, 10), CoreConfig(pixels_per_beat=4))


def test_gaps_backpressure_and_reset_mid_inference():
    net = two_conv(11, 2, readout="spike_count")
    x = _images(36, 4, 12)
    _check(net, x, CoreConfig(pixels_per_beat=4), timing=False, traffic=Traffic(gaps=0.3, backpressure=0.5, seed=5))
    # The reset lands in the middle of the first image's updates; the stream restarts and both results are
    # exact, with exact timing: the written-bits registers clear the block-RAM state with the reset.
    _check(net, x[:2], CoreConfig(pixels_per_beat=4), reset_after=150)


@pytest.mark.parametrize("value_max, divisor", [(3135, 784), (783, 28), (195, 14), (4095, 3), (100, 7), (63, 8)])
def test_div_const_is_exact_over_its_range(value_max, divisor):
    v = np.arange(value_max + 1)
    assert np.array_equal(np.array([int(div_const(int(a), divisor, value_max)) for a in v]), v // divisor)


def _conv_geometry(net):
    return CoreGeometry(net, CoreConfig(pixels_per_beat=4)).layers[0]


@pytest.mark.parametrize("kw, message", [
    (dict(spiking=False), r"a conv layer is never the output layer"),
    (dict(weight_port=True), r"the run-time weight port does not support conv layers yet"),
    (dict(reset="hold"), r"reset must be 'subtract' or 'zero', not 'hold'"),
])
def test_conv_component_checks_its_parameters(kw, message, rejected_components):
    net = two_conv()
    args = dict(reset="subtract", spiking=True)
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        ConvLayer(net.layers[0], _conv_geometry(net), **args)


def test_conv_component_refuses_other_strides_and_kinds(rejected_components):
    rng = np.random.default_rng(0)
    c = ConvParams(_w(rng, (1, 1, 3, 3), 8), (1, 10, 10), 8, 5, 1, stride=3)
    net = NetworkParams((c, LayerParams(_w(rng, (c.n_out, 2), 8), 8, 5, 0)), 2)
    with pytest.raises(ValueError, match=r"the gateware needs a power-of-two stride, not 3"):
        ConvLayer(c, _conv_geometry(net), reset="subtract")
    with pytest.raises(TypeError, match=r"layer must be a ConvParams"):
        ConvLayer(net.layers[1], _conv_geometry(net), reset="subtract")
    with pytest.raises(ValueError, match=r"the run-time weight port does not support conv layers yet"):
        CoreGeometry(net, CoreConfig(weight_port=True))
    with pytest.raises(ValueError, match=r"events\[1\] must be 1 \(the layer after a conv layer takes one event"):
        CoreGeometry(net, CoreConfig(events=(2, 4)))


def _random_conv_net(seed: int) -> NetworkParams:
    """A drawn geometry: odd and even (power-of-two) sides, stride 1 or 2, padding 0 or K//2, pooling 1-3,
    one or two conv layers, any encoding, then a dense output."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 3)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    layers, encoding = [], ["direct", "rate", "events"][seed % 3]
    for _ in range(int(rng.integers(1, 3))):
        c, h, w = shape
        k = int(rng.integers(1, min(4, h, w) + 1))
        s = int(rng.choice([1, 2]))
        p = int(rng.choice(sorted({0, k // 2})))
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        q = int(rng.choice([q for q in (1, 2, 3) if ho % q == 0 and wo % q == 0]))
        mb = int(rng.integers(6, 14))
        layer = ConvParams(_w(rng, (int(rng.integers(1, 4)), c, k, k), 6), shape, 6,
                           int(rng.integers(1, min(60, (1 << (mb - 1)) - 1))), int(rng.integers(0, 3)),
                           int(rng.integers(0, 3)), mb, stride=s, padding=p, pool=q)
        layers.append(layer)
        shape = layer.out_shape
    layers.append(LayerParams(_w(rng, (layers[-1].n_out, 3), 5), 5, 3, 0, 0, 12))
    return NetworkParams(tuple(layers), int(rng.integers(1, 4)), encoding, ["subtract", "zero"][seed % 2],
                         ["membrane", "spike_count"][(seed // 2) % 2], input_bits=2 if encoding == "events" else 8)


@pytest.mark.parametrize("seed", range(24))
def test_random_conv_geometries_exact(seed):
    net = _random_conv_net(seed)
    n = net.sizes[0]
    if net.encoding == "events":
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 4, (3, net.T, n)) * (rng.random((3, net.T, n)) < 0.5)
        x[0], x[1] = 0, 3
    else:
        x = _images(n, 3, seed)
    _check(net, x, CoreConfig(pixels_per_beat=4))


@pytest.mark.parametrize("seed", [None, 2, 5])
def test_exported_conv_verilog_every_comb_block_runs_at_time0(tmp_path, seed):
    """Icarus (-g2012) never runs an ``always @*`` block whose inputs do not change after time 0: the conv
    sequencer's state outputs were such blocks (found on an MNIST-sized conv core; logic._select)."""
    from test_hw_sim import comb_blocks_not_run_at_time0

    from sc_neurocore.bundle import Bundle
    from sc_neurocore.hw.export import generate_verilog

    net = two_conv(1, 3) if seed is None else _random_conv_net(seed)
    generate_verilog(Bundle(net, {}), tmp_path, pixels_per_beat=4)
    src = (tmp_path / "sc_neurocore_top.v").read_text()
    assert comb_blocks_not_run_at_time0(src, "sc_neurocore_top") == []


def test_conv_dsp_limit_is_exact():
    """A conv layer's channel products beyond ``dsp_limit`` are shift-and-add: same scores, same cycles."""
    net = two_conv(3, 2, extreme=True)
    cfg = CoreConfig(pixels_per_beat=4, dsp_limit=1)
    assert cfg.geometry(net).layers[0].lut_products == 2          # 3 channels, 1 DSP
    _check(net, _images(36, 4, 5), cfg)
