"""Fashion-MNIST by name (--dataset fashion-mnist, fashion-mnist-saccade): the IDX folder of the Debian package
dataset-fashion-mnist, or the folder $SC_NEUROCORE_FASHION_MNIST names (here: files the tests write)."""

from __future__ import annotations

import numpy as np
import pytest

from sc_neurocore.bundle import load_bundle
from sc_neurocore.cli import main
from sc_neurocore.data import FASHION_MNIST_ENV, DataError, load_dataset, write_idx

FAST = ["--epochs", "1", "--batch-size", "16", "--hidden", "8", "--threads", "1", "--quiet", "--T", "2"]


@pytest.fixture
def fashion(tmp_path, monkeypatch):
    """A 28x28 IDX folder in Fashion-MNIST's file names: 60 training and 12 test images of 3 classes."""
    d = tmp_path / "fashion"
    d.mkdir()
    rng = np.random.default_rng(4)
    for prefix, n in (("train", 60), ("t10k", 12)):
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), True)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 3).astype(np.uint8), True)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(d))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the saccade cache stays in the test's folder
    return d


def test_fashion_mnist_splits_off_the_end_of_the_training_set(fashion):
    from sc_neurocore.data import read_idx

    ds = load_dataset("fashion-mnist")
    train = read_idx(fashion / "train-images-idx3-ubyte.gz").reshape(60, -1)
    assert ds.name == "fashion-mnist"
    assert np.array_equal(ds.train_x, train[:50]) and np.array_equal(ds.val_x, train[50:])  # 1/6 of a small folder
    assert np.array_equal(ds.val_y, np.arange(50, 60) % 3)
    assert ds.test_x.shape == (12, 784) and ds.test_x.dtype == np.uint8


def test_fashion_mnist_trains_as_images_and_as_saccade_recordings(fashion, tmp_path):
    assert main(["train", "--dataset", "fashion-mnist", *FAST, "-o", str(tmp_path / "f.scnb")]) == 0
    b = load_bundle(tmp_path / "f.scnb")
    assert b.provenance["dataset"] == "fashion-mnist" and b.network.sizes == (784, 8, 3)
    assert main(["train", "--dataset", "fashion-mnist-saccade", "--encoding", "events", *FAST,
                 "-o", str(tmp_path / "e.scnb")]) == 0
    e = load_bundle(tmp_path / "e.scnb")
    assert e.provenance["dataset"] == "fashion-mnist-saccade" and e.network.sizes == (2 * 34 * 34, 8, 3)
    assert e.network.encoding == "events"
    assert list((tmp_path / "cache" / "sc_neurocore" / "events").glob("fashion-mnist-saccade-train-*.npz"))


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "absent"))
    with pytest.raises(DataError, match="install the Debian package dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    out = tmp_path / "x.scnb"
    assert main(["train", "--dataset", "fashion-mnist", *FAST, "-o", str(out)]) == 2
    assert f"Fashion-MNIST not found in {tmp_path / 'absent'}" in capsys.readouterr().err and not out.exists()
    with pytest.raises(DataError, match="unknown dataset 'kmnist'; use 'mnist' or 'fashion-mnist'"):
        load_dataset("kmnist")
