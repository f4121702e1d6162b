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
:class:`BundleError` naming the field.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .fileio import atomic_write_bytes
from .params import LayerParams, NetworkParams

__all__ = ["Bundle", "BundleError", "save_bundle", "load_bundle", "random_bundle", "resolve_bundle",
           "SCHEMA_VERSION", "FORMAT_NAME", "pretrained_names", "pretrained_path"]

SCHEMA_VERSION = 1
FORMAT_NAME = "sc_neurocore.bundle"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# "input_bits" is written only when it is not 8, so bundles without it keep their bytes.
_NETWORK_KEYS = {"sizes", "T", "encoding", "reset", "readout", "rate_seed", "layers", "input_bits"}
_LAYER_KEYS = {"weight_bits", "membrane_bits", "threshold", "leak_shift", "current_shift", "weights", "shape"}
_PRETRAINED_DIR = Path(__file__).with_name("pretrained")


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


def _manifest_and_arrays(bundle: Bundle) -> tuple[dict, list[tuple[str, np.ndarray]]]:
    net = bundle.network
    layers, arrays = [], []
    for i, layer in enumerate(net.layers):
        name = f"layer{i}.weight.npy"
        arrays.append((name, np.ascontiguousarray(layer.weight.astype(np.dtype(_weight_dtype(layer.weight_bits)).newbyteorder("<")))))
        layers.append({
            "weights": name, "shape": list(layer.weight.shape),
            "weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
            "threshold": layer.threshold, "leak_shift": layer.leak_shift, "current_shift": layer.current_shift,
        })
    manifest = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
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
        raise BundleError(f"{where}.{key} must be {getattr(types, '__name__', types)}, not {v!r}")
    if not isinstance(v, types):
        tname = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise BundleError(f"{where}.{key} must be {tname}, not {v!r}")
    return v


def _read_npy(zf: zipfile.ZipFile, name: str, where: str) -> np.ndarray:
    try:
        data = zf.read(name)
    except KeyError:
        raise BundleError(f"{where}: member {name!r} is missing from the archive") from None
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt member
        raise BundleError(f"{where}: member {name!r} is not a valid .npy array ({e})") from None


def load_bundle(path) -> Bundle:
    """Read and validate a bundle (see module docstring); raises :class:`BundleError` naming the field."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"bundle file not found: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BundleError(f"{path} is not a bundle (not a valid archive: {e})") from None
    with zf:
        try:
            bad = zf.testzip()
        except Exception as e:  # noqa: BLE001 - zlib/CRC errors on corrupt members
            raise BundleError(f"{path} is corrupt ({e})") from None
        if bad is not None:
            raise BundleError(f"{path} is corrupt (CRC mismatch in member {bad!r})")
        try:
            manifest = json.loads(zf.read("manifest.json"))
        except KeyError:
            raise BundleError("manifest.json is missing from the archive") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise BundleError(f"manifest.json is not valid JSON ({e})") from None
        if not isinstance(manifest, dict):
            raise BundleError("manifest.json must hold a JSON object")
        if manifest.get("format") != FORMAT_NAME:
            raise BundleError(f"format must be {FORMAT_NAME!r}, not {manifest.get('format')!r}")
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"schema_version must be {SCHEMA_VERSION}, not {version!r} (written by another sc_neurocore version?)")
        net = _req(manifest, "network", "manifest", dict)
        provenance = _req(manifest, "provenance", "manifest", dict)
        checksum = _req(manifest, "checksum", "manifest", str)
        unknown = set(net) - _NETWORK_KEYS
        if unknown:
            raise BundleError(f"network has unknown field(s): {', '.join(sorted(unknown))}")
        layer_dicts = _req(net, "layers", "network", list)
        if not layer_dicts:
            raise BundleError("network.layers must not be empty")
        sizes = _req(net, "sizes", "network", list)
        if len(sizes) != len(layer_dicts) + 1:
            raise BundleError(f"network.sizes has {len(sizes)} entries but there are {len(layer_dicts)} layers")
        arrays = []
        layers = []
        for i, ld in enumerate(layer_dicts):
            where = f"network.layers[{i}]"
            if not isinstance(ld, dict):
                raise BundleError(f"{where} must be an object")
            unknown = set(ld) - _LAYER_KEYS
            if unknown:
                raise BundleError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
            name = _req(ld, "weights", where, str)
            shape = _req(ld, "shape", where, list)
            w = _read_npy(zf, name, where)
            arrays.append((name, w))
            if w.dtype.kind not in "i":
                raise BundleError(f"{where}.weights must hold signed integers, not dtype {w.dtype}")
            if list(w.shape) != shape:
                raise BundleError(f"{where}.weights has shape {list(w.shape)} but shape says {shape}")
            if list(w.shape) != [sizes[i], sizes[i + 1]]:
                raise BundleError(
                    f"{where}.weights has shape {list(w.shape)} but network.sizes needs {[sizes[i], sizes[i + 1]]}")
            kw = {k: _req(ld, k, where, int) for k in
                  ("weight_bits", "membrane_bits", "threshold", "leak_shift", "current_shift")}
            try:
                layers.append(LayerParams(weight=w, **kw))
            except (TypeError, ValueError) as e:
                raise BundleError(f"{where}: {e}") from None
        expected = _checksum(manifest, arrays)
        if checksum != expected:
            raise BundleError(f"checksum mismatch: manifest says {checksum}, content gives {expected} (corrupt bundle?)")
        try:
            network = NetworkParams(
                tuple(layers), _req(net, "T", "network", int), _req(net, "encoding", "network", str),
                _req(net, "reset", "network", str), _req(net, "readout", "network", str),
                _req(net, "rate_seed", "network", int),
                _req(net, "input_bits", "network", int) if "input_bits" in net else 8)
        except (TypeError, ValueError) as e:
            raise BundleError(f"network: {e}") from None
    return Bundle(network, provenance)


def random_bundle(sizes=(784, 128, 10), T: int = 4, *, weight_bits: int = 8, seed: int = 0,
                  encoding: str = "direct", reset: str = "subtract", readout: str = "membrane",
                  membrane_bits: int = 16, leak_shift: int = 3, input_bits: int = 8) -> Bundle:
    """A bundle with random integer weights and thresholds scaled so layers fire at a moderate rate."""
    rng = np.random.default_rng(seed)
    layers = []
    wmax = (1 << (weight_bits - 1)) - 1
    for i in range(len(sizes) - 1):
        n_in, n_out = sizes[i], sizes[i + 1]
        w = rng.integers(-wmax, wmax + 1, size=(n_in, n_out), dtype=np.int64)
        x_max = (1 << input_bits) - 1 if (i == 0 and encoding == "direct") else 1
        # Typical |current| ~ sqrt(n_in * active) * wmax * x_max / 2; scale it into the membrane range.
        typical = max(1.0, np.sqrt(n_in * 0.3) * wmax * x_max * 0.6)
        mmax = (1 << (membrane_bits - 1)) - 1
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
    p = _PRETRAINED_DIR / f"{name}.scnb"
    if not p.is_file():
        avail = ", ".join(pretrained_names()) or "none installed"
        raise BundleError(f"unknown pretrained bundle {name!r} (available: {avail})")
    return p


def resolve_bundle(path=None, pretrained: str | None = None) -> Bundle:
    """Load a bundle from a path or a pretrained name (exactly one of them)."""
    if (path is None) == (pretrained is None):
        raise BundleError("give either a bundle path or --pretrained NAME, not both or neither")
    return load_bundle(pretrained_path(pretrained) if pretrained else path)
