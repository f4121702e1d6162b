"""Synthesis and place-and-route of a small core with YoWASP (``sc_neurocore.hw.synth``; slow-ish: one ECP5 and one
iCE40 run). The ``synth`` subcommand is in tests/test_cli_synth.py."""

import json

import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.export import generate_verilog
from sc_neurocore.hw.synth import DEVICES, parse_device, synth_wrapper, synthesize


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


def test_synth_without_report(tmp_path):
    with pytest.raises(ValueError, match="has no report.json"):
        synthesize(tmp_path, "ecp5-25f")


@pytest.mark.parametrize("ppb", [3, 8])
def test_wrapper_computes_the_golden_classes(tmp_path, ppb):
    """The synthesised design is the wrapper + core: feed images byte by byte through the
    wrapper on Icarus and compare the classes with the golden model (so a wrong byte lane
    or a lost beat would show up as wrong classes, not only as a different Fmax)."""
    import shutil
    import subprocess

    import numpy as np

    from sc_neurocore.golden import infer

    if not (shutil.which("iverilog") and shutil.which("vvp")):
        pytest.skip("Icarus Verilog not installed")
    b = random_bundle((11, 6, 4), 2, seed=5)
    rep = generate_verilog(b, tmp_path, pixels_per_beat=ppb)
    rng = np.random.default_rng(ppb)
    images = rng.integers(0, 256, (12, 11)) * (rng.random((12, 11)) < 0.6)
    expected = infer(b.network, images).classes
    assert len(set(expected.tolist())) > 1
    stim = "\n".join(
        f"        send(8'd{int(p)}, 1'b{int(i == 10)});" for img in images for i, p in enumerate(img))
    (tmp_path / "synth_top.v").write_text(synth_wrapper(rep))
    (tmp_path / "tb.v").write_text(f"""
module tb;
    reg clk = 0, rst = 1, in_valid = 0, in_last = 0;
    reg [7:0] in_data = 0;
    wire in_ready, out_valid, out_parity;
    wire [15:0] out_class;
    always #5 clk = !clk;
    sc_neurocore_synth_top dut(.clk(clk), .rst(rst), .in_data(in_data), .in_valid(in_valid), .in_last(in_last),
        .in_ready(in_ready), .out_class(out_class), .out_valid(out_valid), .out_ready(1'b1), .out_parity(out_parity));
    always @(posedge clk) if (out_valid) $display("CLASS %0d", out_class);
    task send(input [7:0] d, input l);
        begin
            in_data <= d; in_last <= l; in_valid <= 1;
            @(posedge clk); while (!in_ready) @(posedge clk);
            in_valid <= 0;
        end
    endtask
    initial begin
        repeat (3) @(posedge clk); rst <= 0;
{stim}
        repeat (2000) @(posedge clk);
        $finish;
    end
endmodule
""")
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), str(tmp_path / "tb.v"),
                    str(tmp_path / "synth_top.v"), str(tmp_path / "sc_neurocore_top.v")], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True, check=True).stdout
    got = [int(line.split()[1]) for line in out.splitlines() if line.startswith("CLASS")]
    assert np.array_equal(np.array(got), expected)


def test_yosys_only_run_counts_cells_and_caches_apart(tiny_core, cache):
    """``place=False`` (the resource model's calibration runs): yosys's counts, no Fmax, its own cache entry;
    the counts are those the placed run starts from, and the resource model predicts BRAM and DSP exactly."""
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.resources import estimate

    r = synthesize(tiny_core, "ecp5-25f", place=False)
    assert r["synth_only"] and r["fmax_mhz"] is None and r["fits"] and not r["cached"]
    assert r["yosys"]["lut"] > 0 and r["yosys"]["ff"] > 0 and r["yosys_cells"]["TRELLIS_FF"] == r["yosys"]["ff"]
    assert {k: v["used"] for k, v in r["utilisation"].items()} == r["yosys"]
    placed = synthesize(tiny_core, "ecp5-25f")
    assert not placed["cached"] and placed["yosys"] == r["yosys"] and placed["fmax_mhz"] > 10
    assert synthesize(tiny_core, "ecp5-25f", place=False)["cached"]
    est = estimate(random_bundle((8, 4, 3), 2, weight_bits=4, seed=3).network, CoreConfig(), "ecp5-25f")
    assert (est.bram, est.dsp) == (r["yosys"]["bram"], r["yosys"]["dsp"])
