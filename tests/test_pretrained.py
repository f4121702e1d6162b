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
