"""The float network a NIR graph (or a snnTorch / Norse module) describes, and its simulation.

A :class:`FloatNet` is the framework-neutral middle of every interop path (``docs/nir.md``)::

    NIR graph / snnTorch module / Norse module  ->  FloatNet  ->  quantise  ->  NetworkParams (bundle)
    bundle  ->  FloatNet  ->  NIR graph

It holds what the spec can represent and nothing else: a chain of fully connected or 2-D convolution
layers of identical neurons, each layer with one decay, one input gain, one threshold (a convolution's
spikes sum-pooled over non-overlapping windows, as in the spec, ``docs/fixed_point.md`` §1.1). Everything
else was refused with a :class:`NIRError` on the way in.

Discrete time (forward Euler with the graph's ``dt``), per layer and step, in this order — the
order of the integer spec (``docs/fixed_point.md`` §4), without its rounding and saturation::

    I = x @ W (+ b)                (x: the float input, or the previous layer's outputs; b: teachers only)
    I = conv2d(x, W, stride, padding)   (a conv layer: x read as in_shape = (C, H, W), channel-major)
    v = beta * v + gain * I        (beta = 1 - dt/tau, gain = dt*r/tau; IF: beta = 1, gain = dt*r)
    z = v > threshold              (LIF/IF; an LI output layer has no threshold and never fires)
    v = 0 where z                  (reset "zero": NIR's hard reset to v_reset = 0)
    v = v - threshold * z          (reset "subtract": not NIR's, only from a framework module)
    out = sum-pool(z, pool)        (a conv layer: what the next layer reads, (C, H_o/pool, W_o/pool) counts)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..params import check_conv_geometry, conv_out_shape

__all__ = ["NIRError", "FloatLayer", "FloatNet", "simulate", "current", "emit", "NEURONS", "RESETS"]

#: ``lif`` fires (hidden layers, and a spike-count output); ``li`` is a non-firing output layer whose
#: membrane is the score (the integer spec's ``readout = membrane``).
NEURONS = ("lif", "li")
RESETS = ("zero", "subtract")
#: Window elements a float convolution copies at a time (:func:`current`).
_WINDOW_ELEMENTS = 1 << 22


class NIRError(ValueError):
    """A graph, module or bundle that cannot be mapped (the message names the node and the field)."""


def _finite(name: str, value, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NIRError(f"{where}: {name} must be a number, not {value!r}") from None
    if not np.isfinite(v):
        raise NIRError(f"{where}: {name} must be finite, not {v!r}")
    return v


@dataclass(frozen=True, eq=False)
class FloatLayer:
    """One layer of identical float LIF (or LI) neurons: fully connected, or a 2-D convolution.

    Dense: ``weight`` is input-major like the spec's, shape ``(n_in, n_out)``. Convolution (``in_shape`` given):
    ``weight`` is ``(C_out, C_in, K, K)`` like the spec's, NIR's and PyTorch's; the neurons are
    ``conv_shape = (C_out, H_o, W_o)`` and the next layer reads their spikes sum-pooled by ``pool``
    (``out_shape``), all flattened channel-major. The geometry is checked by the spec's own
    :func:`~sc_neurocore.params.check_conv_geometry`.
    """

    weight: np.ndarray
    neuron: str = "lif"
    beta: float = 1.0
    gain: float = 1.0
    threshold: float | None = 1.0
    reset: str = "zero"
    #: The node (or module) this layer came from: error messages name it.
    name: str = "layer"
    #: A constant input current per neuron (NIR ``Affine.bias``), shape ``(n_out,)``. The spec has none:
    #: only a distillation teacher may have one; :func:`~sc_neurocore.nir.quantize` refuses it.
    bias: np.ndarray | None = None
    #: A convolution's input ``(C_in, H, W)``; ``None`` for a dense layer.
    in_shape: tuple | None = None
    stride: int = 1
    padding: int = 0
    pool: int = 1

    def __post_init__(self) -> None:
        where = self.name
        w = np.asarray(self.weight, dtype=np.float64)
        if self.in_shape is None:
            if w.ndim != 2 or min(w.shape) < 1:
                raise NIRError(f"{where}: weight must be a non-empty 2-D matrix, not shape {w.shape}")
        else:
            if w.ndim != 4 or min(w.shape) < 1:
                raise NIRError(f"{where}: a convolution's weight must be a non-empty (C_out, C_in, K, K) array, "
                               f"not shape {w.shape}")
            try:
                geometry = check_conv_geometry(self.in_shape, w.shape, self.stride, self.padding, self.pool)
            except (TypeError, ValueError) as e:
                raise NIRError(f"{where}: {e}") from None
            for name, v in zip(("in_shape", "stride", "padding", "pool"), geometry):
                object.__setattr__(self, name, v)
        if not np.all(np.isfinite(w)):
            i = np.flatnonzero(~np.isfinite(w))[0]
            raise NIRError(f"{where}: weight holds a non-finite value ({w.flat[i]!r} at index {i})")
        w = np.ascontiguousarray(w)
        w.setflags(write=False)
        object.__setattr__(self, "weight", w)
        if self.bias is not None:
            b = np.asarray(self.bias, dtype=np.float64).reshape(-1)
            n = self.n_neurons
            if b.size == 1 or (self.in_shape is not None and b.size == w.shape[0]):
                # one value per layer, or per output channel of a convolution (NIR's Conv2d.bias)
                b = np.repeat(b, n // b.size)
            if b.size != n or not np.all(np.isfinite(b)):
                raise NIRError(f"{where}: bias must be {n} finite values, not {b.size}")
            b.setflags(write=False)
            object.__setattr__(self, "bias", b if np.any(b != 0) else None)
        if self.neuron not in NEURONS:
            raise NIRError(f"{where}: neuron must be one of {NEURONS}, not {self.neuron!r}")
        if self.reset not in RESETS:
            raise NIRError(f"{where}: reset must be one of {RESETS}, not {self.reset!r}")
        beta = _finite("beta", self.beta, where)
        if not 0.0 <= beta <= 1.0:
            raise NIRError(f"{where}: the per-step decay beta = 1 - dt/tau must lie in [0, 1], not {beta!r}")
        gain = _finite("gain", self.gain, where)
        if not gain > 0:
            raise NIRError(f"{where}: the input gain dt*r/tau must be positive, not {gain!r}")
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "gain", gain)
        if self.neuron == "lif":
            th = _finite("v_threshold", self.threshold, where)
            if not th > 0:
                raise NIRError(f"{where}: v_threshold must be positive (the spec fires at a threshold >= 1), "
                               f"not {th!r}")
            object.__setattr__(self, "threshold", th)
        else:
            object.__setattr__(self, "threshold", None)

    @property
    def kind(self) -> str:
        """The spec's layer kind: ``dense`` or ``conv``."""
        return "dense" if self.in_shape is None else "conv"

    @property
    def kernel(self) -> int:
        return self.weight.shape[2]

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        """A convolution's neurons ``(C_out, H_o, W_o)``."""
        return conv_out_shape(self.in_shape, self.weight.shape[0], self.kernel, self.stride, self.padding)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """What the next layer reads: ``(C_out, H_o/pool, W_o/pool)`` pooled counts, or ``(n_out,)`` spikes."""
        if self.in_shape is None:
            return (self.weight.shape[1],)
        c, h, w = self.conv_shape
        return c, h // self.pool, w // self.pool

    @property
    def n_in(self) -> int:
        return self.weight.shape[0] if self.in_shape is None else int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def n_neurons(self) -> int:
        return self.n_out if self.in_shape is None else int(np.prod(self.conv_shape))


@dataclass(frozen=True, eq=False)
class FloatNet:
    """A chain of :class:`FloatLayer` (hidden layers fire; the last one fires or is an LI readout).

    ``input_scale``: the float input the network sees for an 8-bit pixel ``p`` is ``p * input_scale``
    (``1/255`` for a model trained on ``torchvision``'s ``ToTensor`` images). ``dt``: the time step
    the discretisation assumed (NIR graphs do not store it).
    """

    layers: tuple[FloatLayer, ...]
    input_scale: float = 1.0 / 255.0
    dt: float = 1e-4
    #: Where it came from (``nir``, ``snntorch``, ``norse``, ``bundle``): provenance only.
    source: str = "nir"
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise NIRError("the network has no layer (a chain Input -> Affine/Linear -> LIF ... -> Output is needed)")
        for i, layer in enumerate(layers):
            if not isinstance(layer, FloatLayer):
                raise TypeError(f"layers[{i}] must be a FloatLayer, not {type(layer).__name__}")
            if i and layer.n_in != layers[i - 1].n_out:
                raise NIRError(f"{layer.name}: takes {layer.n_in} inputs but {layers[i - 1].name} has "
                               f"{layers[i - 1].n_out} outputs")
            if i and layer.kind == "conv" and layers[i - 1].kind == "conv" \
                    and layer.in_shape != layers[i - 1].out_shape:
                raise NIRError(f"{layer.name}: reads its input as {layer.in_shape} but {layers[i - 1].name} gives "
                               f"{layers[i - 1].out_shape}")
            if i < len(layers) - 1 and layer.neuron != "lif":
                raise NIRError(f"{layer.name}: a hidden layer must fire (LIF or IF); a non-firing leaky "
                               "integrator (LI) can only be the output layer")
        if layers[-1].kind != "dense":
            raise NIRError(f"{layers[-1].name}: the output layer must be dense (its neurons are the classes), "
                           "not a convolution: end the graph with Flatten -> Linear -> LIF/LI")
        if len({layer.reset for layer in layers if layer.neuron == "lif"}) > 1:
            raise NIRError("the spec has one reset for the whole network; these layers mix "
                           + ", ".join(f"{la.name}: {la.reset}" for la in layers if la.neuron == "lif"))
        object.__setattr__(self, "layers", layers)
        scale = _finite("input_scale", self.input_scale, "the network")
        if not scale > 0:
            raise NIRError(f"input_scale must be positive, not {scale!r}")
        object.__setattr__(self, "input_scale", scale)
        dt = _finite("dt", self.dt, "the network")
        if not dt > 0:
            raise NIRError(f"dt must be positive, not {dt!r}")
        object.__setattr__(self, "dt", dt)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.layers[0].n_in,) + tuple(layer.n_out for layer in self.layers)

    @property
    def readout(self) -> str:
        """The spec's readout: ``spike_count`` if the output layer fires, else ``membrane``."""
        return "spike_count" if self.layers[-1].neuron == "lif" else "membrane"

    @property
    def reset(self) -> str:
        return next((la.reset for la in self.layers if la.neuron == "lif"), "zero")


def current(layer: FloatLayer, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """``(B, n_neurons)``: the layer's input current without gain or bias, ``x @ W`` or the convolution of ``x``
    (B, n_in) read as ``(B, C, H, W)`` (zero padding), flattened channel-major. ``weight`` overrides the
    layer's (a scaled copy)."""
    w = layer.weight if weight is None else weight
    if layer.in_shape is None:
        return x @ w
    c, h, wd = layer.in_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    out = np.empty((x.shape[0], layer.n_neurons), dtype=np.result_type(x, w))
    # tensordot copies the windows (B, C, H_o, W_o, K, K): a few MiB at a time, not gigabytes for 10 k images
    rows = max(1, _WINDOW_ELEMENTS // (layer.n_neurons // layer.weight.shape[0] * layer.weight[0].size))
    for i in range(0, x.shape[0], rows):
        img = np.pad(x[i:i + rows].reshape(-1, c, h, wd), ((0, 0), (0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(img, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        part = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # B, H_o, W_o, C_out
        out[i:i + rows] = part.transpose(0, 3, 1, 2).reshape(part.shape[0], -1)
    return out


def emit(layer: FloatLayer, z: np.ndarray) -> np.ndarray:
    """``(B, n_out)``: what the next layer reads of the spikes ``z`` (B, n_neurons): the spikes themselves, or a
    convolution's spikes summed over non-overlapping ``pool x pool`` windows."""
    if layer.in_shape is None or layer.pool == 1:
        return z
    c, h, w = layer.conv_shape
    q = layer.pool
    return z.reshape(-1, c, h // q, q, w // q, q).sum(axis=(3, 5)).reshape(z.shape[0], -1)


def simulate(net: FloatNet, pixels, T: int, *, record: bool = False, dtype=np.float64):
    """Run ``net`` for ``T`` steps on 8-bit images ``pixels`` (B, n_0) with the same input every step.

    Returns the scores ``(B, C)`` (output spike counts, or the LI output membrane after the last step)
    and, with ``record=True``, also the per-step output ``(T, B, C)`` (spikes or membrane).
    Vectorised NumPy; float64 by default so that it is a reference, not a second approximation.
    """
    x = np.asarray(pixels, dtype=dtype) * dtype(net.input_scale)
    if x.ndim != 2 or x.shape[1] != net.sizes[0]:
        raise NIRError(f"pixels must have shape (B, {net.sizes[0]}), not {x.shape}")
    B = x.shape[0]
    ws = [layer.weight.astype(dtype) * dtype(layer.gain) for layer in net.layers]
    bs = [0.0 if layer.bias is None else layer.bias.astype(dtype) * dtype(layer.gain) for layer in net.layers]
    vs = [np.zeros((B, layer.n_neurons), dtype) for layer in net.layers]
    first = current(net.layers[0], x, ws[0]) + bs[0]  # the same current at every step
    score = np.zeros((B, net.sizes[-1]), dtype)
    steps = [] if record else None
    for _ in range(T):
        inp = None
        for i, layer in enumerate(net.layers):
            cur = first if i == 0 else current(layer, inp, ws[i]) + bs[i]
            v = vs[i] * dtype(layer.beta) + cur
            if layer.neuron == "lif":
                z = (v > layer.threshold).astype(dtype)
                v = np.where(z > 0, 0.0, v) if layer.reset == "zero" else v - dtype(layer.threshold) * z
                inp = emit(layer, z)
            else:
                inp = v
            vs[i] = v
        if net.readout == "spike_count":
            score += inp
        else:
            score = inp
        if record:
            steps.append(inp.copy())
    if record:
        return score, np.stack(steps)
    return score
