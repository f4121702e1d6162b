"""A small 8N1 UART for the board tops (:mod:`sc_neurocore.hw.board`).

Two :class:`~amaranth.lib.wiring.Component` s with ``amaranth.lib.stream``
byte interfaces, both timed by an integer clock divisor (clock cycles per
bit, ``round(clk_hz / baud)``; see :func:`divisor_for`):

* :class:`UARTTx` - ``data`` (``In(stream.Signature(8))``) in, serial ``tx``
  out: start bit (0), 8 data bits LSB first, stop bit (1); ``data.ready`` is
  high while the transmitter is idle.
* :class:`UARTRx` - serial ``rx`` in (through a two-flip-flop synchroniser),
  ``data`` (``Out(stream.Signature(8))``) out.  The receiver finds the falling
  edge of a start bit, checks the line is still low half a bit later (a
  glitch is ignored), samples each data bit in its middle and checks the stop
  bit: a low stop bit is a framing error (``frame_error`` pulses for one
  cycle, the byte is dropped, and the receiver waits for the line to go high
  again before it looks for the next start bit, so a break is not read as a
  stream of ``0x00`` bytes).  A received byte waits in ``data.payload`` until
  ``data.ready``; if the next byte completes before that, the old one is
  overwritten and ``overrun`` pulses.

The line is idle high.  Both blocks sit in the ``sync`` domain.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTTx", "UARTRx", "check_divisor", "divisor_for", "MIN_DIVISOR", "MAX_BAUD_ERROR"]

#: Smallest divisor (clock cycles per bit) the receiver can sample with.
MIN_DIVISOR = 4
#: Largest relative difference between the wanted baud rate and ``clk_hz / divisor``.
MAX_BAUD_ERROR = 0.02


def check_divisor(divisor) -> int:
    """``divisor`` if it is an integer of at least :data:`MIN_DIVISOR`, else ``ValueError``."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} (clock cycles per bit), "
                         f"not {divisor!r}")
    return divisor


def divisor_for(clk_hz, baud) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``; the rate must be within 2 % of ``baud``."""
    for name, v in (("clk_hz", clk_hz), ("baud", baud)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v != v or v == float("inf"):
            raise ValueError(f"{name} must be a positive number, not {v!r}")
    div = round(clk_hz / baud)
    if div < MIN_DIVISOR:
        raise ValueError(f"baud must be at most clk_hz / {MIN_DIVISOR} = {clk_hz / MIN_DIVISOR:g}, not {baud!r}")
    err = abs(clk_hz / div - baud) / baud
    if err > MAX_BAUD_ERROR:
        raise ValueError(f"baud must be within {MAX_BAUD_ERROR:.0%} of clk_hz / an integer "
                         f"(nearest: {clk_hz / div:.1f} with divisor {div}), not {baud!r}")
    return div


class _DivisorChecked(wiring.Component):
    """A component whose first argument is a clock divisor, checked before the object exists.

    A component that raised in ``__init__`` would already be an elaboratable
    that is never used, and Amaranth would warn about it; validating in
    ``__new__`` means a rejected divisor creates nothing.
    """

    def __new__(cls, divisor, *args, **kwargs):
        check_divisor(divisor)
        return super().__new__(cls, src_loc_at=1)


class UARTTx(_DivisorChecked):
    """8N1 transmitter: ``data`` stream in, ``tx`` line out (idle high)."""

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        # Frame shifted out LSB first: start bit, 8 data bits, stop bit.
        shreg = Signal(10, init=0x3FF)
        bits_left = Signal(range(11))
        m.d.comb += [self.data.ready.eq(bits_left == 0), self.tx.eq(shreg[0])]
        with m.If(bits_left == 0):
            with m.If(self.data.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                             bits_left.eq(10), timer.eq(div - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits_left.eq(bits_left - 1), timer.eq(div - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UARTRx(_DivisorChecked):
    """8N1 receiver: ``rx`` line in, ``data`` stream out, ``frame_error`` / ``overrun`` pulses."""

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(div))
        bit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~rx):
                    # Middle of the start bit: half a bit from its first low sample.
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"                 # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    # LSB first: each bit enters at the top and moves down.
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(div - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                    m.d.comb += self.overrun.eq(self.data.valid & ~self.data.ready)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                # Wait for the line to return high before looking for a start bit.
                with m.If(rx):
                    m.next = "IDLE"
        return m

