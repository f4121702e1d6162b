"""The gateware of the ``dense`` layer kind: :class:`LIFLayer` (``docs/hardware.md``).

Weight memories (one bank per event slot), the accumulators of the weighted
sums, the membranes and the update pipeline of one fully connected layer.
Its accumulate and update depths are checked against
:class:`~sc_neurocore.hw.config.Timing` when it is elaborated.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sc_neurocore.params import LayerParams

from .config import LayerGeometry, Timing
from .devices import SPRAM_SHAPE, OnChip, spram_cells
from .kinds import LAYERS
from .logic import _check_depth, _index, _product, _product_halves, _select, _shift_in, _Stage, event_layout, weight_write_layout

__all__ = ["LIFLayer"]


@LAYERS.register("dense")
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

    ``double_buffer`` (a pixel-input layer, ``CoreConfig.double_buffer``):
    the accumulate path adds into a second set of accumulators, the staging
    set, which the update never reads, so the next image can be accumulated
    while this one is updated; a ``load`` pulse copies the staging set into
    the accumulators the update reads and zeroes it, at the end of the cycle
    after the pulse (registered, like ``clear``; an update started in that
    cycle reads the loaded values). ``clear`` leaves the staging set alone:
    it may already hold the next image.
    """

    def __init__(self, layer: LayerParams, geom: LayerGeometry, *, reset: str, spiking: bool,
                 count_width: int | None = None, keep_current: bool = False, weight_port: bool = False,
                 double_buffer: bool = False):
        if not isinstance(layer, LayerParams):
            raise TypeError(f"layer must be a LayerParams, not {layer!r}")
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', not {reset!r}")
        self._layer = layer
        self._geom = geom
        self._reset = reset
        self._spiking = bool(spiking)
        self._keep = bool(keep_current)
        if double_buffer and not keep_current:
            raise ValueError("double_buffer needs keep_current=True: only a pixel-input layer's current lasts "
                             "a whole image")
        self._double = bool(double_buffer)
        x_max = geom.x_max
        self.acc_format = layer.accumulator_format(x_max)
        self.current_format = layer.current_format(x_max)
        n = geom.n_out
        members = {
            "events": In(stream.Signature(event_layout(geom.chunk_space, geom.events, geom.x_bits))),
            "acc_busy": Out(1),
            "update": In(1),
            "update_busy": Out(1),
            "clear": In(1),
            **({"load": In(1)} if double_buffer else {}),
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
        # what the accumulate path adds into: the accumulators, or with double_buffer the staging set
        staged = self._staging_rings() if self._double else acc
        ports, lo, read_addr = self._weight_memories(m, platform)
        ev_base = self._issue(m)
        # The accumulate path's register stages, in order; their number is
        # LayerGeometry.accumulate_cycles (Timing), checked below.
        a = self._stage_address(m, ev_base, ports, read_addr)
        ms = self._stage_memory(m, a, lo)
        r = self._stage_word_register(m, ms, ports)
        s1 = self._stage_segment_select(m, r)
        s2 = self._stage_products(m, s1)
        tree = self._stage_adder_tree(m, s2)
        s3 = tree[-1]
        self._stage_accumulate(m, s3, staged)
        # Not s3_valid: the last accumulate is written at the end of that cycle,
        # and an update started in it reads the accumulators only a cycle later.
        busy = a.valid | ms.valid | r.valid | s1.busy | s2.valid
        for st in tree[:-1]:      # the partial-sum stages of a tree over more than TREE_TERMS events
            busy = busy | st.valid
        m.d.comb += self.acc_busy.eq(busy)
        stages = [a, ms, r] + ([s1] if s1.registered else []) + [s2, *tree]
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
        if self._double:
            self._load(m, acc, staged)
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

    def _staging_rings(self):
        """The staging accumulators of ``double_buffer``: rings like the accumulators' (one per lane, group
        ``p`` at position ``p`` after every whole accumulate pass), so a load is a copy position by position."""
        g = self._geom
        P, G, n = g.lanes, g.groups, g.n_out
        shape = self.acc_format.amaranth_shape
        return [[Signal(shape, name=f"stage{p * P + k}" if p * P + k < n else f"stage_pad{k}") for p in range(G)]
                for k in range(P)]

    def _load(self, m, acc, staged):
        """``double_buffer``: the staged current becomes the current, a cycle after the ``load`` pulse.

        Registered, like ``clear``: the pulse comes from the sequencer and fans out to every accumulator
        bit. The sequencer pulses it when the accumulate path is no longer busy, which is while its last
        add is being written (``acc_busy``): a cycle later the staging set is complete, and the update it
        starts then (phase ``LOAD``, ``Timing.LOAD``) reads the copy from the cycle after. A ``clear`` acts
        a cycle earlier at the latest (the result is loaded before phase ``IN``), so the copy is what stays.
        The next image's first add comes ``accumulate_cycles`` after its first beat, which is taken the cycle
        after the pulse at the earliest, so zeroing the staging set here loses nothing."""
        load_q = Signal(name="load_q")
        m.d.sync += load_q.eq(self.load)
        with m.If(load_q):
            for ring, sring in zip(acc, staged):
                for a, s in zip(ring, sring):
                    m.d.sync += [a.eq(s), s.eq(0)]

    def _weight_memories(self, m, platform):
        """The weight banks, each split into segments: ``ports[b][s]``, the segment's address bits ``lo``
        and, for single-port banks, the read address the address stage drives (else ``None``)."""
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
        read_addr = Signal(_index(g.memory_depth), name="weights_read_addr") if g.single_port else None
        if g.single_port:
            shared = Signal(_index(g.memory_depth), name="weights_addr")
            m.d.comb += shared.eq(Mux(self.wr.valid, self.wr.payload.addr[:len(shared)], read_addr))
        for b in range(E):
            if g.single_port and _has_spram(platform):
                ports.append([self._spram_bank(m, b, shared)])
                continue
            if g.single_port:
                # No initial contents (an iCE40 SPRAM has none) and one address for both ports, the
                # read stage's unless a word is being written: the same behaviour as the SPRAM bank.
                mem = Memory(shape=unsigned(g.memory_width), depth=g.memory_depth, init=[])
                m.submodules[f"weights{b}"] = mem
                rp, wp = mem.read_port(), mem.write_port()
                m.d.comb += [rp.addr.eq(shared), wp.addr.eq(shared), wp.data.eq(self.wr.payload.data),
                             wp.en.eq(self.wr.valid & (self.wr.payload.bank == b))]
                ports.append([rp])
                continue
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
        return ports, lo, read_addr

    def _spram_bank(self, m, b, addr):
        """Bank ``b`` as iCE40UP5K SB_SPRAM256KA cells side by side (16 bits x 16 384 words each).

        Yosys 0.70 does not infer SPRAM from a memory (not even an uninitialised one with one shared
        address), so a build for that platform instantiates it; the read data arrives one cycle after
        the address, as from the generic memory's read port.
        """
        g = self._geom
        w, d = SPRAM_SHAPE
        cells = spram_cells(g.memory_width, g.memory_depth, f"layer {g.index}: a single-port weight bank")
        abits = (d - 1).bit_length()
        port = _ReadData(Signal(g.memory_width, name=f"weights{b}_data"))
        for j in range(cells):
            lo_bit, hi_bit = j * w, min((j + 1) * w, g.memory_width)
            out = Signal(w, name=f"weights{b}_spram{j}_out")
            m.submodules[f"weights{b}_spram{j}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=_pad(addr, abits), i_DATAIN=_pad(self.wr.payload.data[lo_bit:hi_bit], w), i_MASKWREN=Const(0b1111, 4),
                i_WREN=self.wr.valid & (self.wr.payload.bank == b), i_CHIPSELECT=Const(1), i_CLOCK=ClockSignal("sync"),
                i_STANDBY=Const(0), i_SLEEP=Const(0), i_POWEROFF=Const(1),   # POWEROFF is active low
                o_DATAOUT=out)
            m.d.comb += port.data[lo_bit:hi_bit].eq(out[:hi_bit - lo_bit])
        return port

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

    def _stage_address(self, m, ev_base, ports, read_addr):
        """Stage a: registered address; cuts the path from the event source
        (priority encoder, chunk select) to the memories' address pins."""
        g = self._geom
        st = _Stage(valid=Signal(name="a_valid"), x=Signal(data.ArrayLayout(unsigned(g.x_bits), g.events), name="a_x"),
                    addr=Signal(_index(g.memory_depth), name="a_addr"))
        m.d.sync += [st.valid.eq(self.events.valid), st.x.eq(self.events.payload.x),
                     st.addr.eq(self.events.payload.chunk + ev_base)]
        if read_addr is not None:
            m.d.comb += read_addr.eq(st.addr)
        else:
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
        """Stage 2: multiply by the input values (pixels) or gate them (spikes).

        ``st.terms[k]`` are lane ``k``'s registered terms for the adder tree: one product per event, or
        for a product built from LUTs (``CoreConfig.dsp_limit``) its two halves, summed by the tree
        (``LayerGeometry.lane_terms``)."""
        g = self._geom
        P, E, wb = g.lanes, g.events, self._layer.weight_bits
        prod_shape = signed(wb + g.x_bits + 1)
        st = _Stage(valid=Signal(name="s2_valid"), terms=[[] for _ in range(P)])
        m.d.sync += st.valid.eq(s1.valid)
        first_lut = P * E - g.lut_products   # products from here on are shift-and-add (CoreConfig.dsp_limit)
        for b in range(E):
            for k in range(P):
                w = s1.w[b][k * wb:(k + 1) * wb].as_signed()
                x = s1.x[b]
                if g.x_bits > 1 and k * E + b >= first_lut:
                    lo, hi, shift = _product_halves(x, w)
                    r_lo = Signal(signed(wb + shift + 1), name=f"prod{b}_{k}_lo")
                    r_hi = Signal(signed(wb + g.x_bits - shift + 1), name=f"prod{b}_{k}_hi")
                    m.d.sync += [r_lo.eq(lo), r_hi.eq(hi)]
                    st.terms[k] += [r_lo, r_hi << shift]
                    continue
                # A spike only gates the weight; a pixel needs a multiplier.
                p = Mux(x, w, 0) if g.x_bits == 1 else _product(x, w, lut=False)
                reg = Signal(prod_shape, name=f"prod{b}_{k}")
                m.d.sync += reg.eq(p)
                st.terms[k].append(reg)
        assert max(len(t) for t in st.terms) == g.lane_terms
        return st

    def _stage_adder_tree(self, m, s2):
        """Stage 3: adder tree over the ``LayerGeometry.lane_terms`` terms of each lane,
        ``LayerGeometry.tree_stages`` register stages of at most ``Timing.TREE_TERMS`` terms each (one
        stage for up to 8 terms, named as before). Returns the stages in order; the last one's ``sum``
        feeds the accumulators."""
        P = self._geom.lanes
        n_stages = self._geom.tree_stages
        shape = self.acc_format.amaranth_shape   # holds the whole sum, so every partial sum too
        terms = [list(t) for t in s2.terms]
        valid, out = s2.valid, []
        for i in range(n_stages):
            last = i == n_stages - 1
            suffix = "" if last else f"_{i}"
            st = _Stage(valid=Signal(name=f"s3{suffix}_valid"))
            m.d.sync += st.valid.eq(valid)
            st.sum = []
            for k in range(P):
                groups = [terms[k]] if last else [terms[k][j:j + Timing.TREE_TERMS]
                                                  for j in range(0, len(terms[k]), Timing.TREE_TERMS)]
                regs = []
                for gi, group in enumerate(groups):
                    while len(group) > 1:
                        group = [group[j] + group[j + 1] if j + 1 < len(group) else group[j]
                                 for j in range(0, len(group), 2)]
                    reg = Signal(shape, name=f"sum{k}" if last else f"psum{i}_{k}_{gi}")
                    m.d.sync += reg.eq(group[0])
                    regs.append(reg)
                terms[k] = regs
                st.sum.append(regs[0])
            valid = st.valid
            out.append(st)
        return out

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

        The start sets only ``u_active``: the group counter is 0 between passes
        (reset, and every pass wraps it after group ``G - 1``), so clearing it
        there changed nothing and was the critical path of a 25F core with
        LUT-built products (sequencer state -> every bit of the counter,
        11.8 ns of which 0.9 ns logic, 84.72 MHz).
        """
        G = self._geom.groups
        u_active = Signal()
        u_next = Signal(_index(G))
        u_issue = Signal()
        u_g = Signal(_index(G))
        m.d.comb += [u_issue.eq(u_active), u_g.eq(u_next)]
        with m.If(self.update):
            m.d.sync += u_active.eq(1)
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


class _ReadData:
    """A weight bank built from cells: just the read data, like a memory read port's ``data``."""

    def __init__(self, data):
        self.data = data


def _pad(value, width):
    """``value`` zero-extended to ``width`` bits (a cell port's exact width)."""
    return Cat(value, Const(0, width - len(value))) if len(value) < width else value


def _has_spram(platform) -> bool:
    """Whether ``platform`` builds for an iCE40UP (SB_SPRAM256KA): an amaranth-boards iCE40UP platform, or
    a synthesis target of :data:`~sc_neurocore.hw.devices.DEVICES` whose chip has SPRAMs (the ``platform``
    that :func:`sc_neurocore.hw.export.verilog_text` elaborates with for ``synth``); ``None`` (simulation,
    plain Verilog export): no."""
    from amaranth.vendor import LatticeICE40Platform

    if isinstance(platform, OnChip):
        return platform.sprams > 0
    return isinstance(platform, LatticeICE40Platform) and platform.device.upper().startswith("ICE40UP")
