"""The boards the project ships tops for, and the fit estimate of a network on one.

:data:`BOARDS` names each board's chip in :data:`sc_neurocore.hw.devices.FPGAS`
(one table of capacities for synthesis and boards), its clock, LEDs,
constraint file and the generator options picked for it;
:func:`fit_check` compares lower bounds of what the core needs with what the
chip has, before any tool runs.  Plain Python, no Amaranth import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import CoreConfig, CoreGeometry
from .devices import FPGA, FPGAS, OnChip
from .export import _network

__all__ = ["Board", "BOARDS", "parse_board", "board_config", "fit_check", "LOAD_ACK", "LOAD_NAK", "CRC8_POLY",
           "crc8", "load_header", "load_word_bytes", "load_word_count", "weight_stream"]

#: The board's answer to a weight stream: accepted (checksum and header right) / rejected.
LOAD_ACK, LOAD_NAK = 0x06, 0x15
#: CRC-8 of the weight stream: polynomial x^8 + x^2 + x + 1, initial value 0, no reflection
#: (CRC-8/SMBUS; ``crc8(b"123456789") == 0xF4``).
CRC8_POLY = 0x07
#: First byte of a weight stream's header.
LOAD_MAGIC = 0x57   # "W"


@dataclass(frozen=True)
class Board(OnChip):
    """A board: its clock, LEDs, FPGA (capacities in :data:`~sc_neurocore.hw.devices.FPGAS`) and the
    generator options picked for it."""

    name: str
    title: str
    fpga: str              # the part on the board, as printed in messages
    chip: FPGA
    clk_hz: float
    n_leds: int            # LEDs showing the class in binary (``led``)
    status_leds: bool      # separate active-low busy / done LEDs (``led_r_n`` / ``led_g_n``)
    constraints: str       # file in constraints/
    lanes: int             # default generator options for this board
    events: int | None
    pixels_per_beat: int
    buildable: bool        # bitstream with the open tools here


BOARDS = {
    "ulx3s": Board("ulx3s", "Radiona ULX3S", "LFE5U-85F-6BG381", FPGAS["LFE5U-85F"], 25e6, 8, False, "ulx3s.lpf",
                   16, None, 8, True),
    "icebreaker": Board("icebreaker", "1BitSquared iCEBreaker", "iCE40UP5K-SG48", FPGAS["iCE40UP5K"], 12e6, 5, True,
                        "icebreaker.pcf", 4, 2, 4, True),
    # Vivado only.
    "arty_a7": Board("arty_a7", "Digilent Arty A7-35T", "XC7A35TICSG324-1L", FPGAS["XC7A35T"], 100e6, 4, False,
                     "arty_a7.xdc", 32, None, 8, False),
}


def parse_board(name, *, buildable: bool = False) -> Board:
    """The :class:`Board` called ``name`` (``ValueError`` otherwise)."""
    if isinstance(name, Board):
        name = name.name
    names = [b for b, v in BOARDS.items() if v.buildable or not buildable]
    if not isinstance(name, str) or name.lower() not in names:
        raise ValueError(f"board must be one of {', '.join(repr(n) for n in names)}, not {name!r}")
    return BOARDS[name.lower()]


def board_config(board, network=None) -> CoreConfig:
    """The generator options picked for ``board``: few lanes (the UART, at ~87 µs a pixel at
    115 200 baud, is the bottleneck, not the core), events/PPB sized to the board's multipliers.

    Given the ``network``: on a chip with SPRAM (iCE40UP5K) whose block RAMs cannot hold its
    weights, the weights go to single-port RAM loaded over the UART at start-up
    (``weight_port=True, weight_memory="single_port"``; protocol in :mod:`sc_neurocore.hw.board`).
    """
    b = board if isinstance(board, Board) else parse_board(board)
    cfg = CoreConfig(lanes=b.lanes, events=b.events, pixels_per_beat=b.pixels_per_beat)
    if network is not None and b.sprams and not fit_check(b, network, cfg)["fits"]:
        # Half the lanes: a network this size spends most logic cells on neuron registers, and the
        # lanes' adders and pipeline registers tipped 784-64-10 over (lanes 4: 5 437 of 5 280 LCs;
        # lanes 2: 4 853, docs/boards.md).
        loaded = dataclasses.replace(cfg, lanes=max(1, b.lanes // 2), weight_port=True, weight_memory="single_port")
        if fit_check(b, network, loaded)["fits"]:
            return loaded
    return cfg


def fit_check(board, network, config: CoreConfig | None = None) -> dict:
    """Lower bounds of what the core needs on ``board`` against what the FPGA has.

    Weight memories (initialised, so block RAM or distributed RAM; with
    ``weight_memory="single_port"`` the iCE40's SPRAMs instead) and the neuron registers (one accumulator and one membrane
    per neuron, plus spike counters: flip-flops however the core is built).
    Returns ``{"fits": bool, "reasons": [...], "weight_bits", "brams_estimate", "register_bits", ...}``.
    """
    b = board if isinstance(board, Board) else parse_board(board)
    net = _network(network)
    cfg = config if config is not None else board_config(b, net)
    geo = CoreGeometry(net, cfg)
    weight_bits = sum(lg.memory_width * lg.memory_depth * lg.events for lg in geo.layers)
    single = cfg.weight_memory == "single_port"
    # Each bank is built from segments of at most segment_depth words (LayerGeometry.segments).
    brams = 0 if single else sum(
        lg.events * sum(b.chip.brams_for(lg.memory_width, min(lg.segment_depth, lg.memory_depth - s * lg.segment_depth))
                        for s in range(lg.segments)) for lg in geo.layers)
    sprams = sum(lg.events * b.chip.sprams_for(lg.memory_width, lg.memory_depth) for lg in geo.layers) if single else 0
    reg_bits = 0
    for i, lp in enumerate(net.layers):
        reg_bits += lp.n_out * (lp.accumulator_format(net.input_max(i)).width + lp.membrane_bits)
    if net.readout == "spike_count":
        reg_bits += net.n_classes * geo.count_width
    reasons = []
    mem_cap = b.bram_total_bits + b.lutram_bits
    if single and sprams > b.sprams:
        reasons.append(f"weights need {sprams} single-port RAMs of 16 x 16384 bits (one or more per bank), "
                       f"the {b.fpga} has {b.sprams}")
    elif not single and weight_bits > mem_cap:
        extra = f" + {b.lutram_bits} bits of distributed RAM" if b.lutram_bits else \
            " (SPRAM cannot be initialised)" if b.sprams else ""
        reasons.append(f"weights need {weight_bits} bits ({weight_bits / 8192:.1f} KiB) of initialised RAM "
                       f"(~{brams} block RAMs as laid out), the {b.fpga} has {b.bram_total_bits} bits "
                       f"in {b.brams} block RAMs{extra}")
    if reg_bits > b.ffs:
        reasons.append(f"neuron registers need at least {reg_bits} flip-flops (accumulator + membrane per "
                       f"neuron), the {b.fpga} has {b.ffs}")
    return {"board": b.name, "fpga": b.fpga, "fits": not reasons, "reasons": reasons,
            "weight_bits": weight_bits, "brams_estimate": brams, "brams_available": b.brams,
            **({"sprams_estimate": sprams, "sprams_available": b.sprams} if single else {}),
            "register_bits": reg_bits, "ffs_available": b.ffs,
            "multipliers": sum(lg.multipliers for lg in geo.layers if lg.x_bits > 1),
            "config": cfg.to_dict()}


# -- the weight stream of a board with single-port weight RAM (protocol: sc_neurocore.hw.board) --------

def crc8(data: bytes, crc: int = 0) -> int:
    """CRC-8 (``CRC8_POLY``, MSB first) of ``data``, continuing from ``crc``; the board computes the same."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC8_POLY if crc & 0x80 else crc << 1) & 0xFF
    return crc


def load_word_bytes(geometry: CoreGeometry) -> int:
    """Bytes per weight word on the wire: the weight port's data width, rounded up to bytes."""
    return -(-geometry.weight_port_widths["data"] // 8)


def load_word_count(geometry: CoreGeometry) -> int:
    """Words in a weight stream: every word of every bank of every layer (``weight_writes``)."""
    return sum(lg.events * lg.memory_depth for lg in geometry.layers)


def load_header(geometry: CoreGeometry) -> bytes:
    """The 5-byte header: ``LOAD_MAGIC``, bytes per word, then the number of words (24 bits, little-endian)."""
    n = load_word_count(geometry)
    if n >= 1 << 24:
        raise ValueError(f"a weight stream holds fewer than 2^24 words, not {n}")
    return bytes([LOAD_MAGIC, load_word_bytes(geometry)]) + n.to_bytes(3, "little")


def weight_stream(network, config: CoreConfig) -> bytes:
    """Every byte the host sends to load ``network``'s weights into a board built with ``config``.

    The header (:func:`load_header`), then each word of :meth:`CoreGeometry.weight_writes`
    in that order (layer, bank, address), ``load_word_bytes`` bytes little-endian, then the
    :func:`crc8` of everything before it.
    """
    if not isinstance(config, CoreConfig) or config.weight_memory != "single_port":
        raise ValueError(f"config must be a CoreConfig with weight_memory='single_port', not {config!r}")
    geo = CoreGeometry(_network(network), config)
    w = load_word_bytes(geo)
    body = load_header(geo) + b"".join(word.to_bytes(w, "little") for *_, word in geo.weight_writes())
    return body + bytes([crc8(body)])
