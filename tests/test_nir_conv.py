"""NIR convolutions (docs/nir.md §2): Conv2d / SumPool2d / AvgPool2d / Flatten <-> conv layers, the float conv
model against a naive loop written from its equations, exact bundle round trips, post-training quantisation
of a float conv graph, the torch teacher, refusals by node and field, and the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")  # a dependency of sc_neurocore[dev]: present wherever make test runs

from test_golden_conv import conv_networks  # noqa: E402
from test_nir import naive_float_model as _naive  # noqa: E402
from sc_neurocore.bundle import Bundle, load_bundle, save_bundle  # noqa: E402
from sc_neurocore.cli import main  # noqa: E402
from sc_neurocore.golden import infer  # noqa: E402
from sc_neurocore.nir import (FloatLayer, FloatNet, NIRError, from_graph, graph_bytes, network_from_graph,  # noqa: E402
                              quantize, read_graph, simulate, to_nir)
from sc_neurocore.params import ConvParams  # noqa: E402


def _file(graph, tmp_path, name="g.nir"):
    (tmp_path / name).write_bytes(graph_bytes(graph))
    return tmp_path / name


# ---------------------------------------------------------------------------------------------------------
# the float conv model against the scalar loop of test_nir.py (model.py's docstring equations)
# ---------------------------------------------------------------------------------------------------------


@st.composite
def float_conv_nets(draw):
    """1-2 float conv layers then a dense output. Weights are multiples of 1/8, the input scale 1/256, gains and
    decays powers of two (or 7/8): every sum is exact in float64, so any summation order gives the same bits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    reset = draw(st.sampled_from(["zero", "subtract"]))
    readout = draw(st.sampled_from(["spike_count", "membrane"]))
    layers = []

    def lif(i):
        return dict(beta=draw(st.sampled_from([1.0, 0.5, 0.875])), gain=draw(st.sampled_from([1.0, 0.5])),
                    threshold=float(draw(st.sampled_from([0.25, 0.5, 1.0, 1.5]))), reset=reset, name=f"l{i}")

    for i in range(draw(st.integers(1, 2))):
        c, h, w = shape
        k = draw(st.integers(1, min(3, h, w)))
        padding = draw(st.sampled_from(sorted({0, k // 2})))
        stride = draw(st.integers(1, 2))
        ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        pool = draw(st.sampled_from([q for q in (1, 2, 3) if ho % q == 0 and wo % q == 0]))
        layer = FloatLayer(rng.integers(-8, 9, (draw(st.integers(1, 3)), c, k, k)) / 8.0, in_shape=shape,
                           stride=stride, padding=padding, pool=pool, **lif(i))
        layers.append(layer)
        shape = layer.out_shape
    out = dict(neuron="li", threshold=None, beta=1.0, gain=1.0, name="out") if readout == "membrane" else lif(9)
    layers.append(FloatLayer(rng.integers(-8, 9, (layers[-1].n_out, draw(st.integers(1, 3)))) / 8.0, **out))
    net = FloatNet(tuple(layers), input_scale=1 / 256)
    kind = draw(st.sampled_from(["random", "zero", "max"]))
    px = rng.integers(0, 256, (2, net.sizes[0])) if kind == "random" else np.full((2, net.sizes[0]),
                                                                                     0 if kind == "zero" else 255)
    return net, px, draw(st.integers(1, 5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(float_conv_nets())
def test_the_float_conv_model_is_the_documented_equations(case):
    net, px, T = case
    np.testing.assert_array_equal(simulate(net, px, T), _naive(net, px, T))


def test_the_teacher_runs_the_float_conv_model():
    torch = pytest.importorskip("torch")
    from sc_neurocore.nir.teacher import FloatTeacher

    rng = np.random.default_rng(1)
    conv = FloatLayer(rng.integers(-8, 9, (3, 1, 3, 3)) / 8.0, in_shape=(1, 6, 6), padding=1, pool=2,
                      beta=0.875, threshold=0.5, name="c")
    net = FloatNet((conv, FloatLayer(rng.integers(-8, 9, (27, 4)) / 8.0, beta=0.5, threshold=0.5, name="d")),
                   input_scale=1 / 256)
    px = rng.integers(0, 256, (5, 36))
    _, steps = simulate(net, px, 6, record=True)
    teacher = FloatTeacher(net, T=6)
    # the same dyadic numbers in float32: exact products and sums, so the same spikes
    np.testing.assert_array_equal(teacher.outputs(torch.as_tensor(px)).numpy(), steps)


# ---------------------------------------------------------------------------------------------------------
# bundle -> NIR -> bundle
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=conv_networks(), seed=st.integers(0, 2**32 - 1))
def test_conv_bundle_nir_bundle_round_trip_is_exact(tmp_path_factory, net, seed):
    assume(net.layers[0].kind == "conv")  # dense -> conv cannot be written (the next test)
    params = dataclasses.replace(net, reset="zero")  # NIR's neurons reset hard
    back, q, _ = network_from_graph(read_graph(_file(to_nir(params), tmp_path_factory.mktemp("rt"))))
    assert q is None and back == params
    px = np.random.default_rng(seed).integers(0, 256, (3, params.sizes[0]))
    a, b = infer(params, px), infer(back, px)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.spike_counts[0], b.spike_counts[0])


def test_a_conv_layer_after_a_dense_one_is_refused_on_export():
    rng = np.random.default_rng(0)
    from sc_neurocore.params import LayerParams, NetworkParams

    dense = LayerParams(rng.integers(-3, 4, (16, 8)), 4, 3, 1)
    conv = ConvParams(rng.integers(-3, 4, (2, 2, 3, 3)), (2, 2, 2), 4, 3, 1, padding=1)
    params = NetworkParams((dense, conv, LayerParams(rng.integers(-3, 4, (8, 3)), 4, 3, 1)), 4, reset="zero")
    with pytest.raises(NIRError, match="layer 2: a convolution reading a dense layer's spikes cannot be written"):
        to_nir(params)


def test_the_exported_conv_graph_is_what_docs_nir_md_says(tmp_path):
    from sc_neurocore.bundle import resolve_bundle

    params = dataclasses.replace(resolve_bundle(pretrained="mnist-conv-t4").network, reset="zero")
    g = read_graph(_file(to_nir(params), tmp_path))
    kinds = [(n, type(g.nodes[n]).__name__) for n in ("input", "conv0", "neuron0", "pool0", "conv1", "neuron1",
                                                      "pool1", "flatten1", "fc2", "neuron2", "fc3", "neuron3")]
    assert [k for _, k in kinds] == ["Input", "Conv2d", "LIF", "SumPool2d", "Conv2d", "LIF", "SumPool2d",
                                     "Flatten", "Linear", "LIF", "Linear", "LI"]
    assert ("pool1", "flatten1") in g.edges and ("flatten1", "fc2") in g.edges
    assert tuple(g.nodes["input"].input_type["input"]) == (1, 28, 28)
    c0, c1 = g.nodes["conv0"], g.nodes["conv1"]
    assert c0.weight.shape == (16, 1, 5, 5) and c1.weight.shape == (32, 16, 5, 5)
    assert tuple(c0.padding) == (2, 2) and tuple(c0.stride) == (1, 1) and not np.any(c0.bias)
    assert tuple(c1.input_type["input"]) == (16, 14, 14)
    assert tuple(g.nodes["pool0"].kernel_size) == (2, 2) and tuple(g.nodes["pool0"].stride) == (2, 2)
    assert g.nodes["neuron0"].tau.shape == (16, 28, 28)
    l0 = params.layers[0]
    # W_float = W_int / (2^s * c) * tau/dt (the gain folded, docs/nir.md §4), c = 1/255 for layer 1
    tau = 1e-4 / 2.0 ** -l0.leak_shift
    np.testing.assert_allclose(c0.weight, l0.weight / (2.0 ** l0.current_shift / 255.0) * tau / 1e-4, rtol=2e-7)
    assert np.allclose(g.nodes["neuron0"].v_threshold, l0.threshold - 0.5)


def test_the_float_conv_graph_agrees_with_the_integer_network(tmp_path):
    from sc_neurocore.bundle import resolve_bundle
    from sc_neurocore.train import prepare_data

    params = dataclasses.replace(resolve_bundle(pretrained="mnist-conv-t4").network, reset="zero")
    net = from_graph(read_graph(_file(to_nir(params), tmp_path)))
    x = prepare_data("mnist").test_x[:300]
    agree = np.mean(np.argmax(simulate(net, x, params.T), 1) == infer(params, x).classes)
    assert agree >= 0.98, agree


# ---------------------------------------------------------------------------------------------------------
# a foreign float conv graph (as snnTorch writes one): Conv2d -> LIF -> AvgPool2d -> Flatten -> Linear -> LI
# ---------------------------------------------------------------------------------------------------------


def _full(shape, v):
    return np.full(shape, float(v), dtype=np.float32)


def _lif(shape, tau=8e-4, th=1.0):
    return nir.LIF(tau=_full(shape, tau), r=_full(shape, 1.0), v_leak=_full(shape, 0.0),
                   v_threshold=_full(shape, th), v_reset=_full(shape, 0.0))


def _conv_graph(*, pool="AvgPool2d", seed=0, conv=None, pool_kw=None, flatten=True, input_shape=(1, 8, 8),
                conv_input_shape=(8, 8), bias=None, nodes_extra=None, tau=8e-4):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.6, (4, 1, 3, 3)).astype(np.float32)
    ckw = dict(input_shape=conv_input_shape, weight=w, stride=1, padding=1, dilation=1, groups=1,
               bias=np.zeros(4, np.float32) if bias is None else bias)
    ckw.update(conv or {})
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)}), "conv": nir.Conv2d(**ckw),
             "lif0": _lif((4, 8, 8), tau=tau, th=0.8)}
    chain = ["input", "conv", "lif0"]
    if pool:
        pk = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        pk.update(pool_kw or {})
        nodes["pool"] = getattr(nir, pool)(**pk)
        chain.append("pool")
    n_flat = 4 * 4 * 4 if pool else 4 * 8 * 8
    if flatten:
        nodes["flat"] = nir.Flatten(input_type={"input": np.array([4, 4, 4] if pool else [4, 8, 8])}, start_dim=0)
        chain.append("flat")
    nodes["fc"] = nir.Linear(weight=rng.normal(0, 0.5, (3, n_flat)).astype(np.float32))
    nodes["li"] = nir.LI(tau=_full(3, 8e-4), r=_full(3, 1.0), v_leak=_full(3, 0.0))
    nodes["output"] = nir.Output(output_type={"output": np.array([3])})
    nodes.update(nodes_extra or {})
    chain += ["fc", "li", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])), metadata={}, type_check=False)


def test_a_hand_built_conv_graph_maps_as_documented():
    g = _conv_graph()
    net = from_graph(g)
    conv, fc = net.layers
    assert (conv.kind, conv.in_shape, conv.kernel, conv.stride, conv.padding, conv.pool) == ("conv", (1, 8, 8), 3, 1,
                                                                                             1, 2)
    assert conv.conv_shape == (4, 8, 8) and conv.out_shape == (4, 4, 4) and fc.n_in == 64
    assert conv.beta == pytest.approx(1 - 1e-4 / 8e-4) and conv.threshold == pytest.approx(0.8)
    np.testing.assert_array_equal(conv.weight, np.asarray(g.nodes["conv"].weight, np.float64))
    # AvgPool2d: the same sum pool, 1/q^2 = 1/4 folded into the next layer's weights (exact: a power of two)
    np.testing.assert_array_equal(fc.weight, np.asarray(g.nodes["fc"].weight, np.float64).T / 4)
    summed = from_graph(_conv_graph(pool="SumPool2d"))
    np.testing.assert_array_equal(summed.layers[1].weight, np.asarray(g.nodes["fc"].weight, np.float64).T)
    # the input's (C, H, W) may come from the Conv2d node instead of a 3-D Input
    flat_in = from_graph(_conv_graph(input_shape=(64,), conv_input_shape=(8, 8)))
    assert flat_in.layers[0].in_shape == (1, 8, 8)


def test_a_float_conv_graph_quantises_and_keeps_the_float_models_classes(tmp_path):
    g = _conv_graph()
    rng = np.random.default_rng(3)
    px = rng.integers(0, 256, (256, 64))
    net = from_graph(read_graph(_file(g, tmp_path)), dt=1e-4)
    q = quantize(net, px[:128], T=8)  # beta = 1 - 1e-4/8e-4 = 0.875: leak shift 3, exactly
    first = q.network.layers[0]
    assert isinstance(first, ConvParams) and (first.in_shape, first.padding, first.pool) == ((1, 8, 8), 1, 2)
    held = px[128:]
    agree = np.mean(infer(q.network, held).classes == np.argmax(simulate(net, held, 8), 1))
    assert q.calibration_agreement >= 0.9 and agree >= 0.9, (q.calibration_agreement, agree)


@pytest.mark.parametrize("kw,match", [
    (dict(conv=dict(dilation=2)), "'conv'.*dilation = .*only dilation 1"),
    (dict(conv=dict(groups=2, weight=np.ones((4, 1, 3, 3), np.float32))), "'conv'.*groups = 2"),
    (dict(conv=dict(stride=(1, 2))), "'conv'.*stride = \\(1, 2\\) differs between height and width"),
    (dict(conv=dict(padding=(1, 0))), "'conv'.*padding = \\(1, 0\\)"),
    (dict(conv=dict(weight=np.ones((4, 1, 3, 2), np.float32))), "'conv'.*kernel must be square"),
    (dict(conv=dict(padding=3)), "'conv'.*padding must be"),
    (dict(bias=np.ones(4, np.float32)), "'conv'.*bias is not zero.*nn.Conv2d\\(..., bias=False\\)"),
    (dict(pool_kw=dict(stride=np.array([1, 1]))), "'pool'.*stride .* differs from kernel_size.*do not overlap"),
    (dict(pool_kw=dict(padding=np.array([1, 1]))), "'pool'.*padding.*does not pad"),
    (dict(pool_kw=dict(kernel_size=np.array([3, 3]), stride=np.array([3, 3]))), "'pool'.*pool must divide"),
    (dict(flatten=False), "'fc' \\(Linear\\) reads \\(4, 4, 4\\) data: put a Flatten before it"),
    (dict(input_shape=(64,), conv_input_shape=None), "'conv'.*input's \\(C, H, W\\) is unknown"),
    (dict(input_shape=(1, 8, 8), conv_input_shape=(4, 16)), "'conv'.*input_shape \\(1, 4, 16\\) does not match"),
])
def test_unrepresentable_conv_graphs_are_refused_by_node_and_field(kw, match):
    with pytest.raises(NIRError, match=match):
        from_graph(_conv_graph(**kw))


def test_pooling_and_conv_outputs_in_the_wrong_place_are_refused():
    rng = np.random.default_rng(0)
    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
                            "p": nir.SumPool2d(**pool), "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])},
                                                                            start_dim=0),
                            "fc": nir.Linear(weight=rng.normal(size=(2, 4))), "li": nir.LI(tau=_full(2, 1e-3),
                                                                                           r=_full(2, 1), v_leak=_full(2, 0)),
                            "output": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("input", "p"), ("p", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")],
                     type_check=False)
    with pytest.raises(NIRError, match="'p' \\(SumPool2d\\): pooling is supported only right after a convolution"):
        from_graph(g)
    # a convolution as the output layer: the classes must be a dense layer's neurons
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
                            "conv": nir.Conv2d(input_shape=None, weight=rng.normal(size=(2, 1, 4, 4)), stride=1,
                                               padding=0, dilation=1, groups=1, bias=np.zeros(2)),
                            "lif": _lif((2, 1, 1)), "output": nir.Output(output_type={"output": np.array([2, 1, 1])})},
                     edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(NIRError, match="output layer must be dense"):
        from_graph(g)
    # per-channel neuron parameters are accepted when equal, refused by field when they differ
    def lif(tau):
        ch = (4, 1, 1)
        return nir.LIF(tau=tau, r=_full(ch, 1), v_leak=_full(ch, 0), v_threshold=_full(ch, 0.8), v_reset=_full(ch, 0))

    tau = np.full((4, 1, 1), 8e-4, np.float32)
    assert from_graph(_conv_graph(nodes_extra={"lif0": lif(tau)})).layers[0].beta == pytest.approx(0.875)
    tau[2] = 2e-3
    with pytest.raises(NIRError, match="'lif0': tau differs between neurons"):
        from_graph(_conv_graph(nodes_extra={"lif0": lif(tau)}))


# ---------------------------------------------------------------------------------------------------------
# the CLI: export-nir of a conv bundle, import-nir back; a bad conv graph exits 2 and writes nothing
# ---------------------------------------------------------------------------------------------------------


def test_cli_exports_and_imports_a_conv_bundle(tmp_path, capsys):
    from sc_neurocore.bundle import resolve_bundle

    b = resolve_bundle(pretrained="mnist-conv-t4")
    zero = Bundle(dataclasses.replace(b.network, reset="zero"), {"note": "reset zero for NIR"})
    save_bundle(zero, tmp_path / "c.scnb")
    assert main(["export-nir", str(tmp_path / "c.scnb"), "-o", str(tmp_path / "c.nir")]) == 0
    assert main(["import-nir", str(tmp_path / "c.nir"), "-o", str(tmp_path / "back.scnb"), "--limit", "300"]) == 0
    assert load_bundle(tmp_path / "back.scnb").network == zero.network
    # the shipped bundle resets by subtraction, which NIR cannot say: exit 2, nothing written
    assert main(["export-nir", "--pretrained", "mnist-conv-t4", "-o", str(tmp_path / "s.nir")]) == 2
    assert "reset 'subtract' cannot be expressed in NIR" in capsys.readouterr().err
    assert not (tmp_path / "s.nir").exists()


def test_cli_refuses_a_bad_conv_graph_and_keeps_the_output(tmp_path, capsys):
    path = _file(_conv_graph(bias=np.full(4, 0.5, np.float32)), tmp_path)
    (tmp_path / "out.scnb").write_bytes(b"keep me")
    assert main(["import-nir", str(path), "-o", str(tmp_path / "out.scnb"), "--T", "4", "--limit", "64"]) == 2
    assert "'conv': bias is not zero" in capsys.readouterr().err and (tmp_path / "out.scnb").read_bytes() == b"keep me"


def test_a_conv_graph_teaches_a_conv_student(tmp_path):
    """``distill --teacher model.nir`` with an exported conv network as the teacher (the torch teacher runs its
    convolutions and pools) and a smaller conv student at T = 2."""
    from sc_neurocore.bundle import resolve_bundle

    b = resolve_bundle(pretrained="mnist-conv-t4")
    save_bundle(Bundle(dataclasses.replace(b.network, reset="zero"), {}), tmp_path / "c.scnb")
    assert main(["export-nir", str(tmp_path / "c.scnb"), "-o", str(tmp_path / "c.nir")]) == 0
    assert main(["distill", "--teacher", str(tmp_path / "c.nir"), "--teacher-T", "4", "--T", "2", "--arch", "8C5-P2-10",
                 "--reset", "zero", "--epochs", "1", "--limit", "1000", "--threads", "1", "--quiet",
                 "-o", str(tmp_path / "s.scnb")]) == 0
    s = load_bundle(tmp_path / "s.scnb")
    assert s.network.T == 2 and isinstance(s.network.layers[0], ConvParams)
    assert s.provenance["teacher"]["kind"] == "nir" and s.provenance["method"] == "distill-temporal"
    assert s.provenance["test_accuracy"] > 0.12  # above chance after 8 steps (21.4 % measured)
