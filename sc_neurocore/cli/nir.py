"""``sc-neurocore import-nir`` and ``export-nir``: models from snnTorch, Norse or any NIR exporter in, bundles out.

``docs/nir.md`` is the mapping. ``import-nir`` reads a ``.nir`` graph (or a ``.pt`` of a snnTorch / Norse
module), quantises it after training (calibrated on training images), prints the integer model's agreement
with the float model and both accuracies on the test set, and writes a bundle; ``export-nir`` writes a
bundle's NIR graph.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from .common import add_bundle_args, add_data_args, bundle_from_args, check_test_set, positive_int, printable


def _positive_float(name: str, value) -> float:
    import math

    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return float(value)


def load_float_net(path, *, dt: float | None, input_scale: float, reset: str | None, allow_approx: bool = False):
    """The :class:`~sc_neurocore.nir.FloatNet` of a ``.nir`` file or a ``.pt`` snnTorch / Norse module, and
    the source's name (``nir``, ``snntorch``, ``norse``)."""
    from ..nir import import_nir

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if path.suffix == ".pt":
        from ..nir.frameworks import load_module, from_module

        module = load_module(path)
        return from_module(module, input_scale=input_scale, allow_approx=allow_approx)
    return import_nir(path, dt=1e-4 if dt is None else dt, input_scale=input_scale, reset=reset)


def _cmd_import(args) -> int:
    from ..bundle import Bundle, save_bundle
    from ..data import load_dataset
    from ..fileio import check_output_file
    from ..golden import infer
    from ..nir import quantize, read_graph, simulate
    from ..nir.quantize import exact_network

    out = check_output_file(args.output)  # before any work: not a link, device, FIFO or folder
    positive_int("--calib", args.calib, allow_none=False)
    positive_int("--limit", args.limit)
    if args.T is not None:
        from ..params import check_T

        check_T(args.T, "--T")
    dt = None if args.dt is None else _positive_float("--dt", args.dt)
    scale = _positive_float("--input-scale", args.input_scale)
    net = load_float_net(args.model, dt=dt, input_scale=scale, reset=args.reset, allow_approx=args.allow_approx)
    ds = load_dataset(args.dataset, args.data_dir)
    if ds.train_x.shape[1] != net.sizes[0]:
        raise ValueError(f"the model takes {net.sizes[0]} inputs but {printable(ds.name)} images have "
                         f"{ds.train_x.shape[1]} pixels")
    calib = ds.train_x[:args.calib]
    x, y = ds.test_x, ds.test_y
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    t0 = time.perf_counter()
    q = None
    params = None
    if Path(args.model).suffix != ".pt":
        graph = read_graph(args.model)
        params = exact_network(graph, net)
        if params is not None and args.T is not None and args.T != params.T:
            params = None
    if params is None:
        if args.T is None:
            raise ValueError("--T is needed: the number of timesteps of the integer network (a graph exported by "
                             "sc-neurocore export-nir carries its own)")
        q = quantize(net, calib, args.T, weight_bits=args.weight_bits, membrane_bits=args.membrane_bits,
                     allow_approx=args.allow_approx)
        params = q.network
    check_test_set(ds, x, y, params)
    float_T = args.float_T or params.T
    fcls = np.argmax(simulate(net, x, float_T), axis=1)
    icls = infer(params, x).classes
    agree = float(np.mean(fcls == icls))
    facc, iacc = float(np.mean(fcls == y)), float(np.mean(icls == y))
    seconds = time.perf_counter() - t0
    digest = hashlib.sha256(Path(args.model).read_bytes()).hexdigest()
    prov = {"method": "import-nir", "source": {"file": Path(args.model).name, "sha256": digest, "kind": net.source,
                                               "dt": net.dt, "input_scale": net.input_scale, "float_T": float_T},
            "dataset": ds.name, "test_images": int(len(x)), "test_accuracy": iacc,
            "float_test_accuracy": facc, "float_agreement": agree}
    if q is not None:
        prov["calibration"] = {"images": int(len(calib)), "agreement": q.calibration_agreement,
                               "beta_error": [float(d["beta_error"]) for d in q.layers]}
    save_bundle(Bundle(params, prov), out)
    print(f"model     {printable(Path(args.model).name)} ({net.source}): {'-'.join(map(str, net.sizes))}, "
          f"readout {net.readout}, reset {net.reset}, dt {net.dt:g}")
    if q is None:
        print("integer   the exact network the graph was exported from (sc_neurocore metadata)")
    else:
        for d in q.layers:
            print(f"layer     {printable(d['name'])}: beta {d['beta']:.6g} -> leak>>>{d['leak_shift']} "
                  f"(error {d['beta_error']:.2g}), current>>>{d['current_shift']}, theta {d['threshold']}")
        print(f"calibrated on {len(calib)} training images: {100 * q.calibration_agreement:.2f} % agreement")
    print(f"test set  {len(x)} images: float model {100 * facc:.2f} % (T={float_T}), integer model "
          f"{100 * iacc:.2f} % (T={params.T}), agreement {100 * agree:.2f} %  ({seconds:.1f} s)")
    print(f"wrote {printable(out)}")
    return 0


def _cmd_export(args) -> int:
    from ..fileio import atomic_write_bytes, check_output_file
    from ..nir import graph_bytes, to_nir

    out = check_output_file(args.output)
    dt = _positive_float("--dt", args.dt)
    scale = _positive_float("--input-scale", args.input_scale)
    b = bundle_from_args(args)
    data = graph_bytes(to_nir(b, dt=dt, input_scale=scale))
    atomic_write_bytes(out, data)
    net = b.network
    print(f"wrote {printable(out)}  ({'-'.join(map(str, net.sizes))}, T={net.T} is not part of a NIR graph: "
          f"run it for {net.T} steps; dt {dt:g}, input = pixel * {scale:g})")
    return 0


def register(sub) -> None:
    q = sub.add_parser("import-nir", help="quantise a NIR graph (or a snnTorch / Norse .pt module) into a bundle")
    q.add_argument("model", help="a .nir file (NIR 1.x HDF5) or a .pt of a snnTorch / Norse module")
    q.add_argument("-o", "--output", required=True, help="the .scnb bundle to write")
    q.add_argument("--T", type=int, help="timesteps of the integer network (default: the graph's own when it "
                                          "was exported by sc-neurocore)")
    q.add_argument("--float-T", type=int, help="timesteps the float model is simulated for (default: --T)")
    q.add_argument("--dt", type=float, help="the time step the exporter assumed (default 1e-4, snnTorch's; "
                                            "Norse uses 1e-3)")
    q.add_argument("--input-scale", type=float, default=1 / 255,
                   help="the float input for an 8-bit pixel p is p * SCALE (default 1/255: ToTensor images)")
    q.add_argument("--reset", choices=("zero", "subtract"),
                   help="override the reset (NIR's LIF resets to v_reset: 'zero'; snnTorch's exporter writes "
                        "that even for a subtract-reset model)")
    q.add_argument("--weight-bits", type=int, default=8)
    q.add_argument("--membrane-bits", type=int, default=16)
    q.add_argument("--allow-approx", action="store_true",
                   help="accept a leak beta that no shift represents exactly (the error is reported)")
    q.add_argument("--calib", type=int, default=2000, help="training images to calibrate the shifts on (default 2000)")
    q.add_argument("--limit", type=int, help="only the first N test images for the report")
    add_data_args(q)
    q.set_defaults(func=_cmd_import)

    q = sub.add_parser("export-nir", help="write a bundle's network as a NIR graph")
    add_bundle_args(q)
    q.add_argument("-o", "--output", required=True, help="the .nir file to write")
    q.add_argument("--dt", type=float, default=1e-4, help="time step of the exported LIF nodes (default 1e-4)")
    q.add_argument("--input-scale", type=float, default=1 / 255,
                   help="the graph's input for an 8-bit pixel p is p * SCALE (default 1/255)")
    q.set_defaults(func=_cmd_export)
