"""The shipped bundles of the distillation study's rate settings (``make pretrained``): what they are, and that
the golden model gives the accuracy their provenance records on the 10 000 MNIST test images."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import resolve_bundle
from sc_neurocore.data import load_mnist
from sc_neurocore.golden import infer


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.mark.parametrize("name,sizes,methods", [
    ("mnist-rate-t4", (784, 128, 10), {"distill-temporal", "train"}),
    ("mnist-small-t4", (784, 32, 10), {"distill-average", "distill-temporal", "train"}),
])
def test_the_shipped_rate_students(mnist, name, sizes, methods):
    b = resolve_bundle(pretrained=name)
    net, prov = b.network, b.provenance
    assert (net.encoding, net.readout, net.T, net.sizes) == ("rate", "spike_count", 4, sizes)
    sel = prov["pretrained_selection"]
    assert set(sel["candidates"]) == methods and sel["chosen"] in methods
    # the shipped one is the best on validation; the test set never chose
    assert sel["candidates"][sel["chosen"]]["val"] == max(c["val"] for c in sel["candidates"].values())
    acc = float(np.mean(infer(net, mnist.test_x).classes == mnist.test_y))
    assert round(acc, 6) == prov["test_accuracy"] == sel["candidates"][sel["chosen"]]["test"]


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("name", ["mnist-rate-t4", "mnist-small-t4"])
def test_the_shipped_rate_students_are_bit_exact_in_rtl(mnist, name):
    from sc_neurocore.sim.runner import run_regression

    b = resolve_bundle(pretrained=name)
    r = run_regression(b, mnist.test_x, mnist.test_y, simulator="verilator", n=40)
    assert r["ok"] and r["mismatched_vectors"] == 0 and r["cycles_checked"] and r["cycle_mismatches"] == 0, r


@pytest.mark.parametrize("name,dataset", [("fmnist-conv-t4", "fashion-mnist"), ("mnist-conv-t4", "mnist")])
def test_the_shipped_conv_bundles(name, dataset):
    """Two sum-pooled conv layers and a hidden dense layer at T=4 (``make pretrained``): the golden model gives
    the test accuracy their provenance records, on the dataset they were trained on."""
    from sc_neurocore.data import load_dataset

    b = resolve_bundle(pretrained=name)
    net, prov = b.network, b.provenance
    assert [layer.kind for layer in net.layers] == ["conv", "conv", "dense", "dense"]
    assert [(la.channels, la.kernel, la.pool) for la in net.layers[:2]] == [(16, 5, 2), (32, 5, 2)]
    assert net.T == 4 and prov["dataset"] == dataset and prov["config"]["input_shape"] == [1, 28, 28]
    ds = load_dataset(dataset, None)
    acc = float(np.mean(infer(net, ds.test_x).classes == ds.test_y))
    assert round(acc, 6) == prov["test_accuracy"]


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("name,dataset", [("fmnist-conv-t4", "fashion-mnist"), ("mnist-conv-t4", "mnist")])
def test_the_shipped_conv_bundles_are_bit_exact_in_rtl(name, dataset):
    from sc_neurocore.data import load_dataset
    from sc_neurocore.sim.runner import run_regression

    ds = load_dataset(dataset, None)
    b = resolve_bundle(pretrained=name)
    r = run_regression(b, ds.test_x, ds.test_y, simulator="verilator", n=40, jobs=None)
    assert r["ok"] and r["mismatched_vectors"] == 0 and r["cycles_checked"] and r["cycle_mismatches"] == 0, r
