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


# -- single-port weight RAM: weights over the UART after reset ------------------------------------------

SP = CoreConfig(lanes=2, events=2, pixels_per_beat=4, weight_port=True, weight_memory="single_port")


def _run_load(network, config, streams, images, *, idle_timeout=None, pause_after=None):
    """Send each weight stream (collecting the board's one-byte answers), then the images."""
    top = BoardTop(network, config, FAST_CLK, FAST_BAUD, n_leds=4, idle_timeout=idle_timeout)
    div = top.divisor
    sim = _sim(top)
    answers, classes = [], []

    async def host(ctx):
        await ctx.tick().repeat(3)
        for k, stream in enumerate(streams):
            for i, byte in enumerate(stream):
                await _send_byte(ctx, top.uart_rx, byte, div)
                if pause_after is not None and k == 0 and i == pause_after:   # the host dies mid-stream
                    assert ctx.get(top.busy) == 1
                    await ctx.tick().repeat(top.timeout_cycles + 10)
                    break
            else:
                answers.append(await _recv_byte(ctx, top.uart_tx, div))
        for im in images:
            for p in im:
                await _send_byte(ctx, top.uart_rx, int(p), div)
            classes.append(await _recv_byte(ctx, top.uart_tx, div))

    sim.add_testbench(host)
    sim.run()
    return answers, classes


def test_crc8_check_value():
    from sc_neurocore.hw.boards import crc8

    assert crc8(b"123456789") == 0xF4          # CRC-8/SMBUS check value
    assert crc8(b"") == 0 and crc8(b"\x00") == 0 and crc8(b"\x01") == 0x07


def test_weight_stream_layout():
    from sc_neurocore.hw.boards import LOAD_MAGIC, crc8, weight_stream

    geo = SP.geometry(TINY.network)
    s = weight_stream(TINY, SP)
    n_words = sum(lg.events * lg.memory_depth for lg in geo.layers)
    width = max(lg.memory_width for lg in geo.layers)
    nb = -(-width // 8)
    assert s[0] == LOAD_MAGIC and s[1] == nb and int.from_bytes(s[2:5], "little") == n_words
    assert len(s) == 5 + nb * n_words + 1 and crc8(s[:-1]) == s[-1]
    first = geo.weight_writes()[0][3]
    assert int.from_bytes(s[5:5 + nb], "little") == first
    with pytest.raises(ValueError, match="weight_memory='single_port'"):
        weight_stream(TINY, CoreConfig())


def test_board_loads_weights_over_the_uart_then_classifies():
    from sc_neurocore.hw.boards import LOAD_ACK, LOAD_NAK, weight_stream

    images = np.array([[0, 255, 40, 7, 200, 0, 90, 13], [255] * 8, [0] * 8, [3, 0, 0, 250, 0, 0, 128, 64]])
    good = weight_stream(TINY, SP)
    corrupt = bytearray(good)
    corrupt[7] ^= 0x10                         # one bit flipped on the line
    answers, classes = _run_load(TINY.network, SP, [bytes(corrupt), good], images)
    assert answers == [LOAD_NAK, LOAD_ACK]
    assert np.array_equal(classes, infer(TINY.network, images).classes)


def test_board_drops_a_half_sent_weight_stream_after_the_idle_timeout():
    from sc_neurocore.hw.boards import LOAD_ACK, weight_stream

    images = np.array([[0, 255, 40, 7, 200, 0, 90, 13], [3, 0, 0, 250, 0, 0, 128, 64]])
    good = weight_stream(TINY, SP)
    answers, classes = _run_load(TINY.network, SP, [good, good], images, idle_timeout=1e-4, pause_after=9)
    assert answers == [LOAD_ACK]
    assert np.array_equal(classes, infer(TINY.network, images).classes)


def test_board_config_moves_big_weights_to_spram():
    from sc_neurocore.bundle import load_bundle
    from sc_neurocore.hw.boards import fit_check
    from sc_neurocore.bundle import pretrained_path

    up5k = load_bundle(pretrained_path("mnist-up5k-t4"))              # 784-64-10, 4-bit weights
    cfg = board_config("icebreaker", up5k)
    assert cfg.weight_memory == "single_port" and cfg.weight_port and cfg.lanes == 2
    fit = fit_check("icebreaker", up5k, cfg)
    # layer 1: 2 lanes x 4 bits, 392 chunks x 32 groups = 12 544 words per bank: one SPRAM each; layer 2 likewise
    assert fit["fits"] and fit["sprams_estimate"] == 4 and fit["brams_estimate"] == 0
    assert board_config("icebreaker", TINY).weight_memory == "block"   # small weights stay initialised
    assert board_config("ulx3s", up5k).weight_memory == "block"        # no SPRAM on an ECP5
    lite = load_bundle(pretrained_path("mnist-t4-lite"))               # 784-128-10: 25 088 words a bank
    assert board_config("icebreaker", lite).weight_memory == "block"
    big = load_bundle(pretrained_path("mnist-t4"))                       # 8-bit weights: 8 SPRAMs
    f = fit_check("icebreaker", big, CoreConfig(lanes=4, events=2, pixels_per_beat=4, weight_port=True,
                                                weight_memory="single_port"))
    assert not f["fits"] and "weights need 8 single-port RAMs" in f["reasons"][0]


def test_single_port_banks_become_spram_cells_only_for_an_up5k():
    # Yosys does not infer SB_SPRAM256KA, so an iCE40UP platform gets the cells; simulation and the
    # exported Verilog (no platform) keep the generic memory that the tests above prove bit-exact.
    from amaranth.back import rtlil
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from sc_neurocore.hw.core import build_core

    net = random_bundle((40, 8, 4), 2, seed=3).network
    cfg = CoreConfig(lanes=(5, 4), events=2, pixels_per_beat=4, weight_port=True, weight_memory="single_port")
    # layer 0: 5 lanes x 8-bit weights = 40 bits a word -> 3 SPRAMs per bank, 2 banks; layer 1: 32 bits -> 2 x 2
    text = rtlil.convert(build_core(net, cfg), platform=ICEBreakerPlatform())
    assert text.count("cell \\SB_SPRAM256KA") == 2 * 3 + 2 * 2
    plain = rtlil.convert(build_core(net, cfg))
    assert "SB_SPRAM256KA" not in plain
    assert "SB_SPRAM256KA" not in rtlil.convert(build_core(net, cfg), platform=ULX3S_85F_Platform())


def test_host_loads_weights_over_a_serial_port():
    # A pseudo-terminal stands in for the USB serial port; a thread plays the board: it checks the
    # stream's CRC as the gateware does and answers LOAD_ACK, or LOAD_NAK for a corrupted stream.
    import os
    import threading

    from sc_neurocore.hw.boards import LOAD_ACK, LOAD_NAK, crc8, weight_stream
    from sc_neurocore.hw.host import LoadError, load_weights, open_serial

    expected = len(weight_stream(TINY, SP))

    def board(fd, corrupt):
        got = b""
        while len(got) < expected:
            got += os.read(fd, expected - len(got))
        ok = crc8(got[:-1]) == got[-1] and not corrupt
        os.write(fd, bytes([LOAD_ACK if ok else LOAD_NAK]))

    for corrupt in (False, True):
        board_fd, host_name = os.openpty()
        fd = open_serial(os.ttyname(host_name), 115200)
        t = threading.Thread(target=board, args=(board_fd, corrupt))
        t.start()
        try:
            if corrupt:
                with pytest.raises(LoadError, match="rejected the weights"):
                    load_weights(fd, TINY, SP)
            else:
                assert load_weights(fd, TINY, SP)["bytes"] == expected
        finally:
            t.join()
            os.close(fd), os.close(board_fd), os.close(host_name)
    board_fd, host_name = os.openpty()
    fd = open_serial(os.ttyname(host_name), 115200)
    try:
        with pytest.raises(LoadError, match="no answer from the board"):
            load_weights(fd, TINY, SP, timeout=0.2)
    finally:
        os.close(fd), os.close(board_fd), os.close(host_name)
    with pytest.raises(ValueError, match="baud must be a rate"):
        open_serial("/dev/null", 123)
