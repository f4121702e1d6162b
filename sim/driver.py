"""AXI4-Stream source for the image input: one coroutine, bulk-packed beats, optional random idle gaps.

Per accepted beat the Python cost is one ``tdata`` write, one ``tready`` read
and one ``await`` of a shared :class:`~cocotb.triggers.RisingEdge`; ``tvalid``
and ``tlast`` are written only when they change. While the core holds
``tready`` low (e.g. computing an image) the driver sleeps on the rising edge
of ``tready`` instead of waking up every clock, then samples it at the next
clock edge exactly as before. Handshakes are sampled just
after the rising edge (the values the flops saw), as cocotbext-axi does.
"""

from __future__ import annotations

import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge

from sc_neurocore.hw import stream

__all__ = ["StreamDriver", "WeightWriter"]


class StreamDriver:
    """Drives ``<prefix>_tdata/tvalid/tlast`` and watches ``<prefix>_tready``.

    ``gaps``: probability of an idle gap before each beat, of 1..``max_gap``
    cycles (uniform), drawn from ``rng`` (:class:`sc_neurocore.hw.stream.Traffic`'s
    knobs). ``accept_times[index]`` is the sim time (steps) of the rising edge
    at which the first beat of image ``index`` was accepted.
    """

    def __init__(self, dut, clk, prefix: str = stream.S_AXIS, *, gaps: float = 0.0, max_gap: int = 3,
                 rng: np.random.Generator | None = None):
        self.clk = clk
        self.tdata = getattr(dut, f"{prefix}_tdata")
        self.tvalid = getattr(dut, f"{prefix}_tvalid")
        self.tlast = getattr(dut, f"{prefix}_tlast")
        self.tready = getattr(dut, f"{prefix}_tready")
        self.gaps = float(gaps)
        self.max_gap = int(max_gap)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.accept_times: dict[int, int] = {}
        self.sent = 0
        self.accepted = 0  # beats accepted so far (progress measure for the stall watchdog)
        self._edge = RisingEdge(clk)
        self._ready_rise = RisingEdge(self.tready)
        self._valid = 0
        self._last = 0
        self.idle()

    def idle(self) -> None:
        self.tvalid.value = 0
        self.tlast.value = 0
        self.tdata.value = 0
        self._valid = 0
        self._last = 0

    async def send(self, beats_per_image, indices=None, on_first_accept=None) -> None:
        """Send images (each a list of beat ints) back to back; returns when the last beat was accepted."""
        tdata, tvalid, tlast, tready = self.tdata, self.tvalid, self.tlast, self.tready
        edge = self._edge
        shaped = self.gaps > 0
        rng = self.rng
        for k, beats in enumerate(beats_per_image):
            index = indices[k] if indices is not None else self.sent
            n = len(beats)
            gap_before = None
            if shaped:
                gap_before = np.where(rng.random(n) < self.gaps, rng.integers(1, self.max_gap + 1, n), 0)
            for j in range(n):
                if shaped and gap_before[j]:
                    if self._valid:
                        tvalid.value = 0
                        self._valid = 0
                    await ClockCycles(self.clk, int(gap_before[j]))
                tdata.value = beats[j]
                last = 1 if j == n - 1 else 0
                if last != self._last:
                    tlast.value = last
                    self._last = last
                if not self._valid:
                    tvalid.value = 1
                    self._valid = 1
                await edge
                if not tready.value:
                    await self._until_ready()
                self.accepted += 1
                if j == 0:
                    self.accept_times[index] = get_sim_time()
                    if on_first_accept is not None:
                        on_first_accept(index)
            self.sent += 1
        if self._valid:
            tvalid.value = 0
            self._valid = 0
        if self._last:
            tlast.value = 0
            self._last = 0


    async def _until_ready(self) -> None:
        """Return at the first rising clock edge that samples ``tready`` high (called after one that did not).

        Same edge as polling ``tready`` at every clock: ``tready`` only goes high at some time ``t``, and the
        edges before ``t`` sample it low; the first edge after ``t`` samples it high unless it fell again.
        """
        while True:
            await self._ready_rise
            await self._edge
            if self.tready.value:
                return


class WeightWriter:
    """Drives the run-time weight port (``wgt_valid/layer/bank/addr/data``): one word per clock.

    The port has no ready (the core always accepts), so each word is held for
    exactly one rising edge.
    """

    def __init__(self, dut, clk):
        self.clk = clk
        self.valid, self.layer, self.bank = dut.wgt_valid, dut.wgt_layer, dut.wgt_bank
        self.addr, self.data = dut.wgt_addr, dut.wgt_data
        self.valid.value = 0
        self.written = 0

    async def write(self, words) -> None:
        """``words``: ``(layer, bank, addr, word)`` tuples, e.g. ``CoreGeometry.weight_writes(network)``."""
        edge = RisingEdge(self.clk)
        for layer, bank, addr, word in words:
            self.layer.value, self.bank.value, self.addr.value, self.data.value = layer, bank, addr, word
            self.valid.value = 1
            await edge
            self.written += 1
        self.valid.value = 0
