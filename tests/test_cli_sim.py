"""``sc-neurocore sim`` and ``sc_neurocore.sim.run_regression`` (small IDX dataset, small random cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.cli import main
from sc_neurocore.data import write_idx
from sc_neurocore.sim.runner import available_simulators

try:
    import sc_neurocore.hw.export  # noqa: F401
    HAVE_HW = True
except ImportError:  # pragma: no cover
    HAVE_HW = False

need_hw = pytest.mark.skipif(not HAVE_HW, reason="sc_neurocore.hw.export not available")
need_icarus = pytest.mark.skipif("icarus" not in available_simulators(), reason="icarus not installed")


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 8), ("t10k", 12)):
        x = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
        x[0] = 0
        x[1] = 255
        write_idx(d / f"{prefix}-images-idx3-ubyte", x)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 4, size=n, dtype=np.uint8))
    return d


@pytest.mark.parametrize("argv, msg", [
    (["sim", "--random", "16-8-4", "--simulator", "modelsim"], "--simulator"),
    (["sim", "--random", "16-8-4", "--n", "0"], "--n"),
    (["sim", "--random", "16-8-4", "--gaps", "1.5"], "--gaps"),
    (["sim", "--random", "16-x-4"], "--random"),
    (["sim"], "bundle"),
    (["sim", "--random", "20-8-4"], "inputs"),
])
def test_sim_usage_errors(argv, msg, idx_dir, capsys):
    assert main(argv + ["--data-dir", str(idx_dir)]) == 2
    assert msg in capsys.readouterr().err


@pytest.mark.sim
@need_hw
@need_icarus
def test_sim_cli_icarus_json(idx_dir, tmp_path, capsys):
    b = random_bundle((16, 8, 4), 3, seed=2, readout="spike_count")
    path = save_bundle(b, tmp_path / "b.scnb")
    rc = main(["sim", str(path), "--data-dir", str(idx_dir), "--simulator", "icarus", "--n", "6", "--json",
               "--pixels-per-beat", "4"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["vectors_checked"] == 6 and out["mismatched_vectors"] == 0 and out["ok"]
    assert out["cycles_checked"] and out["cycle_mismatches"] == 0 and out["images_per_s"] > 0


@pytest.mark.sim
@need_hw
@need_icarus
def test_sim_cli_single_port_core_gets_its_weights_through_the_port(idx_dir, tmp_path, capsys):
    """``--weight-port --weight-memory single_port --lanes 2,4 --events 2,2``: the core has no weights of its
    own, so every correct score shows the port's writes landed; per-layer options reach the generator."""
    b = random_bundle((16, 8, 4), 3, seed=4)
    path = save_bundle(b, tmp_path / "b.scnb")
    rc = main(["sim", str(path), "--data-dir", str(idx_dir), "--simulator", "icarus", "--n", "8", "--json",
               "--pixels-per-beat", "4", "--lanes", "2,4", "--events", "2,2", "--weight-port",
               "--weight-memory", "single_port"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["vectors_checked"] == 8 and out["mismatched_vectors"] == 0 and out["cycle_mismatches"] == 0


def test_sim_cli_refuses_single_port_without_the_port(idx_dir, capsys):
    assert main(["sim", "--random", "16-8-4", "--data-dir", str(idx_dir), "--weight-memory", "single_port"]) == 2
    assert "weight_memory='single_port' needs weight_port=True" in capsys.readouterr().err


@pytest.mark.sim
@need_hw
@need_icarus
def test_run_regression_reports_traffic_shaping(idx_dir):
    from sc_neurocore.data import load_idx_dir
    from sc_neurocore.sim import run_regression

    ds = load_idx_dir(idx_dir)
    b = random_bundle((16, 8, 4), 2, seed=3)
    r = run_regression(b, ds.test_x, ds.test_y, simulator="icarus", n=10, gaps=True, backpressure=True, seed=4)
    assert r["ok"] and r["vectors_checked"] == 10 and r["mismatched_vectors"] == 0
    assert not r["cycles_checked"]  # cycles are only compared with the model without gaps/back-pressure
    assert 0.0 <= r["accuracy"] <= 1.0


@pytest.mark.parametrize("argv, msg", [
    (["sim", "--random", "16"], "--random must be an input size and at least one layer size joined by '-'"),
    (["sim", "--random", "16-0-4"], "--random: every size must be at least 1, not '16-0-4'"),
    # the labels of the test set are 0..3: a 3-class bundle cannot be scored on them
    (["sim", "--random", "16-8-3"], "test labels range over 0..3 but the bundle has 3 classes (labels 0..2)"),
])
def test_sim_refuses_bad_sizes_and_labels(argv, msg, idx_dir, capsys, monkeypatch):
    def no_run(*a, **k):
        raise AssertionError("the simulation ran")

    monkeypatch.setattr("sc_neurocore.sim.runner.run_regression", no_run)
    assert main(argv + ["--data-dir", str(idx_dir)]) == 2
    assert msg in capsys.readouterr().err
