"""``sc-neurocore info``, ``eval`` and ``random-bundle``: describe, score and make bundles."""

from __future__ import annotations

import json
import sys
import time

from .common import (add_bundle_args, add_data_args, bundle_from_args, test_set, parse_sizes, positive_int,
                     printable, _progress)


def _cmd_info(args) -> int:
    from ..bundle import pretrained_names

    if args.list or (args.bundle is None and args.pretrained is None):
        names = pretrained_names()
        print("pretrained bundles: " + (", ".join(names) if names else "none"))
        return 0
    b = bundle_from_args(args)
    net = b.network
    out = {
        "sizes": list(net.sizes), "T": net.T, "encoding": net.encoding, "reset": net.reset,
        "readout": net.readout, "rate_seed": net.rate_seed, "input_bits": net.input_bits,
        "layers": [{"kind": layer.kind, "weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
                    "threshold": layer.threshold, "leak_shift": layer.leak_shift,
                    "current_shift": layer.current_shift,
                    "weight_range": [int(layer.weight.min()), int(layer.weight.max())],
                    "accumulator_bits": layer.accumulator_format(net.input_max(i)).width,
                    "neurons": layer.n_neurons, **_geometry(layer)}
                   for i, layer in enumerate(net.layers)],
        "provenance": b.provenance,
    }
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        bits = f" ({net.input_bits}-bit inputs)" if net.input_bits != 8 else ""
        print(f"network   {'-'.join(map(str, net.sizes))}  T={net.T}  encoding={net.encoding}{bits}  "
              f"reset={net.reset}  readout={net.readout}")
        for i, ld in enumerate(out["layers"]):
            conv = ""
            if ld["kind"] == "conv":
                shape = "x".join(map(str, ld["in_shape"]))
                conv = (f"conv {ld['channels']}C{ld['kernel']} stride {ld['stride']} padding {ld['padding']} "
                        f"pool {ld['pool']}  {shape} -> {'x'.join(map(str, ld['out_shape']))}  ")
            print(f"layer {i}   {conv}w=s{ld['weight_bits']} {ld['weight_range']}  v=s{ld['membrane_bits']}  "
                  f"theta={ld['threshold']}  leak>>>{ld['leak_shift']}  current>>>{ld['current_shift']}  "
                  f"acc={ld['accumulator_bits']} bits")
        rows = [(printable(k), printable(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False,
                                                                                   sort_keys=True)))
                for k, v in sorted(b.provenance.items())]
        width = max([8] + [len(k) for k, _ in rows])  # "network   " and "layer 0   " are 10 wide
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    return 0


def _geometry(layer) -> dict:
    """A conv layer's shape fields for ``info`` (nothing for a dense layer: its sizes say it all)."""
    if layer.kind != "conv":
        return {}
    return {"in_shape": list(layer.in_shape), "channels": layer.channels, "kernel": layer.kernel,
            "stride": layer.stride, "padding": layer.padding, "pool": layer.pool,
            "conv_shape": list(layer.conv_shape), "out_shape": list(layer.out_shape)}


def _cmd_eval(args) -> int:
    from ..golden import infer

    positive_int("--limit", args.limit)
    bs = positive_int("--batch-size", args.batch_size, allow_none=False)
    b = bundle_from_args(args)
    _, x, y = test_set(args.dataset, args.data_dir, b, args.limit)
    correct = 0
    spikes = [0] * len(b.network.layers)
    t0 = time.perf_counter()
    chunks = range(0, len(x), bs)
    for i in _progress(chunks, len(chunks), "eval", args.quiet):
        r = infer(b.network, x[i:i + bs], batch_size=bs)
        correct += int((r.classes == y[i:i + bs]).sum())
        for li, c in enumerate(r.spike_counts):
            spikes[li] += int(c.sum())
    dt = time.perf_counter() - t0
    n = len(x)
    acc = correct / n
    result = {"n": n, "accuracy": acc, "images_per_s": n / dt if dt > 0 else None,
              "mean_spikes_per_layer": [s / n for s in spikes], "T": b.network.T}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"accuracy  {100 * acc:.2f} %  ({correct}/{n})  T={b.network.T}")
        for li, s in enumerate(spikes):
            kind = "spikes" if b.network.spiking(li) else "(non-spiking readout layer)"
            print(f"layer {li}   mean {s / n:.2f} {kind} per image")
        if dt > 0:
            print(f"speed     {n / dt:,.0f} images/s (golden model)")
    return 0


def _cmd_random(args) -> int:
    from ..bundle import random_bundle, save_bundle
    from ..fileio import check_output_file

    sizes = parse_sizes(args.sizes)
    out = check_output_file(args.output)   # before any work: not a link, device, FIFO or folder
    b = random_bundle(sizes, args.T, weight_bits=args.weight_bits, seed=args.seed, encoding=args.encoding,
                      reset=args.reset, readout=args.readout, input_bits=args.input_bits)
    save_bundle(b, out)
    print(f"wrote {printable(out)}")
    return 0


def register(sub) -> None:
    q = sub.add_parser("info", help="describe a bundle, or list the pretrained ones")
    add_bundle_args(q)
    q.add_argument("--list", action="store_true", help="list pretrained bundles")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_info)

    q = sub.add_parser("eval", help="accuracy of a bundle on a test set with the golden integer model")
    add_bundle_args(q)
    add_data_args(q, default=None)
    q.add_argument("--limit", type=int, help="only the first N test images")
    q.add_argument("--batch-size", type=int, default=2000, help="images per golden-model batch (default 2000)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_eval)

    q = sub.add_parser("random-bundle", help="write a bundle with random integer weights (for trying the flow)")
    q.add_argument("-o", "--output", required=True, help="the .scnb file to write")
    q.add_argument("--sizes", default="784-128-10", help="layer sizes, input first (default 784-128-10)")
    q.add_argument("--T", type=int, default=4)
    q.add_argument("--weight-bits", type=int, default=8)
    q.add_argument("--input-bits", type=int, default=8, help="direct encoding: pixel bits layer 1 sees (default 8)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--encoding", default="direct")
    q.add_argument("--reset", default="subtract")
    q.add_argument("--readout", default="membrane")
    q.set_defaults(func=_cmd_random)
