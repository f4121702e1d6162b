"""The events input kind in the gateware (hw/inputs.py EventsInput), the latency model and the bus contract:
Amaranth simulation and cocotb (Icarus, Verilator) bit-exact against the golden model, cycles equal to the model."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.hw.config import CoreConfig, Timing
from sc_neurocore.hw.latency import image_cycles, lower_bound_cycles, worst_case_cycles
from sc_neurocore.hw.stream import Traffic, beats_per_image, input_beats
from sc_neurocore.hw.testbench import simulate


def _rasters(T, n, bits, count=8, seed=0, rate=0.6):
    """Random counts plus the corner cases: an empty recording, every count at the top in every bin,
    and a recording whose bins alternate empty / all-active."""
    rng = np.random.default_rng(seed)
    top = (1 << bits) - 1
    x = np.minimum(rng.poisson(rate, (count, T, n)), top).astype(np.int64)
    x[0] = 0
    x[1] = top
    x[2, ::2] = 0
    x[2, 1::2] = top
    return x


CASES = [  # (sizes, T, input_bits, readout, reset, config)
    ((20, 8, 4), 3, 1, "spike_count", "subtract", None),
    ((20, 8, 4), 4, 3, "membrane", "zero", CoreConfig(pixels_per_beat=4, lanes=(4, 2), events=(2, 2))),
    ((13, 6, 3), 1, 8, "spike_count", "zero", CoreConfig(pixels_per_beat=8, lanes=(3, 3))),      # T = 1
    ((9, 5, 2), 40, 2, "membrane", "subtract", CoreConfig(pixels_per_beat=2, lanes=(1, 1))),      # long T
]


@pytest.mark.parametrize("sizes,T,bits,readout,reset,config", CASES)
def test_amaranth_simulation_is_the_golden_model(sizes, T, bits, readout, reset, config):
    b = random_bundle(sizes, T=T, encoding="events", input_bits=bits, seed=T, readout=readout, reset=reset)
    x = _rasters(T, sizes[0], bits)
    g = infer(b.network, x)
    r = simulate(b.network, x, config)
    assert np.array_equal(np.asarray(r.classes), g.classes) and np.array_equal(np.asarray(r.scores), g.scores)
    cycles = np.asarray(r.cycles)
    assert np.array_equal(cycles, image_cycles(b.network, config, x))  # exact, every sample
    assert cycles.max() <= worst_case_cycles(b.network, config)
    assert np.all(lower_bound_cycles(b.network, config, x) <= cycles)
    # gaps inside a timestep and back-pressure change nothing but the time
    shaped = simulate(b.network, x, config, traffic=Traffic(gaps=0.3, backpressure=0.4, seed=T))
    assert np.array_equal(np.asarray(shaped.scores), g.scores)


def test_a_reset_mid_sample_restarts_cleanly():
    b = random_bundle((20, 8, 4), T=4, encoding="events", input_bits=2, seed=5, readout="spike_count")
    x = _rasters(4, 20, 2, count=5, seed=5)
    g = infer(b.network, x)
    for after in (7, 23, 61):  # inside the first timestep's beats, inside a later timestep, mid-second sample
        r = simulate(b.network, x, reset_after=after)
        assert np.array_equal(np.asarray(r.scores), g.scores), after


def test_the_cycle_model_counts_each_timestep_s_input_pass():
    """All-zero bins: only the beats arrive (skipped counts issue nothing), so each timestep's input pass is
    the K beats, and every timestep after the first starts Timing.EVENT_STEP_START later."""
    cfg = CoreConfig(pixels_per_beat=4, lanes=(8, 4))
    b = random_bundle((20, 8, 4), T=6, encoding="events", input_bits=1, seed=1)
    zero, ones = np.zeros((1, 6, 20), np.int64), np.ones((1, 6, 20), np.int64)
    c0, c1 = image_cycles(b.network, cfg, zero)[0], image_cycles(b.network, cfg, ones)[0]
    assert c1 > c0
    assert c0 == int(np.asarray(simulate(b.network, zero, cfg).cycles)[0])
    b1 = random_bundle((20, 8, 4), T=1, encoding="events", input_bits=1, seed=1)
    one_step = image_cycles(b1.network, cfg, zero[:, :1])[0]
    per_step = (c0 - one_step) / 5
    assert per_step >= beats_per_image(20, 4) + Timing.EVENT_STEP_START


def test_the_bus_carries_T_times_K_beats_of_counts():
    b = random_bundle((10, 4, 2), T=3, encoding="events", input_bits=4, seed=0)
    x = np.arange(3 * 10).reshape(1, 3, 10) % 16
    beats = input_beats(b.network, x, 4)
    assert len(beats) == 1 and len(beats[0]) == 3 * beats_per_image(10, 4)
    # the first beat: inputs 0..3 of bin 0, one byte per lane, little-endian
    assert beats[0][0] == sum(int(v) << (8 * j) for j, v in enumerate(x[0, 0, :4]))
    # bin 1 starts on a new beat (10 inputs: 3 beats per bin, the last one padded)
    assert beats[0][3] == sum(int(v) << (8 * j) for j, v in enumerate(x[0, 1, :4]))
    assert beats[0][2] == sum(int(v) << (8 * j) for j, v in enumerate(x[0, 0, 8:10]))


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cocotb_rtl_is_the_golden_model(simulator):
    from sc_neurocore.sim.runner import run_regression

    b = random_bundle((20, 8, 4), T=3, encoding="events", input_bits=2, seed=1, readout="spike_count")
    x = _rasters(3, 20, 2, count=40, seed=9).astype(np.uint8)
    r = run_regression(b, x, simulator=simulator)
    assert r["ok"] and r["vectors_checked"] == 40 and r["mismatched_vectors"] == 0, r
    assert r["cycles_checked"] and r["cycle_mismatches"] == 0
    r = run_regression(b, x, simulator=simulator, gaps=True, backpressure=True, resets=2, seed=4)
    assert r["ok"] and r["mismatched_vectors"] == 0, r
