"""The integer paths give the same bytes on every machine: pinned digests (docs/reproducibility.md).

Bundle bytes, golden-model scores, latency-model cycle counts and generated
Verilog depend only on integers, the bundle format and the pinned generator
(Amaranth + its bundled Yosys), never on the CPU, the BLAS, the thread count
or torch. The digests below were recorded once, on the machine that made the
shipped bundles; a machine (or a change) that produces anything else fails
here loudly. Training is reproducible only per machine and is not pinned here.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sc_neurocore.bundle import bundle_bytes, load_bundle, pretrained_path

#: sha256 prefixes: (bundle file, golden scores, latency-model cycles) on INPUTS, default core options.
DIGESTS = {
    "mnist-t1": ("000c29629906331b", "bd2879411eec7d7e", "0d712b8b1e0a2fe9"),
    "mnist-t2": ("98bc5a34e529135d", "0477e62cf0c50528", "9d77f09030653741"),
    "mnist-t4": ("3014f7308a10e8cb", "d9432b94923dbdc8", "6cbf3cd9b42e1745"),
    "mnist-t4-lite": ("de0badfbdba67689", "c4a0e585433859a1", "1d301b07f2b9e204"),
    "mnist-t8": ("21134912be92f621", "8f3c415ed8a73b7f", "7f79818a14b47142"),
    "mnist-t32": ("0add2a8d18f2584d", "03ac4b9c7c88236c", "109b884da4f7eb9e"),
}
#: sha256 prefixes of the generated Verilog (the bytes `sc-neurocore verilog` writes).
VERILOG = {
    # re-pinned when the update start stopped clearing the group counter (was 99b7c2b65861087e / b45baf6c6d3157cf;
    # before the input chunker's end-of-image clear was removed, 1ea090b5cfcafa47 / 3ad80bfa66151b06)
    ("mnist-t4", (), ()): "adf81340c50b5ea9",
    ("mnist-t4-lite", (16, 10), (8, 8)): "c89af6525583c490",   # its ECP5-25F configuration
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _inputs() -> np.ndarray:
    """64 images from SHAKE-256 (the same bytes on every platform and NumPy), the first all 0, the second all 255."""
    px = np.frombuffer(hashlib.shake_256(b"sc_neurocore reproducibility inputs").digest(64 * 784), np.uint8)
    px = px.reshape(64, 784).copy()
    px[0], px[1] = 0, 255
    return px


def _int_bytes(a) -> bytes:
    return np.ascontiguousarray(a, dtype="<i8").tobytes()


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_integer_paths_are_pinned(name):
    from sc_neurocore.golden import infer
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.latency import image_cycles

    path = pretrained_path(name)
    want_file, want_scores, want_cycles = DIGESTS[name]
    data = path.read_bytes()
    assert _sha(data) == want_file
    bundle = load_bundle(path)
    assert bundle_bytes(bundle) == data  # load + save is the identity on bytes
    x = _inputs()
    assert _sha(_int_bytes(infer(bundle.network, x).scores)) == want_scores
    assert _sha(_int_bytes(image_cycles(bundle.network, CoreConfig(), x))) == want_cycles


@pytest.mark.parametrize("name, lanes, events", sorted(VERILOG))
def test_verilog_bytes_are_pinned(name, lanes, events):
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.export import verilog_text

    cfg = CoreConfig(lanes=lanes or None, events=events or None)
    text = verilog_text(load_bundle(pretrained_path(name)).network, cfg)
    assert _sha(text.encode()) == VERILOG[(name, lanes, events)]


def test_inputs_are_the_recorded_ones():
    x = _inputs()
    assert x.shape == (64, 784) and x[0].max() == 0 and x[1].min() == 255
    assert _sha(x.tobytes()) == "9a813ec73e7cb36d"
