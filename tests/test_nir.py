"""NIR graphs <-> bundles (sc_neurocore.nir, docs/nir.md): the mapping, the float model, quantisation, refusals.

The framework paths (snnTorch, Norse) are in tests/test_nir_frameworks.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")  # a dependency of sc_neurocore[dev]: present wherever make test runs

from sc_neurocore.bundle import load_bundle, random_bundle, save_bundle  # noqa: E402
from sc_neurocore.cli import main  # noqa: E402
from sc_neurocore.golden import infer  # noqa: E402
from sc_neurocore.nir import (FloatLayer, FloatNet, NIRError, from_graph, graph_bytes, leak_shift,  # noqa: E402
                              network_from_graph, quantize, read_graph, simulate, to_nir)
from sc_neurocore.params import NetworkParams  # noqa: E402


def _zero(b, readout="membrane", T=None):
    p = b.network
    return NetworkParams(p.layers, T or p.T, p.encoding, "zero", readout, p.rate_seed, p.input_bits)


def _roundtrip(params, tmp_path=None):
    data = graph_bytes(to_nir(params))
    if tmp_path is None:
        import tempfile
        from pathlib import Path

        d = Path(tempfile.mkdtemp())
    else:
        d = tmp_path
    (d / "g.nir").write_bytes(data)
    return read_graph(d / "g.nir")


# ---------------------------------------------------------------------------------------------------------
# the float model: a naive scalar loop written from model.py's docstring equations
# ---------------------------------------------------------------------------------------------------------


def naive_float_model(net: FloatNet, pixels, T):
    """The float model, one scalar at a time: dense layers and conv layers (channel-major neurons (o, y, x),
    zero padding, a sum-pool of the spikes), straight from model.py's docstring equations."""
    out = []
    for px in pixels:
        x = [float(p) * net.input_scale for p in px]
        v = [[0.0] * (la.n_neurons) for la in net.layers]
        score = [0.0] * net.sizes[-1]
        for _ in range(T):
            inp = x
            for li, la in enumerate(net.layers):
                if la.kind == "dense":
                    cur = [sum(inp[i] * la.weight[i, j] for i in range(la.n_in)) for j in range(la.n_out)]
                else:
                    c_in, h, w = la.in_shape
                    co, ho, wo = la.conv_shape
                    k, s, p = la.kernel, la.stride, la.padding
                    cur = []
                    for o in range(co):  # channel-major neurons (o, y, x)
                        for y in range(ho):
                            for xx in range(wo):
                                a = 0.0
                                for c in range(c_in):
                                    for ky in range(k):
                                        for kx in range(k):
                                            iy, ix = y * s + ky - p, xx * s + kx - p
                                            if 0 <= iy < h and 0 <= ix < w:
                                                a += inp[(c * h + iy) * w + ix] * la.weight[o, c, ky, kx]
                                cur.append(a)
                nxt = []
                for j in range(la.n_neurons):
                    vj = la.beta * v[li][j] + la.gain * cur[j]
                    if la.neuron == "lif":
                        z = 1.0 if vj > la.threshold else 0.0
                        vj = (0.0 if z else vj) if la.reset == "zero" else vj - la.threshold * z
                        nxt.append(z)
                    else:
                        nxt.append(vj)
                    v[li][j] = vj
                if la.kind == "conv" and la.pool > 1:
                    co, ho, wo = la.conv_shape
                    q = la.pool
                    nxt = [sum(nxt[(o * ho + y * q + dy) * wo + x * q + dx] for dy in range(q) for dx in range(q))
                           for o in range(co) for y in range(ho // q) for x in range(wo // q)]
                inp = nxt
            score = [a + b for a, b in zip(score, inp)] if net.readout == "spike_count" else inp
        out.append(score)
    return np.array(out)


@st.composite
def float_nets(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sizes = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))]
    reset = draw(st.sampled_from(["zero", "subtract"]))
    readout = draw(st.sampled_from(["spike_count", "membrane"]))
    layers = []
    for i in range(len(sizes) - 1):
        li = readout == "membrane" and i == len(sizes) - 2
        layers.append(FloatLayer(rng.normal(0, 1, (sizes[i], sizes[i + 1])), neuron="li" if li else "lif",
                                 beta=draw(st.sampled_from([1.0, 0.5, 0.875, 0.9])), gain=draw(st.sampled_from([1.0, 0.3])),
                                 threshold=None if li else float(rng.uniform(0.1, 2.0)), reset=reset, name=f"l{i}"))
    return FloatNet(tuple(layers), input_scale=1 / 255), rng.integers(0, 256, (3, sizes[0])), draw(st.integers(1, 6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(float_nets())
def test_the_float_model_is_the_documented_equations(case):
    net, px, T = case
    np.testing.assert_array_equal(simulate(net, px, T), naive_float_model(net, px, T)) if net.readout == "spike_count" else \
        np.testing.assert_allclose(simulate(net, px, T), naive_float_model(net, px, T), rtol=1e-9, atol=1e-9)


def test_the_float_model_records_every_step():
    b = random_bundle((12, 6, 3), T=5, seed=3)
    from sc_neurocore.nir import dequantize

    net = dequantize(_zero(b, "spike_count"))
    px = np.random.default_rng(0).integers(0, 256, (4, 12))
    score, steps = simulate(net, px, 5, record=True)
    assert steps.shape == (5, 4, 3) and set(np.unique(steps)) <= {0.0, 1.0}
    np.testing.assert_array_equal(steps.sum(0), score)


# ---------------------------------------------------------------------------------------------------------
# bundle -> NIR -> bundle is exact; the float graph follows the integer network
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 12), min_size=2, max_size=4), T=st.integers(1, 40),
       readout=st.sampled_from(["membrane", "spike_count"]), leak=st.integers(0, 6), wb=st.sampled_from([2, 4, 8, 16]),
       ib=st.sampled_from([1, 4, 8]), seed=st.integers(0, 1000))
def test_bundle_nir_bundle_round_trip_is_exact(tmp_path, sizes, T, readout, leak, wb, ib, seed):
    b = random_bundle(tuple(sizes), T=T, weight_bits=wb, seed=seed, reset="zero", readout=readout, leak_shift=leak,
                      input_bits=ib)
    params = b.network
    graph = _roundtrip(params, tmp_path)
    back, q, _ = network_from_graph(graph)
    assert q is None  # the exact network, not a re-quantisation
    assert back == params


def test_the_exported_graph_is_what_docs_nir_md_says(tmp_path):
    b = random_bundle((6, 4, 3), T=4, seed=1, reset="zero", readout="spike_count", leak_shift=3)
    g = _roundtrip(b.network, tmp_path)
    kinds = {n: type(v).__name__ for n, v in g.nodes.items()}
    assert kinds == {"input": "Input", "fc0": "Linear", "neuron0": "LIF", "fc1": "Linear", "neuron1": "LIF",
                     "output": "Output"}
    assert sorted(g.edges) == sorted([("input", "fc0"), ("fc0", "neuron0"), ("neuron0", "fc1"), ("fc1", "neuron1"),
                                      ("neuron1", "output")])
    la = b.network.layers[0]
    lif = g.nodes["neuron0"]
    dt = 1e-4
    # beta = 1 - 2^-3 = 1 - dt/tau  ->  tau = 8 dt; r = 1, so the gain dt*r/tau = 1/8 is folded into the
    # weights (x 8); fires at v > theta - 1/2; resets to 0
    np.testing.assert_allclose(lif.tau, np.full(4, 8 * dt, np.float32))
    np.testing.assert_array_equal(lif.r, np.ones(4, np.float32))
    np.testing.assert_array_equal(lif.v_threshold, np.full(4, la.threshold - 0.5, np.float32))
    np.testing.assert_array_equal(lif.v_leak, np.zeros(4, np.float32))
    np.testing.assert_array_equal(lif.v_reset, np.zeros(4, np.float32))
    # NIR weights are (out, in); layer 1 takes pixel/255: W = W_int * 255 / 2^s, times 8 for the gain. Exact in
    # float32: |W_int| * 255 * 8 < 2^24 and the rest are powers of two.
    want = (la.weight.T * 255 * 8).astype(np.float32) / np.float32(2 ** la.current_shift)
    np.testing.assert_array_equal(g.nodes["fc0"].weight, want)
    assert g.nodes["fc0"].metadata["sc_neurocore"]["current_shift"] == la.current_shift


def test_no_leak_exports_a_leak_of_one_float32_step():
    """beta = 1 is written as tau = 2^24 dt (NIR's IF/I break snnTorch's importer) and read back as k = 0."""
    b = random_bundle((5, 4, 3), T=4, seed=2, reset="zero", readout="membrane", leak_shift=0)
    g = to_nir(b)
    assert type(g.nodes["neuron0"]).__name__ == "LIF" and type(g.nodes["neuron1"]).__name__ == "LI"
    np.testing.assert_array_equal(g.nodes["neuron0"].tau, np.full(4, 1e-4 * 2 ** 24, np.float32))
    net = from_graph(g)
    assert [leak_shift(la.beta, 16) for la in net.layers] == [(0, pytest.approx(2 ** -24))] * 2
    # NIR's integrators are still read: IF / I are beta = 1, gain dt*r
    nodes = dict(g.nodes)
    nodes["neuron0"] = nir.IF(r=np.full(4, 1e4, np.float32), v_threshold=np.ones(4, np.float32),
                              v_reset=np.zeros(4, np.float32))
    nodes["neuron1"] = nir.I(r=np.full(3, 1e4, np.float32))
    net = from_graph(nir.NIRGraph(nodes=nodes, edges=g.edges))
    assert [(la.neuron, la.beta, la.gain) for la in net.layers] == [("lif", 1.0, pytest.approx(1.0)),
                                                                     ("li", 1.0, pytest.approx(1.0))]


def test_the_float_graph_agrees_with_the_integer_network(tmp_path):
    """The float graph has no rounding or saturation, so it is not bit-exact; on random images it still
    predicts the integer model's class on nearly all."""
    for readout in ("membrane", "spike_count"):
        b = random_bundle((64, 32, 10), T=8, seed=5, reset="zero", readout=readout, leak_shift=4)
        params = b.network
        _, _, net = network_from_graph(_roundtrip(params, tmp_path))
        px = np.random.default_rng(1).integers(0, 256, (400, 64))
        agree = np.mean(np.argmax(simulate(net, px, params.T), 1) == infer(params, px).classes)
        assert agree >= 0.95, (readout, agree)


def test_subtract_reset_is_refused_on_export(tmp_path, capsys):
    assert to_nir(random_bundle((5, 3), T=4, reset="subtract"))  # one non-spiking layer: nothing resets
    b = random_bundle((5, 4, 3), T=4, reset="subtract")
    with pytest.raises(NIRError, match="reset 'subtract' cannot be expressed in NIR"):
        to_nir(b)
    save_bundle(b, tmp_path / "s.scnb")
    assert main(["export-nir", str(tmp_path / "s.scnb"), "-o", str(tmp_path / "s.nir")]) == 2
    assert "reset 'subtract' cannot be expressed in NIR" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.scnb"]


# ---------------------------------------------------------------------------------------------------------
# leak: only beta = 1 - 2^-k is exact
# ---------------------------------------------------------------------------------------------------------


def test_leak_shift():
    assert leak_shift(1.0, 16) == (0, 0.0)
    assert leak_shift(0.5, 16) == (1, 0.0)
    assert leak_shift(0.9375, 16) == (4, 0.0)
    k, err = leak_shift(0.93750001, 16)
    assert k == 4 and err == pytest.approx(1e-8, rel=1e-3)
    with pytest.raises(NIRError, match=r"lif1: beta = 0.9 has no exact leak shift: the nearest, k = 3, decays by "
                                       r"0.875 \(error 0.025 > 0.001\)\. Train with beta = 1 - 2\^-k"):
        leak_shift(0.9, 16, name="lif1")
    assert leak_shift(0.9, 16, allow_approx=True) == (3, pytest.approx(0.025))
    # k < membrane_bits: with 4 bits the shifts are 0..3, and 1.0 (k = 0) is nearer 0.95 than 0.875 (k = 3)
    assert leak_shift(0.95, 4, allow_approx=True) == (0, pytest.approx(0.05))


# ---------------------------------------------------------------------------------------------------------
# post-training quantisation, calibrated
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small zero-reset network trained for one epoch on the first MNIST images (~3 s)."""
    from sc_neurocore.train import SNNConfig, TrainConfig, prepare_data, train_model

    d = tmp_path_factory.mktemp("trained")
    data = prepare_data("mnist", None, 3000)
    cfg = SNNConfig(sizes=(784, 32, 10), T=4, reset="zero", readout="spike_count", leak_shift=3)
    r = train_model(cfg, TrainConfig(epochs=1, seed=0, threads=1), data, d / "z.scnb", log=lambda s: None)
    return load_bundle(d / "z.scnb"), data


def test_quantising_a_float_graph_at_another_T(trained, tmp_path):
    b, data = trained
    graph = _roundtrip(b.network, tmp_path)
    for T in (2, 8):
        params, q, net = network_from_graph(graph, data.train_x[:1000], T=T)
        assert q is not None and params.T == T and params.reset == "zero" and params.readout == "spike_count"
        assert [la.leak_shift for la in params.layers] == [la.leak_shift for la in b.network.layers]
        fcls = np.argmax(simulate(net, data.test_x[:1000], T), 1)
        agree = np.mean(infer(params, data.test_x[:1000]).classes == fcls)
        assert q.calibration_agreement >= 0.97 and agree >= 0.97, (T, q.calibration_agreement, agree)


def test_from_nir_takes_a_graph_or_a_file(trained, tmp_path):
    from sc_neurocore.nir import from_nir

    b, data = trained
    (tmp_path / "g.nir").write_bytes(graph_bytes(to_nir(b)))
    exact, q = from_nir(tmp_path / "g.nir")
    assert q is None and exact == b.network
    params, q = from_nir(str(tmp_path / "g.nir"), data.train_x[:300], T=3)
    assert q is not None and params.T == 3
    with pytest.raises(NIRError, match="calibration images are needed"):
        from_nir(read_graph(tmp_path / "g.nir"), T=3)


def test_quantize_chooses_shifts_that_beat_a_bad_start(trained):
    """Calibration is a search: from a heuristic far off, it still finds shifts that agree."""
    from sc_neurocore.nir import dequantize

    b, data = trained
    net = dequantize(b.network)
    q = quantize(net, data.train_x[:500], 4, window=6)
    assert q.calibration_agreement >= 0.97
    # the same weights with every current shift forced one step off agree less (or equal): the search did its job
    from sc_neurocore.params import LayerParams

    for i in range(2):
        bad = list(q.network.layers)
        la = bad[i]
        bad[i] = LayerParams(la.weight, la.weight_bits, la.threshold, la.leak_shift, la.current_shift + 2,
                             la.membrane_bits)
        worse = NetworkParams(tuple(bad), 4, "direct", "zero", "spike_count")
        fcls = np.argmax(simulate(net, data.train_x[:500], 4), 1)
        assert np.mean(infer(worse, data.train_x[:500]).classes == fcls) <= q.calibration_agreement


# ---------------------------------------------------------------------------------------------------------
# refused graphs: the message names the node and the field
# ---------------------------------------------------------------------------------------------------------


def _full(n, v):
    return np.full(n, float(v), np.float32)


def _graph(n_in=4, n_hid=3, n_out=2, *, bias=None, v_leak=0.0, v_reset=0.0, tau=None, neuron=None, extra_edges=(),
           out_node=None):
    w1 = np.ones((n_hid, n_in), np.float32)
    w2 = np.ones((n_out, n_hid), np.float32)
    fc0 = nir.Affine(weight=w1, bias=np.zeros(n_hid, np.float32) if bias is None else bias)
    tau0 = _full(n_hid, 8e-4) if tau is None else tau
    lif0 = neuron or nir.LIF(tau=tau0, r=_full(n_hid, 8), v_leak=_full(n_hid, v_leak), v_threshold=_full(n_hid, 1),
                             v_reset=_full(n_hid, v_reset))
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}), "fc0": fc0, "lif0": lif0,
             "fc1": nir.Linear(weight=w2), "lif1": nir.LIF(tau=_full(n_out, 8e-4), r=_full(n_out, 8), v_leak=_full(n_out, 0),
                                                            v_threshold=_full(n_out, 1), v_reset=_full(n_out, 0)),
             "output": out_node or nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc0"), ("fc0", "lif0"), ("lif0", "fc1"), ("fc1", "lif1"), ("lif1", "output"), *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_a_valid_hand_built_graph_maps_as_documented():
    net = from_graph(_graph())
    assert net.sizes == (4, 3, 2) and net.readout == "spike_count" and net.reset == "zero"
    la = net.layers[0]
    assert la.beta == pytest.approx(0.875) and la.gain == pytest.approx(1.0) and la.threshold == 1.0
    assert la.weight.shape == (4, 3)  # input-major


@pytest.mark.parametrize("kw,match", [
    ({"bias": np.full(3, 0.5, np.float32)}, r"node 'fc0': bias is not zero \(max \|bias\| = 0.5\)"),
    ({"v_leak": 0.25}, r"node 'lif0': v_leak = 0.25"),
    ({"v_reset": -1.0}, r"node 'lif0': v_reset = -1; the spec resets to 0"),
    ({"tau": np.array([8e-4, 8e-4, 4e-4], np.float32)}, r"node 'lif0': tau differs between neurons"),
    ({"tau": _full(3, 5e-5)}, r"node 'lif0': tau = 5e-05 is shorter than the time step dt = 0.0001"),
    ({"tau": _full(3, np.nan)}, r"node 'lif0': tau holds a non-finite value \(nan\)"),
    ({"v_leak": np.inf}, r"node 'lif0': v_leak holds a non-finite value \(inf\)"),
    ({"neuron": nir.CubaLIF(tau_syn=_full(3, 1e-3), tau_mem=_full(3, 1e-3), r=_full(3, 1), v_leak=_full(3, 0),
                            v_threshold=_full(3, 1))}, r"node 'lif0' \(CubaLIF\) is not supported: tau_syn"),
    ({"neuron": nir.Delay(delay=_full(3, 1))}, r"node 'lif0' \(Delay\) is not supported: delay"),
    ({"neuron": nir.LI(tau=_full(3, 8e-4), r=_full(3, 8), v_leak=_full(3, 0))},
     r"fc0->lif0: a hidden layer must fire"),
    ({"extra_edges": [("lif1", "fc0")]}, r"node 'fc0' has 2 inputs"),
    ({"extra_edges": [("lif0", "output")]}, r"node 'lif0' has 2 successors"),
    ({"out_node": nir.Output(output_type={"output": np.array([5])})},
     r"the Output node 'output' has shape \(5,\) but the last layer has 2 neurons"),
])
def test_unrepresentable_graphs_are_refused_by_node_and_field(kw, match):
    with pytest.raises(NIRError, match=match):
        from_graph(_graph(**kw))


def test_structural_errors_are_refused():
    g = _graph()
    g.nodes["fc1"] = nir.Linear(weight=np.ones((2, 5), np.float32))
    with pytest.raises(NIRError, match="node 'fc1': weight takes 5 inputs but the previous node gives 3"):
        from_graph(g)
    g = _graph()
    g.nodes["fc0"] = nir.Affine(weight=np.full((3, 4), np.nan, np.float32), bias=np.zeros(3, np.float32))
    with pytest.raises(NIRError, match="node 'fc0': weight holds a non-finite value"):
        from_graph(g)
    g = _graph()
    del g.nodes["input"]
    g.edges = [e for e in g.edges if e[0] != "input"]
    with pytest.raises(NIRError, match=r"exactly one Input and one Output node, found 0 input\(s\)"):
        from_graph(g)
    g = _graph()
    g.nodes["stray"] = nir.Linear(weight=np.ones((2, 2), np.float32))
    with pytest.raises(NIRError, match=r"nodes \['stray'\] are not on the path from Input to Output"):
        from_graph(g)
    g = _graph()
    g.edges.append(("ghost", "fc0"))
    with pytest.raises(NIRError, match=r"edge \('ghost', 'fc0'\) names a node the graph does not have"):
        from_graph(g)
    with pytest.raises(NIRError, match="expected a nir.NIRGraph, not dict"):
        from_graph({})


def test_files_that_are_not_nir_graphs(tmp_path, capsys):
    import h5py

    (tmp_path / "text.nir").write_text("not hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.arange(3))
    nir.write(tmp_path / "v2.nir", _graph())
    with h5py.File(tmp_path / "v2.nir", "r+") as f:
        del f["version"]
        f.create_dataset("version", data="2.0", dtype=h5py.string_dtype())
    cases = {"text.nir": r"text.nir is not a NIR file \(not HDF5\)",
             "other.h5": r"other.h5 is an HDF5 file but not a NIR graph",
             "v2.nir": r"v2.nir: NIR version '2.0' is not supported \(this reader reads 1.x\)"}
    for name, match in cases.items():
        with pytest.raises(NIRError, match=match):
            read_graph(tmp_path / name)
        assert main(["import-nir", str(tmp_path / name), "-o", str(tmp_path / "out.scnb"), "--T", "4"]) == 2
        assert "sc-neurocore: error: " in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        read_graph(tmp_path / "missing.nir")
    assert not (tmp_path / "out.scnb").exists()


# ---------------------------------------------------------------------------------------------------------
# the CLI
# ---------------------------------------------------------------------------------------------------------


def test_cli_export_then_import_gives_the_same_network(tmp_path, capsys):
    b = random_bundle((784, 16, 10), T=4, seed=4, reset="zero", readout="spike_count", leak_shift=2)
    save_bundle(b, tmp_path / "a.scnb")
    assert main(["export-nir", str(tmp_path / "a.scnb"), "-o", str(tmp_path / "a.nir")]) == 0
    assert main(["import-nir", str(tmp_path / "a.nir"), "-o", str(tmp_path / "b.scnb"), "--limit", "200"]) == 0
    out = capsys.readouterr().out
    assert "the exact network the graph was exported from" in out and "wrote " in out
    back = load_bundle(tmp_path / "b.scnb")
    assert back.network == b.network
    prov = back.provenance
    assert prov["method"] == "import-nir" and prov["source"]["kind"] == "nir" and prov["test_images"] == 200
    assert 0.9 <= prov["float_agreement"] <= 1.0
    assert main(["info", str(tmp_path / "b.scnb"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["provenance"]["source"]["file"] == "a.nir"


def test_cli_import_needs_T_for_a_foreign_graph(tmp_path, capsys):
    nir.write(tmp_path / "h.nir", _graph(n_in=784, n_out=10))
    assert main(["import-nir", str(tmp_path / "h.nir"), "-o", str(tmp_path / "h.scnb")]) == 2
    assert "--T is needed" in capsys.readouterr().err
    assert main(["import-nir", str(tmp_path / "h.nir"), "-o", str(tmp_path / "h.scnb"), "--T", "0"]) == 2
    assert main(["import-nir", str(tmp_path / "h.nir"), "-o", str(tmp_path / "h.scnb"), "--T", "4",
                 "--dt", "-1"]) == 2
    assert "--dt must be a positive number" in capsys.readouterr().err
    nir.write(tmp_path / "small.nir", _graph())
    assert main(["import-nir", str(tmp_path / "small.nir"), "-o", str(tmp_path / "h.scnb"), "--T", "4"]) == 2
    assert "the model takes 4 inputs but mnist images have 784 pixels" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.nir", "small.nir"]


def test_cli_import_keeps_an_existing_output_when_it_fails(tmp_path):
    (tmp_path / "keep.scnb").write_bytes(b"old")
    nir.write(tmp_path / "bias.nir", _graph(n_in=784, n_out=10, bias=np.ones(3, np.float32)))
    assert main(["import-nir", str(tmp_path / "bias.nir"), "-o", str(tmp_path / "keep.scnb"), "--T", "4"]) == 2
    assert (tmp_path / "keep.scnb").read_bytes() == b"old"


# ---------------------------------------------------------------------------------------------------------
# a NIR graph as a distillation teacher
# ---------------------------------------------------------------------------------------------------------


def test_the_teacher_is_the_float_model(trained):
    import torch

    from sc_neurocore.nir import dequantize
    from sc_neurocore.nir.teacher import FloatTeacher

    b, data = trained
    net = dequantize(b.network)
    teacher = FloatTeacher(net, T=6)
    x = data.test_x[:300]
    counts = teacher.outputs(torch.tensor(x, dtype=torch.float32)).sum(0).numpy()
    # float32 (torch) against float64 (NumPy): a spike can flip where v lands within rounding of v_th
    assert np.mean(counts == simulate(net, x, 6)) >= 0.999
    scale = teacher.calibrate(data.train_x[:1000])
    logits = teacher(torch.tensor(x, dtype=torch.float32))
    assert logits.shape == (6, 300, 10) and scale > 0
    np.testing.assert_allclose(logits.sum(0).numpy() / scale, counts, rtol=0, atol=0)


def test_distill_from_a_nir_graph_with_biases(trained, tmp_path, capsys):
    """A graph the spec cannot hold (here: biases) cannot be imported, but it can teach a student."""
    b, _ = trained
    g = to_nir(b.network)
    fc0 = g.nodes["fc0"]
    g.nodes["fc0"] = nir.Affine(weight=fc0.weight, bias=np.full(fc0.weight.shape[0], 0.05, np.float32))
    (tmp_path / "biased.nir").write_bytes(graph_bytes(nir.NIRGraph(nodes=g.nodes, edges=g.edges)))
    assert main(["import-nir", str(tmp_path / "biased.nir"), "-o", str(tmp_path / "x.scnb"), "--T", "4"]) == 2
    assert "node 'fc0': bias is not zero (max |bias| = 0.05)" in capsys.readouterr().err
    assert main(["distill", "--teacher", str(tmp_path / "biased.nir"), "--teacher-T", "8", "--T", "2",
                 "--hidden", "16", "--epochs", "2", "--limit", "3000", "--reset", "zero", "--quiet",
                 "-o", str(tmp_path / "s.scnb")]) == 0
    s = load_bundle(tmp_path / "s.scnb")
    assert s.network.T == 2 and s.network.sizes == (784, 16, 10)
    t = s.provenance["teacher"]
    assert t["kind"] == "nir" and t["T"] == 8 and len(t["sha256"]) == 64
    assert s.provenance["train_config"]["teacher_T"] == 8 and s.provenance["test_accuracy"] > 0.3  # chance: 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["biased.nir", "s.pt", "s.scnb"]


def test_distill_refuses_a_bad_nir_teacher_before_training(tmp_path, capsys):
    (tmp_path / "bad.nir").write_text("not hdf5")
    assert main(["distill", "--teacher", str(tmp_path / "bad.nir"), "--T", "2", "--epochs", "1", "--limit", "100",
                 "-o", str(tmp_path / "s.scnb")]) == 2
    assert "bad.nir is not a NIR file (not HDF5)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir"]
