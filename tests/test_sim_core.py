"""cocotb regression of the generated core (sc_neurocore.hw.export) in Icarus and Verilator.

One pytest entry point, :func:`test_core`, parametrised over simulator and
core configuration; each configuration runs its traffic scenario through
:func:`sc_neurocore.sim.runner.run_case` (``cocotb_tools.runner``), one build
folder per byte-identical Verilog in the build cache (``sim/runner.py``). Every output beat is
checked bit-exactly and in order against the golden model, and with gaps and
back-pressure off every image's cycles against ``sc_neurocore.hw.latency``.

Environment: ``SCN_SIM_N`` images per MNIST case (default 2 in the fast set,
200 in the slow one), ``WAVES=1`` for wave dumps. Long cases carry the ``slow``
marker (``pytest -m slow``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest

from sc_neurocore.bundle import Bundle, random_bundle
from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.params import LayerParams, NetworkParams
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.sim.runner import CaseOptions, Core, available_simulators, generate_core, run_case

try:
    import sc_neurocore.hw.export  # noqa: F401
    HAVE_HW = True
except ImportError:  # pragma: no cover - the generator is another module's work
    HAVE_HW = False

pytestmark = [pytest.mark.sim, pytest.mark.skipif(not HAVE_HW, reason="sc_neurocore.hw.export not available")]
SIMS = available_simulators()


def corner_bundle(sizes, T, *, seed=0, encoding="direct", reset="subtract", readout="spike_count",
                  weight_bits=8, membrane_bits=16, leak_shift=3, current_shift=None, threshold_div=1,
                  extreme_weights=False) -> Bundle:
    """A random bundle with chosen corner parameters (small membranes saturate, ``current_shift=0``
    makes huge currents, ``extreme_weights`` uses only +-max weights)."""
    b = random_bundle(tuple(sizes), T, weight_bits=weight_bits, seed=seed, encoding=encoding, reset=reset,
                      readout=readout, membrane_bits=membrane_bits, leak_shift=leak_shift)
    rng = np.random.default_rng(seed + 99)
    layers = []
    for layer in b.network.layers:
        w = layer.weight
        if extreme_weights:
            wmax = (1 << (weight_bits - 1)) - 1
            w = np.where(rng.random(w.shape) < 0.5, -wmax, wmax)
        cs = layer.current_shift if current_shift is None else current_shift
        thr = max(1, layer.threshold // threshold_div)
        layers.append(LayerParams(w, weight_bits, thr, leak_shift, cs, membrane_bits))
    return Bundle(NetworkParams(tuple(layers), T, encoding, reset, readout), {"kind": "corner", "seed": seed})


def corner_images(n_inputs: int, n: int, seed: int = 0) -> np.ndarray:
    """All-zero, all-max, a checkerboard of 0/255, then random images (some sparse)."""
    rng = np.random.default_rng(seed)
    fixed = [np.zeros(n_inputs), np.full(n_inputs, 255), (np.arange(n_inputs) % 2) * 255]
    rand = rng.integers(0, 256, size=(max(0, n - 3), n_inputs))
    rand[::2] *= rng.random((rand[::2].shape[0], n_inputs)) < 0.3
    return np.concatenate([np.asarray(fixed).reshape(3, n_inputs), rand]).astype(np.uint8)[:n]


def mnist_case_bundle() -> Bundle:
    from sc_neurocore.bundle import pretrained_names, resolve_bundle

    if "mnist-t4" in pretrained_names():
        return resolve_bundle(pretrained="mnist-t4")
    return random_bundle((784, 128, 10), 4, seed=0)


def lite_bundle() -> Bundle:
    from sc_neurocore.bundle import resolve_bundle

    return resolve_bundle(pretrained="mnist-t4-lite")


#: the compact bundle's ECP5-25F configuration (README "FPGA synthesis")
LITE_GEN = {"lanes": (16, 10), "events": (8, 8)}


def mnist_images(n: int) -> np.ndarray:
    from sc_neurocore.data import DataError, load_mnist

    try:
        return load_mnist().test_x[:n]
    except DataError as e:
        pytest.skip(str(e))


# Found by this regression and fixed in hw/core.py: with lanes < n_out, a group multiplexer became a
# combinational `always @*` block that Icarus (-g2012) never ran at time 0, so Icarus saw X in the first
# accumulator of a grouped layer (wrong scores or a stalled core; Verilator and Amaranth's simulator were
# fine). The cases below with `lanes` set cover it; tests/test_hw_sim.py checks the Verilog statically.


@dataclass
class Case:
    bundle: callable
    images: callable
    gen: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    mutate: callable | None = None
    slow: bool = False
    sims: tuple = ("icarus", "verilator")
    icarus_marks: tuple = ()


def _n(default: int) -> int:
    return int(os.environ.get("SCN_SIM_N", default))


def _off_by_one_threshold(b: Bundle, layer: int = -1) -> Bundle:
    """The mutant: one layer's threshold (default the output layer's) one higher than the bundle's."""
    layers = list(b.network.layers)
    lp = layers[layer]
    layers[layer] = LayerParams(lp.weight, lp.weight_bits, lp.threshold + 1, lp.leak_shift, lp.current_shift,
                                lp.membrane_bits)
    n = b.network
    return Bundle(NetworkParams(tuple(layers), n.T, n.encoding, n.reset, n.readout, n.rate_seed), b.provenance)


def mutant_base() -> Bundle:
    """A network whose output-layer threshold is small, so off-by-one changes 11 of the 40 corner images."""
    return corner_bundle((12, 6, 3), 4, seed=1, readout="spike_count", leak_shift=0, threshold_div=4,
                         weight_bits=3)


A = lambda: corner_bundle((12, 6, 3), 1, seed=1, readout="spike_count", membrane_bits=8, leak_shift=0,  # noqa: E731
                          current_shift=0, threshold_div=4)
CASES = {
    # direct / subtract / spike_count, T=1 (1-bit scores), 8-bit membrane saturating on huge currents
    "direct-sub-count-T1-sat": Case(A, lambda: corner_images(12, 40, 1), gen={"pixels_per_beat": 4}),
    # rate / zero / membrane, 6-bit membrane, 4-bit weights, lanes and events split the layers
    "rate-zero-membrane-T7": Case(
        lambda: corner_bundle((20, 10, 5), 7, seed=2, encoding="rate", reset="zero", readout="membrane",
                              weight_bits=4, membrane_bits=6, leak_shift=2, extreme_weights=True),
        lambda: corner_images(20, 24, 2), gen={"pixels_per_beat": 4, "lanes": 3, "events": 2}),
    # direct / zero / membrane, 3 layers, T=40, 16-bit weights, 20-bit membrane, one padded beat
    "direct-zero-membrane-T40-deep": Case(
        lambda: corner_bundle((10, 8, 6, 4), 40, seed=3, reset="zero", readout="membrane", weight_bits=16,
                              membrane_bits=20, leak_shift=1),
        lambda: corner_images(10, 12, 3), gen={"pixels_per_beat": 16}),
    # rate / subtract / spike_count, 2-bit weights, no leak
    "rate-sub-count-w2": Case(
        lambda: corner_bundle((9, 7, 2), 5, seed=4, encoding="rate", readout="spike_count", weight_bits=2,
                              membrane_bits=4, leak_shift=0, threshold_div=2),
        lambda: corner_images(9, 24, 4), gen={"pixels_per_beat": 2, "lanes": 2}),
    # only the last layer grouped (lanes < n_out there): Icarus saw X in score 0 and the class before the fix
    "direct-last-layer-grouped": Case(lambda: random_bundle((20, 12, 5), 3, seed=1),
                                      lambda: corner_images(20, 6, 8), gen={"lanes": (12, 1)}, sims=("icarus",)),
    # direct with 1-bit inputs (pixel >= 128): layer 1 adds weights, no multipliers; 4 and 1 groups per layer
    "direct-binary-input": Case(lambda: random_bundle((20, 12, 5), 3, seed=7, input_bits=1),
                                lambda: corner_images(20, 24, 9), gen={"lanes": (3, 5), "events": (2, 1),
                                                                       "pixels_per_beat": 4}),
    # DSP vs LUT multipliers: 6 of layer 1's 12 pixel products as shift-and-add (dsp_limit), extreme weights
    "direct-dsp-limit": Case(
        lambda: corner_bundle((16, 6, 3), 3, seed=9, readout="membrane", membrane_bits=12, extreme_weights=True),
        lambda: corner_images(16, 24, 10), gen={"lanes": (6, 3), "events": (2, 1), "pixels_per_beat": 4,
                                                "dsp_limit": 6}),
    # 16 events per cycle in layer 2: its adder tree registers two partial sums of 8 (one more cycle)
    "direct-wide-tree": Case(
        lambda: corner_bundle((12, 20, 4), 3, seed=12, readout="spike_count", membrane_bits=10),
        lambda: corner_images(12, 24, 12), gen={"lanes": (5, 2), "events": (4, 16), "pixels_per_beat": 4}),
    # double-buffered input: the next image streams into layer 1 while one computes, back to back, with
    # saturating extreme weights, all-zero / all-max images and a padded last group (lanes 3 of 10)
    "direct-double-buffer": Case(
        lambda: corner_bundle((18, 10, 4), 3, seed=14, readout="membrane", membrane_bits=10, extreme_weights=True),
        lambda: corner_images(18, 30, 14), gen={"lanes": (3, 4), "events": (2, 2), "pixels_per_beat": 4,
                                                "double_buffer": True}),
    # ... with random gaps, back-pressure and resets in the middle of inferences (values checked)
    "double-buffer-traffic": Case(
        lambda: corner_bundle((18, 10, 4), 3, seed=15, readout="spike_count", leak_shift=2),
        lambda: corner_images(18, 40, 15), gen={"lanes": (10, 4), "events": (2, 2), "pixels_per_beat": 4,
                                                "double_buffer": True},
        run={"gaps": 0.3, "max_gap": 5, "backpressure": 0.4, "resets": 3, "seed": 16}),
    # random input gaps and output back-pressure on the corner core
    "gaps-backpressure": Case(A, lambda: corner_images(12, 60, 5), gen={"pixels_per_beat": 4},
                              run={"gaps": 0.35, "max_gap": 4, "backpressure": 0.5, "seed": 11}),
    # synchronous reset in the middle of inferences (input and compute phases)
    "reset-mid-inference": Case(
        lambda: corner_bundle((20, 10, 5), 7, seed=2, encoding="rate", reset="zero", readout="membrane",
                              weight_bits=4, membrane_bits=6, leak_shift=2, extreme_weights=True),
        lambda: corner_images(20, 30, 6), gen={"pixels_per_beat": 4, "lanes": 3, "events": 2},
        run={"resets": 6, "seed": 3}),
    # MNIST-sized core on a few MNIST test images (Icarus only in the fast set: Verilator builds it in minutes)
    "mnist-few": Case(mnist_case_bundle, lambda: mnist_images(_n(2)), sims=("icarus",)),
    # the compact bundle (1-bit inputs, 4-bit weights) in its 25F configuration, plus an all-255 image
    "mnist-lite-few": Case(lite_bundle, lambda: np.vstack([mnist_images(_n(2)), np.full((1, 784), 255)]),
                           gen=LITE_GEN, sims=("icarus",)),
    # -- slow ----------------------------------------------------------------
    "mnist-lite": Case(lite_bundle, lambda: mnist_images(_n(100)), gen=LITE_GEN, slow=True),
    "mnist": Case(mnist_case_bundle, lambda: mnist_images(_n(200)), slow=True),
    "mnist-gaps-resets": Case(mnist_case_bundle, lambda: mnist_images(_n(50)), slow=True,
                              run={"gaps": 0.2, "backpressure": 0.3, "resets": 3, "seed": 5}),
    "large-T300": Case(lambda: corner_bundle((8, 6, 3), 300, seed=5, readout="spike_count", leak_shift=4),
                       lambda: corner_images(8, 8, 7), gen={"pixels_per_beat": 8}, slow=True),
    "wide-784-64-10-lanes": Case(lambda: random_bundle((784, 64, 10), 2, seed=6, readout="spike_count"),
                                 lambda: mnist_images(_n(20)), gen={"lanes": 16, "events": 4}, slow=True),
}


def _params():
    out = []
    for name, case in CASES.items():
        for sim in ("icarus", "verilator"):
            if sim not in case.sims:
                continue
            marks = [pytest.mark.slow] if case.slow else []
            if sim == "icarus":
                marks += list(case.icarus_marks)
            if sim not in SIMS:
                marks.append(pytest.mark.skip(reason=f"{sim} not installed"))
            out.append(pytest.param(sim, name, marks=marks, id=f"{sim}-{name}"))
    return out


_CORES: dict = {}


def _core(name: str) -> tuple[Core, Bundle]:
    if name not in _CORES:
        case = CASES[name]
        b = case.bundle()
        _CORES[name] = (generate_core(b, **case.gen), b)
    return _CORES[name]


def _fmt(r):
    return (f"checked {r['checked']} mismatched {r['mismatched_vectors']} cycle mismatches "
            f"{r.get('cycle_mismatches')} failed {r['failed']} first: {r['mismatches'][:5]} "
            f"{r.get('log_tail', '')} (see {r['case_dir']})")


@pytest.mark.parametrize("sim,name", _params())
def test_core(sim, name):
    case = CASES[name]
    core, _ = _core(name)
    images = case.images()
    r = run_case(core, sim, images, case=f"pytest-{name}", traffic=Traffic(**case.run))
    assert r["failed"] == 0 and r["mismatched_vectors"] == 0 and r["cycle_mismatches"] == 0, _fmt(r)
    assert r["checked"] == len(images)
    no_traffic_shaping = not case.run.get("gaps") and not case.run.get("backpressure")
    assert r["cycles_checked"] == no_traffic_shaping
    if case.run.get("resets"):
        assert len(r["resets"]) == case.run["resets"]


@pytest.mark.parametrize("sim", [
    pytest.param("icarus", marks=[] if "icarus" in SIMS else [pytest.mark.skip(reason="icarus not installed")]),
    # two extra Verilator builds: in the slow set (the fixture mutant runs on Verilator in the fast set)
    pytest.param("verilator", marks=[pytest.mark.slow] + (
        [] if "verilator" in SIMS else [pytest.mark.skip(reason="verilator not installed")])),
])
def test_mutant_core_is_caught(sim):
    """Verilog generated with the output layer's threshold off by one, checked against the true bundle."""
    from sc_neurocore.golden import infer

    bundle = mutant_base()
    bad_bundle = _off_by_one_threshold(bundle)
    x = corner_images(12, 40, 1)
    differ = int((infer(bundle.network, x).scores != infer(bad_bundle.network, x).scores).any(1).sum())
    assert differ > 0  # the mutation is observable on these images
    gen = {"pixels_per_beat": 4}
    base = generate_core(bundle, **gen)
    mutant = generate_core(bad_bundle, **gen)
    assert mutant.top_file.read_bytes() != base.top_file.read_bytes()
    broken = Core(mutant.verilog_dir, mutant.report, base.bundle_path)
    r = run_case(broken, sim, x, case="pytest-mutant")
    # read back with cocotb_tools.check_results.get_results, outside pytest's SystemExit trap
    assert r["tests"] == 1 and r["failed"] == 1, _fmt(r)
    assert r["checked"] == 40 and r["mismatched_vectors"] == differ, _fmt(r)
    m = r["mismatches"][0]
    assert m["index"] >= 0 and (m["field"] == "class" or m["field"].startswith("score["))
    # the unbroken core passes the same images
    ok = run_case(base, sim, x, case="pytest-mutant-base")
    assert ok["failed"] == 0 and ok["mismatched_vectors"] == 0, _fmt(ok)


def test_case_images_have_corners():
    x = corner_images(12, 5)
    assert x[0].max() == 0 and x[1].min() == 255 and x.dtype == np.uint8


def _reweighted(b: Bundle, seed: int) -> Bundle:
    """``b`` with new random weights of the same shapes and widths (thresholds, shifts, T kept)."""
    rng = np.random.default_rng(seed)
    n = b.network
    layers = []
    for lp in n.layers:
        lim = (1 << (lp.weight_bits - 1)) - 1
        w = rng.integers(-lim, lim + 1, size=lp.weight.shape)
        layers.append(LayerParams(w, lp.weight_bits, lp.threshold, lp.leak_shift, lp.current_shift, lp.membrane_bits))
    return Bundle(NetworkParams(tuple(layers), n.T, n.encoding, n.reset, n.readout, n.rate_seed), b.provenance)


@pytest.mark.parametrize("sim", [pytest.param(s, marks=[] if s in SIMS else [pytest.mark.skip(reason=f"{s} not installed")])
                                 for s in ("icarus", "verilator")])
def test_weight_port_core(sim):
    """A core generated with --weight-port, loaded at run time with another network's weights, computes that network."""
    from sc_neurocore.golden import infer

    built = corner_bundle((20, 10, 5), 3, seed=7, readout="membrane", leak_shift=1)
    loaded = _reweighted(built, 8)
    x = corner_images(20, 16, 9)
    assert (infer(built.network, x).scores != infer(loaded.network, x).scores).any()
    core = generate_core(built, pixels_per_beat=4, lanes=(3, 5), events=(2, 3), weight_port=True)
    r = run_case(core, sim, x, case="pytest-weight-port", options=CaseOptions(load_bundle=loaded))
    assert r["failed"] == 0 and r["mismatched_vectors"] == 0 and r["cycle_mismatches"] == 0, _fmt(r)
    geo = CoreConfig(**core.report["generator"]).geometry(built.network)
    assert r["checked"] == 16 and r["weight_words_written"] == len(geo.weight_writes(loaded.network)) > 0
    # Without the load the same core computes its own bundle.
    own = run_case(core, sim, x, case="pytest-weight-port-own")
    assert own["failed"] == 0 and own["mismatched_vectors"] == 0 and own["weight_words_written"] == 0, _fmt(own)
