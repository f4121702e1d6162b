"""Output side: a cocotbext-axi :class:`AxiStreamSink` (with optional random back-pressure) plus a collector.

The sink sleeps while ``m_axis_tvalid`` is low (cocotbext-axi wakes it on the
rising edge of ``tvalid``), so a long computation costs no Python at all when
back-pressure is off. The whole output word is one "byte" (``byte_lanes=1``),
whatever its width.
"""

from __future__ import annotations

import numpy as np
import cocotb
from cocotbext.axi import AxiStreamBus, AxiStreamSink

from .model import unpack_output

__all__ = ["OutputMonitor"]


def _pause_gen(rng: np.random.Generator, prob: float, chunk: int = 4096):
    while True:
        for v in rng.random(chunk) < prob:
            yield bool(v)


class OutputMonitor:
    """Receives output beats; calls ``callback(time_steps, class, scores, tlast)`` for each, in order."""

    def __init__(self, dut, clk, rst, info, *, prefix: str = "m_axis", backpressure: float = 0.0,
                 rng: np.random.Generator | None = None, callback=None):
        self.info = info
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix), clk, rst, byte_lanes=1)
        self.sink.log.setLevel("WARNING")
        if backpressure > 0:
            self.sink.set_pause_generator(_pause_gen(rng if rng is not None else np.random.default_rng(1),
                                                     float(backpressure)))
        self.callback = callback
        self.received = 0
        self._task = None

    def start(self) -> None:
        if self._task is None:
            self._task = cocotb.start_soon(self._collect())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _collect(self) -> None:
        info = self.info
        while True:
            frame = await self.sink.recv()
            self.received += 1
            for word in frame.tdata:  # one beat per frame when tlast is always 1
                cls, scores = unpack_output(word, info.n_classes, info.score_width, info.score_signed)
                if self.callback is not None:
                    self.callback(frame.sim_time_start, cls, scores, len(frame.tdata) == 1)
