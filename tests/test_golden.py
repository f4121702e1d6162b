"""The vectorised golden model against a naive scalar model written from docs/fixed_point.md."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from naive_model import naive_infer
from sc_neurocore.golden import LIFState, check_pixels, infer, lif_step
from sc_neurocore.params import LayerParams, NetworkParams


def to_naive(net: NetworkParams) -> dict:
    layers = []
    for layer in net.layers:
        d = {"W": layer.weight.tolist(), "theta": layer.threshold, "k": layer.leak_shift, "s": layer.current_shift,
             "m": layer.membrane_bits}
        if layer.kind == "conv":
            d.update(kind="conv", in_shape=list(layer.in_shape), stride=layer.stride, padding=layer.padding,
                     pool=layer.pool)
        layers.append(d)
    return {"T": net.T, "encoding": net.encoding, "reset": net.reset, "readout": net.readout,
            "rate_seed": net.rate_seed, "input_bits": net.input_bits, "layers": layers}


@st.composite
def networks(draw, max_inputs=10, max_hidden=6):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, max_inputs))] + [draw(st.integers(1, max_hidden)) for _ in range(n_layers)]
    layers = []
    for i in range(n_layers):
        wb = draw(st.integers(2, 16))
        mb = draw(st.integers(4, 24))
        wmax = 2 ** (wb - 1) - 1
        # Mix of tiny and extreme weights: extremes drive the membrane into saturation.
        w = draw(st.lists(st.one_of(st.integers(-wmax, wmax), st.sampled_from([-wmax, wmax, 0])),
                          min_size=sizes[i] * sizes[i + 1], max_size=sizes[i] * sizes[i + 1]))
        layers.append(LayerParams(
            weight=np.array(w, dtype=np.int64).reshape(sizes[i], sizes[i + 1]),
            weight_bits=wb,
            threshold=draw(st.integers(1, 2 ** (mb - 1) - 1)),
            leak_shift=draw(st.integers(0, mb - 1)),
            current_shift=draw(st.integers(0, 12)),
            membrane_bits=mb))
    encoding = draw(st.sampled_from(["direct", "rate"]))
    return NetworkParams(tuple(layers), draw(st.integers(1, 6)), encoding,
                         draw(st.sampled_from(["subtract", "zero"])),
                         draw(st.sampled_from(["spike_count", "membrane"])),
                         draw(st.integers(1, 0xFFFF)),
                         draw(st.integers(1, 8)) if encoding == "direct" else 8)


@st.composite
def net_and_images(draw):
    net = draw(networks())
    n = net.sizes[0]
    imgs = draw(st.lists(st.lists(st.one_of(st.integers(0, 255), st.sampled_from([0, 255])),
                                  min_size=n, max_size=n), min_size=1, max_size=3))
    return net, np.array(imgs, dtype=np.int64)


def check_against_naive(net, imgs):
    res = infer(net, imgs, record=True)
    for b, img in enumerate(imgs):
        cls, scores, spikes = naive_infer(to_naive(net), img.tolist())
        assert res.classes[b] == cls
        assert np.array_equal(res.scores[b], np.array(scores, dtype=np.int64))
        for li in range(len(net.layers)):
            assert np.array_equal(res.spikes[li][:, b, :], np.array(spikes[li], dtype=np.uint8))
            assert np.array_equal(res.spike_counts[li][b], np.array(spikes[li]).sum(axis=0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net_and_images())
def test_golden_equals_naive_random(case):
    check_against_naive(*case)


@st.composite
def net_and_events(draw):
    """The events input kind (spec §3.3): any network, rasters (B, T, n_0) of counts 0..2^input_bits - 1 with
    empty bins, all-active bins and saturated counts among them."""
    base = draw(networks())
    bits = draw(st.integers(1, 8))
    T = draw(st.sampled_from([1, 2, 5, 9]))
    net = NetworkParams(base.layers, T, "events", base.reset, base.readout, base.rate_seed, bits)
    n, top = net.sizes[0], (1 << bits) - 1
    rasters = []
    for _ in range(draw(st.integers(1, 3))):
        bins = []
        for _ in range(T):
            kind = draw(st.sampled_from(["random", "empty", "full", "max"]))
            if kind == "random":
                bins.append(draw(st.lists(st.integers(0, top), min_size=n, max_size=n)))
            else:
                bins.append([{"empty": 0, "full": 1, "max": top}[kind]] * n)
        rasters.append(bins)
    return net, np.array(rasters, dtype=np.int64)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net_and_events())
def test_golden_equals_naive_events(case):
    check_against_naive(*case)


def test_events_large_T_and_saturation():
    rng = np.random.default_rng(7)
    layers = (LayerParams(rng.integers(-127, 128, (12, 6)), 8, 400, 3, 0, 10),
              LayerParams(rng.integers(-7, 8, (6, 4)), 4, 5, 1, 0, 6))
    for bits in (1, 4):
        net = NetworkParams(layers, 200, "events", "subtract", "spike_count", input_bits=bits)
        top = (1 << bits) - 1
        x = np.stack([rng.integers(0, top + 1, (200, 12)), np.full((200, 12), top)])  # random, all-max
        check_against_naive(net, x)
        res = infer(net, x, record=True)
        assert res.spikes[0][:, 1].sum() > 0  # the all-max raster drives layer 1


def test_event_rasters_are_checked():
    layer = LayerParams(np.ones((3, 2), dtype=np.int64), 2, 1, 0, 0, 8)
    net = NetworkParams((layer,), 4, "events", input_bits=2)
    with pytest.raises(ValueError, match=r"the event rasters have 3 time bins but the network runs T=4 steps"):
        infer(net, np.zeros((1, 3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"event counts must be within 0..3 \(input_bits 2\), found 4..4"):
        infer(net, np.full((1, 4, 3), 4))
    with pytest.raises(ValueError, match=r"must have shape \(B, T, 3\) or \(T, 3\), not \(1, 4, 5\)"):
        infer(net, np.zeros((1, 4, 5), dtype=np.int64))
    with pytest.raises(TypeError, match="event rasters must be an integer array"):
        infer(net, np.zeros((1, 4, 3)))
    assert infer(net, np.zeros((4, 3), dtype=np.uint8)).classes.shape == (1,)  # one raster without a batch axis


@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("readout", ["spike_count", "membrane"])
def test_golden_equals_naive_every_option(encoding, reset, readout):
    rng = np.random.default_rng(hash((encoding, reset, readout)) % 2**32)
    layers = (LayerParams(rng.integers(-7, 8, (20, 8)), 4, 300, 2, 1, 12),
              LayerParams(rng.integers(-7, 8, (8, 5)), 4, 6, 1, 0, 8))
    net = NetworkParams(layers, 7, encoding, reset, readout, 0x1234)
    imgs = np.vstack([rng.integers(0, 256, (3, 20)), np.zeros((1, 20)), np.full((1, 20), 255)]).astype(np.int64)
    check_against_naive(net, imgs)


def test_saturation_is_exercised_and_matches():
    # All-max input and max weights drive layer 1 far past a 6-bit membrane: it must clamp at +31.
    w = np.full((4, 3), 127)
    layer = LayerParams(w, 8, 31, 0, 0, 6)
    net = NetworkParams((layer,), 3, readout="membrane")
    res = infer(net, np.full((1, 4), 255), record=True)
    assert np.array_equal(res.scores, np.full((1, 3), 31))
    neg = LayerParams(-w, 8, 31, 0, 0, 6)
    res = infer(NetworkParams((neg,), 3, readout="membrane"), np.full((1, 4), 255))
    assert np.array_equal(res.scores, np.full((1, 3), -32))
    check_against_naive(NetworkParams((layer, LayerParams(np.full((3, 2), -1), 2, 1, 1, 0, 4)), 4), np.full((2, 4), 255))


def test_leak_floor_semantics_by_hand():
    layer = LayerParams(np.zeros((1, 1), dtype=np.int64), 2, 100, 1, 0, 8)
    # v - (v >>> 1): -3 -> -3 - (-2) = -1 ; 5 -> 5 - 2 = 3 ; -1 -> 0
    for v0, expect in [(-3, -1), (5, 3), (-1, 0), (0, 0), (-128, -64)]:
        st_, z = lif_step(LIFState(np.array([[v0]])), np.array([[0]]), layer, "subtract")
        assert st_.v[0, 0] == expect and z[0, 0] == 0


def test_threshold_is_inclusive_and_resets():
    layer = LayerParams(np.zeros((1, 2), dtype=np.int64), 2, 10, 0, 0, 8)
    v, z = lif_step(LIFState(np.array([[0, 0]])), np.array([[10, 9]]), layer, "subtract")
    assert z.tolist() == [[1, 0]] and v.v.tolist() == [[0, 9]]
    v, z = lif_step(LIFState(np.array([[0, 0]])), np.array([[25, 9]]), layer, "subtract")
    assert v.v.tolist() == [[15, 9]]
    v, z = lif_step(LIFState(np.array([[0, 0]])), np.array([[25, 9]]), layer, "zero")
    assert v.v.tolist() == [[0, 9]]


def test_current_shift_floors_negative_sums():
    # a = -5, s = 1 -> floor(-2.5) = -3 (not -2): checked through a non-spiking output membrane.
    layer = LayerParams(np.array([[-5]]), 4, 1, 0, 1, 8)
    res = infer(NetworkParams((layer,), 1, readout="membrane"), np.array([[1]]))
    assert res.scores[0, 0] == -3


def test_argmax_tie_goes_to_lowest_index():
    layer = LayerParams(np.array([[1, 3, 3]]), 4, 1, 0, 0, 8)
    res = infer(NetworkParams((layer,), 1, readout="membrane"), np.array([[1]]))
    assert res.scores.tolist() == [[1, 3, 3]] and res.classes[0] == 1


def test_direct_input_current_constant_rate_varies():
    rng = np.random.default_rng(3)
    layer = LayerParams(rng.integers(-3, 4, (30, 4)), 3, 10**6, 0, 0, 24)
    img = rng.integers(0, 256, (1, 30))
    direct = infer(NetworkParams((layer,), 4, "direct", readout="membrane"), img, record=True)
    tr = direct.output_trace[:, 0, :]
    # no leak, no spikes: membrane grows by the same current each step
    assert np.array_equal(np.diff(tr, axis=0), np.repeat(tr[:1], 3, axis=0))


def test_pixel_validation():
    with pytest.raises(ValueError, match=r"pixels must have shape \(B, 4\)"):
        check_pixels(np.zeros((2, 5)), 4)
    with pytest.raises(ValueError, match="within 0..255"):
        check_pixels(np.array([[0, 256, 0, 0]]), 4)
    with pytest.raises(ValueError, match="NaN"):
        check_pixels(np.array([[0, np.nan, 0, 0]]), 4)
    with pytest.raises(ValueError, match="fractional"):
        check_pixels(np.array([[0, 0.5, 0, 0]]), 4)
    with pytest.raises(TypeError, match="params must be a NetworkParams"):
        infer("net", np.zeros((1, 4)))


def test_batching_does_not_change_results():
    rng = np.random.default_rng(5)
    from sc_neurocore.bundle import random_bundle
    net = random_bundle((50, 16, 5), 5, seed=2).network
    imgs = rng.integers(0, 256, (37, 50))
    a = infer(net, imgs, batch_size=7)
    b = infer(net, imgs, batch_size=1000)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.classes, b.classes)


@pytest.mark.parametrize("n_in", [518, 519, 784])
def test_layer_current_exact_near_float32_limit(n_in):
    # 518*255*127 is just below 2**24 (float32 path), 519 just above (float64 path).
    from sc_neurocore.golden import layer_current
    rng = np.random.default_rng(n_in)
    w = np.full((n_in, 3), 127, dtype=np.int64)
    w[:, 1] = rng.integers(-127, 128, n_in)
    w[:, 2] = -127
    layer = LayerParams(w, 8, 1, 0, 3, 32)
    x = np.vstack([np.full(n_in, 255), rng.integers(0, 256, n_in), np.full(n_in, 254)])
    exact = np.array([[sum(int(a) * int(b) for a, b in zip(row, w[:, j])) >> 3 for j in range(3)] for row in x])
    assert np.array_equal(layer_current(x, layer, 255), exact)


@pytest.mark.parametrize("input_bits", [1, 3, 8])
def test_input_bits_quantise_direct_pixels(input_bits):
    """Spec §3.1: layer 1 sees p >> (8 - input_bits); the weighted sums use x_max = 2^b - 1."""
    rng = np.random.default_rng(input_bits)
    layers = (LayerParams(rng.integers(-7, 8, (20, 8)), 4, 30, 2, 0, 12),
              LayerParams(rng.integers(-7, 8, (8, 5)), 4, 6, 1, 0, 8))
    net = NetworkParams(layers, 5, "direct", "subtract", "membrane", 0x1234, input_bits)
    assert net.input_max(0) == 2 ** input_bits - 1
    imgs = np.vstack([rng.integers(0, 256, (4, 20)), np.full((1, 20), 127), np.full((1, 20), 128),
                      np.full((1, 20), 255)]).astype(np.int64)
    check_against_naive(net, imgs)
    # The same as an 8-bit network fed the pre-shifted pixels.
    full = NetworkParams(layers, 5, "direct", "subtract", "membrane", 0x1234)
    assert np.array_equal(infer(net, imgs).scores, infer(full, imgs >> (8 - input_bits)).scores)
    if input_bits == 1:   # 127 -> 0 (no input at all), 128 -> 1
        assert np.array_equal(infer(net, imgs[4:5]).scores, infer(net, np.zeros((1, 20))).scores)


