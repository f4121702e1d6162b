"""The FPGAs the project targets: one table of capacities, read by synthesis and the board flow.

:data:`FPGAS` holds each chip's resources (per nextpnr / the vendor's data
sheet); :data:`DEVICES` are the synthesis targets of
:func:`sc_neurocore.hw.synth.synthesize` (a chip in a package, with its
nextpnr options), and the boards of :mod:`sc_neurocore.hw.boards` name their
chip here too.  Plain Python, no Amaranth import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FPGA", "FPGAS", "OnChip", "Device", "DEVICES", "parse_device", "BRAM_SHAPES", "SPRAM_SHAPE",
           "spram_cells"]

#: ``(width, depth)`` configurations of one block RAM, per family.
BRAM_SHAPES = {
    "ecp5": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
    "ice40": ((16, 256), (8, 512), (4, 1024), (2, 2048)),
    "xilinx7": ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768)),
}

#: ``(width, depth)`` of one iCE40UP5K SPRAM (SB_SPRAM256KA: 16 bits x 16 384 words).
SPRAM_SHAPE = (16, 16384)


def spram_cells(width: int, depth: int, what: str = "a single-port weight bank") -> int:
    """SB_SPRAM256KA cells side by side for a ``width`` x ``depth`` single-port bank (the generator puts a
    bank's words in one cell's depth and its bits across cells, so ``depth`` must fit one cell)."""
    w, d = SPRAM_SHAPE
    if depth > d:
        raise ValueError(f"{what} holds at most {d} words in the iCE40UP5K's SPRAM, not {depth} "
                         f"(use more events per cycle)")
    return math.ceil(width / w)


@dataclass(frozen=True)
class FPGA:
    """One chip's capacities."""

    name: str
    family: str            # "ecp5" | "ice40" | "xilinx7"
    luts: int
    ffs: int
    brams: int
    bram_bits: int         # bits per block RAM
    dsps: int
    lutram_bits: int       # distributed RAM that an initialised memory may use instead
    sprams: int = 0        # uninitialised single-port RAMs (iCE40UP5K SB_SPRAM256KA), SPRAM_SHAPE each

    @property
    def bram_total_bits(self) -> int:
        return self.brams * self.bram_bits

    @property
    def bram_kbits(self) -> int:
        """Kbit per block RAM."""
        return self.bram_bits // 1024

    def sprams_for(self, width: int, depth: int) -> int:
        """Single-port RAMs of a ``width`` x ``depth`` memory (``SPRAM_SHAPE`` each)."""
        w, d = SPRAM_SHAPE
        return math.ceil(width / w) * math.ceil(depth / d)

    def brams_for(self, width: int, depth: int) -> int:
        """Block RAMs of a ``width`` x ``depth`` memory in the best single configuration."""
        return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM_SHAPES[self.family])


FPGAS = {
    # ECP5-85F: 83 640 LUT4/FF, 208 DP16KD (18 Kbit), 156 MULT18X18D, 669 Kbit distributed RAM.
    "LFE5U-85F": FPGA("LFE5U-85F", "ecp5", 83640, 83640, 208, 18432, 156, 669 * 1024),
    # ECP5-25F: 24 288 LUT4/FF, 56 DP16KD, 28 MULT18X18D, 194 Kbit distributed RAM.
    "LFE5U-25F": FPGA("LFE5U-25F", "ecp5", 24288, 24288, 56, 18432, 28, 194 * 1024),
    # iCE40UP5K: 5 280 LCs (one LUT4 + one FF each), 30 EBR (4 Kbit), 8 SB_MAC16;
    # the four 256 Kbit SPRAMs cannot be initialised: weights go there only through the
    # run-time weight port (CoreConfig.weight_memory="single_port"), else they must fit the EBRs.
    "iCE40UP5K": FPGA("iCE40UP5K", "ice40", 5280, 5280, 30, 4096, 8, 0, sprams=4),
    # Artix-7 35T: 20 800 LUT6, 41 600 FF, 50 RAMB36 (36 Kbit), 90 DSP48E1, 400 Kbit distributed RAM.
    "XC7A35T": FPGA("XC7A35T", "xilinx7", 20800, 41600, 50, 36864, 90, 400 * 1024),
}


class OnChip:
    """Mixin: the capacities of ``self.chip`` (an :class:`FPGA`) as read-only attributes.

    A synthesis target (:class:`Device`) and a board (``hw.boards.Board``) both
    sit on a chip of :data:`FPGAS`; neither copies its numbers.
    """

    chip: FPGA


for _fact in ("family", "luts", "ffs", "brams", "bram_bits", "dsps", "lutram_bits", "sprams", "bram_total_bits",
              "bram_kbits"):
    setattr(OnChip, _fact, property(lambda self, _f=_fact: getattr(self.chip, _f), doc=f"The chip's ``{_fact}``."))
del _fact


@dataclass(frozen=True)
class Device(OnChip):
    """An FPGA we can synthesise for with open tools: a chip of :data:`FPGAS` in a package."""

    name: str
    chip: FPGA
    pnr_args: tuple[str, ...]
    target_mhz: float

    @property
    def yosys_synth(self) -> str:
        return "synth_ecp5" if self.family == "ecp5" else "synth_ice40 -dsp"

    @property
    def nextpnr(self) -> str:
        return f"yowasp-nextpnr-{self.family}"


DEVICES = {
    "ecp5-85f": Device("ecp5-85f", FPGAS["LFE5U-85F"], ("--85k", "--package", "CABGA381"), 100.0),
    "ecp5-25f": Device("ecp5-25f", FPGAS["LFE5U-25F"], ("--25k", "--package", "CABGA256"), 100.0),
    "ice40-up5k": Device("ice40-up5k", FPGAS["iCE40UP5K"], ("--up5k", "--package", "sg48"), 24.0),
}


def parse_device(name: str) -> Device:
    if not isinstance(name, str) or name.lower() not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    return DEVICES[name.lower()]
