"""Event-stream data: recordings of address events, the N-MNIST format, binning, a saccade emulator.

An integer/data view (``docs/architecture.md``): NumPy only, no torch, no gateware. The definitions
(the container, the file format, the binning rule, the emulator) are specified in ``docs/events.md``;
this module is their reference implementation, vectorised (no Python loop over events or recordings).

* :class:`EventSet`: many recordings in concatenated arrays ``t, x, y, p`` cut by ``offsets``.
* :func:`read_nmnist_file`, :func:`read_nmnist`, :func:`write_nmnist_file`: the N-MNIST binary format.
* :func:`bin_events`, :func:`bin_counts`, :func:`raster`: a recording -> ``T`` equal-duration bins.
* :func:`saccade`, :class:`SaccadeParams`, :func:`cached_saccade`: images -> N-MNIST-like recordings.

Every malformed input is an :class:`EventError` (a ``ValueError``) naming the file or the recording
and the event index.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import math
import os
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .fileio import atomic_write_bytes, atomic_write_with
from .params import check_int, check_T

__all__ = ["EventError", "EventSet", "NMNIST_SENSOR", "read_nmnist_file", "read_nmnist", "write_nmnist_file",
           "encode_nmnist", "bin_events", "bin_counts", "raster", "SaccadeParams", "saccade", "saccade_sensor",
           "cached_saccade", "save_events", "load_events"]

#: N-MNIST's sensor: (polarities, rows, columns).
NMNIST_SENSOR = (2, 34, 34)
#: Largest sensor side: x and y are stored as int16 beyond 256.
_MAX_SIDE = 32767
#: N-MNIST timestamps are 23 bits (µs).
_NMNIST_T_BITS = 23
#: Largest number of (recording, bin, input) cells one bincount of :func:`raster` allocates (int64 each).
_BLOCK_CELLS = 1 << 22


class EventError(ValueError):
    """Event data is malformed; the message names the file or the recording, and the event index."""


def _check_sensor(sensor) -> tuple[int, int, int]:
    ok = (isinstance(sensor, (tuple, list)) and len(sensor) == 3
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in sensor))
    if ok:
        P, H, W = (int(v) for v in sensor)
        ok = P in (1, 2) and 1 <= H <= _MAX_SIDE and 1 <= W <= _MAX_SIDE
    if not ok:
        raise EventError(f"sensor must be (polarities, rows, columns) with 1 or 2 polarities and 1 to {_MAX_SIDE} "
                         f"rows and columns, not {sensor!r}")
    return P, H, W


def _xy_dtype(H: int, W: int) -> np.dtype:
    return np.dtype(np.uint8) if max(H, W) <= 256 else np.dtype(np.int16)


def _int_array(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(np.int64)           # an empty list: no values to be of the wrong type
    if a.ndim != 1:
        raise EventError(f"{name} must be a 1-D array, not of shape {list(a.shape)}")
    if a.dtype.kind not in "iub" or (a.dtype.kind == "b" and name != "p"):
        raise EventError(f"{name} must be an array of integers, not {a.dtype}")
    return a


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True of ``mask``, or None."""
    i = int(np.argmax(mask)) if mask.size else 0
    return i if mask.size and mask[i] else None


def _out_of_range(name: str, a: np.ndarray, hi: int, what: str):
    """(index, message tail) of the first element of ``a`` outside ``[0, hi)``, or None."""
    bad = a >= hi
    if a.dtype.kind == "i":
        bad |= a < 0
    i = _first(bad)
    if i is None:
        return None
    return i, f"{name} must be in [0, {hi}) ({what}), not {int(a[i])}"


def _check_in_sensor(x, y, p, sensor, where) -> None:
    """Every event inside the sensor ``(P, H, W)``; else an error naming ``where(event index)``."""
    P, H, W = sensor
    for name, a, hi, what in (("x", x, W, f"the sensor has {W} columns"), ("y", y, H, f"the sensor has {H} rows"),
                              ("p", p, P, f"the sensor has {P} polarities")):
        bad = _out_of_range(name, a, hi, what)
        if bad is not None:
            raise EventError(f"{where(bad[0])}: {bad[1]}")


def _backwards(t: np.ndarray, offsets: np.ndarray | None = None):
    """Index of the first event whose timestamp is below its predecessor's in the same recording, or None."""
    if t.size < 2:
        return None
    bad = t[1:] < t[:-1]
    if offsets is not None:
        b = offsets[1:-1]
        b = b[(b > 0) & (b < t.size)]
        bad[b - 1] = False  # the first event of a recording may start earlier than the last of the previous
    i = _first(bad)
    return None if i is None else i + 1


@dataclass(frozen=True, eq=False)
class EventSet:
    """Many recordings of address events, concatenated (``docs/events.md`` §1).

    Recording ``r`` is events ``offsets[r]:offsets[r + 1]`` of ``t`` (int64, µs), ``x`` (column), ``y``
    (row) (uint8 when both sensor sides are at most 256, else int16) and ``p`` (uint8 polarity, 1 = ON,
    brighter), with class ``labels[r]`` (int64, -1 for none). ``sensor = (P, H, W)``: polarities, rows,
    columns. Within a recording the timestamps never decrease; a recording may be empty. The arrays are
    read-only views.
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    sensor: tuple = NMNIST_SENSOR

    def __post_init__(self) -> None:
        P, H, W = _check_sensor(self.sensor)
        object.__setattr__(self, "sensor", (P, H, W))
        t, x, y, p = (_int_array(n, getattr(self, n)) for n in ("t", "x", "y", "p"))
        for name, a in (("x", x), ("y", y), ("p", p)):
            if len(a) != len(t):
                raise EventError(f"{name} must have one entry per event ({len(t)}, like t), not {len(a)}")
        off = _int_array("offsets", self.offsets)
        if len(off) == 0:
            raise EventError("offsets must have one entry more than there are recordings, not 0 entries")
        if off[0] != 0:
            raise EventError(f"offsets must start at 0, not {int(off[0])}")
        if off[-1] != len(t):
            raise EventError(f"offsets must end at the number of events ({len(t)}), not {int(off[-1])}")
        r = _first(off[1:] < off[:-1])
        if r is not None:
            raise EventError(f"offsets must not decrease: offsets[{r + 1}] = {int(off[r + 1])} is below "
                             f"offsets[{r}] = {int(off[r])} (recording {r} would have a negative length)")
        off = off.astype(np.int64)
        lab = _int_array("labels", self.labels)
        if len(lab) != len(off) - 1:
            raise EventError(f"labels must have one entry per recording ({len(off) - 1}), not {len(lab)}")
        if lab.size and lab.min() < -1:
            r = _first(lab < -1)
            raise EventError(f"labels must be >= 0 (or -1 for none), not {int(lab[r])} (recording {r})")

        def where(i: int) -> str:
            r = int(np.searchsorted(off, i, side="right")) - 1
            return f"recording {r}, event {i - int(off[r])}"

        _check_in_sensor(x, y, p, (P, H, W), where)
        if t.dtype.kind == "i" and t.size and t.min() < 0:
            i = _first(t < 0)
            raise EventError(f"{where(i)}: t must be >= 0 (µs), not {int(t[i])}")
        if t.dtype == np.uint64 and t.size and t.max() > np.iinfo(np.int64).max:
            i = _first(t > np.iinfo(np.int64).max)
            raise EventError(f"{where(i)}: t must fit in int64, not {int(t[i])}")
        i = _backwards(t, off)
        if i is not None:
            raise EventError(f"{where(i)}: the timestamp goes backwards ({int(t[i])} µs after {int(t[i - 1])} µs)")
        xy = _xy_dtype(H, W)
        for name, a, dt in (("t", t, np.int64), ("x", x, xy), ("y", y, xy), ("p", p, np.uint8),
                            ("offsets", off, np.int64), ("labels", lab, np.int64)):
            a = a.astype(dt, copy=False).view()
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    # --- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_recordings(cls, recordings, labels=None, sensor=NMNIST_SENSOR) -> "EventSet":
        """From a sequence of ``(t, x, y, p)`` tuples of arrays, one per recording (labels default to -1)."""
        recordings = list(recordings)
        parts = [[np.asarray(r[k]).ravel() for r in recordings] for k in range(4)]
        parts = [[a.astype(np.int64) if a.size == 0 else a for a in col] for col in parts]
        lens = np.array([len(a) for a in parts[0]], dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)

        def cat(arrs, dt):
            return np.concatenate(arrs) if arrs else np.zeros(0, dt)

        t, x, y, p = (cat(a, dt) for a, dt in zip(parts, (np.int64, np.int64, np.int64, np.uint8)))
        labels = np.full(len(recordings), -1, np.int64) if labels is None else labels
        return cls(t, x, y, p, off, labels, tuple(sensor))

    @classmethod
    def concatenate(cls, sets) -> "EventSet":
        """The recordings of several EventSets of the same sensor, in order."""
        sets = list(sets)
        if not sets:
            raise EventError("cannot concatenate no EventSets")
        sensors = {s.sensor for s in sets}
        if len(sensors) != 1:
            raise EventError(f"cannot concatenate EventSets of different sensors: {sorted(sensors)}")
        base = np.cumsum([0] + [s.n_events for s in sets[:-1]])
        off = np.concatenate([[0]] + [s.offsets[1:] + b for s, b in zip(sets, base)])
        return cls(*(np.concatenate([getattr(s, n) for s in sets]) for n in ("t", "x", "y", "p")), off,
                   np.concatenate([s.labels for s in sets]), sets[0].sensor)

    # --- facts --------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.t)

    @property
    def counts(self) -> np.ndarray:
        """Events per recording (int64, one per recording)."""
        return np.diff(self.offsets)

    @property
    def n_inputs(self) -> int:
        """Length of one bin's input vector, ``P * H * W``."""
        P, H, W = self.sensor
        return P * H * W

    def recording(self, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(t, x, y, p)`` of recording ``r`` (views)."""
        r = check_int("recording", r, -len(self), len(self) - 1) % len(self) if len(self) else \
            check_int("recording", r, 0, -1)
        a, b = int(self.offsets[r]), int(self.offsets[r + 1])
        return self.t[a:b], self.x[a:b], self.y[a:b], self.p[a:b]

    def select(self, index) -> "EventSet":
        """The recordings ``index`` (a slice, or an array of indices or of booleans), in that order."""
        n = len(self)
        idx = np.arange(n)[index] if isinstance(index, slice) else np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise EventError(f"a boolean index must have one entry per recording ({n}), not shape {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise EventError(f"index must be a slice or a 1-D array of integers or booleans, not {idx.dtype} "
                             f"of shape {list(idx.shape)}")
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise EventError(f"recording index {int(bad)} is out of range for {n} recordings")
        idx = idx.astype(np.int64) % max(n, 1)
        start, cnt = self.offsets[idx], self.counts[idx]
        off = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
        ev = np.arange(off[-1], dtype=np.int64) - np.repeat(off[:-1] - start, cnt)
        return EventSet(self.t[ev], self.x[ev], self.y[ev], self.p[ev], off, self.labels[idx], self.sensor)


# --- N-MNIST ------------------------------------------------------------------------------------------------------

def encode_nmnist(t, x, y, p) -> bytes:
    """One recording in the N-MNIST format (``docs/events.md`` §2): 5 bytes per event, big-endian."""
    t, x, y, p = (np.asarray(a).astype(np.int64).ravel() for a in (t, x, y, p))
    for name, a, hi in (("x", x, 256), ("y", y, 256), ("p", p, 2), ("t", t, 1 << _NMNIST_T_BITS)):
        if len(a) != len(t):
            raise EventError(f"{name} must have one entry per event ({len(t)}, like t), not {len(a)}")
        if a.size and (a.min() < 0 or a.max() >= hi):
            i = _first((a < 0) | (a >= hi))
            raise EventError(f"event {i}: {name} must be in [0, {hi}) to fit the N-MNIST format, not {int(a[i])}")
    raw = np.empty((len(t), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | (t >> 16)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return raw.tobytes()


def write_nmnist_file(path, t, x, y, p) -> Path:
    """Write one recording as an N-MNIST ``.bin`` file (atomically, through :mod:`sc_neurocore.fileio`)."""
    return atomic_write_bytes(path, encode_nmnist(t, x, y, p))


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise EventError(f"{path}: not found" if not path.exists() else f"{path}: not a regular file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise EventError(f"cannot read {path}: {e.strerror or e}") from None


def _decode_nmnist(paths: list[Path], blobs: list[bytes], sensor) -> tuple:
    """Decode and check the files; (t, x, y, p, offsets). Errors name the file and the event index."""
    P, H, W = _check_sensor(sensor)
    if H > 256 or W > 256:
        raise EventError(f"sensor must have at most 256 rows and columns for the N-MNIST format (8-bit x and y), "
                         f"not {sensor!r}")
    for path, b in zip(paths, blobs):
        if len(b) % 5:
            raise EventError(f"{path}: truncated N-MNIST file: {len(b)} bytes is not a multiple of 5 (one event is "
                             f"40 bits); event {len(b) // 5} has only {len(b) % 5} of its 5 bytes")
        if len(b) == 0:
            raise EventError(f"{path}: empty recording (0 events)")
    lens = np.array([len(b) // 5 for b in blobs], dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, 5)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    t = ((raw[:, 2].astype(np.int64) & 0x7F) << 16) | (raw[:, 3].astype(np.int64) << 8) | raw[:, 4]

    def where(i: int) -> str:
        f = int(np.searchsorted(off, i, side="right")) - 1
        return f"{paths[f]}: event {i - int(off[f])}"

    _check_in_sensor(x, y, p, (P, H, W), where)
    i = _backwards(t, off)
    if i is not None:
        raise EventError(f"{where(i)}: the timestamp goes backwards ({int(t[i])} µs after {int(t[i - 1])} µs)")
    return t, x.copy(), y.copy(), p, off


def read_nmnist_file(path, sensor=NMNIST_SENSOR) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One N-MNIST ``.bin`` recording as ``(t, x, y, p)`` arrays (int64 µs, uint8, uint8, uint8)."""
    path = Path(path)
    t, x, y, p, _ = _decode_nmnist([path], [_read_bytes(path)], sensor)
    return t, x, y, p


_SPLITS = {"train": "Train", "test": "Test"}


def read_nmnist(root, split: str, sensor=NMNIST_SENSOR) -> EventSet:
    """The ``split`` (``"train"`` or ``"test"``) of an N-MNIST folder: ``root/Train/<label>/*.bin`` or
    ``root/Test/<label>/*.bin``; label folders are named by their class (``0``-``9``), recordings are taken
    in the order (label, file name)."""
    if not isinstance(split, str) or split.lower() not in _SPLITS:
        raise EventError(f"split must be 'train' or 'test', not {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise EventError(f"N-MNIST folder not found: {root}")
    d = root / _SPLITS[split.lower()]
    if not d.is_dir():
        raise EventError(f"{root}: no {_SPLITS[split.lower()]} folder (an N-MNIST folder holds Train/<label>/*.bin "
                         "and Test/<label>/*.bin)")
    folders = []
    for sub in d.iterdir():
        if sub.is_dir():
            if not re.fullmatch(r"[0-9]+", sub.name):
                raise EventError(f"{d}: {sub.name!r} is not a label folder (N-MNIST label folders are named 0-9)")
            folders.append((int(sub.name), sub))
    paths, labels = [], []
    for label, sub in sorted(folders):
        files = sorted(f for f in sub.iterdir() if f.suffix == ".bin")
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise EventError(f"{d}: no .bin recordings in any label folder")
    t, x, y, p, off = _decode_nmnist(paths, [_read_bytes(f) for f in paths], sensor)
    return EventSet(t, x, y, p, off, np.array(labels, np.int64), tuple(sensor))


# --- binning ------------------------------------------------------------------------------------------------------

def _range(es: EventSet, start, stop) -> tuple[int, int]:
    n = len(es)
    start = check_int("start", start, 0, n)
    stop = n if stop is None else check_int("stop", stop, start, n)
    return start, stop


def bin_events(es: EventSet, T: int, start: int = 0, stop: int | None = None):
    """Per event of recordings ``[start, stop)``: ``(recording - start, bin, input)`` (int64 arrays).

    The rule (``docs/events.md`` §3): with ``t0``, ``t1`` the recording's first and last timestamps, the
    event at ``t`` is in bin ``(t - t0) * T // (t1 - t0 + 1)``; its input is ``p*H*W + y*W + x``.
    """
    T = check_T(T)
    start, stop = _range(es, start, stop)
    off = es.offsets
    a, b = int(off[start]), int(off[stop])
    cnt = np.diff(off[start:stop + 1])
    rec = np.repeat(np.arange(stop - start, dtype=np.int64), cnt)
    t = es.t[a:b]
    nz = cnt > 0
    t0 = np.zeros(stop - start, np.int64)
    t1 = np.zeros(stop - start, np.int64)
    t0[nz] = es.t[off[start:stop][nz]]
    t1[nz] = es.t[off[start + 1:stop + 1][nz] - 1]
    span = t1 - t0 + 1
    if span.size and int(span.max()) > (np.iinfo(np.int64).max // T):
        r = int(np.argmax(span))
        raise EventError(f"recording {start + r} spans {int(span[r])} µs: binning it into T={T} bins overflows "
                         "64-bit arithmetic")
    bins = (t - t0[rec]) * T // span[rec]
    P, H, W = es.sensor
    inp = es.p[a:b].astype(np.int64) * (H * W) + es.y[a:b].astype(np.int64) * W + es.x[a:b]
    return rec, bins, inp


def bin_counts(es: EventSet, T: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Events per (recording, bin, input) before saturation: int64 of shape (stop - start, T, P*H*W)."""
    rec, bins, inp = bin_events(es, T, start, stop)
    n = (len(es) if stop is None else stop) - start
    n_in = es.n_inputs
    return np.bincount((rec * T + bins) * n_in + inp, minlength=n * T * n_in).reshape(n, T, n_in)


def raster(es: EventSet, T: int, input_bits: int = 1, start: int = 0, stop: int | None = None) -> np.ndarray:
    """The input of the ``events`` kind: uint8 ``(stop - start, T, P*H*W)``, each count saturated to
    ``2**input_bits - 1`` (``docs/events.md`` §3)."""
    T = check_T(T)
    input_bits = check_int("input_bits", input_bits, 1, 8)
    start, stop = _range(es, start, stop)
    n_in = es.n_inputs
    cap = (1 << input_bits) - 1
    out = np.empty((stop - start, T, n_in), np.uint8)
    per = max(1, _BLOCK_CELLS // (T * n_in))   # recordings per bincount: bounds its int64 buffer
    for a in range(start, stop, per):
        b = min(a + per, stop)
        rec, bins, inp = bin_events(es, T, a, b)
        c = np.bincount((rec * T + bins) * n_in + inp, minlength=(b - a) * T * n_in)
        np.minimum(c, cap, out=c)
        out[a - start:b - start] = c.reshape(b - a, T, n_in)
    return out


# --- the saccade emulator -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SaccadeParams:
    """The emulator's parameters (``docs/events.md`` §4); all of them key the cache."""

    #: The path's size in pixels: the image's offset visits (0, 0) -> (2a, a) -> (0, 2a) -> (0, 0);
    #: the canvas is the image plus 2a on each axis (28 x 28 -> 34 x 34).
    amplitude: int = 3
    #: Positions per saccade (sub-pixel, constant speed).
    steps: int = 10
    #: Nominal duration of one saccade, µs.
    saccade_us: int = 100_000
    #: Relative spread of each saccade's duration (uniform in ±timing_jitter), per recording.
    timing_jitter: float = 0.05
    #: Contrast threshold C, in natural-log units.
    threshold: float = 0.2
    #: Relative per-pixel threshold mismatch (uniform in ±mismatch), fixed per sensor pixel.
    mismatch: float = 0.05
    #: Photoreceptor offset: L = log(I/255 + eps).
    eps: float = 0.2
    #: Steps a pixel is held in reset after it fired (its reference follows L; nothing fires).
    refractory: int = 1
    #: Initial reference: L(step 0) + ref_jitter * C_pixel * (u - 1/2), u uniform per (recording, pixel).
    ref_jitter: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "amplitude", check_int("amplitude", self.amplitude, 1, 64))
        object.__setattr__(self, "steps", check_int("steps", self.steps, 1, 1000))
        object.__setattr__(self, "saccade_us", check_int("saccade_us", self.saccade_us, 1, 10**9))
        object.__setattr__(self, "refractory", check_int("refractory", self.refractory, 0, 1000))
        for name, lo, hi in (("timing_jitter", 0.0, 0.5), ("threshold", 0.01, 10.0), ("mismatch", 0.0, 0.5),
                             ("eps", 1e-3, 100.0), ("ref_jitter", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not lo <= float(v) <= hi:
                raise ValueError(f"{name} must be a number between {lo:g} and {hi:g}, not {v!r}")
            object.__setattr__(self, name, float(v))

    @property
    def vertices(self) -> tuple[tuple[int, int], ...]:
        """The image's (column, row) offset on the canvas at the start of each saccade (and back)."""
        a = self.amplitude
        return ((0, 0), (2 * a, a), (0, 2 * a), (0, 0))


def saccade_sensor(image_shape, params: SaccadeParams | None = None) -> tuple[int, int, int]:
    """The sensor of :func:`saccade`'s recordings for images of ``(h, w)``: ``(2, h + 2a, w + 2a)``."""
    a = (params or SaccadeParams()).amplitude
    return 2, int(image_shape[0]) + 2 * a, int(image_shape[1]) + 2 * a


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniform(seed: int, stream: int, *keys: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float64, a pure function of (seed, stream, keys): independent of chunking."""
    with np.errstate(over="ignore"):
        h = _mix(np.array([(seed & 0xFFFFFFFFFFFFFFFF) ^ (stream << 56)], np.uint64))
        for k in keys:                 # broadcast as they come: a (B, 1) key costs B mixes, not B * n
            h = _mix(h ^ np.asarray(k).astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _images(images) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 2 and a.shape[1] == 784:
        a = a.reshape(len(a), 28, 28)
    if a.ndim != 3 or a.dtype != np.uint8 or 0 in a.shape[1:]:
        raise EventError(f"images must be a uint8 array of shape (N, rows, columns) (or (N, 784) for 28 x 28), not "
                         f"{a.dtype} of shape {list(a.shape)}")
    return a


def _path(params: SaccadeParams) -> np.ndarray:
    """(3 * steps + 1, 2) float64: the image's (column, row) offset at every step."""
    v = np.array(params.vertices, np.float64)
    f = np.arange(params.steps, dtype=np.float64)[:, None] / params.steps
    pos = [v[k] + f * (v[k + 1] - v[k]) for k in range(3)]
    return np.concatenate(pos + [v[3:]])


def _step_times(n0: int, n: int, seed: int, params: SaccadeParams) -> np.ndarray:
    """(n, 3 * steps + 1) int64: the start of every step of recordings n0..n0+n-1 (the last: the end)."""
    img = np.arange(n0, n0 + n, dtype=np.int64)[:, None]
    u = _uniform(seed, 2, img, np.arange(3)[None, :])
    d = np.rint(params.saccade_us * (1 + params.timing_jitter * (2 * u - 1))).astype(np.int64)   # (n, 3)
    start = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(d, axis=1)], axis=1)          # (n, 4)
    s = np.arange(params.steps, dtype=np.int64)
    tau = start[:, :3, None] + d[:, :, None] * s // params.steps                                  # (n, 3, steps)
    return np.concatenate([tau.reshape(n, -1), start[:, 3:]], axis=1)


def _log_table(params: SaccadeParams) -> np.ndarray:
    """float32 log(v/255 + eps) for every pixel value v (computed with Python's math.log, in float64)."""
    return np.array([math.log(v / 255 + params.eps) for v in range(256)], np.float64).astype(np.float32)


def _saccade_chunk(img: np.ndarray, n0: int, seed: int, params: SaccadeParams, path: np.ndarray, lut: np.ndarray,
                   c_pix: np.ndarray, inv_c: np.ndarray):
    """Recordings n0 .. n0 + len(img) - 1: (events per recording, t, x, y, p)."""
    B, h, w = img.shape
    a = params.amplitude
    Hc, Wc = h + 2 * a, w + 2 * a
    npx, S, k = Hc * Wc, len(path) - 1, params.refractory
    E = 2 * a + 1
    lq = np.full((B, h + 2 * E, w + 2 * E), lut[0], np.float32)   # the log image on a black surround
    lq[:, E:E + h, E:E + w] = lut[img]
    L = np.empty((B, Hc, Wc), np.float32)
    tmp = np.empty_like(L)

    def log_frame(pos) -> None:
        """L = the log image at offset ``pos`` (bilinear in the log image; float32, fixed order)."""
        ox, oy = float(pos[0]), float(pos[1])
        ix, iy = math.floor(ox), math.floor(oy)
        fx, fy = ox - ix, oy - iy
        first = True
        for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                            (1, 1, fx * fy)):
            if wgt == 0:
                continue
            v = lq[:, E - iy - dy:E - iy - dy + Hc, E - ix - dx:E - ix - dx + Wc]
            if first:
                np.multiply(v, np.float32(wgt), out=L)
                first = False
            else:
                np.multiply(v, np.float32(wgt), out=tmp)
                np.add(L, tmp, out=L)

    Lf = L.reshape(B, npx)
    log_frame(path[0])
    u = _uniform(seed, 3, np.arange(n0, n0 + B, dtype=np.uint64)[:, None], np.arange(npx, dtype=np.uint64)[None, :])
    ref = Lf + (params.ref_jitter * (u - 0.5)).astype(np.float32) * c_pix
    hold = np.empty((B, npx), bool)
    D = np.empty((B, npx), np.float32)
    Dh = np.empty((B, npx), np.float32)
    cnt = np.zeros((B, S, npx), np.int16)        # signed events per (recording, step, pixel): + ON, - OFF
    for s in range(1, S + 1):
        log_frame(path[s])
        np.subtract(Lf, ref, out=D)
        if k and s > 1:                          # (arithmetic, not masked copies: those are 10x slower)
            recent = cnt[:, max(0, s - 1 - k):s - 1]
            if recent.shape[1] == 1:
                np.not_equal(recent[:, 0], 0, out=hold)
            else:
                np.any(recent != 0, axis=1, out=hold)   # fired in one of the last k steps
            np.multiply(D, hold, out=Dh)
            np.add(ref, Dh, out=ref)             # held in reset: the reference follows the signal ...
            np.subtract(D, Dh, out=D)            # ... and sees no change
        np.multiply(D, inv_c, out=D)             # the change in units of the pixel's threshold
        c = cnt[:, s - 1]
        np.copyto(c, D, casting="unsafe")        # truncation toward zero: sign * floor(|L - ref| / C)
        np.multiply(c, c_pix, out=D)
        np.add(ref, D, out=ref)                  # the reference moves by the events emitted
    # One record per (recording, step, pixel) that fired: flatnonzero gives them in that order.
    idx = np.flatnonzero(cnt)
    if idx.size == 0:
        z = np.zeros(0, np.int64)
        return np.zeros(B, np.int64), z, z, z, z
    v = cnt.reshape(-1)[idx]
    n = np.abs(v).astype(np.int64)
    grp, pix = np.divmod(idx, npx)                # grp = recording * S + step - 1
    head = np.flatnonzero(np.concatenate([[True], grp[1:] != grp[:-1]]))
    glen = np.diff(np.concatenate([head, [len(grp)]]))
    j = np.arange(len(grp), dtype=np.int64) - np.repeat(head, glen)   # the record's rank in its step
    gim, gst = np.divmod(grp[head], S)
    tau = _step_times(n0, B, seed, params)
    g0 = tau[gim, gst]
    gdt = tau[gim, gst + 1] - g0
    t = np.repeat(g0, glen) + j * np.repeat(gdt, glen) // np.repeat(glen, glen)
    per = np.bincount(np.repeat(gim, glen), weights=n, minlength=B).astype(np.int64)
    return (per, np.repeat(t, n), np.repeat((pix % Wc).astype(np.uint16), n),
            np.repeat((pix // Wc).astype(np.uint16), n), np.repeat((v > 0).astype(np.uint8), n))


def saccade(images, seed: int = 0, labels=None, params: SaccadeParams | None = None, chunk: int = 64,
            workers: int | None = None) -> EventSet:
    """Turn uint8 images ``(N, h, w)`` (or ``(N, 784)``) into N-MNIST-like recordings (``docs/events.md`` §4).

    Seeded and deterministic: the same images, seed and parameters give the same arrays, whatever
    ``chunk`` (how many images are processed together) and ``workers`` (threads; default: one per CPU):
    only speed and memory depend on them.
    """
    params = params or SaccadeParams()
    if not isinstance(params, SaccadeParams):
        raise TypeError(f"params must be a SaccadeParams, not {params!r}")
    seed = check_int("seed", seed, 0, 2**63 - 1)
    chunk = check_int("chunk", chunk, 1, 1 << 16)
    img = _images(images)
    N, h, w = img.shape
    if labels is None:
        labels = np.full(N, -1, np.int64)
    labels = np.asarray(labels)
    if labels.shape != (N,) or labels.dtype.kind not in "iu":
        raise EventError(f"labels must be {N} integers (one per image), not {labels.dtype} of shape "
                         f"{list(labels.shape)}")
    sensor = saccade_sensor((h, w), params)
    _, Hc, Wc = sensor
    u = _uniform(seed, 1, np.arange(Hc * Wc, dtype=np.uint64))
    c_pix = (params.threshold * (1 + params.mismatch * (2 * u - 1))).astype(np.float32)
    inv_c = (1 / c_pix).astype(np.float32)
    path, lut = _path(params), _log_table(params)
    starts = range(0, N, chunk)
    workers = min(len(starts), os.cpu_count() or 1) if workers is None else check_int("workers", workers, 1, 256)

    def run(a: int):
        return _saccade_chunk(img[a:a + chunk], a, seed, params, path, lut, c_pix, inv_c)

    if workers > 1:   # NumPy releases the GIL in its loops; chunks are independent, results kept in order
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(run, starts))
    else:
        parts = [run(a) for a in starts]
    cnt = np.concatenate([c[0] for c in parts]) if parts else np.zeros(0, np.int64)
    off = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
    xy = _xy_dtype(Hc, Wc)

    def cat(k, dt):
        return np.concatenate([c[k].astype(dt, copy=False) for c in parts]) if parts else np.zeros(0, dt)

    return EventSet(cat(1, np.int64), cat(2, xy), cat(3, xy), cat(4, np.uint8), off, labels, sensor)


# --- storage and the cache ----------------------------------------------------------------------------------------

_NPZ_KEYS = ("t", "x", "y", "p", "offsets", "labels", "sensor")


def save_events(path, es: EventSet, **meta: str) -> Path:
    """Write ``es`` as an uncompressed .npz, atomically (``meta``: extra string fields, e.g. a cache key)."""
    arrays = {k: getattr(es, k) for k in _NPZ_KEYS[:-1]}
    if es.n_events and int(es.t.max()) < 2**32:
        arrays["t"] = es.t.astype(np.uint32)   # µs below 71 minutes: half the bytes
    arrays["sensor"] = np.array(es.sensor, np.int64)
    arrays.update({k: np.array(v) for k, v in meta.items()})
    return atomic_write_with(path, lambda f: np.savez(f, **arrays))


def load_events(path) -> tuple[EventSet, dict]:
    """Read a :func:`save_events` file: the EventSet (validated) and its ``meta`` strings."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _NPZ_KEYS if k not in z.files]
            if missing:
                raise EventError(f"{path}: not an event file (missing {', '.join(missing)})")
            a = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, EventError):
            raise
        raise EventError(f"cannot read {path}: {e}") from None
    try:
        es = EventSet(a["t"].astype(np.int64), a["x"], a["y"], a["p"], a["offsets"], a["labels"],
                      tuple(int(v) for v in a["sensor"]))
    except EventError as e:
        raise EventError(f"{path}: {e}") from None
    meta = {k: str(v) for k, v in a.items() if k not in _NPZ_KEYS and v.ndim == 0 and v.dtype.kind == "U"}
    return es, meta


#: Bump when the emulator's output changes for the same parameters: old cache files then miss.
_EMULATOR_VERSION = 1


def _cache_key(images: np.ndarray, labels: np.ndarray, seed: int, params: SaccadeParams) -> str:
    h = hashlib.sha256()
    h.update(f"saccade v{_EMULATOR_VERSION} seed={seed} ".encode())
    h.update(repr(sorted(asdict(params).items())).encode())
    for a in (images, labels):
        a = np.ascontiguousarray(a)
        h.update(f" {a.dtype.str}{list(a.shape)} ".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cached_saccade(name: str, images, labels, seed: int, cache_dir, params: SaccadeParams | None = None,
                   chunk: int = 64) -> EventSet:
    """:func:`saccade`, cached in ``cache_dir/<name>-<key>.npz``; ``key`` hashes the images, the labels, the
    seed, every emulator parameter and the emulator's version, so any change misses the cache. A cache file
    that cannot be read is recomputed and replaced."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise EventError(f"name must be letters, digits, '.', '_' or '-' (a file name), not {name!r}")
    params = params or SaccadeParams()
    seed = check_int("seed", seed, 0, 2**63 - 1)
    img = _images(images)
    lab = np.asarray(labels)
    key = _cache_key(img, lab, seed, params)
    path = Path(cache_dir) / f"{name}-{key[:16]}.npz"
    if path.is_file():
        try:
            es, meta = load_events(path)
            if meta.get("key") == key:
                return es
        except EventError:
            pass  # a damaged cache file: recompute it
    es = saccade(img, seed, lab, params, chunk)
    save_events(path, es, key=key)
    return es
