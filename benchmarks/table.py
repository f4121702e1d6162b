#!/usr/bin/env python
"""The distillation table, measured: MNIST test accuracy of the exported integer networks (golden model).

Rows (each for every seed):

==============  =====================================================================
``base-t32``    trained from scratch at T=32 (also the teacher of the ``kd-*`` rows)
``base-t8`` …   trained from scratch at T=8, 4, 2, 1
``kd-t4`` …     temporal distillation from the same seed's T=32 teacher at T=4, 2, 1
                (student initialised from the teacher's weights, as ``distill`` does)
``self-t4``     self-distillation: the student at T=32 teaches itself at T=4 (random init)
``ann-t4``      distilled at T=4 from a float CNN teacher (random init)
``recipe-t4``   the best T=4 recipe found (docs/training.md): a CNN teacher trained for
                ``--recipe-cnn-epochs``, Hinton distillation on the time-mean logits
                (``--method average``), alpha 0.5, temperature 3, label smoothing 0.1,
                peak LR 2e-3, ``--recipe-epochs`` epochs, random init; same data split and
                model selection (best validation epoch) as every other row
==============  =====================================================================

The ``recipe-*`` rows have their own fixed hyper-parameters (above); ``--epochs``,
``--lr`` etc. apply to the other rows.

Every run's result is cached as ``CACHE/ROW-sSEED-eEPOCHS[aAUGMENT].json`` (and its
bundle and checkpoint under ``--ckpt``, default ``build/table-ckpt``), so an interrupted run resumes
where it stopped and runs made elsewhere (e.g. on a GPU machine) are merged by
copying their JSON files into the cache. ``docs/results.md`` is rendered from
whatever is cached for the chosen epochs; missing runs are listed there.

    python benchmarks/table.py                       # 3 seeds, full epochs, CPU
    python benchmarks/table.py --seeds 1 --epochs 2  # quick mode
    python benchmarks/table.py --device cuda --jobs 3
    python benchmarks/table.py --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = {
    "base-t32": ("T=32", "none", 32),
    "base-t8": ("T=8", "none", 8),
    "base-t4": ("T=4", "none", 4),
    "base-t2": ("T=2", "none", 2),
    "base-t1": ("T=1", "none", 1),
    "kd-t4": ("T=4 + temporal distillation (T=32 teacher)", "temporal", 4),
    "kd-t2": ("T=2 + temporal distillation (T=32 teacher)", "temporal", 2),
    "kd-t1": ("T=1 + temporal distillation (T=32 teacher)", "temporal", 1),
    "self-t4": ("T=4 + self-distillation (itself at T=32)", "self", 4),
    "ann-t4": ("T=4 + distillation from a float CNN teacher", "temporal", 4),
    "recipe-t4": ("T=4, best recipe: CNN teacher, average KD + label smoothing, 30 epochs", "recipe", 4),
}

#: the recipe rows' settings (``sc-neurocore distill --teacher cnn.pt --method average --alpha 0.5
#: --temperature 3 --label-smoothing 0.1 --lr 2e-3 --epochs 30``, teacher ``train --ann --epochs 8 --lr 1e-3``)
RECIPE = {"method": "average", "alpha": 0.5, "temperature": 3.0, "label_smoothing": 0.1, "lr": 2e-3}



#: The settings this table does not cover, and where their rows are (one place for each fact).
OTHER_SETTINGS = ("Other settings — rate encoding with a spike-count readout (where T matters), a 784-512-10 teacher "
                  "for a 784-32-10 student, event input (`mnist-saccade`, T = 32, 8, 4, 2, 1 with and without "
                  "distillation) and the `mixed` and feature-distillation methods — are measured in the "
                  "distillation study, [`kd_study.md`](kd_study.md) (3 epochs, 3 seeds, `make kd-table`).")

def _tag(args, row: str | None = None) -> str:
    if row is not None and ROWS[row][1] == "recipe":
        return f"e{args.recipe_epochs}c{args.recipe_cnn_epochs}a{args.augment}" + \
            (f"l{args.limit}" if args.limit else "")
    return (f"e{args.epochs}" + f"a{args.augment}" +
            (f"d{args.dropout:g}" if args.dropout else "") + (f"l{args.limit}" if args.limit else ""))


def _key(row: str, seed: int, args) -> str:
    return f"{row}-s{seed}-{_tag(args, row)}"


_DATA: dict = {}


def _data(limit):
    from sc_neurocore.train import prepare_data

    if limit not in _DATA:
        _DATA[limit] = prepare_data(limit=limit)
    return _DATA[limit]


def _run_row(row: str, seed: int, args, cache: Path, log) -> dict:
    """Run one (row, seed) unless cached (or being run by another process); returns its result dict."""

    path = cache / f"{_key(row, seed, args)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if row in ("kd-t4", "kd-t2", "kd-t1"):  # needs the teacher first
        _run_row("base-t32", seed, args, cache, log)
    lock = cache / f"{_key(row, seed, args)}.lock"
    try:  # another process may be running this very row (the teachers): wait for it
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
    except FileExistsError:
        while lock.exists() and not path.is_file():
            time.sleep(2)
        if path.is_file():
            return json.loads(path.read_text())
        return _run_row(row, seed, args, cache, log)
    try:
        return _run_row_locked(row, seed, args, cache, log, path)
    finally:
        lock.unlink(missing_ok=True)


def _run_row_locked(row: str, seed: int, args, cache: Path, log, path: Path) -> dict:
    from sc_neurocore.train import SNNConfig, TrainConfig, distill_model, train_ann, train_model
    data = _data(args.limit)
    label, method, T = ROWS[row]
    cfg = SNNConfig(T=T)
    common = dict(epochs=args.epochs, batch_size=args.batch_size, seed=seed, threads=args.threads,
                  device=args.device, quiet=True, augment=args.augment, dropout=args.dropout)
    ckdir = Path(args.ckpt) if args.ckpt else cache / "ckpt"
    ckdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"[{_key(row, seed, args)}] {label} ...")
    quiet_log = lambda s: None  # noqa: E731
    if method == "none":
        tc = TrainConfig(lr=args.lr, **common)
        out = ckdir / f"{_key(row, seed, args)}.scnb"
        r = train_model(cfg, tc, data, out, log=quiet_log, command=f"benchmarks/table.py row {row} seed {seed}")
        extra = {}
    elif method == "recipe":
        teacher = ckdir / f"ann-s{seed}-e{args.recipe_cnn_epochs}.pt"
        if not teacher.is_file():
            atc = TrainConfig(lr=1e-3, **{**common, "epochs": args.recipe_cnn_epochs, "dropout": 0.0})
            ar = train_ann(atc, data, teacher, log=quiet_log)
            log(f"    CNN teacher: float test accuracy {100 * ar['test_acc']:.2f} %")
        tc = TrainConfig(**{**common, "epochs": args.recipe_epochs, "dropout": 0.0}, **RECIPE)
        out = ckdir / f"{_key(row, seed, args)}.scnb"
        r = distill_model(cfg, tc, data, teacher, out, init="random", log=quiet_log,
                          command=f"benchmarks/table.py row {row} seed {seed}")
        extra = {"teacher": r["bundle"].provenance.get("teacher"), "recipe": {**RECIPE,
                 "epochs": args.recipe_epochs, "cnn_epochs": args.recipe_cnn_epochs}}
    else:
        tc = TrainConfig(lr=args.student_lr, method="self" if method == "self" else "temporal", alpha=args.alpha,
                         temperature=args.temperature, teacher_T=32 if method == "self" else None, **common)
        teacher = None
        if row.startswith("kd-"):
            teacher = ckdir / f"{_key('base-t32', seed, args)}.pt"
            if not teacher.is_file():  # JSON cached but checkpoint lost: retrain the teacher
                (cache / f"{_key('base-t32', seed, args)}.json").unlink(missing_ok=True)
                _run_row("base-t32", seed, args, cache, log)
        elif row == "ann-t4":
            teacher = ckdir / f"ann-s{seed}-e{args.ann_epochs}.pt"
            if not teacher.is_file():
                atc = TrainConfig(lr=1e-3, **{**common, "epochs": args.ann_epochs})
                ar = train_ann(atc, data, teacher, log=quiet_log)
                log(f"    ANN teacher: float test accuracy {100 * ar['test_acc']:.2f} %")
        out = ckdir / f"{_key(row, seed, args)}.scnb"
        r = distill_model(cfg, tc, data, teacher, out, init="auto" if row.startswith("kd-") else "random",
                          log=quiet_log, command=f"benchmarks/table.py row {row} seed {seed}")
        extra = {"teacher": r["bundle"].provenance.get("teacher")}
    res = {"row": row, "label": label, "seed": seed, "epochs": tc.epochs, "T": T, "method": method,
           "test_acc": r["test_acc"], "val_acc": r["val_acc"], "best_epoch": r["best_epoch"],
           "train_seconds": round(r["train_seconds"], 1), "wall_seconds": round(time.time() - t0, 1),
           "device": args.device, "threads": args.threads, "batch_size": args.batch_size, "augment": args.augment,
           "limit": args.limit, "provenance": r["bundle"].provenance, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    log(f"[{_key(row, seed, args)}] test {100 * r['test_acc']:.2f} %  val {100 * r['val_acc']:.2f} %  "
        f"({res['wall_seconds']:.0f} s)")
    return res


#: order in which parallel runs are started: teachers first, the long runs next, students last
ORDER = ("base-t32", "recipe-t4", "self-t4", "ann-t4", "base-t8", "base-t4", "base-t2", "base-t1", "kd-t4", "kd-t2", "kd-t1")


def _worker(task) -> None:
    seed, rows, args, cache = task
    if isinstance(rows, str):
        rows = [rows]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    for row in rows:
        try:
            _run_row(row, seed, args, cache, lambda s: print(s, flush=True))
        except Exception as e:  # noqa: BLE001 - report and go on with the other runs
            print(f"[{_key(row, seed, args)}] FAILED: {type(e).__name__}: {e}", flush=True)


def render(args, cache: Path) -> str:
    lines = ["# Measured results", "",
             "MNIST, 784-128-10 LIF network (8-bit weights, 16-bit membranes, direct encoding, membrane readout, "
             "subtract reset), trained with `sc_neurocore.train` (quantisation-aware, bit-exact integer forward).",
             "Accuracy is the **integer** accuracy of the exported bundle on the 10 000-image test set, measured "
             "with the golden model (`sc-neurocore eval`); the trained model and the bundle score identically "
             "(difference 0, pinned by `tests/test_train.py`). Model selection: best validation epoch "
             "(MNIST's 10 000-image validation split).", "",
             f"Settings: {args.epochs} epochs per run, batch {args.batch_size}, Adam with one-cycle cosine LR "
             f"(peak {args.lr} from scratch, {args.student_lr} for students), distillation alpha {args.alpha}, "
             f"temperature {args.temperature}, augmentation: random shifts of up to {args.augment} px, "
             f"hidden-spike dropout {args.dropout}; "
             f"ANN teacher: {args.ann_epochs} epochs. Regenerate: `python benchmarks/table.py` "
             "(see its `--help`).", "",
             "| configuration | test accuracy (mean ± std) | seeds | per seed |",
             "|---|---|---|---|"]
    missing = []
    means = {}
    for row, (label, _, _) in ROWS.items():
        runs = []
        for seed in range(args.seeds):
            p = cache / f"{_key(row, seed, args)}.json"
            if p.is_file():
                r = json.loads(p.read_text())
                where = f'{r.get("device", "?")}, torch {r.get("provenance", {}).get("torch_version", "?")}'
                runs.append((r["test_acc"] * 100, where))
            else:
                missing.append(_key(row, seed, args))
        if not runs:
            lines.append(f"| {label} | not run | 0 | |")
            continue
        accs = [a for a, _ in runs]
        mean = statistics.mean(accs)
        means[row] = (mean, statistics.stdev(accs) if len(accs) > 1 else None, len(accs))
        std_s = f"{statistics.stdev(accs):.2f}" if len(accs) > 1 else "–"
        lines.append(f"| {label} | {mean:.2f} ± {std_s} % | {len(accs)} | "
                     f"{', '.join(f'{a:.2f} ({d})' for a, d in runs)} |")
    lines.append("")
    if any(ROWS[r][1] == "recipe" for r in means):
        lines.append(f"The `recipe-t4` row: a float CNN teacher ({args.recipe_cnn_epochs} epochs, one per seed), "
                     f"Hinton distillation on the time-mean logits (`--method average`), alpha {RECIPE['alpha']}, "
                     f"temperature {RECIPE['temperature']}, label smoothing {RECIPE['label_smoothing']}, peak LR "
                     f"{RECIPE['lr']}, {args.recipe_epochs} epochs, random init; the same 50 000/10 000 split and "
                     "best-validation-epoch selection as the other rows. Its hyper-parameters were chosen on "
                     "validation accuracy with seed 0 (docs/training.md). It was measured after the trainer's "
                     "speed rewrite (fused LIF backward, fused Adam: the same integer forward, gradients equal up "
                     "to float rounding); the other rows were not rerun and come from the earlier trainer "
                     "(their torch version and device per seed are listed).")
        lines.append("")
    lines.append("Per-seed values (seed 0, 1, 2 in order) name where each run was trained; CPU runs are "
                 "bit-reproducible for the same torch version and thread count, CUDA runs are not guaranteed to be. "
                 "Every row uses the same code and hyper-parameters whatever the device.")
    lines.append("")
    lines.append(OTHER_SETTINGS)
    comparisons = [("kd-t4", "base-t4"), ("kd-t2", "base-t2"), ("kd-t1", "base-t1"), ("self-t4", "base-t4"),
                   ("ann-t4", "base-t4"), ("recipe-t4", "base-t4")]
    diffs = []
    for a, b in comparisons:
        if a in means and b in means:
            d = means[a][0] - means[b][0]
            sd = [x[1] for x in (means[a], means[b]) if x[1] is not None]
            noise = max(sd) if sd else None
            verdict = ("within seed-to-seed noise" if noise is not None and abs(d) <= noise else
                       ("better" if d > 0 else "worse"))
            diffs.append(f"* {ROWS[a][0]} vs. {ROWS[b][0]} from scratch: {d:+.2f} points ({verdict}"
                         + (f", largest std {noise:.2f}" if noise is not None else "") + ").")
    if diffs:
        lines += ["", "What distillation changes (difference of the means):", ""] + diffs
    speed = ROOT / "benchmarks" / "results" / "train_speed.json"
    if speed.is_file():
        sp = json.loads(speed.read_text())
        lines += ["", "## Training speed", "",
                  f"`benchmarks/bench_train.py`, {'-'.join(map(str, sp['sizes']))}, batch {sp['batch_size']}, "
                  f"{sp['threads']} thread(s), {sp['device']}{f' ({cpu})' if (cpu := sp.get('cpu')) else ''}, "
                  f"measured as {sp.get('measure', 'wall time')} "
                  f"(torch {sp['torch']}, snnTorch {sp['snntorch']}; median of {sp.get('repeats', 1)} interleaved "
                  f"timings of {sp.get('timed_batches', '?')} steps each; the last column gives snnTorch fc1 hoisted out "
                  "of the time loop and fused Adam, our two generic tricks):", "",
                  "| T | sc_neurocore s/epoch | snnTorch s/epoch | ratio | snnTorch, fc1 hoisted + fused Adam | ratio |",
                  "|---|---|---|---|---|---|"]
        for r in sp["rows"]:
            lines.append(f"| {r['T']} | {r['sc_neurocore']:.1f} | {r['snntorch']:.1f} | {r['ratio']:.2f}x | "
                         f"{r['snntorch_hoisted']:.1f} | {r['ratio_vs_hoisted']:.2f}x |")
    lines.append("")
    devices = sorted({json.loads(p.read_text()).get("device", "?") for row in ROWS
                      for p in cache.glob(f"{row}-s*-{_tag(args, row)}.json")})
    lines.append(f"Runs made on: {', '.join(devices) or 'none'}. Raw per-run JSON: `{_rel(cache)}`.")
    if missing:
        lines += ["", f"**Not yet run** ({len(missing)}): " + ", ".join(f"`{m}`" for m in missing) +
                  ". Run `python benchmarks/table.py` again to fill them in (it resumes)."]
    import conv_table  # benchmarks/ (this script's folder is on sys.path)
    import small_student

    lines += ["", conv_table.section(), "", small_student.section()]
    return "\n".join(lines) + "\n"


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15, help="epochs of every SNN run (teachers and students)")
    p.add_argument("--ann-epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--student-lr", type=float, default=1e-3)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=3.0)
    p.add_argument("--augment", type=int, default=1, help="random shifts of up to N px while training")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout on hidden spikes while training")
    p.add_argument("--recipe-epochs", type=int, default=30, help="epochs of the recipe-* rows")
    p.add_argument("--recipe-cnn-epochs", type=int, default=8, help="epochs of the recipe rows' CNN teachers")
    p.add_argument("--limit", type=int, help="only N training images (smoke tests)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (independent groups of rows per seed)")
    p.add_argument("--only-seeds", type=int, nargs="+", help="run only these seeds (render all --seeds)")
    p.add_argument("--rows", nargs="+", choices=sorted(ROWS), help="only these rows")
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "table"))
    p.add_argument("--ckpt", default=str(ROOT / "build" / "table-ckpt"),
                   help="bundles and checkpoints of every run (teachers are reused from here)")
    p.add_argument("--out", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--render-only", action="store_true")
    args = p.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = args.rows or list(ROWS)
    seeds = args.only_seeds if args.only_seeds is not None else list(range(args.seeds))
    if not args.render_only:
        if args.jobs > 1:  # independent groups of rows (per seed) in parallel processes, longest first
            import multiprocessing as mp

            tasks = [(seed, r, args, cache) for seed in seeds for r in ORDER if r in rows]
            with mp.get_context("spawn").Pool(args.jobs) as pool:
                pool.map(_worker, tasks, chunksize=1)
        else:
            for seed in seeds:
                _worker((seed, rows, args, cache))
    text = render(args, cache)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
