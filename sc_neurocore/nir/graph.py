"""NIR graphs <-> :class:`~sc_neurocore.nir.model.FloatNet` (the mapping of ``docs/nir.md`` §2).

Reading accepts exactly one chain ``Input [-> Flatten] -> (Affine | Linear | Conv2d) -> (LIF | IF | LI | I)
[-> SumPool2d | AvgPool2d] [-> Flatten] -> ... -> Output`` (``LI`` and ``I``, which do not fire, only as the
output layer; pooling only after a convolution's neurons); every other structure or node type is refused
with a :class:`NIRError` that names the node and the field, never approximated. The NIR package (``nir``, HDF5 through ``h5py``) is imported
lazily, so the rest of sc_neurocore works without it.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from .model import FloatLayer, FloatNet, NIRError

__all__ = ["SUPPORTED_VERSIONS", "from_graph", "to_graph", "read_graph", "graph_bytes", "import_nir"]

#: The per-step leak an exported layer without leak gets (NIR's IF/I nodes break snnTorch's importer).
NO_LEAK = 2.0 ** -24

#: NIR file versions this reader understands (the major version of the format).
SUPPORTED_VERSIONS = ("1",)

#: Node types that have a meaning the spec cannot hold, and the field that says why.
_UNREPRESENTABLE = {
    "CubaLIF": "tau_syn (a synaptic current state: the spec's neurons have none)",
    "CubaLI": "tau_syn (a synaptic current state: the spec's neurons have none)",
    "Delay": "delay (the spec has no synaptic delays)",
    "Threshold": "threshold (a stateless threshold has no membrane)",
    "Scale": "scale (an elementwise scale between layers)",
    "Conv1d": "weight (1-D convolutions are not in the spec: docs/fixed_point.md §1.1 has 2-D ones)",
    "NIRGraph": "nodes (nested subgraphs, e.g. recurrent layers, are not supported)",
}


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - nir is a dependency of the dev install
        raise NIRError("NIR support needs the 'nir' package: pip install 'sc_neurocore[nir]'") from None
    return nir


def _uniform(node_name: str, field: str, value, n: int | tuple[int, ...] | None) -> float:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        raise NIRError(f"node {node_name!r}: {field} is empty")
    if not np.all(np.isfinite(a)):
        raise NIRError(f"node {node_name!r}: {field} holds a non-finite value "
                       f"({float(a.flat[np.flatnonzero(~np.isfinite(a))[0]])!r})")
    sizes = (n,) if isinstance(n, int) else n
    if sizes is not None and a.size not in (1, *sizes):
        raise NIRError(f"node {node_name!r}: {field} has {a.size} values but the layer has {sizes[0]} neurons"
                       + (f" ({sizes[1]} channels)" if len(sizes) > 1 else ""))
    first = float(a.flat[0])
    if a.size > 1 and not np.allclose(a, first, rtol=1e-6, atol=0.0):
        raise NIRError(f"node {node_name!r}: {field} differs between neurons ({float(a.min()):g} .. "
                       f"{float(a.max()):g}); a bundle holds one value per layer")
    return first


def _neuron(name: str, node, n: int | tuple[int, ...], dt: float) -> dict:
    """The per-step ``beta``, ``gain``, ``threshold`` of a LIF / IF / LI node (Euler with ``dt``)."""
    kind = type(node).__name__
    out: dict = {"name": name}
    if kind in ("LIF", "LI"):
        tau = _uniform(name, "tau", node.tau, n)
        r = _uniform(name, "r", node.r, n)
        v_leak = _uniform(name, "v_leak", node.v_leak, n)
        if v_leak != 0.0:
            raise NIRError(f"node {name!r}: v_leak = {v_leak:g}; the spec's membrane decays towards 0 "
                           "(only v_leak = 0 is representable)")
        if not tau > 0:
            raise NIRError(f"node {name!r}: tau must be positive, not {tau:g}")
        if tau < dt:
            raise NIRError(f"node {name!r}: tau = {tau:g} is shorter than the time step dt = {dt:g} "
                           "(beta = 1 - dt/tau would be negative); pass the dt the model was exported with")
        out.update(beta=1.0 - dt / tau, gain=dt * r / tau)
    elif kind in ("IF", "I"):
        r = _uniform(name, "r", node.r, n)
        out.update(beta=1.0, gain=dt * r)
    else:
        raise NIRError(f"node {name!r}: expected a neuron (LIF, IF, LI or I) after a linear layer, found {kind}")
    if out["gain"] <= 0:
        raise NIRError(f"node {name!r}: r must be positive (the input gain dt*r/tau is {out['gain']:g})")
    if kind in ("LI", "I"):
        out.update(neuron="li", threshold=None)
    else:
        th = _uniform(name, "v_threshold", node.v_threshold, n)
        v_reset = _uniform(name, "v_reset", node.v_reset, n) if getattr(node, "v_reset", None) is not None else 0.0
        if v_reset != 0.0:
            raise NIRError(f"node {name!r}: v_reset = {v_reset:g}; the spec resets to 0 (reset 'zero') or by "
                           "subtracting the threshold, so only v_reset = 0 is representable")
        if not th > 0:
            raise NIRError(f"node {name!r}: v_threshold must be positive, not {th:g}")
        out.update(neuron="lif", threshold=th)
    return out


def _bias(name: str, node, n_out: int, allow_bias: bool) -> np.ndarray | None:
    """An ``Affine`` / ``Conv2d`` bias: ``None`` when zero; refused when not, unless ``allow_bias`` (a teacher)."""
    b = np.asarray(node.bias, dtype=np.float64)
    if b.size not in (1, n_out):
        raise NIRError(f"node {name!r}: bias has {b.size} values for {n_out} outputs")
    if not np.all(np.isfinite(b)):
        raise NIRError(f"node {name!r}: bias holds a non-finite value")
    if not np.any(b != 0):
        return None
    if allow_bias:
        return np.broadcast_to(b.reshape(-1), (n_out,)).copy()
    layer = "nn.Conv2d(..., bias=False)" if type(node).__name__ == "Conv2d" else "nn.Linear(..., bias=False)"
    raise NIRError(f"node {name!r}: bias is not zero (max |bias| = {float(np.abs(b).max()):g}); the spec "
                   f"has no constant current. Train the model without biases ({layer}), "
                   "or use the graph as a teacher: sc-neurocore distill --teacher MODEL.nir")


def _weight(name: str, node, n_in: int | None, allow_bias: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    kind = type(node).__name__
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise NIRError(f"node {name!r}: weight must be 2-D (out, in), not shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise NIRError(f"node {name!r}: weight holds a non-finite value")
    if n_in is not None and w.shape[1] != n_in:
        raise NIRError(f"node {name!r}: weight takes {w.shape[1]} inputs but the previous node gives {n_in}")
    bias = _bias(name, node, w.shape[0], allow_bias) if kind == "Affine" else None
    return w.T, bias  # NIR: (out, in); the spec: input-major (in, out)


def _pair(name: str, field: str, value) -> int:
    """One int from NIR's ``int | (int, int)`` fields; different height and width values are refused."""
    a = np.asarray(value).reshape(-1)
    if a.size not in (1, 2) or not np.all(a == np.rint(a.astype(np.float64))):
        raise NIRError(f"node {name!r}: {field} must be an integer or a pair of integers, not {value!r}")
    if a.size == 2 and a[0] != a[1]:
        raise NIRError(f"node {name!r}: {field} = {tuple(int(v) for v in a)} differs between height and width; "
                       "the spec's convolutions and pools are square")
    return int(a[0])


def _conv(name: str, node, shape: tuple[int, ...], allow_bias: bool) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """``(weight (C_out, C_in, K, K), bias, geometry)`` of a ``Conv2d`` node reading data of ``shape``."""
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 4:
        raise NIRError(f"node {name!r}: weight must be (C_out, C_in, K, K), not shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise NIRError(f"node {name!r}: weight holds a non-finite value")
    if int(getattr(node, "groups", 1)) != 1:
        raise NIRError(f"node {name!r}: groups = {node.groups}; the spec's convolutions connect every input "
                       "channel (groups = 1)")
    if _pair(name, "dilation", getattr(node, "dilation", 1)) != 1:
        raise NIRError(f"node {name!r}: dilation = {node.dilation!r}; only dilation 1 is in the spec")
    k, stride = w.shape[2], _pair(name, "stride", node.stride)
    if isinstance(node.padding, str):
        if node.padding == "valid":
            padding = 0
        elif k % 2 and stride == 1:  # 'same' keeps the size: K//2 on each side for an odd K
            padding = k // 2
        else:
            raise NIRError(f"node {name!r}: padding 'same' with a {k}x{k} kernel and stride {stride} pads unevenly; "
                           "the spec pads every side by the same amount")
    else:
        padding = _pair(name, "padding", node.padding)
    in_shape = shape if len(shape) == 3 else None
    spatial = getattr(node, "input_shape", None)
    if spatial is not None:
        h, wd = (int(v) for v in np.asarray(spatial).reshape(-1)[:2])
        from_node = (w.shape[1], h, wd)
        if in_shape is not None and in_shape != from_node:
            raise NIRError(f"node {name!r}: input_shape {from_node} does not match the data it reads, {in_shape}")
        if in_shape is None and shape and int(np.prod(shape)) != int(np.prod(from_node)):
            raise NIRError(f"node {name!r}: reads {int(np.prod(from_node))} values {from_node} but the previous "
                           f"node gives {int(np.prod(shape))}")
        in_shape = from_node
    if in_shape is None:
        raise NIRError(f"node {name!r}: the input's (C, H, W) is unknown: give the Input node a 3-D input_type or "
                       "the Conv2d node its input_shape")
    geometry = {"in_shape": in_shape, "stride": stride, "padding": padding}
    return w, _bias(name, node, w.shape[0], allow_bias), geometry


def _chain(graph) -> list[str]:
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind in _UNREPRESENTABLE:
            raise NIRError(f"node {name!r} ({kind}) is not supported: {_UNREPRESENTABLE[kind]}")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        if len(e) != 2 or e[0] not in nodes or e[1] not in nodes:
            raise NIRError(f"edge {tuple(e)!r} names a node the graph does not have")
        succ[e[0]].append(e[1])
        pred[e[1]].append(e[0])
    inputs = [n for n, v in nodes.items() if type(v).__name__ == "Input"]
    outputs = [n for n, v in nodes.items() if type(v).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the graph must have exactly one Input and one Output node, found {len(inputs)} input(s) "
                       f"{inputs} and {len(outputs)} output(s) {outputs}")
    order, seen, cur = [], set(), inputs[0]
    while True:
        if cur in seen:
            raise NIRError(f"the graph has a cycle through node {cur!r} (recurrent edges are not supported)")
        seen.add(cur)
        order.append(cur)
        if cur == outputs[0]:
            break
        nxt = succ[cur]
        if len(nxt) != 1:
            raise NIRError(f"node {cur!r} has {len(nxt)} successors {nxt}; only a chain of layers is supported"
                           if nxt else f"node {cur!r} leads nowhere: the Output node is not reachable")
        if len(pred[nxt[0]]) != 1:
            raise NIRError(f"node {nxt[0]!r} has {len(pred[nxt[0]])} inputs {pred[nxt[0]]}; only a chain of "
                           "layers is supported (no merges, no recurrent edges)")
        cur = nxt[0]
    if succ[outputs[0]]:
        raise NIRError(f"the Output node {outputs[0]!r} has successors {succ[outputs[0]]} (a recurrent edge?)")
    unused = sorted(set(nodes) - seen)
    if unused:
        raise NIRError(f"nodes {unused} are not on the path from Input to Output")
    return order


def _shape(t) -> tuple[int, ...]:
    v = t.get("input", t.get("output")) if isinstance(t, dict) else t
    return tuple(int(x) for x in np.asarray(v).reshape(-1)) if v is not None else ()


def from_graph(graph, *, dt: float = 1e-4, input_scale: float = 1.0 / 255.0, reset: str | None = None,
               source: str = "nir", allow_bias: bool = False) -> FloatNet:
    """The :class:`FloatNet` of a NIR graph (``docs/nir.md`` §2).

    ``dt``: the time step the exporter assumed (snnTorch: 1e-4, Norse: 1e-3); NIR does not store it.
    ``reset``: NIR resets hard to ``v_reset`` (``"zero"``); a caller that knows better (a framework module
    whose exporter dropped its subtract reset) passes ``"subtract"``. ``allow_bias``: keep ``Affine`` /
    ``Conv2d`` biases (a distillation teacher may have them; a network to quantise may not).

    A ``SumPool2d`` after a convolution's neurons is that layer's ``pool``; an ``AvgPool2d`` is the same pool
    with its ``1/q^2`` folded into the next layer's weights (spec §6.1: the pool is a sum).
    """
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"expected a nir.NIRGraph, not {type(graph).__name__}")
    order = _chain(graph)
    nodes = graph.nodes
    shape = _shape(nodes[order[0]].input_type)  # the data between nodes, without the batch axis; () unknown
    layers: list[FloatLayer] = []
    pending = None  # (linear node, weight, bias, geometry) awaiting its neuron node
    fold, after_neuron = 1.0, False  # fold: an AvgPool's 1/q^2 for the next layer; a pool may follow a neuron
    for name in order[1:-1]:
        node = nodes[name]
        kind = type(node).__name__
        if pending is not None and kind not in ("LIF", "IF", "LI", "I"):
            raise NIRError(f"node {name!r} ({kind}) follows the linear node {pending[0]!r} without a neuron "
                           "in between")
        if kind == "Flatten":
            start = int(getattr(node, "start_dim", 0))
            if len(shape) > 1 and start not in (0, -len(shape)):
                raise NIRError(f"node {name!r} (Flatten): start_dim = {start} keeps axes of {shape}; only a "
                               "flatten of the whole (C, H, W) is supported (channel-major, the spec's order)")
            shape = (int(np.prod(shape)),) if shape else ()
            after_neuron = False
            continue
        if kind in ("SumPool2d", "AvgPool2d"):
            if not after_neuron or layers[-1].kind != "conv" or layers[-1].pool != 1:
                raise NIRError(f"node {name!r} ({kind}): pooling is supported only right after a convolution's "
                               "neurons (the spec sum-pools a conv layer's spikes)")
            q = _pair(name, "kernel_size", node.kernel_size)
            if _pair(name, "stride", node.stride) != q:
                raise NIRError(f"node {name!r} ({kind}): stride {node.stride!r} differs from kernel_size "
                               f"{node.kernel_size!r}; the spec's pooling windows do not overlap")
            if _pair(name, "padding", node.padding) != 0:
                raise NIRError(f"node {name!r} ({kind}): padding = {node.padding!r}; the spec's pooling does not pad")
            try:
                layers[-1] = dataclasses.replace(layers[-1], pool=q)
            except NIRError as e:
                raise NIRError(f"node {name!r} ({kind}): kernel_size {q}: {e}") from None
            if kind == "AvgPool2d":
                fold = 1.0 / (q * q)
            shape, after_neuron = layers[-1].out_shape, False
            continue
        after_neuron = False
        if kind in ("Affine", "Linear"):
            if len(shape) > 1:
                raise NIRError(f"node {name!r} ({kind}) reads {shape} data: put a Flatten before it (channel-major, "
                               "the spec's order)")
            w, bias = _weight(name, node, shape[0] if shape else None, allow_bias)
            pending = (name, w * fold, bias, {})
            fold = 1.0
            continue
        if kind == "Conv2d":
            w, bias, geometry = _conv(name, node, shape, allow_bias)
            pending = (name, w * fold, bias, geometry)
            fold = 1.0
            continue
        if kind in ("LIF", "IF", "LI", "I"):
            if pending is None:
                raise NIRError(f"node {name!r} ({kind}) has no linear layer (Affine, Linear or Conv2d) before it")
            wname, w, bias, geometry = pending
            try:
                probe = FloatLayer(w, name=f"{wname}->{name}", **geometry)  # the geometry's own checks
            except NIRError as e:
                raise NIRError(f"node {wname!r}: {str(e).split(': ', 1)[-1]}") from None
            sizes = (probe.n_neurons, w.shape[0]) if geometry else probe.n_neurons
            p = _neuron(name, node, sizes, dt)
            p["bias"] = bias
            p["name"] = f"{wname}->{name}"
            if reset is not None and p["neuron"] == "lif":
                p["reset"] = reset
            layers.append(FloatLayer(w, **p, **geometry))
            shape, pending, after_neuron = layers[-1].out_shape, None, True
            continue
        raise NIRError(f"node {name!r} ({kind}) is not supported: only Input, Flatten, Affine, Linear, Conv2d, "
                       "SumPool2d, AvgPool2d, LIF, IF, LI, I and Output nodes are")
    if pending is not None:
        raise NIRError(f"node {pending[0]!r}: a linear layer without a neuron before the Output node")
    out_shape = _shape(nodes[order[-1]].output_type)
    if layers and out_shape and int(np.prod(out_shape)) != layers[-1].n_out:
        raise NIRError(f"the Output node {order[-1]!r} has shape {out_shape} but the last layer has "
                       f"{layers[-1].n_out} neurons")
    return FloatNet(tuple(layers), input_scale=input_scale, dt=dt, source=source)


def to_graph(net: FloatNet, *, metadata: list[dict] | None = None):
    """The NIR graph of ``net``: ``Input -> Linear -> LIF|IF|LI -> ... -> Output`` (bias-free ``Linear``); a conv
    layer is ``Conv2d -> LIF [-> SumPool2d] [-> Flatten]`` (bias-free, ``dilation = groups = 1``).

    Raises :class:`NIRError` for what NIR's LIF cannot express (``reset = subtract``). ``metadata``: one
    dict per layer, stored on its ``Linear`` / ``Conv2d`` node (the integer parameters, for an exact round trip).
    """
    nir = _nir()
    if net.reset == "subtract" and any(la.neuron == "lif" for la in net.layers):
        raise NIRError("reset 'subtract' cannot be expressed in NIR: its LIF and IF nodes reset hard to v_reset. "
                       "Train or distil the model with --reset zero to export it")
    for a, b in zip(net.layers, net.layers[1:]):
        if a.kind == "dense" and b.kind == "conv":
            raise NIRError(f"{b.name}: a convolution reading a dense layer's spikes cannot be written to NIR: it has "
                           "no node that reshapes a vector into (C, H, W) (NIR's graphs are type-checked)")
    dt = net.dt
    first = net.layers[0]
    nodes = {"input": nir.Input(input_type={"input": np.array(first.in_shape or [net.sizes[0]])})}
    edges, prev = [], "input"
    for i, layer in enumerate(net.layers):
        n = layer.conv_shape if layer.kind == "conv" else layer.n_out
        meta = dict(metadata[i]) if metadata else {}
        full = lambda v: np.full(n, float(v), dtype=np.float32)  # noqa: E731 - frameworks want full arrays
        # r = 1 and the gain folded into the weights (gain = dt*r/tau): Norse's importer ignores r,
        # snnTorch's divides the threshold by dt*r/tau; with r = 1 both simulate what NIR says.
        # 1/(1 - beta) = 2^k is a power of two, so the folded weights stay exact in float32.
        # No leak (beta = 1) is written as a leak of 2^-24 per step (tau = 2^24 dt), not as NIR's IF / I:
        # snnTorch 1.0 imports IF as a leaky beta = 0.9 neuron and asserts r = 1 on it. 1 - 2^-24 is the
        # float32 number next to 1; over T steps it differs from no leak by T * 6e-8 of the membrane.
        beta = layer.beta if layer.beta < 1.0 else 1.0 - NO_LEAK
        tau = dt / (1.0 - beta)
        w = layer.weight * (layer.gain * tau / dt)
        if layer.neuron == "li":
            node = nir.LI(tau=full(tau), r=full(1.0), v_leak=full(0.0))
        else:
            node = nir.LIF(tau=full(tau), r=full(1.0), v_leak=full(0.0), v_threshold=full(layer.threshold),
                           v_reset=full(0.0))
        if layer.kind == "conv":
            # a SumPool2d for the spec's pool, then a Flatten (channel-major) before a dense layer
            lin = f"conv{i}"
            nodes[lin] = nir.Conv2d(input_shape=layer.in_shape[1:], weight=np.ascontiguousarray(w, dtype=np.float32),
                                    stride=layer.stride, padding=layer.padding, dilation=1, groups=1,
                                    bias=np.zeros(layer.weight.shape[0], dtype=np.float32), metadata=meta)
        else:
            lin = f"fc{i}"
            nodes[lin] = nir.Linear(weight=np.ascontiguousarray(w.T, dtype=np.float32), metadata=meta)
        nodes[f"neuron{i}"] = node
        edges += [(prev, lin), (lin, f"neuron{i}")]
        prev = f"neuron{i}"
        if layer.kind == "conv" and layer.pool > 1:
            q = np.array([layer.pool, layer.pool])
            nodes[f"pool{i}"] = nir.SumPool2d(kernel_size=q, stride=q, padding=np.array([0, 0]))
            edges.append((prev, f"pool{i}"))
            prev = f"pool{i}"
        if layer.kind == "conv" and net.layers[i + 1].kind == "dense":
            nodes[f"flatten{i}"] = nir.Flatten(input_type={"input": np.array(layer.out_shape)}, start_dim=0)
            edges.append((prev, f"flatten{i}"))
            prev = f"flatten{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([net.sizes[-1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={})


def graph_bytes(graph) -> bytes:
    """The HDF5 bytes ``nir.write`` produces for ``graph`` (written to memory: callers write atomically)."""
    nir = _nir()
    buf = io.BytesIO()
    nir.write(buf, graph)
    return buf.getvalue()


def read_graph(path):
    """Read a NIR file, refusing with a :class:`NIRError` naming the file what is not one we read."""
    nir = _nir()
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NIR file not found: {path}")
    if not path.is_file():
        raise NIRError(f"{path} is not a NIR file (it is not a regular file)")
    if not h5py.is_hdf5(path):
        raise NIRError(f"{path} is not a NIR file (not HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if "version" not in f or "node" not in f:
                raise NIRError(f"{path} is an HDF5 file but not a NIR graph (no 'version' and 'node' entries)")
            raw = f["version"][()]
        version = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
    except NIRError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises many types for damaged files
        raise NIRError(f"{path}: cannot read the HDF5 file: {e}") from None
    if version.split(".")[0] not in SUPPORTED_VERSIONS:
        raise NIRError(f"{path}: NIR version {version!r} is not supported (this reader reads "
                       f"{', '.join(v + '.x' for v in SUPPORTED_VERSIONS)})")
    try:
        return nir.read(path)
    except Exception as e:  # noqa: BLE001 - nir.read raises KeyError/ValueError/AssertionError on bad graphs
        msg = " ".join(str(e).split()) or type(e).__name__
        raise NIRError(f"{path}: not a valid NIR graph: {type(e).__name__}: {msg[:300]}") from None


def import_nir(path, **kw) -> FloatNet:
    """:func:`from_graph` of the graph in the NIR file ``path``."""
    return from_graph(read_graph(path), **kw)
