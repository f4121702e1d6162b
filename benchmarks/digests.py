"""Digests of every output a refactor must not change: `python benchmarks/digests.py OUT.json`.

For every shipped bundle: its file bytes, the bytes it re-saves to, the
golden scores and the latency model's cycles on 1 000 MNIST test images plus
an all-zero and an all-255 image, and the generated Verilog under three core
configurations; plus the bundle bytes of a short seeded `train` and `distill`
run (one thread: same torch, CPU kind and threads give the same bytes).
Record it before a structural change and compare after (`diff`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def ints(a) -> bytes:
    return np.ascontiguousarray(a, dtype="<i8").tobytes()


def main(out_path: str) -> None:
    from sc_neurocore.bundle import bundle_bytes, load_bundle, pretrained_names, pretrained_path
    from sc_neurocore.data import load_mnist
    from sc_neurocore.golden import infer
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.export import verilog_text
    from sc_neurocore.hw.latency import image_cycles

    x = load_mnist().test_x[:1000]
    x = np.concatenate([x, np.zeros((1, 784), np.uint8), np.full((1, 784), 255, np.uint8)])
    configs = {"default": CoreConfig(), "16,10/1,4": CoreConfig(lanes=(16, 10), events=(1, 4)),
               "16,10/8,8": CoreConfig(lanes=(16, 10), events=(8, 8))}
    out: dict = {"bundles": {}}
    for name in pretrained_names():
        p = pretrained_path(name)
        b = load_bundle(p)
        row = {"file": sha(p.read_bytes()), "resaved": sha(bundle_bytes(b)),
               "scores": sha(ints(infer(b.network, x).scores))}
        for cname, cfg in configs.items():
            row[f"cycles {cname}"] = sha(ints(image_cycles(b.network, cfg, x)))
            row[f"verilog {cname}"] = sha(verilog_text(b.network, cfg).encode())
        out["bundles"][name] = row
        print(name, row, flush=True)
    with tempfile.TemporaryDirectory() as d:
        cli = [sys.executable, "-m", "sc_neurocore.cli"]
        common = ["--limit", "600", "--epochs", "1", "--threads", "1", "--seed", "0", "--quiet"]
        subprocess.run(cli + ["train", "--T", "8", "--hidden", "32", *common, "-o", f"{d}/t.scnb"], check=True)
        subprocess.run(cli + ["distill", "--teacher", f"{d}/t.pt", "--T", "2", *common, "-o", f"{d}/s.scnb"],
                       check=True)
        for k in ("t", "s"):
            b = load_bundle(f"{d}/{k}.scnb")
            # provenance holds wall-clock training time: digest the network and the rest of the provenance
            prov = {key: v for key, v in b.provenance.items() if "seconds" not in key and key != "command"}
            out[f"train {k}"] = {"weights": sha(b"".join(ints(layer.weight) for layer in b.network.layers)),
                                 "provenance": sha(json.dumps(prov, sort_keys=True).encode())}
            print(k, out[f"train {k}"], flush=True)
    Path(out_path).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "digests.json")
