"""Gateware of the board tops: :class:`BoardTop` (UART in, LIF core, UART out and LEDs) and
:class:`BoardPins` (``sc_neurocore_board``, its pin-level top); see :mod:`sc_neurocore.hw.board`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .boards import (CRC8_POLY, LOAD_ACK, LOAD_NAK, Board, board_config, load_header, load_word_bytes,
                     load_word_count, parse_board)
from .config import CoreConfig, CoreGeometry
from .export import _network
from .stream import CLASS_BITS, PIXEL_BITS, in_width
from .uart import UARTRx, UARTTx, divisor_for

__all__ = ["BoardTop", "BoardPins"]


def _board_options(network, config, clk_hz, baud, n_leds, idle_timeout) -> dict:
    """The checked arguments of :class:`BoardTop` (``TypeError`` / ``ValueError`` otherwise)."""
    network = _network(network)
    config = config if config is not None else CoreConfig()
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {type(config).__name__}")
    divisor = divisor_for(clk_hz, baud)
    if isinstance(n_leds, bool) or not isinstance(n_leds, int) or n_leds < 1:
        raise ValueError(f"n_leds must be a positive integer, not {n_leds!r}")
    if network.n_classes > 256:
        raise ValueError(f"network must have at most 256 classes (one class byte), "
                         f"not {network.n_classes!r}")
    if idle_timeout is None:
        timeout_cycles = None
    else:
        if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)) or not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be a positive number of seconds or None, not {idle_timeout!r}")
        # At least 32 bit times: a result byte still waiting for the
        # transmitter is always sent before an abort.
        timeout_cycles = max(32 * divisor, round(idle_timeout * clk_hz))
    return {"network": network, "config": config, "divisor": divisor, "timeout_cycles": timeout_cycles}


class BoardTop(wiring.Component):
    """UART in (image bytes) -> LIF core -> UART out (class byte) and LEDs; see the module docstring.

    Ports: ``uart_rx`` (in, idle high), ``uart_tx`` (out, idle high),
    ``leds`` (``n_leds`` bits, the last class in binary, low bits), ``busy``,
    ``done``, all in the ``sync`` domain (``clk_hz``).
    """

    def __new__(cls, network, config: CoreConfig | None = None, clk_hz: float = 25e6, baud: float = 115200, *,
                n_leds: int = 8, idle_timeout: float | None = 0.1):
        # Validated before the object exists: a rejected top is never an unused elaboratable.
        _board_options(network, config, clk_hz, baud, n_leds, idle_timeout)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, network, config: CoreConfig | None = None, clk_hz: float = 25e6,
                 baud: float = 115200, *, n_leds: int = 8, idle_timeout: float | None = 0.1):
        from .core import build_core

        opts = _board_options(network, config, clk_hz, baud, n_leds, idle_timeout)
        self.network, self.config, self.divisor = opts["network"], opts["config"], opts["divisor"]
        self.clk_hz, self.baud, self.timeout_cycles = clk_hz, baud, opts["timeout_cycles"]
        self.core = build_core(self.network, self.config)
        self.geometry: CoreGeometry = self.core.geometry
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "leds": Out(n_leds),
            "busy": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        geo = self.geometry
        ppb, n0 = geo.pixels_per_beat, geo.n_inputs

        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]

        # A few bytes of slack while the core finishes the previous image.
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=16)
        m.d.comb += [fifo.w_data.eq(rx.data.payload), fifo.w_en.eq(rx.data.valid),
                     rx.data.ready.eq(fifo.w_rdy)]

        # The idle timeout resets the core (it has already taken the partial image's beats).
        abort = Signal()
        m.submodules.core = ResetInserter({"sync": abort})(self.core)
        top = self.core

        # -- bytes -> beats -----------------------------------------------------
        beat = Signal(in_width(ppb))
        slot = Signal(range(max(2, ppb)))
        pixel = Signal(range(max(2, n0)))
        beat_valid = Signal()
        beat_last = Signal()
        # Until the weights are in (single-port weight RAM only) every byte goes to the loader.
        loading = self._loader(m, fifo) if self.loads_weights else None
        m.d.comb += [
            top.s_axis_tdata.eq(beat), top.s_axis_tvalid.eq(beat_valid), top.s_axis_tlast.eq(beat_last),
            fifo.r_en.eq(~beat_valid if loading is None else loading.active | ~beat_valid),
        ]
        take = fifo.r_rdy & fifo.r_en if loading is None else fifo.r_rdy & fifo.r_en & ~loading.active
        with m.If(beat_valid & top.s_axis_tready):
            m.d.sync += [beat_valid.eq(0), beat.eq(0)]
        with m.If(take):
            with m.Switch(slot):
                for i in range(ppb):
                    with m.Case(i):
                        m.d.sync += beat[PIXEL_BITS * i:PIXEL_BITS * (i + 1)].eq(fifo.r_data)
            last_pixel = pixel == n0 - 1
            with m.If(last_pixel | (slot == ppb - 1)):
                m.d.sync += [beat_valid.eq(1), beat_last.eq(last_pixel), slot.eq(0)]
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
            m.d.sync += pixel.eq(0 if n0 == 1 else _wrap(pixel, n0))

        # -- busy / idle timeout ---------------------------------------------------
        receiving = Signal()         # part of an image received
        pending = Signal()           # a whole image received, its class byte not yet sent
        with m.If(take):
            m.d.sync += receiving.eq(pixel != n0 - 1)
            with m.If(pixel == n0 - 1):
                m.d.sync += pending.eq(1)
        if self.timeout_cycles is not None:
            idle = Signal(range(self.timeout_cycles + 1))
            mid = receiving if loading is None else receiving | loading.mid_stream
            with m.If(rx.data.valid | ~mid):
                m.d.sync += idle.eq(0)
            with m.Elif(idle == self.timeout_cycles):
                m.d.comb += abort.eq(1)
                if loading is not None:
                    m.d.comb += loading.restart.eq(1)
                m.d.sync += [idle.eq(0), receiving.eq(0), slot.eq(0), pixel.eq(0),
                             beat.eq(0), beat_valid.eq(0)]
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        # -- result -> class byte + LEDs ---------------------------------------------
        cls = top.m_axis_tdata[:8]
        if loading is None:
            m.d.comb += [tx.data.payload.eq(cls), tx.data.valid.eq(top.m_axis_tvalid),
                         top.m_axis_tready.eq(tx.data.ready)]
        else:   # the loader's answer shares the transmitter (no image runs before it)
            m.d.comb += [tx.data.payload.eq(Mux(loading.reply_valid, loading.reply, cls)),
                         tx.data.valid.eq(loading.reply_valid | top.m_axis_tvalid),
                         top.m_axis_tready.eq(tx.data.ready & ~loading.reply_valid),
                         loading.reply_sent.eq(tx.data.ready)]
        with m.If(top.m_axis_tvalid & tx.data.ready):
            m.d.sync += [self.leds.eq(top.m_axis_tdata[:min(CLASS_BITS, len(self.leds))]), self.done.eq(1)]
            # A result frees `pending` unless the same cycle completes another image.
            with m.If(~(take & (pixel == n0 - 1))):
                m.d.sync += pending.eq(0)
        busy = receiving | pending | ~tx.data.ready
        m.d.comb += self.busy.eq(busy if loading is None else busy | loading.mid_stream)
        return m

    @property
    def loads_weights(self) -> bool:
        """Whether the board waits for a weight stream after reset (``weight_memory="single_port"``)."""
        return self.config.weight_memory == "single_port"

    def _loader(self, m, fifo):
        """The weight loader: header, words, CRC from the FIFO into the core's weight port.

        After reset it takes every byte (``active``) until a stream with the right header and CRC
        has been written, answers ``LOAD_ACK`` and hands the line to the images; a wrong stream is
        answered ``LOAD_NAK`` and the loader waits for the next one.  Words are written in
        :meth:`CoreGeometry.weight_writes` order: its (layer, bank, address) walk is three counters
        here, with each layer's bank count and depth as constants.
        """
        geo, core = self.geometry, self.core
        header = load_header(geo)
        nbytes = load_word_bytes(geo)
        n_data = load_word_count(geo) * nbytes
        st = _Loader(active=Signal(init=1, name="load_active"), mid_stream=Signal(name="load_mid_stream"),
                     restart=Signal(name="load_restart"), reply=Signal(8, name="load_reply"),
                     reply_valid=Signal(name="load_reply_valid"), reply_sent=Signal(name="load_reply_sent"))
        phase = Signal(range(3), name="load_phase")          # 0 header, 1 words, 2 CRC byte
        count = Signal(range(max(len(header), n_data) + 1), name="load_count")
        crc = Signal(8, name="load_crc")
        bad = Signal(name="load_bad_header")
        word = Signal(8 * nbytes, name="load_word")
        in_word = Signal(range(max(2, nbytes)), name="load_byte")
        write = Signal(name="load_write")
        layer = Signal(len(core.wgt_layer), name="load_layer")
        bank = Signal(len(core.wgt_bank), name="load_bank")
        addr = Signal(len(core.wgt_addr), name="load_addr")

        byte = fifo.r_data
        got = fifo.r_rdy & st.active
        m.d.comb += st.mid_stream.eq(st.active & ((phase != 0) | (count != 0)))
        # A word is written the cycle after its last byte (the shift register holds it whole then).
        m.d.comb += [core.wgt_valid.eq(write), core.wgt_layer.eq(layer), core.wgt_bank.eq(bank),
                     core.wgt_addr.eq(addr), core.wgt_data.eq(word[:len(core.wgt_data)])]
        m.d.sync += write.eq(0)
        with m.If(write):
            last_addr, last_bank = Signal(len(addr)), Signal(len(bank))
            with m.Switch(layer):
                for lg in geo.layers:
                    with m.Case(lg.index):
                        m.d.comb += [last_addr.eq(lg.memory_depth - 1), last_bank.eq(lg.events - 1)]
            with m.If(addr != last_addr):
                m.d.sync += addr.eq(addr + 1)
            with m.Else():
                m.d.sync += addr.eq(0)
                with m.If(bank != last_bank):
                    m.d.sync += bank.eq(bank + 1)
                with m.Else():
                    m.d.sync += [bank.eq(0), layer.eq(layer + 1)]
        with m.If(got):
            m.d.sync += crc.eq(_crc8_next(crc, byte))
            with m.Switch(phase):
                with m.Case(0):
                    with m.Switch(count):
                        for i, h in enumerate(header):
                            with m.Case(i):
                                with m.If(byte != h):
                                    m.d.sync += bad.eq(1)
                    with m.If(count == len(header) - 1):
                        m.d.sync += [phase.eq(1), count.eq(0)]
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
                with m.Case(1):
                    m.d.sync += word.eq(Cat(word[8:], byte) if nbytes > 1 else byte)
                    with m.If(in_word == nbytes - 1):
                        m.d.sync += [in_word.eq(0), write.eq(1)]
                    with m.Else():
                        m.d.sync += in_word.eq(in_word + 1)
                    with m.If(count == n_data - 1):
                        m.d.sync += [phase.eq(2), count.eq(0)]
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
                with m.Case(2):
                    ok = (byte == crc) & ~bad
                    m.d.sync += [st.reply.eq(Mux(ok, LOAD_ACK, LOAD_NAK)), st.reply_valid.eq(1), st.active.eq(~ok)]
        # After the CRC byte (either answer) or an idle timeout: the next stream starts from scratch.
        with m.If((got & (phase == 2)) | st.restart):
            m.d.sync += [phase.eq(0), count.eq(0), crc.eq(0), bad.eq(0), in_word.eq(0),
                         layer.eq(0), bank.eq(0), addr.eq(0)]
        with m.If(st.reply_valid & st.reply_sent):
            m.d.sync += st.reply_valid.eq(0)
        return st


class _Loader:
    """The loader's signals that the rest of :class:`BoardTop` reads or drives."""

    def __init__(self, **signals):
        self.__dict__.update(signals)


def _crc8_next(crc, byte):
    """``crc8`` (``hw.boards``) of one more byte, as logic: eight shift / conditional-XOR steps."""
    c = crc ^ byte
    for _ in range(8):
        c = Mux(c[7], (c << 1) ^ CRC8_POLY, c << 1)[:8]
    return c


def _wrap(counter, n):
    return Mux(counter == n - 1, 0, counter + 1)


class BoardPins(wiring.Component):
    """``sc_neurocore_board``: :class:`BoardTop` with board pins, for the files in ``constraints/``.

    Ports ``clk``, ``rst_n`` (active low, e.g. a button to ground), ``uart_rx``,
    ``uart_tx``, ``led`` (``board.n_leds`` bits, active high) and, on boards
    with ``status_leds``, ``led_r_n`` (busy) / ``led_g_n`` (done), active low.
    The reset is synchronised to ``clk`` and held for 15 µs after
    configuration (iCE40 block RAMs read as zero for ~3 µs).
    """

    def __init__(self, board, network, config: CoreConfig | None = None, *, baud: float = 115200,
                 idle_timeout: float | None = 0.1):
        self.board = board if isinstance(board, Board) else parse_board(board)
        cfg = config if config is not None else board_config(self.board, network)
        self.top = BoardTop(network, cfg, self.board.clk_hz, baud, n_leds=self.board.n_leds,
                            idle_timeout=idle_timeout)
        members = {"clk": In(1), "rst_n": In(1), "uart_rx": In(1), "uart_tx": Out(1), "led": Out(self.board.n_leds)}
        if self.board.status_leds:
            members.update({"led_r_n": Out(1), "led_g_n": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        por_cycles = max(2, int(15e-6 * self.board.clk_hz))
        por = Signal(range(por_cycles + 1))    # counts up: iCE40 flip-flops start at 0
        with m.If(por != por_cycles):
            m.d.sync += por.eq(por + 1)
        m.submodules.rst_sync = ResetSynchronizer(~self.rst_n | (por != por_cycles), domain="sync")
        m.submodules.top = top = self.top
        m.d.comb += [top.uart_rx.eq(self.uart_rx), self.uart_tx.eq(top.uart_tx), self.led.eq(top.leds)]
        if self.board.status_leds:
            m.d.comb += [self.led_r_n.eq(~top.busy), self.led_g_n.eq(~top.done)]
        return m
