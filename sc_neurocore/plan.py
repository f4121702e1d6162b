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

import dataclasses
import math
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Candidate", "Choice", "Build", "parse_duration", "parse_frequency", "choose", "format_table",
           "pareto_plot", "plot_format", "measure", "plan", "synth_bundle", "option_space", "search_build",
           "plan_device", "build_command", "format_device_table", "verify_build"]

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
    #: the generator options of this candidate's build (``CoreConfig.to_dict()``), when the planner chose them
    config: dict | None = None
    #: predicted (or, after ``--verify``, measured) use: {lut, ff, bram, dsp}
    resources: dict | None = None
    device: str | None = None
    command: str = ""
    #: cycles per image of the test images sent back to back (``latency_summary``'s ``stream_cycles_per_image``:
    #: the typical cycles unless the build is double-buffered)
    stream_cycles: float | None = None

    @property
    def worst_s(self) -> float:
        return self.worst_cycles / self.clock_hz

    @property
    def typical_s(self) -> float:
        return self.typical_cycles / self.clock_hz

    def latency_s(self, typical: bool) -> float:
        return self.typical_s if typical else self.worst_s

    @property
    def images_per_s(self) -> float | None:
        """Throughput with the test images streamed back to back, at the candidate's clock."""
        return None if not self.stream_cycles else self.clock_hz / self.stream_cycles


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
                chosen=None) -> Path:
    """Accuracy vs latency (PNG, PDF or SVG by the suffix of ``path``; matplotlib, headless).

    Points are labelled by bundle name; candidates planned for several devices get one marker per
    device; the dashed line is the Pareto front (per device), the red line the budget, and the chosen
    candidate(s) (``chosen``: one or a list) are circled. The file is written atomically
    (:func:`sc_neurocore.fileio.atomic_write_with`): exactly ``path``, complete or not at all. Returns ``path``.
    """
    from .fileio import atomic_write_with, check_output_file

    fmt = plot_format(path)
    path = check_output_file(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cands = list(cands)
    chosen = [] if chosen is None else list(chosen) if isinstance(chosen, (list, tuple)) else [chosen]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    devices = list(dict.fromkeys(c.device for c in cands))
    markers = "osD^v"
    for di, dev in enumerate(devices):
        group = [c for c in cands if c.device == dev]
        xs = [c.latency_s(typical) * 1e6 for c in group]
        ys = [100 * c.accuracy for c in group]
        ax.scatter(xs, ys, marker=markers[di % len(markers)], zorder=3, label=dev if len(devices) > 1 or dev else None)
        for c, x, y in zip(group, xs, ys):
            ax.annotate(c.name, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)
        # Pareto front: no other candidate is both faster and more accurate.
        front = sorted((c for c in group if not any(
            o.latency_s(typical) <= c.latency_s(typical) and o.accuracy > c.accuracy for o in group)),
            key=lambda c: c.latency_s(typical))
        ax.plot([c.latency_s(typical) * 1e6 for c in front], [100 * c.accuracy for c in front], "--", color="tab:gray")
    if budget_s:
        ax.axvline(budget_s * 1e6, color="tab:red", lw=1, label=f"budget {_fmt_s(budget_s)}")
    if budget_s or any(devices):
        ax.legend(loc="lower right", fontsize=8)
    for c in chosen:
        ax.scatter([c.latency_s(typical) * 1e6], [100 * c.accuracy], s=120, facecolors="none",
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
    d.update(worst_s=c.worst_s, typical_s=c.typical_s, images_per_s=c.images_per_s)
    return d


def synth_bundle(bundle, config, device: str, use_cache: bool = True, timeout: float = 7200) -> dict:
    """Generate the core for ``bundle`` with ``config`` and synthesise + place-and-route it for ``device``."""
    from .hw.export import generate_verilog
    from .hw.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="scn-v-") as tmp:
        generate_verilog(bundle, tmp, config=config, device=device)
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
    pairs = _checked_pairs(bundles, check)
    for name, b in pairs:
        config.geometry(b.network)
    cands = [measure(name, b, config, x, y, clock_hz=clock_hz, device=device) for name, b in pairs]
    return cands, choose(cands, budget_s, typical)


def _checked_pairs(bundles, check: Callable | None) -> list[tuple[str, object]]:
    """``(name, bundle)`` of every candidate, each checked (``check(name, network)``) before any is measured."""
    pairs = [_named_bundle(b) for b in bundles]
    if not pairs:
        raise ValueError("no candidate bundles")
    for name, b in pairs:
        if check is not None:
            check(name, b.network)
    return pairs


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


# -- the device-aware planner: search the generator options with the resource model -----------------

# LUT and FF estimates stay below hw.resources.lut_margin(family) of the device's capacity (from the
# model's largest under-prediction on its held-back runs); block RAM, SPRAM and DSP counts are exact and
# may use the whole device.

_LANE_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_EVENT_STEPS = (1, 2, 4, 8, 16)
_PPB_STEPS = (8, 16)


@dataclass(frozen=True)
class Build:
    """One configuration of the core for one network on one device: options, predicted resources and cycles."""

    config: object            # hw.config.CoreConfig
    resources: object         # hw.resources.Resources
    worst_cycles: int
    typical_cycles: float | None = None
    clock_hz: float | None = None   # the family's measured clock for this kind of build (hw.resources.fmax_mhz)

    def cycles(self, typical: bool) -> float:
        return self.typical_cycles if typical and self.typical_cycles is not None else self.worst_cycles


def _double_buffered(network, double_buffer: bool) -> bool:
    """Whether the planner builds ``network`` with ``double_buffer``: asked for, and a network it serves
    (:func:`~sc_neurocore.hw.config.double_buffer_refusal`; others are planned without it)."""
    from .hw.config import double_buffer_refusal

    return bool(double_buffer) and double_buffer_refusal(network) is None


def option_space(network, device=None, double_buffer: bool = False):
    """Every :class:`~sc_neurocore.hw.config.CoreConfig` the planner tries for ``network``: per dense layer
    lanes of powers of two up to the layer and the layer itself (on a ``device``, none wider than the widest
    layer routed on its family, :func:`~sc_neurocore.hw.resources.routed_lanes`), events 1 … 16 (a layer after a conv
    layer takes one event; a conv layer computes all its channels at once), 8 or 16 pixels per beat.
    On a ``device`` with SPRAMs (the ``ice40-up5k``) each of them also with its weights there
    (``weight_port=True, weight_memory="single_port"``: loaded at run time, since SPRAM has no initial
    contents) — the only way a full-size MNIST network's weights fit that chip. ``double_buffer``: every
    configuration double-buffered, where the network allows it (:func:`_double_buffered`)."""
    import itertools

    from .hw.config import CoreConfig

    memories = _weight_layouts(network, device)
    db = {"double_buffer": True} if _double_buffered(network, double_buffer) else {}
    # on a device, no layer wider than the widest routed on its family (hw.resources.routed_lanes)
    from .hw.resources import routed_lanes

    cap = None if device is None else routed_lanes(device)   # a device name or a Device

    L = len(network.layers)
    lanes, events = [], []
    for i, lp in enumerate(network.layers):
        if lp.kind == "conv":
            lanes.append((None,))
        else:
            steps = {v for v in _LANE_STEPS if v < lp.n_out} | {lp.n_out}
            lanes.append(tuple(sorted(v for v in steps if cap is None or v <= cap)))
        if lp.kind == "conv" or (i and network.layers[i - 1].kind == "conv"):
            events.append((1,) if i else (None,))
        else:
            events.append(tuple(v for v in _EVENT_STEPS if v <= max(1, lp.n_in)))
    for ppb in _PPB_STEPS:
        for ln in itertools.product(*lanes):
            for ev in itertools.product(*events):
                if ev[0] is not None and ppb % ev[0]:
                    continue
                for mem in memories:
                    yield CoreConfig(lanes=ln if L > 1 else ln[0], events=ev if L > 1 else ev[0],
                                     pixels_per_beat=ppb, **mem, **db)


def _per_layer_text(v) -> str:
    """A per-layer option as the command line writes it (``16,10``); ``–`` for a layer left to its default."""
    return ",".join("–" if x is None else str(x) for x in v) if isinstance(v, (tuple, list)) else str(v)


def _weight_layouts(network, device) -> tuple[dict, ...]:
    """The weight-memory options tried: block RAM, and on a device with SPRAMs (dense networks; a conv layer
    has no weight port) single-port banks there, written at run time."""
    from .hw.devices import parse_device

    if device is None or not parse_device(device if isinstance(device, str) else device.name).sprams \
            or any(lp.kind == "conv" for lp in network.layers):
        return ({},)
    return ({}, {"weight_port": True, "weight_memory": "single_port"})


def _smallest_configs(network, device):
    """One lane and one event per layer, in each weight layout of :func:`_weight_layouts`."""
    from .hw.config import CoreConfig

    ones = tuple(None if lp.kind == "conv" else 1 for lp in network.layers)
    return [CoreConfig(lanes=ones, events=ones, **mem) for mem in _weight_layouts(network, device)]


#: Images the typical-latency ranking of the shortlist reads (the chosen build's mean is over all of them).
_RANK_SAMPLE = 1000


def search_build(network, device: str, *, activity=None, typical: bool = False, shortlist: int = 64,
                 double_buffer: bool = False):
    """The fastest configuration of :func:`option_space` that fits ``device`` by the resource model.

    Returns ``(build, None)``, or ``(None, reason)`` naming what runs out (and by how much) for the
    smallest configuration when nothing fits. Worst-case cycles rank every fitting configuration;
    with ``typical`` (and an :class:`~sc_neurocore.hw.latency.Activity`), the ``shortlist`` fastest by the
    worst case are ranked again by their mean cycles over the recorded images.
    """
    fitting, why = _fitting(network, device, double_buffer)
    if not fitting:
        return None, why
    return _ranked(fitting, activity if typical else None, device, shortlist), None


def _clock_hz(device, config) -> float | None:
    """The clock a build of ``config`` may promise on ``device``: builds with LUT-made products
    (``dsp_limit``) have their own, slower measured clock (:func:`~sc_neurocore.hw.resources.fmax_mhz`)."""
    from .hw.devices import parse_device
    from .hw.resources import fmax_mhz

    mhz = fmax_mhz(parse_device(device).name, soft=config.dsp_limit is not None)
    return None if mhz is None else mhz * 1e6


def _fitting(network, device, double_buffer: bool = False):
    """Every configuration of :func:`option_space` that fits ``device``, fastest (worst case, in seconds at
    the build's clock, :func:`_clock_hz`) first: ``([(worst cycles, config, resources), …], None)``, or
    ``([], reason)``."""
    from .hw.devices import parse_device
    from .hw.latency import worst_case_cycles
    from .hw.resources import estimate, fmax_mhz, lut_margin

    dev = parse_device(device)
    margin, soft_margin = lut_margin(dev.family), lut_margin(dev.family, soft=True)
    # LUT-made products are proposed only where such a build was both held back (margin) and routed (clock)
    soft_ok = soft_margin is not None and fmax_mhz(dev.name, soft=True) is not None
    fitting = []
    for cfg in option_space(network, dev, double_buffer):
        try:
            geom = cfg.geometry(network)
            r = estimate(geom, target=dev.name)
        except ValueError:   # not a valid geometry, or a single-port bank deeper than one SPRAM
            continue
        m = margin
        if r.dsp > dev.dsps:
            # More products than DSPs: all the DSPs take products and the rest are built from LUTs
            # (CoreConfig.dsp_limit). The model predicts those worse (its held-back soft-multiplier runs),
            # so they get their own, smaller margin; none where no such run was measured.
            if not soft_ok:
                continue
            cfg = dataclasses.replace(cfg, dsp_limit=dev.dsps)
            r, m = estimate(cfg.geometry(network), target=dev.name), soft_margin
        if r.fits(dev, m):
            fitting.append((worst_case_cycles(network, cfg), cfg, r))
    if not fitting:
        why = []
        for cfg in _smallest_configs(network, dev):
            try:
                r = estimate(cfg.geometry(network), target=dev.name)
            except ValueError as e:   # a single-port bank deeper than one SPRAM
                why.append(str(e))
                continue
            why.append(", ".join(
                f"{k.upper()} {v}/{c}" + (f" (+{v - c})" if v > c else f" (over the {margin:.0%} margin: "
                                                                    f"{int(margin * c)})")
                for k, v, c in (("lut", r.lut, dev.luts), ("ff", r.ff, dev.ffs), ("bram", r.bram, dev.brams),
                                ("dsp", r.dsp, dev.dsps), ("spram", r.spram, dev.sprams))
                if v > (c if k in ("bram", "dsp", "spram") else margin * c)))
        text = f"no configuration fits the {dev.name}: even one lane and one event per layer needs " + why[0]
        if len(why) > 1:
            text += f"; with the weights in SPRAM: {why[1]}"
        return [], text
    # Shortest worst case at the build's clock; ties to weights in the bitstream (no run-time load), then to
    # products in DSPs only (the better-predicted build), then the smaller core (LUTs), then the options' order.
    mhz = {soft: fmax_mhz(dev.name, soft=soft) for soft in (False, soft_ok)}
    fitting.sort(key=lambda t: (t[0] / mhz[t[1].dsp_limit is not None], t[1].weight_memory != "block",
                                t[1].dsp_limit is not None, t[2].lut))
    return fitting, None


def _ranked(fitting, activity, device, shortlist: int = 64) -> Build:
    """The fastest of :func:`_fitting`'s list on ``device``: by the worst case, or with an ``activity`` by the
    mean latency (cycles at the build's clock) of the ``shortlist`` fastest over its first
    :data:`_RANK_SAMPLE` images."""
    if activity is None:
        w, cfg, r = fitting[0]
        return Build(cfg, r, w, clock_hz=_clock_hz(device, cfg))
    ranked = []
    sample = activity.head(_RANK_SAMPLE)
    for w, cfg, r in fitting[:shortlist]:
        hz = _clock_hz(device, cfg)
        ranked.append((float(sample.cycles(cfg).mean()) / hz, w, cfg, r, hz))
    ranked.sort(key=lambda t: (t[0], t[1] / t[4], t[2].weight_memory != "block", t[2].dsp_limit is not None,
                               t[3].lut))
    t, w, cfg, r, hz = ranked[0]
    return Build(cfg, r, w, t * hz, hz)


def build_command(source: str, device: str, config) -> str:
    """The ``sc-neurocore synth`` command that builds ``config`` on ``device``; ``source`` is the command's
    bundle argument (``--pretrained mnist-t4`` or a quoted path)."""
    arg = _per_layer_text
    src = source
    opts = [f"--lanes {arg(config.lanes)}" if config.lanes is not None and not (
        isinstance(config.lanes, tuple) and None in config.lanes) else "",
            f"--events {arg(config.events)}" if config.events is not None and not (
        isinstance(config.events, tuple) and None in config.events) else "",
            f"--pixels-per-beat {config.pixels_per_beat}",
            "--weight-port" if config.weight_port else "",
            f"--weight-memory {config.weight_memory}" if config.weight_memory != "block" else "",
            f"--dsp-limit {config.dsp_limit}" if config.dsp_limit is not None else "",
            "--double-buffer" if config.double_buffer else ""]
    return " ".join(p for p in (f"sc-neurocore synth {src} --device {device}", *opts) if p)


def plan_device(bundles, device: str, x, y, budget_s: float, *, typical: bool = False,
                accuracy_floor: float | None = None, check: Callable | None = None,
                sources: dict | None = None, activities: dict | None = None,
                double_buffer: bool = False) -> tuple[list[Candidate], Choice]:
    """Choose T for a real device: per bundle the fastest configuration that fits ``device`` by the resource
    model (:func:`search_build`), at the family's measured Fmax for that kind of build; then :func:`choose`
    against the budget.

    ``accuracy_floor`` (a fraction) drops candidates below it from the choice (they stay in the table);
    ``sources`` maps a bundle's name to the ``synth`` argument that names it (``--pretrained NAME`` or its
    path) for the command line each candidate prints (default: the name, quoted, as a path);
    ``activities`` (a dict, by bundle identity) keeps each bundle's golden-model record for the next device;
    ``double_buffer``: search double-buffered builds (``--double-buffer``) for the bundles that allow them.
    Every candidate reports its throughput with the test images streamed back to back.
    """
    import shlex

    import numpy as np

    from .hw.devices import parse_device
    from .hw.latency import Activity
    from .hw.resources import model

    dev = parse_device(device)
    fmax_hz = model()["families"][dev.family]["fmax_mhz"] * 1e6
    pairs = _checked_pairs(bundles, check)
    cands = []
    for name, b in pairs:
        fitting, why = _fitting(b.network, dev.name, double_buffer)
        if not fitting:  # fits no configuration: no golden-model run is needed to say so
            cands.append(Candidate(name, b.network.T, math.nan, 0, 0.0, fmax_hz, fits=False, note=why,
                                   device=dev.name))
            continue
        act = activities.get(id(b)) if activities is not None else None
        if act is None:
            act = Activity(b.network, x)
            if activities is not None:
                activities[id(b)] = act
        acc = float(np.mean(act.classes == y))
        build = _ranked(fitting, act if typical else None, dev.name)
        mean = float(act.cycles(build.config).mean())
        r = build.resources
        note = "" if accuracy_floor is None or acc >= accuracy_floor else \
            f"below the accuracy floor ({100 * acc:.2f} % < {100 * accuracy_floor:.2f} %)"
        cands.append(Candidate(name, b.network.T, acc, build.worst_cycles, mean, build.clock_hz, r.lut, r.bram,
                               True, note, build.config.to_dict(), r.as_dict(), dev.name,
                               build_command((sources or {}).get(name) or shlex.quote(name), dev.name,
                                             build.config), act.stream_cycles_per_image(build.config)))
    usable = [c for c in cands if not (accuracy_floor is not None and c.fits and c.accuracy < accuracy_floor)]
    choice = choose(usable, budget_s, typical)
    if not usable:
        choice = Choice(None, f"no candidate reaches the accuracy floor of {100 * accuracy_floor:.2f} %", None)
    elif choice.chosen is None and choice.fastest is not None:
        f = choice.fastest
        need = f.latency_s(typical) / budget_s
        choice = Choice(None, choice.message + (f" on the {dev.name} (fastest build that fits: {_opts(f.config)}); "
                                                f"meeting the budget would take {need:.1f}x fewer cycles or a "
                                                f"{need * f.clock_hz / 1e6:.0f} MHz clock"), f)
    elif choice.chosen is not None:
        c = choice.chosen
        choice = Choice(c, choice.message + f" on the {dev.name} with {_opts(c.config)} at {c.clock_hz / 1e6:.1f} MHz",
                        choice.fastest)
    return cands, choice


def _opts(config: dict | None) -> str:
    if not config:
        return "default options"

    arg = _per_layer_text
    dsp = f", {config['dsp_limit']} DSP products (the rest from LUTs)" if config.get("dsp_limit") is not None else ""
    spram = (", weights in SPRAM (loaded at run time through the weight port: `sc-neurocore board ... --load`)"
             if config.get("weight_memory") == "single_port" else "")
    db = ", double-buffered input" if config.get("double_buffer") else ""
    return (f"lanes {arg(config['lanes'])}, events {arg(config['events'])}, {config['pixels_per_beat']} "
            f"pixels/beat{dsp}{spram}{db}")


def _fmt_rate(per_s: float | None) -> str:
    return "–" if per_s is None else f"{per_s:,.0f}".replace(",", " ")


def format_device_table(cands, budget_s: float, typical: bool, chosen: Candidate | None, device: str) -> str:
    """The device plan as a Markdown table: per bundle its fastest fitting build and what it uses."""
    from .hw.devices import parse_device

    dev = parse_device(device)
    spram = f", {dev.sprams} SPRAM" if dev.sprams else ""
    lines = [f"**{dev.name}** ({dev.chip.name}: {dev.luts} LUT4, {dev.brams} block RAM, {dev.dsps} DSP{spram})", "",
             "| bundle | T | accuracy | options (lanes / events / pixels per beat [/ DSP limit]) | LUT | FF | BRAM | DSP | clock | "
             "cycles worst / typical | latency worst / typical | images/s back to back | within budget |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(cands, key=lambda c: (c.T, c.name)):
        if not c.fits:
            acc = "–" if math.isnan(c.accuracy) else f"{100 * c.accuracy:.2f} %"
            lines.append(f"| {c.name} | {c.T} | {acc} | {c.note} | | | | | | | | | does not fit |")
            continue
        r, o = c.resources, c.config
        arg = _per_layer_text

        ok = c.latency_s(typical) <= budget_s
        mark = ("**chosen**" if c is chosen else "yes") if ok and not c.note else (c.note or "no")
        lim = f" / {o['dsp_limit']}" if o.get("dsp_limit") is not None else ""
        lim += " / weights in SPRAM" if o.get("weight_memory") == "single_port" else ""
        lim += " / double-buffered" if o.get("double_buffer") else ""
        bram = f"{r['bram']} + {r['spram']} SPRAM" if r.get("spram") else f"{r['bram']}"
        lines.append(f"| {c.name} | {c.T} | {100 * c.accuracy:.2f} % | {arg(o['lanes'])} / {arg(o['events'])} / "
                     f"{o['pixels_per_beat']}{lim} | {r['lut']} | {r['ff']} | {bram} | {r['dsp']} | "
                     f"{c.clock_hz / 1e6:.1f} MHz | {c.worst_cycles} / {c.typical_cycles:.1f} | "
                     f"{_fmt_s(c.worst_s)} / {_fmt_s(c.typical_s)} | {_fmt_rate(c.images_per_s)} | {mark} |")
    lines.append("")
    from .hw.resources import lut_margin

    soft = ""
    if any(c.fits and c.config.get("dsp_limit") is not None for c in cands):
        soft = (f"; {lut_margin(dev.family, soft=True):.0%} for a build with a DSP limit, whose LUT-built "
                "products it predicts worse")
    lines.append(f"LUT and FF are the resource model's estimates (kept within {lut_margin(dev.family):.0%} of the "
                 f"device, the margin its held-back runs call for{soft}); block RAM, SPRAM and DSP are exact; the "
                 "clock is the slowest Fmax measured on the family for that kind of build"
                 + (" (products in DSPs only, or some from LUTs)." if soft else "."))
    return "\n".join(lines)


def verify_build(bundle, cand: Candidate, device: str, *, timeout: float = 7200) -> dict:
    """Synthesise + place-and-route the chosen build: measured against predicted resources, Fmax and latency."""
    from .hw.config import CoreConfig

    o = dict(cand.config)
    for k in ("lanes", "events"):
        if isinstance(o.get(k), list):
            o[k] = tuple(o[k])
    r = synth_bundle(bundle, CoreConfig(**o), device, timeout=timeout)
    util = r.get("utilisation", {})
    rows = ["| resource | predicted | measured |", "|---|---|---|"]
    measured = {}
    for k in ("lut", "ff", "bram", "dsp") + (("spram",) if "spram" in cand.resources else ()):
        m = (util.get(k) or {}).get("used")
        measured[k] = m
        rows.append(f"| {k.upper()} | {cand.resources[k]} | {m if m is not None else '–'} |")
    fmax = r.get("fmax_mhz")
    rows.append(f"| Fmax | {cand.clock_hz / 1e6:.1f} MHz | {fmax if fmax is not None else '–'} MHz |")
    if fmax:
        rows.append(f"| worst / typical latency | {_fmt_s(cand.worst_s)} / {_fmt_s(cand.typical_s)} | "
                    f"{_fmt_s(cand.worst_cycles / (fmax * 1e6))} / {_fmt_s(cand.typical_cycles / (fmax * 1e6))} |")
    head = (f"--verify {cand.name} on the {device}: " +
            ("fits" if r.get("fits") else f"DOES NOT FIT ({r.get('reason', '')})"))
    return {"bundle": cand.name, "device": device, "fits": bool(r.get("fits")), "predicted": cand.resources,
            "measured": measured, "fmax_mhz": fmax, "predicted_fmax_mhz": cand.clock_hz / 1e6,
            "text": head + "\n" + "\n".join(rows)}
