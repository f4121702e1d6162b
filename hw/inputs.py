"""The gateware of the ``pixels`` input kind: :class:`PixelsInput`, the input stage of the sequencer.

An input stage is registered in :data:`sc_neurocore.hw.kinds.INPUTS` and
built by :class:`~sc_neurocore.hw.core.LIFCore` as ``impl(core, m)``: it adds
its blocks to the core's module (here the :class:`~sc_neurocore.hw.events.BeatChunker`
into layer 1 and, for rate encoding, the :class:`~sc_neurocore.hw.encoder.RateEncoder`)
and provides the sequencer's hooks:

* :meth:`~PixelsInput.clear` - wire the start-of-image clear;
* :meth:`~PixelsInput.accept` - the body of phase ``IN`` (the ``K`` beats of an image);
* :meth:`~PixelsInput.states` - its own phases (rate: ``ENC``, the replay);
* :meth:`~PixelsInput.start_timestep` - what starts layer 1 at each timestep;
* :meth:`~PixelsInput.done` - the result is loaded: ready for the next image.

Direct encoding accumulates each beat into layer 1 as it arrives (its current
stays in the accumulators for all ``T`` timesteps); rate encoding stores the
image and replays it through the LFSR once per timestep.

With ``CoreConfig.double_buffer`` (direct only) the beats are taken in every
phase, not only in ``IN``: they accumulate into layer 1's staging set while
the previous image computes, and phase ``IN`` only waits for the image to be
complete, pulses the load and goes to phase ``LOAD``, in which the copy
lands and the first timestep starts (``Timing.LOAD``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import wiring

from .encoder import RateEncoder
from .events import BeatChunker
from .kinds import INPUTS
from .logic import _index

__all__ = ["PixelsInput", "EventsInput"]


@INPUTS.register("pixels")
class PixelsInput:
    """The pixel input stage, direct or rate (``network.input.encoding``)."""

    def __init__(self, core, m):
        net, geo = core.network, core.geometry
        K, ppb = geo.beats, geo.pixels_per_beat
        self._core = core
        self._layer1 = core.layers[0]
        self._K, self._ppb = K, ppb
        self._input_shift = net.input_shift
        self.direct = self._direct(net)
        m.submodules.chunker = self.chunker = chunker = BeatChunker(geo)
        wiring.connect(m, chunker.events, self._layer1.events)

        # Padding pixels of the last beat are forced to zero, whatever the
        # source sends, so they never become events.
        self.beats_in = beats_in = Signal(_index(K + 1), name="beats_in")
        last_real = net.sizes[0] - (K - 1) * ppb
        self.masked = masked = Signal(core.pixels.payload.shape(), name="masked")
        for j in range(ppb):
            pad = (beats_in == K - 1) if j >= last_real else Const(0)
            m.d.comb += masked[j].eq(Mux(pad, 0, core.pixels.payload[j]))

        self.double = core.geometry.config.double_buffer   # CoreGeometry checked: direct, dense layer 1
        if self.double:
            self._take_beats(m)
        self.encoder = None
        if not self.direct:
            m.submodules.encoder = self.encoder = encoder = RateEncoder(geo)
            wiring.connect(m, encoder.beats, chunker.beats)
            m.d.comb += encoder.fill.payload.eq(masked)

    @staticmethod
    def _direct(net) -> bool:
        """Whether beats go straight into layer 1 (direct) or through the rate encoder's replay."""
        return net.input.encoding == "direct"

    def clear(self, m, clear) -> None:
        """The start-of-image clear reaches the encoder (the layers are the core's)."""
        if self.encoder is not None:
            m.d.comb += self.encoder.clear.eq(clear)

    def start_timestep(self, m) -> None:
        """Start of a timestep: rate replays the image, direct goes straight
        to the update (its current is already in the accumulators)."""
        if self.direct:
            m.d.comb += self._layer1.update.eq(1)
            m.next = "UPD0"
        else:
            m.d.comb += [self.encoder.start.eq(1), self.chunker.clear.eq(1)]
            m.next = "ENC"

    def _take_beats(self, m) -> None:
        """``double_buffer``: the ``K`` beats of an image are taken whenever they come, in any phase, into the
        chunker and layer 1's staging set; ``beats_in`` counts them until the image is loaded."""
        pixels, chunker, beats_in, K = self._core.pixels, self.chunker, self.beats_in, self._K
        m.d.comb += [
            chunker.beats.valid.eq(pixels.valid & (beats_in != K)),
            chunker.beats.payload.eq(Cat(*[self.masked[j][self._input_shift:] for j in range(self._ppb)])),
            pixels.ready.eq(chunker.beats.ready & (beats_in != K)),
        ]
        with m.If(pixels.valid & pixels.ready):
            m.d.sync += beats_in.eq(beats_in + 1)

    def accept(self, m) -> None:
        """Phase ``IN``: take the image's ``K`` beats, then start the first timestep."""
        pixels, chunker, beats_in, K = self._core.pixels, self.chunker, self.beats_in, self._K
        if self.double:
            # The image is in when the same condition as below holds: the load pulse and the count's reset
            # (the next image's beats are taken from the next cycle); the copy lands in phase LOAD.
            with m.If((beats_in == K) & ~chunker.busy & ~self._layer1.acc_busy):
                m.d.comb += self._layer1.load.eq(1)   # the chunker is empty, its count wrapped (see done)
                m.d.sync += beats_in.eq(0)
                m.next = "LOAD"
            return
        accept = Signal(name="accept")
        if self.direct:
            m.d.comb += [
                chunker.beats.valid.eq(pixels.valid & (beats_in != K)),
                # Layer 1 sees each pixel's top input_bits bits (spec §3.1).
                chunker.beats.payload.eq(Cat(*[self.masked[j][self._input_shift:] for j in range(self._ppb)])),
                pixels.ready.eq(chunker.beats.ready & (beats_in != K)),
            ]
        else:
            m.d.comb += [
                self.encoder.fill.valid.eq(pixels.valid & (beats_in != K)),
                pixels.ready.eq(beats_in != K),
            ]
        m.d.comb += accept.eq(pixels.valid & pixels.ready)
        with m.If(accept):
            m.d.sync += beats_in.eq(beats_in + 1)
        if self.direct:
            with m.If((beats_in == K) & ~chunker.busy & ~self._layer1.acc_busy):
                self.start_timestep(m)
        else:
            with m.If(beats_in == K):
                self.start_timestep(m)

    def states(self, m) -> None:
        """Rate: phase ``ENC``, the replay pass into layer 1, then its update. ``double_buffer``: phase
        ``LOAD`` (``Timing.LOAD``), the staged current copied into layer 1's accumulators; its first update
        starts with it."""
        if self.double:
            with m.State("LOAD"):
                self.start_timestep(m)
        if not self.direct:
            with m.State("ENC"):
                with m.If(~self.encoder.busy & ~self.chunker.busy & ~self._layer1.acc_busy):
                    m.d.comb += self._layer1.update.eq(1)
                    m.next = "UPD0"

    def done(self, m) -> None:
        """The result is loaded: wait for the next image's beats (``double_buffer``: nothing, the next image
        may be coming in already; its load resets the count).

        The chunker is not cleared: it is empty (the first update waited for it) and its beat count has
        wrapped after the image's ``K`` beats, so a clear would change nothing; and the clear, a pulse
        from the sequencer and ``m_axis_tready`` to every register of its buffer, was the critical path
        (12.7 ns, all but 0.9 ns routing) of an ECP5-25F core with 64 shift-and-add products."""
        if self.double:
            return
        m.d.sync += self.beats_in.eq(0)


@INPUTS.register("events")
class EventsInput(PixelsInput):
    """The ``events`` input stage (spec §3.3): every timestep's counts arrive as ``K`` beats, one lane per
    input, and are accumulated into layer 1 as they arrive, as direct pixels are — but layer 1 does not keep
    its current (``keep_current`` is the direct encoding's only), so each timestep starts from the beats of
    that timestep. Phase ``IN`` takes the ``K`` beats of one timestep; the sequencer comes back to it after
    the last layer's update of every timestep but the last.

    A lane carries the count in its low ``input_bits`` bits (the bins are saturated to ``input_bits`` by
    ``docs/events.md``; the bits above are ignored). Zero counts are skipped by the chunker like zero pixels,
    so the work of a timestep is its active inputs: the event-driven, zero-skip layer 1 of the issue.
    """

    def __init__(self, core, m):
        super().__init__(core, m)
        self._bits = core.network.input_bits

    @staticmethod
    def _direct(net) -> bool:
        return True  # the direct data path: beats straight into the chunker, no encoder

    def accept(self, m) -> None:
        """Phase ``IN``: take one timestep's ``K`` beats; when they are in layer 1, update it."""
        pixels, chunker, beats_in, K = self._core.pixels, self.chunker, self.beats_in, self._K
        m.d.comb += [
            chunker.beats.valid.eq(pixels.valid & (beats_in != K)),
            chunker.beats.payload.eq(Cat(*[self.masked[j][:self._bits] for j in range(self._ppb)])),
            pixels.ready.eq(chunker.beats.ready & (beats_in != K)),
        ]
        with m.If(pixels.valid & pixels.ready):
            m.d.sync += beats_in.eq(beats_in + 1)
        with m.If((beats_in == K) & ~chunker.busy & ~self._layer1.acc_busy):
            m.d.comb += self._layer1.update.eq(1)
            m.next = "UPD0"

    def start_timestep(self, m) -> None:
        """The next timestep: back to phase ``IN`` for its beats."""
        m.d.sync += self.beats_in.eq(0)
        m.d.comb += self.chunker.clear.eq(1)
        m.next = "IN"

    def states(self, m) -> None:
        """No phases of its own."""
