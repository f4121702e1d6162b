"""The gateware of the ``conv`` layer kind: :class:`ConvLayer` (``docs/hardware.md``, "Convolution layers").

An event-driven convolution: an input value ``x`` at ``(c, y, x)`` adds ``x * W[:, c, ky, kx]`` to the
accumulators of every output position whose receptive field holds it, one kernel tap per cycle and all
``C_out`` channels of a position at once (one memory word). Zero inputs cost nothing: they never arrive
(the event sources skip them). The neuron state lives in block RAM, one word per output position
(accumulators, membranes); the update visits the positions in order and streams the spikes it produces
to the next layer as one-bit events at their *pooled* input index, so the next layer's accumulation
forms the sum-pool of spec §4.7 and no spike vector or pooling stage exists in hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sc_neurocore.params import ConvParams

from .config import ConvGeometry, Timing
from .kinds import LAYERS
from .logic import _const_mul, _index, _lowest_set, _product, _select_onehot, event_layout

__all__ = ["ConvLayer", "div_const"]


def div_const(value, divisor: int, max_value: int):
    """``value // divisor`` for ``0 <= value <= max_value`` as a product by a constant and a shift.

    ``M = ceil(2^s / d)`` with ``s = bits(max_value) + bits(d)`` gives ``floor(v * M / 2^s) = floor(v / d)``
    for every ``v < 2^bits(max_value)`` (the error ``v * (M*d - 2^s) / (d * 2^s) < 1/d``); no divider is
    built, and a power-of-two divisor is a plain shift.
    """
    if divisor < 1:
        raise ValueError(f"divisor must be positive, not {divisor!r}")
    if divisor & (divisor - 1) == 0:
        return value >> (divisor.bit_length() - 1)
    s = max(1, max_value.bit_length()) + divisor.bit_length()
    mult = -(-(1 << s) // divisor)
    return _const_mul(value, mult) >> s


@LAYERS.register("conv")
class ConvLayer(wiring.Component):
    """One convolution layer of LIF neurons (spec §1.1, §4) with state in block RAM.

    Accumulate path, one kernel tap per cycle: an event chunk of ``E`` input values is held by its source
    while the layer works through its non-zero values, lowest slot first, ``K*K`` taps each
    (``ConvGeometry.taps``); ``events.ready`` is high in the last tap's cycle (the chunk's cost is
    ``taps`` times its non-zero values, known to the latency model). In a tap's cycle the weight word of
    ``(c, ky, kx)`` and the accumulator word of the output position ``((y+P-ky)/S, (x+P-kx)/S)`` are
    addressed; in the next the products are added and written back (``Timing.CONV_WRITE_BACK``). The
    accumulator read is transparent for that write, so consecutive taps of different inputs that meet in
    one position see each other's sums. A tap outside the output (padding, stride) writes nothing but
    still takes its cycle.

    Update path (``update`` pulse, then per output position ``Timing.CONV_POSITION`` cycles): read the
    position's accumulators and membranes, ``I = a >>> s``, leak, integrate, fire, reset, write back, then
    one event per spike of the position on ``spikes_out`` (channel ``co`` of position ``(y, x)`` as input
    ``co*(H_o/q)*(W_o/q) + (y/q)*(W_o/q) + x/q`` of the next layer), each taken when the next layer is
    ready. A spiking-input layer's accumulators are cleared as they are read; a pixel-input (direct)
    layer keeps them for all ``T`` timesteps (spec §3.1).

    ``clear`` (start of an image) zeroes the state in one cycle, as for the dense layer: a memory cannot be
    cleared at once, so a bit per position says whether its accumulator / membrane word was written in
    this image, and an unwritten word reads as 0. The bits are registers, so a reset clears the state too.
    """

    def __init__(self, layer: ConvParams, geom: ConvGeometry, *, reset: str, spiking: bool = True,
                 count_width: int | None = None, keep_current: bool = False, weight_port: bool = False):
        if not isinstance(layer, ConvParams):
            raise TypeError(f"layer must be a ConvParams, not {layer!r}")
        if not isinstance(geom, ConvGeometry):
            raise TypeError(f"geom must be a ConvGeometry, not {geom!r}")
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', not {reset!r}")
        if not spiking or count_width is not None:
            raise ValueError("a conv layer is never the output layer (spec §1: the output layer is dense)")
        if weight_port:
            raise ValueError("the run-time weight port does not support conv layers yet")
        if layer.stride & (layer.stride - 1):
            raise ValueError(f"the gateware needs a power-of-two stride, not {layer.stride!r}")
        self._layer = layer
        self._geom = geom
        self._reset = reset
        self._keep = bool(keep_current)
        self.acc_format = layer.accumulator_format(geom.x_max)
        self.current_format = layer.current_format(geom.x_max)
        #: The membrane words as they are written (for the formal harness: the state lives in block RAM, so
        #: its range is asserted on what enters the memory): ``membrane_we`` and the ``C_out`` lanes.
        self.membrane_we = Signal(name="membrane_we")
        self.membrane_wdata = Signal(layer.channels * layer.membrane_bits, name="membrane_wdata")
        super().__init__({
            "events": In(stream.Signature(event_layout(geom.chunk_space, geom.events, geom.x_bits))),
            "acc_busy": Out(1),
            "update": In(1),
            "update_busy": Out(1),
            "clear": In(1),
            "spikes_out": Out(stream.Signature(event_layout(layer.n_out, 1, 1))),
        })

    @property
    def geometry(self) -> ConvGeometry:
        return self._geom

    def weight_words(self) -> list[int]:
        """Kernel memory contents: word ``(ci*K + ky)*K + kx`` packs ``W[co, ci, ky, kx]`` at bits ``co*b``."""
        w, wb = self._layer.weight, self._layer.weight_bits
        c_out, c_in, k, _ = w.shape
        mask = (1 << wb) - 1
        words = []
        for ci in range(c_in):
            for ky in range(k):
                for kx in range(k):
                    words.append(sum((int(w[co, ci, ky, kx]) & mask) << (co * wb) for co in range(c_out)))
        return words

    def elaborate(self, platform):
        m = Module()
        lp, g = self._layer, self._geom
        C, Ho, Wo = lp.conv_shape
        A, mb, wb = self.acc_format.width, lp.membrane_bits, lp.weight_bits
        npos = g.positions

        m.submodules.weights = wmem = Memory(shape=unsigned(C * wb), depth=g.weight_depth, init=self.weight_words())
        m.submodules.accs = amem = Memory(shape=unsigned(C * A), depth=npos, init=[])
        m.submodules.membranes = vmem = Memory(shape=unsigned(C * mb), depth=npos, init=[])
        w_rd = wmem.read_port()
        a_wr = amem.write_port()
        a_rd = amem.read_port(transparent_for=(a_wr,))
        v_wr = vmem.write_port()
        v_rd = vmem.read_port()
        # Which positions hold a word written in this image (others read as 0): registers, cleared at once.
        a_ok = Signal(npos, name="acc_written")
        v_ok = Signal(npos, name="membrane_written")

        updating = Signal(name="updating")
        u_addr = Signal(_index(npos), name="update_pos")
        self._accumulate(m, w_rd, a_rd, a_wr, a_ok, updating, u_addr)
        self._update(m, a_rd, a_wr, a_ok, v_rd, v_wr, v_ok, updating, u_addr)

        clear_q = Signal(name="clear_q")   # registered, as LIFLayer's (see its _clear)
        m.d.sync += clear_q.eq(self.clear)
        with m.If(clear_q):
            m.d.sync += [a_ok.eq(0), v_ok.eq(0)]
        return m

    # -- accumulate --------------------------------------------------------
    def _accumulate(self, m, w_rd, a_rd, a_wr, a_ok, updating, u_addr):
        lp, g = self._layer, self._geom
        E, K, S, P = g.events, lp.kernel, lp.stride, lp.padding
        Cin, H, W = lp.in_shape
        C, Ho, Wo = lp.conv_shape
        A, wb = self.acc_format.width, lp.weight_bits
        ev = self.events
        # Slots of the chunk still to do: non-zero values not yet worked through.
        done = Signal(E, name="slots_done")
        nonzero = Cat(*[ev.payload.x[b] != 0 for b in range(E)])
        pending = Signal(E, name="slots_pending")
        m.d.comb += pending.eq(nonzero & ~done)
        onehot, slot = _lowest_set(m, pending, E, "slot")
        value = Signal(g.x_bits, name="tap_value")
        m.d.comb += value.eq(_select_onehot([ev.payload.x[b] for b in range(E)], onehot))
        # The input's (c, y, x) from its index i = chunk*E + slot, by constant divisions (no divider).
        n_space = g.chunk_space * E
        idx = Signal(_index(n_space), name="tap_input")
        m.d.comb += idx.eq(_const_mul(ev.payload.chunk, E) + slot)
        ci = Signal(_index(Cin), name="tap_c")
        rest = Signal(_index(H * W), name="tap_yx")
        y = Signal(_index(H), name="tap_y")
        x = Signal(_index(W), name="tap_x")
        m.d.comb += [ci.eq(div_const(idx, H * W, n_space - 1)), rest.eq(idx - _const_mul(ci, H * W)),
                     y.eq(div_const(rest, W, H * W - 1)), x.eq(rest - _const_mul(y, W))]
        ky = Signal(_index(K), name="tap_ky")
        kx = Signal(_index(K), name="tap_kx")
        last_tap = (ky == K - 1) & (kx == K - 1)
        # Output position of this tap: (y + P - ky) / S, in range and divisible.
        sb = (S - 1).bit_length()
        oy_n = Signal(signed(max(H, K + P).bit_length() + 2), name="tap_oy_num")
        ox_n = Signal(signed(max(W, K + P).bit_length() + 2), name="tap_ox_num")
        m.d.comb += [oy_n.eq(y + P - ky), ox_n.eq(x + P - kx)]
        # as wide as the numerators: (y + P) / S can exceed H_o - 1 (a tap past the last output row)
        oy = Signal(len(oy_n), name="tap_oy")
        ox = Signal(len(ox_n), name="tap_ox")
        m.d.comb += [oy.eq(oy_n[sb:].as_unsigned()), ox.eq(ox_n[sb:].as_unsigned())]
        inside = Signal(name="tap_inside")
        aligned = (oy_n[:sb] == 0) & (ox_n[:sb] == 0) if sb else Const(1)
        m.d.comb += inside.eq((oy_n >= 0) & (ox_n >= 0) & aligned & (oy < Ho) & (ox < Wo))
        pos = Signal(_index(g.positions), name="tap_pos")
        m.d.comb += pos.eq(_const_mul(oy, Wo) + ox)
        issue = Signal(name="tap_issue")
        m.d.comb += issue.eq(ev.valid & (pending != 0))
        # The chunk is taken in its last tap (or at once if it has no non-zero value).
        m.d.comb += ev.ready.eq((pending == 0) | (last_tap & ((pending & ~onehot) == 0)))
        with m.If(issue):
            m.d.sync += [kx.eq(Mux(kx == K - 1, 0, kx + 1)), ky.eq(Mux(kx == K - 1, Mux(ky == K - 1, 0, ky + 1), ky))]
            with m.If(last_tap):
                m.d.sync += done.eq(Mux(ev.ready, 0, done | onehot))
        m.d.comb += [w_rd.addr.eq(_const_mul(_const_mul(ci, K) + ky, K) + kx),
                     a_rd.addr.eq(Mux(updating, u_addr, pos))]
        # Write-back stage: the words read for the tap, the products added.
        d_valid = Signal(name="wb_valid")
        d_pos = Signal(_index(g.positions), name="wb_pos")
        d_x = Signal(g.x_bits, name="wb_value")
        d_issue = Signal(name="wb_issue")   # a tap was issued, inside the output or not: the path is busy
        m.d.sync += [d_valid.eq(issue & inside), d_issue.eq(issue), d_pos.eq(pos), d_x.eq(value)]
        ok = a_ok.bit_select(d_pos, 1)
        new = []
        first_lut = C - g.lut_products   # channels from here on multiply by shift-and-add (CoreConfig.dsp_limit)
        for co in range(C):
            acc = Mux(ok, a_rd.data[co * A:(co + 1) * A].as_signed(), 0)
            w = w_rd.data[co * wb:(co + 1) * wb].as_signed()
            prod = Mux(d_x, w, 0) if g.x_bits == 1 else _product(d_x, w, lut=co >= first_lut)
            s = Signal(signed(A), name=f"acc_new{co}")
            m.d.comb += s.eq(acc + prod)
            new.append(s)
        self._acc_write = (d_valid, d_pos, Cat(*new))
        m.d.comb += self.acc_busy.eq(d_issue | (done != 0))

    # -- update ------------------------------------------------------------
    def _update(self, m, a_rd, a_wr, a_ok, v_rd, v_wr, v_ok, updating, u_addr):
        lp, g = self._layer, self._geom
        C, Ho, Wo = lp.conv_shape
        q = lp.pool
        A, mb = self.acc_format.width, lp.membrane_bits
        npos = g.positions
        fmt = lp.membrane_format
        po = (Ho // q) * (Wo // q)
        # Position counters: (y, x) and the pooled (y/q, x/q) kept incrementally (no division).
        py = Signal(_index(Ho // q), name="pool_y")
        ry = Signal(_index(q), name="pool_ry")
        px = Signal(_index(Wo // q), name="pool_x")
        rx = Signal(_index(q), name="pool_rx")
        mask = Signal(C, name="spike_mask")
        onehot, co = _lowest_set(m, mask, C, "spike_channel")
        out = self.spikes_out
        base = Signal(_index(lp.n_out), name="pool_base")
        m.d.comb += [base.eq(_const_mul(py, Wo // q) + px), out.payload.x[0].eq(1),
                     out.payload.chunk.eq(_const_mul(co, po) + base)]
        m.d.comb += v_rd.addr.eq(u_addr)
        d_valid, d_pos, d_data = self._acc_write
        last_pos = u_addr == npos - 1
        compute = Signal(name="update_compute")
        any_spike = Signal(name="update_any_spike")

        def advance():
            """The position is done: the next one (counters kept incrementally, no division), or the end."""
            m.d.sync += [u_addr.eq(u_addr + 1), rx.eq(Mux(rx == q - 1, 0, rx + 1)),
                         px.eq(Mux(rx == q - 1, Mux(px == Wo // q - 1, 0, px + 1), px))]
            with m.If((px == Wo // q - 1) & (rx == q - 1)):
                m.d.sync += [ry.eq(Mux(ry == q - 1, 0, ry + 1)), py.eq(Mux(ry == q - 1, py + 1, py))]
            with m.If(last_pos):
                m.next = "IDLE"
            with m.Else():
                m.next = "READ"

        with m.FSM(name="conv_update") as fsm:
            with m.State("IDLE"):
                with m.If(self.update):
                    m.d.sync += [u_addr.eq(0), py.eq(0), ry.eq(0), px.eq(0), rx.eq(0)]
                    m.next = "READ"
            with m.State("READ"):      # the position's words are addressed (a_rd, v_rd: u_addr)
                m.next = "COMPUTE"
            with m.State("COMPUTE"):   # update, write back, latch the spikes
                with m.If(any_spike):
                    m.next = "EMIT"
                with m.Else():
                    advance()
            with m.State("EMIT"):      # one event per spike, lowest channel first
                with m.If(out.ready):
                    m.d.sync += mask.eq(mask & ~onehot)
                    with m.If((mask & ~onehot) == 0):
                        advance()
        # Continuous assignments of the state (not `m.d.comb` inside the states: that becomes an `always @*`
        # block that Icarus never runs at time 0, see logic._select), so these are defined from the start.
        m.d.comb += [updating.eq(fsm.ongoing("READ") | fsm.ongoing("COMPUTE")), compute.eq(fsm.ongoing("COMPUTE")),
                     out.valid.eq(fsm.ongoing("EMIT")), self.update_busy.eq(~fsm.ongoing("IDLE"))]
        # LIF of the C channels of position u_addr (spec §4 steps 2-6), in the COMPUTE cycle.
        a_ok_bit = a_ok.bit_select(u_addr, 1)
        v_ok_bit = v_ok.bit_select(u_addr, 1)
        z = []
        v_new = []
        for c in range(C):
            a = Mux(a_ok_bit, a_rd.data[c * A:(c + 1) * A].as_signed(), 0)
            v = Mux(v_ok_bit, v_rd.data[c * mb:(c + 1) * mb].as_signed(), 0)
            cur = Signal(self.current_format.amaranth_shape, name=f"u_cur{c}")
            vl = Signal(signed(mb), name=f"u_leak{c}")
            m.d.comb += [cur.eq(a >> lp.current_shift), vl.eq(v - (v >> lp.leak_shift) if lp.leak_shift else v)]
            s = Signal(signed(max(len(cur), mb) + 1), name=f"u_sum{c}")
            m.d.comb += s.eq(vl + cur)
            u = Signal(signed(mb), name=f"u{c}")
            m.d.comb += u.eq(Mux(s > fmt.max, fmt.max, Mux(s < fmt.min, fmt.min, s)))
            fire = Signal(name=f"u_fire{c}")
            m.d.comb += fire.eq(u >= lp.threshold)
            nv = Signal(signed(mb), name=f"u_v{c}")
            m.d.comb += nv.eq(Mux(fire, u - lp.threshold, u) if self._reset == "subtract" else Mux(fire, 0, u))
            z.append(fire)
            v_new.append(nv)
        m.d.comb += any_spike.eq(Cat(*z) != 0)
        with m.If(compute):
            m.d.sync += [mask.eq(Cat(*z)), v_ok.eq(v_ok | (Const(1, npos) << u_addr))]
            if not self._keep:   # the current was consumed: the accumulators read as 0 again
                m.d.sync += a_ok.eq(a_ok & ~(Const(1, npos) << u_addr))
        with m.Elif(d_valid):
            m.d.sync += a_ok.eq(a_ok | (Const(1, npos) << d_pos))
        m.d.comb += [v_wr.addr.eq(u_addr), v_wr.data.eq(Cat(*v_new)), v_wr.en.eq(compute),
                     self.membrane_we.eq(compute), self.membrane_wdata.eq(Cat(*v_new))]
        m.d.comb += [a_wr.addr.eq(d_pos), a_wr.data.eq(d_data), a_wr.en.eq(d_valid)]
