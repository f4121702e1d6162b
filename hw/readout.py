"""The readout of the gateware: :class:`Argmax` (a registered comparison tree)
and :func:`result_layout` (the payload of ``m_axis_tdata``).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import CoreGeometry
from .logic import _check_depth
from .stream import CLASS_BITS

__all__ = ["Argmax", "result_layout"]


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
        _check_depth("argmax tree", level, self.levels)
        return m


def result_layout(geom: CoreGeometry) -> data.StructLayout:
    """``m_axis_tdata`` (:mod:`sc_neurocore.hw.stream`): class at bits ``[CLASS_BITS-1:0]``, score ``c`` at
    ``CLASS_BITS + SW*c``."""
    shape = signed(geom.score_width) if geom.score_signed else unsigned(geom.score_width)
    return data.StructLayout({"cls": unsigned(CLASS_BITS), "scores": data.ArrayLayout(shape, geom.n_classes)})
