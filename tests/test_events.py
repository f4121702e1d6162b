"""sc_neurocore.events: the EventSet container, the N-MNIST format, the binning rule, the saccade emulator and
its cache (docs/events.md). The binning is checked against a naive per-event loop written from the docs."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sc_neurocore import events as ev
from sc_neurocore.events import EventError, EventSet, SaccadeParams


def raises(msg: str, exc=EventError):
    return pytest.raises(exc, match="^" + re.escape(msg) + "$")


def nmnist_bytes(events) -> bytes:
    """The N-MNIST format written from docs/events.md §2, independently of the module: (t, x, y, p) tuples."""
    out = bytearray()
    for t, x, y, p in events:
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def small_set(**kw) -> dict:
    base = dict(t=[0, 5, 7, 1, 2], x=[0, 1, 2, 3, 0], y=[0, 0, 1, 2, 3], p=[0, 1, 1, 0, 1], offsets=[0, 3, 3, 5],
                labels=[4, 0, 9], sensor=(2, 4, 4))
    base.update(kw)
    return base


# --- EventSet -----------------------------------------------------------------------------------------------------

def test_eventset_normalises_and_freezes():
    es = EventSet(**small_set())
    assert len(es) == 3 and es.n_events == 5 and es.n_inputs == 32
    assert es.t.dtype == np.int64 and es.x.dtype == es.y.dtype == es.p.dtype == np.uint8
    assert es.offsets.dtype == es.labels.dtype == np.int64
    assert es.counts.tolist() == [3, 0, 2]
    with pytest.raises(ValueError):
        es.t[0] = 1            # read-only
    t, x, y, p = es.recording(2)
    assert t.tolist() == [1, 2] and x.tolist() == [3, 0]
    big = EventSet([0], [300], [0], [0], [0, 1], [0], (2, 2, 301))
    assert big.x.dtype == np.int16


def test_a_recording_may_start_before_the_previous_one_ended():
    EventSet(**small_set())     # recording 2 starts at 1 µs, after recording 0 ended at 7 µs: allowed


@pytest.mark.parametrize("kw, msg", [
    (dict(x=[0, 1, 4, 3, 0]), "recording 0, event 2: x must be in [0, 4) (the sensor has 4 columns), not 4"),
    (dict(y=[0, 0, 1, 2, 9]), "recording 2, event 1: y must be in [0, 4) (the sensor has 4 rows), not 9"),
    (dict(x=[0, 1, 2, -1, 0]), "recording 2, event 0: x must be in [0, 4) (the sensor has 4 columns), not -1"),
    (dict(p=[0, 1, 2, 0, 1]), "recording 0, event 2: p must be in [0, 2) (the sensor has 2 polarities), not 2"),
    (dict(p=[0, 0, 0, 0, 1], sensor=(1, 4, 4)),
     "recording 2, event 1: p must be in [0, 1) (the sensor has 1 polarities), not 1"),
    (dict(t=[0, 5, 4, 1, 2]), "recording 0, event 2: the timestamp goes backwards (4 µs after 5 µs)"),
    (dict(t=[0, 5, 7, 3, 2]), "recording 2, event 1: the timestamp goes backwards (2 µs after 3 µs)"),
    (dict(t=[-1, 5, 7, 1, 2]), "recording 0, event 0: t must be >= 0 (µs), not -1"),
    (dict(offsets=[0, 3, 2, 5]),
     "offsets must not decrease: offsets[2] = 2 is below offsets[1] = 3 (recording 1 would have a negative length)"),
    (dict(offsets=[1, 3, 3, 5]), "offsets must start at 0, not 1"),
    (dict(offsets=[0, 3, 3, 4]), "offsets must end at the number of events (5), not 4"),
    (dict(offsets=[]), "offsets must have one entry more than there are recordings, not 0 entries"),
    (dict(labels=[1, 2]), "labels must have one entry per recording (3), not 2"),
    (dict(labels=[1, -2, 0]), "labels must be >= 0 (or -1 for none), not -2 (recording 1)"),
    (dict(y=[0, 0, 1, 2]), "y must have one entry per event (5, like t), not 4"),
    (dict(t=[0.0, 5, 7, 1, 2]), "t must be an array of integers, not float64"),
    (dict(x=[[0, 1, 2, 3, 0]]), "x must be a 1-D array, not of shape [1, 5]"),
    (dict(sensor=(3, 4, 4)), "sensor must be (polarities, rows, columns) with 1 or 2 polarities and 1 to 32767 "
                             "rows and columns, not (3, 4, 4)"),
    (dict(sensor=(2, 0, 4)), "sensor must be (polarities, rows, columns) with 1 or 2 polarities and 1 to 32767 "
                             "rows and columns, not (2, 0, 4)"),
])
def test_eventset_errors(kw, msg):
    with raises(msg):
        EventSet(**small_set(**kw))


def test_select_concatenate_and_the_npz_round_trip(tmp_path):
    es = EventSet(**small_set())
    sub = es.select([2, 0])
    assert sub.labels.tolist() == [9, 4] and sub.offsets.tolist() == [0, 2, 5]
    assert sub.t.tolist() == [1, 2, 0, 5, 7]
    assert es.select(np.array([False, True, True])).counts.tolist() == [0, 2]
    assert es.select(slice(1, None)).labels.tolist() == [0, 9]
    with raises("recording index 3 is out of range for 3 recordings"):
        es.select([0, 3])
    both = EventSet.concatenate([es, sub])
    assert len(both) == 5 and both.t.tolist() == es.t.tolist() + sub.t.tolist()
    assert both.offsets.tolist() == [0, 3, 3, 5, 7, 10]
    path = ev.save_events(tmp_path / "e.npz", both, key="abc")
    back, meta = ev.load_events(path)
    assert meta == {"key": "abc"} and back.sensor == both.sensor
    for name in ("t", "x", "y", "p", "offsets", "labels"):
        assert np.array_equal(getattr(back, name), getattr(both, name)) and getattr(back, name).dtype == \
            getattr(both, name).dtype
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EventError, match=r"^cannot read .*bad\.npz"):
        ev.load_events(tmp_path / "bad.npz")


# --- N-MNIST ------------------------------------------------------------------------------------------------------

def test_nmnist_layout_is_pinned():
    # x=1, y=2, ON, t=0x123456 -> 01 02 92 34 56; x=33, y=0, OFF, t=2**23-1 -> 21 00 7f ff ff
    assert ev.encode_nmnist([0x123456, 2**23 - 1], [1, 33], [2, 0], [1, 0]) == bytes.fromhex("010292345621007fffff")
    assert nmnist_bytes([(0x123456, 1, 2, 1), (2**23 - 1, 33, 0, 0)]) == bytes.fromhex("010292345621007fffff")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**23 - 1), st.integers(0, 33), st.integers(0, 33), st.integers(0, 1)),
                min_size=1, max_size=40))
def test_nmnist_round_trip(tmp_path_factory, events):
    events = sorted(events)
    path = tmp_path_factory.mktemp("nm") / "r.bin"
    path.write_bytes(nmnist_bytes(events))
    t, x, y, p = ev.read_nmnist_file(path)
    assert [tuple(map(int, e)) for e in zip(t, x, y, p)] == events
    assert t.dtype == np.int64 and x.dtype == y.dtype == p.dtype == np.uint8
    ev.write_nmnist_file(path, t, x, y, p)
    assert path.read_bytes() == nmnist_bytes(events)


@pytest.mark.parametrize("data, msg", [
    (nmnist_bytes([(0, 1, 1, 0)]) + b"\x01\x02", "{f}: truncated N-MNIST file: 7 bytes is not a multiple of 5 (one "
                                                  "event is 40 bits); event 1 has only 2 of its 5 bytes"),
    (nmnist_bytes([(0, 1, 1, 0), (3, 34, 1, 1)]),
     "{f}: event 1: x must be in [0, 34) (the sensor has 34 columns), not 34"),
    (nmnist_bytes([(0, 1, 1, 0), (3, 1, 1, 1), (4, 1, 240, 1)]),
     "{f}: event 2: y must be in [0, 34) (the sensor has 34 rows), not 240"),
    (nmnist_bytes([(0, 1, 1, 0), (30, 1, 1, 1), (29, 1, 2, 1)]),
     "{f}: event 2: the timestamp goes backwards (29 µs after 30 µs)"),
    (b"", "{f}: empty recording (0 events)"),
])
def test_nmnist_file_errors(tmp_path, data, msg):
    f = tmp_path / "bad.bin"
    f.write_bytes(data)
    with raises(msg.format(f=f)):
        ev.read_nmnist_file(f)


def test_nmnist_missing_file(tmp_path):
    with raises(f"{tmp_path / 'nope.bin'}: not found"):
        ev.read_nmnist_file(tmp_path / "nope.bin")
    with raises(f"{tmp_path}: not a regular file"):
        ev.read_nmnist_file(tmp_path)
    with raises("event 0: x must be in [0, 256) to fit the N-MNIST format, not 256"):
        ev.encode_nmnist([0], [256], [0], [0])


def _nmnist_tree(root, split="Train"):
    recs = {(3, "00002.bin"): [(5, 1, 2, 1), (9, 3, 4, 0)], (3, "00001.bin"): [(0, 0, 0, 0)],
            (10, "00007.bin"): [(1, 33, 33, 1)], (0, "00100.bin"): [(2, 5, 6, 0), (2, 6, 5, 1), (8, 7, 7, 1)]}
    for (label, name), events in recs.items():
        d = root / split / str(label)
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(nmnist_bytes(events))
    (root / split / "3" / "README.txt").write_text("not a recording")
    return recs


def test_read_nmnist_folder(tmp_path):
    recs = _nmnist_tree(tmp_path)
    es = ev.read_nmnist(tmp_path, "train")
    order = [(0, "00100.bin"), (3, "00001.bin"), (3, "00002.bin"), (10, "00007.bin")]   # (label, file name)
    assert es.labels.tolist() == [0, 3, 3, 10] and es.sensor == (2, 34, 34)
    for r, key in enumerate(order):
        assert [tuple(map(int, e)) for e in zip(*es.recording(r))] == recs[key]
    with raises(f"{tmp_path}: no Test folder (an N-MNIST folder holds Train/<label>/*.bin and Test/<label>/*.bin)"):
        ev.read_nmnist(tmp_path, "test")
    with raises("split must be 'train' or 'test', not 'val'"):
        ev.read_nmnist(tmp_path, "val")
    with raises(f"N-MNIST folder not found: {tmp_path / 'x'}"):
        ev.read_nmnist(tmp_path / "x", "train")


def test_read_nmnist_folder_errors_name_the_file(tmp_path):
    _nmnist_tree(tmp_path)
    bad = tmp_path / "Train" / "3" / "00003.bin"
    bad.write_bytes(nmnist_bytes([(4, 1, 1, 1), (3, 1, 1, 1)]))
    with raises(f"{bad}: event 1: the timestamp goes backwards (3 µs after 4 µs)"):
        ev.read_nmnist(tmp_path, "train")
    bad.unlink()
    (tmp_path / "Train" / "cats").mkdir()
    with raises(f"{tmp_path / 'Train'}: 'cats' is not a label folder (N-MNIST label folders are named 0-9)"):
        ev.read_nmnist(tmp_path, "Train")
    (tmp_path / "Test" / "1").mkdir(parents=True)
    with raises(f"{tmp_path / 'Test'}: no .bin recordings in any label folder"):
        ev.read_nmnist(tmp_path, "test")


# --- binning ------------------------------------------------------------------------------------------------------

def naive_raster(es: EventSet, T: int, input_bits: int = 1, saturate: bool = True) -> np.ndarray:
    """docs/events.md §3, one event at a time."""
    P, H, W = es.sensor
    out = np.zeros((len(es), T, P * H * W), np.int64)
    for r in range(len(es)):
        t, x, y, p = (a.tolist() for a in es.recording(r))
        if not t:
            continue
        t0, t1 = t[0], t[-1]
        for tk, xk, yk, pk in zip(t, x, y, p):
            b = (tk - t0) * T // (t1 - t0 + 1)
            out[r, b, pk * H * W + yk * W + xk] += 1
    return np.minimum(out, 2**input_bits - 1) if saturate else out


@st.composite
def eventsets(draw, max_len=30, max_t=10**6):
    P, H, W = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    recs = []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, max_len))
        t = sorted(draw(st.lists(st.integers(0, max_t), min_size=n, max_size=n)))
        ev_ = [(draw(st.integers(0, W - 1)), draw(st.integers(0, H - 1)), draw(st.integers(0, P - 1))) for _ in t]
        recs.append((t, [e[0] for e in ev_], [e[1] for e in ev_], [e[2] for e in ev_]))
    return EventSet.from_recordings(recs, list(range(len(recs))), (P, H, W))


@settings(max_examples=60, deadline=None)
@given(eventsets(), st.sampled_from([1, 2, 3, 4, 7, 32, 1000]), st.integers(1, 8))
def test_raster_equals_the_naive_rule(es, T, bits):
    r = ev.raster(es, T, bits)
    assert r.dtype == np.uint8 and r.shape == (len(es), T, es.n_inputs)
    assert np.array_equal(r, naive_raster(es, T, bits))
    n = len(es)
    assert np.array_equal(ev.raster(es, T, bits, start=n // 2), r[n // 2:])
    assert np.array_equal(ev.raster(es, T, bits, 1 if n > 1 else 0, n - 1 if n > 1 else n),
                          r[1:n - 1] if n > 1 else r)


@settings(max_examples=60, deadline=None)
@given(eventsets(), st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2, 3, 8]))
def test_binning_at_T_sums_groups_of_the_finer_binning(es, T, k):
    """T | T' (T' = kT): bin b at T holds exactly bins kb .. kb+k-1 at T' (before saturation); counts are kept."""
    fine, coarse = ev.bin_counts(es, k * T), ev.bin_counts(es, T)
    assert np.array_equal(fine.reshape(len(es), T, k, -1).sum(axis=2), coarse)
    assert coarse.sum(axis=(1, 2)).tolist() == es.counts.tolist()
    assert np.array_equal(np.minimum(coarse, 1), ev.raster(es, T, 1))


def test_binning_corner_cases():
    # one recording on a (2, 1, 2) sensor: t = 0, 0, 0, 10, 19 -> T=2: span 20, bins 0 0 0 1 1
    es = EventSet([0, 0, 0, 10, 19, 100], [0, 0, 0, 1, 1, 1], [0] * 6, [1, 1, 1, 0, 0, 1], [0, 5, 5, 6],
                  [0, 1, 2], (2, 1, 2))
    assert ev.raster(es, 1, 1)[0].tolist() == [[0, 1, 1, 0]]
    assert ev.bin_counts(es, 2)[0].tolist() == [[0, 0, 3, 0], [0, 2, 0, 0]]
    assert ev.raster(es, 2, 1)[0].tolist() == [[0, 0, 1, 0], [0, 1, 0, 0]]       # saturated at 1
    assert ev.raster(es, 2, 4)[0].tolist() == [[0, 0, 3, 0], [0, 2, 0, 0]]
    assert not ev.raster(es, 4, 1)[1].any()                                       # an empty recording
    assert ev.raster(es, 3, 1)[2].tolist() == [[0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]  # one event: bin 0
    # t=0..19, bins of 5 µs at T=4: bin 1 empty, bin 3 all-active (every input, 20 events each)
    t = np.repeat([0, 1, 15, 19], [3, 1, 40, 40])
    i = np.concatenate([[0, 1, 2, 3], np.tile(np.arange(4), 20)])
    all_on = EventSet(t, i % 2, np.zeros_like(t), i // 2, [0, len(t)], [0], (2, 1, 2))
    c = ev.bin_counts(all_on, 4)[0]
    assert c[1].tolist() == [0, 0, 0, 0] and c[2].tolist() == [0, 0, 0, 0]
    assert c[3].tolist() == [20, 20, 20, 20] and c[0].tolist() == [1, 1, 1, 1]
    assert ev.raster(all_on, 4, 4)[0, 3].tolist() == [15, 15, 15, 15]
    assert ev.raster(all_on, 4, 1)[0, 3].tolist() == [1, 1, 1, 1]
    big = ev.raster(all_on, 65535, 1)      # the largest T: t = 0, 1, 15, 19 in bins 0, 3276, 49151, 62258
    assert big.shape == (1, 65535, 4) and big.sum() == 3 + 1 + 4 + 4
    assert big[0, 3276].tolist() == [0, 0, 0, 1] and big[0, 62258].tolist() == [1, 1, 1, 1]


def test_raster_errors():
    es = EventSet(**small_set())
    with raises("T must be between 1 and 65535, not 0", ValueError):
        ev.raster(es, 0)
    with raises("T must be an integer, not 2.0", TypeError):
        ev.raster(es, 2.0)
    with raises("input_bits must be between 1 and 8, not 9", ValueError):
        ev.raster(es, 4, 9)
    with raises("stop must be between 1 and 3, not 4", ValueError):
        ev.raster(es, 4, 1, 1, 4)
    with raises("start must be between 0 and 3, not 5", ValueError):
        ev.raster(es, 4, 1, 5)
    huge = EventSet([0, 2**62], [0, 0], [0, 0], [0, 0], [0, 2], [0], (2, 1, 1))
    with raises(f"recording 0 spans {2**62 + 1} µs: binning it into T=2 bins overflows 64-bit arithmetic"):
        ev.raster(huge, 2)


# --- the emulator -------------------------------------------------------------------------------------------------

PINNED = (19952, "ba0b060c0f6b932d")


def _images(n=12, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 28, 28), np.uint8)
    for k in range(n):
        r, c = rng.integers(4, 14, size=2)
        img[k, r:r + 10, c:c + 3] = rng.integers(128, 256)        # a bar ...
        img[k, r + 4:r + 7, c:c + 10] = rng.integers(128, 256)    # ... and a cross-stroke
        img[k] = np.maximum(img[k], rng.integers(0, 60, size=(28, 28)).astype(np.uint8) * (rng.random() < .3))
    return img


def test_saccade_recordings():
    img = _images()
    es = ev.saccade(img, 0, labels=np.arange(12) % 10)
    assert es.sensor == (2, 34, 34) and len(es) == 12 and es.labels.tolist() == (np.arange(12) % 10).tolist()
    assert (es.counts > 50).all()
    assert set(np.unique(es.p).tolist()) == {0, 1}                  # ON and OFF events
    assert es.x.max() < 34 and es.y.max() < 34
    for r in range(len(es)):
        t = es.recording(r)[0]
        assert (np.diff(t) >= 0).all() and t[0] >= 0 and t[-1] < 3 * 100_000 * 1.05 + 1
    # the flattened form, and chunking / threads change nothing
    same = ev.saccade(img.reshape(12, 784), 0, labels=np.arange(12) % 10, chunk=5, workers=2)
    for name in ("t", "x", "y", "p", "offsets", "labels"):
        assert np.array_equal(getattr(es, name), getattr(same, name))


def test_saccade_is_seeded():
    img = _images(6)
    a, b, c = ev.saccade(img, 7), ev.saccade(img, 7), ev.saccade(img, 8)
    assert all(np.array_equal(getattr(a, n), getattr(b, n)) for n in ("t", "x", "y", "p", "offsets"))
    assert not (a.n_events == c.n_events and np.array_equal(a.t, c.t) and np.array_equal(a.x, c.x))
    # pinned: float32 adds and multiplies only (the log is a table), the same bytes on every machine
    h = hashlib.sha256(b"".join(np.ascontiguousarray(getattr(a, n)).tobytes() for n in ("t", "x", "y", "p", "offsets")))
    assert (a.n_events, h.hexdigest()[:16]) == PINNED


def test_a_blank_image_gives_no_events():
    img = np.zeros((3, 28, 28), np.uint8)
    img[1, 10:14, 10:14] = 255
    es = ev.saccade(img, 3)
    assert es.counts[0] == 0 and es.counts[2] == 0 and es.counts[1] > 0
    assert not ev.raster(es, 4)[[0, 2]].any()
    assert ev.saccade(img[:1], 3).n_events == 0


def test_saccade_parameters_and_errors():
    img = _images(4)
    few = ev.saccade(img, 0, params=SaccadeParams(threshold=0.5))
    many = ev.saccade(img, 0)
    assert few.n_events < many.n_events
    assert ev.saccade(img, 0, params=SaccadeParams(refractory=0)).n_events > many.n_events
    small = ev.saccade(np.zeros((1, 10, 12), np.uint8), 0, params=SaccadeParams(amplitude=2))
    assert small.sensor == (2, 14, 16)
    with raises("threshold must be a number between 0.01 and 10, not 0", ValueError):
        SaccadeParams(threshold=0)
    with raises("steps must be between 1 and 1000, not 0", ValueError):
        SaccadeParams(steps=0)
    with raises("images must be a uint8 array of shape (N, rows, columns) (or (N, 784) for 28 x 28), not float64 "
                "of shape [2, 28, 28]"):
        ev.saccade(np.zeros((2, 28, 28)))
    with raises("labels must be 4 integers (one per image), not int64 of shape [3]"):
        ev.saccade(img, 0, labels=np.arange(3))


def test_cached_saccade(tmp_path, monkeypatch):
    img, lab = _images(5), np.arange(5)
    es = ev.cached_saccade("toy-train", img, lab, 0, tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("toy-train-") and files[0].suffix == ".npz"

    def fail(*a, **k):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(ev, "saccade", fail)
    hit = ev.cached_saccade("toy-train", img, lab, 0, tmp_path)
    for name in ("t", "x", "y", "p", "offsets", "labels"):
        assert np.array_equal(getattr(hit, name), getattr(es, name))
    monkeypatch.undo()
    calls = []
    real = ev.saccade
    monkeypatch.setattr(ev, "saccade", lambda *a, **k: calls.append(1) or real(*a, **k))
    ev.cached_saccade("toy-train", img, lab, 0, tmp_path, SaccadeParams(threshold=0.25))   # a parameter: miss
    ev.cached_saccade("toy-train", img, lab, 1, tmp_path)                                  # the seed: miss
    ev.cached_saccade("toy-train", img, lab[::-1].copy(), 0, tmp_path)                     # the labels: miss
    assert len(calls) == 3 and len(list(tmp_path.iterdir())) == 4
    files[0].write_bytes(b"damaged")                                 # a damaged cache file is recomputed
    again = ev.cached_saccade("toy-train", img, lab, 0, tmp_path)
    assert len(calls) == 4 and np.array_equal(again.t, es.t)
    assert ev.load_events(files[0])[0].n_events == es.n_events
    with raises("name must be letters, digits, '.', '_' or '-' (a file name), not '../x'"):
        ev.cached_saccade("../x", img, lab, 0, tmp_path)
