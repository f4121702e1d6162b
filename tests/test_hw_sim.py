"""Amaranth simulation of the LIF core against the golden model and the latency model.

Every test here is bit-exact (``np.array_equal`` on integers) against
:func:`sc_neurocore.golden.infer`, and every run with a free-flowing stream
checks the measured cycles against :func:`sc_neurocore.latency.image_cycles`
with ``==``.  Networks are tiny (Amaranth's simulator is slow) except one
784-128-10 run.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.hw.testbench import simulate
from sc_neurocore.latency import image_cycles, worst_case_cycles
from sc_neurocore.params import LayerParams, NetworkParams


def _images(n_in: int, count: int, seed: int, density: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, n_in)) * (rng.random((count, n_in)) < density)
    return x.astype(np.int64)


def _check(net: NetworkParams, images, config: CoreConfig, *, timing: bool = True, **kw):
    r = simulate(net, images, config, **kw)
    g = infer(net, images)
    assert np.array_equal(r.scores, g.scores), (r.scores, g.scores)
    assert np.array_equal(r.classes, g.classes)
    if timing:
        assert np.array_equal(r.cycles, image_cycles(net, config, images)), r.cycles
        assert r.cycles.max() <= worst_case_cycles(net, config)
    return r


# encoding x reset x readout, each with a different lane / bank / beat shape.
_SHAPES = [
    CoreConfig(lanes=3, pixels_per_beat=4),
    CoreConfig(pixels_per_beat=3, events=(1, 3)),
    CoreConfig(lanes=(8, 2), events=(2, 1), pixels_per_beat=2),
    CoreConfig(lanes=1, pixels_per_beat=8, events=(4, 8)),
]


@pytest.mark.parametrize("case", list(itertools.product(["direct", "rate"], ["subtract", "zero"],
                                                        ["spike_count", "membrane"])),
                         ids=lambda c: "-".join(c))
def test_every_option_exact(case):
    encoding, reset, readout = case
    i = (["direct", "rate"].index(encoding) * 4 + ["subtract", "zero"].index(reset) * 2
         + ["spike_count", "membrane"].index(readout))
    net = random_bundle((16, 8, 4), T=3, seed=i, encoding=encoding, reset=reset, readout=readout,
                        membrane_bits=10, leak_shift=i % 3).network
    x = _images(16, 3, seed=i)
    x[0] = 0
    _check(net, x, _SHAPES[i % len(_SHAPES)])


def test_gaps_and_backpressure_exact():
    net = random_bundle((16, 8, 4), T=2, seed=11, readout="spike_count").network
    x = _images(16, 4, seed=3)
    # Gaps change the timing, so only the values are compared here.
    _check(net, x, CoreConfig(lanes=4, pixels_per_beat=4), timing=False, in_gap=0.3, out_stall=0.5, seed=5)
    net = random_bundle((16, 8, 4), T=2, seed=12, encoding="rate").network
    _check(net, x, CoreConfig(lanes=4, pixels_per_beat=4), timing=False, in_gap=0.4, out_stall=0.4, seed=6)


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_reset_mid_inference(encoding):
    net = random_bundle((16, 8, 4), T=3, seed=13, encoding=encoding).network
    x = _images(16, 2, seed=4)
    # The reset lands in the middle of the first image; the stream restarts
    # from the first image and both results must be exact, with exact timing.
    _check(net, x, CoreConfig(lanes=4, pixels_per_beat=4), reset_after=9)


def test_extreme_inputs_and_saturation():
    # Weights at the top of their range, a 6-bit membrane and no current
    # shift: every integrate step saturates, in both directions.
    rng = np.random.default_rng(0)
    w1 = rng.choice([-127, 127], size=(10, 6))
    w2 = rng.choice([-1, 1], size=(6, 3)) * 1
    net = NetworkParams((LayerParams(w1, 8, threshold=30, leak_shift=1, current_shift=0, membrane_bits=6),
                         LayerParams(w2, 2, threshold=1, leak_shift=0, current_shift=0, membrane_bits=4)),
                        T=4, readout="membrane")
    x = np.stack([np.zeros(10), np.full(10, 255), _images(10, 1, 7)[0]]).astype(np.int64)
    _check(net, x, CoreConfig(lanes=(2, 3), pixels_per_beat=4, events=(2, 2)))
    net = NetworkParams(net.layers, T=4, readout="spike_count", reset="zero", encoding="rate")
    _check(net, x, CoreConfig(pixels_per_beat=5))


def test_T1_and_T16():
    net = random_bundle((12, 6, 3), T=1, seed=21, readout="spike_count").network
    x = _images(12, 2, 8)
    _check(net, x, CoreConfig(pixels_per_beat=4))
    net = random_bundle((12, 6, 3), T=16, seed=22, readout="spike_count").network
    _check(net, x, CoreConfig(lanes=2, pixels_per_beat=4))


def test_three_layers_and_single_neuron_layers():
    net = random_bundle((13, 8, 6, 3), T=3, seed=31, readout="spike_count").network
    x = _images(13, 3, 9)
    _check(net, x, CoreConfig(lanes=(2, 4, 1), pixels_per_beat=5, events=(5, 2, 3)))
    net = random_bundle((5, 1, 1), T=2, seed=32, encoding="rate").network
    _check(net, _images(5, 2, 10, density=1.0), CoreConfig(pixels_per_beat=1))


def test_back_to_back_images_have_model_latency():
    net = random_bundle((16, 8, 4), T=2, seed=41).network
    x = _images(16, 6, 11, density=0.3)
    r = _check(net, x, CoreConfig(lanes=8, pixels_per_beat=8))
    # Streaming: the next image's first beat is accepted the cycle after the
    # previous output beat is loaded, so the total is the sum plus one per image.
    assert r.total_cycles >= int(r.cycles.sum())


def test_mnist_size_core_one_image():
    from sc_neurocore.data import DataError, load_mnist

    b = random_bundle()   # 784-128-10, T=4, direct, membrane readout
    try:
        x = load_mnist().test_x[:1]
    except DataError:
        x = _images(784, 1, 12, density=0.2)
    r = _check(b.network, x, CoreConfig())
    assert r.cycles[0] <= 300


def test_pretrained_mnist_bundle_if_present():
    from sc_neurocore.bundle import pretrained_names, resolve_bundle

    if "mnist-t4" not in pretrained_names():
        pytest.skip("sc_neurocore/pretrained/mnist-t4.scnb is not trained yet")
    from sc_neurocore.data import DataError, load_mnist

    try:
        x = load_mnist().test_x[:2]
    except DataError as e:
        pytest.skip(f"MNIST not available: {e}")
    _check(resolve_bundle(pretrained="mnist-t4").network, x, CoreConfig())
