"""Generator options of the LIF core and the geometry they give a network.

Everything here is plain Python (no Amaranth import), so the latency model
(:mod:`sc_neurocore.hw.latency`) and the CLI can read the same facts the
gateware is built from.  :class:`CoreConfig` holds the options that are *not*
in a bundle (how wide to build the hardware); :class:`CoreGeometry` combines
them with a :class:`~sc_neurocore.params.NetworkParams` and exposes every
derived number (groups, chunks, memory shapes, pipeline depths) as read-only
properties.  Nothing downstream re-derives these by hand.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, asdict

from sc_neurocore.params import ConvParams, NetworkParams

from .stream import beats_per_image, in_width, out_width

__all__ = ["CoreConfig", "CoreGeometry", "LayerGeometry", "ConvGeometry", "Timing", "WEIGHT_MEMORIES",
           "double_buffer_refusal"]

#: The ``CoreConfig.weight_memory`` layouts.
WEIGHT_MEMORIES = ("block", "single_port")


class Timing:
    """Pipeline depths of the gateware, in cycles (see ``docs/hardware.md``).

    These are the single source of truth: the components in
    :mod:`sc_neurocore.hw.core` build exactly this many register stages and the
    latency model adds exactly these numbers.
    """

    #: From the cycle an event chunk is issued to the first cycle the
    #: sequencer may start the layer's update, for a single-segment bank:
    #: address register (1) + memory read (1) + word register (1) + product
    #: (1) + adder tree (1).  The accumulate itself is written at the end of
    #: that cycle, and the update reads the accumulators only in the cycle
    #: after its (registered) start, so the two overlap by one cycle.
    #: ``LayerGeometry.accumulate_cycles`` adds the segment select stage.
    ACCUMULATE_BASE = 5
    #: The segment-select register a bank of more than one segment adds to the
    #: accumulate path (``LayerGeometry.accumulate_cycles``).
    SEGMENT_SELECT = 1
    #: Most products one adder-tree stage sums (three adder levels). A layer with more events per
    #: cycle registers partial sums of this many and adds one cycle per further stage
    #: (``LayerGeometry.tree_stages``): 16 events in one stage were the critical path of a 64-lane
    #: ECP5-25F core (13 logic levels, 94.5 MHz).
    TREE_TERMS = 8
    #: Most words in one weight-memory segment (see ``LayerGeometry.segments``):
    #: an ECP5 DP16KD is 512 words deep in its widest (x36) mode, an iCE40
    #: SB_RAM40_4K 512 deep in x8 mode, so one segment is one row of block RAMs.
    SEGMENT_DEPTH = 512
    #: Extra cycles of a neuron update phase besides its ``G`` issue cycles:
    #: the registered start pulse, then (leak, current shift) -> (add, clamp)
    #: -> (fire, reset, write back) after the last group.
    UPDATE = 3
    #: An event-scan phase that finds no event still costs its start cycle.
    SCAN_EMPTY = 1
    #: The beat chunker frees its buffer one cycle after the last beat's last
    #: chunk is issued (the end of an input pass is at least that).
    CHUNK_DRAIN = 1
    #: Rate encoding: each timestep's replay pass starts this many cycles late
    #: (the pixel buffer's read latency).
    REPLAY_START = 1
    #: Event input: every timestep after the first starts with this many cycles in which phase ``IN`` is
    #: entered and ``s_axis_tready`` is not yet high (the last update hands back to ``IN``).
    EVENT_STEP_START = 1
    #: ``CoreConfig.double_buffer``: phase ``LOAD``, the cycle between an image's last accumulate and its
    #: first update, in which layer 1's staging accumulators are copied into the ones the update reads.
    #: A registered copy: the pulse fans out to every accumulator bit (an unregistered one made the 25F
    #: build's placement estimate 59 MHz against 115 MHz without the option).
    LOAD = 1
    #: Cycles the sequencer waits for the argmax tree, at least (a one-class
    #: network has no tree level but still one wait cycle).
    ARGMAX_MIN_WAIT = 1
    #: The output register after the argmax tree.
    OUTPUT_REGISTER = 1
    #: Conv layer, accumulate path: the kernel tap is issued (weight and accumulator addresses at the read
    #: ports) in one cycle and written back in the next (multiply-add on the read words). So the last write
    #: of an event chunk lands one cycle after the chunk is taken.
    CONV_WRITE_BACK = 1
    #: Conv layer, update path: per output position, one cycle to read its accumulators and membranes and
    #: one to update, write back and latch the position's spikes (then one event per spike).
    CONV_POSITION = 2
    #: Conv layer, update path: the registered start (the ``update`` pulse moves the sequencer from idle).
    CONV_UPDATE_START = 1


def _positive_int(name: str, value, *, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    if value < 1 or (hi is not None and value > hi):
        rng = f"between 1 and {hi}" if hi is not None else "a positive integer"
        raise ValueError(f"{name} must be {rng}, not {value!r}")
    return value


def _per_layer(name: str, value):
    """``None``, a positive int, or a tuple/list of positive ints / ``None``."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must be a positive integer or a non-empty sequence of them, not {value!r}")
        out = []
        for v in value:
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError(f"{name} must be a positive integer or a sequence of them, not {value!r}")
            if v is not None and v < 1:
                raise ValueError(f"{name} must be positive, not {value!r}")
            out.append(v)
        return tuple(out)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer or a sequence of them, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, not {value!r}")
    return value


@dataclass(frozen=True)
class CoreConfig:
    """Options of the core generator that a bundle does not fix.

    lanes:
        Neurons updated (and weights fetched) per cycle, per layer: an int for
        every layer, a sequence with one entry per layer, or ``None`` (the
        default) for *all neurons of the layer at once*.  A layer with ``n``
        neurons and ``P`` lanes takes ``ceil(n / P)`` cycles per event and per
        update.  An int larger than a layer is clamped to the layer's size;
        a per-layer entry must not exceed it.
    events:
        Input events consumed per cycle, per layer (the number of weight
        memory banks: input ``i`` lives in bank ``i % events``).  Same forms as
        ``lanes``; ``None`` picks 2 for a direct-encoded first layer (its
        events need ``lanes x events`` pixel-by-weight multipliers), 4 for
        spike inputs (adders only).  For the first layer it must divide
        ``pixels_per_beat`` (an event chunk never straddles two input beats).
    pixels_per_beat:
        Pixels per ``s_axis`` beat (``s_axis_tdata`` is
        ``hw.stream.in_width(pixels_per_beat)`` bits), 1 … 64.  Default 8 (a 64-bit bus).
    weight_port:
        Add a write port to every weight memory (``wgt_*`` ports of the top),
        so new weights of the same shape can be loaded at run time without
        rebuilding the bitstream; :meth:`CoreGeometry.weight_writes` lists the
        words to write.  Default ``False`` (read-only memories, initialised
        from the bundle).
    dsp_limit:
        At most this many pixel-by-weight products become multiplier cells
        (DSPs); the rest are built as shift-and-add from LUTs, with the same
        result and the same cycles. Products are counted layer by layer, lane by
        lane, so the last ones of the last pixel layer go to LUTs first.
        ``None`` (the default): every product is a multiplier.
    weight_memory:
        ``"block"`` (the default): every weight bank is split into segments of
        ``Timing.SEGMENT_DEPTH`` words (one row of block RAMs each), initialised
        from the bundle.  ``"single_port"``: every bank is one memory with a
        single address shared by its read and its write port and no initial
        contents, the shape of the iCE40UP5K's four 256-kbit SPRAMs (which the
        bitstream cannot initialise).  Needs ``weight_port=True``: the core
        computes with all-zero weights until every word of
        :meth:`CoreGeometry.weight_writes` has been written, and a write moves
        the bank's address, so weights must not be written during an image.
    double_buffer:
        Give layer 1 a second set of accumulators (direct pixel input into a
        dense first layer only): the next image's beats are accepted and
        accumulated into it while the current image computes, and handed
        over when the current image's result is loaded (phase ``LOAD``,
        ``Timing.LOAD`` cycles).  Results are unchanged, and an image that
        finds the core idle takes that one cycle more; back to back, a new
        image starts every ``max(compute, input pass)`` cycles instead of
        every ``compute + input pass``
        (:func:`~sc_neurocore.hw.latency.stream_cycles`).  Costs one
        accumulator register per layer-1 neuron.  Default ``False``.
    """

    lanes: int | tuple | None = None
    events: int | tuple | None = None
    pixels_per_beat: int = 8
    weight_port: bool = False
    dsp_limit: int | None = None
    weight_memory: str = "block"
    double_buffer: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lanes", _per_layer("lanes", self.lanes))
        object.__setattr__(self, "events", _per_layer("events", self.events))
        _positive_int("pixels_per_beat", self.pixels_per_beat, hi=64)
        if not isinstance(self.weight_port, bool):
            raise TypeError(f"weight_port must be a bool, not {self.weight_port!r}")
        if self.dsp_limit is not None and (isinstance(self.dsp_limit, bool) or not isinstance(self.dsp_limit, int)
                                           or self.dsp_limit < 0):
            raise ValueError(f"dsp_limit must be a non-negative integer or None, not {self.dsp_limit!r}")
        if self.weight_memory not in WEIGHT_MEMORIES:
            raise ValueError(f"weight_memory must be one of {', '.join(map(repr, WEIGHT_MEMORIES))}, "
                             f"not {self.weight_memory!r}")
        if not isinstance(self.double_buffer, bool):
            raise TypeError(f"double_buffer must be a bool, not {self.double_buffer!r}")
        if self.weight_memory == "single_port" and not self.weight_port:
            raise ValueError("weight_memory='single_port' needs weight_port=True: uninitialised memories "
                             "are loaded through the weight port")

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("lanes", "events"):
            if isinstance(d[k], tuple):
                d[k] = list(d[k])
        if d["dsp_limit"] is None:  # left out: reports of cores without the option keep their bytes
            del d["dsp_limit"]
        if d["weight_memory"] == "block":   # likewise
            del d["weight_memory"]
        if not d["double_buffer"]:          # likewise
            del d["double_buffer"]
        return d

    def geometry(self, network: NetworkParams) -> "CoreGeometry":
        return CoreGeometry(network, self)


@dataclass(frozen=True)
class LayerGeometry:
    """How one layer is laid out in hardware."""

    index: int
    n_in: int
    n_out: int
    lanes: int        # P: neurons per cycle
    events: int       # E: input events per cycle = memory banks
    x_bits: int       # width of one input value: the network's input_bits (pixels) or 1 (spikes)
    weight_bits: int
    chunk_space: int = 0   # chunk indices the event source can produce (>= chunks)
    #: Largest weighted-sum term multiplier the layer's accumulator must hold (0: ``2^x_bits - 1``). A layer
    #: after a conv layer pooled by q takes one-bit events, up to q^2 of them per input (spec §6).
    x_limit: int = 0
    #: Pixel-by-weight products of this layer built from LUTs (shift-and-add) instead of multipliers: the
    #: last ones in product order (``CoreConfig.dsp_limit``); 0 for a one-bit-input layer.
    lut_products: int = 0
    #: One uninitialised single-port memory per bank (``CoreConfig.weight_memory == "single_port"``).
    single_port: bool = False

    @property
    def kind(self) -> str:
        return "dense"

    @property
    def x_max(self) -> int:
        """The ``x_max`` of spec §6 that sizes the accumulators."""
        return self.x_limit or (1 << self.x_bits) - 1

    @property
    def event_cycles(self) -> int:
        """Cycles one event chunk costs when a conv layer streams it in (``events.ready`` after ``G``)."""
        return self.groups

    @property
    def groups(self) -> int:
        """G = ceil(n_out / P): cycles per event chunk and per neuron update."""
        return -(-self.n_out // self.lanes)

    @property
    def chunks(self) -> int:
        """C = ceil(n_in / E): input chunks (one chunk = E inputs issued together)."""
        return -(-self.n_in // self.events)

    @property
    def memory_depth(self) -> int:
        """Words per bank: group ``g``, chunk ``c`` at address ``g * C + c``."""
        return self.chunks * self.groups

    @property
    def memory_width(self) -> int:
        """Bits per word: ``P`` weights."""
        return self.lanes * self.weight_bits

    @property
    def lane_terms(self) -> int:
        """Most terms the adder tree of one lane sums: its ``E`` products, a product built from LUTs
        (``lut_products``) as two registered halves (``hw.logic._product_halves``). The LUT-built products
        are the last ones in product order (event fastest), so one lane holds ``min(E, lut_products)`` of
        them at most."""
        return self.events + min(self.events, self.lut_products)

    @property
    def tree_stages(self) -> int:
        """Register stages of the adder tree over a lane's ``lane_terms``: one per ``Timing.TREE_TERMS``-fold
        reduction (1 for up to 8 terms)."""
        n, stages = self.lane_terms, 1
        while n > Timing.TREE_TERMS:
            n, stages = -(-n // Timing.TREE_TERMS), stages + 1
        return stages

    @property
    def accumulate_cycles(self) -> int:
        """Issue of the last event chunk -> earliest update start: ``ACCUMULATE_BASE``,
        plus the segment-select stage when a bank has more than one segment, plus the adder tree's
        stages beyond the first (``tree_stages``)."""
        return (Timing.ACCUMULATE_BASE + (Timing.SEGMENT_SELECT if self.segments > 1 else 0)
                + self.tree_stages - 1)

    @property
    def scan_cycles(self) -> int:
        """Extra cycles of an event-scan phase with at least one event: the
        registered start (the chunk mask is latched), then ``accumulate_cycles - 1``
        after the last issue."""
        return self.accumulate_cycles

    @property
    def segment_depth(self) -> int:
        """Words per weight-memory segment: ``Timing.SEGMENT_DEPTH``, or the whole bank for a
        single-port memory (``single_port``)."""
        return max(1, self.memory_depth) if self.single_port else Timing.SEGMENT_DEPTH

    @property
    def segments(self) -> int:
        """Segments per bank: word ``a`` lives in segment ``a // segment_depth``."""
        return -(-self.memory_depth // self.segment_depth)

    def memory_words(self, weight, bank: int) -> list[int]:
        """Words of weight bank ``bank`` for an ``(n_in, n_out)`` integer matrix.

        Word ``g*C + c`` packs ``weight[c*E + bank, g*P + k]`` (two's complement,
        ``weight_bits`` wide) at bits ``k*weight_bits``; entries beyond the
        matrix are 0.  Used for the memories' initial contents and for the
        run-time write port, so both lay words out the same way.
        """
        if not 0 <= bank < self.events:
            raise ValueError(f"bank must be between 0 and {self.events - 1}, not {bank!r}")
        wb, mask = self.weight_bits, (1 << self.weight_bits) - 1
        words = []
        for grp in range(self.groups):
            for c in range(self.chunks):
                i = c * self.events + bank
                word = 0
                if i < self.n_in:
                    for k in range(self.lanes):
                        j = grp * self.lanes + k
                        if j < self.n_out:
                            word |= (int(weight[i, j]) & mask) << (k * wb)
                words.append(word)
        return words

    @property
    def update_cycles(self) -> int:
        """Duration of this layer's neuron-update phase."""
        return self.groups + Timing.UPDATE

    @property
    def multipliers(self) -> int:
        """x-by-weight products computed per cycle (pixel layers need real multipliers)."""
        return self.lanes * self.events


@dataclass(frozen=True)
class ConvGeometry(LayerGeometry):
    """How a conv layer (:class:`~sc_neurocore.params.ConvParams`) is laid out (``hw/conv.py``).

    All ``C_out`` channels of an output position are one word (``lanes = C_out``): a kernel tap is one
    weight word and one read-modify-write of one accumulator word per cycle, and the update visits one
    position per cycle pair. Memories: weights (``C_in*K*K`` words), accumulators and membranes
    (``H_o*W_o`` words each, block RAM).
    """

    conv: ConvParams = None

    @property
    def kind(self) -> str:
        return "conv"

    @property
    def groups(self) -> int:
        return 1

    @property
    def taps(self) -> int:
        """Cycles per non-zero input value: one per kernel tap (``K*K``)."""
        return self.conv.kernel ** 2

    @property
    def positions(self) -> int:
        """Output positions ``H_o * W_o`` (words of the accumulator and membrane memories)."""
        return self.conv.conv_shape[1] * self.conv.conv_shape[2]

    @property
    def weight_depth(self) -> int:
        """Words of the kernel memory: one per ``(ci, ky, kx)``."""
        return self.conv.in_shape[0] * self.taps

    @property
    def memory_depth(self) -> int:
        return self.weight_depth

    @property
    def memory_width(self) -> int:
        return self.lanes * self.weight_bits

    @property
    def segments(self) -> int:
        return 1

    @property
    def lane_terms(self) -> int:
        """A conv layer multiplies in its tap pipeline (``hw.conv``) and has no per-lane adder tree whose
        terms its LUT-built products would add to: as many as its events, as before."""
        return self.events

    @property
    def accumulate_cycles(self) -> int:
        """As ``LayerGeometry.accumulate_cycles``, counted from the cycle the last chunk is taken (its last
        tap): the write-back (``Timing.CONV_WRITE_BACK``), then the cycle in which the update may start."""
        return Timing.CONV_WRITE_BACK + 1

    @property
    def event_cycles(self) -> int:
        """A one-bit event streamed in by a conv layer costs its ``K*K`` taps."""
        return self.taps

    @property
    def update_cycles(self) -> int:
        """The update phase without spikes: the registered start and ``Timing.CONV_POSITION`` per position;
        each spike adds the next layer's ``event_cycles`` (it is streamed to it from the update)."""
        return Timing.CONV_UPDATE_START + Timing.CONV_POSITION * self.positions

    @property
    def multipliers(self) -> int:
        return self.lanes


def _resolve(name: str, spec, index: int, n_layers: int, default: int, cap: int) -> int:
    if spec is None:
        return min(default, cap)
    if isinstance(spec, tuple):
        if len(spec) != n_layers:
            raise ValueError(f"{name} must have one entry per layer ({n_layers}), not {spec!r}")
        v = spec[index]
        if v is None:
            return min(default, cap)
        if v > cap:
            raise ValueError(f"{name}[{index}] must be at most {cap} for this layer, not {v!r}")
        return v
    return min(spec, cap)


def double_buffer_refusal(network: NetworkParams) -> str | None:
    """Why ``CoreConfig.double_buffer`` cannot serve ``network``, or None when it can. The second accumulator
    set holds the next image's constant layer-1 current (spec §3.1), which only direct pixels into a dense
    layer have: rate and event inputs change every timestep."""
    if network.encoding != "direct":
        return (f"double_buffer needs direct pixel input (the current of layer 1 is then one weighted sum per "
                f"image), not {network.encoding!r} input")
    if network.layers[0].kind != "dense":
        return f"double_buffer needs a dense first layer, not a {network.layers[0].kind!r} layer"
    return None


class CoreGeometry:
    """A :class:`CoreConfig` applied to a network: every derived size of the core."""

    def __init__(self, network: NetworkParams, config: CoreConfig | None = None):
        if not isinstance(network, NetworkParams):
            raise TypeError(f"network must be a NetworkParams, not {type(network).__name__}")
        if config is None:
            config = CoreConfig()
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {type(config).__name__}")
        self.network = network
        self.config = config
        L = len(network.layers)
        ppb = config.pixels_per_beat
        if config.weight_port and any(lp.kind == "conv" for lp in network.layers):
            raise ValueError("the run-time weight port does not support conv layers yet: build with weight_port=False")
        if config.double_buffer and (refusal := double_buffer_refusal(network)):
            raise ValueError(refusal)
        layers = []
        for i, lp in enumerate(network.layers):
            if i and network.layers[i - 1].kind == "conv":
                # A conv layer streams its pooled spikes as one-bit events, one input index each.
                if isinstance(config.events, tuple) and config.events[i] not in (None, 1):
                    raise ValueError(f"events[{i}] must be 1 (the layer after a conv layer takes one event at a "
                                     f"time), not {config.events[i]!r}")
                lanes = _resolve("lanes", config.lanes, i, L, lp.n_out, lp.n_out) if lp.kind == "dense" else None
                layers.append(self._layer(i, lp, lanes, 1, 1, lp.n_in, network.layers[i - 1].out_max))
                continue
            # Layer 1 takes multi-bit values from the bus (direct pixels, event counts) or one-bit spikes
            # (the rate encoder's); event counts travel like direct pixels, one lane per input per beat.
            pixel_input = i == 0 and network.encoding in ("direct", "events")
            lanes = _resolve("lanes", config.lanes, i, L, lp.n_out, lp.n_out)
            if i == 0:
                default_e = math.gcd(ppb, 2 if pixel_input else 4)
                events = _resolve("events", config.events, i, L, default_e, ppb)
                if ppb % events:
                    raise ValueError(
                        f"events[0] must divide pixels_per_beat ({ppb}), not {events!r}")
            else:
                events = _resolve("events", config.events, i, L, 4, lp.n_in)
            # The first layer's chunks are numbered beat by beat, so the
            # padding of the last beat extends the index space.
            space = -(-lp.n_in // events) if i else -(-lp.n_in // ppb) * (ppb // events)
            layers.append(self._layer(i, lp, lanes, events, network.input_bits if pixel_input else 1, space, 0))
        if config.dsp_limit is not None:
            left = config.dsp_limit
            for k, lg in enumerate(layers):
                if lg.x_bits > 1:
                    dsp = min(lg.multipliers, left)
                    left -= dsp
                    layers[k] = dataclasses.replace(lg, lut_products=lg.multipliers - dsp)
        if config.weight_memory == "single_port":
            layers = [dataclasses.replace(lg, single_port=True) for lg in layers]
        self.layers: tuple[LayerGeometry, ...] = tuple(layers)

    @staticmethod
    def _layer(i, lp, lanes, events, x_bits, space, x_limit) -> LayerGeometry:
        if lp.kind == "conv":
            # every output channel of a position at once: one accumulator / membrane word per position
            return ConvGeometry(i, lp.n_in, lp.n_out, lp.channels, events, x_bits, lp.weight_bits, space, x_limit,
                                conv=lp)
        return LayerGeometry(i, lp.n_in, lp.n_out, lanes, events, x_bits, lp.weight_bits, space, x_limit)

    # -- stream interface -------------------------------------------------
    @property
    def pixels_per_beat(self) -> int:
        return self.config.pixels_per_beat

    @property
    def n_inputs(self) -> int:
        return self.network.sizes[0]

    @property
    def n_classes(self) -> int:
        return self.network.n_classes

    @property
    def beats(self) -> int:
        """K = ceil(n_0 / PPB): input beats per image."""
        return beats_per_image(self.n_inputs, self.pixels_per_beat)

    @property
    def chunks_per_beat(self) -> int:
        return self.pixels_per_beat // self.layers[0].events

    @property
    def s_axis_tdata_width(self) -> int:
        return in_width(self.pixels_per_beat)

    @property
    def score_signed(self) -> bool:
        return self.network.readout == "membrane"

    @property
    def score_width(self) -> int:
        return self.network.score_format.width

    @property
    def m_axis_tdata_width(self) -> int:
        return out_width(self.n_classes, self.score_width)

    @property
    def count_width(self) -> int:
        """Width of a spike counter (0 … T)."""
        return max(1, self.network.T.bit_length())

    # -- run-time weight port (CoreConfig.weight_port) ---------------------
    @property
    def weight_port_widths(self) -> dict:
        """Widths of the ``wgt_layer``, ``wgt_bank``, ``wgt_addr`` and ``wgt_data`` ports."""
        def bits(n):
            return max(1, (n - 1).bit_length())
        return {"layer": bits(len(self.layers)), "bank": bits(max(lg.events for lg in self.layers)),
                "addr": bits(max(lg.memory_depth for lg in self.layers)),
                "data": max(lg.memory_width for lg in self.layers)}

    def weight_writes(self, network: NetworkParams | None = None) -> list[tuple[int, int, int, int]]:
        """``(layer, bank, addr, word)`` for every weight word of ``network`` (default: this one).

        ``network`` must have the same layer sizes and weight widths as the
        network this geometry was built for; writing all these words through
        the weight port makes the core compute ``network``'s weights (its
        thresholds, shifts and T are fixed in the gateware).
        """
        net = self.network if network is None else network
        if not isinstance(net, NetworkParams):
            raise TypeError(f"network must be a NetworkParams, not {type(net).__name__}")
        shape = [(lp.n_in, lp.n_out, lp.weight_bits) for lp in net.layers]
        mine = [(lp.n_in, lp.n_out, lp.weight_bits) for lp in self.network.layers]
        if shape != mine:
            raise ValueError(f"network must have the core's layer sizes and weight widths {mine}, not {shape}")
        out = []
        for lg, lp in zip(self.layers, net.layers):
            for b in range(lg.events):
                out += [(lg.index, b, a, w) for a, w in enumerate(lg.memory_words(lp.weight, b))]
        return out

    # -- readout ----------------------------------------------------------
    @property
    def argmax_levels(self) -> int:
        """Register levels of the argmax comparison tree."""
        return (self.n_classes - 1).bit_length()

    @property
    def argmax_wait(self) -> int:
        """Cycles the sequencer waits for the argmax tree: its levels, at least ``Timing.ARGMAX_MIN_WAIT``."""
        return max(Timing.ARGMAX_MIN_WAIT, self.argmax_levels)

    @property
    def readout_cycles(self) -> int:
        """From the end of the last update phase to ``m_axis_tvalid``: the argmax
        wait plus the output register."""
        return self.argmax_wait + Timing.OUTPUT_REGISTER

    def __repr__(self) -> str:
        return (f"CoreGeometry(sizes={self.network.sizes}, lanes={[g.lanes for g in self.layers]}, "
                f"events={[g.events for g in self.layers]}, pixels_per_beat={self.pixels_per_beat})")
