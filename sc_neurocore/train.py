r"""Quantisation-aware training (QAT) of fixed-point LIF networks, distillation, export to bundles.

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

import copy
import hashlib
import json
import math
import os
import pickle
import re
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .bundle import Bundle, bundle_bytes
from .fileio import atomic_write_bytes, atomic_write_files, check_output_dir, check_output_file
from .params import ENCODINGS, MAX_T, READOUTS, RESETS, LayerParams, NetworkParams, lfsr_thresholds

__all__ = [
    "SNNConfig", "SpikingMLP", "ANNTeacher", "layer_design", "to_bundle", "to_network", "evaluate", "fit", "golden_accuracy",
    "TrainConfig", "train_model", "distill_model", "save_checkpoint", "load_checkpoint",
    "prepare_data", "demo", "check_demo_options", "CHECKPOINT_FORMAT", "CheckpointError",
]

CHECKPOINT_FORMAT = "sc_neurocore.checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------------------------
# configuration and the integer design
# --------------------------------------------------------------------------------------------


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

    def __post_init__(self) -> None:
        try:
            sizes = tuple(int(s) for s in self.sizes)
        except (TypeError, ValueError):
            raise ValueError(f"sizes must be a sequence of positive integers, not {self.sizes!r}") from None
        object.__setattr__(self, "sizes", sizes)
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes must have at least 2 positive entries, not {self.sizes!r}")
        if not _is_int(self.T) or not 1 <= self.T <= MAX_T:
            raise ValueError(f"T must be an integer between 1 and {MAX_T}, not {self.T!r}")
        object.__setattr__(self, "T", int(self.T))
        for name, allowed in (("encoding", ENCODINGS), ("reset", RESETS), ("readout", READOUTS)):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {v!r}")
        if not _is_int(self.weight_bits) or not 2 <= self.weight_bits <= 16:
            raise ValueError(f"weight_bits must be an integer between 2 and 16, not {self.weight_bits!r}")
        if not _is_int(self.membrane_bits) or not 4 <= self.membrane_bits <= 32:
            raise ValueError(f"membrane_bits must be an integer between 4 and 32, not {self.membrane_bits!r}")
        for name in ("leak_shift", "out_leak_shift"):
            k = getattr(self, name)
            if not _is_int(k) or not 0 <= k <= self.membrane_bits - 1:
                raise ValueError(f"{name} must be an integer between 0 and membrane_bits-1, not {k!r}")
        if isinstance(self.input_bits, bool) or not isinstance(self.input_bits, (int, np.integer)) \
                or not 1 <= self.input_bits <= 8:
            raise ValueError(f"input_bits must be an integer between 1 and 8, not {self.input_bits!r}")
        if self.encoding != "direct" and self.input_bits != 8:
            raise ValueError(f"input_bits must be 8 with {self.encoding!r} encoding (direct only), "
                             f"not {self.input_bits!r}")
        if not _is_int(self.rate_seed) or not 1 <= self.rate_seed <= 0xFFFF:
            raise ValueError(f"rate_seed must be an integer between 1 and 65535, not {self.rate_seed!r}")
        if not (_is_real(self.theta) and self.theta > 0 and math.isfinite(self.theta)):
            raise ValueError(f"theta must be positive, not {self.theta!r}")
        if not (_is_real(self.surrogate_slope) and self.surrogate_slope > 0 and math.isfinite(self.surrogate_slope)):
            raise ValueError(f"surrogate_slope must be positive and finite, not {self.surrogate_slope!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SNNConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if k == "sizes" else v) for k, v in d.items() if k in names})

    def replace(self, **kw) -> "SNNConfig":
        d = self.to_dict()
        d.update(kw)
        return SNNConfig.from_dict(d)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def spiking(self, li: int) -> bool:
        return li < self.n_layers - 1 or self.readout == "spike_count"


@dataclass(frozen=True)
class LayerDesign:
    alpha: float      # integer weight = rint(latent * alpha)
    shift: int        # current shift s
    theta: int        # integer threshold
    leak: int         # leak shift k
    mbits: int        # membrane bits m
    gain: float       # integer membrane units per real unit (alpha * x_max / 2^s)
    exact64: bool     # the weighted sum needs float64 to be exact


def layer_design(cfg: SNNConfig) -> list[LayerDesign]:
    """The integer parameters of every layer (fixed by the configuration, never learned)."""
    wmax = (1 << (cfg.weight_bits - 1)) - 1
    m = cfg.membrane_bits
    mmax = (1 << (m - 1)) - 1
    theta_target = max(4, (1 << (m - 1)) // 16)  # room for ~8..16 thresholds in the membrane
    out = []
    for li in range(cfg.n_layers):
        n_in = cfg.sizes[li]
        bound = 1.0 / math.sqrt(n_in)            # init range of the latent weights
        alpha = wmax / (2.0 * bound)              # init weights use half the integer range
        x_max = (1 << cfg.input_bits) - 1 if (li == 0 and cfg.encoding == "direct") else 1
        g0 = alpha * x_max                         # integer units per real unit before the shift
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
        out.append(LayerDesign(alpha, s, theta, k, m, gain, acc_bound >= (1 << 24)))
    return out


# --------------------------------------------------------------------------------------------
# autograd pieces
# --------------------------------------------------------------------------------------------


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)  # half to even, like numpy.rint (spec §7)

    @staticmethod
    def backward(ctx, g):
        return g


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _ExactCurrent(torch.autograd.Function):
    """``I = clamp(floor((x @ W) / 2^s), -2^m, 2^m)`` computed exactly; straight-through backward.

    The clamp to ``±2^m`` never changes the saturated sum ``clamp(v' + I)`` (|v'| < 2^(m-1)),
    it only keeps ``I`` exactly representable in the float dtype of the membrane.
    """

    @staticmethod
    def forward(ctx, x, w, shift, lim, exact64, out_dtype):
        if exact64:
            a = x.to(torch.float64) @ w.to(torch.float64)
        else:
            a = x @ w
        cur = torch.clamp(torch.floor(a * (1.0 / (1 << shift))), -lim, lim).to(out_dtype)
        ctx.save_for_backward(x, w)
        ctx.scale = 1.0 / (1 << shift)
        return cur

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g = g.to(w.dtype) * ctx.scale
        gx = g @ w.t() if ctx.needs_input_grad[0] else None
        gw = x.to(g.dtype).t() @ g if ctx.needs_input_grad[1] else None
        return gx, gw, None, None, None, None


class _Spike(torch.autograd.Function):
    """Heaviside ``u >= theta`` with the fast-sigmoid surrogate ``1/(1 + slope*|u-theta|/theta)^2 / theta``."""

    @staticmethod
    def forward(ctx, u, theta, slope):
        ctx.save_for_backward(u)
        ctx.theta, ctx.slope = theta, slope
        return (u >= theta).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        x = (u - ctx.theta) * (ctx.slope / ctx.theta)
        return g / (ctx.theta * (1.0 + x.abs()) ** 2), None, None


class _QuantDense(torch.autograd.Function):
    """Weight quantisation and the exact current of one layer in one node (the fast training path).

    Forward: ``q = clamp(rint(w * alpha), ±wmax)`` (spec §7), ``I = clamp(floor((x @ q) / 2^s), ±2^m)``
    (§4.1-4.2), bit for bit what :meth:`SpikingMLP.int_weight` and :class:`_ExactCurrent` compute.
    The weighted sum runs in float32 whenever that is exact: always for 0/1 inputs (``exact64``
    False), and for a direct-encoded layer 1 when this batch's bound ``max_b sum_i x_bi * max|q|``
    is below 2^24 (every partial sum of the matmul is then an exactly representable integer, in
    any summation order); otherwise in float64. Backward: straight-through round and shift, zero
    gradient where the clamp to ``±wmax`` is active (the gradients of the plain-autograd path).
    """

    @staticmethod
    def forward(ctx, x, w, alpha, wmax, shift, lim, exact64, out_dtype, nonneg):
        r = torch.round(w * alpha)
        lo, hi = torch.aminmax(r)
        rmax = max(-float(lo), float(hi))
        keep = None
        if rmax > wmax:  # 1.0 where |r| <= wmax, else 0.0 (r holds integers; float ops, no slow boolean tensor)
            keep = torch.rsub(r.abs(), wmax + 1.0).clamp_(0.0, 1.0)
            r.clamp_(-wmax, wmax)
            rmax = float(wmax)
        q = r
        scale = 1.0 / (1 << shift)
        if exact64 and float((x if nonneg else x.abs()).sum(1).max()) * rmax >= (1 << 24):
            a = x.to(torch.float64) @ q.to(torch.float64)
        else:
            a = x @ q
        cur = a.mul_(scale).floor_().clamp_(-lim, lim).to(out_dtype)
        ctx.save_for_backward(x, q, keep)
        ctx.gain = (scale, alpha)
        return cur

    @staticmethod
    def backward(ctx, g):
        x, q, keep = ctx.saved_tensors
        scale, alpha = ctx.gain
        g = g.to(q.dtype)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = (g * scale) @ q.t()
        if ctx.needs_input_grad[1]:
            gw = (x.t() @ g).mul_(scale * alpha)
            if keep is not None:
                gw.mul_(keep)
        return gx, gw, None, None, None, None, None, None, None


def _mantissa_bits(dtype: torch.dtype) -> int:
    return 24 if dtype == torch.float32 else 53


class _LIFLayer(torch.autograd.Function):
    """The whole LIF recurrence of one layer over T steps (spec §4 steps 3-6) with a hand-written BPTT.

    Forward equals the integer spec exactly; backward is the same surrogate-gradient BPTT as the
    plain-autograd loop :meth:`SpikingMLP._lif_reference` (straight-through leak, clamp gradient,
    fast-sigmoid surrogate, detached reset) without building a graph of ~10 nodes per step.
    Input: the currents (B, n) (constant over time) or (T, B, n). Output (T, B, n): spikes, or
    the membrane increments ``v_t - v_{t-1}`` of a non-spiking layer.

    Speed (the per-step work is a handful of small tensor ops, so their number is what counts):
    with integer states, the leak-and-integrate ``v - floor(v / 2^k) + I`` is ``ceil(I + (1 - 2^-k) v)``
    (one fused multiply-add and a ceil, exact while the operands fit the mantissa), the spike
    ``u >= theta`` is ``clamp(u - theta + 1, 0, 1)`` (float ops only, no boolean tensors), and the
    backward evaluates the surrogate for all steps at once; with subtract reset and no saturation
    the backward recurrence is linear, ``g_t = A_t + lambda g_{t+1}``, and for a constant current
    its sum over ``t`` is one weighted sum of the ``A_t``.
    """

    @staticmethod
    def forward(ctx, cur, T, constant, theta, leak, mmin, mmax, spiking, subtract, slope):
        B, n = cur.shape[-2], cur.shape[-1]
        dt = cur.dtype
        pre = torch.empty(T, B, n, dtype=dt, device=cur.device)
        out = torch.empty(T, B, n, dtype=dt, device=cur.device)
        lam = 1.0 - 1.0 / (1 << leak)
        mbits = int(mmax + 1).bit_length()  # membrane width m: |I| <= 2^m, |v| < 2^(m-1)
        fma = leak > 0 and mbits + 1 + leak <= _mantissa_bits(dt)
        inv = 1.0 / (1 << leak)
        v = None
        for t in range(T):
            I = cur if constant else cur[t]
            p = pre[t]
            if v is None:                       # v_0 = 0: nothing leaks
                p.copy_(I)
            elif leak == 0:
                torch.add(I, v, out=p)
            elif fma:                           # v - floor(v/2^k) + I == ceil(I + (1-2^-k) v) for integers
                torch.add(I, v, alpha=lam, out=p).ceil_()
            else:
                torch.sub(v, torch.floor(v * inv), out=p).add_(I)
            u = torch.clamp(p, mmin, mmax)
            if spiking:
                z = torch.sub(u, theta - 1.0, out=out[t]).clamp_(0.0, 1.0)  # == (u >= theta) for integers
                v = u.sub_(z, alpha=theta) if subtract else u.mul_(1.0 - z)
            else:
                if v is None:
                    out[t].copy_(u)
                else:
                    torch.sub(u, v, out=out[t])
                v = u
        ctx.save_for_backward(pre, out if (spiking and not subtract) else None)
        ctx.cfg = (T, constant, theta, leak, mmin, mmax, spiking, subtract, slope)
        return out

    @staticmethod
    def backward(ctx, gout):
        pre, zs = ctx.saved_tensors
        T, constant, theta, leak, mmin, mmax, spiking, subtract, slope = ctx.cfg
        lam = 1.0 - 1.0 / (1 << leak) if leak else 1.0
        gout = gout.to(pre.dtype)
        lo, hi = torch.aminmax(pre)
        mask = None  # the clamp's gradient: 1 where mmin <= pre <= mmax, else 0 (pre holds integers)
        if bool(lo < mmin) or bool(hi > mmax):
            mask = torch.rsub((pre - 0.5 * (mmin + mmax)).abs_(), 0.5 * (mmax - mmin) + 1.0).clamp_(0.0, 1.0)
        if not spiking:
            # g_t = mask_t (gout_t + gv_{t+1}), gv_t = lam g_t - gout_t
            G = torch.empty_like(gout)
            gv = None
            for t in range(T - 1, -1, -1):
                gu = gout[t] if gv is None else gout[t] + gv
                gp = torch.mul(gu, mask[t], out=G[t]) if mask is not None else G[t].copy_(gu)
                gv = torch.sub(gp * lam if leak else gp, gout[t])
            gcur = G.sum(0) if constant else G
            return gcur, None, None, None, None, None, None, None, None, None
        # surrogate: 1 / (theta (1 + k |u - theta|)^2) = coef / y^2 with y = |u - theta| + 1/k, coef = 1/(theta k^2);
        # u = clamp(pre) only differs from pre where mask = 0, so y uses pre
        k = slope / theta
        coef = 1.0 / (theta * k * k)
        y = (pre - theta).abs_().add_(1.0 / k)
        A = torch.div(gout, y).div_(y)  # gout_t * surrogate_t / coef
        if mask is not None:
            A.mul_(mask)
        # g_t = mask_t (A_t + lam r_t g_{t+1}) with r = 1 (subtract reset) or 1 - z_t (zero reset): D_t = lam mask_t r_t
        D = None
        if not subtract:
            D = torch.rsub(zs, 1.0).mul_(lam)
            if mask is not None:
                D.mul_(mask)
        elif mask is not None:
            D = mask.mul_(lam)
        if D is None and constant:
            # sum_t g_t = sum_s A_s (1 + lam + ... + lam^s): one weighted sum over the steps
            c = torch.tensor([coef * ((1.0 - lam ** (s + 1)) / (1.0 - lam) if lam != 1.0 else s + 1.0)
                              for s in range(T)], dtype=pre.dtype, device=pre.device)
            return torch.tensordot(c, A, dims=1), None, None, None, None, None, None, None, None, None
        G = A  # in place, from the last step back
        for t in range(T - 2, -1, -1):
            if D is None:
                G[t].add_(G[t + 1], alpha=lam)
            else:
                G[t].addcmul_(D[t], G[t + 1])
        gcur = G.sum(0).mul_(coef) if constant else G.mul_(coef)
        return gcur, None, None, None, None, None, None, None, None, None


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------


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
        for li in range(cfg.n_layers):
            n_in, n_out = cfg.sizes[li], cfg.sizes[li + 1]
            bound = 1.0 / math.sqrt(n_in)
            ws.append(nn.Parameter((torch.rand(n_in, n_out, generator=gen) * 2 - 1) * bound))
        self.weights = nn.ParameterList(ws)  # latent weights, input-major (n_in, n_out)
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
        wmax = (1 << (self.cfg.weight_bits - 1)) - 1
        return torch.clamp(_RoundSTE.apply(self.weights[li] * d.alpha), -wmax, wmax)

    def _rate_thresholds(self, T: int, n: int, device) -> torch.Tensor:
        key = (T, n, str(device))
        if key not in self._rate_cache:
            R = lfsr_thresholds(self.cfg.rate_seed, T, n)
            self._rate_cache = {key: torch.as_tensor(np.array(R, dtype=np.float32), device=device)}
        return self._rate_cache[key]

    def forward(self, pixels: torch.Tensor, T: int | None = None) -> SNNOutput:
        """Run ``T`` timesteps (default ``cfg.T``) on a batch of pixels (B, n_0), values 0..255."""
        cfg = self.cfg
        T = cfg.T if T is None else int(T)
        if not 1 <= T <= MAX_T:
            raise ValueError(f"T must be between 1 and {MAX_T}, not {T}")
        x = pixels.to(torch.float32)
        if cfg.encoding == "direct" and cfg.input_bits < 8:
            # spec §3.1: the top input_bits of each pixel (exact: floor of a power-of-two division)
            x = torch.floor(x / float(1 << (8 - cfg.input_bits)))
        B = x.shape[0]
        spikes_out = []
        constant = False
        cur = None
        fast = not self.autograd_reference
        for li, d in enumerate(self.design):
            lim = float(1 << d.mbits)
            sdt = self._state_dtype(li)
            if fast:
                wmax = float((1 << (cfg.weight_bits - 1)) - 1)

                def current(inp, exact64, w=self.weights[li], d=d, lim=lim, sdt=sdt, wmax=wmax, nonneg=False):
                    return _QuantDense.apply(inp, w, d.alpha, wmax, d.shift, lim, exact64, sdt, nonneg)
            else:
                wq = self.int_weight(li)

                def current(inp, exact64, w=wq, d=d, lim=lim, sdt=sdt, nonneg=False):
                    return _ExactCurrent.apply(inp, w, d.shift, lim, exact64, sdt)
            if li == 0:
                if cfg.encoding == "direct":
                    unsigned = not pixels.dtype.is_floating_point and not pixels.dtype.is_signed
                    cur = current(x, d.exact64, nonneg=unsigned)  # (B, n): the same at every step
                    constant = True
                else:
                    R = self._rate_thresholds(T, x.shape[1], x.device)
                    xin = (x[None, :, :] > R[:, None, :]).to(torch.float32).reshape(T * B, -1)
                    cur = current(xin, d.exact64).reshape(T, B, -1)
            else:
                prev = spikes_out[-1]
                if self.training and self.dropout > 0:  # not part of the integer network: training only
                    keep = (torch.rand(prev.shape[1:], device=prev.device) >= self.dropout).to(prev.dtype)
                    prev = prev * (keep / (1.0 - self.dropout))
                cur = current(prev.reshape(T * B, -1).to(torch.float32), d.exact64).reshape(T, B, -1)
                constant = False
            mmin, mmax = -float(1 << (d.mbits - 1)), float((1 << (d.mbits - 1)) - 1)
            spiking = cfg.spiking(li)
            if not fast:
                seq = self._lif_reference(cur, T, constant, d, spiking, mmin, mmax)
            elif not spiking and d.leak == 0 and not constant and self._never_saturates(cur, mmin, mmax):
                seq = cur  # v_t = v_{t-1} + I_t never clamped: the increments are the currents
            else:
                seq = _LIFLayer.apply(cur, T, constant, float(d.theta), d.leak, mmin, mmax, spiking,
                                      cfg.reset == "subtract", cfg.surrogate_slope)
            v = seq.sum(0) if not spiking else None  # membrane readout: the increments sum to v_T
            if spiking:
                spikes_out.append(seq)
            if li == cfg.n_layers - 1:
                scores = seq.sum(0) if spiking else v
                out_seq = seq
        d = self.design[-1]
        unit = 1.0 if cfg.spiking(cfg.n_layers - 1) else 1.0 / d.gain
        logits = out_seq.to(torch.float32) * (unit * self.log_logit_scale.exp())
        return SNNOutput(logits, scores.detach(), spikes_out)

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
    """A small float CNN (non-spiking) teacher for cross-architecture distillation; square images only."""

    kind = "ann"

    def __init__(self, n_inputs: int = 784, n_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        side = int(round(math.sqrt(n_inputs)))
        if side * side != n_inputs or side < 12:
            raise ValueError(f"the ANN teacher needs square images of at least 12x12, not {n_inputs} pixels")
        self.side = side
        self.cfg = {"n_inputs": n_inputs, "n_classes": n_classes}
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the global generator
            torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
            self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
            self.fc1 = nn.Linear(32 * (side // 4) ** 2, 128)
            self.fc2 = nn.Linear(128, n_classes)

    @property
    def n_classes(self) -> int:
        return self.cfg["n_classes"]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.to(torch.float32) / 255.0).reshape(-1, 1, self.side, self.side)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


# --------------------------------------------------------------------------------------------
# export and integer evaluation
# --------------------------------------------------------------------------------------------


def to_network(model: SpikingMLP, T: int | None = None) -> NetworkParams:
    cfg = model.cfg
    T = cfg.T if T is None else T
    layers = []
    with torch.no_grad():
        for li, d in enumerate(model.design):
            w = model.int_weight(li).detach().cpu().numpy().astype(np.int64)
            layers.append(LayerParams(w, cfg.weight_bits, d.theta, d.leak, d.shift, d.mbits))
    return NetworkParams(tuple(layers), int(T), cfg.encoding, cfg.reset, cfg.readout, cfg.rate_seed,
                         cfg.input_bits)


def to_bundle(model: SpikingMLP, T: int | None = None, provenance: dict | None = None) -> Bundle:
    """Export the integer network the model emulates, for ``T`` timesteps (default: the training T)."""
    if not isinstance(model, SpikingMLP):
        raise TypeError(f"only a SpikingMLP can be exported, not {type(model).__name__}")
    if T is not None and (isinstance(T, bool) or not isinstance(T, (int, np.integer)) or not 1 <= T <= MAX_T):
        raise ValueError(f"T must be an integer between 1 and {MAX_T}, not {T!r}")
    return Bundle(to_network(model, T), dict(provenance or {}))


def golden_accuracy(network: NetworkParams, x: np.ndarray, y: np.ndarray, batch_size: int = 2000) -> float:
    """Accuracy of the integer network (golden model) on images ``x``."""
    from .golden import infer

    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((infer(network, x[i:i + batch_size], batch_size=batch_size).classes == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass
class Data:
    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def n_inputs(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def n_classes(self) -> int:
        return int(max(self.train_y.max(initial=0), self.test_y.max(initial=0)) + 1)


_DATASETS: dict = {}
MAX_CLASSES = 1 << 16  # the output layer has a neuron per class: a stray huge label must not size it


def _check_labels(name: str, split: str, y, n_classes: int | None = None) -> None:
    """Labels are integers in [0, n_classes) (in [0, MAX_CLASSES) when the network is not known yet)."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = y[~np.isfinite(y) | (y != np.floor(y))] if y.size else y
        if bad.size:
            raise ValueError(f"{name}: the {split} labels must be integers, found {float(bad.flat[0])}")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"{name}: the {split} labels must be integers, not {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name}: the {split} labels must be a 1-D array, not shape {y.shape}")
    if not y.size:
        return
    lo, hi = y.min(), y.max()
    limit = MAX_CLASSES if n_classes is None else n_classes
    if lo < 0 or hi >= limit:
        bad = lo if lo < 0 else hi
        if n_classes is None:
            raise ValueError(f"{name}: the {split} labels must be integers in [0, {MAX_CLASSES}) (class indices), "
                             f"found {int(bad)}")
        raise ValueError(f"{name}: the {split} labels must be integers in [0, {n_classes}) for a network with "
                         f"{n_classes} outputs, found {int(bad)}")


def prepare_data(dataset: str = "mnist", data_dir=None, limit: int | None = None) -> Data:
    """Load the dataset; the validation split is MNIST's, or the last 1/6 of the training set for IDX folders.

    ``limit`` keeps the first ``limit`` training images and at most ``limit`` validation / test images.
    """
    from .data import load_dataset

    if limit is not None and (not _is_int(limit) or limit < 1):
        raise ValueError(f"limit must be at least 1, not {limit!r}")
    if data_dir is None:  # the named dataset is read once per process (its arrays are never modified)
        if dataset not in _DATASETS:
            _DATASETS[dataset] = load_dataset(dataset, None)
        ds = _DATASETS[dataset]
    else:
        ds = load_dataset(dataset, data_dir)
    for split, y in (("training", ds.train_y), ("validation", ds.val_y), ("test", ds.test_y)):
        if y is not None:
            _check_labels(ds.name, split, y)
    trx, try_ = ds.train_x, ds.train_y
    if ds.val_x is not None and len(ds.val_x):
        vax, vay = ds.val_x, ds.val_y
    else:
        n_val = max(1, len(trx) // 6)
        if len(trx) < 2:
            raise ValueError(f"{ds.name}: need at least 2 training images to split off a validation set")
        trx, try_, vax, vay = trx[:-n_val], try_[:-n_val], trx[-n_val:], try_[-n_val:]
    tex, tey = ds.test_x, ds.test_y
    if limit is not None:
        trx, try_, vax, vay, tex, tey = trx[:limit], try_[:limit], vax[:limit], vay[:limit], tex[:limit], tey[:limit]
    return Data(ds.name, np.ascontiguousarray(trx), np.asarray(try_, np.int64), np.ascontiguousarray(vax),
                np.asarray(vay, np.int64), np.ascontiguousarray(tex), np.asarray(tey, np.int64))


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


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
    method: str = "none"          # none | temporal | average | self
    alpha: float = 0.5
    temperature: float = 3.0
    entropy_weight: float = 0.0
    teacher_T: int | None = None  # T at which an SNN teacher (or the self-teacher) runs
    augment: int = 1              # random image shifts of up to this many pixels (square images only)
    dropout: float = 0.0          # dropout on hidden spikes during training (SNN only)
    label_smoothing: float = 0.0  # of the cross-entropy on the labels (the task term when distilling)
    weight_decay: float = 0.0     # decoupled (AdamW) decay of the weights
    train_on_val: bool = False    # train on training + validation images; keep the last epoch

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
    need(tc.method in ("none", "temporal", "average", "self"),
         "method must be 'none', 'temporal', 'average' or 'self'", tc.method)
    need(_finite(tc.alpha) and 0.0 <= tc.alpha <= 1.0, "alpha must be a number in [0, 1]", tc.alpha)
    need(_finite(tc.temperature) and tc.temperature > 0, "temperature must be a positive finite number",
         tc.temperature)
    need(_finite(tc.entropy_weight) and tc.entropy_weight >= 0, "entropy_weight must be a non-negative finite number",
         tc.entropy_weight)
    need(tc.teacher_T is None or (_is_int(tc.teacher_T) and 1 <= tc.teacher_T <= MAX_T),
         f"teacher_T must be an integer between 1 and {MAX_T}", tc.teacher_T)
    need(_is_int(tc.augment) and tc.augment >= 0, "augment must be at least 0", tc.augment)
    need(_finite(tc.dropout) and 0.0 <= tc.dropout < 1.0, "dropout must be in [0, 1)", tc.dropout)
    need(_finite(tc.label_smoothing) and 0.0 <= tc.label_smoothing < 1.0, "label_smoothing must be in [0, 1)",
         tc.label_smoothing)
    need(_finite(tc.weight_decay) and tc.weight_decay >= 0.0, "weight_decay must be a finite number >= 0",
         tc.weight_decay)


def _setup_torch(tc: TrainConfig) -> torch.device:
    _check_train_config(tc)
    if tc.threads is not None:
        torch.set_num_threads(int(tc.threads))
    try:
        dev = torch.device(tc.device)
    except RuntimeError:
        raise ValueError(f"device must be cpu or cuda, not {tc.device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {tc.device!r}: no CUDA device is available")
        # exact float32 integer sums need true fp32 matmuls
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif dev.type != "cpu":
        raise ValueError(f"device must be cpu or cuda, not {tc.device!r}")
    torch.manual_seed(tc.seed)
    return dev


def _progress(iterable, total, desc, disable):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=disable, unit="batch", file=sys.stderr,
                leave=False, dynamic_ncols=True)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int | None = None,
             batch_size: int = 1000) -> float:
    """Accuracy of ``model`` (the QAT emulation: equals the golden model's integer accuracy)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            s = model.forward(xb, T).scores if isinstance(model, SpikingMLP) else model(xb)
            correct += int((s.argmax(1) == y[i:i + batch_size]).sum())
    model.train()
    return correct / max(1, len(x))


def _shift_images(xb: torch.Tensor, max_shift: int, gen: torch.Generator | None, d: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift every image by a random (dx, dy) in [-max_shift, max_shift]^2 (or by ``d``), filling with zeros.

    Returns the shifted images and the shifts ``d`` (2, B, 1, 1)."""
    B, n = xb.shape
    side = int(round(math.sqrt(n)))
    if side * side != n:
        raise ValueError(f"image shifts (augment) need square images, not {n} pixels")
    if d is None:
        d = torch.randint(-max_shift, max_shift + 1, (2, B, 1, 1), generator=gen).to(xb.device)
    ar = torch.arange(side, device=xb.device)
    rows = ar.view(1, side, 1) - d[0]
    cols = ar.view(1, 1, side) - d[1]
    valid = ((rows >= 0) & (rows < side) & (cols >= 0) & (cols < side)).view(B, n)
    src = (rows.clamp(0, side - 1) * side + cols.clamp(0, side - 1)).view(B, n)
    return torch.gather(xb, 1, src) * valid.to(xb.dtype), d


def _teacher_logits(teacher, xb: torch.Tensor, T: int | None) -> torch.Tensor:
    with torch.no_grad():
        if isinstance(teacher, SpikingMLP):
            return teacher.forward(xb, T).logits
        return teacher(xb)


class _TeacherCache:
    """The logits of a (deterministic, float) ANN teacher for every training image and every shift the
    augmentation can draw, computed once: a CNN forward per batch costs more than the student's whole step."""

    MAX_VIEWS = 25  # shifts of up to 2 px
    _last: tuple = (None, None)  # (key, logits): students of one teacher in one process share the table

    @staticmethod
    def _key(teacher: nn.Module, x: torch.Tensor, max_shift: int) -> str:
        h = hashlib.blake2b(digest_size=16)
        for t in [*teacher.state_dict().values(), x]:
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return f"{h.hexdigest()}-{tuple(x.shape)}-{max_shift}-{x.device}"

    def __init__(self, teacher: nn.Module, x: torch.Tensor, max_shift: int, batch_size: int = 1000) -> None:
        self.a = max_shift
        key = self._key(teacher, x, max_shift)
        if _TeacherCache._last[0] == key:
            self.logits = _TeacherCache._last[1]
            return
        k = 2 * max_shift + 1
        views = []
        with torch.no_grad():
            for dy in range(-max_shift, max_shift + 1):
                for dx in range(-max_shift, max_shift + 1):
                    out = []
                    for i in range(0, len(x), batch_size):
                        xb = x[i:i + batch_size]
                        if max_shift:
                            d = torch.tensor([dy, dx], device=x.device).view(2, 1, 1, 1).expand(2, len(xb), 1, 1)
                            xb, _ = _shift_images(xb, max_shift, None, d)
                        out.append(teacher(xb))
                    views.append(torch.cat(out))
        self.logits = torch.stack(views).reshape(k * k, len(x), -1)
        _TeacherCache._last = (key, self.logits)

    @staticmethod
    def worth_it(max_shift: int, epochs: int) -> bool:
        views = (2 * max_shift + 1) ** 2
        return views <= _TeacherCache.MAX_VIEWS and views < epochs

    def get(self, idx: torch.Tensor, d: torch.Tensor | None) -> torch.Tensor:
        if d is None:
            return self.logits[0, idx]
        view = (d[0].view(-1) + self.a) * (2 * self.a + 1) + (d[1].view(-1) + self.a)
        return self.logits[view, idx]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (AdamW with ``weight_decay`` > 0, which spares the logit temperature), as one fused kernel per
    step where this torch supports it for the model's device (the same maths as the for-loop kernel)."""
    if weight_decay:
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        other = [p for n, p in model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
        cls = torch.optim.AdamW
    else:
        groups, cls = list(model.parameters()), torch.optim.Adam
    try:
        return cls(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or no fused kernel for this device
        return cls(groups, lr=lr)


def _check_augment(tc: TrainConfig, n_inputs: int) -> None:
    side = int(round(math.sqrt(n_inputs)))
    if tc.augment and side * side != n_inputs:
        raise ValueError(f"image shifts (augment={tc.augment}) need square images, not {n_inputs} pixels; "
                         "use augment=0")


def fit(model: nn.Module, data: Data, tc: TrainConfig, *, teacher: nn.Module | None = None,
        log: Callable[[str], None] | None = None) -> dict:
    """Train ``model`` in place (keeping the best-validation epoch); returns a history dict."""
    from .distillation import SelfDistiller, TemporalDistillationLoss

    dev = _setup_torch(tc)
    model.to(dev)
    model.train()
    if teacher is not None:
        teacher.to(dev).eval()
    is_snn = isinstance(model, SpikingMLP)
    if is_snn:
        model.dropout = tc.dropout
    log = log or (lambda s: None)
    if tc.train_on_val:  # the validation images become training images: no model selection (last epoch)
        trx = torch.as_tensor(np.concatenate([data.train_x, data.val_x]), device=dev)
        tr_y = torch.as_tensor(np.concatenate([data.train_y, data.val_y]), device=dev)
    else:
        trx = torch.as_tensor(data.train_x, device=dev)
        tr_y = torch.as_tensor(data.train_y, device=dev)
    vax = torch.as_tensor(data.val_x, device=dev)
    va_y = torch.as_tensor(data.val_y, device=dev)
    n = len(trx)
    if n < 1:
        raise ValueError("the training set is empty")
    _check_augment(tc, data.n_inputs)
    steps_per_epoch = max(1, math.ceil(n / tc.batch_size))
    opt = make_optimizer(model, tc.lr, tc.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=tc.epochs * steps_per_epoch,
                                                pct_start=0.15, anneal_strategy="cos")
    loss_fn = None
    distiller = None
    if tc.method in ("temporal", "average"):
        if teacher is None:
            raise ValueError(f"method {tc.method!r} needs a teacher")
        loss_fn = TemporalDistillationLoss(tc.temperature, tc.alpha, tc.entropy_weight, mode=tc.method)
    elif tc.method == "self":
        distiller = SelfDistiller(tc.teacher_T or 32, model.cfg.T, tc.temperature, alpha=tc.alpha,
                                  entropy_weight=tc.entropy_weight, mode="temporal")
    elif tc.method != "none":
        raise ValueError(f"unknown method {tc.method!r}")
    tcache = None
    if loss_fn is not None and not isinstance(teacher, SpikingMLP) and _TeacherCache.worth_it(tc.augment, tc.epochs):
        t0 = time.perf_counter()
        tcache = _TeacherCache(teacher, trx, tc.augment)
        log(f"teacher logits for {len(trx)} images x {tcache.logits.shape[0]} shifts ({time.perf_counter() - t0:.1f} s)")
    rng = np.random.default_rng(tc.seed)
    aug_gen = torch.Generator().manual_seed(tc.seed + 1)
    best = (-1.0, -1, None)
    history = []
    t_start = time.perf_counter()
    for epoch in range(tc.epochs):
        perm = torch.as_tensor(rng.permutation(n), device=dev)
        tot_loss, tot_correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        bar = _progress(range(steps_per_epoch), steps_per_epoch, f"epoch {epoch + 1}/{tc.epochs}", tc.quiet)
        for bi in bar:
            idx = perm[bi * tc.batch_size:(bi + 1) * tc.batch_size]
            xb, yb = trx[idx], tr_y[idx]
            d = None
            if tc.augment:
                xb, d = _shift_images(xb, tc.augment, aug_gen)
            if is_snn:
                out = model(xb)
                yt = yb
                if tc.label_smoothing and (loss_fn is not None or distiller is not None):  # soft label rows
                    C = out.logits.shape[-1]
                    yt = F.one_hot(yb, C).to(out.logits.dtype) * (1.0 - tc.label_smoothing) + tc.label_smoothing / C
                if loss_fn is not None:
                    tl = tcache.get(idx, d) if tcache is not None else _teacher_logits(teacher, xb, tc.teacher_T)
                    loss = loss_fn.compute(out.logits, tl, yt, student_spikes=out.spikes or None)["total_loss"]
                elif distiller is not None:
                    soft = distiller.generate_targets(model.run_logits, inputs=xb)
                    loss = distiller.loss(out.logits, soft, yt, student_spikes=out.spikes or None)["total_loss"]
                else:
                    loss = F.cross_entropy(out.mean_logits, yb, label_smoothing=tc.label_smoothing)
                pred = out.scores.argmax(1)
            else:
                logits = model(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=tc.label_smoothing)
                pred = logits.argmax(1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bs = len(idx)
            tot_loss += float(loss.detach()) * bs
            tot_correct += int((pred == yb).sum())
            seen += bs
            if not tc.quiet and (bi % 10 == 0 or bi == steps_per_epoch - 1):
                bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{100 * tot_correct / seen:.2f}%")
        bar.close()
        epoch_s = time.perf_counter() - t0
        val = evaluate(model, vax, va_y)
        rec = {"epoch": epoch + 1, "loss": tot_loss / seen, "train_acc": tot_correct / seen, "val_acc": val,
               "seconds": epoch_s}
        history.append(rec)
        log(f"epoch {epoch + 1}/{tc.epochs}  loss {rec['loss']:.4f}  train {100 * rec['train_acc']:.2f} %  "
            f"val {100 * val:.2f} %  ({epoch_s:.1f} s)")
        if val > best[0] or (tc.train_on_val and epoch == tc.epochs - 1):
            best = (val, epoch + 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return {"history": history, "best_epoch": best[1], "val_acc": best[0],
            "train_seconds": time.perf_counter() - t_start, "train_images": n,
            "selection": "last epoch (validation images trained on)" if tc.train_on_val else "best validation epoch"}


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A file is not a loadable checkpoint (unreadable, malformed, or containing code); the message says why."""


def _checkpoint_object(model: nn.Module, meta: dict | None) -> dict:
    if isinstance(model, SpikingMLP):
        config = model.cfg.to_dict()
    elif isinstance(model, ANNTeacher):
        config = dict(model.cfg)
    else:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": model.kind, "config": config,
            "state_dict": state, "meta": meta or {}, "tool_version": __version__}


def _checkpoint_bytes(obj: dict, name: str) -> bytes:
    """The bytes of ``torch.save(obj)`` for a checkpoint that will be called ``name``.

    torch names the folder inside its ZIP archive after the file it saves to; checkpoints have
    always been saved to ``NAME.tmp`` (folder ``NAME``), so they are saved to a file of that name
    in a private temporary folder (removed in any case) and read back: the same bytes as ever.
    """
    with tempfile.TemporaryDirectory(prefix="sc_neurocore-checkpoint-") as d:
        tmp = Path(d) / f"{name}.tmp"
        torch.save(obj, tmp)
        return tmp.read_bytes()


def save_checkpoint(model: nn.Module, path, meta: dict | None = None) -> Path:
    """Write ``model`` (an :class:`SpikingMLP` or :class:`ANNTeacher`) and ``meta`` to ``path`` atomically."""
    path = check_output_file(path)
    obj = _checkpoint_object(model, meta)
    atomic_write_bytes(path, _checkpoint_bytes(obj, path.name))
    return path


def _brief(v) -> str:
    r = repr(v) if not isinstance(v, torch.Tensor) else f"a tensor of shape {tuple(v.shape)}"
    return r if len(r) <= 60 else r[:57] + "..."


def _unsafe_globals(path: Path, message: str) -> bool:
    """True when torch refused the file because its pickle imports something (code)."""
    if re.search(r"\bGLOBAL \S+", message):
        return True
    try:
        return bool(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - not a ZIP checkpoint, or unreadable: no globals to report
        return False


def _load_reason(e: BaseException) -> str:
    """torch's reason for refusing a file, in one short line (not its ten lines of advice)."""
    msg = str(e)
    if "WeightsUnpickler error:" in msg:
        msg = msg.split("WeightsUnpickler error:", 1)[1]
    elif msg.startswith("Weights only load failed"):
        msg = "not a pickle that torch.load(weights_only=True) reads"
    line = next((ln.strip() for ln in msg.splitlines() if ln.strip()), "")
    if len(line) > 120:
        line = line[:117] + "..."
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


def _read_checkpoint(path: Path):
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it does not expect
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if _unsafe_globals(path, str(e)):
            raise CheckpointError(f"refusing to load a checkpoint that contains code: {path}") from None
        raise CheckpointError(f"{path} is not an sc_neurocore checkpoint ({_load_reason(e)})") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - any other unpickling failure means "not a checkpoint"
        raise CheckpointError(f"{path} is not an sc_neurocore checkpoint ({_load_reason(e)})") from None


_CONFIG_TYPES = {  # SNNConfig fields a checkpoint may hold, and what they must be
    **{k: ("an integer", _is_int) for k in ("T", "weight_bits", "membrane_bits", "leak_shift", "out_leak_shift",
                                            "rate_seed", "input_bits")},
    **{k: ("a string", lambda v: isinstance(v, str)) for k in ("encoding", "reset", "readout")},
    **{k: ("a finite number", lambda v: _is_real(v) and _finite_float(v)) for k in ("theta", "surrogate_slope")},
}
_MAX_ANN_SIZE = 1 << 40


def _snn_shapes(cfg: SNNConfig) -> dict:
    shapes = {f"weights.{li}": (cfg.sizes[li], cfg.sizes[li + 1]) for li in range(cfg.n_layers)}
    shapes["log_logit_scale"] = ()
    return shapes


def _ann_shapes(n_inputs: int, n_classes: int) -> dict:
    with torch.device("meta"):  # the parameters' shapes, nothing allocated
        return {k: tuple(v.shape) for k, v in ANNTeacher(n_inputs, n_classes).state_dict().items()}


def _check_state(path: Path, state: dict, shapes: dict) -> None:
    """``state`` holds exactly the finite, dense, floating-point tensors of ``shapes``."""
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    if missing or unexpected:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                shown = ", ".join(_brief(k) for k in keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
                parts.append(f"{what} {shown}")
        raise CheckpointError(f"{path}: the state_dict does not fit the config ({'; '.join(parts)})")
    for k, shape in shapes.items():
        t = state[k]
        where = f"{path}: state_dict[{k!r}]"
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{where} must be a tensor, not {type(t).__name__}")
        if t.layout != torch.strided or t.is_quantized or t.device.type != "cpu":
            raise CheckpointError(f"{where} must be a dense tensor")
        if not t.dtype.is_floating_point:
            raise CheckpointError(f"{where} must hold floating-point numbers, not {t.dtype}")
        if tuple(t.shape) != tuple(shape):
            raise CheckpointError(f"{where} has shape {tuple(t.shape)}, the config needs {tuple(shape)}")
        if t.untyped_storage().nbytes() < t.numel() * t.element_size():  # e.g. a stride-0 expanded tensor
            raise CheckpointError(f"{where} is not stored densely ({t.numel()} values in a storage of "
                                  f"{t.untyped_storage().nbytes()} bytes)")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{where} holds NaN or infinite values")


def _model_from_checkpoint(path: Path, kind: str, config: dict, state: dict) -> nn.Module:
    if kind == "snn":
        if "sizes" not in config:
            raise CheckpointError(f"{path}: config['sizes'] is missing")
        sizes = config["sizes"]
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2 or not all(_is_int(v) and v >= 1 for v in sizes):
            raise CheckpointError(f"{path}: config['sizes'] must be a list of at least 2 positive integers, "
                                  f"not {_brief(sizes)}")
        for k, (what, ok) in _CONFIG_TYPES.items():
            if k in config and not ok(config[k]):
                raise CheckpointError(f"{path}: config[{k!r}] must be {what}, not {_brief(config[k])}")
        try:
            cfg = SNNConfig.from_dict(config)
            layer_design(cfg)
        except (ValueError, TypeError, OverflowError) as e:
            raise CheckpointError(f"{path}: bad config: {e}") from None
        _check_state(path, state, _snn_shapes(cfg))
        return SpikingMLP(cfg)
    for k in ("n_inputs", "n_classes"):
        if k not in config:
            raise CheckpointError(f"{path}: config[{k!r}] is missing")
        if not (_is_int(config[k]) and 1 <= config[k] <= _MAX_ANN_SIZE):
            raise CheckpointError(f"{path}: config[{k!r}] must be a positive integer (at most 2^40), "
                                  f"not {_brief(config[k])}")
    n_inputs, n_classes = int(config["n_inputs"]), int(config["n_classes"])
    try:
        shapes = _ann_shapes(n_inputs, n_classes)
    except (ValueError, TypeError, OverflowError) as e:
        raise CheckpointError(f"{path}: bad config: {e}") from None
    _check_state(path, state, shapes)
    return ANNTeacher(n_inputs, n_classes)


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns (model, meta).

    Everything in the file is checked before a model is built (types, the config, the names,
    shapes and values of the tensors); a file that is not a valid checkpoint raises
    :class:`CheckpointError` naming the problem, and one whose pickle would import code is
    refused unread.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint file (it is not a regular file)")
    obj = _read_checkpoint(path)
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if not (isinstance(fmt, str) and fmt == CHECKPOINT_FORMAT):
        raise CheckpointError(f"{path} is not an sc_neurocore checkpoint (written by `sc-neurocore train`)")
    version = obj.get("version")
    if not (_is_int(version) and version == CHECKPOINT_VERSION):
        raise CheckpointError(f"{path}: unsupported checkpoint version {_brief(version)} "
                              f"(this version of sc_neurocore reads version {CHECKPOINT_VERSION})")
    kind = obj.get("kind")
    if not (isinstance(kind, str) and kind in ("snn", "ann")):
        raise CheckpointError(f"{path}: unknown model kind {_brief(kind)} (expected 'snn' or 'ann')")
    for key in ("config", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{path}: the checkpoint has no {key!r}")
        if not isinstance(obj[key], dict):
            raise CheckpointError(f"{path}: {key!r} must be a dict, not {type(obj[key]).__name__}")
    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise CheckpointError(f"{path}: 'meta' must be a dict, not {type(meta).__name__}")
    model = _model_from_checkpoint(path, kind, obj["config"], obj["state_dict"])
    try:
        model.load_state_dict(obj["state_dict"])
    except (RuntimeError, ValueError, TypeError) as e:  # not expected after the checks above
        raise CheckpointError(f"{path}: the state_dict does not fit the model: {e}") from None
    model.eval()
    return model, dict(meta or {})


# --------------------------------------------------------------------------------------------
# high-level entry points (used by the CLI, the benchmarks and the demo)
# --------------------------------------------------------------------------------------------


def _finish(model: SpikingMLP, data: Data, result: dict, out_path, provenance: dict,
            log: Callable[[str], None]) -> dict:
    net = to_network(model)
    t0 = time.perf_counter()
    test_acc = golden_accuracy(net, data.test_x, data.test_y)
    log(f"test accuracy (golden integer model, {len(data.test_x)} images, T={net.T}): {100 * test_acc:.2f} %  "
        f"({time.perf_counter() - t0:.1f} s)")
    prov = dict(provenance)
    prov.update({
        "dataset": data.name, "test_accuracy": round(test_acc, 6), "test_images": int(len(data.test_x)),
        "val_accuracy": round(result["val_acc"], 6), "best_epoch": result["best_epoch"],
        "train_images": int(result.get("train_images", len(data.train_x))),
        "model_selection": result.get("selection", "best validation epoch"),
        "tool": "sc_neurocore", "tool_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
    })
    bundle = Bundle(net, prov)
    out = {"test_acc": test_acc, "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
           "history": result["history"], "train_seconds": result["train_seconds"], "bundle": bundle,
           "model": model}
    if out_path is not None:
        out_path, ck = output_paths(out_path)
        obj = _checkpoint_object(model, {"val_acc": result["val_acc"], "test_acc": test_acc, "provenance": prov})
        # the bundle and its checkpoint belong together: both are written, or neither
        atomic_write_files({out_path: bundle_bytes(bundle), ck: _checkpoint_bytes(obj, ck.name)})
        out["checkpoint"] = str(ck)
        out["bundle_path"] = str(out_path)
    return out


def checkpoint_path(bundle_path) -> Path:
    """The float checkpoint written next to a bundle: ``OUT.scnb`` -> ``OUT.pt``."""
    p = Path(bundle_path)
    return p.with_suffix(".pt") if p.suffix else p.with_name(p.name + ".pt")


def output_paths(bundle_path) -> tuple[Path, Path]:
    """``(OUT.scnb, OUT.pt)``, both checked writable (:func:`~sc_neurocore.fileio.check_output_file`)."""
    out = Path(bundle_path)
    ck = checkpoint_path(out)
    if ck == out:
        raise ValueError(f"the bundle {out} must not be named *.pt: its checkpoint is written next to it as OUT.pt")
    return check_output_file(out), check_output_file(ck)


def _ann_checkpoint_path(out_path) -> Path:
    out = Path(out_path)
    return check_output_file(out if out.suffix == ".pt" else checkpoint_path(out))


def command_string(name: str, opts: dict) -> str:
    parts = [f"sc-neurocore {name}"]
    for k, v in opts.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        parts.append(flag if v is True else f"{flag} {v}")
    return " ".join(parts)


def train_model(cfg: SNNConfig, tc: TrainConfig, data: Data, out_path=None, *,
                log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Train an SNN from scratch at ``cfg.T``, export, evaluate with the golden model; see :func:`_finish`."""
    _check_train_config(tc)
    if out_path is not None:
        output_paths(out_path)
    _check_data(cfg.sizes, data)
    _check_augment(tc, data.n_inputs)
    _setup_torch(tc)
    model = SpikingMLP(cfg, seed=tc.seed)
    result = fit(model, data, tc, log=log)
    prov = {"method": "train", "seed": tc.seed, "config": cfg.to_dict(), "train_config": tc.to_dict(),
            "command": command or ""}
    return _finish(model.cpu(), data, result, out_path, prov, log)


def train_ann(tc: TrainConfig, data: Data, out_path=None, *, log: Callable[[str], None] = print) -> dict:
    """Train the float CNN teacher; writes only a checkpoint (an ANN has no integer bundle)."""
    _check_train_config(tc)
    if out_path is not None:
        _ann_checkpoint_path(out_path)
    for split, y in (("training", data.train_y), ("validation", data.val_y), ("test", data.test_y)):
        _check_labels(data.name, split, y, data.n_classes)
    _check_augment(tc, data.n_inputs)
    _setup_torch(tc)
    model = ANNTeacher(data.n_inputs, data.n_classes, seed=tc.seed)
    result = fit(model, data, tc, log=log)
    model.cpu()
    test_acc = evaluate(model, torch.as_tensor(data.test_x), torch.as_tensor(data.test_y))
    log(f"ANN teacher test accuracy (float): {100 * test_acc:.2f} %")
    out = {"test_acc": test_acc, "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
           "history": result["history"], "train_seconds": result["train_seconds"]}
    if out_path is not None:
        ck = _ann_checkpoint_path(out_path)
        save_checkpoint(model, ck, {"val_acc": result["val_acc"], "test_acc": test_acc, "seed": tc.seed,
                                    "dataset": data.name})
        out["checkpoint"] = str(ck)
    return out


def _check_data(sizes, data: Data) -> None:
    if sizes[0] != data.n_inputs:
        raise ValueError(f"the network has {sizes[0]} inputs but {data.name} images have {data.n_inputs} pixels")
    if sizes[-1] < data.n_classes:
        raise ValueError(f"the network has {sizes[-1]} outputs but {data.name} has {data.n_classes} classes")
    for split, y in (("training", data.train_y), ("validation", data.val_y), ("test", data.test_y)):
        _check_labels(data.name, split, y, sizes[-1])


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def distill_model(cfg: SNNConfig, tc: TrainConfig, data: Data, teacher_path=None, out_path=None, *,
                  init: str = "auto", log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Distil a student at ``cfg.T`` from a teacher checkpoint (or from itself, ``tc.method='self'``).

    ``init``: ``teacher`` starts the student from an SNN teacher's weights (same sizes and formats
    needed), ``random`` from scratch, ``auto`` = ``teacher`` when possible.
    """
    _check_train_config(tc)
    if init not in ("auto", "teacher", "random"):
        raise ValueError(f"init must be 'auto', 'teacher' or 'random', not {init!r}")
    if teacher_path is None and tc.method != "self":
        raise ValueError(f"method {tc.method!r} needs a teacher checkpoint")
    if tc.method == "self" and tc.teacher_T is not None and tc.teacher_T <= cfg.T:
        raise ValueError(f"self-distillation needs teacher_T greater than the student's T "
                         f"({tc.teacher_T} <= {cfg.T})")
    if out_path is not None:
        _, ck = output_paths(out_path)
        if teacher_path is not None and _same_file(teacher_path, ck):
            raise ValueError(f"writing the student's checkpoint {ck} would replace the teacher checkpoint "
                             f"{teacher_path}; choose another output name")
    _check_data(cfg.sizes, data)
    _check_augment(tc, data.n_inputs)
    _setup_torch(tc)
    teacher, tmeta, teacher_sha = None, {}, None
    if teacher_path is not None:
        teacher, tmeta = load_checkpoint(teacher_path)
        teacher_sha = _sha256(teacher_path)
        if teacher.n_classes != cfg.sizes[-1]:
            raise ValueError(f"teacher/student class mismatch: the teacher has {teacher.n_classes} classes, "
                             f"the student {cfg.sizes[-1]}")
        t_in = teacher.cfg.sizes[0] if isinstance(teacher, SpikingMLP) else teacher.cfg["n_inputs"]
        if t_in != cfg.sizes[0]:
            raise ValueError(f"teacher/student input mismatch: the teacher takes {t_in} inputs, "
                             f"the student {cfg.sizes[0]}")
    same = teacher.cfg.replace(T=cfg.T, surrogate_slope=cfg.surrogate_slope) if isinstance(teacher, SpikingMLP) else None
    compatible = same is not None and layer_design(same) == layer_design(cfg) and same == cfg
    if init == "teacher" and not compatible:
        raise ValueError("init='teacher' needs an SNN teacher with the same sizes and number formats")
    use_init = compatible and init in ("auto", "teacher")
    model = SpikingMLP(cfg, seed=tc.seed)
    if use_init:
        model.load_state_dict(teacher.state_dict())
    if tc.method == "self" and tc.teacher_T is None:
        tc = TrainConfig(**{**asdict(tc), "teacher_T": max(32, cfg.T * 2)})
    if isinstance(teacher, SpikingMLP) and tc.teacher_T is None:
        tc = TrainConfig(**{**asdict(tc), "teacher_T": teacher.cfg.T})
    if tc.method == "self" and tc.teacher_T <= cfg.T:
        raise ValueError(f"self-distillation needs teacher_T greater than the student's T ({tc.teacher_T} <= {cfg.T})")
    result = fit(model, data, tc, teacher=teacher if tc.method != "self" else None, log=log)
    prov = {"method": f"distill-{tc.method}", "seed": tc.seed, "config": cfg.to_dict(),
            "train_config": tc.to_dict(), "init": "teacher" if use_init else "random",
            "command": command or ""}
    if teacher_path is not None:
        # only well-formed values of the teacher's meta reach the provenance (it must stay valid JSON)
        tprov = tmeta.get("provenance", {}) if isinstance(tmeta.get("provenance"), dict) else {}
        t_acc = tmeta.get("test_acc")
        t_method = tprov.get("method", teacher.kind)
        prov["teacher"] = {"kind": teacher.kind, "sha256": teacher_sha,
                           "T": teacher.cfg.T if isinstance(teacher, SpikingMLP) else None,
                           "test_accuracy": t_acc if _finite(t_acc) else None,
                           "method": t_method if isinstance(t_method, str) else teacher.kind}
    return _finish(model.cpu(), data, result, out_path, prov, log)


def demo_files(T_teacher: int, T_student: int) -> list[str]:
    """The files :func:`demo` writes into its output folder."""
    return [f"teacher-t{T_teacher}.scnb", f"teacher-t{T_teacher}.pt", f"student-t{T_student}.scnb",
            f"student-t{T_student}.pt", "summary.json"]


def check_demo_options(out_dir, *, teacher_epochs, student_epochs, T_teacher, T_student, seed=0, threads=None,
                       limit=None, device="cpu") -> Path:
    """Check every option of :func:`demo` and its output paths; creates nothing. Returns ``out_dir`` as a Path."""
    for name, v in (("T_teacher", T_teacher), ("T_student", T_student)):
        if not _is_int(v) or not 1 <= v <= MAX_T:
            raise ValueError(f"{name} must be an integer between 1 and {MAX_T}, not {v!r}")
    for name, v in (("teacher_epochs", teacher_epochs), ("student_epochs", student_epochs)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{name} must be at least 1, not {v!r}")
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise ValueError(f"limit must be at least 1, not {limit!r}")
    _check_train_config(TrainConfig(seed=seed, threads=threads, device=device))
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r}: no CUDA device is available")
    out = check_output_dir(out_dir)
    for name in demo_files(T_teacher, T_student):
        check_output_file(out / name)
    return out


def demo(out_dir, *, teacher_epochs: int = 3, student_epochs: int = 3, T_teacher: int = 32, T_student: int = 4,
         seed: int = 0, threads: int | None = None, limit: int | None = None, device: str = "cpu",
         quiet: bool = False, log: Callable[[str], None] = print, steps: int = 2) -> dict:
    """Train a T=32 teacher, distil a T=4 student, export and evaluate it; artefacts in ``out_dir``.

    ``steps`` is only the total shown in the progress lines ("[1/steps]"): the hardware
    demo (:func:`sc_neurocore.demo.run_demo`) adds two steps of its own. Every option and
    output path is checked (:func:`check_demo_options`) before anything runs or is created.
    """
    out_dir = check_demo_options(out_dir, teacher_epochs=teacher_epochs, student_epochs=student_epochs,
                                 T_teacher=T_teacher, T_student=T_student, seed=seed, threads=threads, limit=limit,
                                 device=device)
    t0 = time.perf_counter()
    data = prepare_data("mnist", None, limit)
    cfg = SNNConfig(T=T_teacher)
    log(f"[1/{steps}] training the T={T_teacher} teacher ({teacher_epochs} epochs, {len(data.train_x)} images)")
    tc = TrainConfig(epochs=teacher_epochs, seed=seed, threads=threads, device=device, quiet=quiet)
    teacher_bundle = out_dir / f"teacher-t{T_teacher}.scnb"
    tr = train_model(cfg, tc, data, teacher_bundle, log=log,
                     command=command_string("train", {"T": T_teacher, "epochs": teacher_epochs, "seed": seed}))
    log(f"[2/{steps}] distilling the T={T_student} student ({student_epochs} epochs, temporal distillation)")
    sc = TrainConfig(epochs=student_epochs, seed=seed, threads=threads, device=device, quiet=quiet,
                     method="temporal", alpha=0.5, lr=1e-3)
    student_bundle = out_dir / f"student-t{T_student}.scnb"
    dr = distill_model(cfg.replace(T=T_student), sc, data, tr["checkpoint"], student_bundle, log=log,
                       command=command_string("distill", {"teacher": teacher_bundle.with_suffix(".pt").name,
                                                          "T": T_student, "epochs": student_epochs, "seed": seed}))
    summary = {
        "teacher": {"T": T_teacher, "bundle": str(teacher_bundle), "test_accuracy": tr["test_acc"]},
        "student": {"T": T_student, "bundle": str(student_bundle), "test_accuracy": dr["test_acc"]},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    log(f"teacher T={T_teacher}: {100 * tr['test_acc']:.2f} %   student T={T_student}: {100 * dr['test_acc']:.2f} %"
        f"   (golden integer model, {len(data.test_x)} test images; {summary['seconds']} s)")
    log(f"artefacts in {out_dir}")
    return summary
