"""``make demo``: the main job end to end.

1. train a T=32 teacher and distil a T=4 student (quantisation-aware), export the bundle,
   evaluate it with the golden integer model (:func:`sc_neurocore.train.train_model`,
   :func:`~sc_neurocore.train.distill_model`); ``rtl_images=0`` stops here;
2. generate the Verilog core for the student (:func:`sc_neurocore.hw.export.generate_verilog`);
3. run the RTL in Verilator on a sample of MNIST test images and check every result bit-exactly
   against the golden model, and every cycle count against the exact latency model
   (:func:`sc_neurocore.sim.run_regression`);
4. print the T / accuracy / latency summary.

Every artefact lands in one output folder.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

from .fileio import atomic_write_bytes, check_output_dir, check_output_file
from .params import check_T

__all__ = ["run_demo", "check_demo_options", "demo_files", "SIMULATORS"]

SIMULATORS = ("verilator", "icarus")


def demo_files(T_teacher: int, T_student: int) -> list[str]:
    """The files the training steps of :func:`run_demo` write into its output folder."""
    return [f"teacher-t{T_teacher}.scnb", f"teacher-t{T_teacher}.pt", f"student-t{T_student}.scnb",
            f"student-t{T_student}.pt", "summary.json"]


def check_demo_options(out_dir, *, teacher_epochs, student_epochs, T_teacher, T_student, seed=0, threads=None,
                       limit=None, device="cpu") -> Path:
    """Check every training option of :func:`run_demo` and its output paths; creates nothing. Returns ``out_dir`` as a Path."""
    import torch

    from .train.config import TrainConfig, _check_train_config, _is_int, check_limit

    for name, v in (("T_teacher", T_teacher), ("T_student", T_student)):
        check_T(v, name)
    for name, v in (("teacher_epochs", teacher_epochs), ("student_epochs", student_epochs)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{name} must be at least 1, not {v!r}")
    check_limit(limit)
    _check_train_config(TrainConfig(seed=seed, threads=threads, device=device))
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r}: no CUDA device is available")
    out = check_output_dir(out_dir)
    for name in demo_files(T_teacher, T_student):
        check_output_file(out / name)
    return out


def _train_and_distill(out_dir: Path, *, teacher_epochs: int, student_epochs: int, T_teacher: int, T_student: int,
                       seed: int, threads: int | None, limit: int | None, device: str, quiet: bool,
                       log: Callable[[str], None], steps: int) -> dict:
    """Steps 1-2 of :func:`run_demo`: train the teacher, distil the student, export and evaluate both.

    ``steps`` is only the total shown in the progress lines ("[1/steps]"); ``out_dir`` has been
    checked by :func:`check_demo_options`.
    """
    from .train import SNNConfig, TrainConfig, command_string, distill_model, prepare_data, train_model

    t0 = time.perf_counter()
    data = prepare_data("mnist", None, limit)
    cfg = SNNConfig(T=T_teacher)
    log(f"[1/{steps}] training the T={T_teacher} teacher ({teacher_epochs} epochs, {len(data.train_x)} images)")
    tc = TrainConfig(epochs=teacher_epochs, seed=seed, threads=threads, device=device, quiet=quiet)
    teacher_bundle = out_dir / f"teacher-t{T_teacher}.scnb"
    tr = train_model(cfg, tc, data, teacher_bundle, log=log,
                     command=command_string("train", {"T": T_teacher, "epochs": teacher_epochs, "seed": seed}))
    log(f"[2/{steps}] distilling the T={T_student} student ({student_epochs} epochs, temporal distillation)")
    sc = TrainConfig(epochs=student_epochs, seed=seed, threads=threads, device=device, quiet=quiet,
                     method="temporal", alpha=0.5, lr=1e-3)
    student_bundle = out_dir / f"student-t{T_student}.scnb"
    dr = distill_model(cfg.replace(T=T_student), sc, data, tr["checkpoint"], student_bundle, log=log,
                       command=command_string("distill", {"teacher": teacher_bundle.with_suffix(".pt").name,
                                                          "T": T_student, "epochs": student_epochs, "seed": seed}))
    summary = {
        "teacher": {"T": T_teacher, "bundle": str(teacher_bundle), "test_accuracy": tr["test_acc"]},
        "student": {"T": T_student, "bundle": str(student_bundle), "test_accuracy": dr["test_acc"]},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    log(f"teacher T={T_teacher}: {100 * tr['test_acc']:.2f} %   student T={T_student}: {100 * dr['test_acc']:.2f} %"
        f"   (golden integer model, {len(data.test_x)} test images; {summary['seconds']} s)")
    log(f"artefacts in {out_dir}")
    return summary


def run_demo(out_dir, *, teacher_epochs: int = 3, student_epochs: int = 3, T_teacher: int = 32, T_student: int = 4,
             rtl_images: int = 200,
             simulator: str = "verilator", seed: int = 0, threads=None, limit=None, device: str = "cpu",
             clock_mhz: float = 100.0, quiet: bool = False, log=print) -> dict:
    """The demo end to end; ``rtl_images=0``: only the training steps (no Verilog, no simulation).

    Every option and output path is checked before anything runs or is created. Returns
    ``{"train": <training summary>, ..., "ok": bool}``.
    """
    from .bundle import load_bundle
    from .data import load_mnist
    from .hw.latency import latency_summary
    # every option and output path first: a bad one must not cost a training run or leave files behind
    out = check_demo_options(out_dir, teacher_epochs=teacher_epochs, student_epochs=student_epochs,
                             T_teacher=T_teacher, T_student=T_student, seed=seed, threads=threads, limit=limit,
                             device=device)
    if isinstance(rtl_images, bool) or not isinstance(rtl_images, int) or rtl_images < 0:
        raise ValueError(f"rtl_images must be an integer >= 0, not {rtl_images!r}")
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or not (
            clock_mhz > 0 and math.isfinite(clock_mhz)):
        raise ValueError(f"clock_mhz must be a positive finite number, not {clock_mhz!r}")
    train = dict(teacher_epochs=teacher_epochs, student_epochs=student_epochs, T_teacher=T_teacher,
                 T_student=T_student, seed=seed, threads=threads, limit=limit, device=device, quiet=quiet, log=log)
    if rtl_images == 0:  # the training steps only
        return {"train": _train_and_distill(out, **train, steps=2), "ok": True}
    for name in ("demo.json", "summary.md"):
        check_output_file(out / name)
    check_output_dir(out / "verilog")
    from sc_neurocore.sim.runner import ensure_simulator

    ensure_simulator(simulator)  # a missing simulator is reported now, not after the training
    t0 = time.perf_counter()
    summary = _train_and_distill(out, **train, steps=4)
    student = load_bundle(summary["student"]["bundle"])
    teacher = load_bundle(summary["teacher"]["bundle"])

    log("[3/4] generating the Verilog core for the student")
    from sc_neurocore.hw.export import generate_verilog
    from sc_neurocore.hw.stream import TOP_NAME

    vdir = out / "verilog"
    report = generate_verilog(student, vdir)
    log(f"      {vdir / (TOP_NAME + '.v')}  (ports: s_axis {report['s_axis_tdata_width']} bits, "
        f"m_axis {report['m_axis_tdata_width']} bits)")

    ds = load_mnist()
    x, y = ds.test_x, ds.test_y
    rows = []
    for name, b in (("teacher", teacher), ("student", student)):
        lat = latency_summary(b.network, None, x)
        rows.append({"model": name, "T": b.network.T, "accuracy": summary[name]["test_accuracy"],
                     "worst_cycles": lat["worst_case_cycles"], "typical_cycles": lat["mean_cycles"],
                     "lower_bound_cycles": lat["mean_lower_bound_cycles"]})

    log(f"[4/4] RTL check: {rtl_images} MNIST test images through the generated core on {simulator}")
    from sc_neurocore.sim import run_regression

    rtl = run_regression(student, x, y, simulator=simulator, n=rtl_images)
    log(f"      vectors checked {rtl['vectors_checked']}, mismatches {rtl['mismatched_vectors']}, "
        f"cycle-model mismatches {rtl.get('cycle_mismatches')}, {rtl['images_per_s']:.0f} images/s")

    us = 1e6 / (clock_mhz * 1e6)
    lines = ["| model | T | integer accuracy (10k test) | cycles worst / typical | latency at "
             f"{clock_mhz:g} MHz worst / typical |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['T']} | {100 * r['accuracy']:.2f} % | {r['worst_cycles']} / "
                     f"{r['typical_cycles']:.0f} | {r['worst_cycles'] * us:.2f} µs / {r['typical_cycles'] * us:.2f} µs |")
    table = "\n".join(lines)
    ok = rtl["mismatched_vectors"] == 0 and not rtl.get("cycle_mismatches")
    result = {"train": summary, "latency": rows, "rtl": {k: v for k, v in rtl.items() if k != "mismatches"},
              "verilog": str(vdir), "clock_mhz": clock_mhz, "seconds": round(time.perf_counter() - t0, 1), "ok": ok}
    atomic_write_bytes(out / "demo.json", (json.dumps(result, indent=1, default=str) + "\n").encode())
    atomic_write_bytes(out / "summary.md", (table + "\n").encode())
    log("")
    log(table)
    log("")
    log(("RTL bit-exact with the golden model: yes" if ok else "RTL MISMATCHES: see demo.json")
        + f"   ({result['seconds']} s, artefacts in {out})")
    return result
