"""The number-format type shared by the golden model, the exporter and the gateware generator.

A :class:`FixedFormat` says everything about how a quantity is stored: its
width, signedness, binary point, how real values are rounded onto its grid and
what happens at its limits.  The golden model saturates membranes with it, the
exporter quantises weights with it and the Amaranth generator derives signal
shapes from it (:attr:`FixedFormat.amaranth_shape`), so a format is never
re-derived by hand.

Integers held in a format are *raw* integers: the real value is
``raw * 2**-frac_bits``.  All LIF quantities in this project use
``frac_bits = 0``; the field exists so exported formats are self-describing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["FixedFormat", "Rounding", "Overflow"]

Rounding = Literal["floor", "nearest_even", "nearest_away", "trunc"]
Overflow = Literal["saturate", "wrap", "error"]

_ROUNDINGS = ("floor", "nearest_even", "nearest_away", "trunc")
_OVERFLOWS = ("saturate", "wrap", "error")


@dataclass(frozen=True)
class FixedFormat:
    """A two's-complement (or unsigned) fixed-point number format.

    Parameters
    ----------
    width:
        Total number of bits, 1..64.
    signed:
        Two's complement if true, else unsigned.
    frac_bits:
        Bits right of the binary point (real value = raw * 2**-frac_bits).
    rounding:
        How :meth:`quantize` maps real values to raw integers:
        ``"floor"`` (toward -inf, what an arithmetic shift does),
        ``"trunc"`` (toward zero), ``"nearest_even"`` (ties to even, NumPy's
        ``rint``), ``"nearest_away"`` (ties away from zero).
    overflow:
        What happens to values outside the range: ``"saturate"`` clamps to
        [min, max], ``"wrap"`` keeps the low ``width`` bits, ``"error"``
        raises :class:`OverflowError`.
    symmetric:
        If true (signed formats only) the most negative code ``-2**(width-1)``
        is excluded, so the range is symmetric around zero. Weight formats use
        this so that negating a weight never overflows.
    """

    width: int
    signed: bool = True
    frac_bits: int = 0
    rounding: Rounding = "floor"
    overflow: Overflow = "saturate"
    symmetric: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or isinstance(self.width, bool):
            raise TypeError(f"width must be an integer, not {self.width!r}")
        if not 1 <= self.width <= 64:
            raise ValueError(f"width must be between 1 and 64, not {self.width!r}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, not {self.signed!r}")
        if self.signed and self.width < 2:
            raise ValueError(f"width of a signed format must be at least 2, not {self.width!r}")
        if not isinstance(self.frac_bits, int) or isinstance(self.frac_bits, bool):
            raise TypeError(f"frac_bits must be an integer, not {self.frac_bits!r}")
        if not 0 <= self.frac_bits <= self.width:
            raise ValueError(f"frac_bits must be between 0 and width ({self.width}), not {self.frac_bits!r}")
        if self.rounding not in _ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(_ROUNDINGS)}, not {self.rounding!r}")
        if self.overflow not in _OVERFLOWS:
            raise ValueError(f"overflow must be one of {', '.join(_OVERFLOWS)}, not {self.overflow!r}")
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"symmetric must be a bool, not {self.symmetric!r}")
        if self.symmetric and not self.signed:
            raise ValueError("symmetric must be False for an unsigned format")

    # -- derived facts ---------------------------------------------------
    @property
    def min(self) -> int:
        """Smallest raw code."""
        if not self.signed:
            return 0
        lo = -(1 << (self.width - 1))
        return lo + 1 if self.symmetric else lo

    @property
    def max(self) -> int:
        """Largest raw code."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def scale(self) -> float:
        """Real value of one LSB."""
        return 2.0 ** -self.frac_bits

    @property
    def amaranth_shape(self):
        """The Amaranth shape (``signed(width)`` / ``unsigned(width)``) holding this format."""
        from amaranth.hdl import signed, unsigned

        return signed(self.width) if self.signed else unsigned(self.width)

    def describe(self) -> str:
        """Short human-readable name, e.g. ``s8`` / ``u8`` / ``s16.4``."""
        base = f"{'s' if self.signed else 'u'}{self.width}"
        return base if self.frac_bits == 0 else f"{base}.{self.frac_bits}"

    # -- operations ------------------------------------------------------
    def contains(self, raw) -> bool:
        """True when every raw integer in ``raw`` is representable."""
        a = np.asarray(raw)
        if a.size == 0:
            return True
        return bool(a.min() >= self.min and a.max() <= self.max)

    def fit(self, raw) -> np.ndarray:
        """Apply the overflow rule to raw integers (int64 array in, int64 array out)."""
        a = np.asarray(raw, dtype=np.int64)
        if self.overflow == "saturate":
            return np.clip(a, self.min, self.max)
        if self.overflow == "error":
            if not self.contains(a):
                raise OverflowError(
                    f"value out of range for {self.describe()} [{self.min}, {self.max}]")
            return a
        # wrap: keep the low `width` bits, then sign-extend.
        mask = (1 << self.width) - 1 if self.width < 64 else -1
        w = a & mask
        if self.signed and self.width < 64:
            w = np.where(w >= (1 << (self.width - 1)), w - (1 << self.width), w)
        return w.astype(np.int64)

    def quantize(self, real) -> np.ndarray:
        """Map real values onto raw codes with this format's rounding and overflow rules."""
        x = np.asarray(real, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("cannot quantize NaN or infinite values")
        y = x * (2.0 ** self.frac_bits)
        if self.rounding == "floor":
            r = np.floor(y)
        elif self.rounding == "trunc":
            r = np.trunc(y)
        elif self.rounding == "nearest_even":
            r = np.rint(y)
        else:
            r = np.sign(y) * np.floor(np.abs(y) + 0.5)
        r = np.clip(r, -2.0**63, 2.0**63 - 1024)
        return self.fit(r.astype(np.int64))

    def to_real(self, raw) -> np.ndarray:
        """Real values of raw codes."""
        return np.asarray(raw, dtype=np.float64) * self.scale

    def to_dict(self) -> dict:
        return {"width": self.width, "signed": self.signed, "frac_bits": self.frac_bits,
                "rounding": self.rounding, "overflow": self.overflow, "symmetric": self.symmetric}

    @classmethod
    def from_dict(cls, d: dict) -> "FixedFormat":
        if not isinstance(d, dict):
            raise TypeError(f"a number format must be a mapping, not {d!r}")
        extra = set(d) - {"width", "signed", "frac_bits", "rounding", "overflow", "symmetric"}
        if extra:
            raise ValueError(f"unknown number-format field(s): {', '.join(sorted(extra))}")
        return cls(**d)
