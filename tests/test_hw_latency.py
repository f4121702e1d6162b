"""The latency model: definitions, bounds, dataset summary (equality with the
simulation is checked in tests/test_hw_sim.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.config import CoreConfig, CoreGeometry, Timing
from sc_neurocore.hw.latency import (image_cycles, latency_report, latency_summary, lower_bound_cycles,
                                  worst_case_cycles)


def _x(n, b, seed, density=0.3):
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 256, size=(b, n)) * (rng.random((b, n)) < density)).astype(np.int64)


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_bounds_bracket_every_image(encoding):
    net = random_bundle((64, 16, 5), T=4, seed=1, encoding=encoding, readout="spike_count").network
    cfg = CoreConfig(lanes=(4, 5), pixels_per_beat=8)
    x = np.concatenate([_x(64, 50, 2), np.zeros((1, 64), np.int64), np.full((1, 64), 255)])
    c = image_cycles(net, cfg, x)
    lb = lower_bound_cycles(net, cfg, x)
    assert np.all(lb <= c) and c.max() <= worst_case_cycles(net, cfg)
    assert lower_bound_cycles(net, cfg) <= worst_case_cycles(net, cfg)


def test_direct_zero_image_formula():
    # An all-zero image: K beats at one per cycle, then per timestep the
    # layer-1 update, an empty scan and the layer-2 update, then readout.
    net = random_bundle((16, 8, 4), T=3).network
    cfg = CoreConfig(lanes=(8, 4), pixels_per_beat=4)
    g = CoreGeometry(net, cfg)
    expected = g.beats + net.T * (g.layers[0].update_cycles + Timing.SCAN_EMPTY + g.layers[1].update_cycles) \
        + g.readout_cycles
    assert image_cycles(net, cfg, np.zeros(16, np.int64))[0] == expected


def test_worst_case_direct_formula():
    net = random_bundle((16, 8, 4), T=2).network
    cfg = CoreConfig(lanes=(4, 4), events=(2, 4), pixels_per_beat=4)
    g = CoreGeometry(net, cfg)
    l0, l1 = g.layers
    issues = l0.chunks * l0.groups
    expected = (issues + l0.accumulate_cycles
                + net.T * (l0.update_cycles + l1.chunks * l1.groups + l1.scan_cycles + l1.update_cycles)
                + g.readout_cycles)
    assert worst_case_cycles(net, cfg) == expected


def test_targets_784_128_10_T4():
    net = random_bundle(T=4).network
    assert worst_case_cycles(net) <= 1000
    assert worst_case_cycles(net) >= lower_bound_cycles(net)


def test_summary_and_report():
    net = random_bundle((64, 16, 5), T=2, seed=4).network
    s = latency_summary(net, CoreConfig(pixels_per_beat=8), _x(64, 20, 5))
    assert s["n"] == 20 and s["min_cycles"] <= s["median_cycles"] <= s["max_cycles"] <= s["worst_case_cycles"]
    assert s["mean_lower_bound_cycles"] <= s["mean_cycles"]
    rep = latency_report(net)
    assert rep["pipeline"]["accumulate"] == [lg.accumulate_cycles for lg in CoreGeometry(net).layers]
    assert rep["pipeline"]["update"] == Timing.UPDATE
    with pytest.raises(TypeError):
        image_cycles("net", None, _x(64, 1, 0))


def test_summary_refuses_an_empty_batch():
    net = random_bundle((64, 16, 5), T=2, seed=4).network
    with pytest.raises(ValueError, match="needs at least one image, got an empty batch"):
        latency_summary(net, None, np.zeros((0, 64), np.int64))
    with pytest.raises(ValueError, match="batch must be a positive integer, not 0"):
        latency_summary(net, None, _x(64, 3, 0), batch=0)


def test_latency_registry_names_the_view_for_an_unknown_kind():
    from sc_neurocore.hw.latency import INPUTS, LAYERS
    from sc_neurocore.kinds import KindError

    assert "dense" in LAYERS and "conv" in LAYERS and "pixels" in INPUTS and "events" in INPUTS
    with pytest.raises(KindError, match="latency model has no implementation of the 'lstm' layer kind"):
        LAYERS.get("lstm")
    with pytest.raises(KindError, match="latency model has no implementation of the 'audio' input kind"):
        INPUTS.get("audio")


@pytest.mark.parametrize("name", ["ACCUMULATE_BASE", "UPDATE"])
def test_gateware_depth_is_tied_to_timing(monkeypatch, name, rejected_components):
    # A stage added to the model (or the gateware) alone must not go unnoticed.
    from sc_neurocore.hw.core import build_core
    from sc_neurocore.hw.formal import small_network
    from amaranth.hdl import Fragment

    monkeypatch.setattr(Timing, name, getattr(Timing, name) + 1)
    top = build_core(small_network(), CoreConfig(pixels_per_beat=2))
    with pytest.raises(AssertionError, match="register stages, but Timing"):
        Fragment.get(top.core.layers[0], None)
