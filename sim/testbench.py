"""The testbench: clock, reset, driver, output monitor, golden model and in-order checker, owned together."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, RisingEdge, Timer
from cocotb.utils import get_sim_steps

from sc_neurocore.hw import stream

from .checker import InOrderChecker
from .driver import StreamDriver
from .model import INPUT_BEATS, CoreInfo
from .monitor import OutputMonitor

__all__ = ["Testbench"]


class Testbench:
    """Owns the parts; :meth:`start`, :meth:`reset`, :meth:`run`, :meth:`reset_during`, :meth:`stop`.

    ``traffic`` (:class:`~sc_neurocore.hw.stream.Traffic`): idle gaps before
    input beats and back-pressure on ``m_axis_tready``, drawn from its seed
    (its ``resets`` are scheduled by the caller, :mod:`sc_neurocore.sim.tb_core`).
    ``pack``: ``(samples, pixels_per_beat) -> beats of every sample``, the
    packer of the network's input kind (:data:`~sc_neurocore.sim.model.INPUT_BEATS`).
    Cycles per image are measured from the rising edge that accepts the first
    input beat to the rising edge that transfers the output beat.
    """

    def __init__(self, dut, info: CoreInfo, *, traffic: stream.Traffic = stream.Traffic(), period_ns: int = 10,
                 max_report: int = 50, pack: Callable | None = None):
        self.dut = dut
        self.info = info
        self.clk = dut.clk
        self.rst = dut.rst
        self.period_ns = period_ns
        self.period_steps = get_sim_steps(period_ns, "ns")
        self.pack = pack if pack is not None else INPUT_BEATS.get("pixels")
        rng = np.random.default_rng(traffic.seed)
        self.driver = StreamDriver(dut, dut.clk, stream.S_AXIS, gaps=traffic.gaps, max_gap=traffic.max_gap,
                                   rng=np.random.default_rng(rng.integers(1 << 62)))
        self.monitor = OutputMonitor(dut, dut.clk, info, backpressure=traffic.backpressure,
                                     rng=np.random.default_rng(rng.integers(1 << 62)), callback=self._on_output)
        self.checker = InOrderChecker(max_report=max_report)
        self.cycles: dict[int, int] = {}
        self._expected: dict[int, tuple[int, list]] = {}
        self._done = Event()
        self._want = 0
        self._clock_task = None
        self._drive_task = None
        self.sim_seconds = 0.0
        self.stalled = False
        self.last_output_steps = 0

    # -- life cycle -------------------------------------------------------
    async def start(self) -> None:
        self.rst.value = 1
        self.dut.m_axis_tready.value = 0
        if self._clock_task is None:
            self._clock_task = cocotb.start_soon(Clock(self.clk, self.period_ns, unit="ns").start())
        self.monitor.start()
        await self.reset()

    def stop(self) -> None:
        self._cancel_drive()
        self.monitor.stop()
        if self._clock_task is not None:
            self._clock_task.cancel()
            self._clock_task = None

    def _cancel_drive(self) -> None:
        if self._drive_task is not None and not self._drive_task.done():
            self._drive_task.cancel()
        self._drive_task = None

    async def reset(self, cycles: int = 3) -> list[int]:
        """Synchronous reset for ``cycles`` clocks; aborts the image being sent and forgets those in flight."""
        self._cancel_drive()
        self.driver.idle()
        self.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.rst.value = 0
        dropped = self.checker.flush()
        for i in dropped:
            self._expected.pop(i, None)
        await RisingEdge(self.clk)
        return dropped

    # -- traffic ----------------------------------------------------------
    def _on_accept(self, index: int) -> None:
        cls, scores = self._expected[index]
        self.checker.expect(index, cls, scores)

    def _on_output(self, t: int, cls: int, scores, single_beat: bool, x_bits: str | None) -> None:
        index, _ = self.checker.observe(cls, scores)
        if x_bits is not None:
            self.checker.report_x(index, x_bits)
        if index >= 0:
            t0 = self.driver.accept_times.get(index)
            if t0 is not None:
                self.cycles[index] = (t - t0) // self.period_steps
            self._expected.pop(index, None)
        if not single_beat:
            self.checker.report_field(index, "tlast", 1, 0)
        self.last_output_steps = t
        if self.monitor.received >= self._want:
            self._done.set()

    def _arm(self, images, classes, scores, first_index):
        beats = self.pack(images, self.info.pixels_per_beat)
        idx = list(range(first_index, first_index + len(beats)))
        for k, i in enumerate(idx):
            self._expected[i] = (int(classes[k]), scores[k])
        return beats, idx

    async def run(self, images: np.ndarray, classes, scores, *, first_index: int = 0,
                  stall_cycles: int = 200_000) -> None:
        """Send ``images`` back to back and wait until every result came out (or the core stalls)."""
        beats, idx = self._arm(images, classes, scores, first_index)
        self._want = self.monitor.received + len(beats)
        self._done.clear()
        t_wall = time.perf_counter()
        self._drive_task = cocotb.start_soon(self.driver.send(beats, idx, self._on_accept))
        await self._wait_for_results(len(beats), stall_cycles)
        self.sim_seconds += time.perf_counter() - t_wall

    async def _wait_for_results(self, n_sent: int, stall_cycles: int) -> None:
        """Wait until ``self._want`` results came out; a stall is ``stall_cycles`` without progress in or out."""
        step = Timer(stall_cycles * self.period_ns, "ns")
        last = (-1, -1)
        while self.monitor.received < self._want:
            await First(self._done.wait(), step)
            progress = (self.monitor.received, self.driver.accepted)
            if self.monitor.received < self._want and progress == last:
                self.dut._log.error("no progress for %d cycles: %d of %d results missing", stall_cycles,
                                    self._want - self.monitor.received, n_sent)
                self.stalled = True
                self._cancel_drive()
                self.driver.idle()
                break
            last = progress

    async def reset_during(self, image: np.ndarray, cls, scores, index: int, delay_cycles: int,
                           stall_cycles: int = 200_000) -> list[int]:
        """Start sending ``image``, reset ``delay_cycles`` after its first beat was accepted; returns dropped indices."""
        beats, idx = self._arm(image[None, :], [cls], [scores], index)
        accepted = Event()

        def on_accept(i):
            self._on_accept(i)
            accepted.set()

        self._drive_task = cocotb.start_soon(self.driver.send(beats, idx, on_accept))
        await First(accepted.wait(), ClockCycles(self.clk, stall_cycles))
        if not accepted.is_set():
            self.dut._log.error("the core did not accept an input beat for %d cycles", stall_cycles)
            self.stalled = True
            await self.reset()
            self._expected.pop(index, None)
            return []
        if delay_cycles:
            await ClockCycles(self.clk, delay_cycles)
        dropped = await self.reset()
        self._expected.pop(index, None)
        return dropped
