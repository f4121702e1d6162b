"""Parameter types of the fixed-point LIF network (``docs/fixed_point.md`` §1).

These frozen dataclasses are what the golden model, the bundle, the trainer's
exporter and the gateware generator all consume. Every constructor validates
its arguments against the specification and raises ``TypeError``/``ValueError``
naming the offending field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from .fixedpoint import FixedFormat

__all__ = [
    "ENCODINGS", "RESETS", "READOUTS", "INPUT_FORMAT", "MAX_T",
    "LayerParams", "ConvParams", "conv_out_shape", "check_conv_geometry", "LAYER_TYPES", "PixelInput", "EventInput", "input_stage", "NetworkParams", "lfsr_thresholds", "LFSR_MASK", "check_T", "check_int",
    "check_choice", "WEIGHT_BITS", "MEMBRANE_BITS", "weight_format", "membrane_format",
]

ENCODINGS = ("direct", "rate", "events")
#: The encodings of the ``pixels`` input kind (an 8-bit image encoded on chip); ``events`` is its own kind.
PIXEL_ENCODINGS = ("direct", "rate")
RESETS = ("subtract", "zero")
READOUTS = ("spike_count", "membrane")
#: Pixels are 8-bit unsigned.
INPUT_FORMAT = FixedFormat(8, signed=False)
MAX_T = 65535
LFSR_MASK = 0xB400
#: Steps of the LFSR per input per timestep (spec §3.2).
LFSR_STEPS_PER_INPUT = 8
#: The ranges of the layer formats (spec §1).
WEIGHT_BITS = (2, 16)
MEMBRANE_BITS = (4, 32)


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
    return value


def check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``[lo, hi]``; else TypeError/ValueError naming ``name``."""
    return _check_int(name, value, lo, hi)


def check_choice(name: str, value, choices):
    """``value`` if it is one of ``choices``; else a ValueError naming ``name``."""
    return _check_choice(name, value, choices)


def weight_format(bits: int) -> FixedFormat:
    """The format of ``bits``-bit integer weights (spec §2): symmetric, quantised to nearest even."""
    return FixedFormat(bits, symmetric=True, rounding="nearest_even")


def membrane_format(bits: int) -> FixedFormat:
    """The format of a ``bits``-bit membrane (spec §4): the only saturating quantity."""
    return FixedFormat(bits, overflow="saturate")


def check_T(value, name: str = "T") -> int:
    """A number of timesteps, ``1 <= T <= MAX_T`` (spec §1); the one place the range is checked."""
    return _check_int(name, value, 1, MAX_T)


def _check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


_LIF_INTS = ("weight_bits", "threshold", "leak_shift", "current_shift", "membrane_bits")


class _LIFFields:
    """What every layer kind shares: the LIF fields of spec §1 and the number formats derived from them.

    A kind supplies ``weight`` and the geometry (``n_in``, ``n_out``, ``n_neurons``, ``fan_in``,
    ``out_max``); the formats below are then the same facts for every kind (spec §6).
    """

    def _check_lif(self, ndim: int, shape_text: str) -> None:
        wb = _check_int("weight_bits", self.weight_bits, *WEIGHT_BITS)
        mb = _check_int("membrane_bits", self.membrane_bits, *MEMBRANE_BITS)
        _check_int("threshold", self.threshold, 1, (1 << (mb - 1)) - 1)
        _check_int("leak_shift", self.leak_shift, 0, mb - 1)
        _check_int("current_shift", self.current_shift, 0, 31)
        w = self.weight
        if not isinstance(w, np.ndarray):
            raise TypeError(f"weight must be a numpy array, not {type(w).__name__}")
        if w.dtype.kind not in "iu":
            raise TypeError(f"weight must have an integer dtype, not {w.dtype}")
        if w.ndim != ndim or min(w.shape, default=0) < 1:
            raise ValueError(f"weight must be a non-empty {ndim}-D {shape_text}, not shape {w.shape}")
        fmt = FixedFormat(wb, symmetric=True)
        if not fmt.contains(w):
            raise ValueError(
                f"weight values must fit weight_bits={wb} (range {fmt.min}..{fmt.max}), "
                f"found {int(w.min())}..{int(w.max())}")
        w = np.ascontiguousarray(w, dtype=np.int64)
        w.setflags(write=False)
        object.__setattr__(self, "weight", w)
        for name in _LIF_INTS:
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def weight_format(self) -> FixedFormat:
        return weight_format(self.weight_bits)

    @property
    def membrane_format(self) -> FixedFormat:
        return membrane_format(self.membrane_bits)

    def accumulator_format(self, x_max: int) -> FixedFormat:
        """Signed format that holds every weighted sum ``a`` exactly (spec §6): ``fan_in`` terms of at most
        ``x_max * max|W|``."""
        bound = self.fan_in * int(x_max) * self.weight_format.max
        return FixedFormat(max(2, bound.bit_length() + 1), overflow="error")

    def current_format(self, x_max: int) -> FixedFormat:
        """Signed format holding ``I = a >>> current_shift``."""
        acc = self.accumulator_format(x_max)
        return FixedFormat(max(2, acc.width - self.current_shift), overflow="error")

    def _lif_values(self) -> tuple:
        return tuple(getattr(self, name) for name in _LIF_INTS)


@dataclass(frozen=True, eq=False)
class LayerParams(_LIFFields):
    """One fully connected LIF layer: the ``dense`` layer kind (``docs/architecture.md``).

    ``weight`` is input-major: shape ``(n_in, n_out)``, ``weight[i, j]``
    connects input ``i`` to neuron ``j``.
    """

    #: The layer kind every view dispatches on (:class:`sc_neurocore.kinds.Registry`).
    kind: ClassVar[str] = "dense"

    weight: np.ndarray
    weight_bits: int
    threshold: int
    leak_shift: int
    current_shift: int = 0
    membrane_bits: int = 16

    def __post_init__(self) -> None:
        self._check_lif(2, "(n_in, n_out) matrix")

    # -- derived facts (read these; never re-derive them by hand) ---------
    @property
    def n_in(self) -> int:
        return self.weight.shape[0]

    @property
    def n_out(self) -> int:
        return self.weight.shape[1]

    @property
    def n_neurons(self) -> int:
        """Neurons (membranes) of the layer; a dense layer's outputs are its neurons' spikes."""
        return self.n_out

    @property
    def fan_in(self) -> int:
        """Terms of one neuron's weighted sum (spec §6)."""
        return self.n_in

    @property
    def out_max(self) -> int:
        """Largest value one output of the layer carries to the next layer (a spike: 1)."""
        return 1

    def __eq__(self, other) -> bool:
        if not isinstance(other, LayerParams):
            return NotImplemented
        return np.array_equal(self.weight, other.weight) and self._lif_values() == other._lif_values()


#: Largest side of a conv layer's kernel, stride, padding and pooling window, and of its input (spec §1).
MAX_KERNEL = 15
MAX_SIDE = 4096


def _check_shape3(name: str, shape) -> tuple[int, int, int]:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"{name} must be (channels, height, width), not {shape!r}")
    return tuple(_check_int(f"{name}[{i}]", v, 1, MAX_SIDE if i else 1 << 16) for i, v in enumerate(shape))


def conv_out_shape(in_shape, channels: int, kernel: int, stride: int, padding: int) -> tuple[int, int, int]:
    """``(C_out, H_o, W_o)`` of a convolution over ``in_shape = (C_in, H, W)``: ``H_o = (H + 2*padding - K) // stride
    + 1`` (spec §1.1). Every view that needs the neurons' shape reads it here."""
    _, h, w = in_shape
    return channels, (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1


def check_conv_geometry(in_shape, weight_shape, stride, padding, pool) -> tuple[tuple[int, int, int], int, int, int]:
    """``(in_shape, stride, padding, pool)`` checked against a ``(C_out, C_in, K, K)`` weight shape (spec §1.1),
    or a ``ValueError`` naming the field: square kernel of at most :data:`MAX_KERNEL`, matching input channels,
    ``1 <= stride``, ``0 <= padding < K``, a kernel no larger than the padded input, a pool that divides the
    convolution's output. Shared by :class:`ConvParams` and the float networks of the NIR reader."""
    c, h, w = _check_shape3("in_shape", in_shape)
    if len(weight_shape) != 4:
        raise ValueError(f"weight must be a (C_out, C_in, K, K) array, not shape {tuple(weight_shape)}")
    co, ci, kh, kw = weight_shape
    if kh != kw:
        raise ValueError(f"the kernel must be square (K x K), not {kh} x {kw}")
    _check_int("kernel size", kh, 1, MAX_KERNEL)
    if ci != c:
        raise ValueError(f"weight has {ci} input channels but in_shape {(c, h, w)} has {c}")
    s = _check_int("stride", stride, 1, MAX_KERNEL)
    p = _check_int("padding", padding, 0, kh - 1)
    q = _check_int("pool", pool, 1, MAX_KERNEL)
    if h + 2 * p < kh or w + 2 * p < kh:
        raise ValueError(f"the {kh}x{kh} kernel is larger than the padded input {h + 2 * p}x{w + 2 * p}")
    _, ho, wo = conv_out_shape((c, h, w), co, kh, s, p)
    if ho % q or wo % q:
        raise ValueError(f"pool must divide the convolution's output size {ho}x{wo}, not {q!r}")
    return (c, h, w), s, p, q


@dataclass(frozen=True, eq=False)
class ConvParams(_LIFFields):
    """A 2-D convolution layer of LIF neurons: the ``conv`` layer kind (spec §1, §4.1).

    ``weight`` has shape ``(C_out, C_in, K, K)`` (the layout of PyTorch and NIR); the input is the previous
    stage's outputs read as ``in_shape = (C_in, H, W)``, channel-major (``i = c*H*W + y*W + x``).
    Neuron ``(co, yo, xo)`` sums ``x[ci, yo*stride + ky - padding, xo*stride + kx - padding] * W[co, ci, ky, kx]``
    over its ``K x K x C_in`` receptive field (positions outside the input are zeros). Its spikes are
    sum-pooled over non-overlapping ``pool x pool`` windows: the next layer sees ``(C_out, H_o/pool,
    W_o/pool)`` counts, ``0 .. pool^2`` (``pool = 1``: the spikes themselves).
    """

    kind: ClassVar[str] = "conv"

    weight: np.ndarray
    in_shape: tuple
    weight_bits: int
    threshold: int
    leak_shift: int
    current_shift: int = 0
    membrane_bits: int = 16
    stride: int = 1
    padding: int = 0
    pool: int = 1

    def __post_init__(self) -> None:
        self._check_lif(4, "(C_out, C_in, K, K) array")
        geometry = check_conv_geometry(self.in_shape, self.weight.shape, self.stride, self.padding, self.pool)
        for name, v in zip(("in_shape", "stride", "padding", "pool"), geometry):
            object.__setattr__(self, name, v)

    # -- derived facts ---------------------------------------------------
    @property
    def kernel(self) -> int:
        return self.weight.shape[2]

    @property
    def channels(self) -> int:
        """Output channels ``C_out``."""
        return self.weight.shape[0]

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        """``(C_out, H_o, W_o)``: the neurons, ``H_o = (H + 2*padding - K) // stride + 1``."""
        return conv_out_shape(self.in_shape, self.channels, self.kernel, self.stride, self.padding)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(C_out, H_o/pool, W_o/pool)``: what the next layer reads."""
        c, h, w = self.conv_shape
        return c, h // self.pool, w // self.pool

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def n_neurons(self) -> int:
        return math.prod(self.conv_shape)

    @property
    def fan_in(self) -> int:
        """Terms of one neuron's weighted sum: ``K * K * C_in`` (spec §6)."""
        return self.kernel * self.kernel * self.in_shape[0]

    @property
    def out_max(self) -> int:
        """Largest pooled count the next layer sees: ``pool^2``."""
        return self.pool * self.pool

    def __eq__(self, other) -> bool:
        if not isinstance(other, ConvParams):
            return NotImplemented
        return (np.array_equal(self.weight, other.weight) and self._lif_values() == other._lif_values()
                and (self.in_shape, self.stride, self.padding, self.pool)
                == (other.in_shape, other.stride, other.padding, other.pool))


#: The layer types a network may hold (the output layer must be dense: its neurons are the classes).
LAYER_TYPES = (LayerParams, ConvParams)


@dataclass(frozen=True)
class PixelInput:
    """The ``pixels`` input kind: an 8-bit image, encoded once per inference (spec §3).

    ``encoding="direct"``: layer 1 sees ``x = p >> (8 - input_bits)`` at every
    timestep; ``"rate"``: binary spikes ``x[t, i] = [p_i > R[t, i]]`` from the
    LFSR seeded with ``rate_seed``.
    """

    kind: ClassVar[str] = "pixels"
    encoding: str = "direct"
    input_bits: int = 8
    rate_seed: int = 0xACE1

    def __post_init__(self) -> None:
        _check_choice("encoding", self.encoding, PIXEL_ENCODINGS)
        object.__setattr__(self, "rate_seed", _check_int("rate_seed", self.rate_seed, 1, 0xFFFF))
        object.__setattr__(self, "input_bits", _check_int("input_bits", self.input_bits, 1, INPUT_FORMAT.width))
        if self.encoding != "direct" and self.input_bits != INPUT_FORMAT.width:
            raise ValueError(f"input_bits must be {INPUT_FORMAT.width} with {self.encoding!r} encoding "
                             f"(it applies to direct encoding only), not {self.input_bits!r}")

    @property
    def x_max(self) -> int:
        """Largest value layer 1 sees."""
        return (1 << self.input_bits) - 1 if self.encoding == "direct" else 1

    @property
    def shift(self) -> int:
        """Right shift from an 8-bit pixel to layer 1's direct input (spec §3.1)."""
        return INPUT_FORMAT.width - self.input_bits

    @property
    def constant(self) -> bool:
        """Whether layer 1's input is the same at every timestep (direct encoding, spec §3.1)."""
        return self.encoding == "direct"


@dataclass(frozen=True)
class EventInput:
    """The ``events`` input kind: layer 1 is given ``x_0[t, i]`` for every timestep (spec §3.3).

    ``x_0[t, i]`` is the number of events of input ``i`` in time bin ``t``, saturated to ``input_bits``
    (``input_bits = 1``: binary spikes); how a recording becomes ``T`` bins is ``docs/events.md``. Layer 1
    integrates it every step like a hidden layer (no constant current).
    """

    kind: ClassVar[str] = "events"
    encoding: ClassVar[str] = "events"
    input_bits: int = 1
    #: Validated like the pixel kind's and kept in bundles, but unused.
    rate_seed: int = 0xACE1

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_bits", _check_int("input_bits", self.input_bits, 1, INPUT_FORMAT.width))
        object.__setattr__(self, "rate_seed", _check_int("rate_seed", self.rate_seed, 1, 0xFFFF))

    @property
    def x_max(self) -> int:
        """Largest count layer 1 sees in one bin."""
        return (1 << self.input_bits) - 1

    @property
    def shift(self) -> int:
        return 0

    @property
    def constant(self) -> bool:
        return False


def input_stage(encoding: str, input_bits: int = 8, rate_seed: int = 0xACE1):
    """The typed input stage of ``encoding``: :class:`PixelInput` (``direct``, ``rate``) or :class:`EventInput`."""
    _check_choice("encoding", encoding, ENCODINGS)
    if encoding == "events":
        return EventInput(input_bits, rate_seed)
    return PixelInput(encoding, input_bits, rate_seed)


@dataclass(frozen=True, eq=False)
class NetworkParams:
    """A whole network: its layers plus the global parameters of spec §1."""

    layers: tuple[LayerParams, ...]
    T: int
    encoding: str = "direct"
    reset: str = "subtract"
    readout: str = "membrane"
    rate_seed: int = 0xACE1
    #: Direct encoding only: layer 1 sees the top ``input_bits`` bits of each
    #: pixel, ``x = p >> (8 - input_bits)`` (spec §3.1).  Fewer bits make the
    #: first layer's products narrower (1 bit: no multipliers at all).
    input_bits: int = 8

    def __post_init__(self) -> None:
        layers = tuple(self.layers) if isinstance(self.layers, (list, tuple)) else self.layers
        if not isinstance(layers, tuple) or not layers:
            raise ValueError("layers must be a non-empty sequence of LayerParams")
        for i, layer in enumerate(layers):
            if not isinstance(layer, LAYER_TYPES):
                raise TypeError(f"layers[{i}] must be a LayerParams or ConvParams, not {type(layer).__name__}")
        if layers[-1].kind != "dense":
            raise ValueError(f"the output layer must be dense (its neurons are the classes), not {layers[-1].kind!r}")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ValueError(
                    f"layers[{i}] has {layers[i].n_in} inputs but layers[{i - 1}] has {layers[i - 1].n_out} outputs")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "T", check_T(self.T))
        stage = input_stage(self.encoding, self.input_bits, self.rate_seed)   # validates the input fields
        object.__setattr__(self, "rate_seed", stage.rate_seed)
        object.__setattr__(self, "input_bits", stage.input_bits)
        _check_choice("reset", self.reset, RESETS)
        _check_choice("readout", self.readout, READOUTS)

    @property
    def input(self) -> "PixelInput | EventInput":
        """The typed input stage: the ``pixels`` kind (direct, rate) or the ``events`` kind."""
        return input_stage(self.encoding, self.input_bits, self.rate_seed)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.layers[0].n_in,) + tuple(layer.n_out for layer in self.layers)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    def spiking(self, index: int) -> bool:
        """Whether layer ``index`` (0-based) fires spikes (spec §4 step 5)."""
        return index < len(self.layers) - 1 or self.readout == "spike_count"

    def input_max(self, index: int) -> int:
        """Largest value an input of layer ``index`` (0-based) can carry: the input stage's for layer 1,
        else what the previous layer emits (a spike, or a pooled count of a conv layer)."""
        return self.input.x_max if index == 0 else self.layers[index - 1].out_max

    @property
    def input_shift(self) -> int:
        """Right shift from an 8-bit pixel to layer 1's direct input (spec §3.1)."""
        return self.input.shift

    @property
    def score_format(self) -> FixedFormat:
        """Format of the readout values."""
        if self.readout == "spike_count":
            return FixedFormat(max(1, int(self.T).bit_length()), signed=False, overflow="error")
        return self.layers[-1].membrane_format

    def with_T(self, T: int) -> "NetworkParams":
        return NetworkParams(self.layers, T, self.encoding, self.reset, self.readout, self.rate_seed, self.input_bits)

    def __eq__(self, other) -> bool:
        if not isinstance(other, NetworkParams):
            return NotImplemented
        return (self.layers == other.layers and
                (self.T, self.encoding, self.reset, self.readout, self.rate_seed, self.input_bits)
                == (other.T, other.encoding, other.reset, other.readout, other.rate_seed, other.input_bits))


def lfsr_step(state: int) -> int:
    """One step of the 16-bit Galois LFSR of spec §3.2."""
    lsb = state & 1
    state >>= 1
    return state ^ LFSR_MASK if lsb else state


@lru_cache(maxsize=32)
def _lfsr_table(seed: int, T: int, n: int) -> np.ndarray:
    # The LFSR has period 65535, so the table is a window of one precomputed
    # cycle: state after k steps from `seed` is cycle[(pos(seed) + k) % 65535].
    cycle = _lfsr_cycle()
    pos = int(_lfsr_positions()[seed])
    k = pos + LFSR_STEPS_PER_INPUT * (1 + np.arange(T * n, dtype=np.int64))
    table = (cycle[k % 65535] & 0xFF).astype(np.uint8).reshape(T, n)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=1)
def _lfsr_cycle() -> np.ndarray:
    out = np.empty(65535, dtype=np.int64)
    s = 1
    for i in range(65535):
        out[i] = s
        s = lfsr_step(s)
    assert s == 1, "LFSR mask is not maximal length"
    return out


@lru_cache(maxsize=1)
def _lfsr_positions() -> np.ndarray:
    pos = np.zeros(65536, dtype=np.int64)
    pos[_lfsr_cycle()] = np.arange(65535)
    return pos


def lfsr_thresholds(seed: int, T: int, n: int) -> np.ndarray:
    """The rate-encoding thresholds ``R[t, i]`` of spec §3.2, shape ``(T, n)``, uint8, read-only."""
    _check_int("rate_seed", seed, 1, 0xFFFF)
    check_T(T)
    _check_int("n", n, 1, 1 << 24)
    return _lfsr_table(int(seed), int(T), int(n))
