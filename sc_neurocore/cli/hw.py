"""``sc-neurocore verilog`` and ``sc-neurocore latency``: the gateware generator's command line."""

from __future__ import annotations

import argparse
import json

from .common import add_bundle_args, bundle_from_args, test_set, positive_int, printable

__all__ = ["register"]


def _per_layer_arg(text: str):
    """``8`` or ``128,10`` (one per layer; ``-`` keeps a layer's default)."""
    parts = text.split(",")
    try:
        vals = [None if p.strip() in ("-", "") else int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or comma-separated integers, not {text!r}") from None
    return vals[0] if len(vals) == 1 else tuple(vals)


def add_generator_args(p: argparse.ArgumentParser) -> None:
    """The :class:`~sc_neurocore.hw.config.CoreConfig` options, shared by every command that builds a core."""
    p.add_argument("--lanes", type=_per_layer_arg, default=None,
                   help="neurons per cycle, one value or one per layer (default: all neurons)")
    p.add_argument("--events", type=_per_layer_arg, default=None,
                   help="input events per cycle (weight banks), one value or one per layer "
                        "(default: 2 for direct pixels, 4 for spikes)")
    p.add_argument("--pixels-per-beat", type=int, default=8, help="pixels per s_axis beat (default 8)")
    p.add_argument("--weight-port", action="store_true",
                   help="add a run-time write port to the weight memories (wgt_* ports)")
    p.add_argument("--weight-memory", choices=("block", "single_port"), default="block",
                   help="block: initialised block RAM (default); single_port: uninitialised single-port banks "
                        "(SPRAM on the ice40-up5k), written at run time through --weight-port")
    p.add_argument("--dsp-limit", type=int, default=None, metavar="N",
                   help="at most N pixel products as DSP multipliers; the rest from LUTs (default: all DSPs)")
    p.add_argument("--double-buffer", action="store_true",
                   help="a second set of layer-1 accumulators: the next image streams in while the current one "
                        "computes (direct pixel input, dense first layer)")


def core_config(args):
    from sc_neurocore.hw.config import CoreConfig

    return CoreConfig(lanes=args.lanes, events=args.events, pixels_per_beat=args.pixels_per_beat,
                      weight_port=bool(getattr(args, "weight_port", False)),
                      weight_memory=getattr(args, "weight_memory", "block"),
                      dsp_limit=getattr(args, "dsp_limit", None),
                      double_buffer=bool(getattr(args, "double_buffer", False)))


def _cmd_verilog(args) -> int:
    from sc_neurocore.hw.export import TOP_NAME, generate_verilog

    from ..fileio import atomic_output_dir, check_output_dir

    out = check_output_dir(args.output)      # not a file, link or device: before any work
    bundle = bundle_from_args(args)
    config = core_config(args)
    config.geometry(bundle.network)          # validate against the network before any output
    # Generate into a fresh folder that takes the place of ``out`` in one
    # rename: the folder gets the Verilog and both reports, or (on an error or
    # Ctrl-C) stays as it was; the user's other files in it are kept.
    with atomic_output_dir(out) as tmp:
        rep = generate_verilog(bundle, tmp, config=config)
    if args.json:
        print(json.dumps(rep, indent=2, sort_keys=True))
    else:
        lat = rep["latency"]
        print(f"wrote {printable(out / (TOP_NAME + '.v'))}  ({'-'.join(map(str, rep['sizes']))}, T={rep['T']}, "
              f"{rep['encoding']}, readout={rep['readout']})")
        print(f"s_axis_tdata {rep['s_axis_tdata_width']} bits ({rep['pixels_per_beat']} pixels/beat), "
              f"m_axis_tdata {rep['m_axis_tdata_width']} bits")
        print("lanes  " + " ".join(str(ld["lanes"]) for ld in rep["layers"]) +
              "   events/cycle  " + " ".join(str(ld["events"]) for ld in rep["layers"]))
        print(f"latency worst case {lat['worst_case_cycles']} cycles (lower bound {lat['lower_bound_cycles']})")
    return 0


def _cmd_latency(args) -> int:
    from sc_neurocore.hw.latency import latency_report, latency_summary

    positive_int("--limit", args.limit)
    bundle = bundle_from_args(args)
    net = bundle.network
    config = core_config(args)
    config.geometry(net)
    rep = latency_report(net, config)
    result = {"worst_case_cycles": rep["worst_case_cycles"], "lower_bound_cycles": rep["lower_bound_cycles"]}
    if args.dataset or args.data_dir:
        name, x, _ = test_set(args.dataset, args.data_dir, bundle, args.limit)
        result["typical"] = latency_summary(net, config, x)
        result["dataset"] = name
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    print(f"network {'-'.join(map(str, net.sizes))}  T={net.T}  encoding={net.encoding}")
    print(f"worst case   {result['worst_case_cycles']} cycles  (lower bound {result['lower_bound_cycles']})")
    if "typical" in result:
        s = result["typical"]
        print(f"typical      mean {s['mean_cycles']:.1f}  median {s['median_cycles']:.0f}  "
              f"max {s['max_cycles']} cycles over {s['n']} {printable(result['dataset'])} test images "
              f"(mean lower bound {s['mean_lower_bound_cycles']:.1f})")
        print(f"back to back {s['stream_cycles_per_image']:.1f} cycles per image"
              + ("  (double-buffered input)" if config.double_buffer else ""))
    return 0


def register(subparsers) -> None:
    from sc_neurocore.hw.stream import TOP_NAME

    q = subparsers.add_parser("verilog", help=f"generate the Verilog LIF core ({TOP_NAME}) for a bundle")
    add_bundle_args(q)
    q.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    add_generator_args(q)
    q.add_argument("--json", action="store_true", help="print the whole report as JSON")
    q.set_defaults(func=_cmd_verilog)

    q = subparsers.add_parser("latency", help="worst-case and typical cycles per image of the generated core")
    add_bundle_args(q)
    add_generator_args(q)
    q.add_argument("--dataset", default=None, help="measure typical latency on this dataset's test set (e.g. mnist)")
    q.add_argument("--data-dir", metavar="DIR", help="folder of MNIST-format IDX files instead of --dataset")
    q.add_argument("--limit", type=int, help="only the first N test images")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_latency)

