"""``make demo``: the main job end to end.

1. train a T=32 teacher and distil a T=4 student (quantisation-aware), export the bundle,
   evaluate it with the golden integer model (:func:`sc_neurocore.train.demo`);
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

from .fileio import atomic_write_bytes, check_output_dir, check_output_file

SIMULATORS = ("verilator", "icarus")


def run_demo(out_dir, *, teacher_epochs: int = 3, student_epochs: int = 3, T_teacher: int = 32, T_student: int = 4,
             rtl_images: int = 200,
             simulator: str = "verilator", seed: int = 0, threads=None, limit=None, device: str = "cpu",
             clock_mhz: float = 100.0, quiet: bool = False, log=print) -> dict:
    from .bundle import load_bundle
    from .data import load_mnist
    from .hw.latency import latency_summary
    from .train import check_demo_options
    from .train import demo as train_demo

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
    for name in ("demo.json", "summary.md"):
        check_output_file(out / name)
    check_output_dir(out / "verilog")
    if rtl_images:  # a missing simulator is reported now, not after the training
        from sc_neurocore.sim.runner import ensure_simulator

        ensure_simulator(simulator)
    t0 = time.perf_counter()
    summary = train_demo(out, teacher_epochs=teacher_epochs, student_epochs=student_epochs, T_teacher=T_teacher,
                         T_student=T_student, seed=seed,
                         threads=threads, limit=limit, device=device, quiet=quiet, log=log, steps=4)
    student = load_bundle(summary["student"]["bundle"])
    teacher = load_bundle(summary["teacher"]["bundle"])

    log("[3/4] generating the Verilog core for the student")
    from sc_neurocore.hw.export import generate_verilog

    vdir = out / "verilog"
    report = generate_verilog(student, vdir)
    log(f"      {vdir / 'sc_neurocore_top.v'}  (ports: s_axis {report['s_axis_tdata_width']} bits, "
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
