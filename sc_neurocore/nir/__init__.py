"""NIR interop: bring a model from snnTorch, Norse or any NIR exporter; export bundles back to NIR.

``docs/nir.md`` is the mapping (what each NIR node and field becomes, what is refused, and why)::

    from_nir(graph_or_path, calib_pixels, T=...)  -> (NetworkParams, Quantised | None)   post-training
    to_nir(bundle)                                 -> nir.NIRGraph
    from_snntorch(module) / from_norse(module)     -> FloatNet           (bypassing their exporters)

The ``nir`` package is imported only when a graph is read or built.
"""

from __future__ import annotations

from .graph import SUPPORTED_VERSIONS, from_graph, graph_bytes, import_nir, read_graph, to_graph
from .model import FloatLayer, FloatNet, NIRError, simulate
from .quantize import BETA_TOLERANCE, Quantised, dequantize, exact_network, leak_shift, metadata_of, quantize

__all__ = ["NIRError", "FloatLayer", "FloatNet", "simulate", "from_graph", "to_graph", "read_graph", "import_nir",
           "graph_bytes", "quantize", "dequantize", "leak_shift", "Quantised", "BETA_TOLERANCE",
           "SUPPORTED_VERSIONS", "to_nir", "from_nir", "network_from_graph"]


def to_nir(bundle_or_params, *, dt: float = 1e-4, input_scale: float = 1.0 / 255.0):
    """The NIR graph of a bundle (or ``NetworkParams``): bias-free ``Linear`` + ``LIF``/``IF``/``LI`` nodes whose
    float dynamics follow the integer network (``docs/nir.md`` §4); each ``Linear`` node's metadata holds the
    integer parameters, so :func:`network_from_graph` gives the same network back."""
    params = getattr(bundle_or_params, "network", bundle_or_params)
    return to_graph(dequantize(params, dt=dt, input_scale=input_scale), metadata=metadata_of(params))


def network_from_graph(graph, calib_pixels=None, *, T: int | None = None, dt: float = 1e-4,
                       input_scale: float = 1.0 / 255.0, reset: str | None = None, weight_bits: int = 8,
                       membrane_bits: int = 16, allow_approx: bool = False):
    """``(NetworkParams, Quantised | None, FloatNet)`` of a NIR graph: the exact integer network when the graph
    was exported by this tool (and ``T`` is not changed), else post-training quantisation calibrated on
    ``calib_pixels``."""
    net = from_graph(graph, dt=dt, input_scale=input_scale, reset=reset)
    exact = exact_network(graph, net)
    if exact is not None and (T is None or T == exact.T):
        return exact, None, net
    if T is None:
        raise NIRError("T (the number of timesteps of the integer network) is needed for a graph that was not "
                       "exported by sc_neurocore")
    if calib_pixels is None:
        raise NIRError("calibration images are needed to quantise a float graph")
    q = quantize(net, calib_pixels, T, weight_bits=weight_bits, membrane_bits=membrane_bits,
                 allow_approx=allow_approx)
    return q.network, q, net


def from_nir(graph_or_path, calib_pixels=None, *, T: int | None = None, **kw):
    """``(NetworkParams, Quantised | None)`` of a NIR graph or ``.nir`` file: the exact network of a graph this
    tool exported, else post-training quantisation at ``T`` calibrated on ``calib_pixels`` (keyword options:
    those of :func:`network_from_graph`)."""
    graph = graph_or_path
    if isinstance(graph_or_path, (str, bytes)) or hasattr(graph_or_path, "__fspath__"):
        graph = read_graph(graph_or_path)
    params, q, _ = network_from_graph(graph, calib_pixels, T=T, **kw)
    return params, q
