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

A network whose weights do not fit an iCE40UP5K's block RAM but fit its SPRAMs is built with
``weight_memory="single_port"`` (:func:`board_config`): after configuration and after every reset
the board first takes a **weight stream** - a 5-byte header (``0x57``, bytes per word, number of
words as 24 bits little-endian), the words of ``CoreGeometry.weight_writes()`` in order, each
little-endian, and a CRC-8 (polynomial ``0x07``) of all of it - and answers ``0x06`` (accepted,
images next) or ``0x15`` (refused, send it again); :func:`~sc_neurocore.hw.boards.weight_stream`
makes it and ``sc-neurocore board --load PORT`` (:mod:`sc_neurocore.hw.host`) sends it.

If the line stays idle for ``idle_timeout`` seconds in the middle of an image (or a weight stream),
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
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from .board_top import BoardPins, BoardTop
from .boards import BOARDS, Board, board_config, fit_check, parse_board
from .config import CoreConfig
from .export import _network
from .tools import convert_verilog, ecp5_abc_lut4_platform_options, pin_builtin_yosys, tool_env

__all__ = ["BoardTop", "BoardPins", "Board", "BOARDS", "BoardError", "parse_board", "board_config",
           "fit_check", "build_bitstream", "write_board_verilog"]

PIN_TOP_NAME = "sc_neurocore_board"
# The repository's constraints/ folder, installed as the data package sc_neurocore.constraints
# (pyproject.toml), so that a wheel finds the files without the source tree.
CONSTRAINTS_DIR = Path(importlib.import_module("sc_neurocore.constraints").__file__).parent


class BoardError(RuntimeError):
    """The network does not fit the board, or a tool failed; the message has the numbers."""


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
    pin_builtin_yosys()   # the platform's in-process generation with Amaranth's own yosys
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
        # Yosys 0.70's ABC9 assertion (sc_neurocore.hw.tools): classic ABC for the LUTs.
        yosys = ecp5_abc_lut4_platform_options(name)
    plan = plat.build(_PlatformTop(b, top), name=name, do_build=False, **yosys,
                      nextpnr_opts=["--report", f"{name}.pnr.json", "--timing-allow-fail", "--seed", str(seed)])
    err = None
    try:
        plan.execute_local(str(build), env=tool_env("pnr"))
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
    b = parse_board(board)
    net = _network(bundle)
    cfg = config if config is not None else board_config(b, net)
    fit = fit_check(b, net, cfg)
    pins = BoardPins(b, net, cfg, baud=baud, idle_timeout=idle_timeout)
    text = convert_verilog(pins, name=PIN_TOP_NAME)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{PIN_TOP_NAME}.v").write_text(text)
    shutil.copy(CONSTRAINTS_DIR / b.constraints, out / b.constraints)
    return {"board": b.name, "verilog": str(out / f"{PIN_TOP_NAME}.v"),
            "constraints": str(out / b.constraints), "fit": fit, "config": cfg.to_dict()}


if __name__ == "__main__":  # thin alias: `sc-neurocore board ARGS` is `sc-neurocore board ARGS`
    from sc_neurocore.cli import main

    sys.exit(main(["board", *sys.argv[1:]]))
