"""cocotb test module for the board top (``sc_neurocore.hw.board_top.BoardTop``; run by :mod:`sc_neurocore.sim.board`).

The host side of a session, bit by bit on ``uart_rx``: each weight stream of the configuration
(its one-byte answer is read back from ``uart_tx``), then each image's bytes and its class byte.
``$SCN_SIM_CONFIG`` names a JSON file with ``divisor`` (clocks per bit), ``streams`` (paths of
files of raw bytes), ``images`` (``.npy``, (N, n_0) uint8) and ``results`` (where the answers and
classes are written).
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, FallingEdge


async def _send(dut, byte: int, div: int) -> None:
    """One 8N1 frame: start bit, data bits LSB first, stop bit."""
    for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
        dut.uart_rx.value = bit
        await ClockCycles(dut.clk, div)


async def _receiver(dut, div: int, out: Queue) -> None:
    """Sample ``uart_tx`` in the middle of each bit after a falling edge (the start bit)."""
    while True:
        await FallingEdge(dut.uart_tx)
        await ClockCycles(dut.clk, div // 2)
        byte = 0
        for i in range(8):
            await ClockCycles(dut.clk, div)
            byte |= int(dut.uart_tx.value) << i
        await ClockCycles(dut.clk, div)     # the stop bit
        out.put_nowait(byte)


@cocotb.test()
async def board_session(dut):
    with open(os.environ["SCN_SIM_CONFIG"]) as f:
        cfg = json.load(f)
    div = int(cfg["divisor"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.uart_rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 5)
    rx: Queue = Queue()
    cocotb.start_soon(_receiver(dut, div, rx))
    answers, classes = [], []
    for path in cfg["streams"]:
        with open(path, "rb") as f:
            for byte in f.read():
                await _send(dut, byte, div)
        answers.append(await rx.get())
    for image in np.load(cfg["images"]):
        for p in image:
            await _send(dut, int(p), div)
        classes.append(await rx.get())
    with open(cfg["results"], "w") as f:
        json.dump({"answers": answers, "classes": classes}, f)
