"""Synthesis and place-and-route of a small core with YoWASP (slow-ish: one ECP5 and one iCE40 run)."""

import json

import pytest

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.cli import main
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


# --- issue 12: synth -o is checked before the (minutes-long) run and gets both files or neither --------

def _fake_synth(calls):
    def fake(bundle, config, device, use_cache=True, timeout=7200):
        calls.append(device)
        return {"device": device, "fits": True, "fmax_mhz": 50.0, "utilisation": {},
                "latency": {"worst_case_cycles": 100}}
    return fake


@pytest.mark.parametrize("kind", ["file", "fifo-json", "fifo-md", "link-md", "dir-md"])
def test_synth_cli_checks_the_output_before_running(tmp_path, capsys, monkeypatch, kind):
    import os

    calls = []
    monkeypatch.setattr("sc_neurocore.cli.synth._synth_bundle", _fake_synth(calls))
    p = save_bundle(random_bundle((8, 4, 3), 2), tmp_path / "b.scnb")
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
        message = "is not a directory"
    else:
        out.mkdir()
        what, name = kind.split("-")
        target = out / f"synth.{name}"
        if what == "fifo":
            os.mkfifo(target)
            message = "it is a FIFO"
        elif what == "link":
            (tmp_path / "elsewhere.md").write_text("keep")
            os.symlink(tmp_path / "elsewhere.md", target)
            message = "it is a symbolic link"
        else:
            target.mkdir()
            message = "it is a directory"
    before = sorted(str(q.relative_to(tmp_path)) for q in tmp_path.rglob("*"))
    assert main(["synth", str(p), "--device", "ecp5-25f", "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert calls == []  # refused before any synthesis
    assert sorted(str(q.relative_to(tmp_path)) for q in tmp_path.rglob("*")) == before  # no synth.json alone
    # with the obstacle gone, the folder gets both reports
    if kind == "file":
        out.unlink()
    elif kind == "dir-md":
        target.rmdir()
    else:
        target.unlink()
    assert main(["synth", str(p), "--device", "ecp5-25f", "-o", str(out)]) == 0
    assert calls == ["ecp5-25f"] and sorted(q.name for q in out.iterdir()) == ["synth.json", "synth.md"]
    assert json.loads((out / "synth.json").read_text())["worst_case_latency_us"] == 2.0


def test_synth_cli_checks_device_before_loading(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "missing.scnb"), "--device", "xc7"]) == 2
    assert "device must be one of" in capsys.readouterr().err
