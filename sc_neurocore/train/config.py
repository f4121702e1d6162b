"""Configuration of a training run: the network (:class:`SNNConfig`) and the optimisation (:class:`TrainConfig`).

Both validate every field on construction (messages name the library's field names; the command line
maps them to its flags).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np

from ..fixedpoint import FixedFormat
from ..params import (MEMBRANE_BITS, READOUTS, RESETS, WEIGHT_BITS, ConvParams, check_choice, check_int,
                      check_T, input_stage, membrane_format, weight_format)

__all__ = ["SNNConfig", "ConvSpec", "parse_arch", "TrainConfig", "MAX_SEED", "check_limit", "check_self_distillation"]


class ConvSpec(NamedTuple):
    """The geometry of one conv layer of a trainable network (``params.ConvParams`` without its numbers)."""

    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: int = 1

    def params(self, in_shape) -> ConvParams:
        """A zero-weight :class:`~sc_neurocore.params.ConvParams` of this geometry (validates it, gives the shapes)."""
        w = np.zeros((check_int("channels", self.channels, 1, 1 << 16), in_shape[0],
                      check_int("kernel size", self.kernel, 1, 15), self.kernel), dtype=np.int8)
        return ConvParams(w, tuple(in_shape), 2, 1, 0, stride=self.stride, padding=self.padding, pool=self.pool)


_CONV_TOKEN = re.compile(r"^(\d+)c(\d+)(?:s(\d+))?(?:p(\d+))?$")
_POOL_TOKEN = re.compile(r"^p(\d+)$")


def parse_arch(arch: str, input_shape) -> tuple[tuple, tuple[ConvSpec, ...]]:
    """``(sizes, conv)`` of an architecture in the usual SNN shorthand, for inputs of ``input_shape`` (C, H, W).

    Tokens separated by ``-``: ``16C5`` a conv layer of 16 channels with a 5x5 kernel (stride 1, "same"
    padding ``K // 2``; ``16C5S2`` stride 2, ``16C5P0`` padding 0); ``P2`` sum-pools the previous conv layer's
    spikes over 2x2 windows; a number is a dense layer of that many neurons. Conv layers come first, and
    the last token is the dense output layer: ``16C5-P2-32C5-P2-10``.
    """
    if not isinstance(arch, str) or not arch.strip():
        raise ValueError(f"arch must be a string like '16C5-P2-32C5-P2-10', not {arch!r}")
    conv: list[ConvSpec] = []
    dense: list[int] = []
    for tok in arch.strip().lower().split("-"):
        m, p = _CONV_TOKEN.match(tok), _POOL_TOKEN.match(tok)
        if m:
            if dense:
                raise ValueError(f"arch {arch!r}: conv layer {tok.upper()} after a dense layer (conv layers come first)")
            c, k, s, pad = (int(g) if g is not None else None for g in m.groups())
            conv.append(ConvSpec(c, k, s or 1, k // 2 if pad is None else pad))
        elif p:
            if not conv or dense or conv[-1].pool != 1:
                raise ValueError(f"arch {arch!r}: {tok.upper()} must follow a conv layer (once)")
            conv[-1] = conv[-1]._replace(pool=int(p.group(1)))
        elif tok.isdigit() and int(tok) >= 1:
            dense.append(int(tok))
        else:
            raise ValueError(f"arch {arch!r}: cannot read {tok!r} (expected e.g. 16C5, 16C3S2, 16C5P0, P2 or 128)")
    if not dense:
        raise ValueError(f"arch {arch!r} must end with a dense output layer (its size is the number of classes)")
    shape = tuple(input_shape)
    sizes = [math.prod(shape)]
    for spec in conv:
        layer = spec.params(shape)
        shape = layer.out_shape
        sizes.append(layer.n_out)
    return tuple(sizes + dense), tuple(conv)


def _is_int(v) -> bool:
    """A Python or NumPy integer (not a bool)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    """A Python or NumPy integer or float (not a bool)."""
    return _is_int(v) or isinstance(v, (float, np.floating))


@dataclass(frozen=True)
class SNNConfig:
    """Architecture and number formats of a trainable LIF network (spec §1 parameters)."""

    sizes: tuple = (784, 128, 10)
    T: int = 32
    encoding: str = "direct"
    reset: str = "subtract"
    readout: str = "membrane"
    weight_bits: int = 8
    membrane_bits: int = 16
    leak_shift: int = 4          # hidden (spiking) layers
    out_leak_shift: int = 0      # output layer (0: the membrane readout integrates the currents)
    rate_seed: int = 0xACE1
    theta: float = 0.5           # threshold in real units (weights ~ U(+-1/sqrt(n_in)) at init)
    surrogate_slope: float = 4.0
    input_bits: int = 8          # direct encoding: layer 1 sees pixel >> (8 - input_bits) (spec §3.1)
    #: Conv layers first (their geometry, :class:`ConvSpec`), then the dense layers of ``sizes``; ``sizes``
    #: holds every layer's output count as ``NetworkParams.sizes`` does. ``input_shape`` (C, H, W): how
    #: layer 1 reads its ``sizes[0]`` inputs (needed with conv layers).
    conv: tuple = ()
    input_shape: tuple = ()

    def __post_init__(self) -> None:
        try:
            sizes = tuple(int(s) for s in self.sizes)
        except (TypeError, ValueError):
            raise ValueError(f"sizes must be a sequence of positive integers, not {self.sizes!r}") from None
        object.__setattr__(self, "sizes", sizes)
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes must have at least 2 positive entries, not {self.sizes!r}")
        # the fields of the integer network are checked by the parameter types' own validators (params.py)
        object.__setattr__(self, "T", check_T(self.T))
        _ = self.input  # the pixels input stage checks encoding, input_bits and rate_seed
        check_choice("reset", self.reset, RESETS)
        check_choice("readout", self.readout, READOUTS)
        check_int("weight_bits", self.weight_bits, *WEIGHT_BITS)
        mb = check_int("membrane_bits", self.membrane_bits, *MEMBRANE_BITS)
        for name in ("leak_shift", "out_leak_shift"):
            check_int(name, getattr(self, name), 0, mb - 1)
        if not (_is_real(self.theta) and self.theta > 0 and math.isfinite(self.theta)):
            raise ValueError(f"theta must be positive, not {self.theta!r}")
        if not (_is_real(self.surrogate_slope) and self.surrogate_slope > 0 and math.isfinite(self.surrogate_slope)):
            raise ValueError(f"surrogate_slope must be positive and finite, not {self.surrogate_slope!r}")
        self._check_conv()

    def _check_conv(self) -> None:
        try:
            conv = tuple(ConvSpec(*c) for c in self.conv)
            shape = tuple(int(v) for v in self.input_shape)
        except (TypeError, ValueError):
            raise ValueError(f"conv must be a sequence of (channels, kernel, stride, padding, pool) and "
                             f"input_shape a (C, H, W), not {self.conv!r} and {self.input_shape!r}") from None
        object.__setattr__(self, "conv", conv)
        object.__setattr__(self, "input_shape", shape)
        if shape and (len(shape) != 3 or math.prod(shape) != self.sizes[0]):
            raise ValueError(f"input_shape must be (C, H, W) of the network's {self.sizes[0]} inputs, not {shape!r}")
        if not conv:
            return
        if not shape:
            raise ValueError("conv layers need the input_shape (C, H, W) of the network's inputs")
        if len(conv) >= self.n_layers:
            raise ValueError(f"{len(conv)} conv layers need at least {len(conv) + 1} entries after sizes[0] "
                             "(the output layer is dense)")
        for li, spec in enumerate(conv):
            layer = spec.params(shape)
            if layer.n_out != self.sizes[li + 1]:
                raise ValueError(f"conv layer {li} gives {layer.n_out} outputs {layer.out_shape} but "
                                 f"sizes[{li + 1}] is {self.sizes[li + 1]}")
            shape = layer.out_shape

    @classmethod
    def from_arch(cls, arch: str, input_shape, **kw) -> "SNNConfig":
        """The configuration of an architecture in SNN shorthand (:func:`parse_arch`), e.g. ``16C5-P2-32C5-P2-10``."""
        sizes, conv = parse_arch(arch, input_shape)
        return cls(sizes=sizes, conv=conv, input_shape=tuple(input_shape), **kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        # a dense network's dictionary (bundle provenance, checkpoints) is the same as before conv layers existed
        for k in ("conv", "input_shape"):
            if getattr(self, k):
                d[k] = [list(c) for c in self.conv] if k == "conv" else list(self.input_shape)
            else:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SNNConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if k in ("sizes", "input_shape") else v) for k, v in d.items() if k in names})

    @property
    def arch(self) -> str:
        """The network in SNN shorthand, e.g. ``16C5-P2-32C5-P2-10`` (a dense one: ``784-128-10``)."""
        parts = []
        for c in self.conv:
            parts.append(f"{c.channels}C{c.kernel}" + (f"S{c.stride}" if c.stride != 1 else "")
                         + (f"P{c.padding}" if c.padding != c.kernel // 2 else ""))
            if c.pool != 1:
                parts.append(f"P{c.pool}")
        if not self.conv:
            return "-".join(map(str, self.sizes))
        return "-".join(parts + [str(n) for n in self.sizes[len(self.conv) + 1:]])

    def layer_kind(self, li: int) -> str:
        return "conv" if li < len(self.conv) else "dense"

    def layer_in_shape(self, li: int) -> tuple:
        """``(C, H, W)`` that layer ``li`` reads (conv layers and the first layer after them)."""
        shape = self.input_shape
        for spec in self.conv[:li]:
            shape = spec.params(shape).out_shape
        return shape

    def weight_shape(self, li: int) -> tuple:
        """The shape of layer ``li``'s weights: ``(C_out, C_in, K, K)`` for conv, ``(n_in, n_out)`` for dense."""
        if li < len(self.conv):
            c = self.conv[li]
            return (c.channels, self.layer_in_shape(li)[0], c.kernel, c.kernel)
        return (self.sizes[li], self.sizes[li + 1])

    def replace(self, **kw) -> "SNNConfig":
        d = self.to_dict()
        d.update(kw)
        return SNNConfig.from_dict(d)

    @property
    def input(self):
        """The typed input stage of the network (validates its fields): ``params.input_stage``."""
        return input_stage(self.encoding, self.input_bits, self.rate_seed)

    @property
    def weight_format(self) -> FixedFormat:
        """The format of every layer's integer weights (``params.weight_format``)."""
        return weight_format(self.weight_bits)

    @property
    def membrane_format(self) -> FixedFormat:
        return membrane_format(self.membrane_bits)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def spiking(self, li: int) -> bool:
        return li < self.n_layers - 1 or self.readout == "spike_count"



@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    quiet: bool = False
    # distillation
    method: str = "none"          # none | temporal | average | self | mixed
    alpha: float = 0.5
    temperature: float = 3.0
    entropy_weight: float = 0.0
    feature_weight: float = 0.0   # per-step matching of hidden spikes to an SNN teacher's rates (feature KD)
    teacher_T: int | None = None  # T at which an SNN teacher (or the self-teacher) runs
    augment: int = 1              # random shifts of up to this many pixels (square images or polarity planes)
    dropout: float = 0.0          # dropout on hidden spikes during training (SNN only)
    label_smoothing: float = 0.0  # of the cross-entropy on the labels (the task term when distilling)
    weight_decay: float = 0.0     # decoupled (AdamW) decay of the weights
    train_on_val: bool = False    # train on training + validation images; keep the last epoch

    def __post_init__(self) -> None:
        _check_train_config(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("quiet")
        return d


MAX_SEED = (1 << 63) - 2  # the seed and seed + 1 seed NumPy's and torch's generators


def _finite(v) -> bool:
    return _is_real(v) and _finite_float(v)


def _finite_float(v) -> bool:
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an integer beyond the float range
        return False


def _check_train_config(tc: TrainConfig) -> None:
    """Every option of ``tc`` in range, before any data is touched (messages name the fields)."""
    def need(ok: bool, what: str, value) -> None:
        if not ok:
            raise ValueError(f"{what}, not {value!r}")

    need(_is_int(tc.epochs) and tc.epochs >= 1, "epochs must be at least 1", tc.epochs)
    need(_is_int(tc.batch_size) and tc.batch_size >= 1, "batch_size must be at least 1", tc.batch_size)
    need(_finite(tc.lr) and tc.lr > 0, "lr must be a positive finite number", tc.lr)
    need(_is_int(tc.seed) and 0 <= tc.seed <= MAX_SEED, f"seed must be an integer between 0 and {MAX_SEED}", tc.seed)
    need(tc.threads is None or (_is_int(tc.threads) and tc.threads >= 1), "threads must be at least 1", tc.threads)
    need(isinstance(tc.device, str) and tc.device.split(":")[0] in ("cpu", "cuda"), "device must be cpu or cuda",
         tc.device)
    need(tc.method in ("none", "temporal", "average") + SELF_METHODS,
         "method must be 'none', 'temporal', 'average', 'self' or 'mixed'", tc.method)
    need(_finite(tc.alpha) and 0.0 <= tc.alpha <= 1.0, "alpha must be a number in [0, 1]", tc.alpha)
    need(_finite(tc.temperature) and tc.temperature > 0, "temperature must be a positive finite number",
         tc.temperature)
    need(_finite(tc.entropy_weight) and tc.entropy_weight >= 0, "entropy_weight must be a non-negative finite number",
         tc.entropy_weight)
    need(_finite(tc.feature_weight) and tc.feature_weight >= 0, "feature_weight must be a non-negative finite number",
         tc.feature_weight)
    need(tc.feature_weight == 0 or tc.method in ("temporal", "average"),
         "feature_weight needs method 'temporal' or 'average' (an SNN teacher's hidden spikes)", tc.method)
    if tc.teacher_T is not None:
        check_T(tc.teacher_T, "teacher_T")
    need(_is_int(tc.augment) and tc.augment >= 0, "augment must be at least 0", tc.augment)
    need(_finite(tc.dropout) and 0.0 <= tc.dropout < 1.0, "dropout must be in [0, 1)", tc.dropout)
    need(_finite(tc.label_smoothing) and 0.0 <= tc.label_smoothing < 1.0, "label_smoothing must be in [0, 1)",
         tc.label_smoothing)
    need(_finite(tc.weight_decay) and tc.weight_decay >= 0.0, "weight_decay must be a finite number >= 0",
         tc.weight_decay)


def check_limit(limit) -> int | None:
    """``limit`` (the first N images of each split) is ``None`` or an integer >= 1."""
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise ValueError(f"limit must be at least 1, not {limit!r}")
    return limit


#: The methods whose teacher is the student itself at ``teacher_T`` steps (no teacher checkpoint):
#: ``self`` (the long run only teaches) and ``mixed`` (the long run also learns the labels).
SELF_METHODS = ("self", "mixed")


def check_self_distillation(method: str, teacher_T: int | None, T: int) -> None:
    """Self-distillation runs the student's teacher at more steps than the student: ``teacher_T > T``."""
    if method in SELF_METHODS and teacher_T is not None and teacher_T <= T:
        raise ValueError(f"self-distillation needs teacher_T greater than the student's T ({teacher_T} <= {T})")


def default_self_teacher_T(T: int) -> int:
    """The T at which self-distillation's teacher runs when ``--teacher-T`` is not given."""
    return max(32, 2 * int(T))
