"""Bundles with conv layers (schema 2): round trip, determinism, schema-1 bytes unchanged, malformed fields."""

import json
import zipfile

import numpy as np
import pytest

from test_bundle import rewrite
from sc_neurocore import bundle as bmod
from sc_neurocore.bundle import Bundle, BundleError, bundle_bytes, load_bundle, pretrained_names, pretrained_path, save_bundle
from sc_neurocore.golden import infer
from sc_neurocore.params import ConvParams, LayerParams, NetworkParams


def conv_bundle(seed=0):
    rng = np.random.default_rng(seed)
    c1 = ConvParams(rng.integers(-127, 128, (3, 1, 3, 3)), (1, 8, 8), 8, 40, 2, 1, padding=1, pool=2)
    c2 = ConvParams(rng.integers(-7, 8, (2, 3, 2, 2)), c1.out_shape, 4, 3, 1, 0, 10, stride=2)
    out = LayerParams(rng.integers(-7, 8, (c2.n_out, 4)), 4, 5, 0, 0, 12)
    return Bundle(NetworkParams((c1, c2, out), 3, "direct", "subtract", "spike_count"), {"seed": seed})


@pytest.fixture
def saved(tmp_path):
    return save_bundle(conv_bundle(), tmp_path / "conv.scnb")


def test_conv_round_trip_and_schema_2(saved):
    back = load_bundle(saved)
    assert back == conv_bundle()
    with zipfile.ZipFile(saved) as zf:
        m = json.loads(zf.read("manifest.json"))
        w = np.load(zf.open("layer0.weight.npy"))
    assert m["schema_version"] == 2
    assert m["network"]["sizes"] == [64, 48, 8, 4]
    ld = m["network"]["layers"][0]
    assert (ld["kind"], ld["shape"], ld["in_shape"], ld["stride"], ld["padding"], ld["pool"]) == \
        ("conv", [3, 1, 3, 3], [1, 8, 8], 1, 1, 2)
    assert "kind" not in m["network"]["layers"][2]          # the dense output layer still has no kind
    assert w.dtype == np.int8 and w.shape == (3, 1, 3, 3)
    x = np.random.default_rng(1).integers(0, 256, (5, 64))
    assert np.array_equal(infer(back.network, x).scores, infer(conv_bundle().network, x).scores)


def test_conv_bundle_bytes_are_deterministic(tmp_path):
    assert bundle_bytes(conv_bundle()) == bundle_bytes(conv_bundle())
    assert bundle_bytes(conv_bundle(1)) != bundle_bytes(conv_bundle())
    p = save_bundle(load_bundle(save_bundle(conv_bundle(), tmp_path / "a.scnb")), tmp_path / "b.scnb")
    assert p.read_bytes() == (tmp_path / "a.scnb").read_bytes()


@pytest.mark.parametrize("name", pretrained_names())
def test_shipped_schema_1_bundles_resave_to_the_same_bytes(tmp_path, name):
    raw = pretrained_path(name).read_bytes()
    back = load_bundle(pretrained_path(name))
    if all(layer.kind == "dense" for layer in back.network.layers):
        with zipfile.ZipFile(pretrained_path(name)) as zf:
            assert json.loads(zf.read("manifest.json"))["schema_version"] == 1
    assert save_bundle(back, tmp_path / "x.scnb").read_bytes() == raw


def _layer(i, **kw):
    return lambda m: m["network"]["layers"][i].update(**kw)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(schema_version=1), r"network.layers\[0\]: the conv layer kind needs schema_version 2, not 1"),
    (_layer(0, in_shape=[1, 8]), r"network.layers\[0\].in_shape must be \[C, H, W\] \(three positive integers\)"),
    (_layer(0, in_shape=[2, 8, 8]), r"network.layers\[0\]: weight has 1 input channels but in_shape \(2, 8, 8\) has 2"),
    (_layer(0, pool=3), r"network.layers\[0\]: pool must divide the convolution's output size 8x8, not 3"),
    (_layer(0, stride="2"), r"network.layers\[0\].stride must be int, not '2'"),
    (_layer(0, padding=True), r"network.layers\[0\].padding must be int, not True"),
    (_layer(0, shape=[3, 1, 9]), r"network.layers\[0\].shape must be \[C_out, C_in, K, K\]"),
    (_layer(0, shape=[3, 1, 3, 4]), r"network.layers\[0\].weights has shape \[3, 1, 3, 3\] but shape says \[3, 1, 3, 4\]"),
    (_layer(0, dilation=2), r"network.layers\[0\] has unknown field\(s\): dilation"),
    (_layer(1, kind="pool"), r"network.layers\[1\]: unknown layer kind 'pool'"),
    (lambda m: m["network"].update(sizes=[64, 49, 8, 4]), r"network.sizes is \[64, 49, 8, 4\] but the layers give "
                                                          r"\[64, 48, 8, 4\]"),
    (lambda m: m["network"]["layers"][0].pop("in_shape"), r"network.layers\[0\].in_shape is missing"),
])
def test_malformed_conv_fields_refused(saved, edit, message):
    rewrite(saved, edit, fix_checksum=True)
    with pytest.raises(BundleError, match=message):
        load_bundle(saved)


def test_schema_versions_are_one_table():
    assert bmod.SCHEMA_VERSION == max(bmod.SCHEMA_VERSIONS)
    assert bmod.SCHEMA_VERSIONS[1] == ("dense",)
