"""``CoreConfig.double_buffer``: the next image streams into layer 1 while the current one computes.

Amaranth simulation of back-to-back images against the golden model (``np.array_equal``) and against the
stream model of :mod:`sc_neurocore.hw.latency` (``stream_cycles``: every image's cycles, and the cycle the
last result comes out), on corner cases: all-zero and all-max images, saturating extreme weights, one and
several neuron groups, a wide adder tree, T=1 and T=16, gaps, back-pressure and a reset mid-stream. The
cocotb runs of the same option on Icarus and Verilator are cases of ``tests/test_sim_core.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.hw.config import CoreConfig, Timing
from sc_neurocore.hw.latency import _overlap, image_cycles, latency_summary, stream_cycles, worst_case_cycles
from sc_neurocore.hw.resources import features
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.hw.testbench import simulate
from sc_neurocore.params import LayerParams, NetworkParams


def _images(n_in: int, count: int, seed: int, density: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, n_in)) * (rng.random((count, n_in)) < density)
    x[1] = 0          # all-zero: no layer-1 event at all, the shortest input pass
    x[2] = 255        # all-max: every chunk busy, the longest
    return x.astype(np.int64)


def _extreme(net: NetworkParams) -> NetworkParams:
    """Layer 1's weights at +-127 and a 10-bit membrane: the currents saturate it."""
    rng = np.random.default_rng(1)
    l0 = net.layers[0]
    w = np.where(rng.random(l0.weight.shape) < 0.5, -127, 127)
    return NetworkParams((LayerParams(w, 8, min(l0.threshold, 300), l0.leak_shift, l0.current_shift, 10),)
                         + net.layers[1:],
                         net.T, readout=net.readout)


def _saturates(net, x) -> bool:
    """Whether some layer-1 current alone is past the membrane's range (so the clamp acts)."""
    l0 = net.layers[0]
    current = (x @ l0.weight) >> l0.current_shift
    return bool(np.abs(current).max() > l0.membrane_format.max)


def _stream_check(net, x, cfg, **kw):
    r = simulate(net, x, cfg, **kw)
    g = infer(net, x)
    assert np.array_equal(r.scores, g.scores), (r.scores, g.scores)
    assert np.array_equal(r.classes, g.classes)
    return r


CASES = {
    # one group per layer (every neuron its own lane)
    "one-group": ((12, 20, 4), 3, "spike_count", dict(lanes=(20, 4), events=(4, 4), pixels_per_beat=4)),
    # several groups and a lane padding the last group of layer 1 (10 neurons over 3 lanes)
    "padded-groups": ((20, 10, 5), 3, "membrane", dict(lanes=(3, 5), events=(2, 1), pixels_per_beat=4)),
    # 16 events per cycle into layer 2: the registered adder tree
    "wide-tree": ((12, 20, 4), 3, "spike_count", dict(lanes=(5, 2), events=(4, 16), pixels_per_beat=4)),
    "T1": ((16, 8, 3), 1, "spike_count", dict(lanes=4, pixels_per_beat=8)),
    "T16": ((16, 8, 3), 16, "membrane", dict(lanes=(2, 3), pixels_per_beat=2)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_back_to_back_images_are_exact_and_follow_the_stream_model(name):
    sizes, T, readout, gen = CASES[name]
    net = _extreme(random_bundle(sizes, T, seed=len(name), readout=readout).network)
    x = _images(sizes[0], 10, seed=len(name))
    assert _saturates(net, x)
    cfg = CoreConfig(**gen, double_buffer=True)
    r = _stream_check(net, x, cfg)
    lat, done = stream_cycles(net, cfg, x)
    assert np.array_equal(r.cycles, lat), (r.cycles, lat)
    assert r.total_cycles == done[-1] + 1      # the bench stops in the cycle after the last result
    # and it is faster than the same core without the option, which the same model times too
    single = simulate(net, x, CoreConfig(**gen))
    assert np.array_equal(single.cycles, image_cycles(net, CoreConfig(**gen), x))
    assert single.total_cycles == int(single.cycles.sum()) + 1
    assert r.total_cycles < single.total_cycles


def test_an_image_that_finds_the_core_idle_takes_one_cycle_more():
    """Phase LOAD (Timing.LOAD = 1) is the only cycle an image alone pays for the option."""
    net = random_bundle((20, 10, 5), 3, seed=3).network
    gen = dict(lanes=(3, 5), events=(2, 1), pixels_per_beat=4)
    assert Timing.LOAD == 1
    for x in _images(20, 4, seed=4):
        r = _stream_check(net, x[None], CoreConfig(**gen, double_buffer=True))
        assert r.cycles[0] == image_cycles(net, CoreConfig(**gen), x[None])[0] + 1
        assert r.cycles[0] == image_cycles(net, CoreConfig(**gen, double_buffer=True), x[None])[0]
    assert worst_case_cycles(net, CoreConfig(**gen, double_buffer=True)) == worst_case_cycles(net, CoreConfig(**gen)) + 1


def test_the_stream_model_by_hand():
    # passes 5, computes 10 / 2 / 10: image 1 waits for image 0's result (compute-bound), image 2 for
    # its own beats (input-bound, the cycle after image 1 started plus its pass)
    first, done = _overlap(np.array([5, 5, 5]), np.array([10, 2, 10]))
    assert first.tolist() == [0, 6, 16] and done.tolist() == [15, 17, 31]


def test_without_the_option_the_stream_is_the_sum_of_the_images():
    net = random_bundle((16, 8, 4), 2, seed=41).network
    x = _images(16, 6, seed=11, density=0.3)
    cfg = CoreConfig(lanes=8, pixels_per_beat=8)
    lat, done = stream_cycles(net, cfg, x)
    single = image_cycles(net, cfg, x)
    assert np.array_equal(lat, single) and np.array_equal(done, np.cumsum(single))
    s = latency_summary(net, cfg, x)
    assert s["stream_cycles_per_image"] == pytest.approx(s["mean_cycles"], rel=1e-12)


def test_the_summary_reports_the_simulated_stream():
    net = random_bundle((20, 10, 5), 3, seed=5).network
    x = _images(20, 12, seed=6)
    cfg = CoreConfig(lanes=(3, 5), events=(2, 1), pixels_per_beat=4, double_buffer=True)
    r = _stream_check(net, x, cfg)
    s = latency_summary(net, cfg, x, batch=5)     # chunks of 5: the stream runs on across them
    assert s["stream_cycles_per_image"] * len(x) == r.total_cycles - 1
    assert s["mean_cycles"] == pytest.approx(image_cycles(net, CoreConfig(lanes=(3, 5), events=(2, 1),
                                                                       pixels_per_beat=4), x).mean() + 1)


def test_gaps_backpressure_and_a_reset_mid_stream_stay_exact():
    net = _extreme(random_bundle((18, 10, 4), 3, seed=8, readout="membrane").network)
    x = _images(18, 8, seed=9)
    cfg = CoreConfig(lanes=(4, 4), events=(2, 2), pixels_per_beat=4, double_buffer=True)
    _stream_check(net, x, cfg, traffic=Traffic(gaps=0.3, max_gap=6, backpressure=0.5, seed=2))
    # A reset while the second image is being staged behind the first: the stream restarts from an idle
    # core, so the cycles follow the stream model again.
    lat, _ = stream_cycles(net, cfg, x)
    r = _stream_check(net, x, cfg, reset_after=int(lat[0]) - 3)
    assert np.array_equal(r.cycles, lat)


def test_the_staging_accumulators_are_in_the_resource_model():
    net = random_bundle((20, 10, 5), 3, seed=3).network
    cfg = dict(lanes=(3, 5), events=(2, 1), pixels_per_beat=4)
    a = features(CoreConfig(**cfg).geometry(net), "ecp5")
    b = features(CoreConfig(**cfg, double_buffer=True).geometry(net), "ecp5")
    width = net.layers[0].accumulator_format(255).width
    assert b["regfile_bits"] - a["regfile_bits"] == 10 * width
    assert {k for k in a if a[k] != b[k]} == {"regfile_bits"}


@pytest.mark.parametrize("build, message", [
    (lambda: CoreConfig(double_buffer=1), "double_buffer must be a bool, not 1"),
    (lambda: CoreConfig(double_buffer=True).geometry(random_bundle((8, 4, 2), 2, encoding="rate").network),
     "double_buffer needs direct pixel input (the current of layer 1 is then one weighted sum per image), "
     "not 'rate' input"),
    (lambda: CoreConfig(double_buffer=True).geometry(
        random_bundle((8, 4, 2), 2, encoding="events", input_bits=1).network),
     "not 'events' input"),
])
def test_double_buffer_is_checked(build, message):
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_double_buffer_needs_a_dense_first_layer():
    from sc_neurocore.params import ConvParams

    conv = ConvParams(np.ones((2, 1, 3, 3), dtype=np.int64), (1, 4, 4), 4, 5, 1, 0, 10, padding=1)
    net = NetworkParams((conv, LayerParams(np.ones((32, 3), dtype=np.int64), 4, 3, 0, 0, 12)), 2)
    with pytest.raises(ValueError, match="double_buffer needs a dense first layer, not a 'conv' layer"):
        CoreConfig(double_buffer=True).geometry(net)


def test_the_layer_refuses_a_staging_set_without_a_kept_current(rejected_components):
    from sc_neurocore.hw.layer import LIFLayer

    net = random_bundle((8, 4, 2), 2, seed=0).network
    geo = CoreConfig().geometry(net)
    with pytest.raises(ValueError, match="double_buffer needs keep_current=True"):
        LIFLayer(net.layers[1], geo.layers[1], reset="subtract", spiking=False, double_buffer=True)


@pytest.mark.parametrize("memory", ["block", "single_port"])
def test_double_buffered_core_computes_weights_loaded_at_run_time(memory):
    """With the weight port (and single-port banks, the UP5K's SPRAM shape) the staging path reads the
    written weights: a core built for network A computes network B, written after reset, back to back."""
    a = random_bundle((16, 8, 4), 2, seed=23).network
    b = random_bundle((16, 8, 4), 2, seed=24).network
    b = NetworkParams(tuple(LayerParams(lb.weight, lb.weight_bits, la.threshold, la.leak_shift, la.current_shift,
                                        la.membrane_bits) for la, lb in zip(a.layers, b.layers)),
                      T=a.T, readout=a.readout)
    cfg = CoreConfig(lanes=(3, 4), events=(2, 2), pixels_per_beat=4, weight_port=True, weight_memory=memory,
                     double_buffer=True)
    x = _images(16, 6, seed=12)
    assert not np.array_equal(infer(a, x).scores, infer(b, x).scores)   # the test can tell them apart
    r = simulate(a, x, cfg, weight_writes=cfg.geometry(a).weight_writes(b))
    g = infer(b, x)
    assert np.array_equal(r.scores, g.scores) and np.array_equal(r.classes, g.classes)
    assert np.array_equal(r.cycles, stream_cycles(b, cfg, x)[0])
