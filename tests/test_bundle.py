"""Bundle round-trip, determinism, atomic writes and every validation error."""

import io
import json
import os
import re
import struct
import zipfile

import numpy as np
import pytest

from sc_neurocore import bundle as bmod
from sc_neurocore import fileio
from sc_neurocore.bundle import (Bundle, BundleError, bundle_bytes, load_bundle, random_bundle, resolve_bundle,
                                 save_bundle)
from sc_neurocore.params import NetworkParams


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
    with pytest.raises(BundleError, match="schema_version must be 1 or 2, not 99"):
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
    (lambda m: m["network"].update(encoding="morse"), r"network: encoding must be one of 'direct', 'rate', 'events', not 'morse'"),
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
    (lambda m: m["network"]["layers"][1].update(kind="lstm"), r"network.layers\[1\]: unknown layer kind 'lstm' "
                                                              r"\(the bundle schema has no implementation"),
    (lambda m: m["network"]["layers"][1].update(kind="conv"), r"network.layers\[1\]: the conv layer kind needs "
                                                              r"schema_version 2, not 1"),
    (lambda m: m["network"]["layers"][0].update(kind=3), r"network.layers\[0\].kind must be str, not 3"),
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


# -- malformed archives (issue 12): every one is a BundleError, nothing is read unbounded -------------

def zip_members(members, method=zipfile.ZIP_DEFLATED):
    """A ZIP of (name, bytes) members, duplicates allowed."""
    import warnings
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def members_of(path):
    with zipfile.ZipFile(path) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def central_headers(raw):
    i = raw.find(b"PK\x01\x02")
    while i >= 0:
        yield i
        i = raw.find(b"PK\x01\x02", i + 1)


def set_central(raw: bytes, offset: int, fmt: str, value, member: int = 0) -> bytes:
    """Set a field of the central-directory header of member number ``member``."""
    raw = bytearray(raw)
    at = list(central_headers(raw))[member] + offset
    raw[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(raw)


def refused(path, message):
    """load_bundle raises BundleError matching ``message`` and leaves the file as it was."""
    before = path.read_bytes() if path.is_file() else None
    listing = sorted(os.listdir(path.parent))
    with pytest.raises(BundleError, match=message):
        load_bundle(path)
    assert (path.read_bytes() if path.is_file() else None) == before
    assert sorted(os.listdir(path.parent)) == listing


def test_unsupported_zip_version_refused(saved):
    # Was NotImplementedError("zip file version 16.9") from zipfile.ZipFile().
    saved.write_bytes(set_central(saved.read_bytes(), 6, "<H", 169))
    refused(saved, r"is not a bundle \(it needs an unsupported ZIP feature: zip file version 16.9\)")


def test_unsupported_compression_names_the_member(saved):
    saved.write_bytes(set_central(saved.read_bytes(), 10, "<H", 99))
    refused(saved, r"is corrupt \(member 'manifest.json': That compression method is not supported\)")


def test_non_utf8_member_name_refused(tmp_path):
    # Was UnicodeDecodeError: a name that is not UTF-8 in a header with the UTF-8 flag (bit 11) set.
    raw = bytearray(zip_members([("manifest.json", b"{}")]))
    for sig, flags, name in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        i = raw.find(sig)
        raw[i + flags + 1] |= 0x08
        raw[i + name] = 0xFF
    p = tmp_path / "u.scnb"
    p.write_bytes(bytes(raw))
    refused(p, r"is not a bundle \(a member name is not valid UTF-8\)")


def test_deep_manifest_refused(tmp_path):
    # Was RecursionError from json.loads.
    p = tmp_path / "deep.scnb"
    p.write_bytes(zip_members([("manifest.json", b"[" * 100_000 + b"]" * 100_000)]))
    refused(p, r"manifest.json is nested more than 32 levels deep")


def test_deep_provenance_refused(saved):
    # 40 levels parse fine but could not be re-serialised safely everywhere: refused at a fixed depth.
    def deep(m):
        v = {}
        for _ in range(40):
            v = {"x": v}
        m["provenance"]["deep"] = v
    rewrite(saved, deep, fix_checksum=True)
    refused(saved, r"manifest.json is nested more than 32 levels deep")


@pytest.mark.parametrize("literal, message", [
    ("NaN", r"manifest.json is not valid JSON \(NaN is not a JSON number\)"),
    ("-Infinity", r"manifest.json is not valid JSON \(-Infinity is not a JSON number\)"),
    ("1e999", r"manifest.json is not valid JSON \(number 1e999 is out of range\)"),
])
def test_non_finite_numbers_refused(saved, literal, message):
    # NaN in the provenance used to escape as ValueError from the checksum's canonical JSON.
    members = dict(members_of(saved))
    text = members["manifest.json"].decode().replace('"kind": "random"', f'"kind": {literal}')
    assert literal in text
    members["manifest.json"] = text.encode()
    saved.write_bytes(zip_members(members.items()))
    refused(saved, message)


def test_duplicate_json_key_refused(saved):
    members = dict(members_of(saved))
    members["manifest.json"] = members["manifest.json"].replace(b'"kind": "random"', b'"kind": "random", "kind": 1')
    saved.write_bytes(zip_members(members.items()))
    refused(saved, r"manifest.json is not valid: key 'kind' appears twice in one object")


def test_manifest_not_utf8_refused(saved):
    members = dict(members_of(saved))
    members["manifest.json"] = members["manifest.json"].decode().encode("utf-16")
    saved.write_bytes(zip_members(members.items()))
    refused(saved, r"manifest.json is not valid JSON \(not UTF-8")


def test_two_manifests_refused(saved):
    members = members_of(saved)
    saved.write_bytes(zip_members(members + [("manifest.json", b"{}")]))
    refused(saved, r"is not a bundle: member 'manifest.json' appears twice")


def test_duplicate_weight_member_refused(saved):
    members = members_of(saved)
    saved.write_bytes(zip_members(members + [members[1]]))
    refused(saved, r"is not a bundle: member 'layer0.weight.npy' appears twice")


@pytest.mark.parametrize("name", ["evil.sh", "dir/", "layer2.weight.npy"])
def test_extra_member_refused(saved, name):
    saved.write_bytes(zip_members(members_of(saved) + [(name, b"")]))
    refused(saved, rf"is not a bundle: unexpected member\(s\) '{name}' \(a bundle holds manifest.json and the "
                   r"weight files its layers name\)")


def test_two_layers_naming_one_member_refused(tmp_path):
    b = random_bundle((4, 4, 4), T=1, seed=0)
    p = save_bundle(b, tmp_path / "s.scnb")
    rewrite(p, lambda m: m["network"]["layers"][1].update(weights="layer0.weight.npy"), fix_checksum=True)
    refused(p, r"network.layers\[1\].weights names member 'layer0.weight.npy', which layers\[0\] already uses")


def test_encrypted_member_refused(saved):
    raw = bytearray(saved.read_bytes())
    i = next(central_headers(raw))
    raw[i + 8] |= 0x01
    saved.write_bytes(bytes(raw))
    refused(saved, r"member 'manifest.json' is encrypted")


class OpenLog:
    """Records every zf.open(...).read(n) load_bundle makes."""

    def __init__(self, monkeypatch):
        self.opened, self.reads = [], []
        real_open, log = zipfile.ZipFile.open, self

        def open_(zf, name, *a, **k):
            fh = real_open(zf, name, *a, **k)
            log.opened.append(getattr(name, "filename", name))
            real_read = fh.read

            def read(n=-1):
                log.reads.append(n)
                return real_read(n)
            fh.read = read
            return fh
        monkeypatch.setattr(zipfile.ZipFile, "open", open_)


def test_oversized_weight_member_refused_before_reading(saved, monkeypatch):
    # A 1 GB member used to be decompressed whole (26 s, 2.1 GB) before being refused: now its declared
    # size is compared with what its shape can need (a .npy header + 72 weights * 8 bytes) first.
    members = dict(members_of(saved))
    members["layer0.weight.npy"] = b"\0" * 20_000_000  # compresses to ~20 kB
    saved.write_bytes(zip_members(members.items()))
    log = OpenLog(monkeypatch)
    refused(saved, r"member 'layer0.weight.npy' is 20000000 bytes \(20.0 MB\), more than the 4672 bytes the 72 "
                   r"weights of network.layers\[0\] can need")
    assert "layer0.weight.npy" not in log.opened


def test_oversized_manifest_refused_before_reading(saved, monkeypatch):
    saved.write_bytes(set_central(saved.read_bytes(), 24, "<I", 2**32 - 1))  # declared uncompressed size
    log = OpenLog(monkeypatch)
    refused(saved, r"member 'manifest.json' is 4294967295 bytes \(4.3 GB\), more than the 1048576 bytes a "
                   r"manifest may hold")
    assert log.opened == []


def test_reads_are_bounded(saved, monkeypatch):
    # Every read asks for at most the member's bound + 1 bytes, never "all of it" (-1).
    log = OpenLog(monkeypatch)
    load_bundle(saved)
    assert log.opened == ["manifest.json", "layer0.weight.npy", "layer1.weight.npy"]
    assert log.reads[0] == bmod.MAX_MANIFEST_BYTES + 1
    assert log.reads[1:] == [4096 + 12 * 6 * 8 + 1, 4096 + 6 * 3 * 8 + 1]


def test_declared_size_smaller_than_content_refused(saved):
    # The directory says 100 bytes: only 100 are decompressed, and their CRC cannot match.
    saved.write_bytes(set_central(saved.read_bytes(), 24, "<I", 100))
    refused(saved, r"is corrupt \(member 'manifest.json': Bad CRC-32")


def test_too_many_weights_refused(saved, monkeypatch):
    monkeypatch.setattr(bmod, "MAX_WEIGHTS", 80)
    refused(saved, r"network has more than 80 weights \(the limit; network.layers\[1\] alone declares 18, 144 B as "
                   r"int64\)")


def test_huge_manifest_shape_refused(saved):
    # A product of two 200-digit integers: the message gives its size, not 400 digits (or an OverflowError).
    rewrite(saved, lambda m: m["network"]["layers"][0].update(shape=[10**200, 10**200]), fix_checksum=True)
    refused(saved, r"network has more than 268435456 weights \(the limit; network.layers\[0\] alone declares "
                   r"about 2\*\*1328, about 2\*\*1331 B as int64\)")


def test_npy_trailing_bytes_refused(saved):
    with zipfile.ZipFile(saved) as zf:
        data = zf.read("layer0.weight.npy")
    rewrite(saved, None, "layer0.weight.npy", data + b"\0\0", fix_checksum=True)
    refused(saved, r"member 'layer0.weight.npy' is not a valid .npy array \(shape \[12, 6\] int8 needs 72 bytes "
                   r"of data, it holds 74\)")


def test_npy_huge_header_shape_refused(saved):
    # The header's shape is compared with the manifest's before any array is allocated (np.load used to
    # try to allocate 6.6 TB for this one).
    with zipfile.ZipFile(saved) as zf:
        data = zf.read("layer0.weight.npy")
    big = data.replace(b"(12, 6), }", b"(1099511627776, 6), }").replace(b" " * 11 + b"\n", b"\n")
    assert len(big) == len(data) and b"1099511627776" in big
    rewrite(saved, None, "layer0.weight.npy", big)
    refused(saved, r"network.layers\[0\].weights has shape \[1099511627776, 6\] but shape says \[12, 6\]")


def test_weights_naming_the_manifest_refused(saved):
    rewrite(saved, lambda m: m["network"]["layers"][0].update(weights="manifest.json"))
    refused(saved, r"network.layers\[0\].weights must name a weight member, not manifest.json")


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["network"].update(sizes=[12.0, 6, 3]),
     r"network.sizes must hold positive integers, not \[12.0, 6, 3\]"),
    (lambda m: m["network"].update(sizes=[12, True, 3]), r"network.sizes must hold positive integers"),
    (lambda m: m["network"]["layers"][0].update(shape=[12.0, 6]),
     r"network.layers\[0\].shape must be \[n_in, n_out\] \(two positive integers\), not \[12.0, 6\]"),
    (lambda m: m["network"]["layers"][0].update(shape=[12, 6, 1]),
     r"network.layers\[0\].shape must be \[n_in, n_out\]"),
    (lambda m: m.update(schema_version=True), r"schema_version must be 1 or 2, not True"),
])
def test_manifest_types_checked(saved, edit, message):
    # Float sizes and shapes used to pass ([12, 6] == [12.0, 6]), a bool schema_version too (True == 1).
    rewrite(saved, edit, fix_checksum=True)
    refused(saved, message)


def test_long_field_value_cut_in_message(saved):
    rewrite(saved, lambda m: m["network"].update(T="x" * 100_000), fix_checksum=True)
    with pytest.raises(BundleError, match=r"network.T must be int, not 'xxxx") as e:
        load_bundle(saved)
    assert len(str(e.value)) < 200


def test_directory_is_not_reported_missing(tmp_path):
    (tmp_path / "d.scnb").mkdir()
    refused(tmp_path / "d.scnb", r"d.scnb is a directory, not a bundle file")


def test_fifo_is_not_reported_missing(tmp_path):
    os.mkfifo(tmp_path / "f.scnb")
    with pytest.raises(BundleError, match=r"f.scnb is not a regular file, so not a bundle"):
        load_bundle(tmp_path / "f.scnb")


def test_empty_path_refused():
    with pytest.raises(BundleError, match=r"^bundle path is empty$"):
        load_bundle("")


AVAILABLE = (r"\(available: fmnist-conv-t4, mnist-conv-t4, mnist-rate-t4, mnist-saccade-t4, mnist-small-t4, mnist-t1, mnist-t2, mnist-t32, mnist-t4, "
             r"mnist-t4-lite, mnist-t8, mnist-up5k-t4\)")


@pytest.mark.parametrize("name", ["", "../pretrained/mnist-t4", "./mnist-t4", "../../sc_neurocore/pretrained/mnist-t4",
                                  str(bmod._PRETRAINED_DIR / "mnist-t4")])
def test_pretrained_name_is_never_a_path(name):
    # "" used to fall through to load_bundle(None) (TypeError); the others, all paths of a shipped file,
    # were loaded as paths.
    with pytest.raises(BundleError, match=rf"^unknown pretrained bundle {re.escape(repr(name))} {AVAILABLE}$"):
        resolve_bundle(None, name)
    with pytest.raises(BundleError, match=r"unknown pretrained bundle"):
        bmod.pretrained_path(name)


def test_cli_pretrained_empty_name(capsys):
    from sc_neurocore.cli import main
    assert main(["info", "--pretrained", ""]) == 2
    assert re.search(rf"sc-neurocore: error: unknown pretrained bundle '' {AVAILABLE}", capsys.readouterr().err)


# -- random_bundle: arguments checked before anything is allocated ---------------------------------

@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(sizes=(1_000_000, 1_000_000, 10)), ValueError,
     r"random_bundle with sizes 1000000-1000000-10 needs 8.0 TB of memory \(1000010000000 weights, drawn as "
     r"int64\); the limit is 268435456 weights \(2.1 GB\)"),
    (dict(weight_bits=99), ValueError, r"^weight_bits must be between 2 and 16, not 99$"),
    (dict(weight_bits="8"), TypeError, r"^weight_bits must be an integer, not '8'$"),
    (dict(input_bits=-1), ValueError, r"^input_bits must be between 1 and 8, not -1$"),
    (dict(seed=-1), ValueError, r"^seed must be between 0 and 18446744073709551615, not -1$"),
    (dict(seed=1.5), TypeError, r"^seed must be an integer, not 1.5$"),
    (dict(sizes=(5,)), ValueError, r"^sizes must be a sequence of at least 2 layer sizes, not \(5,\)$"),
    (dict(sizes="784-10"), ValueError, r"^sizes must be a sequence of at least 2 layer sizes"),
    (dict(sizes=(4, 0)), ValueError, r"^sizes\[1\] must be between 1 and 268435456, not 0$"),
    (dict(sizes=(4, 2.5)), TypeError, r"^sizes\[1\] must be an integer, not 2.5$"),
])
def test_random_bundle_arguments(kwargs, exc, message):
    # Were MemoryError ("Unable to allocate 7.28 TiB"), "low is out of bounds for int64",
    # "expected non-negative integer", "unsupported operand type(s)", numpy's SeedSequence message, ...
    with pytest.raises(exc, match=message):
        random_bundle(**{"sizes": (4, 3, 2), **kwargs})


def test_random_bundle_limit_is_the_load_limit(monkeypatch):
    monkeypatch.setattr(bmod, "MAX_WEIGHTS", 11)
    with pytest.raises(ValueError, match=r"needs 96 B of memory \(12 weights"):
        random_bundle((4, 3))
    random_bundle((5, 2))


def test_cli_random_bundle_too_big_writes_nothing(tmp_path, capsys):
    from sc_neurocore.cli import main
    out = tmp_path / "big.scnb"
    assert main(["random-bundle", "-o", str(out), "--sizes", "1000000-1000000-10"]) == 2
    assert "sc-neurocore: error: random_bundle with sizes 1000000-1000000-10 needs 8.0 TB" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_layer_without_kind_is_dense_and_dense_is_never_written(saved):
    """Existing bundles have no "kind" field: they stay dense and byte-identical; an explicit "dense" reads too."""
    from sc_neurocore.bundle import LAYER_SCHEMA

    assert "dense" in LAYER_SCHEMA
    with zipfile.ZipFile(saved) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert all("kind" not in ld for ld in manifest["network"]["layers"])
    before = load_bundle(saved)
    rewrite(saved, lambda m: m["network"]["layers"][0].update(kind="dense"), fix_checksum=True)
    assert load_bundle(saved).network == before.network
