"""Amaranth simulation of the LIF core against the golden model and the latency model.

Every test here is bit-exact (``np.array_equal`` on integers) against
:func:`sc_neurocore.golden.infer`, and every run with a free-flowing stream
checks the measured cycles against :func:`sc_neurocore.hw.latency.image_cycles`
with ``==``.  Networks are tiny (Amaranth's simulator is slow) except one
784-128-10 run.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.hw.config import CoreConfig, Timing
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.hw.testbench import simulate
from sc_neurocore.hw.latency import image_cycles, worst_case_cycles
from sc_neurocore.params import LayerParams, NetworkParams


def _images(n_in: int, count: int, seed: int, density: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, n_in)) * (rng.random((count, n_in)) < density)
    return x.astype(np.int64)


def _check(net: NetworkParams, images, config: CoreConfig, *, timing: bool = True, **kw):
    r = simulate(net, images, config, **kw)
    g = infer(net, images)
    assert np.array_equal(r.scores, g.scores), (r.scores, g.scores)
    assert np.array_equal(r.classes, g.classes)
    if timing:
        assert np.array_equal(r.cycles, image_cycles(net, config, images)), r.cycles
        assert r.cycles.max() <= worst_case_cycles(net, config)
    return r


# encoding x reset x readout, each with a different lane / bank / beat shape.
_SHAPES = [
    CoreConfig(lanes=3, pixels_per_beat=4),
    CoreConfig(pixels_per_beat=3, events=(1, 3)),
    CoreConfig(lanes=(8, 2), events=(2, 1), pixels_per_beat=2),
    CoreConfig(lanes=1, pixels_per_beat=8, events=(4, 8)),
]


@pytest.mark.parametrize("case", list(itertools.product(["direct", "rate"], ["subtract", "zero"],
                                                        ["spike_count", "membrane"])),
                         ids=lambda c: "-".join(c))
def test_every_option_exact(case):
    encoding, reset, readout = case
    i = (["direct", "rate"].index(encoding) * 4 + ["subtract", "zero"].index(reset) * 2
         + ["spike_count", "membrane"].index(readout))
    net = random_bundle((16, 8, 4), T=3, seed=i, encoding=encoding, reset=reset, readout=readout,
                        membrane_bits=10, leak_shift=i % 3).network
    x = _images(16, 3, seed=i)
    x[0] = 0
    _check(net, x, _SHAPES[i % len(_SHAPES)])


def test_gaps_and_backpressure_exact():
    net = random_bundle((16, 8, 4), T=2, seed=11, readout="spike_count").network
    x = _images(16, 4, seed=3)
    # Gaps change the timing, so only the values are compared here.
    _check(net, x, CoreConfig(lanes=4, pixels_per_beat=4), timing=False,
           traffic=Traffic(gaps=0.3, backpressure=0.5, seed=5))
    net = random_bundle((16, 8, 4), T=2, seed=12, encoding="rate").network
    _check(net, x, CoreConfig(lanes=4, pixels_per_beat=4), timing=False,
           traffic=Traffic(gaps=0.4, backpressure=0.4, seed=6))


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_reset_mid_inference(encoding):
    net = random_bundle((16, 8, 4), T=3, seed=13, encoding=encoding).network
    x = _images(16, 2, seed=4)
    # The reset lands in the middle of the first image; the stream restarts
    # from the first image and both results must be exact, with exact timing.
    _check(net, x, CoreConfig(lanes=4, pixels_per_beat=4), reset_after=9)


def test_extreme_inputs_and_saturation():
    # Weights at the top of their range, a 6-bit membrane and no current
    # shift: every integrate step saturates, in both directions.
    rng = np.random.default_rng(0)
    w1 = rng.choice([-127, 127], size=(10, 6))
    w2 = rng.choice([-1, 1], size=(6, 3)) * 1
    net = NetworkParams((LayerParams(w1, 8, threshold=30, leak_shift=1, current_shift=0, membrane_bits=6),
                         LayerParams(w2, 2, threshold=1, leak_shift=0, current_shift=0, membrane_bits=4)),
                        T=4, readout="membrane")
    x = np.stack([np.zeros(10), np.full(10, 255), _images(10, 1, 7)[0]]).astype(np.int64)
    _check(net, x, CoreConfig(lanes=(2, 3), pixels_per_beat=4, events=(2, 2)))
    net = NetworkParams(net.layers, T=4, readout="spike_count", reset="zero", encoding="rate")
    _check(net, x, CoreConfig(pixels_per_beat=5))


def test_T1_and_T16():
    net = random_bundle((12, 6, 3), T=1, seed=21, readout="spike_count").network
    x = _images(12, 2, 8)
    _check(net, x, CoreConfig(pixels_per_beat=4))
    net = random_bundle((12, 6, 3), T=16, seed=22, readout="spike_count").network
    _check(net, x, CoreConfig(lanes=2, pixels_per_beat=4))


def test_three_layers_and_single_neuron_layers():
    net = random_bundle((13, 8, 6, 3), T=3, seed=31, readout="spike_count").network
    x = _images(13, 3, 9)
    _check(net, x, CoreConfig(lanes=(2, 4, 1), pixels_per_beat=5, events=(5, 2, 3)))
    net = random_bundle((5, 1, 1), T=2, seed=32, encoding="rate").network
    _check(net, _images(5, 2, 10, density=1.0), CoreConfig(pixels_per_beat=1))


def test_back_to_back_images_have_model_latency():
    net = random_bundle((16, 8, 4), T=2, seed=41).network
    x = _images(16, 6, 11, density=0.3)
    r = _check(net, x, CoreConfig(lanes=8, pixels_per_beat=8))
    # Streaming: the next image's first beat is accepted the cycle after the
    # previous output beat is loaded, so the total is the sum plus one per image.
    assert r.total_cycles >= int(r.cycles.sum())


def test_mnist_size_core_one_image():
    from sc_neurocore.data import DataError, load_mnist

    b = random_bundle()   # 784-128-10, T=4, direct, membrane readout
    try:
        x = load_mnist().test_x[:1]
    except DataError:
        x = _images(784, 1, 12, density=0.2)
    r = _check(b.network, x, CoreConfig())
    assert r.cycles[0] <= 300


def test_pretrained_mnist_bundle_if_present():
    from sc_neurocore.bundle import pretrained_names, resolve_bundle

    if "mnist-t4" not in pretrained_names():
        pytest.skip("sc_neurocore/pretrained/mnist-t4.scnb is not trained yet")
    from sc_neurocore.data import DataError, load_mnist

    try:
        x = load_mnist().test_x[:2]
    except DataError as e:
        pytest.skip(f"MNIST not available: {e}")
    _check(resolve_bundle(pretrained="mnist-t4").network, x, CoreConfig())


#: The ECP5-25F configuration of the compact bundle (docs/hardware.md, README "FPGA synthesis").
LITE_25F = CoreConfig(lanes=(16, 10), events=(8, 8))


def test_pretrained_lite_bundle_in_its_25f_configuration():
    from sc_neurocore.bundle import resolve_bundle
    from sc_neurocore.data import load_mnist

    net = resolve_bundle(pretrained="mnist-t4-lite").network
    assert (net.input_bits, net.layers[0].weight_bits, net.T) == (1, 4, 4)
    x = np.vstack([load_mnist().test_x[:2], np.full((1, 784), 255, dtype=np.uint8)])
    r = _check(net, x, LITE_25F)
    assert r.cycles[2] == worst_case_cycles(net, LITE_25F) <= 1000


# -- exported Verilog: every combinational block has a defined value from time 0 -----------------------
#
# Regression for the Icarus-only X with lanes < n_out: `Array(acc)[s3_g]` became a combinational
# `always @*` block whose inputs were all registers keeping their initial values until the first event
# of group 0.  Under IEEE 1800 scheduling (Icarus -g2012, as cocotb builds) a declaration initialiser
# (`reg x = 0;`, also yosys's dummy trigger register) is no event, so the block never ran and the
# accumulator read X.  Verilator and Amaranth's simulator evaluate all combinational logic at time 0,
# so only this static check (or Icarus) sees it.  The check follows the time-0 events through the
# yosys-written Verilog: top-level inputs (the testbench drives them) and continuous assignments
# produce one, a combinational block runs when one of its inputs has one; every block must run.

import re  # noqa: E402

_TOK = re.compile(r"\\\S+|\d*'[sS]?[bhdoBHDO][0-9a-fA-FxzXZ_?]+|\$[A-Za-z_]\w*|[A-Za-z_][A-Za-z0-9_$]*|\d+")
_KW = {"if", "else", "begin", "end", "case", "casez", "casex", "endcase", "default", "signed", "unsigned"}
_ATTR = re.compile(r"\(\*.*?\*\)", re.S)


def _ids(text: str) -> list[str]:
    return [t for t in _TOK.findall(_ATTR.sub(" ", text))
            if t not in _KW and (t[0] == "\\" or t[0].isalpha() or t[0] == "_")]


def _statement(text: str) -> str:
    if re.match(r"\s*begin\b", text):
        depth = 0
        for t in re.finditer(r"\bbegin\b|\bend\b", text):
            depth += 1 if t.group() == "begin" else -1
            if depth == 0:
                return text[:t.end()]
    return text[:text.index(";") + 1]


def _parse_verilog(src: str) -> dict:
    mods = {}
    for m in re.finditer(r"^module\s+(\\\S+|\w+)\s*\((.*?)\);(.*?)^endmodule", src, re.S | re.M):
        body = m.group(3)
        mod = {"inputs": set(), "init_regs": set(), "assigns": [], "comb": [], "insts": []}
        for d in re.finditer(r"^\s*(input|reg)\s+(?:signed\s+)?(?:\[[^\]]*\]\s*)?(\\\S+|\w+)\s*(=)?", body, re.M):
            if d.group(1) == "input":
                mod["inputs"].add(d.group(2))
            elif d.group(3):
                mod["init_regs"].add(d.group(2))
        for a in re.finditer(r"^\s*assign\s+(.*?)\s*=\s*(.*?);\s*$", body, re.M):
            mod["assigns"].append((_ids(a.group(1))[:1], _ids(a.group(2))))
        for a in re.finditer(r"^\s*always\s*@\*", body, re.M):
            blk = _ATTR.sub(" ", _statement(body[a.end():]))
            lhs = {s.group(1) for s in re.finditer(r"(\\\S+|\w+)\s*(?:\[[^\]]*\]\s*)*=(?!=)", blk)}
            mod["comb"].append((lhs, set(_ids(blk)) - lhs))
        for i in re.finditer(r"^\s*(\\\S+|\w+)\s+(\\\S+|\w+)\s*\((\s*\..*?)\);", body, re.M | re.S):
            conns = {c.group(1): _ids(c.group(2)) for c in re.finditer(r"\.(\\\S+|\w+)\s*\(([^()]*)\)", i.group(3))}
            mod["insts"].append((i.group(1), i.group(2), conns))
        mods[m.group(1)] = mod
    return mods


def comb_blocks_not_run_at_time0(src: str, top: str) -> list[tuple[str, list[str]]]:
    """(instance, driven signals) of every ``always @*`` block that no time-0 event triggers."""
    mods = _parse_verilog(src)
    alias: dict = {}

    def find(x):
        while alias.get(x, x) != x:
            x = alias[x]
        return x

    init, assigns, combs = set(), [], []

    def walk(name, path):
        mod = mods[name]
        init.update((path, s) for s in mod["init_regs"])
        assigns.extend(([(path, s) for s in lhs], [(path, s) for s in rhs]) for lhs, rhs in mod["assigns"])
        combs.extend(([(path, s) for s in lhs], [(path, s) for s in rd]) for lhs, rd in mod["comb"])
        for cm, inst, conns in mod["insts"]:
            if cm not in mods:
                continue
            cpath = path + (inst,)
            for port, sigs in conns.items():
                if len(sigs) == 1:   # a port on one signal (or a part of it) is that net
                    a, b = find((cpath, port)), find((path, sigs[0]))
                    if a != b:
                        alias[a] = b
                elif port in mods[cm]["inputs"]:
                    assigns.append(([(cpath, port)], [(path, s) for s in sigs]))
                else:
                    assigns.extend(([(path, s)], [(cpath, port)]) for s in sigs)
            walk(cm, cpath)

    walk(top, ())
    inputs = {find(((), s)) for s in mods[top]["inputs"]}
    defined, event, ran = {find(s) for s in init} | inputs, set(inputs), set()
    changed = True

    def drive(lhs, reads):
        nonlocal changed
        for x in map(find, lhs):
            if x not in event and (not reads or any(find(r) in defined for r in reads)):
                event.add(x)
                changed = True
            if x not in defined and all(find(r) in defined for r in reads):
                defined.add(x)
                changed = True

    while changed:
        changed = False
        for lhs, rhs in assigns:
            drive(lhs, rhs)
        for n, (lhs, reads) in enumerate(combs):
            if n not in ran and any(find(r) in event for r in reads):
                ran.add(n)
                changed = True
            if n in ran:
                drive(lhs, [r for r in reads if r not in lhs])
    return [(".".join(lhs[0][0]), sorted(s for _, s in lhs)) for n, (lhs, _) in enumerate(combs) if n not in ran]


def test_time0_check_finds_an_array_of_registers():
    """The check is not vacuous: ``Array(registers)[register]`` is the pattern of the bug."""
    from amaranth.back import verilog
    from amaranth.hdl import Array, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Sel(wiring.Component):
        def __init__(self):
            super().__init__({"go": In(1), "out": Out(4)})

        def elaborate(self, platform):
            m = Module()
            regs = [Signal(4, init=i + 1) for i in range(3)]
            sel = Signal(2)
            with m.If(self.go):
                m.d.sync += sel.eq(sel + 1)
            m.d.comb += self.out.eq(Array(regs)[sel])
            return m

    src = verilog.convert(Sel(), name="sel_top", emit_src=False)
    assert comb_blocks_not_run_at_time0(src, "sel_top")


@pytest.mark.parametrize("sizes,kw,gen", [
    ((20, 12, 5), {}, {"lanes": (12, 1)}),
    ((20, 12, 5), {}, {"lanes": 3}),
    ((20, 12, 5), {"encoding": "rate", "readout": "spike_count"}, {"lanes": (5, 5), "pixels_per_beat": 4}),
    ((9, 7, 2), {"encoding": "rate"}, {"lanes": 2, "pixels_per_beat": 2}),
    ((30, 16, 8, 4), {"reset": "zero"}, {"lanes": (3, 5, 3), "events": (2, 3, 4), "pixels_per_beat": 16}),
    ((20, 12, 5), {}, {"lanes": (5, 5), "pixels_per_beat": 4, "double_buffer": True}),
], ids=["last-grouped", "all-grouped", "rate-count", "rate-ppb2", "three-layers", "double-buffer"])
def test_exported_verilog_every_comb_block_runs_at_time0(tmp_path, sizes, kw, gen):
    from sc_neurocore.hw.export import generate_verilog

    generate_verilog(random_bundle(sizes, 3, seed=1, **kw), tmp_path, **gen)
    src = (tmp_path / "sc_neurocore_top.v").read_text()
    assert comb_blocks_not_run_at_time0(src, "sc_neurocore_top") == []


@pytest.mark.parametrize("input_bits,config", [
    (1, CoreConfig(lanes=3, pixels_per_beat=4)),
    (3, CoreConfig(lanes=(2, 4), events=(2, 1), pixels_per_beat=4)),
], ids=["binary", "3-bit"])
def test_input_bits_exact(input_bits, config):
    # Layer 1 takes each pixel's top input_bits bits from the 8-bit stream
    # (spec §3.1); pixels below 2^(8-b) are zeros and are skipped.
    net = random_bundle((16, 8, 4), T=3, seed=30 + input_bits, input_bits=input_bits, membrane_bits=10).network
    x = np.vstack([_images(16, 3, seed=input_bits), np.full((1, 16), (1 << (8 - input_bits)) - 1),
                   np.full((1, 16), 1 << (8 - input_bits)), np.full((1, 16), 255)])
    r = _check(net, x, config)
    assert r.cycles[3] < min(r.cycles[4], r.cycles[5])   # all skipped vs all present
    assert len(set(infer(net, x).scores[:, 0])) > 1


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_weight_port_loads_new_weights(encoding):
    # The core is built with network A's weights; B (same shape, other weights)
    # is written through the weight port, and the core must then compute B.
    a = random_bundle((16, 8, 4), T=2, seed=21, encoding=encoding).network
    b = random_bundle((16, 8, 4), T=2, seed=22, encoding=encoding).network
    b = NetworkParams(tuple(LayerParams(lb.weight, lb.weight_bits, threshold=la.threshold, leak_shift=la.leak_shift,
                                        current_shift=la.current_shift, membrane_bits=la.membrane_bits)
                            for la, lb in zip(a.layers, b.layers)),
                      T=a.T, encoding=a.encoding, reset=a.reset, readout=a.readout, rate_seed=a.rate_seed)
    cfg = CoreConfig(lanes=(3, 4), events=(2, 3), pixels_per_beat=4, weight_port=True)
    x = _images(16, 3, seed=7)
    assert not np.array_equal(infer(a, x).scores, infer(b, x).scores)   # the test can tell them apart
    geo = cfg.geometry(a)
    writes = geo.weight_writes(b)
    assert len(writes) == sum(lg.events * lg.memory_depth for lg in geo.layers)
    r = simulate(a, x, cfg, weight_writes=writes)
    g = infer(b, x)
    assert np.array_equal(r.scores, g.scores) and np.array_equal(r.classes, g.classes)
    assert np.array_equal(r.cycles, image_cycles(b, cfg, x))
    # Without the writes the same core still computes A.
    r = simulate(a, x, cfg)
    assert np.array_equal(r.scores, infer(a, x).scores)


def test_weight_writes_reject_other_shapes():
    a = random_bundle((16, 8, 4), T=2, seed=21).network
    geo = CoreConfig(weight_port=True).geometry(a)
    with pytest.raises(ValueError, match="layer sizes and weight widths"):
        geo.weight_writes(random_bundle((16, 6, 4), T=2, seed=1).network)
    with pytest.raises(TypeError, match="weight_port must be a bool, not 1"):
        CoreConfig(weight_port=1)


@pytest.mark.parametrize("weight_port", [False, True])
def test_segmented_weight_memories(monkeypatch, weight_port):
    # Deep banks are split into segments (Timing.SEGMENT_DEPTH words each, 512
    # in real builds); a 16-word segment makes this small layer use 8 of them,
    # a short last one included, so segment addressing and the select stage run.
    from sc_neurocore.hw.config import Timing

    monkeypatch.setattr(Timing, "SEGMENT_DEPTH", 16)
    net = random_bundle((30, 8, 4), T=2, seed=31).network
    cfg = CoreConfig(lanes=(2, 4), events=(1, 2), pixels_per_beat=2, weight_port=weight_port)
    geo = cfg.geometry(net)
    assert geo.layers[0].memory_depth == 120 and geo.layers[0].segments == 8
    x = _images(30, 3, seed=8, density=0.9)
    if not weight_port:
        _check(net, x, cfg)
        return
    other = random_bundle((30, 8, 4), T=2, seed=32).network
    other = NetworkParams(tuple(LayerParams(lb.weight, lb.weight_bits, threshold=la.threshold,
                                            leak_shift=la.leak_shift, current_shift=la.current_shift,
                                            membrane_bits=la.membrane_bits)
                                for la, lb in zip(net.layers, other.layers)), T=net.T)
    assert not np.array_equal(infer(net, x).scores, infer(other, x).scores)
    r = simulate(net, x, cfg, weight_writes=geo.weight_writes(other))
    assert np.array_equal(r.scores, infer(other, x).scores)
    assert np.array_equal(r.cycles, image_cycles(other, cfg, x))


@pytest.mark.parametrize("limit", [0, 5, 11])
def test_dsp_limit_builds_the_rest_from_luts_exactly(limit):
    """``dsp_limit``: the products beyond it are shift-and-add; values and cycles are unchanged, with
    saturation (all-max pixels, extreme weights) and all-zero images among the cases."""
    net = random_bundle((16, 8, 4), T=3, seed=41, membrane_bits=10).network
    w = np.array(net.layers[0].weight)
    w[:, 0], w[:, 1] = 127, -127        # extreme weights on the first lanes: every product bit is used
    net = NetworkParams((LayerParams(w, 8, net.layers[0].threshold, net.layers[0].leak_shift,
                                     net.layers[0].current_shift, 10), net.layers[1]), T=3)
    x = np.vstack([_images(16, 3, seed=limit), np.zeros((1, 16), np.int64), np.full((1, 16), 255)])
    cfg = CoreConfig(lanes=(4, 2), events=(2, 2), pixels_per_beat=4, dsp_limit=limit)
    g = cfg.geometry(net)
    assert g.layers[0].lut_products == 8 - min(limit, 8) and g.layers[1].lut_products == 0
    _check(net, x, cfg)


@pytest.mark.parametrize("input_bits, events, limit, terms, stages", [
    (8, 8, 8, 16, 2),     # 8 of 16 products from LUTs, all in lane 2: 8 events + 8 halves -> two tree stages
    (8, 8, 10, 14, 2),    # 6 of them: 8 + 6 terms
    (3, 4, 0, 8, 1),      # odd input width: halves of 2 and 1 bits
    (2, 2, 3, 3, 1),      # the smallest multi-bit input, one product from LUTs in a lane of two
])
def test_lut_products_are_summed_as_halves_in_the_adder_tree(input_bits, events, limit, terms, stages):
    """A product built from LUTs is registered as two halves that the lane's adder tree adds
    (``LayerGeometry.lane_terms``): scores and cycles equal the golden and latency models, also where the
    halves push a lane past ``Timing.TREE_TERMS`` and cost a tree stage."""
    net = random_bundle((24, 6, 3), T=2, seed=terms, membrane_bits=12, input_bits=input_bits).network
    cfg = CoreConfig(lanes=(2, 3), events=(events, 2), pixels_per_beat=8, dsp_limit=limit)
    lg = cfg.geometry(net).layers[0]
    assert (lg.lane_terms, lg.tree_stages) == (terms, stages)
    assert lg.accumulate_cycles == Timing.ACCUMULATE_BASE + stages - 1
    # 8-bit pixels, of which layer 1 takes the top input_bits (spec §3.1): 255 is the all-max input
    x = np.vstack([_images(24, 3, seed=input_bits, density=0.9), np.zeros((1, 24), np.int64),
                   np.full((1, 24), 255)])
    _check(net, x, cfg)


@pytest.mark.parametrize("sizes, events, stages", [((16, 20, 4), (4, 16), 2), ((16, 20, 4), (16, 20), 2),
                                                   ((8, 70, 3), (8, 65), 3)])
def test_wide_adder_trees_are_pipelined_exactly(sizes, events, stages):
    """More than ``Timing.TREE_TERMS`` events per cycle: partial sums are registered (one cycle per extra
    stage); values and cycles equal the golden and latency models."""
    net = random_bundle(sizes, T=3, seed=sum(events), membrane_bits=12).network
    cfg = CoreConfig(lanes=(5, 2), events=events, pixels_per_beat=16)
    g = cfg.geometry(net)
    assert g.layers[1].tree_stages == stages
    assert g.layers[1].segments == 1 and g.layers[1].accumulate_cycles == Timing.ACCUMULATE_BASE + stages - 1
    x = np.vstack([_images(sizes[0], 4, seed=stages), np.full((1, sizes[0]), 255)])
    _check(net, x, cfg)


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_single_port_weight_memories_compute_the_loaded_network(encoding):
    # weight_memory="single_port": one uninitialised memory per bank whose read and write share an
    # address (an iCE40 SPRAM). Before the load the core computes with all-zero weights; after it,
    # exactly the loaded network, with the same cycles as the block-RAM core.
    net = random_bundle((40, 8, 4), T=2, seed=41, encoding=encoding).network
    cfg = CoreConfig(lanes=(3, 4), events=(2, 3), pixels_per_beat=4, weight_port=True, weight_memory="single_port")
    geo = cfg.geometry(net)
    assert [lg.segments for lg in geo.layers] == [1, 1] and geo.layers[0].memory_depth > 0
    x = _images(40, 3, seed=9, density=0.8)
    r = simulate(net, x, cfg, weight_writes=geo.weight_writes())
    g = infer(net, x)
    assert np.array_equal(r.scores, g.scores) and np.array_equal(r.classes, g.classes)
    assert np.array_equal(r.cycles, image_cycles(net, CoreConfig(lanes=(3, 4), events=(2, 3), pixels_per_beat=4), x))
    zero = NetworkParams(tuple(dataclasses.replace(lp, weight=np.zeros_like(lp.weight)) for lp in net.layers),
                         T=net.T, encoding=net.encoding, reset=net.reset, readout=net.readout, rate_seed=net.rate_seed)
    assert np.array_equal(simulate(net, x, cfg).scores, infer(zero, x).scores)


def test_single_port_memories_hold_no_bundle_weights_and_one_segment(monkeypatch):
    from sc_neurocore.hw.config import Timing
    from sc_neurocore.hw.export import verilog_text

    monkeypatch.setattr(Timing, "SEGMENT_DEPTH", 16)
    net = random_bundle((30, 8, 4), T=2, seed=31).network
    cfg = CoreConfig(lanes=(2, 4), events=(1, 2), pixels_per_beat=2, weight_port=True, weight_memory="single_port")
    geo = cfg.geometry(net)
    assert geo.layers[0].memory_depth == 120 and geo.layers[0].segments == 1
    assert geo.layers[0].accumulate_cycles == Timing.ACCUMULATE_BASE      # no segment select stage
    block = CoreConfig(lanes=(2, 4), events=(1, 2), pixels_per_beat=2, weight_port=True).geometry(net)
    assert block.layers[0].segments == 8
    text = verilog_text(net, cfg)
    # Amaranth always writes an initial value; here it must be all zeros (the weights come through the port),
    # while the block-RAM build of the same layer carries the bundle's non-zero words.
    import re

    words = re.findall(r"weights0\[\d+\] = \d+'h([0-9a-f]+);", text)
    assert len(words) == 120 and all(int(w, 16) == 0 for w in words)
    block_text = verilog_text(net, CoreConfig(lanes=(2, 4), events=(1, 2), pixels_per_beat=2))
    assert any(int(w, 16) for w in re.findall(r"weights0_0\[\d+\] = \d+'h([0-9a-f]+);", block_text))


@pytest.mark.parametrize("kwargs,message", [
    (dict(weight_memory="spram"), r"weight_memory must be one of 'block', 'single_port', not 'spram'"),
    (dict(weight_memory="single_port"), r"weight_memory='single_port' needs weight_port=True"),
])
def test_weight_memory_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CoreConfig(**kwargs)
    assert "weight_memory" not in CoreConfig().to_dict()
    assert CoreConfig(weight_port=True, weight_memory="single_port").to_dict()["weight_memory"] == "single_port"
