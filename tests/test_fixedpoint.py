"""FixedFormat: ranges, rounding, overflow rules and parameter validation."""

import numpy as np
import pytest

from sc_neurocore.fixedpoint import FixedFormat


def test_ranges():
    assert (FixedFormat(8).min, FixedFormat(8).max) == (-128, 127)
    assert (FixedFormat(8, symmetric=True).min, FixedFormat(8, symmetric=True).max) == (-127, 127)
    assert (FixedFormat(8, signed=False).min, FixedFormat(8, signed=False).max) == (0, 255)
    assert FixedFormat(16, frac_bits=4).scale == 1 / 16
    assert FixedFormat(16, frac_bits=4).describe() == "s16.4" and FixedFormat(8, signed=False).describe() == "u8"


@pytest.mark.parametrize("rounding, expect", [
    ("floor", [-3, -2, -1, 0, 1, 2]),
    ("trunc", [-2, -1, 0, 0, 1, 2]),
    ("nearest_even", [-2, -2, 0, 0, 2, 2]),
    ("nearest_away", [-3, -2, -1, 1, 2, 3]),
])
def test_rounding_modes(rounding, expect):
    x = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
    assert FixedFormat(8, rounding=rounding).quantize(x).tolist() == expect


def test_frac_bits_quantize():
    f = FixedFormat(8, frac_bits=2, rounding="nearest_even")
    assert f.quantize([0.25, 0.3, -1.0]).tolist() == [1, 1, -4]
    assert f.to_real([1, -4]).tolist() == [0.25, -1.0]


def test_overflow_rules():
    assert FixedFormat(4).fit([9, -9, 3]).tolist() == [7, -8, 3]
    assert FixedFormat(4, overflow="wrap").fit([9, -9, 8, -8]).tolist() == [-7, 7, -8, -8]
    assert FixedFormat(4, signed=False, overflow="wrap").fit([17, -1]).tolist() == [1, 15]
    with pytest.raises(OverflowError, match=r"out of range for s4 \[-8, 7\]"):
        FixedFormat(4, overflow="error").fit([8])
    assert FixedFormat(4).contains([-8, 7]) and not FixedFormat(4).contains([8])
    assert FixedFormat(8, symmetric=True).quantize([-1000.0]).tolist() == [-127]


def test_nan_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        FixedFormat(8).quantize([np.nan])


def test_amaranth_shape():
    from amaranth.hdl import signed, unsigned
    assert FixedFormat(12).amaranth_shape == signed(12)
    assert FixedFormat(8, signed=False).amaranth_shape == unsigned(8)


def test_dict_round_trip():
    f = FixedFormat(10, frac_bits=3, rounding="trunc", overflow="wrap")
    assert FixedFormat.from_dict(f.to_dict()) == f
    with pytest.raises(ValueError, match=r"unknown number-format field\(s\): bits"):
        FixedFormat.from_dict({"width": 8, "bits": 3})


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"width": 8.0}, TypeError, r"width must be an integer, not 8.0"),
    ({"width": 0}, ValueError, r"width must be between 1 and 64, not 0"),
    ({"width": 1}, ValueError, r"width of a signed format must be at least 2, not 1"),
    ({"width": 8, "signed": 1}, TypeError, r"signed must be a bool, not 1"),
    ({"width": 8, "frac_bits": 9}, ValueError, r"frac_bits must be between 0 and width \(8\), not 9"),
    ({"width": 8, "rounding": "up"}, ValueError, r"rounding must be one of floor, nearest_even, nearest_away, trunc, not 'up'"),
    ({"width": 8, "overflow": "clip"}, ValueError, r"overflow must be one of saturate, wrap, error, not 'clip'"),
    ({"width": 8, "signed": False, "symmetric": True}, ValueError, r"symmetric must be False for an unsigned format"),
])
def test_validation(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        FixedFormat(**kwargs)
