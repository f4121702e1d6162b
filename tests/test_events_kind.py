"""The ``events`` input kind across the views (spec §3.3): params, bundle, QAT; the gateware is in
tests/test_hw_events.py."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import Bundle, load_bundle, random_bundle, save_bundle
from sc_neurocore.kinds import KindError
from sc_neurocore.params import EventInput, LayerParams, NetworkParams, PixelInput, input_stage


def test_the_input_stage_of_each_encoding():
    assert input_stage("direct", 4) == PixelInput("direct", 4)
    ev = input_stage("events", 2)
    assert isinstance(ev, EventInput) and ev.kind == "events" and ev.encoding == "events"
    assert (ev.x_max, ev.constant, ev.shift) == (3, False, 0)
    assert EventInput().input_bits == 1 and EventInput().x_max == 1
    with pytest.raises(ValueError, match="input_bits must be between 1 and 8, not 9"):
        EventInput(9)
    with pytest.raises(ValueError, match="encoding must be one of 'direct', 'rate', not 'events'"):
        PixelInput("events")  # events are their own kind, not a pixel encoding


def test_an_events_network_sizes_its_accumulator_by_the_counts():
    layer = LayerParams(np.full((10, 3), 127), 8, 1000, 2, 0, 16)
    net = NetworkParams((layer,), 4, "events", input_bits=3)
    assert net.input == EventInput(3) and net.input_max(0) == 7
    # |a| <= n_in * x_max * w_max = 10 * 7 * 127 = 8890 -> 14 bits + sign
    assert layer.accumulator_format(net.input_max(0)).width == (10 * 7 * 127).bit_length() + 1
    assert net.with_T(8).encoding == "events" and net.with_T(8).input_bits == 3


def test_events_bundles_round_trip(tmp_path):
    b = random_bundle((2 * 34 * 34, 16, 10), T=4, encoding="events", input_bits=1, seed=3)
    save_bundle(b, tmp_path / "e.scnb")
    back = load_bundle(tmp_path / "e.scnb")
    assert back == b and back.network.input == EventInput(1)
    save_bundle(back, tmp_path / "again.scnb")
    assert (tmp_path / "e.scnb").read_bytes() == (tmp_path / "again.scnb").read_bytes()


def test_a_view_without_the_kind_names_it():
    """docs/architecture.md: a view that lacks a kind fails with KindError naming the view and the kind."""
    from sc_neurocore.kinds import Registry

    reg = Registry("some view", "input")
    reg.register("pixels")(object)
    with pytest.raises(KindError, match="'events'"):
        reg(EventInput())


@pytest.mark.parametrize("bits,readout,reset", [(1, "spike_count", "subtract"), (3, "membrane", "zero"),
                                                (1, "membrane", "subtract"), (2, "spike_count", "zero")])
def test_qat_forward_equals_golden_on_event_rasters(bits, readout, reset):
    """The torch forward of an events network is the golden model bit-exactly, also when it reads rasters of
    twice or four times its T (re-binned: golden.rebin_events)."""
    import torch

    from sc_neurocore.golden import infer, rebin_events
    from sc_neurocore.train import SNNConfig, SpikingMLP, to_bundle

    rng = np.random.default_rng(bits)
    n = 2 * 6 * 6
    top = (1 << bits) - 1
    fine = np.minimum(rng.poisson(0.4, (64, 16, n)), top).astype(np.uint8)
    fine[0] = 0      # an empty recording
    fine[1] = top    # every input at the top count in every bin
    for T in (4, 8, 16):
        cfg = SNNConfig(sizes=(n, 24, 5), T=T, encoding="events", input_bits=bits, readout=readout, reset=reset,
                        leak_shift=2)
        model = SpikingMLP(cfg, seed=T)
        with torch.no_grad():
            for w in model.weights:
                w.mul_(3.0)
        out = model(torch.as_tensor(fine))
        net = to_bundle(model).network
        assert net.encoding == "events" and net.input_bits == bits
        x = rebin_events(fine, T, top)
        r = infer(net, x, record=True)
        assert np.array_equal(out.scores.numpy().astype(np.int64), r.scores)
        for li, spk in enumerate(out.spikes):
            assert np.array_equal(spk.detach().numpy().astype(np.uint8), r.spikes[li])
        rate = out.spikes[0].detach().numpy().mean()
        assert 0.01 < rate < 0.98, rate  # the layer is exercised


def test_rebinning_is_summing_then_saturating():
    from sc_neurocore.golden import rebin_events

    raw = np.random.default_rng(0).poisson(1.0, (5, 12, 7))
    for bits in (1, 2, 8):
        top = (1 << bits) - 1
        sat = np.minimum(raw, top)
        for T in (1, 2, 3, 4, 6, 12):
            want = np.minimum(raw.reshape(5, T, 12 // T, 7).sum(2), top)
            assert np.array_equal(rebin_events(sat, T, top), want)  # saturating the fine bins first: the same
    with pytest.raises(ValueError, match=r"event rasters of 12 bins cannot be re-binned into T=5 bins"):
        rebin_events(raw, 5, 1)
