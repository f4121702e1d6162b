"""Amaranth gateware of the fixed-point LIF core (``docs/fixed_point.md``, ``docs/hardware.md``).

Blocks, each a :class:`~amaranth.lib.wiring.Component`, one module each:

* :class:`~sc_neurocore.hw.layer.LIFLayer` (:mod:`~sc_neurocore.hw.layer`) - the
  ``dense`` layer kind: weight memories (one bank per event slot), the
  accumulators of the weighted sums, the membranes and the update pipeline
  of one fully connected layer.
* :class:`~sc_neurocore.hw.events.BeatChunker` (:mod:`~sc_neurocore.hw.events`) -
  turns beats of ``PPB`` input values into event chunks of ``E`` values,
  skipping all-zero chunks (first layer).
* :class:`~sc_neurocore.hw.events.SpikeScanner` - turns a spike vector into
  event chunks, skipping silent chunks (every later layer).
* :class:`~sc_neurocore.hw.encoder.RateEncoder` (:mod:`~sc_neurocore.hw.encoder`) -
  pixel buffer plus the LFSR of spec §3.2, replays the image as spike beats
  once per timestep.
* :class:`~sc_neurocore.hw.readout.Argmax` (:mod:`~sc_neurocore.hw.readout`) -
  registered comparison tree, ties to the lowest class.
* :class:`LIFCore` (here) - the sequencer, with ``stream`` interfaces.
* :class:`AXIStreamTop` (here) - :class:`LIFCore` with AXI4-Stream port
  names; this is what :func:`build_core` returns and what is exported as
  ``sc_neurocore_top``.

The component built for each layer and the input stage are looked up by kind
in the gateware's registries (:data:`~sc_neurocore.hw.kinds.LAYERS`,
:data:`~sc_neurocore.hw.kinds.INPUTS`): a new kind registers its component
there and :class:`LIFCore` is not touched.

Pipeline depths are :class:`~sc_neurocore.hw.config.Timing` constants; the
latency model reads the same constants, and every block checks the depth it
builds against them when it is elaborated.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sc_neurocore.params import NetworkParams

from .config import CoreConfig, CoreGeometry
from .encoder import RateEncoder
from .events import BeatChunker, SpikeScanner
from .conv import ConvLayer  # noqa: F401  (registers the "conv" layer kind)
from .inputs import PixelsInput  # noqa: F401  (registers the "pixels" input kind)
from .kinds import INPUTS, LAYERS
from .layer import LIFLayer
from .logic import _check_depth, _index, event_layout, weight_write_layout
from .readout import Argmax, result_layout
from .stream import PIXEL_BITS

__all__ = ["event_layout", "weight_write_layout", "LIFLayer", "BeatChunker", "SpikeScanner", "RateEncoder", "Argmax",
           "LIFCore", "AXIStreamTop", "build_core"]

class LIFCore(wiring.Component):
    """The whole network: one image in (``K`` beats of ``PPB`` pixels), one result out.

    Sequencer phases (``docs/hardware.md`` has the timing of each):
    ``IN`` (beats accepted; direct: accumulated into layer 1 as they arrive;
    rate: stored), then per timestep ``ENC`` (rate only: replay the image
    through the LFSR into layer 1), and per layer ``SCAN`` (layers 2…L: the
    previous layer's spikes as events) and ``UPD`` (neuron update), then
    ``ARGMAX`` and the output register.  Each phase starts its block in the
    cycle the previous phase ends.  ``IN`` and ``ENC`` belong to the input
    stage (:data:`~sc_neurocore.hw.kinds.INPUTS`).
    """

    def __init__(self, network: NetworkParams, config: CoreConfig | None = None):
        if not isinstance(network, NetworkParams):
            raise TypeError(f"network must be a NetworkParams, not {type(network).__name__}")
        self.geometry = CoreGeometry(network, config)
        self.network = network
        geo = self.geometry
        members = {
            "pixels": In(stream.Signature(data.ArrayLayout(unsigned(PIXEL_BITS), geo.pixels_per_beat))),
            "result": Out(stream.Signature(result_layout(geo))),
        }
        L, direct = len(network.layers), network.encoding == "direct"
        wpw = geo.weight_port_widths
        if geo.config.weight_port:
            # Always ready: a write lands in the cycle it is valid.  Writing a
            # layer while it computes changes that inference (no interlock).
            members["weights"] = In(stream.Signature(data.StructLayout({
                "layer": unsigned(wpw["layer"]), "bank": unsigned(wpw["bank"]), "addr": unsigned(wpw["addr"]),
                "data": unsigned(wpw["data"])}), always_ready=True))
        super().__init__(members)
        # Built here rather than in elaborate() so that a harness (formal
        # properties) can reach the membranes and counters.  The component
        # of each layer is the one registered for its kind.
        self.layers = [
            LAYERS(lp)(lp, lg, reset=network.reset, spiking=network.spiking(i),
                       count_width=geo.count_width if (i == L - 1 and network.readout == "spike_count") else None,
                       keep_current=(i == 0 and direct), weight_port=geo.config.weight_port,
                       **({"double_buffer": True} if i == 0 and geo.config.double_buffer else {}))
            for i, (lp, lg) in enumerate(zip(network.layers, geo.layers))]
        # The input stage registered for the input kind; built in elaborate().
        self._input_stage = INPUTS(network.input)

    def elaborate(self, platform):
        m = Module()
        self._add_layers(m)
        scanners = self._add_scanners(m)
        stage = self._input_stage(self, m)
        readout = self._add_readout(m)
        seq = self._sequencer_registers(m, stage)
        # The output register drops its beat once taken, unless a new result
        # is loaded in the same cycle (the ARGMAX state below comes later,
        # so its assignment wins).
        with m.If(self.result.ready):
            m.d.sync += self.result.valid.eq(0)
        with m.FSM(name="phase"):
            with m.State("IN"):
                stage.accept(m)
            stage.states(m)
            for i in range(len(self.layers)):
                self._layer_states(m, i, scanners, stage, seq)
            self._argmax_state(m, stage, readout, seq)
        return m

    def _add_layers(self, m) -> None:
        """The layers, and the run-time weight port fanned out to them by ``layer``."""
        geo = self.geometry
        for i, lay in enumerate(self.layers):
            m.submodules[f"layer{i}"] = lay
            if geo.config.weight_port:
                w, lg = self.weights, geo.layers[i]
                m.d.comb += [
                    lay.wr.valid.eq(w.valid & (w.payload.layer == i)),
                    lay.wr.payload.bank.eq(w.payload.bank[:len(lay.wr.payload.bank)]),
                    lay.wr.payload.addr.eq(w.payload.addr[:len(lay.wr.payload.addr)]),
                    lay.wr.payload.data.eq(w.payload.data[:lg.memory_width]),
                ]

    def _add_scanners(self, m) -> list:
        """Layers 2…L take the previous layer's spikes as events (``scanners[0]`` is None): a spike vector
        through a scanner, or the events a layer streams itself while it updates (a conv layer's
        ``spikes_out``; no scanner, ``scanners[i]`` is None)."""
        layers, scanners = self.layers, [None]
        for i in range(1, len(layers)):
            if hasattr(layers[i - 1], "spikes_out"):
                wiring.connect(m, layers[i - 1].spikes_out, layers[i].events)
                scanners.append(None)
                continue
            sc = SpikeScanner(self.geometry.layers[i])
            m.submodules[f"scan{i}"] = sc
            m.d.comb += sc.spikes.eq(layers[i - 1].spikes)
            wiring.connect(m, sc.events, layers[i].events)
            scanners.append(sc)
        return scanners

    def _add_readout(self, m) -> SimpleNamespace:
        """The argmax tree over the last layer's scores (spike counts or membranes)."""
        geo, last = self.geometry, self.layers[-1]
        scores = last.counts if self.network.readout == "spike_count" else last.membrane
        m.submodules.argmax = argmax = Argmax(geo.n_classes, result_layout(geo).members["scores"].elem_shape)
        m.d.comb += argmax.scores.eq(scores)
        _check_depth("argmax tree", argmax.levels, geo.argmax_levels)
        return SimpleNamespace(argmax=argmax, scores=scores)

    def _sequencer_registers(self, m, stage) -> SimpleNamespace:
        """The timestep counter, the argmax wait counter and the start-of-image clear."""
        t = Signal(_index(self.network.T), name="timestep")
        wait = Signal(_index(self.geometry.argmax_wait + 1), name="wait")
        clear = Signal(name="clear")
        m.d.comb += [lay.clear.eq(clear) for lay in self.layers]
        stage.clear(m, clear)
        return SimpleNamespace(t=t, wait=wait, clear=clear)

    def _layer_states(self, m, i: int, scanners, stage, seq) -> None:
        """Layer ``i``'s phases: ``SCAN{i}`` (not layer 1) and ``UPD{i}``, then the next layer,
        the next timestep or the readout."""
        layers, L, T = self.layers, len(self.layers), self.network.T
        if i > 0:
            with m.State(f"SCAN{i}"):
                # streamed events (scanner None) all came during layer i-1's update: its tail only
                idle = ~layers[i].acc_busy if scanners[i] is None else ~scanners[i].busy & ~layers[i].acc_busy
                with m.If(idle):
                    m.d.comb += layers[i].update.eq(1)
                    m.next = f"UPD{i}"
        with m.State(f"UPD{i}"):
            with m.If(~layers[i].update_busy):
                if i + 1 < L:
                    if scanners[i + 1] is not None:
                        m.d.comb += scanners[i + 1].start.eq(1)
                    m.next = f"SCAN{i + 1}"
                else:
                    with m.If(seq.t == T - 1):
                        m.d.sync += seq.wait.eq(0)
                        m.next = "ARGMAX"
                    with m.Else():
                        m.d.sync += seq.t.eq(seq.t + 1)
                        stage.start_timestep(m)

    def _argmax_state(self, m, stage, readout, seq) -> None:
        """Phase ``ARGMAX``: wait for the tree, load the output register, clear, next image."""
        with m.State("ARGMAX"):
            # The tree needs `levels` cycles after the scores settle; the
            # output register may still hold the previous image's result.
            with m.If(seq.wait != self.geometry.argmax_wait - 1):
                m.d.sync += seq.wait.eq(seq.wait + 1)
            with m.Elif(~self.result.valid | self.result.ready):
                m.d.sync += [self.result.payload.cls.eq(readout.argmax.index),
                             self.result.payload.scores.eq(readout.scores),
                             self.result.valid.eq(1)]
                m.d.comb += seq.clear.eq(1)
                stage.done(m)
                m.d.sync += seq.t.eq(0)
                m.next = "IN"


class AXIStreamTop(wiring.Component):
    """:class:`LIFCore` with the AXI4-Stream port names of the exported ``sc_neurocore_top``.

    ``s_axis_tlast`` is accepted and ignored: the core counts ``K`` beats per
    image, so a missing or extra ``tlast`` cannot desynchronise it.
    ``m_axis_tlast`` is constantly 1 (one beat per image).  With
    ``CoreConfig(weight_port=True)`` the ports ``wgt_valid``, ``wgt_layer``,
    ``wgt_bank``, ``wgt_addr`` and ``wgt_data`` write one weight word per
    cycle (no ready: always accepted); see
    :meth:`~sc_neurocore.hw.config.CoreGeometry.weight_writes`.
    """

    def __init__(self, network: NetworkParams, config: CoreConfig | None = None):
        self.core = LIFCore(network, config)
        geo = self.geometry = self.core.geometry
        super().__init__({
            "s_axis_tdata": In(geo.s_axis_tdata_width),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(geo.m_axis_tdata_width),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            **({"wgt_valid": In(1), "wgt_layer": In(geo.weight_port_widths["layer"]),
                "wgt_bank": In(geo.weight_port_widths["bank"]), "wgt_addr": In(geo.weight_port_widths["addr"]),
                "wgt_data": In(geo.weight_port_widths["data"])} if geo.config.weight_port else {}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        if self.geometry.config.weight_port:
            w = core.weights
            m.d.comb += [w.valid.eq(self.wgt_valid), w.payload.layer.eq(self.wgt_layer),
                         w.payload.bank.eq(self.wgt_bank), w.payload.addr.eq(self.wgt_addr),
                         w.payload.data.eq(self.wgt_data)]
        m.d.comb += [
            core.pixels.payload.eq(self.s_axis_tdata),
            core.pixels.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.pixels.ready),
            self.m_axis_tdata.eq(core.result.payload.as_value()),
            self.m_axis_tvalid.eq(core.result.valid),
            core.result.ready.eq(self.m_axis_tready),
            self.m_axis_tlast.eq(1),
        ]
        return m


def build_core(network, config: CoreConfig | None = None, **options) -> AXIStreamTop:
    """The top-level component for a network (or bundle) and generator options.

    Either pass a :class:`CoreConfig` or its fields as keyword arguments.
    """
    from sc_neurocore.bundle import Bundle

    if isinstance(network, Bundle):
        network = network.network
    if config is None:
        config = CoreConfig(**options)
    elif options:
        raise TypeError("pass either config or generator options, not both")
    return AXIStreamTop(network, config)
