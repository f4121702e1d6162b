"""The cocotb testbench itself (sc_neurocore.sim), on the hand-written fixture core tests/fixtures/stub_top.v.

The bus packing and the checker are tested in tests/test_hw_stream.py and tests/test_sim_checker.py; the cocotb
parts run the fixture in both simulators, which follows the same port
contract as the generated core and implements a real (trivial) network
bit-exactly, so the same checker and latency comparison apply.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

from stub_core import DELAY, stub_bundle, stub_core, stub_images  # noqa: E402

from sc_neurocore.golden import infer  # noqa: E402
from sc_neurocore.hw.stream import Traffic  # noqa: E402
from sc_neurocore.sim.runner import available_simulators, run_case  # noqa: E402

SIMS = available_simulators()


# -- pure Python (the bus packing: tests/test_hw_stream.py; the checker: tests/test_sim_checker.py) ----

def test_stub_bundle_matches_fixture_arithmetic():
    x = stub_images(20)
    r = infer(stub_bundle().network, x)
    want = np.stack([x[:, c::4].astype(np.int64).sum(1) for c in range(4)], axis=1)
    assert np.array_equal(r.scores, want)


# -- the testbench in the simulators -------------------------------------------


def _fmt(r):
    return (f"checked {r['checked']} mismatched {r['mismatched_vectors']} cycle mismatches "
            f"{r.get('cycle_mismatches')} failed {r['failed']} {r['mismatches'][:5]} "
            f"{r.get('log_tail', '')} see {r['case_dir']}")


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMS)
def test_stub_back_to_back_and_latency(sim):
    r = run_case(stub_core(), sim, stub_images(200), case="pytest-b2b")
    assert r["failed"] == 0 and r["mismatched_vectors"] == 0, _fmt(r)
    assert r["checked"] == 200
    assert r["cycles_checked"] and r["cycle_mismatches"] == 0
    assert set(r["cycles"]) == {DELAY + 5}


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMS)
def test_stub_gaps_and_backpressure(sim):
    r = run_case(stub_core(), sim, stub_images(200, seed=3), case="pytest-gaps",
                 traffic=Traffic(gaps=0.3, max_gap=4, backpressure=0.5, seed=7))
    assert r["failed"] == 0 and r["mismatched_vectors"] == 0, _fmt(r)
    assert r["checked"] == 200 and not r["cycles_checked"]
    assert max(r["cycles"]) > DELAY + 5  # the gaps and back-pressure did stretch some images


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMS)
def test_stub_reset_mid_inference(sim):
    r = run_case(stub_core(), sim, stub_images(60, seed=4), case="pytest-reset", traffic=Traffic(resets=6, seed=5))
    assert r["failed"] == 0 and r["mismatched_vectors"] == 0, _fmt(r)
    assert r["checked"] == 60 and len(r["resets"]) == 6
    assert all(d["dropped"] == [d["image"]] for d in r["resets"])


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMS)
def test_stub_mutation_is_caught(sim):
    """A broken core (STUB_BUG: score 2 off by one when odd) must make the checker report mismatches."""
    r = run_case(stub_core(bug=True), sim, stub_images(40), case="pytest-mutant")
    assert r["tests"] == 1 and r["failed"] == 1  # read back with cocotb_tools.check_results.get_results
    assert r["mismatched_vectors"] > 0
    m = r["mismatches"][0]
    assert m["field"] == "score[2]" and m["got"] == m["expected"] + 1 and m["index"] >= 0


@pytest.mark.sim
def test_waves_on_request(monkeypatch):
    if "icarus" not in SIMS:
        pytest.skip("icarus not installed")
    monkeypatch.setenv("WAVES", "1")
    r = run_case(stub_core(), "icarus", stub_images(3), case="pytest-waves")
    assert r["failed"] == 0, _fmt(r)
    assert list(Path(r["case_dir"]).parent.parent.glob("*.fst"))


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMS)
def test_build_reused_for_identical_verilog(sim, tmp_path):
    """One build folder per byte-identical Verilog: a copy of the fixture elsewhere reuses the build."""
    import shutil

    from sc_neurocore.sim.runner import Core, build

    core = stub_core()
    first = build(core, sim)
    copy = tmp_path / "copy"
    shutil.copytree(core.verilog_dir, copy)
    # nothing in the build folder is written again (a timed bound here failed on slow machines)
    stamps = {p: p.stat().st_mtime_ns for p in Path(first).rglob("*") if p.is_file()}
    again = build(Core(copy, core.report, core.bundle_path), sim)
    assert again == first and stamps
    assert {p: p.stat().st_mtime_ns for p in Path(first).rglob("*") if p.is_file()} == stamps
    assert build(stub_core(bug=True), sim) != first  # a different core (here: a define) gets its own build
