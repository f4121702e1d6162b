r"""The NumPy golden model: the integer LIF network of ``docs/fixed_point.md``, vectorised over a batch.

Pure functions over explicit parameter (:class:`~sc_neurocore.params.LayerParams`,
:class:`~sc_neurocore.params.NetworkParams`) and state (:class:`LIFState`)
types. Per neuron and timestep (spec §4)::

    a  = sum_i x[i] * W[i, j]                  exact weighted sum
    I  = a >>> s                               current scaling, floor
    v' = v                  if k == 0          leak, floor
         v - (v >>> k)      otherwise
    u  = clamp(v' + I, -2^(m-1), 2^(m-1)-1)    the only saturating step
    z  = [u >= theta]                          spiking layers only
    v  = u - theta*z   (reset="subtract")
         u * (1 - z)   (reset="zero")
         u             (non-spiking output layer, readout="membrane")

Weighted sums are evaluated with a floating-point matrix product whose
mantissa provably holds every partial sum exactly (see :func:`layer_current`),
which is what makes the model fast; the result is converted back to int64 and
the rest is integer arithmetic.

Each layer kind and input kind has one implementation here, registered in
:data:`LAYERS` / :data:`INPUTS` (``docs/architecture.md``): the LIF dynamics
(:func:`lif_step`) are the same for every kind, only how a layer turns its
inputs into currents and how an input stage turns a sample into ``x_0[t]``
differ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .kinds import Registry
from .params import INPUT_FORMAT, ConvParams, EventInput, LayerParams, NetworkParams, PixelInput, lfsr_thresholds

__all__ = ["LIFState", "InferenceResult", "encode_input", "layer_current", "lif_step", "infer", "check_pixels",
           "check_events", "rebin_events",
           "LAYERS", "INPUTS"]

#: The golden model's layer kinds: ``current(x, layer, x_max) -> I`` (spec §4 steps 1-2, one value per
#: neuron) and ``emit(spikes, layer) -> x`` (what the next layer reads, spec §4.7).
LAYERS: Registry = Registry("golden model", "layer")
#: The golden model's input kinds: ``check(stage, samples, n_inputs)`` and ``encode(stage, samples, T, t) -> x_0[t]``.
INPUTS: Registry = Registry("golden model", "input")


class LIFState(NamedTuple):
    """Membrane potentials of one layer, shape ``(B, n)``, int64."""

    v: np.ndarray

    @classmethod
    def zeros(cls, batch: int, n: int) -> "LIFState":
        return cls(np.zeros((batch, n), dtype=np.int64))


class InferenceResult(NamedTuple):
    """What an inference returns (spec §5).

    ``classes``: (B,) int64. ``scores``: (B, n_L) int64 readout values.
    ``spike_counts``: per layer (B, n_l) int64 spike counts over all timesteps
    (all zeros for a non-spiking output layer). ``spikes``: on request, per
    layer (T, B, n_l) uint8 spike trains, else ``None``. ``output_trace``: on
    request, (T, B, n_L) int64 output-layer values after each timestep (the
    membrane after reset, or the spike train for ``spike_count``), else None.
    """

    classes: np.ndarray
    scores: np.ndarray
    spike_counts: tuple
    spikes: tuple | None = None
    output_trace: np.ndarray | None = None


def check_pixels(pixels, n_inputs: int) -> np.ndarray:
    """Validate a batch of images: shape (B, n_inputs) or (n_inputs,), integer values 0..255."""
    a = np.asarray(pixels)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("pixels contain NaN or infinite values")
        if not np.all(a == np.floor(a)):
            raise ValueError("pixels must be integers 0..255 (got fractional values; scale [0,1) images by 255 first)")
    elif a.dtype.kind not in "iub":
        raise TypeError(f"pixels must be an integer array, not dtype {a.dtype}")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n_inputs:
        raise ValueError(f"pixels must have shape (B, {n_inputs}) or ({n_inputs},), not {np.shape(pixels)}")
    if a.size and (a.min() < INPUT_FORMAT.min or a.max() > INPUT_FORMAT.max):
        raise ValueError(f"pixel values must be within 0..255, found {a.min()}..{a.max()}")
    return a.astype(np.int64)


@INPUTS.register("pixels")
class PixelsGolden:
    """8-bit images, direct or LFSR rate encoded (spec §3)."""

    @staticmethod
    def check(stage: PixelInput, pixels, n_inputs: int, T: int) -> np.ndarray:
        return check_pixels(pixels, n_inputs)

    @staticmethod
    def encode(stage: PixelInput, pixels: np.ndarray, T: int, t: int) -> np.ndarray:
        if stage.encoding == "direct":
            return pixels >> stage.shift if stage.shift else pixels
        R = lfsr_thresholds(stage.rate_seed, T, pixels.shape[1])
        return (pixels > R[t][None, :].astype(np.int64)).astype(np.int64)


def check_events(samples, n_inputs: int, T: int, x_max: int) -> np.ndarray:
    """Validate a batch of event rasters: shape (B, T, n_inputs) or (T, n_inputs), integer counts 0..x_max
    (spec §3.3: the bins of ``docs/events.md``, already saturated to ``input_bits``)."""
    a = np.asarray(samples)
    if a.dtype.kind not in "iub":
        raise TypeError(f"event rasters must be an integer array, not dtype {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[2] != n_inputs:
        raise ValueError(f"event rasters must have shape (B, T, {n_inputs}) or (T, {n_inputs}), not {np.shape(samples)}")
    if a.shape[1] != T:
        raise ValueError(f"the event rasters have {a.shape[1]} time bins but the network runs T={T} steps; "
                         f"bin the recordings into {T} bins")
    if a.size and (a.min() < 0 or a.max() > x_max):
        raise ValueError(f"event counts must be within 0..{x_max} (input_bits {x_max.bit_length()}), found "
                         f"{a.min()}..{a.max()}: saturate them when binning")
    # Kept in their own (small) integer type: layer 1's product converts them once, to its float type;
    # widening a (B, T, n) raster to int64 first would cost more than the product.
    return a if a.dtype.kind in "iu" else a.astype(np.uint8)


def rebin_events(samples, T: int, x_max: int) -> np.ndarray:
    """Event rasters of ``T'`` bins as ``T`` bins (``T'`` a multiple of ``T``): each group of ``T'/T``
    consecutive bins summed and saturated to ``x_max`` (``docs/events.md``). Exact: the counts of a coarse
    bin are the sum of its fine bins', and saturating the fine counts first changes nothing
    (``min(sum min(c_k, M), M) = min(sum c_k, M)``), so a T=32 teacher and a T=4 student can read one raster."""
    a = np.asarray(samples)
    if a.ndim != 3:
        raise ValueError(f"event rasters must have shape (B, T, n), not {a.shape}")
    Tf = a.shape[1]
    if Tf == T:
        return a
    if T < 1 or Tf % T:
        raise ValueError(f"event rasters of {Tf} bins cannot be re-binned into T={T} bins (T must divide {Tf})")
    return np.minimum(a.reshape(a.shape[0], T, Tf // T, a.shape[2]).sum(2, dtype=np.int64), x_max)


@INPUTS.register("events")
class EventsGolden:
    """Per-timestep event counts given with the sample (spec §3.3)."""

    @staticmethod
    def check(stage: EventInput, samples, n_inputs: int, T: int) -> np.ndarray:
        return check_events(samples, n_inputs, T, stage.x_max)

    @staticmethod
    def encode(stage: EventInput, samples: np.ndarray, T: int, t: int) -> np.ndarray:
        return samples[:, t, :]


def encode_input(params: NetworkParams, pixels: np.ndarray, t: int) -> np.ndarray:
    """Layer-1 input ``x_0[t]`` (spec §3): pixels (their top ``input_bits``) for direct, LFSR spikes for rate."""
    stage = params.input
    return INPUTS(stage).encode(stage, pixels, params.T, t)


def layer_current(x: np.ndarray, layer, x_max: int, dtype=np.int64) -> np.ndarray:
    """``I`` of ``layer`` for a batch ``x`` of its inputs with ``0 <= x <= x_max``, for any layer kind, as ``dtype``
    (int64, or int32 where :func:`_state_dtype` says every value fits)."""
    return LAYERS(layer).current(x, layer, x_max, dtype)


def _state_dtype(layer, x_max: int):
    """int32 when the membrane and the current both fit 30 bits (so ``v' + I`` cannot wrap before the clamp),
    else int64: half the memory traffic for the LIF steps of the large conv layers."""
    return np.int32 if layer.membrane_bits <= 30 and layer.current_format(x_max).width <= 30 else np.int64


@LAYERS.register("dense")
class DenseGolden:
    """A fully connected layer (:class:`~sc_neurocore.params.LayerParams`)."""

    @staticmethod
    def current(x: np.ndarray, layer: LayerParams, x_max: int, dtype=np.int64) -> np.ndarray:
        return _dense_current(x, layer, x_max, dtype)

    @staticmethod
    def emit(spikes: np.ndarray, layer: LayerParams) -> np.ndarray:
        return spikes


def _exact_dtype(bound: int):
    """float32 when every partial sum is an integer below 2**24 (its mantissa holds them all, in any
    summation order), else float64 (the parameter ranges keep bounds below 2**53)."""
    return np.float32 if bound < (1 << 24) else np.float64


def _dense_current(x: np.ndarray, layer: LayerParams, x_max: int, dtype=np.int64) -> np.ndarray:
    """``I = (x @ W) >>> s`` for a batch ``x`` of shape (B, n_in) with 0 <= x <= x_max.

    Every partial sum of column ``j`` is bounded by ``x_max * sum_i |W[i, j]|``.
    When that bound is below 2**24 the product is evaluated in float32, else
    in float64 (the bound is < 2**47 by the parameter ranges); both hold every
    integer involved exactly, so the result equals integer arithmetic.
    """
    dt = _exact_dtype(int(x_max) * int(np.abs(layer.weight).sum(axis=0).max()))
    a = (x.astype(dt) @ layer.weight.astype(dt)).astype(np.int64)
    return (a >> layer.current_shift).astype(dtype, copy=False)


#: Most elements of one im2col patch block of :func:`_conv_current` (64 MiB of float32).
_PATCH_ELEMENTS = 1 << 24


@LAYERS.register("conv")
class ConvGolden:
    """A convolution layer (:class:`~sc_neurocore.params.ConvParams`), channel-major in and out."""

    @staticmethod
    def current(x: np.ndarray, layer: ConvParams, x_max: int, dtype=np.int64) -> np.ndarray:
        return _conv_current(x, layer, x_max, dtype)

    @staticmethod
    def emit(spikes: np.ndarray, layer: ConvParams) -> np.ndarray:
        """Sum-pool the ``(B, C*H_o*W_o)`` spikes over ``pool x pool`` windows (spec §4.7)."""
        q = layer.pool
        if q == 1:
            return spikes
        c, h, w = layer.conv_shape
        z = spikes.reshape(spikes.shape[0], c, h, w)
        # q^2 adds of strided views (a window count is at most 15^2: uint8), faster than a sum over two axes
        out = np.zeros((spikes.shape[0], c, h // q, w // q), dtype=np.uint8)
        for dy in range(q):
            for dx in range(q):
                out += z[:, :, dy::q, dx::q]
        return out.reshape(spikes.shape[0], -1)


def _conv_current(x: np.ndarray, layer: ConvParams, x_max: int, dtype=np.int64) -> np.ndarray:
    """``I = conv(x, W) >>> s`` for a batch ``x`` of shape (B, C_in*H*W), as im2col and one matrix product.

    The receptive field of output channel ``co`` bounds its partial sums by ``x_max * sum |W[co]|``, so the
    same float32/float64 rule as the dense layer makes the product exact. Patches are built in blocks of
    the batch (at most :data:`_PATCH_ELEMENTS` values) so memory stays bounded for any batch.
    """
    B = x.shape[0]
    c, h, w = layer.in_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    co, ho, wo = layer.conv_shape
    dt = _exact_dtype(int(x_max) * int(np.abs(layer.weight).reshape(co, -1).sum(axis=1).max()))
    wmat = layer.weight.reshape(co, -1).T.astype(dt)                 # (C_in*K*K, C_out), (ci, ky, kx) order
    out = np.empty((B, co, ho * wo), dtype=dtype)
    step = max(1, _PATCH_ELEMENTS // (ho * wo * c * k * k))
    for b0 in range(0, B, step):
        xb = x[b0:b0 + step].reshape(-1, c, h, w).astype(dt)
        if p:
            xb = np.pad(xb, ((0, 0), (0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(xb, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :ho, :wo]
        # (b, ci, yo, xo, ky, kx) -> (b, yo, xo, ci, ky, kx): one row per output position
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, ho * wo, c * k * k)
        a = (cols @ wmat).astype(np.int64)
        out[b0:b0 + step] = (a >> layer.current_shift).transpose(0, 2, 1)
    return out.reshape(B, -1)


def lif_step(state: LIFState, current: np.ndarray, layer: LayerParams, reset: str,
             spiking: bool = True) -> tuple[LIFState, np.ndarray]:
    """One timestep of one layer (spec §4 steps 3–6). Returns the new state and the spikes (uint8)."""
    v = state.v
    if layer.leak_shift:
        v = v - (v >> layer.leak_shift)
    fmt = layer.membrane_format
    u = np.clip(v + current, fmt.min, fmt.max)
    if not spiking:
        return LIFState(u), np.zeros(u.shape, dtype=np.uint8)
    z = u >= layer.threshold
    if reset == "subtract":
        v = np.where(z, u - layer.threshold, u)   # keeps u's dtype (int32 or int64)
    else:
        v = np.where(z, 0, u)
    return LIFState(v), z.astype(np.uint8)


def _infer_chunk(params: NetworkParams, px: np.ndarray, record: bool):
    B = px.shape[0]
    layers = params.layers
    dts = [_state_dtype(layer, params.input_max(li)) for li, layer in enumerate(layers)]
    states = [LIFState(np.zeros((B, layer.n_neurons), dtype=dt)) for layer, dt in zip(layers, dts)]
    counts = [np.zeros((B, layer.n_neurons), dtype=np.int64) for layer in layers]
    trains = [np.zeros((params.T, B, layer.n_neurons), dtype=np.uint8) for layer in layers] if record else None
    trace = np.zeros((params.T, B, layers[-1].n_out), dtype=np.int64) if record else None
    if params.input.constant:
        # Spec §3.1: layer 1's current is the same at every timestep.
        const_current = layer_current(encode_input(params, px, 0), layers[0], params.input_max(0), dts[0])
        first = [const_current] * params.T
    else:
        # Every timestep's input is known before the first step (rate: the LFSR spikes; events: the bins):
        # layer 1's currents of all T steps in one product, (T*B, n_0) x (n_0, n_1).
        x0 = np.concatenate([encode_input(params, px, t) for t in range(params.T)])
        first = layer_current(x0, layers[0], params.input_max(0), dts[0]).reshape(params.T, B, -1)
    for t in range(params.T):
        x = None
        for li, layer in enumerate(layers):
            if li == 0:
                cur = first[t]
            else:
                cur = layer_current(x, layer, params.input_max(li), dts[li])
            spk = params.spiking(li)
            states[li], z = lif_step(states[li], cur, layer, params.reset, spk)
            counts[li] += z
            if record:
                trains[li][t] = z
            x = LAYERS(layer).emit(z, layer)
        if record:
            trace[t] = x if params.readout == "spike_count" else states[-1].v
    scores = counts[-1] if params.readout == "spike_count" else states[-1].v.astype(np.int64)
    return scores, counts, trains, trace


def infer(params: NetworkParams, pixels, *, record: bool = False, batch_size: int = 4096) -> InferenceResult:
    """Run inferences on a batch of samples: images (B, n_0) of 8-bit pixels, or for the ``events`` input kind
    event rasters (B, T, n_0) of per-bin counts; see :class:`InferenceResult`."""
    if not isinstance(params, NetworkParams):
        raise TypeError(f"params must be a NetworkParams, not {type(params).__name__}")
    px = INPUTS(params.input).check(params.input, pixels, params.sizes[0], params.T)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    parts = [_infer_chunk(params, px[i:i + batch_size], record) for i in range(0, max(1, px.shape[0]), batch_size)]
    scores = np.concatenate([p[0] for p in parts])
    counts = tuple(np.concatenate([p[1][li] for p in parts]) for li in range(len(params.layers)))
    trains = tuple(np.concatenate([p[2][li] for p in parts], axis=1)
                   for li in range(len(params.layers))) if record else None
    trace = np.concatenate([p[3] for p in parts], axis=1) if record else None
    # np.argmax returns the first maximum: ties go to the lowest class index (spec §5).
    classes = np.argmax(scores, axis=1).astype(np.int64)
    return InferenceResult(classes, scores, counts, trains, trace)
