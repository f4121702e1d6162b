"""Training and distillation on event data (--encoding events): N-MNIST folders and the emulated mnist-saccade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sc_neurocore.bundle import load_bundle
from sc_neurocore.cli import main
from sc_neurocore.events import raster, read_nmnist, write_nmnist_file
from sc_neurocore.golden import infer

FAST = ["--epochs", "3", "--batch-size", "16", "--hidden", "16", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def nmnist(tmp_path_factory) -> Path:
    """A small N-MNIST-format folder: three classes firing in three bands of columns, random times."""
    root = tmp_path_factory.mktemp("nmnist")
    rng = np.random.default_rng(0)
    for split, n in (("Train", 90), ("Test", 30)):
        for i in range(n):
            label = i % 3
            d = root / split / str(label)
            d.mkdir(parents=True, exist_ok=True)
            k = int(rng.integers(150, 300))
            t = np.sort(rng.integers(0, 300_000, k))
            x = rng.integers(11 * label, 11 * label + 11, k)
            write_nmnist_file(d / f"{i:05d}.bin", t, x, rng.integers(0, 34, k), rng.integers(0, 2, k))
    return root


def test_train_on_an_nmnist_folder(nmnist, tmp_path, capsys):
    assert main(["train", "--encoding", "events", "--data-dir", str(nmnist), "--T", "4", *FAST,
                 "-o", str(tmp_path / "e.scnb")]) == 0
    b = load_bundle(tmp_path / "e.scnb")
    net = b.network
    assert net.encoding == "events" and net.input_bits == 1 and net.sizes == (2 * 34 * 34, 16, 3)
    assert b.provenance["binning"]["bins"] == 4 and b.provenance["train_config"]["augment"] == 0
    # the bundle's accuracy is the golden model's on the test recordings binned by the spec's rule
    test = read_nmnist(nmnist, "test")
    acc = np.mean(infer(net, raster(test, 4, 1)).classes == test.labels)
    # the provenance stores the accuracy rounded to 6 decimals (pipeline._finish): a count ratio, compared exactly
    assert round(float(acc), 6) == b.provenance["test_accuracy"] and acc > 0.6  # chance: 1/3


def test_distill_an_events_student_from_a_longer_T_teacher(nmnist, tmp_path):
    assert main(["train", "--encoding", "events", "--data-dir", str(nmnist), "--T", "8", *FAST,
                 "-o", str(tmp_path / "t8.scnb")]) == 0
    for method in ("temporal", "average"):
        assert main(["distill", "--teacher", str(tmp_path / "t8.pt"), "--encoding", "events", "--data-dir",
                     str(nmnist), "--T", "4", "--method", method, *FAST, "-o", str(tmp_path / f"{method}.scnb")]) == 0
        s = load_bundle(tmp_path / f"{method}.scnb")
        # teacher and student read the same rasters: binned once into lcm(4, 8) = 8 bins
        assert s.network.T == 4 and s.provenance["binning"]["bins"] == 8 and s.provenance["teacher"]["T"] == 8
    assert main(["distill", "--method", "self", "--teacher-T", "6", "--encoding", "events", "--data-dir", str(nmnist),
                 "--T", "4", *FAST, "-o", str(tmp_path / "self.scnb")]) == 0
    assert load_bundle(tmp_path / "self.scnb").provenance["binning"]["bins"] == 12  # lcm(4, 6)


def test_event_options_that_cannot_work_are_refused_before_training(nmnist, tmp_path, capsys):
    assert main(["train", "--encoding", "events", "--data-dir", str(nmnist), "--T", "8", *FAST,
                 "-o", str(tmp_path / "t8.scnb")]) == 0
    capsys.readouterr()
    cases = [
        (["train", "--ann", "--encoding", "events", "--data-dir", str(nmnist)],
         "--ann trains a CNN on images; it cannot read event recordings"),
        (["distill", "--teacher", str(tmp_path / "t8.pt"), "--data-dir", str(nmnist)],
         "incompatible input kinds: the teacher reads event rasters, the student (--encoding direct) images"),
        (["train", "--dataset", "mnist-saccade"], "mnist-saccade is an event dataset: train with --encoding events"),
        (["train", "--encoding", "events", "--dataset", "cifar"], "unknown event dataset 'cifar': use mnist-saccade"),
    ]
    for argv, needle in cases:
        out = tmp_path / "x.scnb"
        assert main([*argv, "--T", "4", *FAST, "-o", str(out)]) == 2, argv
        assert needle in capsys.readouterr().err
        assert not out.exists() and not out.with_suffix(".pt").exists()


def test_mnist_saccade_trains_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    argv = ["train", "--dataset", "mnist-saccade", "--encoding", "events", "--T", "4", "--limit", "300", *FAST]
    assert main([*argv, "-o", str(tmp_path / "a.scnb")]) == 0
    cached = sorted(p.name for p in (tmp_path / "cache" / "sc_neurocore" / "events").iterdir())
    assert len(cached) == 3 and all(n.startswith("mnist-saccade-") and n.endswith(".npz") for n in cached)
    assert main([*argv, "-o", str(tmp_path / "b.scnb")]) == 0  # from the cache: the same bundle bytes
    assert (tmp_path / "a.scnb").read_bytes() == (tmp_path / "b.scnb").read_bytes()
    b = load_bundle(tmp_path / "a.scnb")
    assert b.network.sizes[0] == 2 * 34 * 34 and b.provenance["dataset"] == "mnist-saccade"


def test_eval_latency_and_sim_read_event_bundles(nmnist, tmp_path, capsys):
    assert main(["train", "--encoding", "events", "--data-dir", str(nmnist), "--T", "3", *FAST,
                 "-o", str(tmp_path / "e.scnb")]) == 0
    b = load_bundle(tmp_path / "e.scnb")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "e.scnb"), "--data-dir", str(nmnist), "--json", "--quiet"]) == 0
    import json

    ev = json.loads(capsys.readouterr().out)
    assert ev["n"] == 30 and round(ev["accuracy"], 6) == b.provenance["test_accuracy"]
    assert main(["latency", str(tmp_path / "e.scnb"), "--data-dir", str(nmnist), "--json"]) == 0
    lat = json.loads(capsys.readouterr().out)
    typ = lat["typical"]
    assert typ["mean_lower_bound_cycles"] <= typ["mean_cycles"] and typ["max_cycles"] <= lat["worst_case_cycles"]
    assert typ["n"] == 30
    assert main(["sim", str(tmp_path / "e.scnb"), "--data-dir", str(nmnist), "--simulator", "verilator",
                 "--n", "12", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "vectors checked 12/12  mismatches 0" in out and "model agrees" in out


def test_a_damaged_nmnist_folder_is_refused_by_file_and_event(nmnist, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(nmnist, bad)
    victim = sorted((bad / "Train" / "1").glob("*.bin"))[0]
    victim.write_bytes(victim.read_bytes()[:-2])  # a truncated last event
    out = tmp_path / "m.scnb"
    assert main(["train", "--encoding", "events", "--data-dir", str(bad), "--T", "4", *FAST, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert victim.name in err and "sc-neurocore: error:" in err and "event" in err
    assert not out.exists() and not out.with_suffix(".pt").exists()
    # a bundle's T against rasters of another bin count: the golden model names both
    assert main(["train", "--encoding", "events", "--data-dir", str(nmnist), "--T", "4", *FAST, "-o", str(out)]) == 0
    from sc_neurocore.bundle import load_bundle as lb

    with pytest.raises(ValueError, match="the event rasters have 3 time bins but the network runs T=4 steps"):
        infer(lb(out).network, raster(read_nmnist(nmnist, "test"), 3, 1))


@pytest.fixture(scope="module")
def saccade_test_set():
    """The mnist-saccade test recordings (emulated and cached exactly as `--dataset mnist-saccade` does)."""
    import os

    from sc_neurocore.data import load_dataset
    from sc_neurocore.events import cached_saccade

    ds = load_dataset("mnist", None)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sc_neurocore" / "events"
    return cached_saccade("mnist-saccade-test", ds.test_x, ds.test_y, seed=0, cache_dir=cache)


def test_the_shipped_mnist_saccade_t4(saccade_test_set):
    from sc_neurocore.bundle import resolve_bundle

    b = resolve_bundle(pretrained="mnist-saccade-t4")
    net = b.network
    assert (net.encoding, net.T, net.input_bits, net.sizes) == ("events", 4, 3, (2312, 512, 10))
    assert b.provenance["binning"]["bins"] == 4 and b.provenance["dataset"] == "mnist-saccade"
    x = raster(saccade_test_set, 4, 3)
    acc = float(np.mean(infer(net, x).classes == saccade_test_set.labels))
    assert round(acc, 6) == b.provenance["test_accuracy"] and acc >= 0.98


@pytest.mark.slow  # the 2312-512-10 core's first Verilator build takes about a minute
@pytest.mark.sim
def test_the_shipped_mnist_saccade_t4_is_bit_exact_in_rtl(saccade_test_set):
    from sc_neurocore.bundle import resolve_bundle
    from sc_neurocore.sim.runner import run_regression

    b = resolve_bundle(pretrained="mnist-saccade-t4")
    r = run_regression(b, raster(saccade_test_set, 4, 3), saccade_test_set.labels, simulator="verilator", n=40)
    assert r["ok"] and r["mismatched_vectors"] == 0 and r["cycles_checked"] and r["cycle_mismatches"] == 0, r


def _shifted_reference(x: np.ndarray, dy: int, dx: int, planes: int, side: int) -> np.ndarray:
    """The spec of a shift, written independently: every plane of every bin moved by (dy, dx), zeros in."""
    img = x.reshape(x.shape[:-1] + (planes, side, side))
    out = np.zeros_like(img)
    rs = slice(max(dy, 0), side + min(dy, 0)), slice(max(-dy, 0), side + min(-dy, 0))
    cs = slice(max(dx, 0), side + min(dx, 0)), slice(max(-dx, 0), side + min(-dx, 0))
    out[..., rs[0], cs[0]] = img[..., rs[1], cs[1]]
    return out.reshape(x.shape)


def test_event_rasters_shift_as_one_sensor_position():
    import torch

    from sc_neurocore.train.loop import _shift_images, shift_planes

    rng = np.random.default_rng(5)
    side, bins, B = 6, 3, 40
    x = rng.integers(0, 8, (B, bins, 2 * side * side)).astype(np.uint8)
    xs, d = _shift_images(torch.as_tensor(x), 2, torch.Generator().manual_seed(1))
    d = d.view(2, B).numpy()
    assert len({(int(a), int(b)) for a, b in d.T}) > 5  # several shifts drawn
    for i in range(B):
        want = _shifted_reference(x[i], int(d[0, i]), int(d[1, i]), 2, side)
        assert np.array_equal(xs[i].numpy(), want), i
    assert shift_planes(2 * 34 * 34) == (2, 34) and shift_planes(784) == (1, 28)
    with pytest.raises(ValueError, match="need square images or two square polarity planes, not 2300 inputs"):
        shift_planes(2300)


def test_augmented_event_training_runs_and_is_recorded(nmnist, tmp_path):
    for aug in ("0", "1"):
        assert main(["train", "--encoding", "events", "--data-dir", str(nmnist), "--T", "4", *FAST, "--augment", aug,
                     "-o", str(tmp_path / f"a{aug}.scnb")]) == 0
    a0, a1 = (load_bundle(tmp_path / f"a{k}.scnb") for k in "01")
    assert a1.provenance["train_config"]["augment"] == 1 and a0.provenance["train_config"]["augment"] == 0
    assert not np.array_equal(a0.network.layers[0].weight, a1.network.layers[0].weight)  # the shifts did something


def test_eval_reads_the_dataset_the_bundle_was_trained_on(capsys, tmp_path, monkeypatch):
    """``eval`` of an event bundle without --dataset: the bundle's own dataset (its provenance), not MNIST images."""
    import json

    from sc_neurocore.bundle import Bundle, resolve_bundle
    from sc_neurocore.cli.common import bundle_dataset
    from sc_neurocore.train import prepare_data

    b = resolve_bundle(pretrained="mnist-saccade-t4")
    assert bundle_dataset(b) == "mnist-saccade" and bundle_dataset(b, "fashion-mnist-saccade") == "fashion-mnist-saccade"
    assert bundle_dataset(Bundle(b.network, {"dataset": "my-folder"})) == "mnist"  # a folder's name: not a dataset
    assert bundle_dataset(Bundle(b.network, {})) == "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # 20 recordings emulated into the test's folder
    assert main(["eval", "--pretrained", "mnist-saccade-t4", "--limit", "20", "--json", "--quiet"]) == 0
    got = json.loads(capsys.readouterr().out)
    d = prepare_data("mnist-saccade", None, 20, bins=4, input_bits=3)
    want = float(np.mean(infer(b.network, d.test_x).classes == d.test_y))
    assert got["accuracy"] == want and got["n"] == 20
