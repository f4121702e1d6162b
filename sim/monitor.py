"""Output side: an AXI4-Stream sink for ``m_axis`` with optional random back-pressure.

Why not cocotbext-axi's ``AxiStreamSink``: it converts ``tdata`` with
``int()``, which raises inside its own coroutine (killing the test without a
result) when the core drives X/Z bits on a valid beat. This sink reports such
beats as mismatches instead (field ``x_bits``, the X bits read as 0) and is
as cheap: with back-pressure off it sleeps on the rising edge of
``m_axis_tvalid``, so a long computation costs no Python at all. Handshakes
are sampled just after the rising edge, like the driver.
"""

from __future__ import annotations

import numpy as np
import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge

from sc_neurocore.hw import stream

__all__ = ["OutputMonitor"]


def _bits(value) -> tuple[int, bool]:
    """``(int, has_x)`` of a LogicArray; X/Z bits read as 0."""
    try:
        return int(value), False
    except ValueError:
        s = str(value)
        return int("".join(c if c in "01" else "0" for c in s), 2), True


class OutputMonitor:
    """Receives output beats; calls ``callback(time_steps, class, scores, tlast, x_bits)`` for each, in order.

    ``backpressure``: probability that ``tready`` is low in a cycle (drawn
    from ``rng``), :attr:`sc_neurocore.hw.stream.Traffic.backpressure`; 0 keeps ``tready`` high.
    """

    def __init__(self, dut, clk, info, *, prefix: str = stream.M_AXIS, backpressure: float = 0.0,
                 rng: np.random.Generator | None = None, callback=None):
        self.info = info
        self.clk = clk
        self.tdata = getattr(dut, f"{prefix}_tdata")
        self.tvalid = getattr(dut, f"{prefix}_tvalid")
        self.tready = getattr(dut, f"{prefix}_tready")
        self.tlast = getattr(dut, f"{prefix}_tlast")
        self.backpressure = float(backpressure)
        self.rng = rng if rng is not None else np.random.default_rng(1)
        self.callback = callback
        self.received = 0
        self.x_valid = 0
        self._task = None

    def start(self) -> None:
        if self._task is None:
            self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _take(self) -> None:
        word, x = _bits(self.tdata.value)
        last, xl = _bits(self.tlast.value)
        self.received += 1
        cls, scores = self.info.unpack(word)
        if self.callback is not None:
            self.callback(get_sim_time(), cls, scores, bool(last) and not xl, str(self.tdata.value) if x else None)

    def _valid(self) -> bool:
        v = self.tvalid.value
        try:
            return bool(int(v))
        except ValueError:
            self.x_valid += 1
            return False

    async def _run(self) -> None:
        edge = RisingEdge(self.clk)
        rise = RisingEdge(self.tvalid)
        if self.backpressure <= 0:
            self.tready.value = 1
            while True:
                await edge
                if self._valid():
                    self._take()
                else:
                    await rise
        else:
            tready = self.tready
            p = self.backpressure
            while True:
                for r in self.rng.random(4096) >= p:
                    tready.value = int(r)
                    await edge
                    if r and self._valid():
                        self._take()
