"""The boards the project ships tops for, and the fit estimate of a network on one.

:data:`BOARDS` names each board's chip in :data:`sc_neurocore.hw.devices.FPGAS`
(one table of capacities for synthesis and boards), its clock, LEDs,
constraint file and the generator options picked for it;
:func:`fit_check` compares lower bounds of what the core needs with what the
chip has, before any tool runs.  Plain Python, no Amaranth import.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import CoreConfig, CoreGeometry
from .devices import FPGA, FPGAS, OnChip
from .export import _network

__all__ = ["Board", "BOARDS", "parse_board", "board_config", "fit_check"]


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


def board_config(board) -> CoreConfig:
    """The generator options picked for ``board``: few lanes (the UART, at ~87 µs a pixel at
    115 200 baud, is the bottleneck, not the core), events/PPB sized to the board's multipliers."""
    b = board if isinstance(board, Board) else parse_board(board)
    return CoreConfig(lanes=b.lanes, events=b.events, pixels_per_beat=b.pixels_per_beat)


def fit_check(board, network, config: CoreConfig | None = None) -> dict:
    """Lower bounds of what the core needs on ``board`` against what the FPGA has.

    Weight memories (initialised, so block RAM or distributed RAM; never the
    iCE40's SPRAM) and the neuron registers (one accumulator and one membrane
    per neuron, plus spike counters: flip-flops however the core is built).
    Returns ``{"fits": bool, "reasons": [...], "weight_bits", "brams_estimate", "register_bits", ...}``.
    """
    b = board if isinstance(board, Board) else parse_board(board)
    net = _network(network)
    cfg = config if config is not None else board_config(b)
    geo = CoreGeometry(net, cfg)
    weight_bits = sum(lg.memory_width * lg.memory_depth * lg.events for lg in geo.layers)
    # Each bank is built from segments of at most segment_depth words (LayerGeometry.segments).
    brams = sum(lg.events * sum(b.chip.brams_for(lg.memory_width, min(lg.segment_depth, lg.memory_depth - s * lg.segment_depth))
                                for s in range(lg.segments)) for lg in geo.layers)
    reg_bits = 0
    for i, lp in enumerate(net.layers):
        reg_bits += lp.n_out * (lp.accumulator_format(net.input_max(i)).width + lp.membrane_bits)
    if net.readout == "spike_count":
        reg_bits += net.n_classes * geo.count_width
    reasons = []
    mem_cap = b.bram_total_bits + b.lutram_bits
    if weight_bits > mem_cap:
        extra = f" + {b.lutram_bits} bits of distributed RAM" if b.lutram_bits else \
            " (SPRAM cannot be initialised)" if b.family == "ice40" else ""
        reasons.append(f"weights need {weight_bits} bits ({weight_bits / 8192:.1f} KiB) of initialised RAM "
                       f"(~{brams} block RAMs as laid out), the {b.fpga} has {b.bram_total_bits} bits "
                       f"in {b.brams} block RAMs{extra}")
    if reg_bits > b.ffs:
        reasons.append(f"neuron registers need at least {reg_bits} flip-flops (accumulator + membrane per "
                       f"neuron), the {b.fpga} has {b.ffs}")
    return {"board": b.name, "fpga": b.fpga, "fits": not reasons, "reasons": reasons,
            "weight_bits": weight_bits, "brams_estimate": brams, "brams_available": b.brams,
            "register_bits": reg_bits, "ffs_available": b.ffs,
            "multipliers": sum(lg.multipliers for lg in geo.layers if lg.x_bits > 1),
            "config": cfg.to_dict()}
