"""Amaranth gateware of the fixed-point LIF core (``docs/fixed_point.md``, ``docs/hardware.md``).

Blocks, each a :class:`~amaranth.lib.wiring.Component`:

* :class:`LIFLayer` - weight memories (one bank per event slot), the
  accumulators of the weighted sums, the membranes and the update pipeline of
  one fully connected layer.
* :class:`BeatChunker` - turns beats of ``PPB`` input values into event
  chunks of ``E`` values, skipping all-zero chunks (first layer).
* :class:`SpikeScanner` - turns a spike vector into event chunks, skipping
  silent chunks (every later layer).
* :class:`RateEncoder` - pixel buffer plus the LFSR of spec §3.2, replays
  the image as spike beats once per timestep.
* :class:`Argmax` - registered comparison tree, ties to the lowest class.
* :class:`LIFCore` - the sequencer, with ``stream`` interfaces.
* :class:`AXIStreamTop` - :class:`LIFCore` with AXI4-Stream port names; this
  is what :func:`build_core` returns and what is exported as
  ``sc_neurocore_top``.

Pipeline depths are :class:`~sc_neurocore.hw.config.Timing` constants; the
latency model reads the same constants.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sc_neurocore.params import LFSR_STEPS_PER_INPUT, LayerParams, NetworkParams

from .config import CoreConfig, CoreGeometry, LayerGeometry, Timing
from .stream import CLASS_BITS, PIXEL_BITS
from .lfsr import WIDTH as LFSR_WIDTH, step_matrix

__all__ = ["event_layout", "weight_write_layout", "LIFLayer", "BeatChunker", "SpikeScanner", "RateEncoder", "Argmax",
           "LIFCore", "AXIStreamTop", "build_core"]


def _index(n: int):
    """Shape of an index ``0 … n-1``; at least one bit, since a zero-width
    signal becomes a ``[-1:0]`` vector in the Verilog (Verilator ASCRANGE)."""
    return unsigned(max(1, (n - 1).bit_length()))


def _lowest_set(m: Module, vec, width: int, name: str):
    """One-hot mask and index of the lowest set bit of ``vec`` (both 0 when none), combinational.

    ``vec & -vec`` runs on the carry chain and each index bit is an OR of
    one-hot bits, so the depth grows with ``log(width)``, not with ``width``
    as a priority chain of ``Mux`` would.  Plain expressions (continuous
    assignments), not ``m.If`` statements: see :func:`_select` for why.
    """
    onehot = Signal(width, name=f"{name}_onehot")
    idx = Signal(max(1, (width - 1).bit_length()), name=name)
    m.d.comb += onehot.eq(vec & (~vec + 1))
    for bit in range(len(idx)):
        ones = [onehot[i] for i in range(width) if (i >> bit) & 1]
        m.d.comb += idx[bit].eq(Cat(*ones).any() if ones else 0)
    return onehot, idx


def _select_onehot(items, onehot):
    """``items[i]`` for the set bit ``i`` of ``onehot`` (0 when none): an AND-OR multiplexer.

    ``onehot`` is a value or a list of 1-bit conditions, at most one of them true.
    """
    items = [Value.cast(x) for x in items]
    terms = [Mux(onehot[i], x, 0) for i, x in enumerate(items)]
    while len(terms) > 1:   # balanced OR tree
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def _select(items, sel):
    """``items[sel]`` (0 when ``sel`` is out of range), as an AND-OR multiplexer.

    ``Array(items)[sel]`` would do the same, but it becomes a ``casez`` inside a
    combinational ``always @*`` block in the exported Verilog.  Such a block only
    runs when one of its inputs changes, and under IEEE 1800 scheduling (Icarus
    with ``-g2012``, as cocotb compiles) neither the registers' declaration
    initialisers nor yosys's dummy trigger register produce that event at time 0.
    Where every input is a register that keeps its initial value until the
    multiplexer is first used (the group counters and accumulators of a grouped
    layer), its output stayed ``X`` and poisoned an accumulator.  Continuous
    assignments (``Mux``, ``==``, ``|``) are evaluated at time 0, so this form
    has a defined value from the start.
    """
    items = [Value.cast(x) for x in items]
    if len(items) == 1:
        return items[0]
    shape = Shape.cast(items[0].shape())
    out = _select_onehot(items, [sel == i for i in range(len(items))])   # the decoded terms are one-hot
    return out.as_signed() if shape.signed else out.as_unsigned()


class _Stage(SimpleNamespace):
    """The registers of one pipeline stage (``valid`` and the stage's data), handed to the next stage."""


def _check_depth(what: str, built: int, timing: int) -> None:
    """The pipeline just built must have the depth :class:`~sc_neurocore.hw.config.Timing` promises the latency model."""
    if built != timing:
        raise AssertionError(f"the {what} has {built} register stages, but Timing (the latency model) says {timing}")


def _shift_in(m: Module, ring, value) -> None:
    """Shift a ring of registers towards position 0 and load ``value`` into its tail (synchronous)."""
    m.d.sync += [ring[p].eq(ring[p + 1]) for p in range(len(ring) - 1)]
    m.d.sync += ring[-1].eq(value)


def weight_write_layout(banks: int, depth: int, width: int, layers: int | None = None) -> data.StructLayout:
    """Payload of a weight write: (which layer,) which bank, the word address and the word."""
    fields = {"layer": _index(layers)} if layers is not None else {}
    fields.update({"bank": _index(banks), "addr": _index(depth), "data": unsigned(width)})
    return data.StructLayout(fields)


def event_layout(chunk_count: int, events: int, x_bits: int) -> data.StructLayout:
    """Payload of an event chunk: its index and the ``events`` input values in it."""
    return data.StructLayout({
        "chunk": unsigned(max(1, (chunk_count - 1).bit_length())),
        "x": data.ArrayLayout(unsigned(x_bits), events),
    })


class LIFLayer(wiring.Component):
    """One fully connected LIF layer (spec §4) with its weights in on-chip memory.

    Accumulate path, one event chunk per ``G`` cycles (``events.ready`` is
    high in the chunk's last group cycle):

    * issue: the chunk is taken; address ``g * C + chunk`` (input ``c*E + b``
      lives in bank ``b``, all its weights for lanes ``g*P … g*P+P-1`` in one
      word) is registered (stage a) and read (stage m) from every segment
      of the bank (:attr:`LayerGeometry.segments`);
    * stage r: each segment's word is registered next to its block RAM;
    * stage 1: the addressed segment's word is selected and registered
      (only when the bank has more than one segment);
    * stage 2: multiply by the input values (pixels) or gate them (spikes);
    * stage 3: sum the ``E`` products of each lane;
    * stage 4: add into the accumulator of neuron ``g*P + k``.

    Update path (``update`` pulse, then ``G`` groups of ``P`` neurons,
    issued from the pulse's own cycle):

    * issue: read accumulator and membrane, ``I = a >>> s``, leak;
    * stage 1: ``u = clamp(v' + I)``;
    * stage 2: fire, reset, write membrane / spike / spike count.

    The accumulators of a spiking-input layer are cleared as they are read,
    ready for the next timestep; a pixel-input (direct) layer keeps its
    accumulators for all ``T`` timesteps (spec §3.1: the current is constant).
    ``clear`` (start of an image) zeroes accumulators, membranes and counters
    at the end of the cycle after the pulse.
    """

    def __init__(self, layer: LayerParams, geom: LayerGeometry, *, reset: str, spiking: bool,
                 count_width: int | None = None, keep_current: bool = False, weight_port: bool = False):
        if not isinstance(layer, LayerParams):
            raise TypeError(f"layer must be a LayerParams, not {layer!r}")
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', not {reset!r}")
        self._layer = layer
        self._geom = geom
        self._reset = reset
        self._spiking = bool(spiking)
        self._keep = bool(keep_current)
        x_max = (1 << geom.x_bits) - 1
        self.acc_format = layer.accumulator_format(x_max)
        self.current_format = layer.current_format(x_max)
        n = geom.n_out
        members = {
            "events": In(stream.Signature(event_layout(geom.chunk_space, geom.events, geom.x_bits))),
            "acc_busy": Out(1),
            "update": In(1),
            "update_busy": Out(1),
            "clear": In(1),
            "spikes": Out(n),
            "membrane": Out(data.ArrayLayout(layer.membrane_format.amaranth_shape, n)),
        }
        if count_width is not None:
            members["counts"] = Out(data.ArrayLayout(unsigned(count_width), n))
        if weight_port:
            members["wr"] = In(stream.Signature(weight_write_layout(
                geom.events, geom.memory_depth, geom.memory_width), always_ready=True))
        self._count_width = count_width
        self._weight_port = bool(weight_port)
        super().__init__(members)

    @property
    def geometry(self) -> LayerGeometry:
        return self._geom

    def memory_init(self, bank: int) -> list[int]:
        """Initial words of weight bank ``bank`` (:meth:`LayerGeometry.memory_words` of the bundle's weights)."""
        return self._geom.memory_words(self._layer.weight, bank)

    def elaborate(self, platform):
        m = Module()
        acc, v = self._rings()
        ports, lo = self._weight_memories(m)
        ev_base = self._issue(m)
        # The accumulate path's register stages, in order; their number is
        # LayerGeometry.accumulate_cycles (Timing), checked below.
        a = self._stage_address(m, ev_base, ports)
        ms = self._stage_memory(m, a, lo)
        r = self._stage_word_register(m, ms, ports)
        s1 = self._stage_segment_select(m, r)
        s2 = self._stage_products(m, s1)
        s3 = self._stage_adder_tree(m, s2)
        self._stage_accumulate(m, s3, acc)
        # Not s3_valid: the last accumulate is written at the end of that cycle,
        # and an update started in it reads the accumulators only a cycle later.
        m.d.comb += self.acc_busy.eq(a.valid | ms.valid | r.valid | s1.busy | s2.valid)
        stages = [a, ms, r] + ([s1] if s1.registered else []) + [s2, s3]
        _check_depth("accumulate path of " + self._name(), len(stages), self._geom.accumulate_cycles)

        u_active, u_issue, u_g = self._update_issue(m)
        u1 = self._update_leak(m, u_issue, u_g, acc, v)
        u2 = self._update_integrate(m, u1)
        v_shift = u1.v_shift
        self._update_fire(m, u2, v, v_shift)
        # Registered flags only (no path from `update`): the sequencer looks at
        # busy from the cycle after the start pulse, and a combinational path
        # back to its own start outputs would be a (false) loop.
        m.d.comb += self.update_busy.eq(u_active | u1.valid | u2.valid)
        m.d.comb += v_shift.eq(u_active | u1.valid | u2.valid)
        # Registered start pulse, then the two update stages.
        _check_depth("update path of " + self._name(), 1 + len((u1, u2)), Timing.UPDATE)

        self._clear(m, acc, v)
        return m

    def _name(self) -> str:
        return f"layer {self._geom.index}"

    def _rings(self):
        # Lane k serves neurons k, P+k, 2P+k, ... (one per group).  Its
        # accumulators and membranes are rings of G registers that every pass
        # visits in group order (the accumulate path once per event chunk, the
        # update once per timestep), so a lane reads a fixed position and the
        # ring shifts, instead of a G:1 multiplexer in front of every adder
        # and a decoder behind it.  After a whole pass (G shifts) position p
        # holds group p again, which is when the ports are looked at.  A lane
        # without a neuron in the last group pads its rings with a register
        # that stays 0 (its weights are 0).
        g = self._geom
        P, G, n = g.lanes, g.groups, g.n_out
        acc_shape = self.acc_format.amaranth_shape
        v_fmt = self._layer.membrane_format
        acc = [[Signal(acc_shape, name=f"acc{p * P + k}" if p * P + k < n else f"acc_pad{k}") for p in range(G)]
               for k in range(P)]
        v = [[self.membrane[p * P + k] if p * P + k < n else Signal(v_fmt.amaranth_shape, name=f"v_pad{k}")
              for p in range(G)] for k in range(P)]
        return acc, v

    def _weight_memories(self, m):
        """The weight banks, each split into segments: ``ports[b][s]`` and the segment's address bits ``lo``."""
        g = self._geom
        E = g.events
        # Each bank is split into segments of at most SEGMENT words, each with
        # its own output register next to its block RAM; the select between
        # segments comes one stage later.  Left to yosys, a deep memory
        # becomes several block RAMs whose outputs meet in a LUT multiplexer
        # right after the (slow) clock-to-out, routed across the die.
        SEG, nseg = g.segment_depth, g.segments
        lo = max(1, (SEG - 1).bit_length()) if nseg > 1 else _index(g.memory_depth).width
        ports = []   # ports[b][s]
        for b in range(E):
            init = self.memory_init(b)
            bank = []
            for sg in range(nseg):
                words = init[sg * SEG:(sg + 1) * SEG]
                mem = Memory(shape=unsigned(g.memory_width), depth=len(words), init=words)
                m.submodules[f"weights{b}_{sg}" if nseg > 1 else f"weights{b}"] = mem
                bank.append(mem.read_port())
                if self._weight_port:
                    wp = mem.write_port()
                    hit = self.wr.valid & (self.wr.payload.bank == b)
                    if nseg > 1:
                        hit = hit & ((self.wr.payload.addr >> lo) == sg)
                    m.d.comb += [wp.addr.eq(self.wr.payload.addr[:len(wp.addr)]), wp.data.eq(self.wr.payload.data),
                                 wp.en.eq(hit)]
            ports.append(bank)
        return ports, lo

    def _issue(self, m):
        """Accumulate issue: the group counter and the group's base address.

        Group-major words (``g*C + c``): the group's base address is a
        counter, so the address is one adder after the event source's
        priority logic instead of a multiplication by ``G``.
        """
        g = self._geom
        G, C = g.groups, g.chunks
        ev_g = Signal(_index(G), name="ev_group")
        ev_base = Signal(_index(g.memory_depth), name="ev_base")
        m.d.comb += self.events.ready.eq(ev_g == G - 1)
        with m.If(self.events.valid):
            m.d.sync += [ev_g.eq(Mux(ev_g == G - 1, 0, ev_g + 1)),
                         ev_base.eq(Mux(ev_g == G - 1, 0, ev_base + C))]
        return ev_base

    def _stage_address(self, m, ev_base, ports):
        """Stage a: registered address; cuts the path from the event source
        (priority encoder, chunk select) to the memories' address pins."""
        g = self._geom
        st = _Stage(valid=Signal(name="a_valid"), x=Signal(data.ArrayLayout(unsigned(g.x_bits), g.events), name="a_x"),
                    addr=Signal(_index(g.memory_depth), name="a_addr"))
        m.d.sync += [st.valid.eq(self.events.valid), st.x.eq(self.events.payload.x),
                     st.addr.eq(self.events.payload.chunk + ev_base)]
        for bank in ports:
            for port in bank:
                m.d.comb += port.addr.eq(st.addr[:len(port.addr)])
        return st

    def _stage_memory(self, m, a, lo):
        """Stage m: the words arrive."""
        g = self._geom
        nseg = g.segments
        st = _Stage(valid=Signal(name="m_valid"), x=Signal(data.ArrayLayout(unsigned(g.x_bits), g.events), name="m_x"),
                    seg=Signal(_index(nseg), name="m_seg"))
        m.d.sync += [st.valid.eq(a.valid), st.x.eq(a.x), st.seg.eq(a.addr >> lo if nseg > 1 else 0)]
        return st

    def _stage_word_register(self, m, ms, ports):
        """Stage r: every segment's word registered (memory clock-to-out is
        slow; nothing but a flip-flop follows it)."""
        g = self._geom
        E, nseg = g.events, g.segments
        st = _Stage(valid=Signal(name="r_valid"), x=Signal(data.ArrayLayout(unsigned(g.x_bits), E), name="r_x"),
                    seg=Signal(_index(nseg), name="r_seg"),
                    w=[[Signal(g.memory_width, name=f"word{b}_{sg}") for sg in range(nseg)] for b in range(E)])
        m.d.sync += [st.valid.eq(ms.valid), st.x.eq(ms.x), st.seg.eq(ms.seg)]
        m.d.sync += [st.w[b][sg].eq(ports[b][sg].data) for b in range(E) for sg in range(nseg)]
        return st

    def _stage_segment_select(self, m, r):
        """Stage 1: the addressed segment's word (registered, so the
        multipliers start from a flip-flop); a single segment needs no select."""
        g = self._geom
        E = g.events
        if g.segments > 1:
            st = _Stage(valid=Signal(name="s1_valid"), x=Signal(data.ArrayLayout(unsigned(g.x_bits), E), name="s1_x"),
                        w=[Signal(g.memory_width, name=f"word{b}") for b in range(E)], registered=True)
            m.d.sync += [st.valid.eq(r.valid), st.x.eq(r.x)]
            m.d.sync += [st.w[b].eq(_select(r.w[b], r.seg)) for b in range(E)]
            st.busy = st.valid
            return st
        return _Stage(valid=r.valid, x=r.x, w=[r.w[b][0] for b in range(E)], registered=False, busy=Const(0))

    def _stage_products(self, m, s1):
        """Stage 2: multiply by the input values (pixels) or gate them (spikes)."""
        g = self._geom
        P, E, wb = g.lanes, g.events, self._layer.weight_bits
        prod_shape = signed(wb + g.x_bits + 1)
        st = _Stage(valid=Signal(name="s2_valid"), p=[[Signal(prod_shape, name=f"prod{b}_{k}") for k in range(P)] for b in range(E)])
        m.d.sync += st.valid.eq(s1.valid)
        for b in range(E):
            for k in range(P):
                w = s1.w[b][k * wb:(k + 1) * wb].as_signed()
                x = s1.x[b]
                # A spike only gates the weight; a pixel needs a multiplier.
                p = Mux(x, w, 0) if g.x_bits == 1 else x.as_unsigned() * w
                m.d.sync += st.p[b][k].eq(p)
        return st

    def _stage_adder_tree(self, m, s2):
        """Stage 3: adder tree over the E products of each lane."""
        P, E = self._geom.lanes, self._geom.events
        st = _Stage(valid=Signal(name="s3_valid"), sum=[Signal(self.acc_format.amaranth_shape, name=f"sum{k}") for k in range(P)])
        m.d.sync += st.valid.eq(s2.valid)
        for k in range(P):
            terms = [s2.p[b][k] for b in range(E)]
            while len(terms) > 1:
                terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                         for i in range(0, len(terms), 2)]
            m.d.sync += st.sum[k].eq(terms[0])
        return st

    def _stage_accumulate(self, m, s3, acc):
        """Stage 4: add into the accumulator of neuron ``g*P + k``.

        One adder per lane.  The accumulator is taken a stage early (while
        stage 3 still adds) so that this stage is only the adder: the ring's
        head, or, when stage 3 is about to shift the ring, the next
        position (with G = 1: the sum being written, forwarded).  Stages 2
        and 3 hold consecutive groups whenever both are valid, since one
        group is issued per cycle in order.
        """
        G = self._geom.groups
        acc_shape = self.acc_format.amaranth_shape
        for k in range(self._geom.lanes):
            ring = acc[k]
            pre = Signal(acc_shape, name=f"acc_pre{k}")
            total = Signal(acc_shape, name=f"acc_next{k}")
            m.d.comb += total.eq(pre + s3.sum[k])
            m.d.sync += pre.eq(Mux(s3.valid, total if G == 1 else ring[1], ring[0]))
            with m.If(s3.valid):
                _shift_in(m, ring, total)

    def _update_issue(self, m):
        """Update issue: the registered start pulse, then one group per cycle.

        The pulse is registered first: the groups are issued from the cycle
        after it, so no path runs from the sequencer into the membranes.
        The sequencer never updates a layer while it accumulates, so the
        accumulator ring is shifted by one path at a time.
        """
        G = self._geom.groups
        u_active = Signal()
        u_next = Signal(_index(G))
        u_issue = Signal()
        u_g = Signal(_index(G))
        m.d.comb += [u_issue.eq(u_active), u_g.eq(u_next)]
        with m.If(self.update):
            m.d.sync += [u_active.eq(1), u_next.eq(0)]
        with m.Elif(u_issue):
            m.d.sync += [u_active.eq(u_g != G - 1), u_next.eq(Mux(u_g == G - 1, 0, u_g + 1))]
        return u_active, u_issue, u_g

    def _update_leak(self, m, u_issue, u_g, acc, v):
        """Update issue cycle: read accumulator and membrane, ``I = a >>> s``, leak."""
        g, lp = self._geom, self._layer
        P, G = g.lanes, g.groups
        cur_shape = self.current_format.amaranth_shape
        v_fmt = lp.membrane_format
        st = _Stage(valid=Signal(name="u1_valid"), g=Signal(_index(G), name="u1_g"), i=[Signal(cur_shape, name=f"cur{k}") for k in range(P)],
                    v=[Signal(v_fmt.amaranth_shape, name=f"vleak{k}") for k in range(P)])
        m.d.sync += [st.valid.eq(u_issue), st.g.eq(u_g)]
        # The membrane ring shifts in every cycle of the pass, G issue cycles
        # and the 2 cycles that drain the pipeline, and its tail takes the
        # value written back then (group g-2 in the cycle group g is issued,
        # don't-care before the first write-back).  So group g is at the head
        # when it is issued, and after G+2 shifts position p holds group p's
        # new membrane: no select, and no path from the group counter.
        st.v_shift = Signal(name="v_shift")
        return self._leak_lanes(m, st, u_issue, acc, v)

    def _leak_lanes(self, m, st, u_issue, acc, v):
        lp = self._layer
        for k in range(self._geom.lanes):
            a_sel = acc[k][0]
            v_sel = v[k][0]
            # >> on a signed value is arithmetic: floor division (spec §4.2, §4.3).
            m.d.sync += st.i[k].eq(a_sel >> lp.current_shift)
            if lp.leak_shift:
                m.d.sync += st.v[k].eq(v_sel - (v_sel >> lp.leak_shift))
            else:
                m.d.sync += st.v[k].eq(v_sel)
            with m.If(u_issue):
                # Rotate: a pixel-input (direct) layer keeps its weighted sums
                # for all T timesteps; a spiking-input layer's sum is per
                # timestep, cleared as it is consumed.
                _shift_in(m, acc[k], a_sel if self._keep else 0)
        return st

    def _update_integrate(self, m, u1):
        """Update stage 1: integrate and saturate (the only saturating step)."""
        g, lp = self._geom, self._layer
        P, mb, v_fmt = g.lanes, lp.membrane_bits, lp.membrane_format
        cur_shape = self.current_format.amaranth_shape
        st = _Stage(valid=Signal(name="u2_valid"), g=Signal(_index(g.groups), name="u2_g"),
                    u=[Signal(v_fmt.amaranth_shape, name=f"u{k}") for k in range(P)])
        m.d.sync += [st.valid.eq(u1.valid), st.g.eq(u1.g)]
        for k in range(P):
            # One bit wider than the wider operand: the sum cannot wrap before the clamp.
            s = Signal(signed(max(cur_shape.width, mb) + 1), name=f"vsum{k}")
            m.d.comb += s.eq(u1.v[k] + u1.i[k])
            # s fits the membrane iff its bits from mb-1 up are all equal (all
            # sign): a few LUTs, where `s > max` and `s < min` would be two
            # more carry chains after the adder.
            top = s[mb - 1:]
            fits = (top == 0) | (top == (1 << len(top)) - 1)
            m.d.sync += st.u[k].eq(Mux(fits, s[:mb], Mux(s[-1], v_fmt.min, v_fmt.max)))
        return st

    def _update_fire(self, m, u2, v, v_shift):
        """Update stage 2: fire, reset, write back membrane / spike / spike count."""
        g, lp = self._geom, self._layer
        P, G, n, mb = g.lanes, g.groups, g.n_out, lp.membrane_bits
        thr = lp.threshold
        for k in range(P):
            u = v_new = u2.u[k]
            if self._spiking:
                # One subtractor serves the comparison and the reset: z = (u - theta >= 0).
                d = Signal(signed(mb + 1), name=f"over{k}")
                m.d.comb += d.eq(u - thr)
                z = ~d[-1]
                v_new = Mux(z, d[:mb], u) if self._reset == "subtract" else Mux(z, 0, u)   # 0 <= u - theta < u
            with m.If(v_shift):
                _shift_in(m, v[k], v_new)
            if self._spiking:
                for grp in range(G):
                    j = grp * P + k
                    if j >= n:
                        continue
                    with m.If(u2.valid & (u2.g == grp)):
                        m.d.sync += self.spikes[j].eq(z)
                        if self._count_width is not None:
                            m.d.sync += self.counts[j].eq(self.counts[j] + z)

    def _clear(self, m, acc, v):
        """Clear (start of an image); last, so it wins.

        Registered first: the pulse comes from the sequencer (and, through
        the result handshake, from m_axis_tready), and it fans out to every
        accumulator and membrane bit.  Acting a cycle late is safe: the next
        image's first accumulate lands `accumulate_cycles` after its first
        chunk, which comes at least a cycle after the pulse.
        """
        clear_q = Signal(name="clear_q")
        m.d.sync += clear_q.eq(self.clear)
        with m.If(clear_q):
            m.d.sync += [a.eq(0) for ring in acc for a in ring]
            m.d.sync += [x.eq(0) for ring in v for x in ring]
            m.d.sync += self.spikes.eq(0)
            if self._count_width is not None:
                m.d.sync += [self.counts[j].eq(0) for j in range(self._geom.n_out)]


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
        return m


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
        return m


class Argmax(wiring.Component):
    """Registered comparison tree over the scores: ``levels`` cycles, ties to the lowest index.

    Each node keeps its left operand unless the right one is strictly larger;
    left always holds the lower indices, so the lowest index of the maximum
    wins (spec §5).
    """

    def __init__(self, n: int, score_shape):
        self._n = n
        super().__init__({
            "scores": In(data.ArrayLayout(score_shape, n)),
            "index": Out(CLASS_BITS),
        })

    @property
    def levels(self) -> int:
        return (self._n - 1).bit_length()

    def elaborate(self, platform):
        m = Module()
        shape = self.scores.shape().elem_shape
        items = [(self.scores[i], Const(i, CLASS_BITS)) for i in range(self._n)]
        level = 0
        while len(items) > 1:
            nxt = []
            for p in range(0, len(items), 2):
                s_reg = Signal(shape, name=f"best{level}_{p // 2}")
                i_reg = Signal(CLASS_BITS, name=f"idx{level}_{p // 2}")
                if p + 1 < len(items):
                    (sa, ia), (sb, ib) = items[p], items[p + 1]
                    take_b = sb > sa
                    m.d.sync += [s_reg.eq(Mux(take_b, sb, sa)), i_reg.eq(Mux(take_b, ib, ia))]
                else:
                    m.d.sync += [s_reg.eq(items[p][0]), i_reg.eq(items[p][1])]
                nxt.append((s_reg, i_reg))
            items = nxt
            level += 1
        m.d.comb += self.index.eq(items[0][1])
        return m


def result_layout(geom: CoreGeometry) -> data.StructLayout:
    """``m_axis_tdata`` (:mod:`sc_neurocore.hw.stream`): class at bits ``[CLASS_BITS-1:0]``, score ``c`` at
    ``CLASS_BITS + SW*c``."""
    shape = signed(geom.score_width) if geom.score_signed else unsigned(geom.score_width)
    return data.StructLayout({"cls": unsigned(CLASS_BITS), "scores": data.ArrayLayout(shape, geom.n_classes)})


class LIFCore(wiring.Component):
    """The whole network: one image in (``K`` beats of ``PPB`` pixels), one result out.

    Sequencer phases (``docs/hardware.md`` has the timing of each):
    ``IN`` (beats accepted; direct: accumulated into layer 1 as they arrive;
    rate: stored), then per timestep ``ENC`` (rate only: replay the image
    through the LFSR into layer 1), and per layer ``SCAN`` (layers 2…L: the
    previous layer's spikes as events) and ``UPD`` (neuron update), then
    ``ARGMAX`` and the output register.  Each phase starts its block in the
    cycle the previous phase ends.
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
        # properties) can reach the membranes and counters.
        self.layers = [
            LIFLayer(lp, lg, reset=network.reset, spiking=network.spiking(i),
                     count_width=geo.count_width if (i == L - 1 and network.readout == "spike_count") else None,
                     keep_current=(i == 0 and direct), weight_port=geo.config.weight_port)
            for i, (lp, lg) in enumerate(zip(network.layers, geo.layers))]

    def elaborate(self, platform):
        m = Module()
        net, geo = self.network, self.geometry
        L, T, K, ppb = len(net.layers), net.T, geo.beats, geo.pixels_per_beat
        direct = net.encoding == "direct"

        layers = self.layers
        for i, lay in enumerate(layers):
            m.submodules[f"layer{i}"] = lay
            if geo.config.weight_port:
                w, lg = self.weights, geo.layers[i]
                m.d.comb += [
                    lay.wr.valid.eq(w.valid & (w.payload.layer == i)),
                    lay.wr.payload.bank.eq(w.payload.bank[:len(lay.wr.payload.bank)]),
                    lay.wr.payload.addr.eq(w.payload.addr[:len(lay.wr.payload.addr)]),
                    lay.wr.payload.data.eq(w.payload.data[:lg.memory_width]),
                ]
        scanners = [None]
        for i in range(1, L):
            sc = SpikeScanner(geo.layers[i])
            m.submodules[f"scan{i}"] = sc
            m.d.comb += sc.spikes.eq(layers[i - 1].spikes)
            wiring.connect(m, sc.events, layers[i].events)
            scanners.append(sc)
        m.submodules.chunker = chunker = BeatChunker(geo)
        wiring.connect(m, chunker.events, layers[0].events)

        # Padding pixels of the last beat are forced to zero, whatever the
        # source sends, so they never become events.
        beats_in = Signal(_index(K + 1))
        last_real = net.sizes[0] - (K - 1) * ppb
        masked = Signal(self.pixels.payload.shape())
        for j in range(ppb):
            pad = (beats_in == K - 1) if j >= last_real else Const(0)
            m.d.comb += masked[j].eq(Mux(pad, 0, self.pixels.payload[j]))

        encoder = None
        if not direct:
            m.submodules.encoder = encoder = RateEncoder(geo)
            wiring.connect(m, encoder.beats, chunker.beats)
            m.d.comb += encoder.fill.payload.eq(masked)

        last = layers[-1]
        scores = last.counts if net.readout == "spike_count" else last.membrane
        m.submodules.argmax = argmax = Argmax(geo.n_classes, result_layout(geo).members["scores"].elem_shape)
        m.d.comb += argmax.scores.eq(scores)

        t = Signal(_index(T), name="timestep")
        wait = Signal(_index(geo.argmax_wait + 1))
        clear = Signal()
        m.d.comb += [lay.clear.eq(clear) for lay in layers]
        if encoder is not None:
            m.d.comb += encoder.clear.eq(clear)

        def start_layer1(m):
            # Start of a timestep: rate replays the image, direct goes straight
            # to the update (its current is already in the accumulators).
            if direct:
                m.d.comb += layers[0].update.eq(1)
                m.next = "UPD0"
            else:
                m.d.comb += [encoder.start.eq(1), chunker.clear.eq(1)]
                m.next = "ENC"

        # The output register drops its beat once taken, unless a new result
        # is loaded in the same cycle (the ARGMAX branch below comes later,
        # so its assignment wins).
        with m.If(self.result.ready):
            m.d.sync += self.result.valid.eq(0)

        with m.FSM(name="phase"):
            with m.State("IN"):
                accept = Signal()
                if direct:
                    m.d.comb += [
                        chunker.beats.valid.eq(self.pixels.valid & (beats_in != K)),
                        # Layer 1 sees each pixel's top input_bits bits (spec §3.1).
                        chunker.beats.payload.eq(Cat(*[masked[j][net.input_shift:] for j in range(ppb)])),
                        self.pixels.ready.eq(chunker.beats.ready & (beats_in != K)),
                    ]
                else:
                    m.d.comb += [
                        encoder.fill.valid.eq(self.pixels.valid & (beats_in != K)),
                        self.pixels.ready.eq(beats_in != K),
                    ]
                m.d.comb += accept.eq(self.pixels.valid & self.pixels.ready)
                with m.If(accept):
                    m.d.sync += beats_in.eq(beats_in + 1)
                if direct:
                    with m.If((beats_in == K) & ~chunker.busy & ~layers[0].acc_busy):
                        start_layer1(m)
                else:
                    with m.If(beats_in == K):
                        start_layer1(m)
            if not direct:
                with m.State("ENC"):
                    with m.If(~encoder.busy & ~chunker.busy & ~layers[0].acc_busy):
                        m.d.comb += layers[0].update.eq(1)
                        m.next = "UPD0"
            for i in range(L):
                if i > 0:
                    with m.State(f"SCAN{i}"):
                        with m.If(~scanners[i].busy & ~layers[i].acc_busy):
                            m.d.comb += layers[i].update.eq(1)
                            m.next = f"UPD{i}"
                with m.State(f"UPD{i}"):
                    with m.If(~layers[i].update_busy):
                        if i + 1 < L:
                            m.d.comb += scanners[i + 1].start.eq(1)
                            m.next = f"SCAN{i + 1}"
                        else:
                            with m.If(t == T - 1):
                                m.d.sync += wait.eq(0)
                                m.next = "ARGMAX"
                            with m.Else():
                                m.d.sync += t.eq(t + 1)
                                start_layer1(m)
            with m.State("ARGMAX"):
                # The tree needs `levels` cycles after the scores settle; the
                # output register may still hold the previous image's result.
                with m.If(wait != geo.argmax_wait - 1):
                    m.d.sync += wait.eq(wait + 1)
                with m.Elif(~self.result.valid | self.result.ready):
                    m.d.sync += [self.result.payload.cls.eq(argmax.index),
                                 self.result.payload.scores.eq(scores),
                                 self.result.valid.eq(1)]
                    m.d.comb += [clear.eq(1), chunker.clear.eq(1)]
                    m.d.sync += [beats_in.eq(0), t.eq(0)]
                    m.next = "IN"
        return m


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
