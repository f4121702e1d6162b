"""Drive :class:`~sc_neurocore.hw.core.AXIStreamTop` in Amaranth's simulator.

:func:`simulate` streams images through the AXI4-Stream ports cycle by
cycle, optionally with random gaps on the input and random back-pressure on
the output (a :class:`~sc_neurocore.hw.stream.Traffic`, the same knobs as the
cocotb testbench) and a synchronous reset in the middle, and returns the
decoded results with the cycle counts the latency model predicts (first
input beat accepted -> output beat valid). Beats are packed by the input
kind's packer (:data:`sc_neurocore.hw.stream.INPUT_BEATS`, also the cocotb testbench's)
and decoded by :func:`sc_neurocore.hw.stream.unpack_result`, like in the
cocotb testbench.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sc_neurocore.params import NetworkParams

from . import stream
from .config import CoreConfig
from .stream import Traffic

__all__ = ["SimResult", "simulate"]

@dataclass
class SimResult:
    classes: np.ndarray          # (B,)
    scores: np.ndarray           # (B, n_classes)
    cycles: np.ndarray           # (B,) first beat accepted -> output valid
    total_cycles: int


def simulate(network: NetworkParams, images, config: CoreConfig | None = None, *,
             traffic: Traffic = Traffic(), reset_after: int | None = None, max_cycles: int = 200_000,
             vcd: str | None = None, weight_writes=None) -> SimResult:
    """Run ``images`` (B, n_0) through the core; see the module docstring.

    ``traffic``: before each input beat an idle gap (``s_axis_tvalid`` low) of
    1..``max_gap`` cycles with probability ``gaps``; ``m_axis_tready`` low in
    a cycle with probability ``backpressure``; drawn from ``seed``
    (``resets`` must be 0: this bench takes one reset at ``reset_after``).
    ``reset_after``: assert ``rst`` for one cycle after that many cycles, then
    restart the stream from the first image (results produced before the
    reset are discarded). ``weight_writes``: ``(layer, bank, addr, word)``
    tuples written through the weight port (``CoreConfig(weight_port=True)``),
    one per cycle, before the first image; cycle counts start after them.
    """
    from amaranth.hdl import ClockDomain, Module
    from amaranth.sim import Simulator

    from .core import build_core

    if not isinstance(traffic, Traffic):
        raise TypeError(f"traffic must be a Traffic, not {type(traffic).__name__}")
    if traffic.resets:
        raise ValueError("simulate takes one reset at reset_after, not Traffic.resets "
                         "(random resets are for the cocotb testbench)")
    top = build_core(network, config or CoreConfig())
    from sc_neurocore.golden import INPUTS as GOLDEN_INPUTS

    # a batch of samples of the network's input kind (images (B, n); event rasters (B, T, n))
    images = GOLDEN_INPUTS(network.input).check(network.input, images, top.geometry.n_inputs, network.T)
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.top = top
    bench = _StreamBench(top, cd, stream.input_beats(network, images, top.geometry.pixels_per_beat), traffic,
                         reset_after, max_cycles, weight_writes)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench.run)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return bench.result()


class _StreamBench:
    """The Amaranth testbench of :func:`simulate`: one cycle of both streams per :meth:`_cycle`."""

    def __init__(self, top, cd, beats: list[list[int]], traffic: Traffic, reset_after: int | None,
                 max_cycles: int, weight_writes):
        self.top, self.cd, self.beats, self.traffic = top, cd, beats, traffic
        self.geom = top.geometry
        self.rng = np.random.default_rng(traffic.seed)
        self.reset_after, self.max_cycles, self.weight_writes = reset_after, max_cycles, weight_writes
        self.cycle = 0
        self._restart()

    def _restart(self) -> None:
        """Back to the first beat of the first image, with no result kept."""
        self.img, self.beat, self.done, self.valid_since = 0, 0, 0, None
        self.first_accept: dict[int, int] = {}
        self.classes: list[int] = []
        self.scores: list[list[int]] = []
        self.cycles: list[int] = []
        self._draw_gap()

    def _draw_gap(self) -> None:
        """Idle cycles before the next input beat (Traffic.gaps / max_gap)."""
        t = self.traffic
        self.gap_left = int(self.rng.integers(1, t.max_gap + 1)) if t.gaps and self.rng.random() < t.gaps else 0

    async def run(self, ctx) -> None:
        await self._write_weights(ctx)
        while self.done < len(self.beats):
            if self.cycle >= self.max_cycles:
                raise RuntimeError(f"simulation exceeded {self.max_cycles} cycles")
            if self.reset_after is not None and self.cycle == self.reset_after:
                await self._reset(ctx)
            else:
                await self._cycle(ctx)
            self.cycle += 1

    async def _write_weights(self, ctx) -> None:
        top = self.top
        for layer, bank, addr, word in self.weight_writes or ():
            ctx.set(top.wgt_valid, 1)
            ctx.set(top.wgt_layer, layer)
            ctx.set(top.wgt_bank, bank)
            ctx.set(top.wgt_addr, addr)
            ctx.set(top.wgt_data, word)
            await ctx.tick()
        if self.weight_writes:
            ctx.set(top.wgt_valid, 0)

    async def _reset(self, ctx) -> None:
        """A synchronous reset of the whole sync domain for one clock edge; the stream restarts."""
        ctx.set(self.top.s_axis_tvalid, 0)
        ctx.set(self.top.m_axis_tready, 0)
        self.reset_after = None
        ctx.set(self.cd.rst, 1)
        await ctx.tick()
        ctx.set(self.cd.rst, 0)
        self._restart()

    async def _cycle(self, ctx) -> None:
        top = self.top
        send = self._drive_input(ctx)
        bp = self.traffic.backpressure
        take = not (bp and self.rng.random() < bp)
        ctx.set(top.m_axis_tready, int(take))
        if send and ctx.get(top.s_axis_tready):
            self._accepted()
        if ctx.get(top.m_axis_tvalid):
            self._output(ctx, take)
        await ctx.tick()

    def _drive_input(self, ctx) -> bool:
        top = self.top
        send = self.img < len(self.beats) and not self.gap_left
        if self.gap_left:
            self.gap_left -= 1
        ctx.set(top.s_axis_tvalid, int(send))
        if send:
            ctx.set(top.s_axis_tdata, self.beats[self.img][self.beat])
            ctx.set(top.s_axis_tlast, int(self.beat == len(self.beats[self.img]) - 1))  # the sample's last
        return send

    def _accepted(self) -> None:
        if self.beat == 0:
            self.first_accept[self.img] = self.cycle
        self.beat += 1
        if self.beat == len(self.beats[self.img]):
            self.img, self.beat = self.img + 1, 0
        self._draw_gap()

    def _output(self, ctx, take: bool) -> None:
        top, geom = self.top, self.geom
        if self.valid_since is None:
            self.valid_since = self.cycle
            self.cycles.append(self.valid_since - self.first_accept[self.done])
        if take:
            cls, sc = stream.unpack_result(ctx.get(top.m_axis_tdata), geom.n_classes, geom.score_width,
                                           geom.score_signed)
            assert ctx.get(top.m_axis_tlast) == 1
            self.classes.append(cls)
            self.scores.append(sc)
            self.done += 1
            self.valid_since = None

    def result(self) -> SimResult:
        return SimResult(np.array(self.classes, dtype=np.int64),
                         np.array(self.scores, dtype=np.int64).reshape(-1, self.geom.n_classes),
                         np.array(self.cycles, dtype=np.int64), self.cycle)
