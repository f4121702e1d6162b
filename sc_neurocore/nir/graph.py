"""NIR graphs <-> :class:`~sc_neurocore.nir.model.FloatNet` (the mapping of ``docs/nir.md`` §2).

Reading accepts exactly one chain ``Input [-> Flatten] -> (Affine | Linear) -> (LIF | IF | LI | I) -> ...
-> Output`` (``LI`` and ``I``, which do not fire, only as the output layer); every other structure or node type is refused with a :class:`NIRError` that names the node
and the field, never approximated. The NIR package (``nir``, HDF5 through ``h5py``) is imported
lazily, so the rest of sc_neurocore works without it.
"""

from __future__ import annotations

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
    "Conv2d": "weight (the NIR reader does not map convolutions yet, though bundles hold them: docs/nir.md §2)",
    "SumPool2d": "kernel_size (the NIR reader does not map pooling yet: docs/nir.md §2)",
    "AvgPool2d": "kernel_size (the NIR reader does not map pooling yet: docs/nir.md §2)",
    "NIRGraph": "nodes (nested subgraphs, e.g. recurrent layers, are not supported)",
}


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - nir is a dependency of the dev install
        raise NIRError("NIR support needs the 'nir' package: pip install 'sc_neurocore[nir]'") from None
    return nir


def _uniform(node_name: str, field: str, value, n: int | None) -> float:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        raise NIRError(f"node {node_name!r}: {field} is empty")
    if not np.all(np.isfinite(a)):
        raise NIRError(f"node {node_name!r}: {field} holds a non-finite value "
                       f"({float(a.flat[np.flatnonzero(~np.isfinite(a))[0]])!r})")
    if n is not None and a.size not in (1, n):
        raise NIRError(f"node {node_name!r}: {field} has {a.size} values but the layer has {n} neurons")
    first = float(a.flat[0])
    if a.size > 1 and not np.allclose(a, first, rtol=1e-6, atol=0.0):
        raise NIRError(f"node {node_name!r}: {field} differs between neurons ({float(a.min()):g} .. "
                       f"{float(a.max()):g}); a bundle holds one value per layer")
    return first


def _neuron(name: str, node, n: int, dt: float) -> dict:
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


def _weight(name: str, node, n_in: int | None, allow_bias: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    kind = type(node).__name__
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise NIRError(f"node {name!r}: weight must be 2-D (out, in), not shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise NIRError(f"node {name!r}: weight holds a non-finite value")
    if n_in is not None and w.shape[1] != n_in:
        raise NIRError(f"node {name!r}: weight takes {w.shape[1]} inputs but the previous node gives {n_in}")
    if kind == "Affine":
        b = np.asarray(node.bias, dtype=np.float64)
        if b.size not in (1, w.shape[0]):
            raise NIRError(f"node {name!r}: bias has {b.size} values for {w.shape[0]} outputs")
        if not np.all(np.isfinite(b)):
            raise NIRError(f"node {name!r}: bias holds a non-finite value")
        if np.any(b != 0) and allow_bias:
            return w.T, np.broadcast_to(b.reshape(-1), (w.shape[0],)).copy()
        if np.any(b != 0):
            raise NIRError(f"node {name!r}: bias is not zero (max |bias| = {float(np.abs(b).max()):g}); the spec "
                           "has no constant current. Train the model without biases (nn.Linear(..., bias=False)), "
                           "or use the graph as a teacher: sc-neurocore distill --teacher MODEL.nir")
    return w.T, None  # NIR: (out, in); the spec: input-major (in, out)


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
    whose exporter dropped its subtract reset) passes ``"subtract"``. ``allow_bias``: keep ``Affine`` biases
    (a distillation teacher may have them; a network to quantise may not).
    """
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"expected a nir.NIRGraph, not {type(graph).__name__}")
    order = _chain(graph)
    nodes = graph.nodes
    n_in = int(np.prod(_shape(nodes[order[0]].input_type))) if _shape(nodes[order[0]].input_type) else None
    layers, pending = [], None
    for name in order[1:-1]:
        node = nodes[name]
        kind = type(node).__name__
        if kind == "Flatten":
            if layers or pending is not None:
                raise NIRError(f"node {name!r} (Flatten) after a layer: only a Flatten of the input is supported")
            continue
        if kind in ("Affine", "Linear"):
            if pending is not None:
                raise NIRError(f"node {name!r} ({kind}) follows the linear node {pending[0]!r} without a neuron "
                               "in between")
            pending = (name, *_weight(name, node, n_in, allow_bias))
            continue
        if kind in ("LIF", "IF", "LI", "I"):
            if pending is None:
                raise NIRError(f"node {name!r} ({kind}) has no linear layer (Affine or Linear) before it")
            wname, w, bias = pending
            p = _neuron(name, node, w.shape[1], dt)
            p["bias"] = bias
            p["name"] = f"{wname}->{name}"
            if reset is not None and p["neuron"] == "lif":
                p["reset"] = reset
            layers.append(FloatLayer(w, **p))
            n_in, pending = w.shape[1], None
            continue
        raise NIRError(f"node {name!r} ({kind}) is not supported: only Input, Flatten, Affine, Linear, LIF, IF, LI, "
                       "I and Output nodes are")
    if pending is not None:
        raise NIRError(f"node {pending[0]!r}: a linear layer without a neuron before the Output node")
    out_shape = _shape(nodes[order[-1]].output_type)
    if layers and out_shape and int(np.prod(out_shape)) != layers[-1].n_out:
        raise NIRError(f"the Output node {order[-1]!r} has shape {out_shape} but the last layer has "
                       f"{layers[-1].n_out} neurons")
    return FloatNet(tuple(layers), input_scale=input_scale, dt=dt, source=source)


def to_graph(net: FloatNet, *, metadata: list[dict] | None = None):
    """The NIR graph of ``net``: ``Input -> Linear -> LIF|IF|LI -> ... -> Output`` (bias-free ``Linear``).

    Raises :class:`NIRError` for what NIR's LIF cannot express (``reset = subtract``). ``metadata``: one
    dict per layer, stored on its ``Linear`` node (the integer parameters, for an exact round trip).
    """
    nir = _nir()
    if net.reset == "subtract" and any(la.neuron == "lif" for la in net.layers):
        raise NIRError("reset 'subtract' cannot be expressed in NIR: its LIF and IF nodes reset hard to v_reset. "
                       "Train or distil the model with --reset zero to export it")
    dt = net.dt
    nodes = {"input": nir.Input(input_type={"input": np.array([net.sizes[0]])})}
    edges, prev = [], "input"
    for i, layer in enumerate(net.layers):
        n = layer.n_out
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
        nodes[f"fc{i}"] = nir.Linear(weight=np.ascontiguousarray(w.T, dtype=np.float32), metadata=meta)
        nodes[f"neuron{i}"] = node
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"neuron{i}")]
        prev = f"neuron{i}"
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
