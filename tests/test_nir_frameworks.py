"""NIR interop against the real libraries (snnTorch 1.0, Norse 1.1; docs/nir.md §5-6).

A small MLP trained for one short epoch in each framework, brought in through the framework's exporter
(snnTorch, with its bugs worked around) or read from the module (Norse, whose exporter is broken), quantised,
run through the golden model and the RTL on both simulators; bundles exported to NIR and simulated by the
frameworks' own importers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
norse = pytest.importorskip("norse.torch")

from sc_neurocore.bundle import Bundle, load_bundle, random_bundle, save_bundle  # noqa: E402
from sc_neurocore.cli import main  # noqa: E402
from sc_neurocore.golden import infer  # noqa: E402
from sc_neurocore.nir import NIRError, from_graph, graph_bytes, quantize, read_graph, simulate, to_nir  # noqa: E402
from sc_neurocore.nir.frameworks import (from_module, from_norse, from_snntorch, run_norse, run_snntorch,  # noqa: E402
                                         snntorch_to_nir)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

T = 8
HIDDEN = 24  # small: the RTL of the imported network is built for both simulators


@pytest.fixture(scope="module")
def mnist():
    from sc_neurocore.train import prepare_data

    return prepare_data("mnist", None, 6000)


def _train(model, step, data, n=6000, lr=5e-3, seed=0):
    """One pass over ``n`` training images: spike-count cross-entropy (snnTorch's ce_rate_loss)."""
    from snntorch import functional as SF

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = SF.ce_rate_loss()
    x = torch.tensor(data.train_x[:n], dtype=torch.float32) / 255
    y = torch.tensor(data.train_y[:n])
    for i in range(0, n, 128):
        loss = loss_fn(step(x[i:i + 128]), y[i:i + 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _snn_steps(model):
    return lambda xb, steps=T: run_snntorch(model, xb, steps)


def _norse_steps(model):
    return lambda xb, steps=T: run_norse(model, xb, steps)


def _classes(run, pixels, steps=T):
    with torch.no_grad():
        return run(torch.tensor(pixels, dtype=torch.float32) / 255, steps).sum(0).argmax(1).numpy()


@pytest.fixture(scope="module")
def snntorch_model(mnist):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, HIDDEN, bias=False), snn.Leaky(beta=0.875, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(HIDDEN, 10, bias=False),
        snn.Leaky(beta=0.875, init_hidden=True, reset_mechanism="zero", output=True))
    return _train(model, _snn_steps(model), mnist)


@pytest.fixture(scope="module")
def norse_model(mnist):
    torch.manual_seed(0)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0))  # dt * tau_mem_inv = 0.5: beta = 1/2, exact
    model = norse.SequentialState(torch.nn.Linear(784, HIDDEN, bias=False), norse.LIFBoxCell(p, dt=1e-3),
                                  torch.nn.Linear(HIDDEN, 10, bias=False), norse.LIFBoxCell(p, dt=1e-3))
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.mul_(4.0)
    return _train(model, _norse_steps(model), mnist, lr=1e-2)


# ---------------------------------------------------------------------------------------------------------
# the float model is each framework's own dynamics
# ---------------------------------------------------------------------------------------------------------


def test_the_float_model_is_snntorchs_leaky(snntorch_model, mnist):
    net = from_snntorch(snntorch_model)
    assert net.sizes == (784, HIDDEN, 10) and net.readout == "spike_count" and net.reset == "zero"
    run = _snn_steps(snntorch_model)
    with torch.no_grad():
        counts = run(torch.tensor(mnist.test_x[:500], dtype=torch.float32) / 255).sum(0).numpy()
    np.testing.assert_array_equal(simulate(net, mnist.test_x[:500], T, dtype=np.float32), counts)


def test_the_float_model_is_norses_lifbox(norse_model, mnist):
    net = from_norse(norse_model)
    assert net.dt == 1e-3 and net.layers[0].beta == 0.5 and net.layers[0].gain == 0.5
    with torch.no_grad():
        counts = _norse_steps(norse_model)(torch.tensor(mnist.test_x[:500], dtype=torch.float32) / 255).sum(0).numpy()
    sim = simulate(net, mnist.test_x[:500], T, dtype=np.float32)
    # float32 sums in another order: a spike can flip where v lands within rounding of v_th
    assert np.mean(sim == counts) >= 0.999


# ---------------------------------------------------------------------------------------------------------
# snnTorch -> NIR (its own exporter) -> bundle -> golden model and RTL
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def snntorch_bundle(snntorch_model, mnist, tmp_path_factory):
    d = tmp_path_factory.mktemp("snn")
    graph = snntorch_to_nir(snntorch_model, 784)
    (d / "model.nir").write_bytes(graph_bytes(graph))
    assert main(["import-nir", str(d / "model.nir"), "-o", str(d / "model.scnb"), "--T", str(T), "--limit", "2000",
                 "--calib", "2000"]) == 0
    return load_bundle(d / "model.scnb"), d


def test_snntorch_exported_graph_imports_and_agrees(snntorch_model, snntorch_bundle, mnist):
    b, d = snntorch_bundle
    g = read_graph(d / "model.nir")
    assert {type(n).__name__ for n in g.nodes.values()} == {"Input", "Linear", "LIF", "Output"}
    # the graph's float model is the module's
    assert from_graph(g).layers[0].beta == pytest.approx(0.875)
    x, y = mnist.test_x[:2000], mnist.test_y[:2000]
    ref = _classes(_snn_steps(snntorch_model), x)
    icls = infer(b.network, x).classes
    agree = np.mean(icls == ref)
    assert agree >= 0.98, agree
    assert abs(np.mean(icls == y) - np.mean(ref == y)) <= 0.01
    prov = b.provenance
    assert prov["method"] == "import-nir" and prov["float_agreement"] == pytest.approx(agree)


def test_snntorch_module_path_gives_the_same_network_as_its_exporter(snntorch_model, snntorch_bundle, mnist):
    b, _ = snntorch_bundle
    q = quantize(from_snntorch(snntorch_model), mnist.train_x[:2000], T)
    assert q.network == b.network


@pytest.fixture(scope="module")
def norse_bundle(norse_model, mnist):
    return Bundle(quantize(from_norse(norse_model), mnist.train_x[:2000], T).network, {"source": "norse"})


@pytest.mark.sim
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_an_imported_model_runs_bit_exact_in_rtl(request, framework, mnist, simulator):
    from sc_neurocore.sim.runner import run_regression

    b = request.getfixturevalue("snntorch_bundle")[0] if framework == "snntorch" else request.getfixturevalue(
        "norse_bundle")
    r = run_regression(b, mnist.test_x, mnist.test_y, simulator=simulator, n=12 if simulator == "icarus" else 40)
    assert r["ok"] and r["mismatched_vectors"] == 0 and r["cycle_mismatches"] == 0, r
    assert r["vectors_checked"] == (12 if simulator == "icarus" else 40)


def test_a_subtract_reset_snntorch_model_needs_allow_approx(mnist):
    m = torch.nn.Sequential(torch.nn.Linear(784, 8, bias=False), snn.Leaky(beta=0.9375, init_hidden=True),
                            torch.nn.Linear(8, 10, bias=False), snn.Leaky(beta=0.9375, init_hidden=True, output=True))
    with pytest.raises(NIRError, match=r"snnTorch's subtract reset removes the threshold after the leak"):
        from_snntorch(m)
    assert from_snntorch(m, allow_approx=True).reset == "subtract"
    m[1].reset_delay = False  # reset in the same step: the spec's order exactly
    m[3].reset_delay = False
    assert from_snntorch(m).reset == "subtract"


def test_snntorch_refusals_name_the_module():
    cases = [
        (torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero")),
         r"snntorch module '0' \(Linear\): bias is not zero"),
        (torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True)),
         r"snntorch module '1' \(Synaptic\) is not supported: it has a synaptic current"),
        (torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False),
                             snn.Leaky(beta=torch.tensor([0.5, 0.75, 0.5]), init_hidden=True, reset_mechanism="zero")),
         r"snntorch module '1' \(Leaky\): beta differs between neurons"),
        (torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False),
                             snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="none")),
         r"reset_mechanism 'none' is not in the spec"),
    ]
    for model, match in cases:
        with pytest.raises(NIRError, match=match):
            from_module(model)
    relu = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.ReLU())
    with pytest.raises(NIRError, match=r"snntorch module '1' \(ReLU\) is not supported"):
        from_snntorch(relu)
    with pytest.raises(NIRError, match=r"Sequential: neither a snnTorch nor a Norse model"):
        from_module(relu)


# ---------------------------------------------------------------------------------------------------------
# Norse: read from the module (its to_nir writes tau = dt / tau_mem_inv and scalar datasets)
# ---------------------------------------------------------------------------------------------------------


def test_norse_model_imports_and_agrees(norse_model, mnist, tmp_path):
    net = from_norse(norse_model)
    q = quantize(net, mnist.train_x[:2000], T)
    x, y = mnist.test_x[:2000], mnist.test_y[:2000]
    ref = _classes(_norse_steps(norse_model), x)
    icls = infer(q.network, x).classes
    assert np.mean(icls == ref) >= 0.98
    assert abs(np.mean(icls == y) - np.mean(ref == y)) <= 0.01


def test_a_pt_file_must_hold_a_whole_module(norse_model, tmp_path, capsys):
    # Neither framework's default modules can be pickled whole (snnTorch's surrogate gradient is a closure,
    # Norse's parameter tuples are generated classes): docs/nir.md says to use the Python API or a .nir file.
    with pytest.raises(Exception, match="pickle"):
        torch.save(norse_model, tmp_path / "whole.pt")
    torch.save(norse_model.state_dict(), tmp_path / "state.pt")
    assert main(["import-nir", str(tmp_path / "state.pt"), "-o", str(tmp_path / "n.scnb"), "--T", "4"]) == 2
    assert "holds a OrderedDict, not a torch module (save it with torch.save(model, path); a state_dict has no " \
           "architecture)" in capsys.readouterr().err
    assert not (tmp_path / "n.scnb").exists()


def test_norse_refuses_synaptic_cells():
    m = norse.SequentialState(torch.nn.Linear(4, 3, bias=False), norse.LIFCell())
    with pytest.raises(NIRError, match=r"norse module '1' \(LIFCell\) is not supported: it has a synaptic current"):
        from_module(m)


def test_norses_own_exporter_is_still_broken():
    """Why from_norse reads the module: Norse 1.1's to_nir output cannot be written. When this fails, Norse
    fixed its exporter and the docs (docs/nir.md §5) should say so."""
    m = norse.SequentialState(torch.nn.Linear(4, 3, bias=False), norse.LIFBoxCell())
    g = norse.to_nir(m, torch.zeros(1, 4))
    import io

    with pytest.raises(TypeError, match="Scalar datasets don't support chunk/filter options"):
        nir.write(io.BytesIO(), g)


# ---------------------------------------------------------------------------------------------------------
# bundle -> NIR -> snnTorch / Norse
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(snntorch_bundle, tmp_path_factory):
    b, _ = snntorch_bundle
    d = tmp_path_factory.mktemp("export")
    save_bundle(b, d / "b.scnb")
    assert main(["export-nir", str(d / "b.scnb"), "-o", str(d / "b.nir")]) == 0
    return b, read_graph(d / "b.nir")


def test_our_export_runs_in_snntorch(exported, mnist, capsys):
    from snntorch.import_nir import import_from_nir

    b, g = exported
    model = import_from_nir(g)
    capsys.readouterr()  # it prints "replace rnn subgraph with nirgraph"
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 and all(m.bias is None for m in linears)  # bias-free Linear nodes stay bias-free
    x = mnist.test_x[:2000]
    agree = np.mean(_classes(_snn_steps(model), x, b.network.T) == infer(b.network, x).classes)
    assert agree >= 0.99, agree


def test_our_export_runs_in_norse(exported, mnist):
    b, g = exported
    model = norse.from_nir(g, dt=1e-4)
    # the trap nirtorch is known for: a random bias on a layer the graph gives none
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 and all(m.bias is None or not bool(m.bias.any()) for m in linears)
    x = mnist.test_x[:2000]
    agree = np.mean(_classes(_norse_steps(model), x, b.network.T) == infer(b.network, x).classes)
    assert agree >= 0.99, agree


def test_the_exporter_wrapper_works_right_after_a_training_step():
    """snnTorch leaves the last step's (non-leaf) state on the module; the wrapper copies it detached and
    leaves the module as it was."""
    m = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False),
                            snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero", output=True))
    spk, mem = m(torch.rand(2, 4))
    (spk.sum() + mem.sum()).backward()
    before = m[1].mem
    g = snntorch_to_nir(m, 4)
    assert {type(n).__name__ for n in g.nodes.values()} == {"Input", "Linear", "LIF", "Output"}
    np.testing.assert_array_equal(g.nodes["1"].tau, np.full(3, 2e-4, np.float32))
    assert m[1].mem is before and np.ndim(m[1].beta.detach().numpy()) == 0  # the module is not changed


# ---------------------------------------------------------------------------------------------------------
# a snnTorch convolutional network through its own exporter (Conv2d -> Leaky -> AvgPool2d -> Flatten -> ...)
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def snntorch_conv_model(mnist):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 28, 28)),  # the data is flat; snnTorch's exporter reads shapes from a sample
        torch.nn.Conv2d(1, 4, 5, stride=2, padding=2, bias=False),
        snn.Leaky(beta=0.875, init_hidden=True, reset_mechanism="zero"),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(4 * 7 * 7, 10, bias=False),
        snn.Leaky(beta=0.875, init_hidden=True, reset_mechanism="zero", output=True))
    return _train(model, _snn_steps(model), mnist, n=3000, lr=1e-2)


def test_a_snntorch_conv_network_imports_and_agrees(snntorch_conv_model, mnist, tmp_path):
    conv = snntorch_conv_model[1:]  # the exporter's sample has the conv's input shape
    g = snntorch_to_nir(conv, (1, 28, 28))
    assert {"Conv2d", "AvgPool2d", "Flatten", "Linear", "LIF"} <= {type(n).__name__ for n in g.nodes.values()}
    net = from_graph(g)
    first, out = net.layers
    assert first.kind == "conv" and first.in_shape == (1, 28, 28) and first.conv_shape == (4, 14, 14)
    assert first.pool == 2 and out.n_in == 4 * 7 * 7 and out.n_out == 10
    x = mnist.test_x[:500]
    with torch.no_grad():
        counts = _snn_steps(snntorch_conv_model)(torch.tensor(x, dtype=torch.float32) / 255).sum(0).numpy()
    assert counts.sum(1).min() > 0  # every image makes output spikes: the comparison below is not 0 == 0
    # float32 sums in another order (and the pool's 1/4 folded into the next weights): rare flips only
    assert np.mean(simulate(net, x, T, dtype=np.float32) == counts) >= 0.999
    (tmp_path / "conv.nir").write_bytes(graph_bytes(g))
    assert main(["import-nir", str(tmp_path / "conv.nir"), "-o", str(tmp_path / "conv.scnb"), "--T", str(T),
                 "--limit", "500", "--calib", "1000"]) == 0
    b = load_bundle(tmp_path / "conv.scnb")
    assert [type(layer).__name__ for layer in b.network.layers] == ["ConvParams", "LayerParams"]
    agree = np.mean(infer(b.network, x).classes == counts.argmax(1))
    assert agree >= 0.95, agree


def test_our_conv_export_runs_in_norse(mnist, tmp_path):
    """mnist-conv-t4 (zero reset) exported: Conv2d, LIF (C, H, W), SumPool2d, Flatten, Linear, LI in Norse 1.1.
    Norse's importer (and snnTorch's) hands NIR's batch-free ``Flatten(start_dim=0)`` to ``torch.nn.Flatten``,
    which counts the batch axis: the test sets ``start_dim = 1`` on the imported module (docs/nir.md §4)."""
    import dataclasses

    from sc_neurocore.bundle import resolve_bundle

    params = dataclasses.replace(resolve_bundle(pretrained="mnist-conv-t4").network, reset="zero")
    save_bundle(Bundle(params, {}), tmp_path / "conv.scnb")
    assert main(["export-nir", str(tmp_path / "conv.scnb"), "-o", str(tmp_path / "conv.nir")]) == 0
    model = norse.from_nir(read_graph(tmp_path / "conv.nir"), dt=1e-4)
    flat = [m for m in model.modules() if isinstance(m, torch.nn.Flatten)]
    assert len(flat) == 1 and flat[0].start_dim == 0  # the quirk; if Norse fixes it, drop the line below
    flat[0].start_dim = 1
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 and not any(bool(m.bias.any()) for m in convs)
    x = mnist.test_x[:500]
    xb = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255
    with torch.no_grad():
        cls = run_norse(model, xb, params.T).sum(0).argmax(1).numpy()
    agree = np.mean(cls == infer(params, x).classes)
    assert agree >= 0.98, agree
