"""The rate-encoding LFSR of spec §3.2 as a GF(2)-linear map.

One LFSR step is linear over GF(2) (a shift plus a conditional XOR with the
constant mask, where the condition is itself a state bit), so ``k`` steps are
the ``k``-th power of a 16x16 bit matrix.  The gateware advances the state by
``8 * pixels_per_beat`` steps per cycle with one XOR network per output bit
instead of clocking the register that many times.
"""

from __future__ import annotations

from functools import lru_cache

from sc_neurocore.params import lfsr_step

__all__ = ["WIDTH", "step_matrix", "apply_matrix"]

WIDTH = 16


@lru_cache(maxsize=None)
def step_matrix(k: int) -> tuple[int, ...]:
    """Row masks of the map "advance ``k`` steps": new bit ``r`` = parity(state & rows[r])."""
    if k < 0:
        raise ValueError(f"k must be non-negative, not {k!r}")
    # Column c of the matrix is the image of the unit vector 1 << c; linearity
    # makes lfsr_step of a unit vector exact (no constant term).
    cols = []
    for c in range(WIDTH):
        s = 1 << c
        for _ in range(k):
            s = lfsr_step(s)
        cols.append(s)
    return tuple(sum(((cols[c] >> r) & 1) << c for c in range(WIDTH)) for r in range(WIDTH))


def apply_matrix(rows: tuple[int, ...], state: int) -> int:
    """Software reference of :func:`step_matrix` (used by tests)."""
    return sum((bin(state & rows[r]).count("1") & 1) << r for r in range(WIDTH))

