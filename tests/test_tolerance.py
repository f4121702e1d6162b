"""tests/tolerance.py: the derived tolerance holds for real reorderings and is not vacuous."""

import math

import numpy as np
import pytest
import torch

from tolerance import abs_tol, close, gamma, rel_tol


def test_gamma_values():
    u32, u64 = 2.0 ** -24, 2.0 ** -53
    assert gamma(100, np.float32) == 100 * u32 / (1 - 100 * u32)
    assert gamma(7, np.float64) == 7 * u64 / (1 - 7 * u64)
    assert gamma(3, torch.float32) == gamma(3, np.float32)
    assert rel_tol(np.float32, 10, ops=0) == 2 * gamma(10, np.float32)
    with pytest.raises(ValueError, match="too many"):
        gamma(2 ** 24, np.float32)


@pytest.mark.parametrize("n", [10, 1000, 100_000])
def test_bound_holds_for_different_summation_orders(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n).astype(np.float32)
    pairwise = float(np.sum(x))                                  # NumPy: pairwise, SIMD-width dependent
    sequential = float(np.cumsum(x, dtype=np.float32)[-1])       # left to right
    reverse = float(torch.from_numpy(x[::-1].copy()).sum())      # torch's own kernel, other order
    exact = math.fsum(x.astype(np.float64))
    scale = float(np.abs(x.astype(np.float64)).sum())
    for got in (pairwise, sequential, reverse):
        assert abs(got - exact) <= abs_tol(np.float32, n, scale, ops=0) / 2   # one implementation: gamma_n
    assert sequential == pytest.approx(pairwise, rel=0, abs=abs_tol(np.float32, n, scale, ops=0))


def test_close_rejects_a_real_difference():
    want = 0.4677075147628784
    assert 0.4677063524723053 == close(want, dtype=np.float32, terms=370)   # the AMD EPYC value of issue 12
    assert not (want + 1e-3 == close(want, dtype=np.float32, terms=370))
    assert not (want + 1e-12 == close(want, dtype=np.float64, terms=370))
