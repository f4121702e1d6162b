"""The T planner: budget parsing, the choice on synthetic candidates, the CLI's errors."""

import json

import pytest

from sc_neurocore.cli import main
from sc_neurocore.plan import Candidate, choose, parse_duration, parse_frequency, pareto_plot


def cand(T, acc, worst, typical=None, clock=100e6, fits=True, note=""):
    return Candidate(f"t{T}", T, acc, worst, typical if typical is not None else worst / 2, clock, fits=fits, note=note)


@pytest.mark.parametrize("text, seconds", [
    ("10us", 10e-6), ("10 µs", 10e-6), ("10μs", 10e-6), ("0.4ms", 0.4e-3), ("500ns", 500e-9), ("1e-5s", 1e-5),
    ("2 s", 2.0), ("10US", 10e-6),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize("text, exc, message", [
    ("10", ValueError, "has no unit"),
    ("10 parsecs", ValueError, "unknown time unit 'parsecs'"),
    ("fast", ValueError, "must be a number with a unit"),
    ("0us", ValueError, "must be positive"),
    ("-3us", ValueError, "must be a number with a unit"),
    (10, TypeError, "must be a string such as '10us'"),
])
def test_parse_duration_errors(text, exc, message):
    with pytest.raises(exc, match=message):
        parse_duration(text)


def test_parse_frequency():
    assert parse_frequency(100) == 100e6
    assert parse_frequency("100MHz") == 100e6 and parse_frequency("25 mhz") == 25e6 and parse_frequency("1GHz") == 1e9
    assert parse_frequency("48") == 48e6
    with pytest.raises(ValueError, match="unknown frequency unit 'furlongs'"):
        parse_frequency("3furlongs")
    with pytest.raises(ValueError, match="positive frequency"):
        parse_frequency(-5)


def test_choose_most_accurate_within_budget():
    cs = [cand(1, 0.95, 300), cand(2, 0.97, 400), cand(4, 0.98, 600), cand(32, 0.985, 3000)]
    c = choose(cs, 5e-6)  # 500 cycles at 100 MHz
    assert c.chosen.T == 2 and "T=2" in c.message
    assert choose(cs, 6e-6).chosen.T == 4
    assert choose(cs, 1.0).chosen.T == 32


def test_choose_typical_vs_worst():
    cs = [cand(4, 0.98, 1000, typical=250), cand(1, 0.95, 300, typical=150)]
    assert choose(cs, 5e-6).chosen.T == 1
    assert choose(cs, 5e-6, typical=True).chosen.T == 4


def test_choose_nothing_fits_names_fastest():
    cs = [cand(4, 0.98, 1000), cand(1, 0.95, 300)]
    c = choose(cs, 1e-6)
    assert c.chosen is None and c.fastest.T == 1
    assert "no T meets the 1 µs budget" in c.message and "t1 (T=1) at 3 µs" in c.message


def test_choose_skips_candidates_that_do_not_fit_the_device():
    cs = [cand(4, 0.98, 300, fits=False, note="does not fit: LUT 9000/5280"), cand(1, 0.95, 300)]
    assert choose(cs, 1e-3).chosen.T == 1
    c = choose([cs[0]], 1e-3)
    assert c.chosen is None and "LUT 9000/5280" in c.message


def test_choose_empty_and_ties():
    assert choose([], 1e-6).chosen is None
    cs = [cand(4, 0.98, 600), cand(2, 0.98, 400)]
    assert choose(cs, 1e-3).chosen.T == 2  # equal accuracy: the faster one
    with pytest.raises(ValueError, match="budget must be a positive number"):
        choose(cs, 0)


def test_pareto_plot_writes_png(tmp_path):
    cs = [cand(1, 0.95, 300), cand(4, 0.98, 600)]
    pareto_plot(cs, tmp_path / "p.png", 5e-6, chosen=cs[0])
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_cli_on_random_bundles(tmp_path, capsys):
    for T in (1, 3):
        main(["random-bundle", "-o", str(tmp_path / f"r{T}.scnb"), "--sizes", "784-16-10", "--T", str(T)])
    capsys.readouterr()
    rc = main(["plan", str(tmp_path / "r1.scnb"), str(tmp_path / "r3.scnb"), "--latency-budget", "1s",
               "--clock-mhz", "100", "--limit", "50", "--json", "--plot", str(tmp_path / "plan.png")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["chosen"] in ("r1", "r3") and len(out["candidates"]) == 2
    for c in out["candidates"]:
        assert c["worst_cycles"] >= c["typical_cycles"] > 0
    assert (tmp_path / "plan.png").is_file()
    rc = main(["plan", str(tmp_path / "r1.scnb"), "--latency-budget", "1ns", "--clock-mhz", "100", "--limit", "20"])
    assert rc == 1 and "no T meets the 1 ns budget" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["plan", "--latency-budget", "10us", "--clock-mhz", "100"], "give bundle paths or --pretrained-all"),
    (["plan", "x.scnb", "--latency-budget", "10"], "has no unit"),
    (["plan", "x.scnb", "--latency-budget", "10us"], "exactly one of --clock-mhz F or --device NAME"),
    (["plan", "x.scnb", "--latency-budget", "10us", "--device", "xc7a35t"], "device must be one of ecp5-85f"),
    (["plan", "x.scnb", "--latency-budget", "10us", "--clock-mhz", "fast"], "clock must be a frequency"),
    (["synth", "x.scnb"], "bundle file not found"),
])
def test_plan_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
