"""Simulation throughput of the generated core under the cocotb testbench (images/s per simulator).

    python benchmarks/bench_sim.py                       # 500 MNIST images on Verilator, 20 on Icarus
    python benchmarks/bench_sim.py --n verilator=10000 --n icarus=100 --json out.json

Uses the pretrained ``mnist-t4`` bundle when shipped, else a random
784-128-10 T=4 bundle (same core size). Every result is checked bit-exactly;
the build (Verilog generation + compile) is timed separately from the run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from sc_neurocore.bundle import pretrained_names, random_bundle, resolve_bundle
from sc_neurocore.data import load_mnist
from sc_neurocore.sim.runner import run_regression


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", action="append", default=[], metavar="SIM=N",
                   help="images per simulator (default verilator=500 icarus=20)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    counts = {"verilator": 500, "icarus": 20}
    for item in args.n:
        sim, _, n = item.partition("=")
        counts[sim] = int(n)
    counts = {s: n for s, n in counts.items() if n > 0}
    bundle = resolve_bundle(pretrained="mnist-t4") if "mnist-t4" in pretrained_names() else \
        random_bundle((784, 128, 10), 4, seed=0)
    ds = load_mnist()
    rows = []
    for sim, n in counts.items():
        r = run_regression(bundle, ds.test_x, ds.test_y, simulator=sim, n=n)
        r.pop("mismatches", None)
        rows.append(r)
        print(f"{sim:<10} n={n:<6} checked {r['vectors_checked']:<6} mismatches {r['mismatched_vectors']:<4} "
              f"{r['images_per_s']:8.1f} images/s  ({r['sim_wall_s']:.1f} s simulating, "
              f"{r['cycles_mean']:.1f} cycles/image, {r['images_per_s'] * r['cycles_mean']:,.0f} cycles/s; "
              f"build {r['build_s']:.1f} s, generate {r['generate_s']:.1f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "results": rows}, f, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
