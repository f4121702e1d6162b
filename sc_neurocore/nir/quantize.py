"""Post-training quantisation of a :class:`FloatNet` into the integer spec, and back (``docs/nir.md`` §3).

Per layer ``l`` with float weights ``W`` (input-major), input gain ``g`` and input unit ``c`` (the float
value of one integer input step: ``input_scale`` for layer 1, 1 for spikes):

* ``W' = g * c * W`` is the float current per integer input; ``q = max|W'| / w_max`` and
  ``W_int = clamp(rint(W' / q))`` (symmetric, ``w_max = 2^(b-1) - 1``);
* the integer membrane's unit is ``u = q * 2^s`` float volts per step (``I = a >>> s``), so the threshold is
  ``theta = floor(v_threshold / u) + 1`` (NIR fires on ``v > v_threshold``, the spec on ``u >= theta``);
* the leak ``beta = 1 - dt/tau`` becomes the shift ``k`` with ``1 - 2^-k`` nearest to it (``k = 0``:
  ``beta = 1``); only ``beta = 1 - 2^-k`` is exact, and an error above :data:`BETA_TOLERANCE` is refused
  unless ``allow_approx``;
* the current shifts ``s`` are calibrated: coordinate descent over the layers, each ``s`` tried in a window
  around its heuristic, keeping the one whose integer model (the golden model) predicts the float model's
  class on the most calibration images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..params import ConvParams, LayerParams, NetworkParams, weight_format
from .model import FloatLayer, FloatNet, NIRError, simulate

__all__ = ["BETA_TOLERANCE", "leak_shift", "Quantised", "quantize", "dequantize", "metadata_of", "exact_network"]

#: Largest |beta - (1 - 2^-k)| accepted without ``allow_approx``.
BETA_TOLERANCE = 1e-3
#: Metadata key under which an exported graph carries the integer parameters (exact round trip).
META_KEY = "sc_neurocore"


def _beta_of(k: int) -> float:
    return 1.0 if k == 0 else 1.0 - 2.0 ** -k


def leak_shift(beta: float, membrane_bits: int, *, name: str = "layer", allow_approx: bool = False,
               tolerance: float = BETA_TOLERANCE) -> tuple[int, float]:
    """``(k, error)``: the spec's leak shift whose decay ``1 - 2^-k`` (1 for ``k = 0``) is nearest ``beta``."""
    ks = range(0, membrane_bits)
    k = min(ks, key=lambda j: (abs(_beta_of(j) - beta), j))
    err = abs(_beta_of(k) - beta)
    if err > tolerance and not allow_approx:
        exact = ", ".join(f"{_beta_of(j):g}" for j in (1, 2, 3, 4, 5))
        raise NIRError(f"{name}: beta = {beta:.6g} has no exact leak shift: the nearest, k = {k}, decays by "
                       f"{_beta_of(k):.6g} (error {err:.3g} > {tolerance:g}). Train with beta = 1 - 2^-k "
                       f"({exact}, ...) or pass --allow-approx")
    return k, err


@dataclass(frozen=True)
class Quantised:
    network: NetworkParams
    #: Per layer: ``k``, ``beta``, ``beta_error``, ``current_shift``, ``threshold``, ``unit`` (float volts
    #: per integer step), ``weight_scale`` ``q``.
    layers: tuple[dict, ...]
    #: Share of the calibration images on which the integer model predicts the float model's class.
    calibration_agreement: float


def _unit_in(net: FloatNet, i: int) -> float:
    return net.input_scale if i == 0 else 1.0


def _heuristic_shift(layer: FloatLayer, q: float, mb: int, vmax: float | None) -> int:
    # Put the threshold (or the largest output membrane) at 1/8 of the membrane range: headroom for one
    # step's current above it before the integrate step saturates.
    level = layer.threshold if layer.neuron == "lif" else max(vmax or 1.0, 1e-12)
    return int(min(31, max(0, round(math.log2(level / q)) - (mb - 4))))


def _layer(float_layer: FloatLayer, w, weight_bits: int, threshold: int, k: int, s: int, membrane_bits: int):
    """The spec layer (dense or conv, the float layer's kind and geometry) holding these integers."""
    if float_layer.kind == "dense":
        return LayerParams(w, weight_bits, threshold, k, s, membrane_bits)
    return ConvParams(w, float_layer.in_shape, weight_bits, threshold, k, s, membrane_bits,
                      stride=float_layer.stride, padding=float_layer.padding, pool=float_layer.pool)


def _network(net, ints, shifts, thresholds, ks, T, weight_bits, membrane_bits):
    layers = tuple(_layer(la, w, weight_bits, th, k, s, membrane_bits)
                   for la, w, s, th, k in zip(net.layers, ints, shifts, thresholds, ks))
    return NetworkParams(layers, T, encoding="direct", reset=net.reset, readout=net.readout)


def _thresholds(net, qs, shifts, membrane_bits) -> list[int] | None:
    top = (1 << (membrane_bits - 1)) - 1
    out = []
    for i, layer in enumerate(net.layers):
        unit = qs[i] * 2.0 ** shifts[i]
        if layer.neuron != "lif":
            out.append(1)  # a non-spiking output layer never compares (spec §4)
            continue
        th = math.floor(layer.threshold / unit) + 1
        if th > top:
            return None
        out.append(max(1, th))
    return out


def quantize(net: FloatNet, calib_pixels, T: int, *, weight_bits: int = 8, membrane_bits: int = 16,
             allow_approx: bool = False, window: int = 4, float_classes=None) -> Quantised:
    """Quantise ``net`` for ``T`` steps, calibrating the current shifts on ``calib_pixels`` (B, n_0)."""
    from ..golden import infer

    calib = np.asarray(calib_pixels)
    if calib.ndim != 2 or calib.shape[0] < 1:
        raise NIRError(f"calibration images must be a non-empty (B, {net.sizes[0]}) array, not shape {calib.shape}")
    wmax = weight_format(weight_bits).max
    for layer in net.layers:
        if layer.bias is not None:
            raise NIRError(f"{layer.name}: bias is not zero (max |bias| = {float(np.abs(layer.bias).max()):g}); the "
                           "spec has no constant current. Use the model as a teacher: sc-neurocore distill --teacher")
    ks, errs, qs, ints = [], [], [], []
    for i, layer in enumerate(net.layers):
        k, err = leak_shift(layer.beta, membrane_bits, name=layer.name, allow_approx=allow_approx)
        wp = layer.weight * (layer.gain * _unit_in(net, i))
        m = float(np.abs(wp).max())
        if m == 0:
            raise NIRError(f"{layer.name}: every weight is zero")
        q = m / wmax
        ks.append(k)
        errs.append(err)
        qs.append(q)
        ints.append(np.clip(np.rint(wp / q), -wmax, wmax).astype(np.int64))
    if float_classes is None:
        scores = simulate(net, calib, T)
        float_classes = np.argmax(scores, axis=1)
        vmax = float(np.abs(scores).max()) if net.readout == "membrane" else None
    else:
        vmax = None
        if net.readout == "membrane":
            vmax = float(np.abs(simulate(net, calib, T)).max())
    float_classes = np.asarray(float_classes)
    shifts = [_heuristic_shift(la, qs[i], membrane_bits, vmax) for la in net.layers]
    cache: dict = {}

    def score(sh) -> float:
        key = tuple(sh)
        if key not in cache:
            ths = _thresholds(net, qs, sh, membrane_bits)
            if ths is None:
                cache[key] = -1.0
            else:
                params = _network(net, ints, sh, ths, ks, T, weight_bits, membrane_bits)
                cache[key] = float(np.mean(infer(params, calib).classes == float_classes))
        return cache[key]

    best = score(shifts)
    for _ in range(2):  # two sweeps of coordinate descent are enough for 2-4 layer chains
        improved = False
        for i in range(len(shifts)):
            base = shifts[i]
            for s in range(max(0, base - window), min(31, base + window) + 1):
                trial = shifts[:i] + [s] + shifts[i + 1:]
                a = score(trial)
                if a > best:
                    best, shifts, improved = a, trial, True
        if not improved:
            break
    ths = _thresholds(net, qs, shifts, membrane_bits)
    if ths is None:  # not expected: the heuristic leaves 3 bits of headroom
        raise NIRError("no current shift puts every threshold inside the membrane range; use more --membrane-bits")
    params = _network(net, ints, shifts, ths, ks, T, weight_bits, membrane_bits)
    report = tuple({"name": la.name, "leak_shift": k, "beta": la.beta, "beta_error": e, "current_shift": s,
                    "threshold": th, "weight_scale": q, "unit": q * 2.0 ** s}
                   for i, (la, k, e, s, th, q) in enumerate(zip(net.layers, ks, errs, shifts, ths, qs)))
    return Quantised(params, report, best)


def dequantize(params: NetworkParams, *, dt: float = 1e-4, input_scale: float = 1.0 / 255.0) -> FloatNet:
    """The float network whose membrane is the integer one in units of one integer step (``docs/nir.md`` §4):
    ``W = W_int / (2^s * c)``, ``beta = 1 - 2^-k``, gain 1, ``v_threshold = theta - 1/2``; no rounding, no
    saturation, so it agrees with the integer model on most images, not bit-exactly."""
    layers = []
    for i, la in enumerate(params.layers):
        c = input_scale * (1 << params.input_shift) if i == 0 else 1.0
        spiking = params.spiking(i)
        # a conv layer keeps its geometry; its pooled counts are the next layer's input as in the spec
        geometry = {} if la.kind == "dense" else {"in_shape": la.in_shape, "stride": la.stride,
                                                  "padding": la.padding, "pool": la.pool}
        layers.append(FloatLayer(la.weight.astype(np.float64) / (2.0 ** la.current_shift * c),
                                 neuron="lif" if spiking else "li", beta=_beta_of(la.leak_shift), gain=1.0,
                                 threshold=la.threshold - 0.5 if spiking else None,
                                 reset=params.reset, name=f"layer {i + 1}", **geometry))
    return FloatNet(tuple(layers), input_scale=input_scale, dt=dt, source="bundle")


def metadata_of(params: NetworkParams) -> list[dict]:
    """The integer parameters of each layer, stored on the exported ``Linear`` / ``Conv2d`` nodes (a conv layer's
    geometry is the node's own fields)."""
    net = {"T": params.T, "encoding": params.encoding, "input_bits": params.input_bits, "reset": params.reset,
           "readout": params.readout, "rate_seed": params.rate_seed}
    out = []
    for la in params.layers:
        d = {"weight_bits": la.weight_bits, "threshold": la.threshold, "leak_shift": la.leak_shift,
             "current_shift": la.current_shift, "membrane_bits": la.membrane_bits}
        out.append({META_KEY: {**{k: np.int64(v) for k, v in d.items()},
                               **{k: (v if isinstance(v, str) else np.int64(v)) for k, v in net.items()}}})
    return out


def exact_network(graph, net: FloatNet) -> NetworkParams | None:
    """The integer network an exported graph came from, when every ``Linear`` node carries this tool's
    metadata and its float weights are exactly that network's (``W * 2^s * c`` integers); else ``None``."""
    metas = [graph.nodes[n].metadata.get(META_KEY) if isinstance(graph.nodes[n].metadata, dict) else None
             for n in _linear_order(graph)]
    if len(metas) != len(net.layers) or any(not isinstance(m, dict) for m in metas):
        return None

    def _s(v):
        v = v.decode() if isinstance(v, bytes) else v
        return str(np.asarray(v).item()) if not isinstance(v, str) else v

    try:
        g = metas[0]
        T, encoding, input_bits = int(g["T"]), _s(g["encoding"]), int(g["input_bits"])
        reset, readout, rate_seed = _s(g["reset"]), _s(g["readout"]), int(g["rate_seed"])
        layers = []
        for i, (m, la) in enumerate(zip(metas, net.layers)):
            s = int(m["current_shift"])
            c = net.input_scale * (1 << (8 - input_bits)) if i == 0 else 1.0
            w = la.weight * la.gain * (2.0 ** s) * c
            wi = np.rint(w)
            if not np.allclose(w, wi, rtol=0, atol=1e-3):
                return None
            layers.append(_layer(la, wi.astype(np.int64), int(m["weight_bits"]), int(m["threshold"]),
                                 int(m["leak_shift"]), s, int(m["membrane_bits"])))
        return NetworkParams(tuple(layers), T, encoding, reset, readout, rate_seed, input_bits)
    except (KeyError, TypeError, ValueError):
        return None


def _linear_order(graph) -> list[str]:
    from .graph import _chain

    return [n for n in _chain(graph) if type(graph.nodes[n]).__name__ in ("Linear", "Affine", "Conv2d")]
