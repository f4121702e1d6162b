"""``sc-neurocore sim``: run test images through the generated core in Icarus or Verilator, checked bit-exactly.

Every output beat is compared, in order, with the golden model (class and
every score); with input gaps and back-pressure off, the measured cycles per
image are compared with the latency model too. Exit status 0 when everything
matched, 1 on any mismatch, 2 on a usage error.

``--jobs N`` (default: the CPUs this process may use) splits the images into
N contiguous shards, simulated at once by N simulator processes on one build,
and merges their results into one report (image indices global); with shaped
traffic shard k draws its gaps, back-pressure and reset points from a seed
derived from ``--seed`` and k (``sc_neurocore.sim.runner.shard_seed``).
"""

from __future__ import annotations

import argparse
import json
import sys

from .common import add_bundle_args, add_data_args, bundle_from_args, parse_sizes, test_set
from .hw import add_generator_args, core_config

__all__ = ["register"]


def _simulators(text: str) -> list[str]:
    from sc_neurocore.sim.runner import SIMULATORS

    sims = list(SIMULATORS) if text == "all" else [s.strip() for s in text.split(",") if s.strip()]
    for s in sims:
        if s not in SIMULATORS:
            raise ValueError(f"--simulator must be {', '.join(SIMULATORS)}, a comma-separated list or 'all', not {s!r}")
    if not sims:
        raise ValueError("--simulator must name at least one simulator")
    return sims


def _traffic(args):
    """The run's Traffic; its validation message names the command-line option (the fields share its names)."""
    from sc_neurocore.hw.stream import Traffic

    try:
        return Traffic(gaps=args.gaps, backpressure=args.backpressure, resets=args.resets, seed=args.seed)
    except ValueError as e:
        raise ValueError(f"--{e}") from None


def _cmd_sim(args) -> int:
    from sc_neurocore.sim.runner import run_regression

    sims = _simulators(args.simulator)
    traffic = _traffic(args)
    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be at least 1, not {args.n}")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1 (simulator processes), not {args.jobs}")
    if args.random is not None:
        from sc_neurocore.bundle import random_bundle

        if args.bundle is not None or args.pretrained is not None:
            raise ValueError("give a bundle, --pretrained NAME or --random SIZES, not several")
        sizes = parse_sizes(args.random, "--random")
        bundle = random_bundle(sizes, args.T, seed=args.seed)
    else:
        bundle = bundle_from_args(args)
    config = core_config(args)
    config.geometry(bundle.network)          # the options against the network, before the data is read
    _, x, y = test_set(args.dataset, args.data_dir, bundle, args.n)
    gen = config.to_dict()
    results = []
    ok = True
    for sim in sims:
        r = run_regression(bundle, x, y, simulator=sim, traffic=traffic, generator_options=gen, jobs=args.jobs)
        results.append(r)
        ok &= r["ok"]
        if not args.json:
            _print(r, args.show)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2, default=float))
    return 0 if ok else 1


def _print(r: dict, show: int) -> None:
    cyc = "" if r["cycles_mean"] is None else (
        f"cycles/image {r['cycles_mean']:.1f} (min {r['cycles_min']}, max {r['cycles_max']})"
        + (f", model {'agrees' if not r['cycle_mismatches'] else 'DISAGREES on %d' % r['cycle_mismatches']}"
           if r["cycles_checked"] else ", model not checked"))
    print(f"{r['simulator']:<10} vectors checked {r['vectors_checked']}/{r['n_images']}  "
          f"mismatches {r['mismatched_vectors']}  images/s {r['images_per_s'] or 0:,.1f}  "
          f"(sim {r['sim_wall_s'] or 0:.1f} s, build {r['build_s']:.1f} s)  {cyc}"
          + (f"  accuracy {100 * r['accuracy']:.2f} %" if "accuracy" in r else ""))
    if r.get("jobs", 1) > 1:
        per = ", ".join(f"{v or 0:,.1f}" for v in r["images_per_s_per_process"])
        print(f"  {r['jobs']} simulator processes: images/s per process {per}; total {r['images_per_s'] or 0:,.1f} "
              f"(slowest simulation {r['sim_wall_s'] or 0:.1f} s), {r['images_per_s_end_to_end'] or 0:,.1f} "
              f"end to end ({r['process_wall_s'] or 0:.1f} s with start-up)")
    if r.get("stalled"):
        print(f"  the core stalled: no progress for {r.get('stall_cycles')} cycles "
              f"({r['n_images'] - r['vectors_checked']} results never came out)")
    for m in r["mismatches"][:show]:
        print(f"  mismatch: image {m['index']} {m['field']}: expected {m['expected']}, got {m['got']}")
    if r.get("failed") and not r["mismatches"]:
        print(f"  simulation failed; see {r['case_dir']}/sim.log", file=sys.stderr)
        if r.get("log_tail"):
            print(r["log_tail"], file=sys.stderr)


def register(subparsers) -> None:
    p = subparsers.add_parser("sim", help="run test images through the generated core in Icarus/Verilator (cocotb)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bundle_args(p)
    p.add_argument("--random", metavar="SIZES", help="use a random bundle of these sizes (e.g. 784-128-10)")
    p.add_argument("--T", type=int, default=4, help="timesteps of the --random bundle (default 4)")
    add_data_args(p, default=None)
    p.add_argument("--simulator", default="verilator",
                   help="verilator (default), icarus, a comma-separated list, or all")
    p.add_argument("--n", type=int, default=None, help="number of test images (default: the whole test set)")
    p.add_argument("--gaps", type=float, default=0.0, help="probability of an idle gap before an input beat")
    p.add_argument("--backpressure", type=float, default=0.0, help="probability that m_axis_tready is low")
    p.add_argument("--resets", type=int, default=0, help="resets to inject in the middle of inferences")
    p.add_argument("--seed", type=int, default=0)
    add_generator_args(p)
    p.add_argument("--jobs", type=int, default=None,
                   help="simulator processes the images are split over (default: the number of CPU cores)")
    p.add_argument("--show", type=int, default=10, help="mismatches to print (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_cmd_sim)
