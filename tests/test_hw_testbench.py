"""The Amaranth testbench (``sc_neurocore.hw.testbench.simulate``): its argument checks (the runs against the
golden model are in tests/test_hw_sim.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.stream import Traffic


def test_simulate_refuses_random_resets():
    pytest.importorskip("amaranth")
    from sc_neurocore.hw.testbench import simulate

    net = random_bundle((8, 4, 2), 1, seed=1).network
    with pytest.raises(ValueError, match="simulate takes one reset at reset_after, not Traffic.resets"):
        simulate(net, np.zeros((1, 8), dtype=np.int64), traffic=Traffic(resets=1))
    with pytest.raises(TypeError, match="traffic must be a Traffic, not dict"):
        simulate(net, np.zeros((1, 8), dtype=np.int64), traffic={"gaps": 0.1})
