"""Golden-model throughput: images/s on the 10k MNIST test set at several T (batch of 10 k), and the shipped
conv bundles on their 10k test sets (issue target: >= 5 000 images/s for ``fmnist-conv-t4``).

Writes benchmarks/results/golden.json and prints a markdown table. Uses a
pretrained bundle when one is shipped for that T, else a random 784-128-10
bundle (throughput depends on sizes and T, not on the weight values, except
for the spiking activity of the hidden layer, which the table reports).
"""

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from sc_neurocore.bundle import pretrained_names, random_bundle, resolve_bundle
from sc_neurocore.data import load_fashion_mnist, load_mnist
from sc_neurocore.golden import infer

OUT = Path(__file__).parent / "results" / "golden.json"


def bench(net, x, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = infer(net, x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best, r


def main():
    ds = load_mnist()
    x, y = ds.test_x, ds.test_y
    rows = []
    for T in (1, 2, 4, 8, 32):
        name = f"mnist-t{T}"
        if name in pretrained_names():
            b, src = resolve_bundle(pretrained=name), name
        else:
            b, src = random_bundle((784, 128, 10), T, seed=0), "random 784-128-10"
        for enc in ("direct", "rate"):
            net = b.network if enc == b.network.encoding else type(b.network)(
                b.network.layers, T, enc, b.network.reset, b.network.readout, b.network.rate_seed)
            ips, r = bench(net, x)
            rows.append({"T": T, "encoding": enc, "bundle": src, "images_per_s": round(ips),
                         "accuracy": float(np.mean(r.classes == y)) if enc == b.network.encoding else None,
                         "hidden_spikes_per_image": float(r.spike_counts[0].sum(1).mean())})
            print(f"T={T:<3} {enc:<7} {ips:>10,.0f} images/s  ({src})", flush=True)
    # The events input kind (issue target: >= 20 000 samples/s at T=4 for a 784-128-10-sized network):
    # mnist-saccade test recordings binned into 4 one-bit bins, through a random 784-128-10 events network
    # (the first 784 of the 2 312 inputs: the same activity) and a 2312-128-10 one.
    from sc_neurocore.train import prepare_data

    ev = prepare_data("mnist-saccade", None, None, bins=4, input_bits=1).test_x
    for sizes, xx in (((784, 128, 10), np.ascontiguousarray(ev[:, :, :784])), ((2312, 128, 10), ev)):
        net = random_bundle(sizes, 4, seed=0, encoding="events", input_bits=1).network
        ips, r = bench(net, xx)
        rows.append({"T": 4, "encoding": "events", "bundle": f"random {'-'.join(map(str, sizes))}",
                     "images_per_s": round(ips), "accuracy": None,
                     "hidden_spikes_per_image": float(r.spike_counts[0].sum(1).mean())})
        print(f"T=4   events  {ips:>10,.0f} samples/s  (random {'-'.join(map(str, sizes))}, mnist-saccade)", flush=True)
    for name, load in (("fmnist-conv-t4", load_fashion_mnist), ("mnist-conv-t4", load_mnist)):
        cds = load()
        net = resolve_bundle(pretrained=name).network
        ips, r = bench(net, cds.test_x)
        rows.append({"T": net.T, "encoding": net.encoding, "bundle": name, "images_per_s": round(ips),
                     "accuracy": float(np.mean(r.classes == cds.test_y)),
                     "hidden_spikes_per_image": float(r.spike_counts[0].sum(1).mean())})
        print(f"T={net.T:<3} {net.encoding:<7} {ips:>10,.0f} images/s  ({name})", flush=True)
    from bench_train import _cpu_model  # this folder is on sys.path when the script runs

    meta = {"machine": platform.processor() or platform.machine(), "cpu": _cpu_model(), "cpus": os.cpu_count(),
            "batch": len(x), "numpy": np.__version__}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print("\n| T | encoding | network | images/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['T']} | {r['encoding']} | {r['bundle']} | {r['images_per_s']:,} |")


if __name__ == "__main__":
    main()
