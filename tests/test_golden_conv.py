"""The conv layer kind (spec §1, §4.1, §4.7): its parameters, and the vectorised golden model against the
naive scalar model written from docs/fixed_point.md, on hypothesis-drawn convolutional networks."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_golden import check_against_naive
from sc_neurocore.golden import infer, layer_current
from sc_neurocore.params import ConvParams, LayerParams, NetworkParams


def _weights(draw, shape, wb):
    wmax = 2 ** (wb - 1) - 1
    n = int(np.prod(shape))
    w = draw(st.lists(st.one_of(st.integers(-wmax, wmax), st.sampled_from([-wmax, wmax, 0])), min_size=n, max_size=n))
    return np.array(w, dtype=np.int64).reshape(shape)


def _lif(draw):
    wb = draw(st.integers(2, 12))
    mb = draw(st.integers(4, 20))
    return dict(weight_bits=wb, threshold=draw(st.integers(1, 2 ** (mb - 1) - 1)),
                leak_shift=draw(st.integers(0, mb - 1)), current_shift=draw(st.integers(0, 8)), membrane_bits=mb)


@st.composite
def conv_networks(draw, events=False):
    """1-2 conv layers (odd and even sides, stride 1 and 2, padding 0 and K//2, pooling) then a dense output;
    sometimes after a dense layer (whose spikes the conv layer reads channel-major)."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(2, 7)), draw(st.integers(2, 7)))
    layers = []
    if draw(st.booleans()):
        lif = _lif(draw)
        layers.append(LayerParams(_weights(draw, (draw(st.integers(1, 12)), int(np.prod(shape))), lif["weight_bits"]),
                                  **lif))
    for _ in range(draw(st.integers(1, 2))):
        c, h, w = shape
        k = draw(st.integers(1, min(4, h, w)))
        padding = draw(st.sampled_from(sorted({0, k // 2})))
        stride = draw(st.integers(1, 2))
        ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        pool = draw(st.sampled_from([q for q in (1, 2, 3) if ho % q == 0 and wo % q == 0]))
        lif = _lif(draw)
        layer = ConvParams(_weights(draw, (draw(st.integers(1, 3)), c, k, k), lif["weight_bits"]), shape,
                           stride=stride, padding=padding, pool=pool, **lif)
        layers.append(layer)
        shape = layer.out_shape
    lif = _lif(draw)
    layers.append(LayerParams(_weights(draw, (layers[-1].n_out, draw(st.integers(1, 4))), lif["weight_bits"]), **lif))
    encoding = "events" if events else draw(st.sampled_from(["direct", "rate"]))
    bits = draw(st.integers(1, 8)) if encoding != "rate" else 8
    return NetworkParams(tuple(layers), draw(st.sampled_from([1, 2, 3, 7])), encoding,
                         draw(st.sampled_from(["subtract", "zero"])), draw(st.sampled_from(["spike_count", "membrane"])),
                         draw(st.integers(1, 0xFFFF)), bits)


@st.composite
def conv_cases(draw):
    events = draw(st.booleans())
    net = draw(conv_networks(events))
    n = net.sizes[0]
    top = net.input.x_max if events else 255
    kind = st.sampled_from(["random", "zero", "max"])

    def sample():
        k = draw(kind)
        if k == "random":
            return draw(st.lists(st.one_of(st.integers(0, top), st.sampled_from([0, top])), min_size=n, max_size=n))
        return [0 if k == "zero" else top] * n

    b = draw(st.integers(1, 2))
    if events:
        return net, np.array([[sample() for _ in range(net.T)] for _ in range(b)], dtype=np.int64)
    return net, np.array([sample() for _ in range(b)], dtype=np.int64)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(conv_cases())
def test_conv_golden_equals_naive(case):
    check_against_naive(*case)


def test_chunks_and_reused_buffers_give_the_same_results(monkeypatch):
    """infer runs samples in cache-sized chunks, each layer reusing its arrays (padding border included) from
    one chunk to the next, the last chunk smaller: every result equals running each sample alone."""
    import sc_neurocore.golden as golden

    rng = np.random.default_rng(11)
    c1 = _conv(rng, (2, 9, 9), 3, 3, threshold=60, leak_shift=2, current_shift=2, padding=1, pool=3)
    c2 = _conv(rng, c1.out_shape, 4, 2, threshold=40, leak_shift=1, padding=1)
    net = NetworkParams((c1, c2, LayerParams(rng.integers(-127, 128, (c2.n_out, 3)), 8, 50, 1)), 3)
    x = rng.integers(0, 256, (37, c1.n_in))
    alone = [infer(net, x[i:i + 1], record=True) for i in range(len(x))]
    monkeypatch.setattr(golden, "_CHUNK_ELEMENTS", 1)  # the smallest chunks: 16 samples, then 16, then 5
    assert golden._chunk_rows(net, golden._stages(net), 4096) == 16
    res = infer(net, x, record=True)
    assert np.array_equal(res.scores, np.concatenate([r.scores for r in alone]))
    for li in range(3):
        assert np.array_equal(res.spike_counts[li], np.concatenate([r.spike_counts[li] for r in alone]))
        assert np.array_equal(res.spikes[li], np.concatenate([r.spikes[li] for r in alone], axis=1))
    assert np.array_equal(res.output_trace, np.concatenate([r.output_trace for r in alone], axis=1))
    assert res.spike_counts[1].sum() > 0 and res.spikes[0].dtype == np.uint8 and res.scores.dtype == np.int64


def test_patch_blocks_give_the_same_results(monkeypatch):
    """A conv layer builds its im2col patches in blocks of the chunk (at most _PATCH_ELEMENTS values, the last
    block smaller): blocks of 5 samples in chunks of 16 give what one block per sample gives."""
    import sc_neurocore.golden as golden

    rng = np.random.default_rng(13)
    c1 = _conv(rng, (2, 8, 8), 3, 3, threshold=50, leak_shift=2, current_shift=2, padding=1, pool=2)
    c2 = _conv(rng, c1.out_shape, 3, 3, threshold=30, leak_shift=1, padding=1)
    net = NetworkParams((c1, c2, LayerParams(rng.integers(-127, 128, (c2.n_out, 3)), 8, 40, 1)), 4)
    x = rng.integers(0, 256, (37, c1.n_in))
    monkeypatch.setattr(golden, "_CHUNK_ELEMENTS", 1)  # chunks of 16 samples
    monkeypatch.setattr(golden, "_PATCH_ELEMENTS", 1)  # one sample per block
    alone = infer(net, x, record=True)
    work = max(st.work for st in golden._stages(net) if isinstance(st, golden._ConvStage))
    monkeypatch.setattr(golden, "_PATCH_ELEMENTS", 5 * work)  # blocks of 5: 5, 5, 5, 1 in a chunk of 16
    res = infer(net, x, record=True)
    for f in res._fields:
        a, b = getattr(alone, f), getattr(res, f)
        for u, v in (zip(a, b) if isinstance(a, tuple) else [(a, b)]):
            assert np.array_equal(u, v), f
    assert res.spike_counts[1].sum() > 0


def test_chunks_on_several_threads_give_the_same_results(monkeypatch):
    """With enough chunks infer spreads them over one thread per CPU (each with its own stages and
    single-threaded matrix products): the same results as one thread, bit for bit, every array of the
    result; with too few chunks, one CPU or no per-thread BLAS control it stays on one thread."""
    import threading

    import sc_neurocore.golden as golden

    rng = np.random.default_rng(12)
    c1 = _conv(rng, (1, 10, 10), 4, 3, threshold=70, leak_shift=2, current_shift=2, padding=1, pool=2)
    net = NetworkParams((c1, LayerParams(rng.integers(-127, 128, (c1.n_out, 4)), 8, 40, 1)), 3, readout="spike_count")
    x = rng.integers(0, 256, (21 * 16 + 5, c1.n_in))
    monkeypatch.setattr(golden, "_CHUNK_ELEMENTS", 1)  # chunks of 16 samples: 22 of them
    one = infer(net, x, record=True)
    seen = set()
    chunk = golden._infer_chunk

    def spy(*a):
        seen.add(threading.get_ident())
        return chunk(*a)

    monkeypatch.setattr(golden, "_infer_chunk", spy)
    monkeypatch.setattr(golden, "_cpus", lambda: 2)
    monkeypatch.setattr(golden, "_blas_threads_local", lambda: (lambda n: 1))
    assert golden._workers(22) == 2 and golden._workers(golden._MIN_PARALLEL_CHUNKS - 1) == 1
    two = infer(net, x, record=True)
    assert len(seen) == 2 and threading.get_ident() not in seen
    for f in one._fields:
        a, b = getattr(one, f), getattr(two, f)
        for u, v in zip(a, b) if isinstance(a, tuple) else [(a, b)]:
            assert u.dtype == v.dtype and np.array_equal(u, v), f
    assert one.spike_counts[0].sum() > 0 and len(set(one.classes.tolist())) > 1
    monkeypatch.setattr(golden, "_blas_threads_local", lambda: None)
    assert golden._workers(22) == 1
    monkeypatch.setattr(golden, "_blas_threads_local", lambda: (lambda n: 1))
    monkeypatch.setattr(golden, "_cpus", lambda: 1)
    assert golden._workers(22) == 1


def _conv(rng, shape, c_out, k, wb=8, **kw):
    wmax = 2 ** (wb - 1) - 1
    return ConvParams(rng.integers(-wmax, wmax + 1, (c_out, shape[0], k, k)), shape, wb, **kw)


def test_conv_saturation_large_T_and_all_max():
    """Extreme weights saturate the membranes; T = 300 steps; all-zero and all-max images."""
    rng = np.random.default_rng(3)
    c1 = _conv(rng, (1, 10, 8), 3, 3, threshold=100, leak_shift=2, current_shift=0, membrane_bits=8, padding=1,
               pool=2)
    c2 = _conv(rng, c1.out_shape, 2, 2, threshold=3, leak_shift=1, membrane_bits=6, stride=2)
    out = LayerParams(rng.integers(-7, 8, (c2.n_out, 3)), 4, 5, 0, 0, 12)
    net = NetworkParams((c1, c2, out), 300, "direct", "subtract", "spike_count")
    x = np.stack([rng.integers(0, 256, c1.n_in), np.zeros(c1.n_in, np.int64), np.full(c1.n_in, 255)])
    check_against_naive(net, x)
    res = infer(net, x, record=True)
    cur = layer_current(x[2:], c1, 255)
    assert cur.max() > c1.membrane_format.max      # the all-max image drives the membrane into saturation
    assert res.spike_counts[0][1].sum() == 0        # all-zero: nothing fires in layer 1 (no negative bias)


def test_conv_layer_reads_pooled_counts():
    """A conv layer after a pooled one sees counts up to pool^2 (spec §6 bounds its sums with x_max = pool^2)."""
    rng = np.random.default_rng(5)
    c1 = _conv(rng, (1, 6, 6), 2, 1, threshold=1, leak_shift=0, pool=3)
    assert c1.out_shape == (2, 2, 2) and c1.out_max == 9
    c2 = _conv(rng, c1.out_shape, 2, 2, threshold=9, leak_shift=0, padding=1)
    net = NetworkParams((c1, c2, LayerParams(rng.integers(-127, 128, (c2.n_out, 2)), 8, 9, 0)), 2)
    assert net.input_max(1) == 9
    assert c2.accumulator_format(9).max >= 2 * 2 * 2 * 9 * 127
    check_against_naive(net, np.full((1, 36), 255))


def test_conv_params_derived_facts():
    w = np.zeros((4, 2, 5, 5), dtype=np.int64)
    c = ConvParams(w, (2, 28, 28), 8, 10, 2, padding=2, pool=2)
    assert (c.conv_shape, c.out_shape) == ((4, 28, 28), (4, 14, 14))
    assert (c.n_in, c.n_neurons, c.n_out, c.fan_in, c.out_max) == (1568, 3136, 784, 50, 4)
    s2 = ConvParams(np.zeros((1, 1, 3, 3), dtype=np.int64), (1, 8, 7), 8, 10, 2, stride=2)
    assert s2.conv_shape == (1, 3, 3)


@pytest.mark.parametrize("kw, exc, message", [
    (dict(weight=np.zeros((2, 1, 3, 2), np.int64)), ValueError, r"the kernel must be square \(K x K\), not 3 x 2"),
    (dict(weight=np.zeros((2, 3), np.int64)), ValueError, r"weight must be a non-empty 4-D \(C_out, C_in, K, K\) array"),
    (dict(in_shape=(2, 8, 8)), ValueError, r"weight has 1 input channels but in_shape \(2, 8, 8\) has 2"),
    (dict(in_shape=(1, 8)), ValueError, r"in_shape must be \(channels, height, width\), not \(1, 8\)"),
    (dict(in_shape=(1, 0, 8)), ValueError, r"in_shape\[1\] must be between 1 and 4096, not 0"),
    (dict(stride=0), ValueError, r"stride must be between 1 and 15, not 0"),
    (dict(padding=3), ValueError, r"padding must be between 0 and 2, not 3"),
    (dict(pool=4), ValueError, r"pool must divide the convolution's output size 6x6, not 4"),
    (dict(in_shape=(1, 2, 2)), ValueError, r"the 3x3 kernel is larger than the padded input 2x2"),
    (dict(weight=np.full((1, 1, 3, 3), 200)), ValueError, r"weight values must fit weight_bits=8 \(range -127..127\)"),
    (dict(stride=True), TypeError, r"stride must be an integer, not True"),
])
def test_conv_params_refuse_bad_fields(kw, exc, message):
    args = dict(weight=np.zeros((1, 1, 3, 3), np.int64), in_shape=(1, 8, 8), weight_bits=8, threshold=5,
                leak_shift=1, pool=2)
    args.update(kw)
    with pytest.raises(exc, match=message):
        ConvParams(**args)


def test_network_checks_conv_shapes_and_output_kind():
    c = ConvParams(np.zeros((2, 1, 3, 3), np.int64), (1, 6, 6), 8, 5, 1, padding=1, pool=2)
    with pytest.raises(ValueError, match=r"the output layer must be dense \(its neurons are the classes\), not 'conv'"):
        NetworkParams((c,), 4)
    with pytest.raises(ValueError, match=r"layers\[1\] has 19 inputs but layers\[0\] has 18 outputs"):
        NetworkParams((c, LayerParams(np.zeros((19, 2), np.int64), 8, 5, 1)), 4)
