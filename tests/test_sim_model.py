"""The testbench model (``sc_neurocore.sim.model``): CoreInfo from the stream contract, its result unpacking, and
the packer registry both testbenches share (the bus contract itself is in tests/test_hw_stream.py, the runner in
tests/test_sim_runner.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw import stream
from sc_neurocore.sim import model


def test_core_info_defaults_come_from_the_stream_contract():
    info = model.CoreInfo.from_report({"pixels_per_beat": 3, "n_inputs": 10, "n_classes": 2, "score_width": 4,
                                       "score_signed": False, "s_axis_tdata_width": 24, "m_axis_tdata_width": 24})
    assert info.top == stream.TOP_NAME and info.beats_per_image == 4


def test_both_testbenches_pack_with_the_registered_packer(monkeypatch):
    """The Amaranth testbench drives exactly the beats of INPUT_BEATS (the cocotb Testbench's packer)."""
    pytest.importorskip("amaranth")
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.testbench import simulate

    net = random_bundle((8, 4, 2), 1, seed=1).network
    x = np.random.default_rng(2).integers(0, 256, size=(2, 8))
    calls = []
    pixels = model.INPUT_BEATS.get("pixels")

    def spy(images, ppb):
        out = pixels(images, ppb)
        calls.append((np.asarray(images).copy(), ppb, out))
        return out

    monkeypatch.setitem(model.INPUT_BEATS._impl, "pixels", spy)
    simulate(net, x, CoreConfig(pixels_per_beat=4))
    assert len(calls) == 1 and np.array_equal(calls[0][0], x) and calls[0][1] == 4
    assert calls[0][2] == stream.pack_images(x, 4)


def test_cocotb_testbench_default_packer_is_the_registry_one():
    pytest.importorskip("cocotb")
    import inspect

    from sc_neurocore.sim import tb_core, testbench

    assert 'INPUT_BEATS.get("pixels")' in inspect.getsource(testbench.Testbench.__init__)
    assert "INPUT_BEATS(bundle.network.input)" in inspect.getsource(tb_core)


@pytest.mark.parametrize("signed", [True, False])
def test_output_word_roundtrip(signed):
    rng = np.random.default_rng(1)
    for sw in (1, 3, 8, 17, 32):
        lo, hi = (-(1 << (sw - 1)), 1 << (sw - 1)) if signed and sw > 1 else (0, 1 << sw)
        scores = rng.integers(lo, hi, size=7).tolist()
        word = stream.pack_result(5, scores, sw)
        info = model.CoreInfo(4, 16, 7, sw, signed and sw > 1, 32, stream.out_width(7, sw))
        assert info.unpack(word) == (5, scores)


def test_model_reexports_the_stream_packers():
    assert model.INPUT_BEATS is stream.INPUT_BEATS and model.input_beats is stream.input_beats
