"""Bundle round-trip, determinism, atomic writes and every validation error."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

from sc_neurocore import bundle as bmod
from sc_neurocore import fileio
from sc_neurocore.bundle import (Bundle, BundleError, bundle_bytes, load_bundle, random_bundle, resolve_bundle,
                                 save_bundle)
from sc_neurocore.params import LayerParams, NetworkParams


@pytest.fixture
def small():
    return random_bundle((12, 6, 3), T=5, weight_bits=6, seed=1, encoding="rate", reset="zero",
                         readout="spike_count")


def test_round_trip(tmp_path, small):
    p = save_bundle(small, tmp_path / "a.scnb")
    back = load_bundle(p)
    assert back == small
    assert back.network.layers[0].weight.dtype == np.int64
    assert np.array_equal(back.network.layers[1].weight, small.network.layers[1].weight)
    with zipfile.ZipFile(p) as zf:
        assert zf.namelist() == ["manifest.json", "layer0.weight.npy", "layer1.weight.npy"]
        assert np.load(io.BytesIO(zf.read("layer0.weight.npy"))).dtype == np.int8


def test_wide_weights_stored_as_int16(tmp_path):
    b = random_bundle((5, 2), T=1, weight_bits=12, seed=0)
    with zipfile.ZipFile(save_bundle(b, tmp_path / "w.scnb")) as zf:
        assert np.load(io.BytesIO(zf.read("layer0.weight.npy"))).dtype == np.int16
    assert load_bundle(tmp_path / "w.scnb") == b


def test_identical_content_identical_bytes(tmp_path, small):
    save_bundle(small, tmp_path / "a.scnb")
    again = random_bundle((12, 6, 3), T=5, weight_bits=6, seed=1, encoding="rate", reset="zero",
                          readout="spike_count")
    save_bundle(again, tmp_path / "b.scnb")
    assert (tmp_path / "a.scnb").read_bytes() == (tmp_path / "b.scnb").read_bytes()
    other = random_bundle((12, 6, 3), T=5, weight_bits=6, seed=2, encoding="rate", reset="zero",
                          readout="spike_count")
    assert bundle_bytes(other) != bundle_bytes(small)


def test_save_is_atomic_on_failure(tmp_path, small, monkeypatch):
    target = tmp_path / "x.scnb"
    save_bundle(small, target)
    before = target.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(random_bundle((3, 2), T=1), target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["x.scnb"]  # no temporary left behind


def test_unserialisable_provenance_refused(tmp_path):
    b = Bundle(random_bundle((3, 2), T=1).network, {"x": object()})
    with pytest.raises(BundleError, match="provenance must be JSON-serialisable"):
        save_bundle(b, tmp_path / "p.scnb")
    assert not (tmp_path / "p.scnb").exists()


# -- corruption ----------------------------------------------------------

def rewrite(path, manifest_fn=None, member=None, data=None, fix_checksum=False):
    """Rewrite a bundle with an edited manifest or member; optionally recompute the checksum."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    m = json.loads(members["manifest.json"])
    if manifest_fn:
        manifest_fn(m)
    if member:
        members[member] = data
    if fix_checksum:
        arrays = [(ld["weights"], np.load(io.BytesIO(members[ld["weights"]])))
                  for ld in m["network"]["layers"] if ld.get("weights") in members]
        m["checksum"] = bmod._checksum(m, arrays)
    members["manifest.json"] = json.dumps(m).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)


def npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path, small):
    return save_bundle(small, tmp_path / "c.scnb")


def test_flipped_byte_refused(saved):
    raw = bytearray(saved.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    saved.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="corrupt|not a bundle|checksum"):
        load_bundle(saved)


def test_truncated_refused(saved):
    saved.write_bytes(saved.read_bytes()[:200])
    with pytest.raises(BundleError, match="not a bundle"):
        load_bundle(saved)


def test_missing_file(tmp_path):
    with pytest.raises(BundleError, match="bundle file not found"):
        load_bundle(tmp_path / "none.scnb")


def test_wrong_version_refused(saved):
    rewrite(saved, lambda m: m.update(schema_version=99))
    with pytest.raises(BundleError, match="schema_version must be 1, not 99"):
        load_bundle(saved)


def test_wrong_format_refused(saved):
    rewrite(saved, lambda m: m.update(format="zip"))
    with pytest.raises(BundleError, match="format must be 'sc_neurocore.bundle'"):
        load_bundle(saved)


def test_weight_one_bit_too_wide_refused(saved):
    # weight_bits=6 allows -31..31; 32 needs a 7th bit. Checksum fixed so only the range check can catch it.
    def edit(m):
        pass
    with zipfile.ZipFile(saved) as zf:
        w = np.load(io.BytesIO(zf.read("layer0.weight.npy")))
    w = w.copy()
    w[0, 0] = 32
    rewrite(saved, edit, "layer0.weight.npy", npy(w), fix_checksum=True)
    with pytest.raises(BundleError, match=r"layers\[0\].*weight values must fit weight_bits=6 \(range -31..31\)"):
        load_bundle(saved)


def test_checksum_mismatch_refused(saved):
    rewrite(saved, lambda m: m["network"]["layers"][0].update(threshold=m["network"]["layers"][0]["threshold"] + 1))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(saved)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["network"].update(T=0), r"network: T must be between 1 and 65535, not 0"),
    (lambda m: m["network"].update(encoding="morse"), r"network: encoding must be one of 'direct', 'rate', not 'morse'"),
    (lambda m: m["network"].update(reset="none"), r"reset must be one of"),
    (lambda m: m["network"].update(readout="max"), r"readout must be one of"),
    (lambda m: m["network"].update(rate_seed=0), r"rate_seed must be between 1 and 65535"),
    (lambda m: m["network"].update(input_bits=0), r"network: input_bits must be between 1 and 8, not 0"),
    (lambda m: m["network"].update(input_bits="1"), r"network.input_bits must be int, not '1'"),
    (lambda m: m["network"].update(T="4"), r"network.T must be int, not '4'"),
    (lambda m: m["network"].update(sizes=[12, 6]), r"network.sizes has 2 entries but there are 2 layers"),
    (lambda m: m["network"].update(sizes=[12, 7, 3]), r"layers\[0\].weights has shape \[12, 6\] but network.sizes needs \[12, 7\]"),
    (lambda m: m["network"].update(extra=1), r"network has unknown field\(s\): extra"),
    (lambda m: m["network"]["layers"][0].update(threshold=0), r"layers\[0\]: threshold must be between 1 and"),
    (lambda m: m["network"]["layers"][0].update(leak_shift=-1), r"leak_shift must be between 0 and"),
    (lambda m: m["network"]["layers"][0].update(current_shift=40), r"current_shift must be between 0 and 31"),
    (lambda m: m["network"]["layers"][0].update(membrane_bits=64), r"membrane_bits must be between 4 and 32"),
    (lambda m: m["network"]["layers"][0].update(weight_bits=1), r"weight_bits must be between 2 and 16"),
    (lambda m: m["network"]["layers"][0].pop("threshold"), r"network.layers\[0\].threshold is missing"),
    (lambda m: m["network"]["layers"][0].update(shape=[1, 1]), r"weights has shape \[12, 6\] but shape says \[1, 1\]"),
    (lambda m: m["network"]["layers"][1].update(weights="nope.npy"), r"member 'nope.npy' is missing"),
    (lambda m: m.pop("provenance"), r"manifest.provenance is missing"),
])
def test_field_errors_named(saved, edit, message):
    rewrite(saved, edit, fix_checksum=True)
    with pytest.raises(BundleError, match=message):
        load_bundle(saved)


def test_float_weights_refused(saved):
    rewrite(saved, None, "layer0.weight.npy", npy(np.zeros((12, 6), dtype=np.float32)), fix_checksum=True)
    with pytest.raises(BundleError, match="must hold signed integers, not dtype float32"):
        load_bundle(saved)


def test_bad_json_refused(saved):
    with zipfile.ZipFile(saved) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["manifest.json"] = b"{not json"
    with zipfile.ZipFile(saved, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    with pytest.raises(BundleError, match="manifest.json is not valid JSON"):
        load_bundle(saved)


def test_resolve_bundle_arguments(tmp_path, small):
    with pytest.raises(BundleError, match="either a bundle path or --pretrained"):
        resolve_bundle(None, None)
    with pytest.raises(BundleError, match="unknown pretrained bundle 'nope'"):
        resolve_bundle(None, "nope")
    p = save_bundle(small, tmp_path / "r.scnb")
    assert resolve_bundle(p) == small


def test_params_validation_messages():
    w = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(TypeError, match="weight must have an integer dtype, not float64"):
        LayerParams(np.zeros((2, 2)), 4, 1, 0)
    with pytest.raises(ValueError, match=r"weight must be a non-empty 2-D"):
        LayerParams(np.zeros((2,), dtype=np.int64), 4, 1, 0)
    with pytest.raises(TypeError, match="threshold must be an integer, not 1.5"):
        LayerParams(w, 4, 1.5, 0)
    with pytest.raises(ValueError, match=r"layers\[1\] has 3 inputs but layers\[0\] has 2 outputs"):
        NetworkParams((LayerParams(w, 4, 1, 0), LayerParams(np.zeros((3, 1), dtype=np.int64), 4, 1, 0)), 1)
    with pytest.raises(ValueError, match="layers must be a non-empty sequence"):
        NetworkParams((), 1)
    with pytest.raises(TypeError, match=r"layers\[0\] must be a LayerParams, not str"):
        NetworkParams(("x",), 1)


def test_input_bits_round_trip_and_absent_means_8(tmp_path, small):
    net = small.network
    one = Bundle(NetworkParams(net.layers, net.T, "direct", net.reset, net.readout, net.rate_seed, 1),
                 small.provenance)
    p = save_bundle(one, tmp_path / "one.scnb")
    assert load_bundle(p).network.input_bits == 1
    assert load_bundle(p) == one
    # An 8-bit network writes no input_bits field, so bundles from before the field keep their bytes.
    q = save_bundle(small, tmp_path / "eight.scnb")
    with zipfile.ZipFile(q) as zf:
        assert "input_bits" not in json.loads(zf.read("manifest.json"))["network"]
    with zipfile.ZipFile(p) as zf:
        assert json.loads(zf.read("manifest.json"))["network"]["input_bits"] == 1
    assert load_bundle(q).network.input_bits == 8
