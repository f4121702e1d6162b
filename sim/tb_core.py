"""cocotb test module for ``sc_neurocore_top`` (run by :mod:`sc_neurocore.sim.runner`, never imported by pytest).

Everything comes from the JSON file named by ``$SCN_SIM_CONFIG`` (written by
the runner into the case folder):

``report``        path of the core's ``report.json`` (bus widths, score format)
``bundle``        path of the ``.scnb`` the core was generated from (golden model)
``images``        path of a ``.npy`` (N, n_0) uint8 array
``expected_cycles`` optional path of a ``.npy`` of per-image cycles (else the latency model)
``gaps``, ``max_gap``, ``backpressure``, ``seed``   traffic shaping (0 = off)
``resets``        how many resets to inject in the middle of an inference
``check_cycles``  compare measured cycles with the model (only when gaps and back-pressure are off)
``fail_on_mismatch``  fail the cocotb test on any mismatch (default true)
``results``       where to write the JSON summary
``load_bundle``   optional path of a ``.scnb`` with the core's layer sizes: its weights are written
                  through the weight port (``--weight-port`` cores) after reset, and it is the golden model
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import cocotb

from .model import CoreInfo, GoldenModel, expected_cycles
from .testbench import Testbench


def _load_config() -> dict:
    path = os.environ.get("SCN_SIM_CONFIG")
    if not path:
        raise RuntimeError("SCN_SIM_CONFIG is not set (run this module through sc_neurocore.sim.runner)")
    with open(path) as f:
        return json.load(f)


@cocotb.test()
async def core_regression(dut):
    """Images through the core, every result checked bit-exactly and in order; cycles against the model."""
    from sc_neurocore.bundle import load_bundle

    cfg = _load_config()
    t_setup = time.perf_counter()
    info = CoreInfo.load(cfg["report"])
    images = np.load(cfg["images"])
    bundle = load_bundle(cfg["bundle"])
    writes = None
    if cfg.get("load_bundle"):
        # The core keeps its own thresholds, shifts and T; the loaded bundle
        # must agree on them, and its weights replace the built-in ones.
        from sc_neurocore.hw.config import CoreConfig, CoreGeometry

        built = bundle
        bundle = load_bundle(cfg["load_bundle"])
        geo = CoreGeometry(built.network, CoreConfig(**info.report["generator"]))
        writes = geo.weight_writes(bundle.network)
    classes, scores = GoldenModel(bundle).predict(images)
    n = len(images)
    gaps = float(cfg.get("gaps", 0.0))
    bp = float(cfg.get("backpressure", 0.0))
    want_cycles = bool(cfg.get("check_cycles", True)) and gaps == 0 and bp == 0
    exp_cyc = None
    if cfg.get("expected_cycles"):
        exp_cyc = np.load(cfg["expected_cycles"])
    elif want_cycles or cfg.get("resets"):
        exp_cyc = expected_cycles(bundle.network, info.report, images)
    setup_s = time.perf_counter() - t_setup

    worst = ((info.report or {}).get("latency") or {}).get("worst_case_cycles")
    if cfg.get("stall_cycles"):
        stall = int(cfg["stall_cycles"])
    elif isinstance(worst, int):
        stall = 4 * worst + info.beats_per_image * (int(cfg.get("max_gap", 3)) + 1) + 1000
    else:
        stall = 200_000
    tb = Testbench(dut, info, gaps=gaps, max_gap=int(cfg.get("max_gap", 3)), backpressure=bp,
                   seed=int(cfg.get("seed", 0)), max_report=int(cfg.get("max_report", 50)))
    await tb.start()
    if writes is not None:
        from .driver import WeightWriter

        await WeightWriter(dut, dut.clk).write(writes)
    t0 = time.perf_counter()
    resets = int(cfg.get("resets", 0))
    dropped = []
    if resets and n:
        rng = np.random.default_rng(int(cfg.get("seed", 0)) + 12345)
        points = sorted(rng.choice(n, size=min(resets, n), replace=False).tolist())
        start = 0
        for p in points:
            if tb.stalled:
                break
            if p > start:
                await tb.run(images[start:p], classes[start:p], scores[start:p], first_index=start,
                             stall_cycles=stall)
            lat = int(exp_cyc[p]) if exp_cyc is not None else 2 * info.beats_per_image
            delay = int(rng.integers(0, max(1, lat - 1)))  # the reset lands before the output handshake
            d = await tb.reset_during(images[p], classes[p], scores[p], p, delay, stall_cycles=stall)
            dropped.append({"image": p, "delay_cycles": delay, "dropped": d})
            start = p  # the interrupted image is sent again after the reset
        if not tb.stalled:
            await tb.run(images[start:], classes[start:], scores[start:], first_index=start, stall_cycles=stall)
    else:
        await tb.run(images, classes, scores, stall_cycles=stall)
    wall = time.perf_counter() - t0
    tb.checker.finish()

    measured = np.full(n, -1, dtype=np.int64)
    for i, c in tb.cycles.items():
        measured[i] = c
    cycle_bad = 0
    if want_cycles and exp_cyc is not None:
        for i in np.nonzero(measured != exp_cyc)[0]:
            if measured[i] >= 0:
                cycle_bad += 1
                tb.checker.report_cycles(int(i), int(exp_cyc[i]), int(measured[i]))
    summary = tb.checker.summary()
    summary.update({
        "n_images": n, "wall_s": wall, "setup_s": setup_s,
        "images_per_s": n / wall if wall > 0 else None,
        "cycles": measured.tolist(),
        "expected_cycles": exp_cyc.tolist() if exp_cyc is not None else None,
        "cycles_checked": bool(want_cycles and exp_cyc is not None),
        "cycle_mismatches": cycle_bad,
        "sim_cycles": int(tb.last_output_steps // tb.period_steps),
        "resets": dropped,
        "stalled": tb.stalled,
        "stall_cycles": stall,
        "accepted": len(tb.driver.accept_times),
        "simulator": cocotb.SIM_NAME,
        "weight_words_written": len(writes) if writes is not None else 0,
    })
    tb.stop()
    if cfg.get("results"):
        with open(cfg["results"], "w") as f:
            json.dump(summary, f, indent=1)
    if tb.stalled:
        dut._log.error("the core stalled: no output for %d cycles after %d results", stall, summary["checked"])
    for m in summary["mismatches"][:10]:
        dut._log.error("mismatch: image %s %s expected %s got %s", m["index"], m["field"], m["expected"], m["got"])
    dut._log.info("checked %d vectors, %d mismatched, %d cycle mismatches, %.1f images/s",
                  summary["checked"], summary["mismatched_vectors"], cycle_bad, summary["images_per_s"] or 0)
    if cfg.get("fail_on_mismatch", True):
        assert not tb.stalled, f"the core stalled (no output for {stall} cycles) after {summary['checked']} results"
        assert summary["mismatched_vectors"] == 0 and cycle_bad == 0, \
            f"{summary['mismatched_vectors']} mismatched vectors, {cycle_bad} cycle mismatches"
