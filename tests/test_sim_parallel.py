"""``run_regression(..., jobs=N)`` / ``sc-neurocore sim --jobs N``: the images sharded over N simulator processes.

Pure Python: the shard plan, the seeds, the merge and the argument checks. In the simulators: the
hand-written fixture core (tests/fixtures/stub_top.v) gives, with 2 or 3 processes, the same verdict,
the same per-image cycles and the same mismatches (its STUB_BUG mutant) at the same global image
indices as with one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

from stub_core import stub_bundle, stub_core, stub_images  # noqa: E402

from sc_neurocore.bundle import random_bundle  # noqa: E402
from sc_neurocore.cli import main  # noqa: E402
from sc_neurocore.hw.stream import Traffic  # noqa: E402
from sc_neurocore.sim import runner  # noqa: E402
from sc_neurocore.sim.runner import available_simulators, run_regression  # noqa: E402

SIMS = available_simulators()


# -- pure Python ---------------------------------------------------------------

def test_shard_plan_covers_every_image_once():
    t = Traffic(gaps=0.1, resets=5, seed=7)
    one = runner._plan_shards(10, 1, t, "c")
    assert [(s.start, s.stop, s.traffic, s.case) for s in one] == [(0, 10, t, "c")]  # one process: unchanged
    three = runner._plan_shards(10, 3, t, "c")
    assert [(s.start, s.stop) for s in three] == [(0, 4), (4, 7), (7, 10)]
    assert [s.traffic.resets for s in three] == [2, 2, 1]
    assert [s.traffic.seed for s in three] == [runner.shard_seed(7, k) for k in range(3)]
    assert all(s.traffic.gaps == 0.1 and s.traffic.max_gap == t.max_gap for s in three)
    assert [s.case for s in three] == ["c-j3-0", "c-j3-1", "c-j3-2"]  # never a shared case folder
    assert len(runner._plan_shards(3, 8, t, "c")) == 3  # no empty shard
    assert len(runner._plan_shards(0, 4, t, "c")) == 1


def test_shard_seeds_are_derived_and_distinct():
    seeds = [runner.shard_seed(0, k) for k in range(8)]
    assert len(set(seeds)) == 8 and all(isinstance(s, int) and 0 <= s < 2 ** 32 for s in seeds)
    assert seeds == [runner.shard_seed(0, k) for k in range(8)]
    assert runner.shard_seed(1, 0) != runner.shard_seed(0, 0)
    assert runner.shard_seed(3, 1) == int(np.random.SeedSequence(3, spawn_key=(1,)).generate_state(1, np.uint32)[0])


def _res(checked, cycles, mismatches, wall, **kw):
    r = {"checked": checked, "mismatched_vectors": len({m["index"] for m in mismatches if m["field"] != "cycles"}),
         "mismatched_fields": len(mismatches), "mismatches": mismatches, "cycles": cycles, "cycle_mismatches":
         sum(m["field"] == "cycles" for m in mismatches), "cycles_checked": True, "wall_s": wall,
         "images_per_s": len(cycles) / wall, "sim_cycles": 100, "failed": 0, "stalled": False, "case_dir": "d",
         "process_wall_s": wall + 1, "stall_cycles": 9}
    r.update(kw)
    return r


def test_merge_makes_indices_global_and_keeps_what_one_process_would():
    shards = runner._plan_shards(5, 2, Traffic(), "c")  # images 0..2 and 3..4
    m = lambda i, f: {"index": i, "field": f, "expected": 1, "got": 2}  # noqa: E731
    a = _res(3, [10, 11, 12], [m(1, "class"), m(2, "score[0]"), m(2, "missing"), m(0, "cycles")], 2.0)
    b = _res(2, [13, 14], [m(0, "score[1]"), m(-1, "unexpected"), m(1, "cycles")], 4.0)
    r = runner._merge_shards(shards, [a, b], max_report=50)
    # field mismatches in beat order, then the results that never came out, then the latencies
    assert [(x["index"], x["field"]) for x in r["mismatches"]] == [
        (1, "class"), (2, "score[0]"), (3, "score[1]"), (-1, "unexpected"), (2, "missing"), (0, "cycles"),
        (4, "cycles")]
    assert r["cycles"] == [10, 11, 12, 13, 14]
    assert (r["vectors_checked"], r["mismatched_fields"], r["cycle_mismatches"], r["sim_cycles"]) == (5, 7, 2, 200)
    assert r["sim_wall_s"] == 4.0 and r["images_per_s"] == 5 / 4.0
    assert r["images_per_s_per_process"] == [1.5, 0.5]
    assert [(s["first_image"], s["n_images"]) for s in r["shards"]] == [(0, 3), (3, 2)]
    assert [x["index"] for x in runner._merge_shards(shards, [a, b], max_report=3)["mismatches"]] == [1, 2, 3]
    assert a["mismatches"][0]["index"] == 1 and b["mismatches"][0]["index"] == 0  # the inputs are not changed


def test_merge_of_a_crashed_shard():
    shards = runner._plan_shards(4, 2, Traffic(), "c")
    crashed = {"checked": 0, "mismatched_vectors": None, "mismatches": [], "cycle_mismatches": None, "failed": 1,
               "simulator_exit": 3, "case_dir": "bad", "log_tail": "boom"}
    r = runner._merge_shards(shards, [_res(2, [5, 5], [], 1.0), crashed], max_report=50)
    assert r["cycles"] == [5, 5, -1, -1] and r["mismatched_vectors"] is None and r["failed"] == 1
    assert r["case_dir"] == "bad" and r["log_tail"] == "boom" and r["images_per_s"] is None


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_run_regression_refuses_bad_jobs(jobs):
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        run_regression(random_bundle((4, 2), 1, seed=0), np.zeros((1, 4)), jobs=jobs)


def test_default_jobs_is_the_cpu_count():
    assert runner.default_jobs() >= 1
    assert runner._check_jobs(None) == runner.default_jobs() and runner._check_jobs(3) == 3


@pytest.fixture
def idx_dir(tmp_path):
    from sc_neurocore.data import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 4), ("t10k", 6)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 4, size=n, dtype=np.uint8))
    return tmp_path


@pytest.mark.parametrize("jobs", ["0", "-3"])
def test_cli_refuses_jobs_below_one(jobs, idx_dir, capsys, monkeypatch):
    monkeypatch.setattr("sc_neurocore.sim.runner.run_regression", lambda *a, **k: pytest.fail("the simulation ran"))
    assert main(["sim", "--random", "16-8-4", "--data-dir", str(idx_dir), "--jobs", jobs]) == 2
    assert f"--jobs must be at least 1 (simulator processes), not {jobs}" in capsys.readouterr().err


@pytest.mark.parametrize("argv, want", [([], None), (["--jobs", "3"], 3)])
def test_cli_passes_jobs(argv, want, idx_dir, monkeypatch, capsys):
    seen = {}

    def fake(bundle, x, y, **kw):
        seen.update(kw)
        return {"ok": True}

    monkeypatch.setattr("sc_neurocore.sim.runner.run_regression", fake)
    assert main(["sim", "--random", "16-8-4", "--data-dir", str(idx_dir), "--json"] + argv) == 0
    assert seen["jobs"] == want  # None: run_regression uses default_jobs(), the CPU count


# -- in the simulators ---------------------------------------------------------

_SAME = ("ok", "vectors_checked", "n_images", "mismatched_vectors", "mismatched_fields", "mismatches",
         "cycle_mismatches", "cycles_checked", "cycles", "cycles_mean", "failed", "stalled")


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("bug", [False, True], ids=["good", "mutant"])
def test_sharded_run_reports_what_one_process_does(sim, bug):
    x = stub_images(150, seed=11)
    runs = {j: run_regression(stub_bundle(), x, simulator=sim, core=stub_core(bug=bug), jobs=j,
                              case=f"pytest-par-{int(bug)}") for j in (1, 2, 3)}
    one = runs[1]
    assert one["jobs"] == 1 and one["cycles_checked"] and len(one["cycles"]) == 150
    if bug:  # class 2's score is off by one when odd: mismatches all over the run, more than the 50 kept
        bad = sorted({m["index"] for m in one["mismatches"]})
        assert not one["ok"] and one["mismatched_fields"] > 50 and len(one["mismatches"]) == 50
        assert bad[0] < 10 and bad[-1] > 50
    else:
        assert one["ok"] and one["mismatched_vectors"] == 0 and one["cycle_mismatches"] == 0
    for j in (2, 3):
        r = runs[j]
        assert r["jobs"] == j and len(r["shards"]) == j and len({s["case_dir"] for s in r["shards"]}) == j
        assert {k: r[k] for k in _SAME} == {k: one[k] for k in _SAME}, (j, r["mismatches"][:5], one["mismatches"][:5])
        assert all(v > 0 for v in r["images_per_s_per_process"]) and r["images_per_s"] > 0


@pytest.mark.sim
@pytest.mark.skipif("icarus" not in SIMS, reason="icarus not installed")
def test_sharded_run_with_shaped_traffic():
    x = stub_images(30, seed=12)
    r = run_regression(stub_bundle(), x, simulator="icarus", core=stub_core(), jobs=2, gaps=0.3, backpressure=0.3,
                       resets=3, seed=5, case="pytest-par-shaped")
    assert r["ok"] and r["vectors_checked"] == 30 and not r["cycles_checked"], r["mismatches"][:5]
    assert [(s["seed"], s["resets"]) for s in r["shards"]] == [(runner.shard_seed(5, 0), 2),
                                                                (runner.shard_seed(5, 1), 1)]
