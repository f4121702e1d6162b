"""The resource model (``sc_neurocore.hw.resources``): block RAM and DSP counts equal to yosys's on every
calibration run, LUT/FF errors within the target on the runs held back from the fit, and the memory
rules pinned on hand-worked cases."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sc_neurocore.hw.config import CoreConfig, CoreGeometry
from sc_neurocore.hw.formal import small_network
from sc_neurocore.hw.resources import (MODEL_PATH, Memory, Resources, dsp_products, estimate, memories,
                                       memory_mapping, model)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "results" / "resources" / "runs.jsonl"


def _calibration():
    spec = importlib.util.spec_from_file_location("resource_calibration", ROOT / "benchmarks" / "resource_calibration.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("resource_calibration", mod)
    spec.loader.exec_module(mod)
    return mod


def _runs():
    return [r for r in map(json.loads, RUNS.read_text().splitlines()) if "error" not in r]


# -- the memory rules, worked by hand from yosys 0.70's memory_libmap costs -----------------------------

@pytest.mark.parametrize("mem, family, expected", [
    # ROM 64 x 128 bits: logic 8192/16 = 512; 4 DP16KD (36 wide) = 512 + 4: logic (a tie would be logic too)
    (Memory("a", 128, 64, True), "ecp5", ("logic", 8192)),
    # ROM 16 x 130: logic 130; one DP16KD = 128 + 4 = 132: logic (measured: 4f7f2b858dde layer 0)
    (Memory("b", 16, 130, True), "ecp5", ("logic", 2080)),
    # ROM 32 x 120: logic 240 > 132: one block RAM (measured: same run, layer 1)
    (Memory("c", 32, 120, True), "ecp5", ("bram", 1)),
    # ROM 128 x 512 (a full segment of 16 eight-bit lanes): 4 blocks of 36 x 512
    (Memory("d", 128, 512, True), "ecp5", ("bram", 4)),
    # RAM 28 x 9 (conv accumulators): distributed RAM, 7 cells of 4 x 16 (cost 28) beat logic (252)
    (Memory("e", 28, 9, False), "ecp5", ("lutram", 7)),
    # iCE40 ROM 16 x 256: logic 256 > 64 + 4: one RAM4K
    (Memory("f", 16, 256, True), "ice40", ("bram", 1)),
    # iCE40 RAM 28 x 9: no distributed RAM; logic 252 > 2 RAM4K (16 wide) = 132
    (Memory("g", 28, 9, False), "ice40", ("bram", 2)),
    # iCE40 ROM 8 x 100: logic 50 < 68: logic
    (Memory("h", 8, 100, True), "ice40", ("logic", 800)),
])
def test_memory_mapping_follows_the_yosys_costs(mem, family, expected):
    assert memory_mapping(mem, family) == expected


def test_memories_are_the_banks_and_segments_the_layer_builds():
    net = small_network()
    geom = CoreGeometry(net, CoreConfig(lanes=(3, 1), events=(2, 2)))
    mems = memories(geom)
    # layer 0: 4 inputs / 2 banks = 2 chunks x 1 group -> depth 2, 3 lanes x 4 bits
    assert [(m.name, m.width, m.depth, m.rom) for m in mems] == [
        ("l0.bank0.seg0", 12, 2, True), ("l0.bank1.seg0", 12, 2, True),
        ("l1.bank0.seg0", 3, 4, True), ("l1.bank1.seg0", 3, 4, True)]  # 3 in / 2 = 2 chunks x 2 groups
    ported = memories(CoreGeometry(net, CoreConfig(lanes=(3, 1), events=(2, 2), weight_port=True)))
    assert not any(m.rom for m in ported)


def test_dsp_products_need_a_multi_bit_input_on_both_families():
    from sc_neurocore.bundle import resolve_bundle

    net = resolve_bundle(pretrained="mnist-t4").network
    g = CoreGeometry(net, CoreConfig(lanes=(16, 10), events=(2, 4)))
    assert dsp_products(g, "ecp5") == 32 and dsp_products(g, "ice40") == 32   # 8-bit pixels x 8-bit weights
    lite = resolve_bundle(pretrained="mnist-t4-lite").network                # 1-bit inputs: gated adds
    assert dsp_products(CoreGeometry(lite, CoreConfig(lanes=(16, 10), events=(8, 8))), "ecp5") == 0


# -- the calibration runs --------------------------------------------------------------------------------

def test_block_ram_and_dsp_equal_yosys_on_every_calibration_run():
    cal = _calibration()
    runs = _runs()
    assert len(runs) >= 40
    predicted, measured = [], []
    for r in runs:
        est = estimate(cal.case_network(r["case"]), cal.case_config(r["case"]), r["case"]["device"])
        predicted.append((est.bram, est.dsp, est.spram))
        measured.append((r["yosys"]["bram"], r["yosys"]["dsp"], r["yosys"].get("spram", 0)))
    assert np.array_equal(np.array(predicted), np.array(measured))


def _pnr():
    path = RUNS.with_name("pnr.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_lut_and_ff_errors_on_the_held_back_runs():
    """LUT4 and FF (yosys's counts, ``packed=False``) on every run held back from the fit within 50 %, and
    the ECP5 LUT4 count within issue 18's ±15 % on every held-back ECP5 run (14: soft multipliers, conv
    cores and the smallest core among them). On the iCE40 the capacity is logic cells (next test)."""
    cal = _calibration()
    held = [r for r in _runs() if r["held_back"]]
    assert len(held) >= 16
    checked = {"ecp5": 0, "ice40": 0}
    for r in held:
        family = "ice40" if r["case"]["device"] == "ice40-up5k" else "ecp5"
        est = estimate(cal.case_network(r["case"]), cal.case_config(r["case"]), r["case"]["device"], packed=False)
        for res in ("lut", "ff"):
            assert abs(getattr(est, res) / r["yosys"][res] - 1) <= 0.50, (r["case_name"], res, getattr(est, res),
                                                                          r["yosys"][res])
        if family == "ecp5":
            assert abs(est.lut / r["yosys"]["lut"] - 1) <= 0.15, (r["case_name"], est.lut, r["yosys"]["lut"])
        checked[family] += 1
    assert checked["ecp5"] >= 8 and checked["ice40"] >= 8


def test_ice40_logic_cells_on_the_held_back_runs():
    """On iCE40 a device's capacity is nextpnr's logic cells (one LUT4 + one FF each): the estimate
    (fitted LUT4 and FF, then packed by ``max + share * min``) on every held-back run that was placed or
    packed is within issue 18's ±15 % of nextpnr's count (8 runs: worst 9.3 % when this was written; 15.1 %
    before six cores with many output-layer events joined the calibration), and never more than the model's
    recorded under-prediction below it (which sets the planner's margin)."""
    cal = _calibration()
    fam = model()["calibration"]["ice40"]
    runs = [r for r in _runs() if r["held_back"] and r["case"]["device"] == "ice40-up5k" and r.get("pnr")]
    assert len(runs) >= 8
    for r in runs:
        cells = r["pnr"]["utilisation"]["lut"]["used"]
        est = estimate(cal.case_network(r["case"]), cal.case_config(r["case"]), r["case"]["device"])
        assert abs(est.lut / cells - 1) <= 0.15, (r["case_name"], est.lut, cells)
        assert cells / est.lut - 1 <= fam["cells_under"] + 1e-3, (r["case_name"], est.lut, cells)
    assert model()["families"]["ice40"]["lut_margin"] <= 1 / (1 + fam["cells_under"])


def test_the_packing_factor_covers_the_placed_ecp5_builds():
    """On every ECP5 build placed and routed, the predicted logic cells are within 15 % of nextpnr's count
    (what the device's capacity is counted in) and the predicted Fmax is not above the measured one."""
    from sc_neurocore.hw.resources import fmax_mhz

    cal = _calibration()
    runs = [r for r in _pnr() if r["case"]["device"].startswith("ecp5")]
    assert len(runs) >= 3
    for r in runs:
        est = estimate(cal.case_network(r["case"]), cal.case_config(r["case"]), r["case"]["device"])
        used = r["utilisation"]["lut"]["used"]
        assert abs(est.lut / used - 1) <= 0.15, (r["case_name"], est.lut, used)
        assert (est.bram, est.dsp) == (r["utilisation"]["bram"]["used"], r["utilisation"]["dsp"]["used"])
        # builds with LUT-made products (dsp_limit) have their own, slower clock
        assert fmax_mhz("ecp5", soft=r["case"]["config"].get("dsp_limit") is not None) <= r["fmax_mhz"]


def test_the_model_file_records_its_calibration():
    m = json.loads(MODEL_PATH.read_text())
    assert m == model()
    for family in ("ecp5", "ice40"):
        fam = m["families"][family]
        assert fam["fmax_mhz"] > 0 and fam["lut"] and fam["ff"]
        cal = m["calibration"][family]
        assert cal["mismatches"] == {"bram": 0, "dsp": 0, "spram": 0} and cal["held_back"] >= 1


def test_the_held_back_runs_were_not_fitted():
    """Refitting on the training runs alone gives the stored coefficients: the held-back runs did not
    enter the fit, so their errors are out-of-sample."""
    from sc_neurocore.hw.resources import fit

    cal = _calibration()
    records = [json.loads(line) for line in RUNS.read_text().splitlines()]
    refit = fit([r for r in records if not r.get("held_back")], cal.case_network, cal.case_config)
    for family, fam in refit.items():
        for res in ("lut", "ff"):
            stored = model()["families"][family][res]
            assert fam[res].keys() == stored.keys()
            assert np.allclose([fam[res][k] for k in stored], list(stored.values()), rtol=1e-4)


# -- the Resources type ---------------------------------------------------------------------------------

def test_resources_over_names_what_runs_out():
    r = Resources("ecp5", lut=30000, ff=1000, bram=60, dsp=10)
    assert r.over("ecp5-25f") == ["LUT 30000/24288", "BRAM 60/56"]
    assert r.over("ecp5-85f") == [] and r.fits("ecp5-85f")
    assert not Resources("ecp5", lut=22000, ff=1000, bram=1, dsp=1).fits("ecp5-25f", margin=0.85)
    assert Resources("ecp5", lut=20000, ff=1000, bram=56, dsp=28).fits("ecp5-25f", margin=0.85)


def test_single_port_banks_are_spram_cells_on_the_up5k_only():
    """On the ice40-up5k (a device with SPRAMs) each single-port bank is SB_SPRAM256KA cells side by side,
    16 bits each; on the family alone, or on ECP5, the same banks are generic memories."""
    net = small_network()
    cfg = CoreConfig(lanes=(3, 1), events=(2, 2), weight_port=True, weight_memory="single_port")
    mems = memories(CoreGeometry(net, cfg))
    assert len(mems) == 4 and all(m.single_port for m in mems) and max(m.width for m in mems) <= 16
    up5k = estimate(net, cfg, "ice40-up5k")
    assert (up5k.spram, up5k.bram) == (4, 0) and up5k.as_dict()["spram"] == 4
    assert estimate(net, cfg, "ice40").spram == 0 and estimate(net, cfg, "ecp5-25f").spram == 0
    assert "spram" not in estimate(net, cfg, "ice40").as_dict()
    block = estimate(net, CoreConfig(lanes=(3, 1), events=(2, 2), weight_port=True), "ice40-up5k")
    assert block.spram == 0
    wide = Memory("w", 40, 100, False, True)
    assert memory_mapping(wide, "ice40", spram=True) == ("spram", 3)      # 40 bits: three 16-bit cells
    assert memory_mapping(wide, "ice40") == ("bram", 3)                   # generic: 3 RAM4K of 16 x 256
    with pytest.raises(ValueError, match=r"^deep \(a single-port weight bank\) holds at most 16384 words in the "
                                         r"iCE40UP5K's SPRAM, not 16385 \(use more events per cycle\)$"):
        memory_mapping(Memory("deep", 8, 16385, False, True), "ice40", spram=True)


def test_resources_count_spram_against_the_device():
    r = Resources("ice40", lut=1000, ff=1000, bram=2, dsp=0, spram=5)
    assert r.over("ice40-up5k") == ["SPRAM 5/4"] and not r.fits("ice40-up5k")
    assert Resources("ice40", lut=1000, ff=1000, bram=2, dsp=0, spram=4).fits("ice40-up5k")


def test_estimate_grows_with_lanes_and_refuses_an_unknown_family():
    net = small_network()
    small = estimate(net, CoreConfig(lanes=(1, 1), events=(1, 1)), "ecp5")
    big = estimate(net, CoreConfig(lanes=(3, 2), events=(4, 3)), "ecp5")
    assert big.lut > small.lut and big.ff > small.ff
    with pytest.raises(ValueError, match="family must be one of ecp5, ice40 or a device of ecp5-85f, ecp5-25f, "
                                         "ice40-up5k, not 'xc7'"):
        estimate(net, CoreConfig(), "xc7")


def test_the_rate_encoder_is_a_feature_of_rate_cores_only():
    """The rate encoder (an LFSR state and a compare per pixel of a beat) is counted for rate input only, per
    pixel of the beat (16 LFSR + 8 pixel bits each); the fit gives it a positive LUT weight on both families (the
    iCE40's rate cores were 9-13 % under-predicted without it)."""
    from sc_neurocore.hw.resources import features

    for ppb in (4, 16):
        cfg = CoreConfig(lanes=(2, 2), events=(1, 1), pixels_per_beat=ppb)
        for family in ("ecp5", "ice40"):
            direct = features(CoreGeometry(small_network("direct"), cfg), family)
            rate = features(CoreGeometry(small_network("rate"), cfg), family)
            assert direct["encoder_bits"] == 0 and rate["encoder_bits"] == ppb * (16 + 8)
    for family in ("ecp5", "ice40"):
        assert model()["families"][family]["lut"]["encoder_bits"] > 0


def test_the_soft_multiplier_margin_covers_its_held_back_runs():
    """Builds with products made from LUTs (``dsp_limit``) get their own planner margin: on every such ECP5
    run held back from the fit, yosys's LUT and FF counts are within the share of the device that margin
    leaves free (``measured <= estimate / margin``); it is never above the margin of the other builds."""
    from sc_neurocore.hw.resources import lut_margin

    cal = _calibration()
    soft = lut_margin("ecp5", soft=True)
    assert soft <= lut_margin("ecp5")
    runs = [r for r in _runs() if r["held_back"] and r["case"]["device"].startswith("ecp5")
            and r["case"].get("config", {}).get("dsp_limit") is not None]
    assert len(runs) >= 3
    for r in runs:
        est = estimate(cal.case_network(r["case"]), cal.case_config(r["case"]), r["case"]["device"], packed=False)
        for res in ("lut", "ff"):
            assert r["yosys"][res] <= getattr(est, res) / soft, (r["case_name"], res, getattr(est, res),
                                                                 r["yosys"][res])


def test_calibration_redo_moves_the_matching_records_aside(tmp_path, monkeypatch):
    """``resource_calibration.py --redo OPTION``: the records whose case config sets OPTION move to
    ``runs-superseded.jsonl`` (appended, kept verbatim) and leave ``runs.jsonl``, so the grid runs them
    again; the others stay in order."""
    cal = _calibration()
    runs = tmp_path / "runs.jsonl"
    recs = [{"case_name": "a", "case": {"config": {"lanes": 2}}},
            {"case_name": "b", "case": {"config": {"lanes": 2, "dsp_limit": 0}}},
            {"case_name": "c", "case": {"conv": {}}},
            {"case_name": "d", "case": {"config": {"dsp_limit": 4}}}]
    runs.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "runs-superseded.jsonl").write_text('{"case_name": "old"}\n')
    monkeypatch.setattr(cal, "RUNS", runs)
    monkeypatch.setattr(cal, "OUT", tmp_path)
    assert cal.supersede(["dsp_limit"]) == 2
    assert [json.loads(x)["case_name"] for x in runs.read_text().splitlines()] == ["a", "c"]
    assert [json.loads(x)["case_name"] for x in (tmp_path / "runs-superseded.jsonl").read_text().splitlines()] \
        == ["old", "b", "d"]
    assert cal.done() == {"a", "c"}
