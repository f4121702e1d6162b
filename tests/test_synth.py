"""Synthesis and place-and-route of a small core with YoWASP (slow-ish: one ECP5 and one iCE40 run)."""

import json

import pytest

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.cli import main
from sc_neurocore.hw.export import generate_verilog
from sc_neurocore.synth import DEVICES, parse_device, synth_wrapper, synthesize


@pytest.fixture(scope="module")
def tiny_core(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    generate_verilog(random_bundle((8, 4, 3), 2, weight_bits=4, seed=3), d)
    return d


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SC_NEUROCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_ecp5_place_and_route_reports_and_caches(tiny_core, cache):
    r = synthesize(tiny_core, "ecp5-25f")
    assert r["fits"] and not r["cached"] and r["device"] == "ecp5-25f"
    assert r["fmax_mhz"] > 10
    u = r["utilisation"]
    assert 0 < u["lut"]["used"] < u["lut"]["available"] == DEVICES["ecp5-25f"].luts
    assert u["ff"]["used"] > 0
    assert r["latency"]["worst_case_cycles"] == json.loads((tiny_core / "report.json").read_text())["latency"]["worst_case_cycles"]
    again = synthesize(tiny_core, "ecp5-25f")
    assert again["cached"] and again["utilisation"] == u and len(list(cache.rglob("*.json"))) == 1


def test_ice40_too_small_says_so_with_numbers(tmp_path, cache):
    # 64 inputs x 64 neurons with all lanes: far more multipliers than the UP5K's 8 DSPs.
    d = tmp_path / "big"
    generate_verilog(random_bundle((64, 64, 4), 1, seed=0), d)
    r = synthesize(d, "ice40-up5k")
    assert r["fits"] is False and r["reason"].startswith("does not fit:")
    assert "/8" in r["reason"] or "/5280" in r["reason"]


def test_wrapper_has_narrow_ports(tiny_core):
    v = synth_wrapper(json.loads((tiny_core / "report.json").read_text()))
    assert "input  wire [7:0]  in_data" in v and "output wire [15:0] out_class" in v
    assert "sc_neurocore_top core" in v


def test_bad_device():
    with pytest.raises(ValueError, match=r"device must be one of ecp5-85f, ecp5-25f, ice40-up5k, not 'xc7'"):
        parse_device("xc7")


def test_synth_cli_bad_device(tmp_path, capsys):
    p = save_bundle(random_bundle((8, 4, 3), 2), tmp_path / "b.scnb")
    assert main(["synth", str(p), "--device", "xc7"]) == 2
    assert "device must be one of" in capsys.readouterr().err


def test_synth_cli_bad_timeout(tmp_path, capsys):
    p = save_bundle(random_bundle((8, 4, 3), 2), tmp_path / "b.scnb")
    assert main(["synth", str(p), "--device", "ecp5-25f", "--timeout", "0"]) == 2
    assert "--timeout must be a positive number of seconds, not 0.0" in capsys.readouterr().err


def test_synth_without_report(tmp_path):
    with pytest.raises(ValueError, match="has no report.json"):
        synthesize(tmp_path, "ecp5-25f")
