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
    assert np.array_equal(_wrapper_classes(tmp_path, rep, images), expected)


def _wrapper_classes(d, rep, images, load=()) -> "np.ndarray":
    """The classes the synthesis wrapper around the core in ``d`` puts out for ``images``, on Icarus: each
    pixel a byte (``in_last`` on an image's last); ``load``: Verilog statements run first (``shift(byte)``,
    ``commit``: the wrapper's weight port)."""
    import subprocess

    import numpy as np

    n = images.shape[1]
    stim = "\n".join(f"        send(8'd{int(p)}, 1'b{int(i == n - 1)});" for img in images for i, p in enumerate(img))
    ported = bool(rep.get("weight_port"))
    (d / "synth_top.v").write_text(synth_wrapper(rep))
    (d / "tb.v").write_text(f"""
module tb;
    reg clk = 0, rst = 1, in_valid = 0, in_last = 0, wgt_shift = 0, wgt_commit = 0;
    reg [7:0] in_data = 0;
    wire in_ready, out_valid, out_parity;
    wire [15:0] out_class;
    always #5 clk = !clk;
    sc_neurocore_synth_top dut(.clk(clk), .rst(rst), .in_data(in_data), .in_valid(in_valid), .in_last(in_last),
        .in_ready(in_ready), .out_class(out_class), .out_valid(out_valid), .out_ready(1'b1),
        {".wgt_shift(wgt_shift), .wgt_commit(wgt_commit)," if ported else ""} .out_parity(out_parity));
    always @(posedge clk) if (out_valid) $display("CLASS %0d", out_class);
    task shift(input [7:0] b);
        begin in_data <= b; wgt_shift <= 1; @(posedge clk); wgt_shift <= 0; end
    endtask
    task commit;
        begin wgt_commit <= 1; @(posedge clk); wgt_commit <= 0; end
    endtask
    task send(input [7:0] b, input l);
        begin
            in_data <= b; in_last <= l; in_valid <= 1;
            @(posedge clk); while (!in_ready) @(posedge clk);
            in_valid <= 0;
        end
    endtask
    initial begin
        repeat (3) @(posedge clk); rst <= 0;
{chr(10).join(load)}
{stim}
        repeat (2000) @(posedge clk);
        $finish;
    end
endmodule
""")
    subprocess.run(["iverilog", "-g2012", "-o", str(d / "sim"), str(d / "tb.v"),
                    str(d / "synth_top.v"), str(d / "sc_neurocore_top.v")], check=True)
    out = subprocess.run(["vvp", "-n", str(d / "sim")], capture_output=True, text=True, check=True).stdout
    return np.array([int(line.split()[1]) for line in out.splitlines() if line.startswith("CLASS")])


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


@pytest.mark.parametrize("weight_memory", ["block", "single_port"])
def test_wrapper_loads_weights_through_its_byte_port(tmp_path, weight_memory):
    """A core with a weight port keeps it in the synthesis wrapper: every word of ``weight_writes()`` shifted
    in a byte at a time (``wgt_shift``) and written (``wgt_commit``), then images classify equal to the golden
    model. The block-RAM core starts from the weights of another network, the single-port one from none, so
    a lost or misplaced write would show as wrong classes."""
    import shutil

    import numpy as np

    from sc_neurocore.golden import infer
    from sc_neurocore.hw.config import CoreConfig

    if not (shutil.which("iverilog") and shutil.which("vvp")):
        pytest.skip("Icarus Verilog not installed")
    b = random_bundle((11, 6, 4), 2, seed=5)
    cfg = CoreConfig(lanes=(3, 2), events=(2, 2), pixels_per_beat=4, weight_port=True, weight_memory=weight_memory)
    other = random_bundle((11, 6, 4), 2, seed=6)
    rep = generate_verilog(other if weight_memory == "block" else b, tmp_path, config=cfg)
    widths = {k: int(v) for k, v in rep["weight_port"]["ports"].items()}
    fields = [widths[k] for k in ("wgt_data", "wgt_addr", "wgt_bank", "wgt_layer")]
    nbytes = -(-sum(fields) // 8)
    load = []
    for layer, bank, addr, word in cfg.geometry(b.network).weight_writes():
        packed = word | addr << fields[0] | bank << (fields[0] + fields[1]) | layer << (fields[0] + fields[1] + fields[2])
        load += [f"        shift(8'd{(packed >> (8 * i)) & 0xFF});" for i in reversed(range(nbytes))]
        load.append("        commit;")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (10, 11)) * (rng.random((10, 11)) < 0.6)
    expected = infer(b.network, images).classes
    assert len(set(expected.tolist())) > 1
    assert np.array_equal(_wrapper_classes(tmp_path, rep, images, load), expected)


def test_up5k_synthesis_puts_single_port_banks_in_spram(tmp_path, cache):
    """Generated for the ice40-up5k, a single-port core's banks are SB_SPRAM256KA cells (yosys does not infer
    them): yosys counts exactly the cells the resource model predicts, and no block RAM for the weights."""
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.resources import estimate

    b = random_bundle((40, 12, 4), 2, weight_bits=4, seed=1)
    cfg = CoreConfig(lanes=(4, 2), events=(2, 2), weight_port=True, weight_memory="single_port")
    generate_verilog(b, tmp_path / "up5k", config=cfg, device="ice40-up5k")
    generate_verilog(b, tmp_path / "generic", config=cfg)
    r = synthesize(tmp_path / "up5k", "ice40-up5k", place=False)
    est = estimate(b.network, cfg, "ice40-up5k")
    assert r["yosys"]["spram"] == est.spram == 4 and r["yosys"]["bram"] == est.bram == 0
    generic = synthesize(tmp_path / "generic", "ice40-up5k", place=False)
    assert generic["yosys"]["spram"] == 0 and generic["yosys"]["bram"] == estimate(b.network, cfg, "ice40").bram > 0


_PACKED_LOG = """Info: Device utilisation:
Info: \t         ICESTORM_LC:    {lc}/   5280   114%
Info: \t        ICESTORM_RAM:       0/     30     0%
Info: \t               SB_IO:      34/     39    87%
Info: \t        ICESTORM_DSP:       4/      8    50%
Info: \t      ICESTORM_SPRAM:       4/      4   100%
ERROR: Failed to expand region (0, 0) |_> (25, 31) of 6049 ICESTORM_LCs
"""


def test_a_design_over_the_device_after_packing_is_a_measured_misfit():
    """yosys's cells fit the UP5K but nextpnr's packed logic cells do not (its log, shortened from a real
    6 049-LC run): the result says what is over, with nextpnr's count; another failure stays an error."""
    from sc_neurocore.hw.synth import SynthError, _overfull

    r = _overfull(_PACKED_LOG.format(lc=6049), DEVICES["ice40-up5k"], {"ff": 4400})
    assert r["fits"] is False and r["reason"] == "does not fit after packing: LUT 6049/5280"
    assert r["utilisation"]["lut"] == {"used": 6049, "available": 5280}
    assert r["utilisation"]["ff"] == {"used": 4400, "available": 5280} and r["utilisation"]["spram"]["used"] == 4
    with pytest.raises(SynthError, match="nextpnr failed for ice40-up5k"):
        _overfull(_PACKED_LOG.format(lc=5000), DEVICES["ice40-up5k"], {"ff": 4400})


def test_pack_only_counts_the_logic_cells_the_placed_run_uses(tiny_core, cache):
    """``place="pack"`` (the iCE40 calibration runs that do not place near a full chip): nextpnr's packer
    alone gives the same logic-cell count as the full run, in its own cache entry, and no Fmax."""
    packed = synthesize(tiny_core, "ice40-up5k", place="pack")
    placed = synthesize(tiny_core, "ice40-up5k")
    assert packed["packed_only"] and packed["fmax_mhz"] is None and packed["fits"] and not packed["cached"]
    assert packed["utilisation"]["lut"]["used"] == placed["utilisation"]["lut"]["used"] > 0
    assert packed["utilisation"]["ff"] == placed["utilisation"]["ff"] and placed["fmax_mhz"] > 10
    assert synthesize(tiny_core, "ice40-up5k", place="pack")["cached"]
