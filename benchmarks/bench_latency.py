"""Exact cycle counts of the generated core for the pretrained MNIST bundles (T = 1, 2, 4, 8, 32, and mnist-t4-lite).

For each generator configuration: worst case over all inputs, lower bound for the
lane/bank configuration, and mean / max over the 10 000 MNIST test images, from the
exact latency model (equal to RTL simulation, see tests/test_hw_latency.py and the cocotb
regression). Writes benchmarks/results/latency.json and prints a markdown table.
"""

import json
from pathlib import Path

from sc_neurocore.bundle import resolve_bundle
from sc_neurocore.data import load_mnist
from sc_neurocore.golden import infer
from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.hw.latency import latency_summary

CONFIGS = {
    "default (lanes 128,10; events 2,4: 256 multipliers)": CoreConfig(),
    "ecp5-85f (lanes 128,10; events 1,4: 128 multipliers)": CoreConfig(lanes=(128, 10), events=(1, 4)),
    "small (lanes 16,10; events 1,4: 16 multipliers)": CoreConfig(lanes=(16, 10), events=(1, 4)),
}
#: the compact bundle (1-bit inputs, 4-bit weights) in its ECP5-25F configuration
LITE = ("mnist-t4-lite", "ecp5-25f lite (lanes 16,10; events 8,8: 128 gated adders)",
        CoreConfig(lanes=(16, 10), events=(8, 8)))


def main():
    ds = load_mnist()
    rows = []
    runs = [(f"mnist-t{T}", name, cfg) for T in (1, 2, 4, 8, 32) for name, cfg in CONFIGS.items()] + [LITE]
    for bundle, name, cfg in runs:
        b = resolve_bundle(pretrained=bundle)
        T = b.network.T
        acc = float((infer(b.network, ds.test_x).classes == ds.test_y).mean())
        s = latency_summary(b.network, cfg, ds.test_x)
        rows.append({"T": T, "bundle": bundle, "config": name, "accuracy": acc, **s})
        print(f"T={T:<3} {name:<55} worst {s['worst_case_cycles']:>5}  mean {s['mean_cycles']:7.1f}  "
              f"max {s['max_cycles']:>5}  bound(worst input) {s['lower_bound_cycles']}", flush=True)
    out = Path(__file__).parent / "results" / "latency.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n| T | bundle | configuration | accuracy | worst case | lower bound | typical mean | typical max |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['T']} | {r['bundle']} | {r['config']} | {100 * r['accuracy']:.2f} % | {r['worst_case_cycles']} | "
              f"{r['lower_bound_cycles']} | {r['mean_cycles']:.1f} | {r['max_cycles']} |")


if __name__ == "__main__":
    main()
