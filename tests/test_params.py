"""The network parameters (``sc_neurocore.params``): every constructor field's validation message
("X must be …, not …"), the number formats, check_T, and the LFSR threshold table."""

import re

import numpy as np
import pytest

from naive_model import lfsr_R
from sc_neurocore.fixedpoint import FixedFormat
from sc_neurocore.params import (MAX_T, LayerParams, NetworkParams, PixelInput, check_T, lfsr_thresholds,
                                 membrane_format, weight_format)


def test_params_validation_messages():
    w = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(TypeError, match="weight must have an integer dtype, not float64"):
        LayerParams(np.zeros((2, 2)), 4, 1, 0)
    with pytest.raises(ValueError, match=r"weight must be a non-empty 2-D"):
        LayerParams(np.zeros((2,), dtype=np.int64), 4, 1, 0)
    with pytest.raises(TypeError, match="threshold must be an integer, not 1.5"):
        LayerParams(w, 4, 1.5, 0)
    with pytest.raises(ValueError, match=r"layers\[1\] has 3 inputs but layers\[0\] has 2 outputs"):
        NetworkParams((LayerParams(w, 4, 1, 0), LayerParams(np.zeros((3, 1), dtype=np.int64), 4, 1, 0)), 1)
    with pytest.raises(ValueError, match="layers must be a non-empty sequence"):
        NetworkParams((), 1)
    with pytest.raises(TypeError, match=r"layers\[0\] must be a LayerParams or ConvParams, not str"):
        NetworkParams(("x",), 1)


@pytest.mark.parametrize("kw, match", [
    ({"encoding": "sparkle"}, "encoding must be one of 'direct', 'rate', not 'sparkle'"),
    ({"encoding": "rate", "input_bits": 1}, "input_bits must be 8 with 'rate' encoding"),
    ({"input_bits": 0}, "input_bits must be between 1 and 8, not 0"),
    ({"rate_seed": 0}, "rate_seed must be between 1 and 65535, not 0"),
])
def test_pixel_input_checks_itself(kw, match):
    with pytest.raises(ValueError, match=match):
        PixelInput(**kw)
    assert PixelInput("direct", 1).x_max == 1 and PixelInput("direct", 3).shift == 5
    assert PixelInput("rate").x_max == 1 and not PixelInput("rate").constant


def test_lfsr_table_matches_naive_and_is_maximal():
    assert np.array_equal(lfsr_thresholds(0xACE1, 3, 17), np.array(lfsr_R(0xACE1, 3, 17), dtype=np.uint8))
    assert np.array_equal(lfsr_thresholds(1, 2, 5), np.array(lfsr_R(1, 2, 5), dtype=np.uint8))
    # Hand check of the first step: seed 1 -> lsb 1 -> (1 >> 1) ^ 0xB400 = 0xB400.
    from sc_neurocore.params import lfsr_step
    assert lfsr_step(1) == 0xB400 and lfsr_step(2) == 1


def test_input_bits_validation():
    layer = LayerParams(np.zeros((2, 2), dtype=np.int64), 4, 1, 0)
    with pytest.raises(ValueError, match="input_bits must be between 1 and 8, not 0"):
        NetworkParams((layer,), 1, input_bits=0)
    with pytest.raises(ValueError, match="input_bits must be between 1 and 8, not 9"):
        NetworkParams((layer,), 1, input_bits=9)
    with pytest.raises(TypeError, match="input_bits must be an integer, not True"):
        NetworkParams((layer,), 1, input_bits=True)
    with pytest.raises(ValueError, match="input_bits must be 8 with 'rate' encoding"):
        NetworkParams((layer,), 1, encoding="rate", input_bits=4)
    assert NetworkParams((layer,), 1, input_bits=2) != NetworkParams((layer,), 1)
    assert NetworkParams((layer,), 1, input_bits=2).with_T(3).input_bits == 2


def _w(n_in=2, n_out=2):
    return np.zeros((n_in, n_out), dtype=np.int64)


# LayerParams(weight, weight_bits, threshold, leak_shift, current_shift=0, membrane_bits=16)
@pytest.mark.parametrize("kw, exc, message", [
    ({"weight_bits": 1}, ValueError, "weight_bits must be between 2 and 16, not 1"),
    ({"weight_bits": 17}, ValueError, "weight_bits must be between 2 and 16, not 17"),
    ({"weight_bits": 4.0}, TypeError, "weight_bits must be an integer, not 4.0"),
    ({"weight_bits": True}, TypeError, "weight_bits must be an integer, not True"),
    ({"membrane_bits": 3}, ValueError, "membrane_bits must be between 4 and 32, not 3"),
    ({"membrane_bits": 33}, ValueError, "membrane_bits must be between 4 and 32, not 33"),
    ({"membrane_bits": "16"}, TypeError, "membrane_bits must be an integer, not '16'"),
    ({"threshold": 0}, ValueError, "threshold must be between 1 and 32767, not 0"),
    ({"threshold": 128, "membrane_bits": 8}, ValueError, "threshold must be between 1 and 127, not 128"),
    ({"threshold": None}, TypeError, "threshold must be an integer, not None"),
    ({"leak_shift": -1}, ValueError, "leak_shift must be between 0 and 15, not -1"),
    ({"leak_shift": 8, "membrane_bits": 8}, ValueError, "leak_shift must be between 0 and 7, not 8"),
    ({"leak_shift": np.bool_(True)}, TypeError, "leak_shift must be an integer, not "),
    ({"current_shift": 32}, ValueError, "current_shift must be between 0 and 31, not 32"),
    ({"current_shift": -1}, ValueError, "current_shift must be between 0 and 31, not -1"),
    ({"weight": [[0, 1]]}, TypeError, "weight must be a numpy array, not list"),
    ({"weight": np.zeros((2, 2))}, TypeError, "weight must have an integer dtype, not float64"),
    ({"weight": np.zeros((0, 2), dtype=np.int64)}, ValueError,
     "weight must be a non-empty 2-D (n_in, n_out) matrix, not shape (0, 2)"),
    ({"weight": np.zeros((2, 2, 1), dtype=np.int64)}, ValueError,
     "weight must be a non-empty 2-D (n_in, n_out) matrix, not shape (2, 2, 1)"),
    ({"weight": np.array([[8, -7]])}, ValueError, "weight values must fit weight_bits=4 (range -7..7), found -7..8"),
    ({"weight": np.array([[-8, 7]])}, ValueError, "weight values must fit weight_bits=4 (range -7..7), found -8..7"),
])
def test_layer_params_field_messages(kw, exc, message):
    args = {"weight": _w(), "weight_bits": 4, "threshold": 1, "leak_shift": 0, **kw}
    with pytest.raises(exc, match="^" + re.escape(message)):
        LayerParams(**args)


def test_layer_params_normalise_and_freeze():
    w = np.array([[7, -7]], dtype=np.int8)
    layer = LayerParams(w, np.int64(4), np.int32(3), 1, membrane_bits=8)
    assert layer.weight.dtype == np.int64 and not layer.weight.flags.writeable
    assert type(layer.weight_bits) is int and type(layer.threshold) is int
    assert (layer.n_in, layer.n_out) == (1, 2)
    w[0, 0] = 0
    assert layer.weight[0, 0] == 7          # a copy: later edits of the caller's array do not leak in


@pytest.mark.parametrize("kw, exc, message", [
    ({"T": 0}, ValueError, "T must be between 1 and 65535, not 0"),
    ({"T": MAX_T + 1}, ValueError, "T must be between 1 and 65535, not 65536"),
    ({"T": 2.0}, TypeError, "T must be an integer, not 2.0"),
    ({"encoding": "delta"}, ValueError, "encoding must be one of 'direct', 'rate', 'events', not 'delta'"),
    ({"reset": "soft"}, ValueError, "reset must be one of 'subtract', 'zero', not 'soft'"),
    ({"readout": "argmax"}, ValueError, "readout must be one of 'spike_count', 'membrane', not 'argmax'"),
    ({"rate_seed": 0}, ValueError, "rate_seed must be between 1 and 65535, not 0"),
    ({"rate_seed": 0x10000}, ValueError, "rate_seed must be between 1 and 65535, not 65536"),
    ({"rate_seed": "1"}, TypeError, "rate_seed must be an integer, not '1'"),
    ({"layers": []}, ValueError, "layers must be a non-empty sequence of LayerParams"),
    ({"layers": None}, ValueError, "layers must be a non-empty sequence of LayerParams"),
])
def test_network_params_field_messages(kw, exc, message):
    args = {"layers": (LayerParams(_w(), 4, 1, 0),), "T": 1, **kw}
    with pytest.raises(exc, match="^" + re.escape(message)):
        NetworkParams(**args)


def test_network_params_accepts_a_list_of_layers():
    net = NetworkParams([LayerParams(_w(3, 2), 4, 1, 0), LayerParams(_w(2, 5), 4, 1, 0)], np.int64(4))
    assert isinstance(net.layers, tuple) and net.sizes == (3, 2, 5) and net.n_classes == 5 and type(net.T) is int


@pytest.mark.parametrize("bad, exc, message", [
    (0, ValueError, "T must be between 1 and 65535, not 0"),
    (-3, ValueError, "T must be between 1 and 65535, not -3"),
    (65536, ValueError, "T must be between 1 and 65535, not 65536"),
    (True, TypeError, "T must be an integer, not True"),
    ("4", TypeError, "T must be an integer, not '4'"),
])
def test_check_T(bad, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        check_T(bad)
    with pytest.raises(exc, match="^" + re.escape(message.replace("T must", "--teacher-T must")) + "$"):
        check_T(bad, "--teacher-T")
    assert check_T(1) == 1 and check_T(np.uint16(MAX_T)) == MAX_T and type(check_T(np.int16(3))) is int


def test_weight_and_membrane_formats():
    wf = weight_format(4)
    assert wf == FixedFormat(4, symmetric=True, rounding="nearest_even")
    assert (wf.min, wf.max) == (-7, 7)
    mf = membrane_format(8)
    assert mf == FixedFormat(8, overflow="saturate")
    assert (mf.min, mf.max) == (-128, 127)
    layer = LayerParams(_w(), 4, 1, 0, membrane_bits=8)
    assert layer.weight_format == wf and layer.membrane_format == mf
