"""The UART (``sc_neurocore.hw.uart``) in Amaranth's simulator: 8N1 loopback, framing errors, the divisor checks.

The frame helpers (:func:`_sim`, :func:`_send_byte`, :func:`_recv_byte`) are shared with tests/test_hw_board_top.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from sc_neurocore.hw.uart import UARTRx, UARTTx, check_divisor, divisor_for


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
