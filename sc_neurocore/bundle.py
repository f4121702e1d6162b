"""The deployment bundle: the one artefact that leaves training and enters hardware.

A bundle file (``*.scnb``) is a ZIP archive with fixed timestamps and a fixed
member order:

* ``manifest.json`` — ``{"format", "schema_version", "network", "provenance",
  "checksum"}``; ``network`` holds every parameter of ``docs/fixed_point.md``
  §1 except the weight values; ``checksum`` is ``sha256:<hex>`` over the
  canonical JSON of the manifest without its checksum, followed by every
  weight array's little-endian bytes in layer order;
* ``layer{l}.weight.npy`` — the input-major integer weights of layer ``l``
  (int8 when ``weight_bits <= 8``, else int16).

:func:`save_bundle` writes atomically (a temporary file in the target folder,
renamed over the target only when complete) and byte-identically for
identical content. :func:`load_bundle` validates everything and raises a
:class:`BundleError` naming the field — for every malformed file, whatever its
bytes: a bundle holds exactly ``manifest.json`` and the weight members its
layers name (no duplicates, nothing else); every member's size is bounded by
what it can legitimately hold (the manifest by :data:`MAX_MANIFEST_BYTES`, a
weight member by its ``.npy`` header plus its shape's weights, all layers
together by :data:`MAX_WEIGHTS`) and checked against the ZIP directory before
anything is decompressed; the manifest must be strict UTF-8 JSON (no NaN or
Infinity, no duplicate keys, at most :data:`MAX_MANIFEST_DEPTH` levels deep).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .fileio import atomic_write_bytes
from .fileio import format_bytes as _nbytes
from .kinds import KindError, Registry
from .params import ConvParams, LayerParams, NetworkParams, _check_int

__all__ = ["Bundle", "BundleError", "save_bundle", "load_bundle", "random_bundle", "resolve_bundle",
           "SCHEMA_VERSION", "SCHEMA_VERSIONS", "FORMAT_NAME", "pretrained_names", "pretrained_path", "MAX_WEIGHTS",
           "MAX_MANIFEST_BYTES", "MAX_MANIFEST_DEPTH", "LAYER_SCHEMA"]

#: The schema a bundle with a conv layer is written in; one of dense layers only is still written as
#: schema 1, so the bytes of every bundle written before conv layers existed stay the same.
SCHEMA_VERSION = 2
#: The schemas :func:`load_bundle` reads, and the layer kinds each allows.
SCHEMA_VERSIONS = {1: ("dense",), 2: ("dense", "conv")}
FORMAT_NAME = "sc_neurocore.bundle"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# "input_bits" is written only when it is not 8, so bundles without it keep their bytes.
_NETWORK_KEYS = {"sizes", "T", "encoding", "reset", "readout", "rate_seed", "layers", "input_bits"}
_LAYER_KEYS = {"weight_bits", "membrane_bits", "threshold", "leak_shift", "current_shift", "weights", "shape"}
_PRETRAINED_DIR = Path(__file__).with_name("pretrained")
_MANIFEST = "manifest.json"
#: Largest manifest.json accepted (the shipped ones are under 2 kB).
MAX_MANIFEST_BYTES = 1 << 20
#: Deepest nesting of JSON containers accepted in a manifest (a saved one has 4 levels plus its provenance).
MAX_MANIFEST_DEPTH = 32
#: Most weights a bundle may hold, all layers together: 2**28, i.e. 2 GiB as the int64 arrays the
#: golden model computes with (the shipped MNIST networks have about 100 000). Also the bound of
#: :func:`random_bundle`.
MAX_WEIGHTS = 1 << 28
#: Room for a weight member's .npy header (np.save writes 128 bytes for a 2-D integer array).
_NPY_HEADER_MAX = 4096
#: Bytes per weight in the widest integer dtype a weight member may use (int64).
_MAX_ITEMSIZE = 8


class BundleError(ValueError):
    """A bundle is malformed; the message names the field."""


@dataclass(frozen=True, eq=False)
class Bundle:
    """A network plus provenance (dataset, seed, measured accuracy, tool version, …)."""

    network: NetworkParams
    provenance: dict = field(default_factory=dict)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Bundle):
            return NotImplemented
        return self.network == other.network and self.provenance == other.provenance

    @property
    def T(self) -> int:
        return self.network.T


def _weight_dtype(bits: int):
    return np.int8 if bits <= 8 else np.int16


#: The bundle schema's view of the layer kinds: how a layer is written to and read from the manifest.
#: A layer object without a ``"kind"`` field is ``dense`` (the kind of every bundle written so far,
#: which therefore never records it: the bytes of existing bundles stay the same).
LAYER_SCHEMA: Registry = Registry("bundle schema", "layer")
_DEFAULT_KIND = "dense"


@LAYER_SCHEMA.register("dense")
class DenseSchema:
    """``{"weights": member, "shape": [n_in, n_out], "weight_bits", "membrane_bits", "threshold", ...}``."""

    keys = _LAYER_KEYS
    ints = ("weight_bits", "membrane_bits", "threshold", "leak_shift", "current_shift")

    @staticmethod
    def write(i: int, layer: LayerParams) -> tuple[dict, str, np.ndarray]:
        name = f"layer{i}.weight.npy"
        array = np.ascontiguousarray(layer.weight.astype(np.dtype(_weight_dtype(layer.weight_bits)).newbyteorder("<")))
        entry = {
            "weights": name, "shape": list(layer.weight.shape),
            "weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
            "threshold": layer.threshold, "leak_shift": layer.leak_shift, "current_shift": layer.current_shift,
        }
        return entry, name, array

    @staticmethod
    def check_shape(shape: list, where: str) -> None:
        if len(shape) != 2 or not all(_is_count(n) for n in shape):
            raise BundleError(f"{where}.shape must be [n_in, n_out] (two positive integers), not {_short(shape)}")

    @staticmethod
    def sizes_shape(sizes: list, i: int) -> list | None:
        """The weight shape ``network.sizes`` implies for layer ``i`` (``None``: it implies none)."""
        return [sizes[i], sizes[i + 1]]

    @classmethod
    def read(cls, ld: dict, where: str, w: np.ndarray) -> LayerParams:
        kw = {k: _req(ld, k, where, int) for k in cls.ints}
        try:
            return LayerParams(weight=w, **kw)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{where}: {e}") from None


@LAYER_SCHEMA.register("conv")
class ConvSchema(DenseSchema):
    """``{"kind": "conv", "weights", "shape": [C_out, C_in, K, K], "in_shape": [C, H, W], "stride", "padding",
    "pool", and the LIF fields of a dense layer}`` (schema 2)."""

    keys = _LAYER_KEYS | {"in_shape", "stride", "padding", "pool"}
    ints = DenseSchema.ints + ("stride", "padding", "pool")

    @staticmethod
    def write(i: int, layer: ConvParams) -> tuple[dict, str, np.ndarray]:
        entry, name, array = DenseSchema.write(i, layer)
        entry.update(kind="conv", in_shape=list(layer.in_shape), stride=layer.stride, padding=layer.padding,
                     pool=layer.pool)
        return entry, name, array

    @staticmethod
    def check_shape(shape: list, where: str) -> None:
        if len(shape) != 4 or not all(_is_count(n) for n in shape):
            raise BundleError(f"{where}.shape must be [C_out, C_in, K, K] (four positive integers), "
                              f"not {_short(shape)}")

    @staticmethod
    def sizes_shape(sizes: list, i: int) -> None:
        return None

    @classmethod
    def read(cls, ld: dict, where: str, w: np.ndarray) -> ConvParams:
        kw = {k: _req(ld, k, where, int) for k in cls.ints}
        in_shape = _req(ld, "in_shape", where, list)
        if len(in_shape) != 3 or not all(_is_count(n) for n in in_shape):
            raise BundleError(f"{where}.in_shape must be [C, H, W] (three positive integers), not {_short(in_shape)}")
        try:
            return ConvParams(weight=w, in_shape=tuple(in_shape), **kw)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{where}: {e}") from None


def _layer_schema(ld: dict, where: str):
    """The schema of the layer object ``ld`` (its ``"kind"``, ``dense`` when absent)."""
    kind = ld.get("kind", _DEFAULT_KIND)
    if not isinstance(kind, str):
        raise BundleError(f"{where}.kind must be str, not {_short(kind)}")
    try:
        return LAYER_SCHEMA.get(kind)
    except KindError as e:
        raise BundleError(f"{where}: unknown layer kind {_short(kind)} ({e})") from None


def _manifest_and_arrays(bundle: Bundle) -> tuple[dict, list[tuple[str, np.ndarray]]]:
    net = bundle.network
    layers, arrays = [], []
    for i, layer in enumerate(net.layers):
        entry, name, array = LAYER_SCHEMA(layer).write(i, layer)
        arrays.append((name, array))
        layers.append(entry)
    manifest = {
        "format": FORMAT_NAME,
        "schema_version": min(v for v, kinds in SCHEMA_VERSIONS.items() if all(layer.kind in kinds for layer in net.layers)),
        "network": {"sizes": list(net.sizes), "T": net.T, "encoding": net.encoding, "reset": net.reset,
                    "readout": net.readout, "rate_seed": net.rate_seed, "layers": layers,
                    **({"input_bits": net.input_bits} if net.input_bits != 8 else {})},
        "provenance": bundle.provenance,
    }
    return manifest, arrays


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _checksum(manifest: dict, arrays) -> str:
    h = hashlib.sha256()
    h.update(_canonical({k: v for k, v in manifest.items() if k != "checksum"}))
    for _, a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return "sha256:" + h.hexdigest()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _short(v, limit: int = 60) -> str:
    """``repr(v)``, cut to ``limit`` characters (a manifest field may be a megabyte long)."""
    try:
        return _cut(repr(v), limit)
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        return f"<a {type(v).__name__} too long to print>"


def _count(n: int) -> str:
    """An integer for messages; one from a product of manifest fields may have thousands of digits."""
    return str(n) if n < 10**30 else f"about 2**{n.bit_length() - 1}"


def bundle_bytes(bundle: Bundle) -> bytes:
    """The exact bytes :func:`save_bundle` writes."""
    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle must be a Bundle, not {type(bundle).__name__}")
    try:
        _canonical(bundle.provenance)
    except (TypeError, ValueError) as e:
        raise BundleError(f"provenance must be JSON-serialisable: {e}") from None
    manifest, arrays = _manifest_and_arrays(bundle)
    manifest["checksum"] = _checksum(manifest, arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        members = [("manifest.json", json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n")]
        members += [(name, _npy_bytes(a)) for name, a in arrays]
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def save_bundle(bundle: Bundle, path) -> Path:
    """Write ``bundle`` to ``path`` atomically and deterministically; returns the path."""
    data = bundle_bytes(bundle)
    atomic_write_bytes(path, data)
    return Path(path)


def _req(d: dict, key: str, where: str, types):
    if key not in d:
        raise BundleError(f"{where}.{key} is missing")
    v = d[key]
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise BundleError(f"{where}.{key} must be {getattr(types, '__name__', types)}, not {_short(v)}")
    if not isinstance(v, types):
        tname = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise BundleError(f"{where}.{key} must be {tname}, not {_short(v)}")
    return v


def _is_count(v) -> bool:
    """A positive JSON integer (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, bound: int, path: Path, what: str) -> bytes:
    """A member's bytes, refused from its declared size before anything is decompressed.

    ``bound`` is the most bytes the member can legitimately hold; at most ``bound + 1`` bytes are read
    in case the declared size lies (the CRC is checked when the read reaches the member's end).
    """
    name = info.filename
    if info.file_size > bound:
        raise BundleError(f"{path} is not a bundle: member {_short(name)} is {info.file_size} bytes "
                          f"({_nbytes(info.file_size)}), more than the {bound} bytes {what}")
    if info.flag_bits & 0x1:
        raise BundleError(f"{path} is not a bundle: member {_short(name)} is encrypted")
    try:
        with zf.open(info) as fh:
            data = fh.read(bound + 1)
    except Exception as e:  # noqa: BLE001 - zlib/bz2/lzma/CRC/unsupported-method errors: a corrupt member
        raise BundleError(f"{path} is corrupt (member {_short(name)}: {e})") from None
    if len(data) > bound or len(data) != info.file_size:
        raise BundleError(f"{path} is corrupt (member {_short(name)} holds {'more than ' if len(data) > bound else ''}"
                          f"{min(len(data), bound)} bytes but the archive directory says {info.file_size})")
    return data


def _reject_duplicate_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise BundleError(f"manifest.json is not valid: key {_short(k)} appears twice in one object")
        d[k] = v
    return d


def _reject_constant(name: str):
    raise BundleError(f"manifest.json is not valid JSON ({name} is not a JSON number)")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise BundleError(f"manifest.json is not valid JSON (number {_cut(text, 30)} is out of range)")
    return v


def _check_depth(obj, limit: int) -> None:
    stack = [(obj, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                raise BundleError(f"manifest.json is nested more than {limit} levels deep")
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))


def _parse_manifest(raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"manifest.json is not valid JSON (not UTF-8: {e})") from None
    try:
        manifest = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant,
                              parse_float=_finite_float)
    except BundleError:
        raise
    except RecursionError:
        raise BundleError(f"manifest.json is nested more than {MAX_MANIFEST_DEPTH} levels deep") from None
    except ValueError as e:
        raise BundleError(f"manifest.json is not valid JSON ({e})") from None
    _check_depth(manifest, MAX_MANIFEST_DEPTH)
    return manifest


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, n_max: int, path: Path, where: str,
              shape: list, implied: list | None) -> np.ndarray:
    """Read and check one weight member (``n_max``: the most weights the manifest allows it)."""
    name = info.filename
    data = _read_member(zf, info, _NPY_HEADER_MAX + n_max * _MAX_ITEMSIZE, path,
                        f"the {_count(n_max)} weights of {where} can need (as int64, with the .npy header)")
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            npy_shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            npy_shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except Exception as e:  # noqa: BLE001 - any header parse failure is a corrupt member
        raise BundleError(f"{where}: member {_short(name)} is not a valid .npy array ({e})") from None
    if dtype.kind != "i" or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise BundleError(f"{where}.weights must hold signed integers, not dtype {dtype}")
    if list(npy_shape) != shape:
        raise BundleError(f"{where}.weights has shape {list(npy_shape)} but shape says {_short(shape)}")
    if implied is not None and list(npy_shape) != implied:
        raise BundleError(f"{where}.weights has shape {list(npy_shape)} but network.sizes needs {implied}")
    need = math.prod(npy_shape) * dtype.itemsize
    have = len(data) - f.tell()
    if have != need:
        raise BundleError(f"{where}: member {_short(name)} is not a valid .npy array (shape {list(npy_shape)} {dtype} "
                          f"needs {need} bytes of data, it holds {have})")
    return np.frombuffer(data, dtype=dtype, count=math.prod(npy_shape), offset=f.tell()).reshape(
        npy_shape, order="F" if fortran else "C")


def load_bundle(path) -> Bundle:
    """Read and validate a bundle (see module docstring); raises :class:`BundleError` naming the field."""
    if isinstance(path, str) and not path:
        raise BundleError("bundle path is empty")
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise BundleError(f"{path} is a directory, not a bundle file")
        if path.exists():
            raise BundleError(f"{path} is not a regular file, so not a bundle")
        raise BundleError(f"bundle file not found: {path}")
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise BundleError(f"cannot read {path}: {e.strerror or e}") from None
    with fh:
        try:
            zf = zipfile.ZipFile(fh)
        except NotImplementedError as e:
            raise BundleError(f"{path} is not a bundle (it needs an unsupported ZIP feature: {e})") from None
        except UnicodeDecodeError:
            raise BundleError(f"{path} is not a bundle (a member name is not valid UTF-8)") from None
        except Exception as e:  # noqa: BLE001 - BadZipFile, struct/seek/overflow errors of a corrupt directory
            raise BundleError(f"{path} is not a bundle (not a valid archive: {e})") from None
        with zf:
            return _load(zf, path)


def _load(zf: zipfile.ZipFile, path: Path) -> Bundle:
    infos = {}
    for info in zf.infolist():
        if info.filename in infos:
            raise BundleError(f"{path} is not a bundle: member {_short(info.filename)} appears twice")
        infos[info.filename] = info
    if _MANIFEST not in infos:
        raise BundleError("manifest.json is missing from the archive")
    manifest = _parse_manifest(_read_member(zf, infos[_MANIFEST], MAX_MANIFEST_BYTES, path,
                                            "a manifest may hold"))
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json must hold a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"format must be {FORMAT_NAME!r}, not {_short(manifest.get('format'))}")
    version = manifest.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in SCHEMA_VERSIONS:
        known = " or ".join(map(str, SCHEMA_VERSIONS))
        raise BundleError(f"schema_version must be {known}, not {_short(version)} "
                          "(written by another sc_neurocore version?)")
    net = _req(manifest, "network", "manifest", dict)
    provenance = _req(manifest, "provenance", "manifest", dict)
    checksum = _req(manifest, "checksum", "manifest", str)
    unknown = set(net) - _NETWORK_KEYS
    if unknown:
        raise BundleError(f"network has unknown field(s): {_cut(', '.join(sorted(map(str, unknown))), 200)}")
    layer_dicts = _req(net, "layers", "network", list)
    if not layer_dicts:
        raise BundleError("network.layers must not be empty")
    sizes = _req(net, "sizes", "network", list)
    if len(sizes) != len(layer_dicts) + 1:
        raise BundleError(f"network.sizes has {len(sizes)} entries but there are {len(layer_dicts)} layers")
    if not all(_is_count(n) for n in sizes):
        raise BundleError(f"network.sizes must hold positive integers, not {_short(sizes)}")
    # Everything a weight member's size depends on is checked before any of them is read.
    members, total = [], 0
    used: dict[str, int] = {}
    for i, ld in enumerate(layer_dicts):
        where = f"network.layers[{i}]"
        if not isinstance(ld, dict):
            raise BundleError(f"{where} must be an object")
        schema = _layer_schema(ld, where)
        kind = ld.get("kind", _DEFAULT_KIND)
        if kind not in SCHEMA_VERSIONS[version]:
            raise BundleError(f"{where}: the {kind} layer kind needs schema_version "
                              f"{min(v for v, k in SCHEMA_VERSIONS.items() if kind in k)}, not {version}")
        unknown = set(ld) - schema.keys - {"kind"}
        if unknown:
            raise BundleError(f"{where} has unknown field(s): {_cut(', '.join(sorted(map(str, unknown))), 200)}")
        name = _req(ld, "weights", where, str)
        shape = _req(ld, "shape", where, list)
        schema.check_shape(shape, where)
        if name == _MANIFEST:
            raise BundleError(f"{where}.weights must name a weight member, not {_MANIFEST}")
        if name not in infos:
            raise BundleError(f"{where}: member {_short(name)} is missing from the archive")
        if name in used:
            raise BundleError(f"{where}.weights names member {_short(name)}, which layers[{used[name]}] already uses")
        used[name] = i
        implied = schema.sizes_shape(sizes, i)
        n_max = max(math.prod(shape), math.prod(implied) if implied else 0)
        total += n_max
        if total > MAX_WEIGHTS:
            raise BundleError(f"network has more than {MAX_WEIGHTS} weights (the limit; {where} alone declares "
                              f"{_count(n_max)}, {_nbytes(n_max * 8)} as int64)")
        members.append((where, ld, infos[name], shape, n_max, schema))
    extra = [n for n in infos if n != _MANIFEST and n not in used]
    if extra:
        raise BundleError(f"{path} is not a bundle: unexpected member(s) {_cut(', '.join(map(_short, extra)), 200)} "
                          "(a bundle holds manifest.json and the weight files its layers name)")
    arrays = []
    layers = []
    for i, (where, ld, info, shape, n_max, schema) in enumerate(members):
        w = _read_npy(zf, info, n_max, path, where, shape, schema.sizes_shape(sizes, i))
        arrays.append((info.filename, w))
        layers.append(schema.read(ld, where, w))
    expected = _checksum(manifest, arrays)
    if checksum != expected:
        raise BundleError(f"checksum mismatch: manifest says {_cut(checksum, 80)}, content gives {expected} "
                          "(corrupt bundle?)")
    try:
        network = NetworkParams(
            tuple(layers), _req(net, "T", "network", int), _req(net, "encoding", "network", str),
            _req(net, "reset", "network", str), _req(net, "readout", "network", str),
            _req(net, "rate_seed", "network", int),
            _req(net, "input_bits", "network", int) if "input_bits" in net else 8)
    except (TypeError, ValueError) as e:
        raise BundleError(f"network: {e}") from None
    if list(network.sizes) != sizes:
        raise BundleError(f"network.sizes is {_short(sizes)} but the layers give {list(network.sizes)}")
    return Bundle(network, provenance)


def random_bundle(sizes=(784, 128, 10), T: int = 4, *, weight_bits: int = 8, seed: int = 0,
                  encoding: str = "direct", reset: str = "subtract", readout: str = "membrane",
                  membrane_bits: int = 16, leak_shift: int = 3, input_bits: int = 8) -> Bundle:
    """A bundle with random integer weights and thresholds scaled so layers fire at a moderate rate.

    Every argument is checked before anything is allocated (the parameters by :mod:`.params`, with its
    messages); more than :data:`MAX_WEIGHTS` weights are refused with the memory they would need.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise ValueError(f"sizes must be a sequence of at least 2 layer sizes, not {_short(sizes)}")
    sizes = tuple(_check_int(f"sizes[{i}]", n, 1, MAX_WEIGHTS) for i, n in enumerate(sizes))
    # The parameters' own checks (ranges, types, choices) on a 1x1 probe layer, before any allocation.
    probe = LayerParams(np.zeros((1, 1), dtype=np.int64), weight_bits, 1, leak_shift, 0, membrane_bits)
    probe_net = NetworkParams((probe,), T, encoding, reset, readout, input_bits=input_bits)
    seed = _check_int("seed", seed, 0, (1 << 64) - 1)
    n_weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    if n_weights > MAX_WEIGHTS:
        raise ValueError(
            f"random_bundle with sizes {'-'.join(map(str, sizes))} needs {_nbytes(8 * n_weights)} of memory "
            f"({n_weights} weights, drawn as int64); the limit is {MAX_WEIGHTS} weights ({_nbytes(8 * MAX_WEIGHTS)})")
    rng = np.random.default_rng(seed)
    layers = []
    wmax = probe.weight_format.max
    mmax = probe.membrane_format.max
    for i in range(len(sizes) - 1):
        n_in, n_out = sizes[i], sizes[i + 1]
        w = rng.integers(-wmax, wmax + 1, size=(n_in, n_out), dtype=np.int64)
        x_max = probe_net.input_max(0) if i == 0 else 1   # dense layers: a spike
        # Typical |current| ~ sqrt(n_in * active) * wmax * x_max / 2; scale it into the membrane range.
        typical = max(1.0, np.sqrt(n_in * 0.3) * wmax * x_max * 0.6)
        shift = max(0, int(np.ceil(np.log2(typical / (mmax / 16)))))
        shift = min(shift, 31)
        thr = int(max(1, min(mmax, typical / (1 << shift))))
        layers.append(LayerParams(w, weight_bits, thr, leak_shift, shift, membrane_bits))
    net = NetworkParams(tuple(layers), T, encoding, reset, readout, input_bits=input_bits)
    return Bundle(net, {"kind": "random", "seed": seed, "tool_version": __version__})


def pretrained_names() -> list[str]:
    """Names accepted by ``--pretrained`` (files shipped in ``sc_neurocore/pretrained``)."""
    return sorted(p.name[:-len(".scnb")] for p in _PRETRAINED_DIR.glob("*.scnb"))


def pretrained_path(name: str) -> Path:
    """The file of a shipped bundle; ``name`` must be one of :func:`pretrained_names` (never a path)."""
    names = pretrained_names()
    if not isinstance(name, str) or name not in names:
        avail = ", ".join(names) or "none installed"
        raise BundleError(f"unknown pretrained bundle {_short(name)} (available: {avail})")
    return _PRETRAINED_DIR / f"{name}.scnb"


def resolve_bundle(path=None, pretrained: str | None = None) -> Bundle:
    """Load a bundle from a path or a pretrained name (exactly one of them)."""
    if (path is None) == (pretrained is None):
        raise BundleError("give either a bundle path or --pretrained NAME, not both or neither")
    return load_bundle(pretrained_path(pretrained) if pretrained is not None else path)
