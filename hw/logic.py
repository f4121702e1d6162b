"""Shared pieces of the gateware: index shapes, AND-OR multiplexers, priority
encoders, register rings, stream payload layouts and the depth check of a pipeline.

Every function here builds plain expressions or continuous assignments
(see :func:`_select` for why not ``Array`` or ``m.If``), and every signal it
creates is named explicitly, so moving a call never renames a net in the
exported Verilog.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data

__all__ = ["event_layout", "weight_write_layout"]


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


def _csd(c: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``c >= 0``: ``[(shift, +1 | -1), …]`` with ``c = sum(d << shift)`` and no
    two adjacent non-zero digits (the fewest adders for a product by ``c``)."""
    out, i = [], 0
    while c:
        if c & 1:
            d = 2 - (c & 3)          # 1 when c = 1 mod 4, -1 when c = 3 mod 4
            out.append((i, d))
            c -= d
        c >>= 1
        i += 1
    return out


def _const_mul(value, c: int):
    """``value * c`` for a constant ``c >= 0`` as shifts and adds (canonical signed digits).

    A product by a constant would become a multiplier cell, which yosys maps to a DSP; the index
    arithmetic of a conv layer has several of them and DSPs are what small FPGAs lack. A power of two
    is a plain shift. The value is exact: Amaranth widens every shift, sum and difference.
    """
    if c < 0:
        raise ValueError(f"c must be a non-negative constant, not {c!r}")
    digits = _csd(c)
    if not digits:
        return Const(0, 1)
    total = None
    for shift, d in digits:
        term = value << shift
        total = (term if d > 0 else -term) if total is None else (total + term if d > 0 else total - term)
    return total


def _product(x, w, *, lut: bool):
    """``x * w`` for an unsigned input ``x`` and a signed weight ``w``: a multiplier cell (yosys maps it to a
    DSP), or with ``lut`` the same value as shift-and-add, ``sum(Mux(x[i], w << i, 0))``, which yosys builds
    from LUTs and carry chains (``CoreConfig.dsp_limit``: where the DSPs run out). Both are exact."""
    if not lut:
        return x.as_unsigned() * w
    terms = [Mux(x[i], w.as_signed() << i, 0) for i in range(len(x))]
    while len(terms) > 1:  # a balanced tree, like the layer's adder tree
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def _product_halves(x, w):
    """``x * w`` as two shift-and-add halves ``(lo, hi, shift)`` with ``x * w == lo + (hi << shift)``:
    ``lo`` sums the terms of ``x``'s low ``shift = ceil(len(x) / 2)`` bits, ``hi`` those of the rest.
    A dense layer registers both and adds them in its adder tree (``LayerGeometry.lane_terms``), so the
    product stage is half as deep as :func:`_product`'s (``lut``): that product was the critical path of a
    25F core with 64 of them (12 logic levels, 92.87 MHz)."""
    shift = -(-len(x) // 2)
    return _product(x[:shift], w, lut=True), _product(x[shift:], w, lut=True), shift


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


def weight_write_layout(banks: int, depth: int, width: int) -> data.StructLayout:
    """Payload of a layer's weight write: which bank, the word address and the word."""
    return data.StructLayout({"bank": _index(banks), "addr": _index(depth), "data": unsigned(width)})


def event_layout(chunk_count: int, events: int, x_bits: int) -> data.StructLayout:
    """Payload of an event chunk: its index and the ``events`` input values in it."""
    return data.StructLayout({
        "chunk": _index(chunk_count),
        "x": data.ArrayLayout(unsigned(x_bits), events),
    })
