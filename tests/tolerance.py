"""Tolerances for comparing two floating-point implementations, derived from the format, never fixed.

Two implementations of the same formula (NumPy and torch, float32 and
float64, CPU and CUDA, a fast path and a reference) may reduce in different
orders and with different SIMD widths, so they agree only up to the rounding
error each of them commits. For a sum of ``n`` terms in a format with unit
roundoff ``u = eps / 2`` the forward error is at most ``gamma_n * sum|x_i|``
with ``gamma_n = n u / (1 - n u)`` (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., Lemma 3.1 and §4.2); each correctly or
faithfully rounded elementwise operation (exp, log, division, a scale) adds
at most a few ``u``. Two results that each satisfy the bound differ by at most
twice it. So the tolerance of a comparison is

    2 * gamma_(terms + ops) * scale

with ``terms`` the number of terms reduced along the longest chain of
additions (an upper bound is fine: the product of the reduced dimensions),
``ops`` a budget of elementwise operations per term (default
:data:`OPS`) and ``scale`` the size of the summed magnitudes (``sum|x_i|``,
normalised like the result: for a mean of non-negative loss terms, the
result itself). Integer results are compared with ``np.array_equal``, never
here.
"""

from __future__ import annotations

import numpy as np
import pytest

__all__ = ["OPS", "gamma", "rel_tol", "abs_tol", "close", "assert_allclose"]

#: Elementwise operations per term allowed for (exp, log, divide, scale, ... each within a few ulp,
#: also on CUDA whose exp/log are within 2 ulp).
OPS = 16


def _u(dtype) -> float:
    if type(dtype).__module__ == "torch":  # torch.float32 -> "float32", without importing torch here
        dtype = str(dtype).removeprefix("torch.")
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def gamma(n: int, dtype) -> float:
    """``gamma_n = n u / (1 - n u)`` for ``dtype`` (a NumPy dtype, a type, or a torch dtype)."""
    if n < 0:
        raise ValueError(f"n must be at least 0, not {n}")
    nu = n * _u(dtype)
    if nu >= 1:
        raise ValueError(f"{n} terms are too many for a bound in {dtype}")
    return nu / (1 - nu)


def rel_tol(dtype, terms: int, ops: int = OPS) -> float:
    """Relative difference allowed between two implementations reducing ``terms`` terms in ``dtype``."""
    return 2 * gamma(terms + ops, dtype)


def abs_tol(dtype, terms: int, scale: float, ops: int = OPS) -> float:
    """Absolute difference allowed when the summed magnitudes are ``scale``."""
    return rel_tol(dtype, terms, ops) * float(scale)


def close(want, *, dtype, terms: int, scale: float | None = None, ops: int = OPS, cond: float = 1.0):
    """``pytest.approx(want)`` with the derived tolerance.

    ``cond``: the condition number of the formula at the data, where it
    amplifies rounding (e.g. ``1 - p`` for ``p`` within ``d`` of 1 has relative
    condition ``1 / d``).

    ``scale`` defaults to ``max(|want|, 1)``: the compared quantities here are
    losses, probabilities and logits whose terms are of order one, so a result
    near zero comes from terms near one that cancelled.
    """
    s = max(abs(float(want)), 1.0) if scale is None else scale
    return pytest.approx(want, rel=0, abs=cond * abs_tol(dtype, terms, s, ops))


def assert_allclose(got, want, *, dtype, terms: int, scale: float | None = None, ops: int = OPS) -> None:
    """Element-wise :func:`close` for arrays (``scale`` defaults to ``max(max|want|, 1)``)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    s = max(float(np.max(np.abs(want), initial=0.0)), 1.0) if scale is None else scale
    np.testing.assert_allclose(got, want, rtol=0, atol=abs_tol(dtype, terms, s, ops))
