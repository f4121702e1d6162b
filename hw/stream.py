"""The bus contract of the generated core, in one place: names, widths, beat layout, traffic knobs.

Every packer and unpacker reads this module: the gateware (the ports of
``sc_neurocore_top`` and its output layout), the Amaranth testbench, the
cocotb model, driver and monitor, the board tops and the synthesis wrapper.
Plain Python (no Amaranth import), so the testbench side inside a simulator
can use it too.

* **Top level**: ``sc_neurocore_top`` (:data:`TOP_NAME`) with ``clk``,
  ``rst`` and two AXI4-Stream ports, ``s_axis_*`` in and ``m_axis_*`` out.
* **Input** (``s_axis_tdata``, :func:`in_width` bits): an image of ``n``
  pixels (:data:`PIXEL_BITS`-bit unsigned, spec §3) is ``ceil(n / PPB)``
  beats (:func:`beats_per_image`); pixel ``i`` sits in beat ``i // PPB`` at
  bits ``[PIXEL_BITS*(i % PPB) +: PIXEL_BITS]``; padding pixels are 0;
  ``tlast`` is high on the last beat.
* **Output** (``m_axis_tdata``, :func:`out_width` bits): one beat per image;
  bits ``[CLASS_BITS-1:0]`` the class (unsigned), the score of class ``c`` at
  ``[CLASS_BITS + SW*c +: SW]`` (two's complement when the scores are
  signed); ``tlast`` = 1.
* **Traffic** (:class:`Traffic`): the knobs every testbench takes, under one
  set of names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sc_neurocore.kinds import Registry
from sc_neurocore.params import INPUT_FORMAT

__all__ = ["TOP_NAME", "PIXEL_BITS", "CLASS_BITS", "S_AXIS", "M_AXIS", "in_width", "out_width", "beats_per_image",
           "pack_images", "pack_image", "unpack_result", "pack_result", "Traffic", "INPUT_BEATS", "input_beats"]

#: Name of the generated top-level module (and of its Verilog file, ``sc_neurocore_top.v``).
TOP_NAME = "sc_neurocore_top"
#: Bits of one pixel lane of ``s_axis_tdata``: the input format of spec §3.
PIXEL_BITS = INPUT_FORMAT.width
#: Width of the class field at the bottom of ``m_axis_tdata``.
CLASS_BITS = 16
#: Port-name prefixes of the input and output streams.
S_AXIS = "s_axis"
M_AXIS = "m_axis"


def in_width(pixels_per_beat: int) -> int:
    """Bits of ``s_axis_tdata``."""
    return PIXEL_BITS * int(pixels_per_beat)


def out_width(n_classes: int, score_width: int) -> int:
    """Bits of ``m_axis_tdata``."""
    return CLASS_BITS + int(score_width) * int(n_classes)


def beats_per_image(n_inputs: int, pixels_per_beat: int) -> int:
    return -(-int(n_inputs) // int(pixels_per_beat))


def pack_images(images, pixels_per_beat: int) -> list[list[int]]:
    """``s_axis_tdata`` of every beat (Python ints) of every image, shape (B, n) or (n,)."""
    px = np.asarray(images)
    if px.ndim == 1:
        px = px[None, :]
    if px.size and (px.min() < INPUT_FORMAT.min or px.max() > INPUT_FORMAT.max):
        raise ValueError(f"pixels must be within {INPUT_FORMAT.min}..{INPUT_FORMAT.max}")
    B, n = px.shape
    ppb = int(pixels_per_beat)
    beats = beats_per_image(n, ppb)
    # PIXEL_BITS is 8: one byte per lane, so a beat is the little-endian integer of its bytes.
    buf = np.zeros((B, beats * ppb), dtype=np.uint8)
    buf[:, :n] = px
    raw = buf.reshape(B, beats, ppb)
    return [[int.from_bytes(raw[b, k].tobytes(), "little") for k in range(beats)] for b in range(B)]


def pack_image(pixels, pixels_per_beat: int) -> list[int]:
    """The beats of one image."""
    return pack_images(np.asarray(pixels)[None, :], pixels_per_beat)[0]


#: How each input kind travels on ``s_axis``: ``pack(samples, pixels_per_beat) -> beats of every sample``
#: (a list of ``s_axis_tdata`` ints per sample); the Amaranth and the cocotb testbenches both use it.
INPUT_BEATS: Registry = Registry("bus contract", "input")


@INPUT_BEATS.register("pixels")
def _pixel_beats(images, pixels_per_beat: int) -> list[list[int]]:
    return pack_images(images, pixels_per_beat)


@INPUT_BEATS.register("events")
def _event_beats(rasters, pixels_per_beat: int) -> list[list[int]]:
    """Event rasters (N, T, n) of counts: each timestep's counts as the ``K`` beats of an image, one lane per
    input (docs/hardware.md: per-step count beats), the ``T`` timesteps one after another."""
    x = np.asarray(rasters)
    if x.ndim == 2:
        x = x[None]
    return [sum(pack_images(r, pixels_per_beat), []) for r in x]


def input_beats(network, samples, pixels_per_beat: int) -> list[list[int]]:
    """The input beats of every sample of ``network``'s input stage (dispatch on ``network.input.kind``)."""
    return INPUT_BEATS(network.input)(samples, pixels_per_beat)


def unpack_result(word: int, n_classes: int, score_width: int, signed: bool) -> tuple[int, list[int]]:
    """``(class, scores)`` of one ``m_axis_tdata`` word."""
    word = int(word)
    sw = int(score_width)
    mask = (1 << sw) - 1
    scores = []
    for c in range(int(n_classes)):
        v = (word >> (CLASS_BITS + sw * c)) & mask
        if signed and v >> (sw - 1):
            v -= 1 << sw
        scores.append(v)
    return word & ((1 << CLASS_BITS) - 1), scores


def pack_result(cls: int, scores, score_width: int) -> int:
    """Inverse of :func:`unpack_result` (for models and the tests of the testbench itself)."""
    sw = int(score_width)
    mask = (1 << sw) - 1
    word = int(cls) & ((1 << CLASS_BITS) - 1)
    for c, s in enumerate(scores):
        word |= (int(s) & mask) << (CLASS_BITS + sw * c)
    return word


@dataclass(frozen=True)
class Traffic:
    """How a testbench drives the streams; every field 0 means "as fast as possible".

    gaps:
        Probability of an idle gap (``s_axis_tvalid`` low) before each input
        beat, of 1 .. ``max_gap`` cycles.
    backpressure:
        Probability that ``m_axis_tready`` is low in a cycle.
    resets:
        Resets asserted mid-inference (at random cycles drawn from ``seed``).
    seed:
        Seed of the traffic's random draws.
    """

    gaps: float = 0.0
    max_gap: int = 3
    backpressure: float = 0.0
    resets: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("gaps", "backpressure"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1), not {v!r}")
            object.__setattr__(self, name, float(v))
        for name, lo in (("max_gap", 1), ("resets", 0), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")
            object.__setattr__(self, name, int(v))

    @property
    def shaped(self) -> bool:
        """Whether the traffic differs from back-to-back beats with ``m_axis_tready`` high (cycles then vary)."""
        return bool(self.gaps or self.backpressure or self.resets)

    def to_dict(self) -> dict:
        return asdict(self)
