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
differ. A layer kind's ``stage`` binds it to its weights for one inference
and may store its neurons in another order than the spec's (conv layers keep
them position-major, which is what makes them fast); ``to_spec`` gives every
reported array in spec order, so the order is invisible outside.
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
    ``spike_counts``: per layer (B, n_l) uint16 spike counts over all timesteps
    (``T <= MAX_T = 65535`` bounds them; all zeros for a non-spiking output layer). uint16, not int64: a
    10 000-image run of a conv network holds ~19 000 counts per image, and writing them as int64 (1.5 GB)
    took a third of ``infer``'s time. ``spikes``: on request, per
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


def _shift_into(a: np.ndarray, shift: int, out: np.ndarray) -> np.ndarray:
    """``out = a >>> shift`` of an exact integer-valued float array ``a`` (overwritten): ``floor(a * 2^-shift)``.
    Scaling by a power of two and flooring are exact on the integers the products hold (:func:`_exact_dtype`),
    so this equals the integer shift, in one conversion instead of three passes."""
    if shift:
        a *= 1.0 / (1 << shift)
        np.floor(a, out=a)
    np.copyto(out, a, casting="unsafe")
    return out


def _hwc_rows(w: np.ndarray, shape: tuple) -> np.ndarray:
    """Rows of a weight matrix ``(C*H*W, n)`` in channel-major order (spec) re-ordered position-major
    ``(H*W*C, n)``: how a dense layer reads the outputs of a conv layer stored position-major."""
    c, h, ww = shape
    return w.reshape(c, h, ww, -1).transpose(1, 2, 0, 3).reshape(c * h * ww, -1)


class _Stage:
    """A layer bound to its weights for one :func:`infer`, with the arrays it reuses from one step to the
    next: fresh large arrays cost page faults on every step, which dominated the conv layers' time.
    What ``current``, ``emit`` and ``spike_buffer`` return is valid until the same method's next call."""

    out_hwc: tuple | None = None  # (C, H, W) when what ``emit`` gives is stored position-major
    work: int = 0  # values one sample's ``current`` reads (sizes the chunks of :func:`infer`)

    def __init__(self, layer, dtype) -> None:
        self.layer, self.dtype = layer, dtype
        self._scratch: dict = {}

    def _buf(self, name: str, shape: tuple, dtype, zero: bool = False) -> np.ndarray:
        a = self._scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._scratch[name] = (np.zeros if zero else np.empty)(shape, dtype=dtype)
        return a

    def spike_buffer(self, batch: int) -> np.ndarray:
        return self._buf("z", (batch, self.layer.n_neurons), np.bool_)

    @staticmethod
    def to_spec(a: np.ndarray) -> np.ndarray:
        """Per-neuron values in storage order -> spec order (the identity unless stored position-major)."""
        return a

    def store_spec(self, dst: np.ndarray, a: np.ndarray) -> None:
        """``dst[...] = to_spec(a)``, with ``dst`` a C-contiguous block of an output array."""
        np.copyto(dst, self.to_spec(a))


class _DenseStage(_Stage):
    """A dense layer. ``in_hwc``: the ``(C, H, W)`` of a conv layer whose outputs it reads position-major,
    else ``None`` (inputs in spec order)."""

    def __init__(self, layer: LayerParams, x_max: int, dtype, in_hwc: tuple | None) -> None:
        super().__init__(layer, dtype)
        self.dt = _exact_dtype(int(x_max) * int(np.abs(layer.weight).sum(axis=0).max()))
        w = layer.weight if in_hwc is None else _hwc_rows(layer.weight, in_hwc)
        self.w = w.astype(self.dt)
        self.work = layer.n_in

    def current(self, x: np.ndarray) -> np.ndarray:
        """``I = (x @ W) >>> s`` for a batch ``x`` of shape (B, n_in) with 0 <= x <= x_max.

        Every partial sum of column ``j`` is bounded by ``x_max * sum_i |W[i, j]|``. When that bound is below
        2**24 the product is evaluated in float32, else in float64 (the bound is < 2**47 by the parameter
        ranges); both hold every integer involved exactly, so the result equals integer arithmetic.
        """
        B, n = x.shape[0], self.layer.n_neurons
        xf = self._buf("x", x.shape, self.dt)
        np.copyto(xf, x, casting="unsafe")
        a = np.matmul(xf, self.w, out=self._buf("a", (B, n), self.dt))
        return _shift_into(a, self.layer.current_shift, self._buf("i", (B, n), self.dtype))

    @staticmethod
    def emit(z: np.ndarray) -> np.ndarray:
        return z


@LAYERS.register("dense")
class DenseGolden:
    """A fully connected layer (:class:`~sc_neurocore.params.LayerParams`)."""

    @staticmethod
    def stage(layer: LayerParams, x_max: int, dtype, in_hwc: tuple | None = None) -> _DenseStage:
        return _DenseStage(layer, x_max, dtype, in_hwc)

    @staticmethod
    def current(x: np.ndarray, layer: LayerParams, x_max: int, dtype=np.int64) -> np.ndarray:
        return _DenseStage(layer, x_max, dtype, None).current(x).copy()

    @staticmethod
    def emit(spikes: np.ndarray, layer: LayerParams) -> np.ndarray:
        return spikes


def _exact_dtype(bound: int):
    """float32 when every partial sum is an integer below 2**24 (its mantissa holds them all, in any
    summation order), else float64 (the parameter ranges keep bounds below 2**53)."""
    return np.float32 if bound < (1 << 24) else np.float64


#: Most elements of one im2col patch block of :class:`_ConvStage` (2 MiB of float32): the block's copy and its
#: matrix product then stay in the cache. One thread, patches of 400 values times 32 kernels (``fmnist-conv-t4``'s
#: second layer): 53 GFLOP/s for blocks of up to 8 images' patches, 29.5 GFLOP/s from 32 images (a 10 MB block);
#: ``fmnist-conv-t4`` on two threads 1 609 -> 2 080 images/s (best of 3; 64 MiB blocks before).
_PATCH_ELEMENTS = 1 << 19


class _ConvStage(_Stage):
    """A conv layer.

    Its neurons are kept **position-major**, ``(H_o, W_o, C_out)``, not in the spec's channel-major order:
    then the im2col rows are whole ``C_in``-long runs of memory, the matrix product writes the currents in
    the order the membranes are stored (no transpose per step), and pooling and the next conv layer read
    the same order. ``to_spec`` puts counts and spike trains back in spec order once, at the end.
    ``in_hwc``: the ``(C, H, W)`` of the previous conv layer when its outputs arrive position-major, else
    ``None`` (inputs in spec order: pixels, event bins, a dense layer's spikes).
    """

    def __init__(self, layer: ConvParams, x_max: int, dtype, in_hwc: tuple | None) -> None:
        super().__init__(layer, dtype)
        self.in_is_hwc = in_hwc is not None
        co, ho, wo = layer.conv_shape
        c, k = layer.in_shape[0], layer.kernel
        # the receptive field of output channel co bounds its partial sums by x_max * sum |W[co]|
        self.dt = _exact_dtype(int(x_max) * int(np.abs(layer.weight).reshape(co, -1).sum(axis=1).max()))
        self.w = layer.weight.transpose(2, 3, 1, 0).reshape(k * k * c, co).astype(self.dt)  # (ky, kx, ci) x co
        self.out_hwc = layer.out_shape
        self.work = ho * wo * k * k * c  # im2col values per sample

    def current(self, x: np.ndarray) -> np.ndarray:
        """``I = conv(x, W) >>> s`` for a batch ``x`` of shape (B, C_in*H*W), as im2col and one matrix product,
        position-major. The float32/float64 rule of the dense layer makes the product exact. Patches are built
        in blocks of the batch (at most :data:`_PATCH_ELEMENTS` values) so memory stays bounded for any batch."""
        layer = self.layer
        B = x.shape[0]
        c, h, w = layer.in_shape
        k, s, p = layer.kernel, layer.stride, layer.padding
        co, ho, wo = layer.conv_shape
        xs = x.reshape(B, h, w, c) if self.in_is_hwc else x.reshape(B, c, h, w).transpose(0, 2, 3, 1)
        out = self._buf("i", (B, ho * wo * co), self.dtype)
        step = min(B, max(1, _PATCH_ELEMENTS // self.work))
        for b0 in range(0, B, step):
            xb = xs[b0:b0 + step]
            n = xb.shape[0]
            # the padding border is written once (zeros) and never again; only the interior changes
            xp = self._buf(f"xp{n}", (n, h + 2 * p, w + 2 * p, c), self.dt, zero=True)
            np.copyto(xp[:, p:p + h, p:p + w], xb, casting="unsafe")
            win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s][:, :ho, :wo]
            # (b, yo, xo, ci, ky, kx) -> (b, yo, xo, ky, kx, ci): one row per output position
            cols = self._buf(f"cols{n}", (n, ho, wo, k, k, c), self.dt)
            np.copyto(cols, win.transpose(0, 1, 2, 4, 5, 3))
            a = np.matmul(cols.reshape(n * ho * wo, k * k * c), self.w, out=self._buf(f"a{n}", (n * ho * wo, co), self.dt))
            _shift_into(a, layer.current_shift, out[b0:b0 + n].reshape(n * ho * wo, co))
        return out

    def emit(self, z: np.ndarray) -> np.ndarray:
        """Sum-pool the position-major ``(B, H_o*W_o*C)`` spikes (bool or 0/1) over ``pool x pool`` windows
        (spec §4.7), position-major: uint8 counts (a window holds at most 15^2 spikes)."""
        q = self.layer.pool
        if q == 1:
            return z
        co, ho, wo = self.layer.conv_shape
        B = z.shape[0]
        zz = z.view(np.uint8).reshape(B, ho // q, q, wo // q, q, co)
        out = self._buf("pooled", (B, ho // q, wo // q, co), np.uint8)
        np.copyto(out, zz[:, :, 0, :, 0])
        for dy in range(q):  # q^2 adds of strided views, faster than a sum over two axes
            for dx in range(q):
                if dy or dx:
                    out += zz[:, :, dy, :, dx]
        return out.reshape(B, -1)

    def to_spec(self, a: np.ndarray) -> np.ndarray:
        """Per-neuron values ``(..., H_o*W_o*C)`` position-major -> ``(..., C*H_o*W_o)`` channel-major."""
        co, ho, wo = self.layer.conv_shape
        lead = a.shape[:-1]
        return np.moveaxis(a.reshape(*lead, ho, wo, co), -1, -3).reshape(*lead, -1)

    def store_spec(self, dst: np.ndarray, a: np.ndarray) -> None:
        """``dst[...] = to_spec(a)`` in one pass: the reordering is a view of ``dst`` (C-contiguous)."""
        co, ho, wo = self.layer.conv_shape
        lead = a.shape[:-1]
        np.copyto(np.moveaxis(dst.reshape(*lead, co, ho, wo), -3, -1), a.reshape(*lead, ho, wo, co))


def _to_hwc(a: np.ndarray, shape: tuple) -> np.ndarray:
    c, h, w = shape
    return a.reshape(a.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1)


@LAYERS.register("conv")
class ConvGolden:
    """A convolution layer (:class:`~sc_neurocore.params.ConvParams`); ``current``/``emit`` take and give
    spec (channel-major) order, ``stage`` the position-major working form :func:`infer` runs."""

    @staticmethod
    def stage(layer: ConvParams, x_max: int, dtype, in_hwc: tuple | None = None) -> _ConvStage:
        return _ConvStage(layer, x_max, dtype, in_hwc)

    @staticmethod
    def current(x: np.ndarray, layer: ConvParams, x_max: int, dtype=np.int64) -> np.ndarray:
        st = _ConvStage(layer, x_max, dtype, None)
        return np.ascontiguousarray(st.to_spec(st.current(x)))

    @staticmethod
    def emit(spikes: np.ndarray, layer: ConvParams) -> np.ndarray:
        """Sum-pool the channel-major ``(B, C*H_o*W_o)`` spikes over ``pool x pool`` windows (spec §4.7)."""
        st = _ConvStage(layer, 1, np.int64, None)
        pooled = st.emit(np.ascontiguousarray(_to_hwc(spikes.astype(np.uint8), layer.conv_shape)))
        c, h, w = layer.out_shape
        return pooled.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(pooled.shape[0], -1)


def _lif_update(v: np.ndarray, current: np.ndarray, layer, reset: str, spiking: bool,
                z: np.ndarray | None = None) -> np.ndarray | None:
    """Spec §4 steps 3-6 on the membranes ``v`` **in place**; returns the spikes (bool, into ``z`` when
    given), ``None`` for a non-spiking layer. In place because the LIF steps of large layers are
    memory-bound: one pass each."""
    if layer.leak_shift:
        v -= v >> layer.leak_shift
    v += current
    fmt = layer.membrane_format
    np.clip(v, fmt.min, fmt.max, out=v)
    if not spiking:
        return None
    z = np.greater_equal(v, layer.threshold, out=z)
    # arithmetic on the 0/1 spikes, not a masked ufunc (``where=z`` ran 8x slower)
    if reset == "subtract":
        v -= z * v.dtype.type(layer.threshold)
    else:
        v *= ~z
    return z


def lif_step(state: LIFState, current: np.ndarray, layer: LayerParams, reset: str,
             spiking: bool = True) -> tuple[LIFState, np.ndarray]:
    """One timestep of one layer (spec §4 steps 3–6). Returns the new state and the spikes (uint8)."""
    v = np.array(state.v, dtype=np.result_type(state.v, current))
    z = _lif_update(v, current, layer, reset, spiking)
    return LIFState(v), (np.zeros(v.shape, dtype=np.uint8) if z is None else z.astype(np.uint8))


def _stages(params: NetworkParams) -> list:
    """Every layer bound to its weights and its input's storage order, once per :func:`infer`."""
    stages, hwc = [], None
    for li, layer in enumerate(params.layers):
        x_max = params.input_max(li)
        st = LAYERS(layer).stage(layer, x_max, _state_dtype(layer, x_max), hwc)
        stages.append(st)
        hwc = st.out_hwc
    return stages


#: Values one chunk of :func:`infer` keeps per layer pass (membranes, currents, patches): 16 MiB of
#: 4-byte values, so a chunk's working set stays in this class of machine's last-level cache (the
#: LIF passes of a 12 544-neuron conv layer are memory-bound: 4 096 images at once ran 2-5x slower).
_CHUNK_ELEMENTS = 1 << 22


def _chunk_rows(params: NetworkParams, stages: list, batch_size: int) -> int:
    first = params.layers[0].n_neurons * (1 if params.input.constant else params.T)
    per_sample = first + 2 * sum(layer.n_neurons for layer in params.layers) + max(st.work for st in stages)
    return max(16, min(batch_size, _CHUNK_ELEMENTS // per_sample))


def _infer_chunk(params: NetworkParams, stages: list, px: np.ndarray, out: InferenceResult, rows: slice) -> None:
    """Run the samples ``px`` and write their results into ``out``'s arrays at ``rows``."""
    B, T = px.shape[0], params.T
    layers = params.layers
    record = out.spikes is not None
    states = [np.zeros((B, layer.n_neurons), dtype=st.dtype) for layer, st in zip(layers, stages)]
    counts = [np.zeros((B, layer.n_neurons), dtype=np.uint16) for layer in layers]  # T <= MAX_T = 65535
    trains = [np.zeros((T, B, layer.n_neurons), dtype=np.uint8) for layer in layers] if record else None
    if params.input.constant:
        # Spec §3.1: layer 1's current is the same at every timestep.
        first = [stages[0].current(encode_input(params, px, 0))] * T
    else:
        # Every timestep's input is known before the first step (rate: the LFSR spikes; events: the bins):
        # layer 1's currents of all T steps in one product, (T*B, n_0) x (n_0, n_1).
        x0 = np.concatenate([encode_input(params, px, t) for t in range(T)])
        first = stages[0].current(x0).reshape(T, B, -1)
    for t in range(T):
        x = None
        for li, (layer, st) in enumerate(zip(layers, stages)):
            cur = first[t] if li == 0 else st.current(x)
            z = _lif_update(states[li], cur, layer, params.reset, params.spiking(li), st.spike_buffer(B))
            if z is not None:
                counts[li] += z
                if record:
                    trains[li][t] = z
                x = st.emit(z)
        if record:
            out.output_trace[t, rows] = x if params.readout == "spike_count" else states[-1]
    out.scores[rows] = counts[-1] if params.readout == "spike_count" else states[-1]
    for li, st in enumerate(stages):
        st.store_spec(out.spike_counts[li][rows], counts[li])
        if record:
            out.spikes[li][:, rows] = st.to_spec(trains[li])


#: Chunks below which :func:`infer` runs in the calling thread only: a dense network's few large chunks are
#: faster with the matrix library's own threads on each product than spread over workers.
_MIN_PARALLEL_CHUNKS = 8


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _blas_threads_local():
    """OpenBLAS's ``openblas_set_num_threads_local`` (0.3.27+: the thread count of the *calling* thread's
    products, returning the previous one) from the library NumPy has loaded, or None where there is none
    (another BLAS, another OS): then :func:`infer` does not run chunks in parallel, since workers whose
    every product also spreads over all cores would oversubscribe them."""
    global _BLAS_LOCAL
    if _BLAS_LOCAL is False:
        import ctypes

        _BLAS_LOCAL = None
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln.split()[-1]})
        except OSError:
            paths = []
        for path in paths:
            try:
                fn = ctypes.CDLL(path).openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
            _BLAS_LOCAL = fn
            break
    return _BLAS_LOCAL


_BLAS_LOCAL = False  # not looked up yet


def _workers(chunks: int) -> int:
    """How many threads :func:`infer` runs its chunks on: one per CPU when there are enough chunks and the
    matrix products of each thread can be kept to that thread (:func:`_blas_threads_local`), else 1."""
    if chunks < _MIN_PARALLEL_CHUNKS or _cpus() < 2 or _blas_threads_local() is None:
        return 1
    return min(_cpus(), chunks)


def _infer_parallel(params: NetworkParams, px: np.ndarray, out: "InferenceResult", rows: int, starts: list,
                    workers: int) -> None:
    """The chunks of :func:`infer` on ``workers`` threads, each with its own stages (their scratch arrays are
    per thread) and single-threaded matrix products. NumPy releases the GIL in the products, copies and
    ufuncs a chunk spends its time in; the chunks write disjoint rows of ``out``, and every value is exact
    integer arithmetic, so the result is the same bytes as one thread's. On this 2-core machine the conv
    bundles ran 1.3x faster on two matrix-library threads than on one; this uses both cores for the rest
    of a chunk's work too (the im2col copies, LIF passes and pooling: half of it)."""
    import threading

    local = _blas_threads_local()
    errors: list = []

    def run(mine: list) -> None:
        try:
            stages = _stages(params)
            before = local(1)
            try:
                for i in mine:
                    _infer_chunk(params, stages, px[i:i + rows], out, slice(i, i + rows))
            finally:
                local(before)
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(e)

    # one thread per share of the chunks (a pool could hand both shares to whichever thread is free first)
    threads = [threading.Thread(target=run, args=(starts[w::workers],), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def infer(params: NetworkParams, pixels, *, record: bool = False, batch_size: int = 4096) -> InferenceResult:
    """Run inferences on a batch of samples: images (B, n_0) of 8-bit pixels, or for the ``events`` input kind
    event rasters (B, T, n_0) of per-bin counts; see :class:`InferenceResult`."""
    if not isinstance(params, NetworkParams):
        raise TypeError(f"params must be a NetworkParams, not {type(params).__name__}")
    px = INPUTS(params.input).check(params.input, pixels, params.sizes[0], params.T)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    stages = _stages(params)
    rows = _chunk_rows(params, stages, batch_size)  # batch_size bounds memory; smaller chunks run faster
    N, T, layers = px.shape[0], params.T, params.layers
    out = InferenceResult(
        np.empty(N, dtype=np.int64), np.empty((N, layers[-1].n_out), dtype=np.int64),
        tuple(np.empty((N, layer.n_neurons), dtype=np.uint16) for layer in layers),
        tuple(np.empty((T, N, layer.n_neurons), dtype=np.uint8) for layer in layers) if record else None,
        np.empty((T, N, layers[-1].n_out), dtype=np.int64) if record else None)
    starts = list(range(0, N, rows))
    workers = _workers(len(starts))
    if workers == 1:
        for i in starts:
            _infer_chunk(params, stages, px[i:i + rows], out, slice(i, i + rows))
    else:
        _infer_parallel(params, px, out, rows, starts, workers)
    # np.argmax returns the first maximum: ties go to the lowest class index (spec §5).
    out.classes[:] = np.argmax(out.scores, axis=1)
    return out
