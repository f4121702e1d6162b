#!/usr/bin/env python
"""The seed tutorial's literal case at longer budgets: a 784-512-10 T=32 teacher -> a 784-32-10 T=4 student.

Issue 16 asks for >= 97.0 % (MNIST, integer test accuracy) for the 784-32-10 student at T=4 and a distillation
gain of >= 0.5 points over the same student from scratch. ``docs/kd_study.md`` measures it at the study's
3-epoch budget (rate + spike_count); these rows are direct encoding with a membrane readout (the better setting
for a small network) at 15 and 30 epochs, 3 seeds, every student from random weights (the sizes differ), best
validation epoch:

==================  ======================================================================================
``scratch-e15``     ``train``, 15 epochs
``average-e15``     ``distill --method average`` from the 784-512-10 T=32 teacher (15 epochs, peak LR 2e-3)
``temporal-e15``    ``distill --method temporal``, the same
``scratch-e30``     ``train`` with label smoothing 0.1, 30 epochs (the control of the two rows below)
``teacher-e30``     the best-T=4 recipe (``average``, alpha 0.5, temperature 3, label smoothing 0.1, 30 epochs)
                    from the 784-512-10 T=32 teacher
``cnn-e30``         the same recipe from a float CNN teacher (``train --ann --epochs 8 --lr 1e-3``)
==================  ======================================================================================

Each run's result (integer test accuracy with the golden model, validation accuracy, best epoch, command) is
recorded as ``benchmarks/results/small/ROW-sSEED.json``; the table (mean ± std over the recorded seeds) goes into
``docs/results.md`` (``benchmarks/table.py``). Runs already in ``--work`` are recorded, not rerun.

    python benchmarks/small_student.py --seeds 0 1 2      # run what is missing, record, print the table
    python benchmarks/small_student.py --table            # the table of what is recorded
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "small"
STUDENT = ["--T", "4", "--sizes", "784-32-10", "--readout", "membrane", "--threads", "1", "--quiet"]
KD = ["--init", "random", "--lr", "2e-3"]
RECIPE = ["--method", "average", "--alpha", "0.5", "--temperature", "3", "--label-smoothing", "0.1", *KD]
#: the teachers, trained once (seed 0) and read by the rows: stem -> command
TEACHERS = {
    "teacher": ["train", "--T", "32", "--sizes", "784-512-10", "--readout", "membrane", "--epochs", "15",
                "--threads", "1", "--quiet"],
    "cnn": ["train", "--ann", "--epochs", "8", "--lr", "1e-3", "--threads", "1", "--quiet"],
}
#: row -> (output stem, label, command without seed and output)
ROWS = {
    "scratch-e15": ("scratch", "from scratch, 15 epochs", ["train", *STUDENT, "--epochs", "15"]),
    "average-e15": ("average", "`average` KD, 15 epochs",
                    ["distill", "--teacher", "{work}/teacher.pt", *STUDENT, "--method", "average", *KD,
                     "--epochs", "15"]),
    "temporal-e15": ("temporal", "`temporal` KD, 15 epochs",
                     ["distill", "--teacher", "{work}/teacher.pt", *STUDENT, "--method", "temporal", *KD,
                      "--epochs", "15"]),
    "scratch-e30": ("r-scratch", "from scratch, label smoothing 0.1, 30 epochs",
                    ["train", *STUDENT, "--label-smoothing", "0.1", "--lr", "2e-3", "--epochs", "30"]),
    "teacher-e30": ("r-teacher", "best-T=4 recipe from the T=32 teacher, 30 epochs",
                    ["distill", "--teacher", "{work}/teacher.pt", *STUDENT, *RECIPE, "--epochs", "30"]),
    "cnn-e30": ("r-cnn", "best-T=4 recipe from a float CNN teacher, 30 epochs",
                ["distill", "--teacher", "{work}/cnn.pt", *STUDENT, *RECIPE, "--epochs", "30"]),
}


def _run(argv: list[str]) -> None:
    from sc_neurocore.cli import main

    if main(argv) != 0:
        raise SystemExit(f"failed: sc-neurocore {' '.join(argv)}")


def record(row: str, seed: int, path: Path) -> dict:
    from sc_neurocore.bundle import load_bundle

    prov = load_bundle(path).provenance
    if prov.get("seed") != seed:
        raise SystemExit(f"{path} was trained with seed {prov.get('seed')}, not {seed}")
    out = {k: prov[k] for k in ("test_accuracy", "val_accuracy", "best_epoch", "command", "torch_version")}
    out.update(row=row, seed=seed, teacher=(prov.get("teacher") or {}).get("test_accuracy"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{row}-s{seed}.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return out


def run(seeds, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for stem, cmd in TEACHERS.items():
        if not (work / f"{stem}.pt").is_file():
            _run([*cmd, "-o", str(work / f"{stem}.scnb")])
    for seed in seeds:
        for row, (stem, _, cmd) in ROWS.items():
            out = work / f"{stem}-{seed}.scnb"
            if not out.is_file():
                _run([a.replace("{work}", str(work)) for a in cmd] + ["--seed", str(seed), "-o", str(out)])
            record(row, seed, out)


def _mean_std(v: list[float]) -> str:
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.2f}"


def table() -> str:
    lines = ["| student (784-32-10, T=4, direct + membrane) | integer test accuracy | seeds | per seed | "
             "vs. from scratch at the same budget |", "|---|---|---|---|---|"]
    rows = {r: sorted((json.loads(p.read_text()) for p in RESULTS.glob(f"{r}-s*.json")), key=lambda d: d["seed"])
            for r in ROWS}
    for row, (_, label, _) in ROWS.items():
        got = rows[row]
        if not got:
            continue
        acc = [100 * d["test_accuracy"] for d in got]
        base = rows["scratch-e15" if row.endswith("e15") else "scratch-e30"]
        paired = [100 * (d["test_accuracy"] - b["test_accuracy"]) for d in got for b in base if b["seed"] == d["seed"]]
        diff = "" if row.startswith("scratch") or not paired else f"{statistics.mean(paired):+.2f} (paired, n = {len(paired)})"
        lines.append(f"| {label} | {_mean_std(acc)} % | {len(acc)} | {', '.join(f'{a:.2f}' for a in acc)} | {diff} |")
    return "\n".join(lines)


def section() -> str:
    """The "Small student" section of ``docs/results.md`` (rendered by ``benchmarks/table.py``)."""
    teacher = [d["teacher"] for p in RESULTS.glob("average-e15-s*.json") for d in [json.loads(p.read_text())]
               if d.get("teacher")]
    t = f" (teacher: {100 * teacher[0]:.2f} %)" if teacher else ""
    return "\n".join([
        "## Small student: 784-512-10 at T=32 → 784-32-10 at T=4", "",
        f"`python benchmarks/small_student.py` (per-run JSON in `benchmarks/results/small/`): direct input, membrane "
        f"readout, every student from random weights, best validation epoch{t}. Issue 16's target for this "
        "student is ≥ 97.0 % with a distillation gain of ≥ 0.5 points.", "", table()])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--work", default=str(ROOT / "build" / "small-student"), help="scratch folder (bundles, checkpoints)")
    p.add_argument("--table", action="store_true", help="only print the table of what is recorded")
    args = p.parse_args(argv)
    if not args.table:
        run(args.seeds, Path(args.work))
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
