"""NIR interop targets (issue "NIR interop", docs/nir.md §7): models trained in snnTorch 1.0 and Norse 1.1 on
MNIST, brought in post-training and by distillation, and bundles exported back; 3 seeds each.

    python benchmarks/nir_interop.py [--seeds 0 1 2] [--epochs 1] [--out benchmarks/results/nir_interop.json]

Per framework and seed:
  * the float model's test accuracy at its own T (T_F = 16), in the framework itself;
  * ``import-nir`` (snnTorch: through snnTorch's exporter; Norse: read from the module) at T_F, 8-bit:
    agreement with the framework's own predictions and the integer accuracy;
  * ``distill --teacher model.nir --teacher-T 16 --T 4`` (3 epochs, zero reset, 784-128-10 student):
    the T=4 integer accuracy against the float model's;
  * ``export-nir`` of that student, re-imported by snnTorch's ``import_from_nir`` and Norse's ``from_nir``:
    class agreement with the golden model on the 10 000 test images.
Results are written after every row (a long run leaves what it measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

T_F = 16
HIDDEN = 128


def _train(model, run, data, epochs, seed, lr):
    from snntorch import functional as SF

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = SF.ce_rate_loss()
    x = torch.tensor(data.train_x, dtype=torch.float32) / 255
    y = torch.tensor(data.train_y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            loss = loss_fn(run(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def snn_run(model):
    from sc_neurocore.nir.frameworks import run_snntorch

    return lambda xb, steps=T_F: run_snntorch(model, xb, steps)


def norse_run(model):
    from sc_neurocore.nir.frameworks import run_norse

    return lambda xb, steps=T_F: run_norse(model, xb, steps)


def classes(run, pixels, steps=T_F):
    with torch.no_grad():
        out = []
        for i in range(0, len(pixels), 2000):
            out.append(run(torch.tensor(pixels[i:i + 2000], dtype=torch.float32) / 255, steps).sum(0).argmax(1))
        return torch.cat(out).numpy()


def make_snntorch(seed):
    import snntorch as snn

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(784, HIDDEN, bias=False), snn.Leaky(beta=0.875, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(HIDDEN, 10, bias=False),
        snn.Leaky(beta=0.875, init_hidden=True, reset_mechanism="zero", output=True))


def make_norse(seed):
    import norse.torch as norse

    torch.manual_seed(seed)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(125.0))  # dt * tau_mem_inv = 1/8: beta = 0.875
    m = norse.SequentialState(torch.nn.Linear(784, HIDDEN, bias=False), norse.LIFBoxCell(p, dt=1e-3),
                              torch.nn.Linear(HIDDEN, 10, bias=False), norse.LIFBoxCell(p, dt=1e-3))
    with torch.no_grad():  # gain 1/8 per step: start with weights that make the layers fire
        m[0].weight.mul_(8.0)
        m[2].weight.mul_(8.0)
    return m


def row(framework, seed, data, epochs, work: Path) -> dict:
    from sc_neurocore.bundle import load_bundle
    from sc_neurocore.cli import main
    from sc_neurocore.golden import infer
    from sc_neurocore.nir import graph_bytes, quantize, to_graph
    from sc_neurocore.nir.frameworks import from_norse, snntorch_to_nir

    r = {"framework": framework, "seed": seed, "T_float": T_F, "hidden": HIDDEN, "epochs": epochs}
    t0 = time.perf_counter()
    if framework == "snntorch":
        model = make_snntorch(seed)
        run = snn_run(model)
        model = _train(model, run, data, epochs, seed, 5e-3)
        graph = snntorch_to_nir(model, 784)
    else:
        model = make_norse(seed)
        run = norse_run(model)
        model = _train(model, run, data, epochs, seed, 5e-3)
        # Norse's to_nir output cannot be written (docs/nir.md §5): the graph of the module as read here,
        # written with snnTorch's dt (beta and the gain are what the module's dt gives; NIR stores no dt)
        graph = to_graph(dataclasses.replace(from_norse(model), dt=1e-4))
    r["train_s"] = time.perf_counter() - t0
    x, y = data.test_x, data.test_y
    ref = classes(run, x)
    r["float_accuracy"] = float(np.mean(ref == y))
    nir_path = work / f"{framework}-{seed}.nir"
    nir_path.write_bytes(graph_bytes(graph))
    out = work / f"{framework}-{seed}.scnb"
    assert main(["import-nir", str(nir_path), "-o", str(out), "--T", str(T_F)]) == 0
    b = load_bundle(out)
    icls = infer(b.network, x).classes
    r["import_agreement"] = float(np.mean(icls == ref))
    r["import_accuracy"] = float(np.mean(icls == y))
    r["import_calibration_agreement"] = b.provenance["calibration"]["agreement"]
    # distil a T=4 student from the float graph (zero reset, so that it can be exported back)
    st = work / f"{framework}-{seed}-t4.scnb"
    t0 = time.perf_counter()
    assert main(["distill", "--teacher", str(nir_path), "--teacher-T", str(T_F), "--T", "4", "--epochs", "3",
                 "--hidden", str(HIDDEN), "--reset", "zero", "--readout", "spike_count", "--seed", str(seed),
                 "--quiet", "-o", str(st)]) == 0
    r["distill_s"] = time.perf_counter() - t0
    sb = load_bundle(st)
    scls = infer(sb.network, x).classes
    r["distilled_t4_accuracy"] = float(np.mean(scls == y))
    # and the same student architecture trained without the teacher
    sc = work / f"{framework}-{seed}-t4-scratch.scnb"
    assert main(["train", "--T", "4", "--epochs", "3", "--hidden", str(HIDDEN), "--reset", "zero",
                 "--readout", "spike_count", "--seed", str(seed), "--quiet", "-o", str(sc)]) == 0
    r["scratch_t4_accuracy"] = float(np.mean(infer(load_bundle(sc).network, x).classes == y))
    # export the student and run it in both frameworks
    ex = work / f"{framework}-{seed}-t4.nir"
    assert main(["export-nir", str(st), "-o", str(ex)]) == 0
    from sc_neurocore.nir import read_graph

    g = read_graph(ex)
    import io
    import contextlib

    from snntorch.import_nir import import_from_nir
    import norse.torch as norse

    with contextlib.redirect_stdout(io.StringIO()):
        m = import_from_nir(g)
    r["export_agreement_snntorch"] = float(np.mean(classes(snn_run(m), x, 4) == scls))
    m = norse.from_nir(g, dt=1e-4)
    r["export_agreement_norse"] = float(np.mean(classes(norse_run(m), x, 4) == scls))
    _ = quantize  # (imported for the reader: the post-training path is import-nir's)
    return r


def summary(rows: list[dict]) -> str:
    keys = ["float_accuracy", "import_accuracy", "import_agreement", "distilled_t4_accuracy", "scratch_t4_accuracy",
            "export_agreement_snntorch", "export_agreement_norse"]
    lines = ["| framework | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for fw in sorted({r["framework"] for r in rows}):
        rs = [r for r in rows if r["framework"] == fw]
        cells = []
        for k in keys:
            v = np.array([r[k] for r in rs]) * 100
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f}")
        lines.append(f"| {fw} ({len(rs)} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--frameworks", nargs="+", default=["snntorch", "norse"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/nir_interop.json"))
    args = ap.parse_args(argv)
    from sc_neurocore.train import prepare_data

    torch.set_num_threads(2)
    data = prepare_data("mnist", None, None)
    rows = []
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        for fw in args.frameworks:
            for seed in args.seeds:
                rows.append(row(fw, seed, data, args.epochs, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                           "torch": torch.__version__, "rows": rows,
                                           "summary_markdown": summary(rows)}, indent=2) + "\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main_())
