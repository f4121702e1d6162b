"""The T planner: choose the number of timesteps against a latency budget.

For every candidate bundle (one per T) the planner measures integer accuracy
with the golden model, takes worst-case and typical cycles from the exact
latency model (:mod:`sc_neurocore.hw.latency`), converts cycles to time at a
given clock or at the Fmax that place-and-route reaches on a device
(:mod:`sc_neurocore.hw.synth`), and recommends the most accurate candidate whose
latency fits the budget (worst case by default; ``typical`` uses the mean over
the dataset). Ties in accuracy go to the faster candidate.

The choice itself is the pure function :func:`choose`, tested on synthetic
candidates.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Candidate", "Choice", "parse_duration", "parse_frequency", "choose", "format_table", "pareto_plot",
           "plot_format", "measure", "plan", "synth_bundle"]

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_FREQ = {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}


def parse_duration(text) -> float:
    """``"10us"``, ``"10 µs"``, ``"0.4ms"``, ``"500ns"``, ``"1e-5s"`` → seconds (> 0).

    A bare number is refused: a latency budget without a unit is ambiguous.
    """
    if not isinstance(text, str):
        raise TypeError(f"latency budget must be a string such as '10us', not {text!r}")
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµμ]*)\s*", text)
    if not m:
        raise ValueError(f"latency budget must be a number with a unit (s, ms, us, ns), not {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    if unit == "":
        raise ValueError(f"latency budget {text!r} has no unit: write e.g. '{m.group(1)}us'")
    if unit.lower() not in _UNITS and unit not in _UNITS:
        raise ValueError(f"unknown time unit {unit!r} in {text!r}: use s, ms, us (or µs) or ns")
    seconds = value * _UNITS.get(unit, _UNITS.get(unit.lower()))
    if not math.isfinite(seconds):
        raise ValueError(f"latency budget {text!r} is too large: it must be a finite duration")
    if not seconds > 0:
        raise ValueError(f"latency budget must be positive, not {text!r}")
    return seconds


def parse_frequency(value) -> float:
    """A clock in MHz (number or ``"100MHz"``) → Hz (> 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            hz = float(value) * 1e6
        except OverflowError:  # an int too large for a float
            hz = math.inf
        if math.isinf(hz):
            raise ValueError(f"clock {value!r} MHz is too large: it must be a finite frequency")
        if not hz > 0:  # also NaN
            raise ValueError(f"clock must be a positive frequency in MHz, not {value!r}")
        return hz
    if not isinstance(value, str):
        raise TypeError(f"clock must be a number of MHz or a string such as '100MHz', not {value!r}")
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
    if not m:
        raise ValueError(f"clock must be a frequency such as '100MHz', not {value!r}")
    unit = m.group(2).lower() or "mhz"
    if unit not in _FREQ:
        raise ValueError(f"unknown frequency unit {m.group(2)!r} in {value!r}: use Hz, kHz, MHz or GHz")
    hz = float(m.group(1)) * _FREQ[unit]
    if not math.isfinite(hz):
        raise ValueError(f"clock {value!r} is too large: it must be a finite frequency")
    if not hz > 0:
        raise ValueError(f"clock must be positive, not {value!r}")
    return hz


@dataclass(frozen=True)
class Candidate:
    """One deployable option: a bundle at some T, with measured accuracy and exact cycles."""

    name: str
    T: int
    accuracy: float
    worst_cycles: int
    typical_cycles: float
    clock_hz: float
    luts: int | None = None
    brams: int | None = None
    fits: bool = True
    note: str = ""

    @property
    def worst_s(self) -> float:
        return self.worst_cycles / self.clock_hz

    @property
    def typical_s(self) -> float:
        return self.typical_cycles / self.clock_hz

    def latency_s(self, typical: bool) -> float:
        return self.typical_s if typical else self.worst_s


@dataclass(frozen=True)
class Choice:
    """The planner's answer: the chosen candidate (or None) and a sentence explaining it."""

    chosen: Candidate | None
    message: str
    fastest: Candidate | None


def choose(candidates, budget_s: float, typical: bool = False) -> Choice:
    """Most accurate candidate whose (worst-case or typical) latency is within ``budget_s``.

    Candidates that do not fit their device are never chosen. Ties in accuracy
    go to the lower latency, then the smaller T. With no candidate within the
    budget, the answer names the fastest option and its latency.
    """
    cands = list(candidates)
    if not isinstance(budget_s, (int, float)) or not budget_s > 0:
        raise ValueError(f"budget must be a positive number of seconds, not {budget_s!r}")
    kind = "typical" if typical else "worst-case"
    usable = [c for c in cands if c.fits]
    if not cands:
        return Choice(None, "no candidates to choose from (give bundles or --pretrained-all)", None)
    if not usable:
        return Choice(None, "no candidate fits the device: " + "; ".join(f"{c.name}: {c.note}" for c in cands), None)
    fastest = min(usable, key=lambda c: (c.latency_s(typical), c.T))
    within = [c for c in usable if c.latency_s(typical) <= budget_s]
    if not within:
        return Choice(None, (f"no T meets the {_fmt_s(budget_s)} budget ({kind}); the fastest option is "
                             f"{fastest.name} (T={fastest.T}) at {_fmt_s(fastest.latency_s(typical))}, "
                             f"{100 * fastest.accuracy:.2f} %"), fastest)
    best = max(within, key=lambda c: (c.accuracy, -c.latency_s(typical), -c.T))
    return Choice(best, (f"choose {best.name} (T={best.T}): {100 * best.accuracy:.2f} % at "
                         f"{_fmt_s(best.latency_s(typical))} {kind}, within {_fmt_s(budget_s)}"), fastest)


def _fmt_s(s: float) -> str:
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.3g} µs"
    return f"{s * 1e9:.3g} ns"


def format_table(cands, budget_s: float, typical: bool, chosen: Candidate | None) -> str:
    lines = ["| T | bundle | accuracy | cycles worst / typical | latency worst / typical | clock | LUT | BRAM | within budget |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(cands, key=lambda c: c.T):
        ok = c.fits and c.latency_s(typical) <= budget_s
        mark = ("**chosen**" if c is chosen else "yes") if ok else ("does not fit" if not c.fits else "no")
        lines.append(f"| {c.T} | {c.name} | {100 * c.accuracy:.2f} % | {c.worst_cycles} / {c.typical_cycles:.1f} | "
                     f"{_fmt_s(c.worst_s)} / {_fmt_s(c.typical_s)} | {c.clock_hz / 1e6:.1f} MHz | "
                     f"{c.luts if c.luts is not None else '–'} | {c.brams if c.brams is not None else '–'} | {mark} |")
    return "\n".join(lines)


_PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def plot_format(path) -> str:
    """The image format of a plot file, from its suffix (``.png``, ``.pdf`` or ``.svg``)."""
    fmt = _PLOT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"the plot file must end in .png, .pdf or .svg, not {str(path)!r}")
    return fmt


def pareto_plot(cands, path, budget_s: float | None = None, typical: bool = False,
                chosen: Candidate | None = None) -> Path:
    """Accuracy vs latency (PNG, PDF or SVG by the suffix of ``path``; matplotlib, headless).

    The file is written atomically (:func:`sc_neurocore.fileio.atomic_write_with`): exactly ``path``,
    complete or not at all. Returns ``path``.
    """
    from .fileio import atomic_write_with, check_output_file

    fmt = plot_format(path)
    path = check_output_file(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    xs = [c.latency_s(typical) * 1e6 for c in cands]
    ys = [100 * c.accuracy for c in cands]
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    for c, x, y in zip(cands, xs, ys):
        ax.annotate(c.name, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)  # two T=4 bundles differ
    # Pareto front: no other candidate is both faster and more accurate.
    front = sorted((c for c in cands if not any(
        o.latency_s(typical) <= c.latency_s(typical) and o.accuracy > c.accuracy for o in cands)),
        key=lambda c: c.latency_s(typical))
    ax.plot([c.latency_s(typical) * 1e6 for c in front], [100 * c.accuracy for c in front], "--", color="tab:gray")
    if budget_s:
        ax.axvline(budget_s * 1e6, color="tab:red", lw=1, label=f"budget {_fmt_s(budget_s)}")
        ax.legend(loc="lower right", fontsize=8)
    if chosen is not None:
        ax.scatter([chosen.latency_s(typical) * 1e6], [100 * chosen.accuracy], s=120, facecolors="none",
                   edgecolors="tab:red", zorder=4)
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{'typical' if typical else 'worst-case'} latency (µs)")
    ax.set_ylabel("integer test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    try:
        return atomic_write_with(path, lambda f: fig.savefig(f, format=fmt))
    finally:
        plt.close(fig)


def candidate_dict(c: Candidate) -> dict:
    d = asdict(c)
    d.update(worst_s=c.worst_s, typical_s=c.typical_s)
    return d


def synth_bundle(bundle, config, device: str, use_cache: bool = True, timeout: float = 7200) -> dict:
    """Generate the core for ``bundle`` with ``config`` and synthesise + place-and-route it for ``device``."""
    from .hw.export import generate_verilog
    from .hw.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="scn-v-") as tmp:
        generate_verilog(bundle, tmp, **config.to_dict())
        return synthesize(tmp, device, use_cache=use_cache, timeout=timeout)


def measure(name: str, bundle, config, x, y, *, clock_hz: float | None = None,
            device: str | None = None) -> Candidate:
    """One candidate: golden-model accuracy on ``(x, y)``, worst-case / mean cycles of the exact latency model,
    and the clock (``clock_hz``, or the Fmax that ``device`` reaches, with its LUT/BRAM use and fit)."""
    import numpy as np

    from .golden import infer
    from .hw.latency import latency_summary

    acc = float(np.mean(infer(bundle.network, x).classes == y))
    lat = latency_summary(bundle.network, config, x)
    luts = brams = None
    fits, note, hz = True, "", clock_hz
    if device:
        r = synth_bundle(bundle, config, device)
        fits = bool(r.get("fits"))
        note = r.get("reason", "")
        util = r.get("utilisation", {})
        luts = (util.get("lut") or {}).get("used")
        brams = (util.get("bram") or {}).get("used")
        hz = (r.get("fmax_mhz") or 1e-9) * 1e6
    return Candidate(name, bundle.network.T, acc, int(lat["worst_case_cycles"]), float(lat["mean_cycles"]),
                     hz, luts, brams, fits, note)


def plan(bundles, config, x, y, budget_s: float, *, clock_hz: float | None = None, device: str | None = None,
         typical: bool = False, check: Callable | None = None) -> tuple[list[Candidate], Choice]:
    """Measure every candidate and choose ``T`` against the latency budget: ``(candidates, choice)``.

    ``bundles``: ``(name, bundle)`` pairs, bundles, or bundle paths / pretrained names (resolved by
    :func:`sc_neurocore.bundle.resolve_bundle`); ``config``: the core options (:class:`~sc_neurocore.hw.config`
    ``CoreConfig``); exactly one of ``clock_hz`` or ``device`` (synthesised; its Fmax is the clock);
    ``(x, y)``: the test images and labels (already limited).  Every candidate is checked (``check(name,
    network)``, then the core geometry) before the first is measured.
    """
    if (clock_hz is None) == (device is None):
        raise ValueError("give exactly one of clock_hz or device")
    pairs = [_named_bundle(b) for b in bundles]
    if not pairs:
        raise ValueError("no candidate bundles")
    for name, b in pairs:
        if check is not None:
            check(name, b.network)
        config.geometry(b.network)
    cands = [measure(name, b, config, x, y, clock_hz=clock_hz, device=device) for name, b in pairs]
    return cands, choose(cands, budget_s, typical)


def _named_bundle(item) -> tuple[str, object]:
    """``(name, bundle)`` from a pair, a bundle (named by its T) or a path / pretrained name."""
    if isinstance(item, tuple) and len(item) == 2:
        return item
    if hasattr(item, "network"):
        return f"T={item.network.T}", item
    from .bundle import load_bundle, resolve_bundle

    p = Path(item)
    if p.exists():
        return p.stem, load_bundle(p)
    return str(item), resolve_bundle(pretrained=str(item))
