"""Generator options (CoreConfig / CoreGeometry) and the LFSR matrix."""

from __future__ import annotations

import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.config import CoreConfig, CoreGeometry, Timing
from sc_neurocore.hw.lfsr import apply_matrix, step_matrix
from sc_neurocore.params import lfsr_step


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"lanes": "8"}, TypeError, "lanes must be a positive integer or a sequence of them, not '8'"),
    ({"lanes": 0}, ValueError, "lanes must be positive, not 0"),
    ({"lanes": True}, TypeError, "lanes must be a positive integer or a sequence of them, not True"),
    ({"lanes": (4, 0)}, ValueError, "lanes must be positive, not (4, 0)"),
    ({"lanes": ()}, ValueError, "lanes must be a positive integer or a non-empty sequence of them, not ()"),
    ({"lanes": (4, 2.5)}, TypeError, "lanes must be a positive integer or a sequence of them, not (4, 2.5)"),
    ({"events": -1}, ValueError, "events must be positive, not -1"),
    ({"events": 1.0}, TypeError, "events must be a positive integer or a sequence of them, not 1.0"),
    ({"pixels_per_beat": 0}, ValueError, "pixels_per_beat must be between 1 and 64, not 0"),
    ({"pixels_per_beat": 65}, ValueError, "pixels_per_beat must be between 1 and 64, not 65"),
    ({"pixels_per_beat": "8"}, TypeError, "pixels_per_beat must be a positive integer, not '8'"),
])
def test_config_validation(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        CoreConfig(**kwargs)
    assert str(e.value) == msg


@pytest.mark.parametrize("kwargs, msg", [
    ({"lanes": (4, 2, 1)}, "lanes must have one entry per layer (2), not (4, 2, 1)"),
    ({"lanes": (9, 2)}, "lanes[0] must be at most 8 for this layer, not 9"),
    ({"events": (3, 2)}, "events[0] must divide pixels_per_beat (8), not 3"),
    ({"events": (2, 9)}, "events[1] must be at most 8 for this layer, not 9"),
])
def test_geometry_validation(kwargs, msg):
    net = random_bundle((16, 8, 4), T=2).network
    with pytest.raises(ValueError) as e:
        CoreGeometry(net, CoreConfig(**kwargs))
    assert str(e.value) == msg


def test_geometry_defaults_and_derived_facts():
    net = random_bundle((784, 128, 10), T=4).network
    g = CoreGeometry(net)
    assert [lg.lanes for lg in g.layers] == [128, 10]           # all neurons at once
    assert [lg.events for lg in g.layers] == [2, 4]
    assert g.beats == 98 and g.s_axis_tdata_width == 64
    assert g.score_width == 16 and g.score_signed
    assert g.m_axis_tdata_width == 16 + 16 * 10
    assert g.layers[0].memory_depth == 392 and g.layers[0].memory_width == 1024
    assert g.layers[1].update_cycles == 1 + Timing.UPDATE
    sc = CoreGeometry(random_bundle((16, 8, 5), T=5, readout="spike_count").network,
                      CoreConfig(lanes=3, pixels_per_beat=3))
    assert sc.score_width == 3 and not sc.score_signed
    assert [lg.groups for lg in sc.layers] == [3, 2]
    assert sc.layers[0].events == 1      # gcd(3, 2)
    assert sc.beats == 6 and sc.argmax_levels == 3
    # an int larger than a layer is clamped to the layer
    assert [lg.lanes for lg in CoreGeometry(net, CoreConfig(lanes=64)).layers] == [64, 10]
    with pytest.raises(TypeError, match="network must be a NetworkParams"):
        CoreGeometry("net")
    assert CoreConfig(lanes=[4, None]).to_dict() == {"lanes": [4, None], "events": None, "pixels_per_beat": 8,
                                                     "weight_port": False}


@pytest.mark.parametrize("k", [0, 1, 8, 24, 64, 200])
def test_lfsr_matrix_equals_steps(k):
    rows = step_matrix(k)
    for s in (1, 0xACE1, 0xFFFF, 0x8000, 0x1234):
        ref = s
        for _ in range(k):
            ref = lfsr_step(ref)
        assert apply_matrix(rows, s) == ref


def test_lfsr_mask_is_the_one_the_step_matrices_are_built_for():
    # Was an import-time assert in hw/lfsr.py: spec §3.2's mask, maximal length.
    from sc_neurocore.params import LFSR_MASK, lfsr_step

    assert LFSR_MASK == 0xB400
    s, n = 1, 0
    while True:
        s, n = lfsr_step(s), n + 1
        if s == 1:
            break
    assert n == 65535


def test_geometry_reads_the_bus_contract():
    from sc_neurocore.hw import config, stream
    from sc_neurocore.hw.formal import small_network

    geo = CoreGeometry(small_network(), CoreConfig(pixels_per_beat=3))
    assert geo.s_axis_tdata_width == stream.in_width(3) == 3 * stream.PIXEL_BITS
    assert geo.m_axis_tdata_width == stream.out_width(geo.n_classes, geo.score_width)
    assert geo.beats == stream.beats_per_image(4, 3) == 2
    assert not hasattr(config, "CLASS_BITS")   # one definition: hw.stream


@pytest.mark.parametrize("bad", [-1, 1.5, True, "4"])
def test_dsp_limit_is_checked(bad):
    with pytest.raises(ValueError, match=f"dsp_limit must be a non-negative integer or None, not {bad!r}"):
        CoreConfig(dsp_limit=bad)


@pytest.mark.parametrize("limit, terms", [(None, 4), (16, 4), (14, 6), (12, 8), (0, 8)])
def test_lut_products_add_their_halves_to_a_lane_tree(limit, terms):
    # 4 lanes x 4 events of pixel products; those beyond the limit come last, event fastest, so the
    # last lane holds up to 4 of them, each summed as two halves (4 products + 2 or 4 halves).
    net = random_bundle((16, 8, 4), T=2, seed=0).network
    lg = CoreConfig(lanes=(4, 4), events=(4, 4), dsp_limit=limit).geometry(net).layers[0]
    assert lg.lane_terms == terms and lg.tree_stages == 1


def test_dsp_limit_is_counted_over_the_pixel_layers_in_order():
    from sc_neurocore.bundle import random_bundle

    net = random_bundle((16, 8, 4), T=2).network
    g = CoreConfig(lanes=(8, 4), events=(2, 4), dsp_limit=10).geometry(net)
    assert [lg.lut_products for lg in g.layers] == [6, 0]     # 16 pixel products, 10 DSPs; layer 2 gates spikes
    assert "dsp_limit" not in CoreConfig().to_dict() and CoreConfig(dsp_limit=3).to_dict()["dsp_limit"] == 3


@pytest.mark.parametrize("c", [0, 1, 2, 3, 5, 7, 24, 28, 144, 784, 0b1011011101, 3 * 2 ** 20 + 1])
def test_const_mul_is_exact_and_uses_no_multiplier(c):
    """``hw.logic._const_mul``: the conv index arithmetic's products by constants, as shifts and adds."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from sc_neurocore.hw.logic import _const_mul

    m = Module()
    v = Signal(12)
    out = Signal(40)
    m.d.comb += out.eq(_const_mul(v, c))
    seen = []

    async def bench(ctx):
        for value in (0, 1, 2, 3, 1000, 4095):
            ctx.set(v, value)
            seen.append((value, ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(value, value * c) for value, _ in seen]
    from amaranth.back import rtlil
    assert "$mul" not in rtlil.convert(m, ports=[v, out])
