"""The rate encoder of the ``pixels`` input kind: :class:`RateEncoder` (spec §3.2)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sc_neurocore.params import LFSR_STEPS_PER_INPUT

from .config import CoreGeometry, Timing
from .lfsr import WIDTH as LFSR_WIDTH, step_matrix
from .logic import _check_depth, _index
from .stream import PIXEL_BITS

__all__ = ["RateEncoder"]


class RateEncoder(wiring.Component):
    """Pixel buffer plus the LFSR of spec §3.2: replays the image as spike beats.

    ``fill`` writes the image beat by beat (always ready).  Each ``start``
    emits the ``K`` beats of one timestep: pixel ``j`` of a beat spikes when
    it exceeds the low byte of the LFSR state ``8*(j+1)`` steps ahead; taking
    a beat advances the state by ``8`` steps per real (non-padding) pixel.
    The state is reset to ``rate_seed`` by ``clear`` and runs on across
    timesteps, exactly as the spec orders the steps.
    """

    def __init__(self, geom: CoreGeometry):
        self._geom = geom
        ppb = geom.pixels_per_beat
        super().__init__({
            "fill": In(stream.Signature(data.ArrayLayout(unsigned(PIXEL_BITS), ppb))),
            "start": In(1),
            "clear": In(1),
            "busy": Out(1),
            "beats": Out(stream.Signature(data.ArrayLayout(unsigned(1), ppb))),
        })

    @staticmethod
    def _advance(m: Module, state, k: int, name: str):
        out = Signal(LFSR_WIDTH, name=name)
        for r, row in enumerate(step_matrix(k)):
            bits = [state[c] for c in range(LFSR_WIDTH) if (row >> c) & 1]
            m.d.comb += out[r].eq(Cat(*bits).xor() if bits else 0)
        return out

    def elaborate(self, platform):
        m = Module()
        geo = self._geom
        ppb, K, n0 = geo.pixels_per_beat, geo.beats, geo.n_inputs
        last_real = n0 - (K - 1) * ppb   # real pixels in the last beat
        seed = geo.network.rate_seed
        m.submodules.pixels = mem = Memory(shape=unsigned(geo.s_axis_tdata_width), depth=K, init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        lfsr = Signal(LFSR_WIDTH, init=seed)
        wptr = Signal(_index(K))
        m.d.comb += [self.fill.ready.eq(1), wr.addr.eq(wptr), wr.data.eq(self.fill.payload), wr.en.eq(self.fill.valid)]
        with m.If(self.fill.valid):
            m.d.sync += wptr.eq(Mux(wptr == K - 1, 0, wptr + 1))

        head_valid = Signal()
        head_last = Signal()
        next_ptr = Signal(_index(K + 1))
        m.d.comb += rd.en.eq(0)
        # R_j of the head beat: the state 8*(j+1) steps ahead, low byte.
        steps, pb = LFSR_STEPS_PER_INPUT, PIXEL_BITS
        for j in range(ppb):
            r = self._advance(m, lfsr, steps * (j + 1), f"lfsr_ahead{j}")
            m.d.comb += self.beats.payload[j].eq(rd.data[pb * j:pb * (j + 1)] > r[:pb])
        full = self._advance(m, lfsr, steps * ppb, "lfsr_full")
        part = self._advance(m, lfsr, steps * last_real, "lfsr_last")
        m.d.comb += self.beats.valid.eq(head_valid)
        with m.If(self.start):
            m.d.comb += [rd.addr.eq(0), rd.en.eq(1)]
            m.d.sync += [head_valid.eq(1), next_ptr.eq(1), head_last.eq(K == 1)]
        with m.Elif(head_valid & self.beats.ready):
            m.d.sync += lfsr.eq(Mux(head_last, part, full))
            with m.If(head_last):
                m.d.sync += head_valid.eq(0)
            with m.Else():
                m.d.comb += [rd.addr.eq(next_ptr), rd.en.eq(1)]
                m.d.sync += [next_ptr.eq(next_ptr + 1), head_last.eq(next_ptr == K - 1)]
        with m.If(self.clear):
            m.d.sync += [lfsr.eq(seed), wptr.eq(0), head_valid.eq(0)]
        m.d.comb += self.busy.eq(head_valid)
        # The pixel buffer's read port is the only register between start and
        # the first beat: each replay pass starts that late.
        _check_depth("rate encoder's pixel buffer read", 0 if rd.domain == "comb" else 1, Timing.REPLAY_START)
        return m
