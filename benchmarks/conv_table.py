#!/usr/bin/env python
"""Accuracy of the convolutional recipes over seeds: ``fmnist-conv-t4`` and ``mnist-conv-t4`` (``make pretrained``).

Seed 0 is the shipped bundle; seeds 1 and 2 are the same recipe with ``--seed`` (``benchmarks/pretrained.py --only
NAME --seed S --work W --dest D``). Each seed's result (integer test accuracy with the golden model, validation
accuracy, best epoch, command) is recorded as ``benchmarks/results/conv/NAME-sSEED.json`` when its bundle is
given, and the table (mean ± std over what is recorded) is printed as markdown.

    python benchmarks/conv_table.py --bundle fmnist-conv-t4 1 build/conv/dest-s1/fmnist-conv-t4.scnb
    python benchmarks/conv_table.py                     # the table of what is recorded
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "conv"
NAMES = {"fmnist-conv-t4": "Fashion-MNIST", "mnist-conv-t4": "MNIST"}
TARGETS = {"fmnist-conv-t4": 91.0, "mnist-conv-t4": 99.3}


def record(name: str, seed: int, path: Path) -> dict:
    from sc_neurocore.bundle import load_bundle

    prov = load_bundle(path).provenance
    if prov.get("seed") != seed:
        raise SystemExit(f"{path} was trained with seed {prov.get('seed')}, not {seed}")
    row = {k: prov[k] for k in ("dataset", "test_accuracy", "val_accuracy", "best_epoch", "command", "torch_version")}
    row.update(name=name, seed=seed, epochs=prov["train_config"]["epochs"], arch=prov["config"].get("conv"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}-s{seed}.json").write_text(json.dumps(row, indent=1, sort_keys=True) + "\n")
    return row


def _rows(name: str | None = None, folder: Path | None = None) -> list[dict]:
    """The recorded seeds of ``name`` (every bundle's when None), by bundle and seed; ``folder``: another
    recipe's records (``RESULTS/scratch``: the conv bundles trained from scratch, before distillation)."""
    names = [name] if name else list(NAMES)
    folder = folder or RESULTS
    return [r for n in names for r in sorted((json.loads(p.read_text()) for p in folder.glob(f"{n}-s*.json")),
                                            key=lambda r: r["seed"])]


def table() -> str:
    lines = ["| bundle | dataset | integer test accuracy (mean ± std) | seeds | per seed (0, 1, 2) | target |",
             "|---|---|---|---|---|---|"]
    for name, ds in NAMES.items():
        for label, folder in ((f"`{name}`", RESULTS), (f"`{name}` from scratch (earlier recipe)", RESULTS / "scratch")):
            rows = _rows(name, folder)
            if not rows:
                continue
            acc = [100 * r["test_accuracy"] for r in rows]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            lines.append(f"| {label} | {ds} | {statistics.mean(acc):.2f} ± {sd:.2f} % | {len(acc)} | "
                         f"{', '.join(f'{a:.2f}' for a in acc)} | ≥ {TARGETS[name]} % |")
    return "\n".join(lines)


def section() -> str:
    """The "Convolutional networks" section of ``docs/results.md`` (rendered by ``benchmarks/table.py``)."""
    return "\n".join([
        "## Convolutional networks", "",
        "`fmnist-conv-t4` and `mnist-conv-t4` (`make pretrained`; recipes in `benchmarks/pretrained.py`, "
        "each bundle's provenance has its command). Integer test accuracy (golden model), from "
        "`python benchmarks/conv_table.py` (per-seed results in `benchmarks/results/conv/`; seed 0 is the shipped "
        "bundle):", "",
        table(), "",
        *[f"* `{r['name']}` seed {r['seed']}: `{r['command']}`" for r in _rows() if r["seed"] == 0],
        "* the float CNN teacher of `fmnist-conv-t4` (the distillation recipe): `benchmarks/pretrained.py`'s "
        "`FMNIST_CNN`, one per seed", "",
        "Seeds 1 and 2 are `benchmarks/pretrained.py --only NAME --seed S --work W --dest D`; a row lists the "
        "seeds recorded so far, each with the command it was trained by in its JSON file."])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", nargs=3, action="append", metavar=("NAME", "SEED", "PATH"), default=[],
                   help="record this seed's bundle (seed 0: the shipped one is recorded when no path is given)")
    args = p.parse_args(argv)
    for name, seed, path in args.bundle:
        record(name, int(seed), Path(path))
    for name in NAMES:
        shipped = ROOT / "sc_neurocore" / "pretrained" / f"{name}.scnb"
        if shipped.is_file() and not (RESULTS / f"{name}-s0.json").is_file():
            record(name, 0, shipped)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
