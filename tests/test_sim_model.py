"""The testbench model (sc_neurocore.sim.model) and what both testbenches share: hw.stream's packers, Traffic, the
input-kind registry, and the cocotb version guard of the runner."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw import stream
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.kinds import KindError
from sc_neurocore.sim import model, runner


def test_pixel_beats_layout():
    x = np.arange(1, 11, dtype=np.uint8)[None, :]
    beats = model.INPUT_BEATS.get("pixels")(x, 4)[0]
    assert len(beats) == 3 == stream.beats_per_image(10, 4)
    for i in range(10):
        assert (beats[i // 4] >> (8 * (i % 4))) & 0xFF == i + 1
    assert beats[2] >> 16 == 0  # padding pixels are zero
    assert stream.pack_images(np.full((1, 3), 255), 8)[0] == [0xFFFFFF]


@pytest.mark.parametrize("signed", [True, False])
def test_output_word_roundtrip(signed):
    rng = np.random.default_rng(1)
    for sw in (1, 3, 8, 17, 32):
        lo, hi = (-(1 << (sw - 1)), 1 << (sw - 1)) if signed and sw > 1 else (0, 1 << sw)
        scores = rng.integers(lo, hi, size=7).tolist()
        word = stream.pack_result(5, scores, sw)
        info = model.CoreInfo(4, 16, 7, sw, signed and sw > 1, 32, stream.out_width(7, sw))
        assert info.unpack(word) == (5, scores)


def test_core_info_defaults_come_from_the_stream_contract():
    info = model.CoreInfo.from_report({"pixels_per_beat": 3, "n_inputs": 10, "n_classes": 2, "score_width": 4,
                                       "score_signed": False, "s_axis_tdata_width": 24, "m_axis_tdata_width": 24})
    assert info.top == stream.TOP_NAME and info.beats_per_image == 4


def test_input_beats_dispatch_on_the_input_kind():
    net = random_bundle((10, 4, 3), 2, seed=0).network
    x = np.random.default_rng(0).integers(0, 256, size=(3, 10))
    assert model.input_beats(net, x, 4) == stream.pack_images(x, 4)

    class Events:
        kind = "events"

    with pytest.raises(KindError, match="the bus contract has no implementation of the 'events' input kind"):
        model.INPUT_BEATS(Events())


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


@pytest.mark.parametrize("kw, msg", [
    ({"gaps": 1.0}, "gaps must be a probability in [0, 1), not 1.0"),
    ({"backpressure": -0.1}, "backpressure must be a probability in [0, 1), not -0.1"),
    ({"gaps": True}, "gaps must be a probability in [0, 1), not True"),
    ({"max_gap": 0}, "max_gap must be an integer >= 1, not 0"),
    ({"resets": -1}, "resets must be an integer >= 0, not -1"),
    ({"seed": 1.5}, "seed must be an integer >= 0, not 1.5"),
])
def test_traffic_validation_messages(kw, msg):
    with pytest.raises(ValueError) as e:
        Traffic(**kw)
    assert str(e.value) == msg


def test_simulate_refuses_random_resets():
    pytest.importorskip("amaranth")
    from sc_neurocore.hw.testbench import simulate

    net = random_bundle((8, 4, 2), 1, seed=1).network
    with pytest.raises(ValueError, match="simulate takes one reset at reset_after, not Traffic.resets"):
        simulate(net, np.zeros((1, 8), dtype=np.int64), traffic=Traffic(resets=1))
    with pytest.raises(TypeError, match="traffic must be a Traffic, not dict"):
        simulate(net, np.zeros((1, 8), dtype=np.int64), traffic={"gaps": 0.1})


def test_case_config_is_written_from_traffic_and_options(tmp_path):
    core = runner.Core(tmp_path, {"top": stream.TOP_NAME}, tmp_path / "b.scnb")
    t = Traffic(gaps=0.25, max_gap=5, backpressure=0.5, resets=2, seed=9)
    runner._write_case(core, np.zeros((3, 4), dtype=np.uint8), tmp_path / "case", t,
                       runner.CaseOptions(check_cycles=False, max_report=7, stall_cycles=99, expected_cycles=12))
    import json

    cfg = json.loads((tmp_path / "case" / "config.json").read_text())
    assert Traffic(**cfg["traffic"]) == t
    assert (cfg["check_cycles"], cfg["fail_on_mismatch"], cfg["max_report"], cfg["stall_cycles"]) == (False, True, 7, 99)
    assert np.load(cfg["expected_cycles"]).tolist() == [12, 12, 12]
    assert "load_bundle" not in cfg


def test_run_case_takes_traffic_and_options_objects():
    core = runner.Core(__import__("pathlib").Path("."), {}, None)
    with pytest.raises(TypeError, match="traffic must be a Traffic, not dict"):
        runner.run_case(core, "icarus", [], case="x", traffic={"gaps": 0.1})
    with pytest.raises(TypeError, match="options must be a CaseOptions, not dict"):
        runner.run_case(core, "icarus", [], case="x", options={})


def test_run_regression_refuses_traffic_and_its_knobs_together():
    b = random_bundle((4, 2), 1, seed=0)
    with pytest.raises(TypeError, match="give traffic or gaps/backpressure/seed/resets, not both"):
        runner.run_regression(b, np.zeros((1, 4)), traffic=Traffic(), gaps=0.2)


def test_cocotb_version_guard():
    runner.check_cocotb_version("2.1.0")
    runner.check_cocotb_version("2.1.3")
    for bad in ("2.2.0", "2.10.0", "1.9.2"):
        with pytest.raises(RuntimeError, match=rf"written for cocotb 2\.1\.\*, but cocotb {bad} is installed"):
            runner.check_cocotb_version(bad)


def test_touch_hook_checks_the_installed_cocotb(monkeypatch):
    cocotb = pytest.importorskip("cocotb")

    class FakeRunner:
        def _build_command(self):
            return [["verilator", "x"], ["make"]]

    r = FakeRunner()
    runner.touch_between_verilate_and_make(r, ["/b/verilated.o"])
    assert r._build_command() == [["verilator", "x"], ["touch", "/b/verilated.o"], ["make"]]
    monkeypatch.setattr(cocotb, "__version__", "3.0.0")
    with pytest.raises(RuntimeError, match="written for cocotb 2.1"):
        runner.touch_between_verilate_and_make(FakeRunner(), [])


def test_verilator_options_are_public_inputs(monkeypatch):
    monkeypatch.setenv("MAKEFLAGS", "-j4")
    args, env = runner._verilator_options(waves=False)
    assert args[:len(runner.VERILATOR_ARGS)] == runner.VERILATOR_ARGS and args[-1] == "--no-public-flat-rw"
    assert env == {"MAKEFLAGS": "-j4 CFG_CXXFLAGS_PCH_I=-include"}
    args, _ = runner._verilator_options(waves=True)
    assert "--no-public-flat-rw" not in args


def test_runner_environ_restores(monkeypatch):
    import os

    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t")
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    with runner._runner_environ(MAKEFLAGS="X=1"):
        assert "PYTEST_CURRENT_TEST" not in os.environ and os.environ["MAKEFLAGS"] == "X=1"
    assert os.environ["PYTEST_CURRENT_TEST"] == "t" and "MAKEFLAGS" not in os.environ
