"""Event sources of the gateware: :class:`BeatChunker` (input beats -> event
chunks, first layer) and :class:`SpikeScanner` (a spike vector -> event
chunks, every later layer); both skip chunks without an event.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import CoreGeometry, LayerGeometry, Timing
from .logic import _check_depth, _index, _lowest_set, _select_onehot, event_layout

__all__ = ["BeatChunker", "SpikeScanner"]


class BeatChunker(wiring.Component):
    """Beats of ``PPB`` input values -> event chunks of ``E`` values, all-zero chunks skipped.

    A beat is taken when the buffer is empty or its last chunk is being
    issued, so a beat with ``w`` non-zero chunks occupies ``max(1, w*G)``
    cycles (``G`` from the downstream ``events.ready``).  Chunk indices count
    from the first beat after ``clear``.
    """

    def __init__(self, geom: CoreGeometry):
        self._geom = geom
        l0 = geom.layers[0]
        super().__init__({
            "beats": In(stream.Signature(data.ArrayLayout(unsigned(l0.x_bits), geom.pixels_per_beat))),
            "events": Out(stream.Signature(event_layout(l0.chunk_space, l0.events, l0.x_bits))),
            "clear": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        geo = self._geom
        E, CPB, K = geo.layers[0].events, geo.chunks_per_beat, geo.beats
        buf = Signal(self.beats.payload.shape())
        mask = Signal(CPB)
        buf_beat = Signal(_index(K))
        beat_count = Signal(_index(K))

        onehot, idx = _lowest_set(m, mask, CPB, "chunk_in_beat")
        rest = Signal(CPB)
        m.d.comb += rest.eq(mask & ~onehot)
        chunks = [Cat(*[buf[c * E + b] for b in range(E)]) for c in range(CPB)]
        m.d.comb += [
            self.events.valid.eq(mask != 0),
            self.events.payload.chunk.eq(buf_beat * CPB + idx),
            self.events.payload.x.eq(_select_onehot(chunks, onehot)),
        ]
        last = rest == 0
        m.d.comb += self.beats.ready.eq(last & ((mask == 0) | self.events.ready))
        nonzero = Cat(*[Cat(*[self.beats.payload[c * E + b] for b in range(E)]).any() for c in range(CPB)])
        with m.If(self.beats.valid & self.beats.ready):
            m.d.sync += [buf.eq(self.beats.payload), mask.eq(nonzero), buf_beat.eq(beat_count),
                         beat_count.eq(Mux(beat_count == K - 1, 0, beat_count + 1))]
        with m.Elif(self.events.valid & self.events.ready):
            m.d.sync += mask.eq(rest)
        with m.If(self.clear):
            m.d.sync += [beat_count.eq(0), mask.eq(0)]
        m.d.comb += self.busy.eq(mask != 0)
        # One register stage (the beat buffer and its chunk mask) between a
        # beat and its chunks: the buffer is free a cycle after the last issue.
        _check_depth("beat chunker", 1, Timing.CHUNK_DRAIN)
        return m


class SpikeScanner(wiring.Component):
    """A spike vector -> event chunks of ``E`` spikes, silent chunks skipped.

    ``start`` latches the vector's non-empty-chunk mask; the first chunk is
    issued in the cycle after it (a register between the previous layer's
    spikes and the priority logic), and ``busy`` is high from that cycle
    until the last chunk has been taken.  The chunks' spikes are read from
    ``spikes`` while they are issued: the sequencer keeps the previous layer
    idle during the scan.
    """

    def __init__(self, geom: LayerGeometry):
        self._geom = geom
        super().__init__({
            "spikes": In(geom.n_in),
            "start": In(1),
            "busy": Out(1),
            "events": Out(stream.Signature(event_layout(geom.chunk_space, geom.events, 1))),
        })

    def elaborate(self, platform):
        m = Module()
        E, C, n = self._geom.events, self._geom.chunks, self._geom.n_in
        padded = Cat(self.spikes, Const(0, C * E - n))
        chunks = [padded[c * E:(c + 1) * E] for c in range(C)]
        init = Cat(*[ch.any() for ch in chunks])
        mask = Signal(C)
        onehot, idx = _lowest_set(m, mask, C, "chunk")
        m.d.comb += [
            self.events.valid.eq(mask != 0),
            self.events.payload.chunk.eq(idx),
            self.events.payload.x.eq(_select_onehot(chunks, onehot)),
        ]
        with m.If(self.start):
            m.d.sync += mask.eq(init)
        with m.Elif(self.events.valid & self.events.ready):
            m.d.sync += mask.eq(mask & ~onehot)
        m.d.comb += self.busy.eq(mask != 0)   # registered only, see LIFLayer.update_busy
        # One register stage (the chunk mask) between start and the first
        # chunk: a scan without events still costs that cycle.
        _check_depth(f"spike scanner of layer {self._geom.index}", 1, Timing.SCAN_EMPTY)
        return m
