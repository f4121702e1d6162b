"""cocotb test module for ``sc_neurocore_top`` (run by :mod:`sc_neurocore.sim.runner`, never imported by pytest).

Everything comes from the JSON file named by ``$SCN_SIM_CONFIG`` (written by
the runner into the case folder from a :class:`~sc_neurocore.hw.stream.Traffic`
and a :class:`~sc_neurocore.sim.runner.CaseOptions`):

``report``        path of the core's ``report.json`` (bus widths, score format)
``bundle``        path of the ``.scnb`` the core was generated from (golden model)
``images``        path of a ``.npy`` (N, n_0) uint8 array
``results``       where to write the JSON summary
``traffic``       the fields of a :class:`~sc_neurocore.hw.stream.Traffic` (``gaps``, ``max_gap``,
                  ``backpressure``, ``resets``: resets injected in the middle of an inference, ``seed``)
``check_cycles``  compare measured cycles with the model (only when gaps and back-pressure are off)
``fail_on_mismatch``  fail the cocotb test on any mismatch (default true)
``max_report``, ``stall_cycles``   mismatches kept; cycles without progress that make a stall
``expected_cycles`` optional path of a ``.npy`` of per-image cycles (else the latency model)
``load_bundle``   optional path of a ``.scnb`` with the core's layer sizes: its weights are written
                  through the weight port (``--weight-port`` cores) after reset, and it is the golden model
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import cocotb

from sc_neurocore.hw.stream import Traffic

from .model import INPUT_BEATS, CoreInfo, GoldenModel, expected_cycles
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
    cfg = _load_config()
    traffic = Traffic(**cfg.get("traffic", {}))
    t_setup = time.perf_counter()
    info, images, bundle, writes = _load_case(cfg)
    classes, scores = GoldenModel(bundle).predict(images)
    want_cycles = bool(cfg.get("check_cycles", True)) and traffic.gaps == 0 and traffic.backpressure == 0
    double = bool(((info.report or {}).get("generator") or {}).get("double_buffer"))
    if traffic.resets and double:
        # A reset empties a double-buffered core between two back-to-back runs, which the stream model
        # (one stream from an idle core) does not describe: results are still checked, cycles are not.
        want_cycles = False
    exp_cyc = None
    if cfg.get("expected_cycles"):
        exp_cyc = np.load(cfg["expected_cycles"])
    elif want_cycles or traffic.resets:
        exp_cyc = expected_cycles(bundle.network, info.report, images)
    # where the resets land: within the latency of an image sent alone (as reset_during sends it)
    alone = exp_cyc
    if traffic.resets and double and not cfg.get("expected_cycles"):
        alone = expected_cycles(bundle.network, info.report, images, stream=False)
    setup_s = time.perf_counter() - t_setup

    stall = _stall_cycles(cfg, info, traffic)
    tb = Testbench(dut, info, traffic=traffic, max_report=int(cfg.get("max_report", 50)),
                   pack=INPUT_BEATS(bundle.network.input))
    await tb.start()
    if writes is not None:
        from .driver import WeightWriter

        await WeightWriter(dut, dut.clk).write(writes)
    t0 = time.perf_counter()
    dropped = await _send(tb, info, traffic, images, classes, scores, alone, stall)
    wall = time.perf_counter() - t0
    tb.checker.finish()

    measured = np.full(len(images), -1, dtype=np.int64)
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
        "n_images": len(images), "wall_s": wall, "setup_s": setup_s,
        "images_per_s": len(images) / wall if wall > 0 else None,
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
    _log_and_judge(dut, cfg, tb, summary, stall, cycle_bad)


def _load_case(cfg: dict):
    """``(info, images, golden bundle, weight-port writes or None)`` of the case."""
    from sc_neurocore.bundle import load_bundle

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
    return info, images, bundle, writes


def _stall_cycles(cfg: dict, info: CoreInfo, traffic: Traffic) -> int:
    """Cycles without progress that make a stall: given, else from the report's worst-case latency."""
    worst = ((info.report or {}).get("latency") or {}).get("worst_case_cycles")
    if cfg.get("stall_cycles"):
        return int(cfg["stall_cycles"])
    if isinstance(worst, int):
        return 4 * worst + info.beats_per_image * (traffic.max_gap + 1) + 1000
    return 200_000


async def _send(tb: Testbench, info: CoreInfo, traffic: Traffic, images, classes, scores, exp_cyc,
                stall: int) -> list[dict]:
    """Every image through the core, with ``traffic.resets`` resets in the middle of inferences; the resets done.
    ``exp_cyc``: each image's cycles when sent alone (where a reset may land), or None."""
    n = len(images)
    dropped = []
    if not (traffic.resets and n):
        await tb.run(images, classes, scores, stall_cycles=stall)
        return dropped
    rng = np.random.default_rng(traffic.seed + 12345)
    points = sorted(rng.choice(n, size=min(traffic.resets, n), replace=False).tolist())
    start = 0
    for p in points:
        if tb.stalled:
            break
        if p > start:
            await tb.run(images[start:p], classes[start:p], scores[start:p], first_index=start, stall_cycles=stall)
        lat = int(exp_cyc[p]) if exp_cyc is not None else 2 * info.beats_per_image
        delay = int(rng.integers(0, max(1, lat - 1)))  # the reset lands before the output handshake
        d = await tb.reset_during(images[p], classes[p], scores[p], p, delay, stall_cycles=stall)
        dropped.append({"image": p, "delay_cycles": delay, "dropped": d})
        start = p  # the interrupted image is sent again after the reset
    if not tb.stalled:
        await tb.run(images[start:], classes[start:], scores[start:], first_index=start, stall_cycles=stall)
    return dropped


def _log_and_judge(dut, cfg: dict, tb: Testbench, summary: dict, stall: int, cycle_bad: int) -> None:
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
