"""The board top on Icarus and Verilator (``sc_neurocore.sim.board``): weights loaded over the UART into
single-port weight RAM, then images classified, class bytes equal to the golden model's."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.hw.boards import LOAD_ACK, LOAD_NAK, weight_stream
from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.sim.runner import available_simulators

SIMS = available_simulators()


def _sims():
    # Verilator compiles the board top for ~5 min on 2 cores (the whole core plus UART, FIFO and loader, -O3):
    # in make test-slow; Icarus starts at once, in make test.
    return [pytest.param(s, marks=([] if s in SIMS else [pytest.mark.skip(reason=f"{s} not installed")])
                         + ([pytest.mark.slow] if s == "verilator" else []))
            for s in ("icarus", "verilator")]


@pytest.mark.parametrize("sim", _sims())
def test_board_session_loads_weights_then_classifies(sim):
    from sc_neurocore.sim.board import run_board_session

    b = random_bundle((24, 10, 4), 3, seed=12, leak_shift=1)
    cfg = CoreConfig(lanes=(3, 4), events=2, pixels_per_beat=4, weight_port=True, weight_memory="single_port")
    rng = np.random.default_rng(5)
    images = np.vstack([rng.integers(0, 256, (6, 24)) * (rng.random((6, 24)) < 0.5),
                        np.zeros((1, 24)), np.full((1, 24), 255)]).astype(np.uint8)
    good = weight_stream(b, cfg)
    bad = bytearray(good)
    bad[-1] ^= 0xFF                               # wrong CRC: refused, the board waits for the next stream
    r = run_board_session(b, cfg, images, sim, streams=[bytes(bad), good])
    assert r["failed"] == 0, r.get("log_tail")
    assert r["answers"] == [LOAD_NAK, LOAD_ACK]
    g = infer(b.network, images)
    assert len(set(g.classes.tolist())) > 1       # the images tell the weights apart
    assert np.array_equal(np.array(r["classes"]), g.classes)


@pytest.mark.slow
def test_up5k_network_through_the_uart_on_verilator():
    """The iCEBreaker build of a 784-64-10 network: all its weights over the UART, then MNIST images."""
    from sc_neurocore.bundle import load_bundle, pretrained_path
    from sc_neurocore.data import load_mnist
    from sc_neurocore.hw.boards import board_config
    from sc_neurocore.sim.board import run_board_session

    if "verilator" not in SIMS:
        pytest.skip("verilator not installed")
    b = load_bundle(pretrained_path("mnist-up5k-t4"))
    cfg = board_config("icebreaker", b)
    assert cfg.weight_memory == "single_port"
    x = load_mnist().test_x[:20]
    r = run_board_session(b, cfg, x, "verilator", streams=[weight_stream(b, cfg)])
    assert r["failed"] == 0 and r["answers"] == [LOAD_ACK], r.get("log_tail")
    assert np.array_equal(np.array(r["classes"]), infer(b.network, x).classes)
