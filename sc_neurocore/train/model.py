r"""The torch QAT model: a fixed-point LIF network whose forward pass equals the golden model.

The torch model :class:`SpikingMLP` *emulates* the integer network of
``docs/fixed_point.md`` during training: every forward pass computes exactly
the integers the golden model (:mod:`sc_neurocore.golden`) computes for the
weights that :func:`to_bundle` exports, so the exported bundle scores exactly
what the trained model scores. Gradients pass the integer operations as
follows (surrogate-gradient BPTT):

==========================  ===============================  =======================================
spec step                   forward (exact)                  backward
==========================  ===============================  =======================================
weight quantisation (§7)    ``clamp(rint(w * alpha))``       straight-through inside the range
weighted sum (§4.1)         float64 (layer 1, direct) or     ordinary matmul gradient
                            float32 when every sum < 2^24
current scaling (§4.2)      ``floor(a / 2^s)``               straight-through (``1 / 2^s``)
leak (§4.3)                 ``v - floor(v / 2^k)``           straight-through (``1 - 2^-k``)
integrate (§4.4)            ``clamp(v' + I)``                clamp gradient
fire (§4.5)                 ``u >= theta``                   fast-sigmoid surrogate, width ``theta``
reset (§4.6)                subtract / zero                  detached (as snnTorch)
==========================  ===============================  =======================================

All integer quantities of a layer (weights in units of ``1/alpha``, the
current shift ``s``, the threshold ``theta``, leak ``k``, membrane width ``m``)
are fixed functions of the configuration (:func:`layer_design`), so a teacher
and a student with the same sizes share the integer grid and a student can
start from the teacher's weights at any ``T``.

Two more facts of the spec make the emulation fast: with ``direct`` encoding
layer 1's current is the same at every step and is computed once per image,
and because layer ``l`` at step ``t`` only needs layer ``l-1`` at step ``t``,
the network is evaluated layer by layer with one matmul per layer for all
``T`` steps (same integers as the step-by-step order of §4).

Per-step logits (what distillation matches) are the increments of the output
layer's value: the membrane increment ``v_t - v_{t-1}`` (``readout=membrane``)
or the output spikes (``spike_count``). They sum over time to the integer score,
so ``mean_t logits_t`` is proportional to the exported score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..bundle import Bundle
from ..fixedpoint import FixedFormat
from ..kinds import Registry
from ..params import ConvParams, LayerParams, NetworkParams, check_T, lfsr_thresholds
from .config import SNNConfig
from .kernels import (_ExactCurrent, _FloorSTE, _LIFLayer, _LIFTable, _QuantConv, _QuantDense, _RoundSTE, _Spike,
                      _SumPool, exact_conv2d, lif_table)

__all__ = ["QAT_LAYERS", "DenseQAT", "ConvQAT", "LayerDesign", "ConvDesign", "layer_design", "SNNOutput", "SpikingMLP", "ANNTeacher", "to_network", "to_bundle",
           "golden_accuracy"]


@dataclass(frozen=True)
class LayerDesign:
    """The integer parameters of one layer of the QAT model; ``kind`` is the layer kind it dispatches on."""

    kind: ClassVar[str] = "dense"
    alpha: float      # integer weight = rint(latent * alpha)
    shift: int        # current shift s
    theta: int        # integer threshold
    leak: int         # leak shift k
    mbits: int        # membrane bits m
    gain: float       # integer membrane units per real unit (alpha * x_max / 2^s)
    exact64: bool     # the weighted sum needs float64 to be exact

    @property
    def membrane_format(self) -> FixedFormat:
        """The saturating ``mbits``-bit membrane format (as :attr:`LayerParams.membrane_format`)."""
        return FixedFormat(self.mbits, overflow="saturate")


@dataclass(frozen=True)
class ConvDesign(LayerDesign):
    """A conv layer's integer parameters plus its geometry (``params`` gives the shapes)."""

    kind: ClassVar[str] = "conv"
    geometry: ConvParams = None   # zero weights: in_shape, kernel, stride, padding, pool and the derived shapes


def layer_design(cfg: SNNConfig) -> list[LayerDesign]:
    """The integer parameters of every layer (fixed by the configuration, never learned)."""
    wmax = cfg.weight_format.max
    m = cfg.membrane_bits
    mmax = cfg.membrane_format.max
    theta_target = max(4, (1 << (m - 1)) // 16)  # room for ~8..16 thresholds in the membrane
    out = []
    x_max = cfg.input.x_max                        # the largest value layer li reads
    for li in range(cfg.n_layers):
        geometry = cfg.conv[li].params(cfg.layer_in_shape(li)) if li < len(cfg.conv) else None
        n_in = geometry.fan_in if geometry is not None else cfg.sizes[li]   # terms of one weighted sum
        bound = 1.0 / math.sqrt(n_in)            # init range of the latent weights
        alpha = wmax / (2.0 * bound)              # init weights use half the integer range
        # integer units per real unit before the shift: a pixel's real unit is x_max (it enters as p / 255),
        # a spike's and a pooled count's is 1 (a count of q^2 spikes is q^2 real units)
        g0 = alpha * (x_max if li == 0 else 1)
        if cfg.spiking(li):
            s = max(0, int(math.floor(math.log2(g0 * cfg.theta / theta_target))))
        else:
            # non-spiking membrane readout: leave room for T_ref=32 steps of |current| <= 4
            s = max(0, int(math.ceil(math.log2(g0 * 4 * 32 / (1 << (m - 1))))))
        s = min(s, 31)
        gain = g0 / (1 << s)
        theta = int(min(mmax, max(1, round(cfg.theta * gain))))
        k = cfg.leak_shift if li < cfg.n_layers - 1 else cfg.out_leak_shift
        acc_bound = n_in * x_max * wmax
        if geometry is None:
            out.append(LayerDesign(alpha, s, theta, k, m, gain, acc_bound >= (1 << 24)))
            x_max = 1
        else:
            out.append(ConvDesign(alpha, s, theta, k, m, gain, acc_bound >= (1 << 24), geometry))
            x_max = geometry.out_max
    return out


#: The torch QAT view of the layer kinds (:class:`sc_neurocore.kinds.Registry`).
QAT_LAYERS: Registry = Registry("torch QAT model", "layer")


@QAT_LAYERS.register("dense")
class DenseQAT:
    """The ``dense`` layer kind: ``I = clamp(floor((x @ q) / 2^s))`` of the quantised weights ``q``."""

    @staticmethod
    def current(model: "SpikingMLP", li: int, d: LayerDesign, lim: float, sdt: torch.dtype, fast: bool) -> Callable:
        """``current(inp, exact64, nonneg=False)``: layer ``li``'s current for a batch of inputs."""
        if fast:  # weight quantisation and the exact current in one autograd node
            wmax = float(model.cfg.weight_format.max)

            def current(inp, exact64, w=model.weights[li], d=d, lim=lim, sdt=sdt, wmax=wmax, nonneg=False):
                return _QuantDense.apply(inp, w, d.alpha, wmax, d.shift, lim, exact64, sdt, nonneg)
        else:
            wq = model.int_weight(li)

            def current(inp, exact64, w=wq, d=d, lim=lim, sdt=sdt, nonneg=False):
                return _ExactCurrent.apply(inp, w, d.shift, lim, exact64, sdt)
        return current

    @staticmethod
    def emit(spikes: torch.Tensor, d: LayerDesign) -> torch.Tensor:
        """What the next layer reads (spec §4.7): the spikes."""
        return spikes

    @staticmethod
    def to_params(w: np.ndarray, cfg: SNNConfig, d: LayerDesign) -> LayerParams:
        return LayerParams(w, cfg.weight_bits, d.theta, d.leak, d.shift, d.mbits)


@QAT_LAYERS.register("conv")
class ConvQAT:
    """The ``conv`` layer kind: ``I = clamp(floor(conv2d(x, q) / 2^s))`` of the quantised kernel ``q``.

    ``torch.nn.functional.conv2d`` is exact here for the reason the dense matmul is: every partial sum is an
    integer below 2^24 in float32 (``ConvDesign.exact64`` says when the bound ``K*K*C_in * x_max * wmax`` is
    not, and float64 is used); the CPU convolution sums products directly (no Winograd or FFT transform,
    whose rounding would break this: :func:`~sc_neurocore.train.kernels.exact_conv2d` keeps NNPACK's Winograd
    out where oneDNN is off; ``tests/test_train_conv.py`` checks it against the golden model).
    Backward: autograd through the straight-through round and floor (the reference path); the training path
    computes the same integers and gradients in one node (:class:`~sc_neurocore.train.kernels._QuantConv`).
    """

    @staticmethod
    def current(model: "SpikingMLP", li: int, d: "ConvDesign", lim: float, sdt: torch.dtype, fast: bool) -> Callable:
        g = d.geometry
        c, h, w = g.in_shape
        scale = 1.0 / (1 << d.shift)

        if fast:  # kernel quantisation and the exact current in one autograd node
            wmax = float(model.cfg.weight_format.max)

            def fused(inp, exact64, nonneg=False):
                cur = _QuantConv.apply(inp.reshape(-1, c, h, w), model.weights[li], d.alpha, wmax, d.shift, lim,
                                       exact64, sdt, g.stride, g.padding)
                return cur.reshape(inp.shape[0], -1)
            return fused

        def current(inp, exact64, nonneg=False):
            q = model.int_weight(li)
            x = inp.reshape(-1, c, h, w)
            if exact64:
                a = exact_conv2d(x.to(torch.float64), q.to(torch.float64), g.stride, g.padding)
            else:
                a = exact_conv2d(x, q, g.stride, g.padding)
            cur = torch.clamp(_FloorSTE.apply(a * scale), -lim, lim).to(sdt)
            return cur.reshape(inp.shape[0], -1)
        return current

    @staticmethod
    def emit(spikes: torch.Tensor, d: "ConvDesign") -> torch.Tensor:
        """Sum-pool the ``(T, B, C*H_o*W_o)`` spikes over ``pool x pool`` windows (spec §4.7)."""
        g = d.geometry
        if g.pool == 1:
            return spikes
        T, B = spikes.shape[:2]
        c, h, w = g.conv_shape
        x = _SumPool.apply(spikes.reshape(T * B, c, h, w), g.pool)
        return x.reshape(T, B, -1)

    @staticmethod
    def to_params(w: np.ndarray, cfg: SNNConfig, d: "ConvDesign") -> ConvParams:
        g = d.geometry
        return ConvParams(w, g.in_shape, cfg.weight_bits, d.theta, d.leak, d.shift, d.mbits, g.stride, g.padding,
                          g.pool)


@dataclass
class SNNOutput:
    """Result of :meth:`SpikingMLP.forward`.

    ``logits``: (T, B, C) per-step real logits (for losses and distillation);
    ``scores``: (B, C) the integer scores of spec §5 (float tensor holding integers);
    ``spikes``: per spiking layer (T, B, n) 0/1 tensors (with gradients).
    """

    logits: torch.Tensor
    scores: torch.Tensor
    spikes: list = field(default_factory=list)

    @property
    def mean_logits(self) -> torch.Tensor:
        return self.logits.mean(0)


class SpikingMLP(nn.Module):
    """Fully connected LIF network whose forward pass equals the golden model on the exported integers."""

    kind = "snn"

    def __init__(self, cfg: SNNConfig, seed: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.design = layer_design(cfg)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        ws = []
        for li, d in enumerate(self.design):
            n_in = d.geometry.fan_in if d.kind == "conv" else cfg.sizes[li]
            bound = 1.0 / math.sqrt(n_in)
            ws.append(nn.Parameter((torch.rand(*cfg.weight_shape(li), generator=gen) * 2 - 1) * bound))
        # latent weights: input-major (n_in, n_out) for dense layers, (C_out, C_in, K, K) for conv
        self.weights = nn.ParameterList(ws)
        # learnable temperature of the logits (does not change the integer argmax)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(4.0)))
        self._rate_cache: dict = {}
        self.autograd_reference = False  # True: the slow plain-autograd LIF loop (for tests)
        self.dropout = 0.0  # training only: dropout on the spikes entering layers 2..L (1/(1-p) rescaled)

    @property
    def n_classes(self) -> int:
        return self.cfg.sizes[-1]

    def _state_dtype(self, li: int) -> torch.dtype:
        return torch.float32 if self.design[li].mbits <= 23 else torch.float64

    def int_weight(self, li: int) -> torch.Tensor:
        """The integer weights of layer ``li`` (float tensor of integers, straight-through gradient)."""
        d = self.design[li]
        wmax = self.cfg.weight_format.max
        return torch.clamp(_RoundSTE.apply(self.weights[li] * d.alpha), -wmax, wmax)

    def _rate_thresholds(self, T: int, n: int, device) -> torch.Tensor:
        key = (T, n, str(device))
        if key not in self._rate_cache:
            R = lfsr_thresholds(self.cfg.rate_seed, T, n)
            self._rate_cache = {key: torch.as_tensor(np.array(R, dtype=np.float32), device=device)}
        return self._rate_cache[key]

    def _pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The pixels as float32; direct encoding with ``input_bits < 8``: the top ``input_bits`` (spec §3.1)."""
        cfg = self.cfg
        x = pixels.to(torch.float32)
        if cfg.encoding == "direct" and cfg.input_bits < 8:
            # spec §3.1: the top input_bits of each pixel (exact: floor of a power-of-two division)
            x = torch.floor(x / float(1 << (8 - cfg.input_bits)))
        return x

    def _first_input(self, current, d: LayerDesign, x: torch.Tensor, pixels: torch.Tensor,
                     T: int) -> tuple[torch.Tensor, bool]:
        """Layer 1's currents and whether they are constant over time: ``(B, n)`` for the direct encoding
        (the same at every step), ``(T, B, n)`` for the rate encoding (LFSR thresholds) and for event
        rasters ``(B, T', n)`` (re-binned to ``T`` bins when ``T'`` is a multiple: ``golden.rebin_events``)."""
        if self.cfg.encoding == "events":
            B, Tf, n = x.shape
            if Tf != T:
                if Tf % T:
                    raise ValueError(f"event rasters of {Tf} bins cannot be re-binned into T={T} bins "
                                     f"(T must divide {Tf})")
                x = x.reshape(B, T, Tf // T, n).sum(2).clamp_(max=float(self.cfg.input.x_max))
            xin = x.transpose(0, 1).reshape(T * B, n)
            return current(xin, d.exact64, nonneg=True).reshape(T, B, -1), False
        if self.cfg.encoding == "direct":
            unsigned = not pixels.dtype.is_floating_point and not pixels.dtype.is_signed
            return current(x, d.exact64, nonneg=unsigned), True
        B = x.shape[0]
        R = self._rate_thresholds(T, x.shape[1], x.device)
        xin = (x[None, :, :] > R[:, None, :]).to(torch.float32).reshape(T * B, -1)
        return current(xin, d.exact64).reshape(T, B, -1), False

    def _hidden_input(self, current, d: LayerDesign, prev: torch.Tensor, T: int) -> torch.Tensor:
        """The ``(T, B, n)`` currents of a later layer from the previous layer's spikes (training dropout first)."""
        B = prev.shape[1]
        if self.training and self.dropout > 0:  # not part of the integer network: training only
            keep = (torch.rand(prev.shape[1:], device=prev.device) >= self.dropout).to(prev.dtype)
            prev = prev * (keep / (1.0 - self.dropout))
        return current(prev.reshape(T * B, -1).to(torch.float32), d.exact64).reshape(T, B, -1)

    def _membrane(self, cur: torch.Tensor, T: int, constant: bool, d: LayerDesign, spiking: bool) -> torch.Tensor:
        """The LIF layer over ``T`` steps: the ``(T, B, n)`` spikes, or (readout) the membrane increments."""
        cfg = self.cfg
        fmt = d.membrane_format
        mmin, mmax = float(fmt.min), float(fmt.max)
        if self.autograd_reference:
            return self._lif_reference(cur, T, constant, d, spiking, mmin, mmax)
        if not spiking and d.leak == 0 and not constant and self._never_saturates(cur, mmin, mmax):
            return cur  # v_t = v_{t-1} + I_t never clamped: the increments are the currents
        subtract = cfg.reset == "subtract"
        if constant and spiking:  # the current's trajectory is a function of its one integer value: look it up
            table = lif_table(T, float(d.theta), d.leak, mmin, mmax, subtract, cfg.surrogate_slope,
                              float(1 << d.mbits), cur.dtype, cur.device)
            if table is not None:
                return _LIFTable.apply(cur, *table, float(1 << d.mbits))
        return _LIFLayer.apply(cur, T, constant, float(d.theta), d.leak, mmin, mmax, spiking, subtract,
                               cfg.surrogate_slope)

    def _readout_logits(self, out_seq: torch.Tensor) -> torch.Tensor:
        """Per-step real logits from the output layer's sequence (membrane units / gain, times the temperature)."""
        cfg = self.cfg
        unit = 1.0 if cfg.spiking(cfg.n_layers - 1) else 1.0 / self.design[-1].gain
        return out_seq.to(torch.float32) * (unit * self.log_logit_scale.exp())

    def forward(self, pixels: torch.Tensor, T: int | None = None) -> SNNOutput:
        """Run ``T`` timesteps (default ``cfg.T``) on a batch of pixels (B, n_0), values 0..255, or for the
        ``events`` encoding of event rasters (B, T', n_0) of counts, ``T'`` a multiple of ``T``."""
        cfg = self.cfg
        T = cfg.T if T is None else check_T(T)
        x = self._pixels(pixels)
        spikes_out = []
        fast = not self.autograd_reference
        for li, d in enumerate(self.design):
            lim = float(1 << d.mbits)
            current = QAT_LAYERS(d).current(self, li, d, lim, self._state_dtype(li), fast)
            if li == 0:
                cur, constant = self._first_input(current, d, x, pixels, T)
            else:
                cur, constant = self._hidden_input(current, d, inputs_next, T), False
            spiking = cfg.spiking(li)
            seq = self._membrane(cur, T, constant, d, spiking)
            if spiking:
                spikes_out.append(seq)
                inputs_next = QAT_LAYERS(d).emit(seq, d)
        # the output layer: spike counts, or the membrane v_T (its increments sum to v_T)
        return SNNOutput(self._readout_logits(seq), seq.sum(0).detach(), spikes_out)

    @staticmethod
    def _never_saturates(cur: torch.Tensor, mmin: float, mmax: float) -> bool:
        """True when the running sums of the currents ``(T, B, n)`` stay inside the membrane range."""
        with torch.no_grad():
            lo, hi = torch.aminmax(cur.cumsum(0))
        return bool(lo >= mmin) and bool(hi <= mmax)

    def _lif_reference(self, cur, T, constant, d, spiking, mmin, mmax):
        """The LIF recurrence written with plain autograd ops (slow; tests compare gradients with it)."""
        cfg = self.cfg
        B, n = cur.shape[-2], cur.shape[-1]
        v = torch.zeros(B, n, dtype=cur.dtype, device=cur.device)
        theta = float(d.theta)
        inv = 1.0 / (1 << d.leak)
        outs = []
        for t in range(T):
            I = cur if constant else cur[t]
            vp = v - _FloorSTE.apply(v * inv) if d.leak else v
            u = torch.clamp(vp + I, mmin, mmax)
            if spiking:
                z = _Spike.apply(u, theta, cfg.surrogate_slope)
                zd = z.detach()
                v = u - theta * zd if cfg.reset == "subtract" else u * (1.0 - zd)
                outs.append(z)
            else:
                outs.append(u - v)
                v = u
        return torch.stack(outs)

    def run_logits(self, inputs: torch.Tensor, T: int) -> torch.Tensor:
        """``(T, B, C)`` per-step logits at ``T`` steps (the ``run_model`` of :class:`SelfDistiller`)."""
        return self.forward(inputs, T).logits

    def predict_scores(self, pixels: torch.Tensor, T: int | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.forward(pixels, T).scores


class ANNTeacher(nn.Module):
    """A float CNN (non-spiking) teacher for cross-architecture distillation.

    Default: a fixed two-layer CNN for square images. With ``arch`` (the SNN shorthand of
    :func:`~sc_neurocore.train.config.parse_arch`, e.g. ``32C3-P2-64C3-P2-256-10``) any conv net on inputs of
    ``input_shape``: each ``C`` layer a ``Conv2d`` (stride and padding as written) and a ReLU, each ``P`` a
    max-pool, each number a ``Linear`` (ReLU on all but the last).
    """

    kind = "ann"

    def __init__(self, n_inputs: int = 784, n_classes: int = 10, seed: int = 0, arch: str | None = None,
                 input_shape: tuple | None = None) -> None:
        super().__init__()
        self.cfg = {"n_inputs": n_inputs, "n_classes": n_classes}
        if arch is not None:
            self._build_arch(arch, input_shape, n_inputs, n_classes, seed)
            return
        side = int(round(math.sqrt(n_inputs)))
        if side * side != n_inputs or side < 12:
            raise ValueError(f"the ANN teacher needs square images of at least 12x12, not {n_inputs} pixels")
        self.side = side
        self.net = None
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the global generator
            torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
            self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
            self.fc1 = nn.Linear(32 * (side // 4) ** 2, 128)
            self.fc2 = nn.Linear(128, n_classes)

    def _build_arch(self, arch, input_shape, n_inputs, n_classes, seed) -> None:
        from .config import parse_arch

        if input_shape is None or math.prod(input_shape) != n_inputs:
            raise ValueError(f"an ANN teacher with an arch needs the input_shape (C, H, W) of its {n_inputs} inputs, "
                             f"not {input_shape!r}")
        sizes, conv = parse_arch(arch, input_shape)
        if sizes[-1] < n_classes:
            raise ValueError(f"arch {arch!r} has {sizes[-1]} outputs but the data has {n_classes} classes")
        self.cfg.update(arch=arch, input_shape=[int(v) for v in input_shape])
        self.input_shape = tuple(int(v) for v in input_shape)
        layers: list[nn.Module] = []
        c = self.input_shape[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for spec in conv:
                layers += [nn.Conv2d(c, spec.channels, spec.kernel, stride=spec.stride, padding=spec.padding),
                           nn.ReLU()]
                if spec.pool > 1:
                    layers.append(nn.MaxPool2d(spec.pool))
                c = spec.channels
            layers.append(nn.Flatten())
            dense = sizes[len(conv):]
            for i in range(len(dense) - 1):
                layers.append(nn.Linear(dense[i], dense[i + 1]))
                if i < len(dense) - 2:
                    layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    @property
    def n_classes(self) -> int:
        return self.cfg["n_classes"]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.net is not None:
            return self.net((pixels.to(torch.float32) / 255.0).reshape(-1, *self.input_shape))
        x = (pixels.to(torch.float32) / 255.0).reshape(-1, 1, self.side, self.side)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def to_network(model: SpikingMLP, T: int | None = None) -> NetworkParams:
    cfg = model.cfg
    T = cfg.T if T is None else T
    layers = []
    with torch.no_grad():
        for li, d in enumerate(model.design):
            w = model.int_weight(li).detach().cpu().numpy().astype(np.int64)
            layers.append(QAT_LAYERS(d).to_params(w, cfg, d))
    return NetworkParams(tuple(layers), int(T), cfg.encoding, cfg.reset, cfg.readout, cfg.rate_seed,
                         cfg.input_bits)


def to_bundle(model: SpikingMLP, T: int | None = None, provenance: dict | None = None) -> Bundle:
    """Export the integer network the model emulates, for ``T`` timesteps (default: the training T)."""
    if not isinstance(model, SpikingMLP):
        raise TypeError(f"only a SpikingMLP can be exported, not {type(model).__name__}")
    if T is not None:
        check_T(T)
    return Bundle(to_network(model, T), dict(provenance or {}))


def golden_accuracy(network: NetworkParams, x: np.ndarray, y: np.ndarray, batch_size: int = 2000) -> float:
    """Accuracy of the integer network (golden model) on images ``x``."""
    from ..golden import infer

    from ..golden import rebin_events

    correct = 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        if network.encoding == "events":  # rasters binned for a longer T (a teacher's) serve every T dividing it
            xb = rebin_events(xb, network.T, network.input_max(0))
        correct += int((infer(network, xb, batch_size=batch_size).classes == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))
