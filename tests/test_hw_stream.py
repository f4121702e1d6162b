"""The bus contract (``sc_neurocore.hw.stream``): bus widths, pixel packing and its padding, result words with
signed scores, the input-kind registry of packers, and :class:`Traffic`'s validation."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw import stream
from sc_neurocore.hw.stream import Traffic
from sc_neurocore.kinds import KindError


def test_pixel_beats_layout():
    x = np.arange(1, 11, dtype=np.uint8)[None, :]
    beats = stream.INPUT_BEATS.get("pixels")(x, 4)[0]
    assert len(beats) == 3 == stream.beats_per_image(10, 4)
    for i in range(10):
        assert (beats[i // 4] >> (8 * (i % 4))) & 0xFF == i + 1
    assert beats[2] >> 16 == 0  # padding pixels are zero
    assert stream.pack_images(np.full((1, 3), 255), 8)[0] == [0xFFFFFF]


def test_input_beats_dispatch_on_the_input_kind():
    net = random_bundle((10, 4, 3), 2, seed=0).network
    x = np.random.default_rng(0).integers(0, 256, size=(3, 10))
    assert stream.input_beats(net, x, 4) == stream.pack_images(x, 4)

    class Audio:
        kind = "audio"

    with pytest.raises(KindError, match="the bus contract has no implementation of the 'audio' input kind"):
        stream.INPUT_BEATS(Audio())


@pytest.mark.parametrize("kw, msg", [
    ({"gaps": 1.0}, "gaps must be a probability in [0, 1), not 1.0"),
    ({"backpressure": -0.1}, "backpressure must be a probability in [0, 1), not -0.1"),
    ({"gaps": True}, "gaps must be a probability in [0, 1), not True"),
    ({"max_gap": 0}, "max_gap must be an integer >= 1, not 0"),
    ({"resets": -1}, "resets must be an integer >= 0, not -1"),
    ({"seed": 1.5}, "seed must be an integer >= 0, not 1.5"),
])
def test_traffic_validation_messages(kw, msg):
    with pytest.raises(ValueError) as e:
        Traffic(**kw)
    assert str(e.value) == msg


def test_bus_widths():
    assert stream.PIXEL_BITS == 8 and stream.CLASS_BITS == 16
    assert [stream.in_width(p) for p in (1, 3, 8)] == [8, 24, 64]
    assert stream.out_width(10, 12) == 16 + 120
    assert stream.out_width(3, 1) == 19


@pytest.mark.parametrize("n, ppb, beats", [(1, 1, 1), (10, 4, 3), (12, 4, 3), (13, 4, 4), (784, 8, 98), (784, 3, 262)])
def test_beats_per_image_rounds_up(n, ppb, beats):
    assert stream.beats_per_image(n, ppb) == beats
    assert len(stream.pack_image(np.ones(n, dtype=np.uint8), ppb)) == beats


def test_pack_image_is_one_row_of_pack_images():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(3, 11))
    assert stream.pack_images(x, 3) == [stream.pack_image(row, 3) for row in x]
    assert stream.pack_images(x[0], 3) == [stream.pack_image(x[0], 3)]       # a 1-D image is one image
    # little-endian bytes, pixel 0 in the low byte; the last beat is zero-padded above pixel 10
    assert stream.pack_image([1, 2, 3, 4, 5], 3) == [0x030201, 0x000504]
    assert stream.pack_images(np.zeros((0, 4), dtype=np.uint8), 2) == []


@pytest.mark.parametrize("bad", [[256], [-1], [0, 300]])
def test_pack_images_refuses_pixels_out_of_range(bad):
    with pytest.raises(ValueError, match=r"pixels must be within 0\.\.255"):
        stream.pack_images(np.array([bad]), 4)


def test_unpack_result_inverts_pack_result_with_signed_scores():
    word = stream.pack_result(2, [-1, 5, -8, 7], 4)
    # class in bits 0..15, score c (two's complement, 4 bits) at bits 16 + 4 c
    assert word == 2 | (0xF << 16) | (0x5 << 20) | (0x8 << 24) | (0x7 << 28)
    assert stream.unpack_result(word, 4, 4, True) == (2, [-1, 5, -8, 7])
    assert stream.unpack_result(word, 4, 4, False) == (2, [15, 5, 8, 7])
    rng = np.random.default_rng(7)
    for sw in (2, 5, 16, 31):
        scores = rng.integers(-(1 << (sw - 1)), 1 << (sw - 1), size=6).tolist()
        cls = int(rng.integers(0, 1 << 16))
        assert stream.unpack_result(stream.pack_result(cls, scores, sw), 6, sw, True) == (cls, scores)
        unsigned = rng.integers(0, 1 << sw, size=6).tolist()
        assert stream.unpack_result(stream.pack_result(cls, unsigned, sw), 6, sw, False) == (cls, unsigned)


def test_traffic_defaults_normalise_and_round_trip():
    t = Traffic()
    assert (t.gaps, t.max_gap, t.backpressure, t.resets, t.seed) == (0.0, 3, 0.0, 0, 0) and not t.shaped
    t = Traffic(gaps=0, backpressure=np.float64(0.5), max_gap=np.int64(4))
    assert type(t.gaps) is float and type(t.max_gap) is int and t.shaped
    assert Traffic(resets=1).shaped
    assert Traffic(**t.to_dict()) == t
    assert t.to_dict() == {"gaps": 0.0, "max_gap": 4, "backpressure": 0.5, "resets": 0, "seed": 0}
