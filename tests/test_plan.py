"""The T planner (``sc_neurocore.plan``): budget parsing, the choice on synthetic candidates, the Pareto plot, the
library's plan() (the ``plan`` subcommand is in tests/test_cli_synth.py)."""

import numpy as np
import pytest
from tolerance import close

from sc_neurocore.plan import Candidate, choose, parse_duration, parse_frequency, pareto_plot


def cand(T, acc, worst, typical=None, clock=100e6, fits=True, note=""):
    return Candidate(f"t{T}", T, acc, worst, typical if typical is not None else worst / 2, clock, fits=fits, note=note)


@pytest.mark.parametrize("text, seconds", [
    ("10us", 10e-6), ("10 µs", 10e-6), ("10μs", 10e-6), ("0.4ms", 0.4e-3), ("500ns", 500e-9), ("1e-5s", 1e-5),
    ("2 s", 2.0), ("10US", 10e-6),
])
def test_parse_duration(text, seconds):
    # one float parse and one multiplication by the unit, against a literal: two roundings
    assert parse_duration(text) == close(seconds, dtype=np.float64, terms=1, ops=2, scale=seconds)


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


# --- issue 12 ----------------------------------------------------------------------------------------

from pathlib import Path

from sc_neurocore.bundle import random_bundle, save_bundle


@pytest.mark.parametrize("text", ["1e400us", "1e400 s", "1e999ns"])
def test_parse_duration_refuses_infinite(text):
    with pytest.raises(ValueError, match=r"latency budget .* is too large: it must be a finite duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["1e400", "1e400MHz", "1e300GHz", 1e303, 10 ** 400, float("inf")])
def test_parse_frequency_refuses_infinite(value):
    with pytest.raises(ValueError, match="is too large: it must be a finite frequency"):
        parse_frequency(value)


def test_pareto_plot_is_atomic(tmp_path, monkeypatch):
    import matplotlib.figure

    p = tmp_path / "p.png"
    p.write_bytes(b"the previous plot")

    def broken_savefig(self, fname, *a, **k):  # dies half-way through writing
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG half")
        else:
            Path(fname).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        pareto_plot([cand(1, 0.95, 300)], p, 5e-6)
    assert p.read_bytes() == b"the previous plot" and [q.name for q in tmp_path.iterdir()] == ["p.png"]


def test_pareto_plot_returns_the_path_and_refuses_unknown_formats(tmp_path):
    cs = [cand(1, 0.95, 300), cand(4, 0.98, 600)]
    assert pareto_plot(cs, tmp_path / "p.svg", 5e-6) == tmp_path / "p.svg"
    assert b"<svg" in (tmp_path / "p.svg").read_bytes()
    with pytest.raises(ValueError, match=r"must end in \.png, \.pdf or \.svg"):
        pareto_plot(cs, tmp_path / "p", 5e-6)
    assert [q.name for q in tmp_path.iterdir()] == ["p.svg"]


def test_plan_library_measures_and_chooses_without_the_cli(tmp_path):
    from sc_neurocore.bundle import load_bundle
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.plan import plan

    for T in (1, 3):
        save_bundle(random_bundle((20, 6, 3), T, seed=1), tmp_path / f"r{T}.scnb")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 20), dtype=np.uint8), rng.integers(0, 3, 12)
    seen = []
    cands, choice = plan([tmp_path / "r1.scnb", ("three", load_bundle(tmp_path / "r3.scnb"))], CoreConfig(), x, y,
                         1.0, clock_hz=100e6, check=lambda name, net: seen.append((name, net.T)))
    assert seen == [("r1", 1), ("three", 3)]  # every candidate checked before any is measured
    assert [c.name for c in cands] == ["r1", "three"] and [c.T for c in cands] == [1, 3]
    assert all(c.worst_cycles >= c.typical_cycles > 0 and c.clock_hz == 100e6 for c in cands)
    assert choice.chosen in cands
    with pytest.raises(ValueError, match="exactly one of clock_hz or device"):
        plan([tmp_path / "r1.scnb"], CoreConfig(), x, y, 1.0)
