"""The board top (``sc_neurocore.hw.board_top.BoardTop``) in Amaranth's simulator: image bytes over the UART,
class bytes and LEDs back, against the golden model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.golden import infer
from sc_neurocore.hw.board_top import BoardTop
from sc_neurocore.hw.boards import board_config
from sc_neurocore.hw.config import CoreConfig
from test_hw_uart import _recv_byte, _send_byte, _sim


TINY = random_bundle((8, 4, 3), 2, seed=9)   # classes of the test images: 2, 0, 1, 2 (not all alike)


FAST_CLK, FAST_BAUD = 400_000, 100_000          # 4 clocks per bit


def _run_board(network, config, images, *, idle_timeout=None, partial=None):
    """Send each image's bytes over the simulated UART, collect the class bytes and LEDs."""
    top = BoardTop(network, config, FAST_CLK, FAST_BAUD, n_leds=4, idle_timeout=idle_timeout)
    assert top.divisor == 4
    div = top.divisor
    sim = _sim(top)
    classes, leds, busy_seen = [], [], []

    async def host(ctx):
        await ctx.tick().repeat(3)
        if partial is not None:        # a host that dies half-way through an image
            for p in partial:
                await _send_byte(ctx, top.uart_rx, int(p), div)
            await ctx.tick().repeat(top.timeout_cycles + 10)
        for im in images:
            for p in im:
                await _send_byte(ctx, top.uart_rx, int(p), div)
            busy_seen.append(ctx.get(top.busy))
            classes.append(await _recv_byte(ctx, top.uart_tx, div))
            await ctx.tick().repeat(div)
            leds.append(ctx.get(top.leds))
            assert ctx.get(top.done) == 1
        await ctx.tick().repeat(2)
        assert ctx.get(top.busy) == 0

    sim.add_testbench(host)
    sim.run()
    return classes, leds, busy_seen


TINY_RATE = random_bundle((8, 4, 3), 2, seed=4, encoding="rate", readout="spike_count")


@pytest.mark.parametrize("bundle,config", [
    (TINY, CoreConfig(pixels_per_beat=4)),
    (TINY, CoreConfig(lanes=2, events=1, pixels_per_beat=3)),
    (TINY_RATE, CoreConfig(lanes=2, pixels_per_beat=8)),
], ids=["direct-ppb4", "direct-ppb3-partial-beat", "rate-spike-count-ppb8"])
def test_board_top_classes_match_golden(bundle, config):
    """Image bytes over the UART line -> class byte back == the golden model's class, bit-exact."""
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(4, 8))
    images[1, :5] = 0                                   # zero chunks are skipped by the core
    want = infer(bundle.network, images).classes
    assert len(set(want.tolist())) >= 2                 # a constant answer would prove little
    classes, leds, busy = _run_board(bundle.network, config, images)
    assert classes == [int(c) for c in want]
    assert leds == [int(c) for c in want]
    assert all(busy)


def test_board_top_idle_timeout_drops_partial_image():
    """A partial image followed by silence is dropped; the next full image is classified correctly."""
    images = np.random.default_rng(5).integers(0, 256, size=(1, 8))
    want = infer(TINY.network, images).classes
    assert want[0] != 0
    classes, _, _ = _run_board(TINY.network, CoreConfig(pixels_per_beat=4), images, idle_timeout=1e-4,
                               partial=[255, 255, 255, 255, 255])
    assert classes == [int(want[0])]


def test_board_top_rejects_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("n_leds must be a positive integer, not 0")):
        BoardTop(TINY, None, FAST_CLK, FAST_BAUD, n_leds=0)
    with pytest.raises(ValueError, match=re.escape("idle_timeout must be a positive number of seconds or None, "
                                                   "not -1")):
        BoardTop(TINY, None, FAST_CLK, FAST_BAUD, idle_timeout=-1)
    with pytest.raises(ValueError, match=re.escape("baud must be at most clk_hz / 4 = 100000, not 400000")):
        BoardTop(TINY, None, FAST_CLK, 400_000)
    with pytest.raises(TypeError, match="network must be a Bundle or NetworkParams, not str"):
        BoardTop("net.scnb", None, FAST_CLK, FAST_BAUD)


@pytest.mark.slow
def test_board_top_pretrained_mnist_over_uart():
    """The shipped mnist-t4 bundle with the ULX3S options: an MNIST test image over the simulated
    UART gives the golden model's class (~45 s per image in Amaranth's simulator)."""
    from sc_neurocore.bundle import pretrained_names, resolve_bundle
    from sc_neurocore.data import load_mnist

    if "mnist-t4" not in pretrained_names():
        pytest.skip("mnist-t4 bundle not shipped")
    try:
        ds = load_mnist()
    except Exception as e:  # noqa: BLE001 - the dataset is optional here
        pytest.skip(f"MNIST not available: {e}")
    net = resolve_bundle(pretrained="mnist-t4").network
    images = ds.test_x[:1]
    want = infer(net, images).classes
    classes, leds, _ = _run_board(net, board_config("ulx3s"), images)
    assert classes == leds == [int(c) for c in want]
