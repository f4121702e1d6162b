"""Tests of sc_neurocore.train.pipeline: the training entry points (train_model, distill_model): learning, export, option and label checks."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from sc_neurocore import train as tr
from sc_neurocore.bundle import load_bundle
from sc_neurocore.golden import infer
from sc_neurocore.train import SNNConfig, TrainConfig, evaluate, load_checkpoint, prepare_data, train_model

from test_train_loop import _tiny_data

torch.set_num_threads(1)


def test_learns_and_export_matches_trained_model(tmp_path):
    data = prepare_data(limit=2000)
    cfg = SNNConfig(T=4, sizes=(784, 64, 10))
    tc = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0, threads=1, quiet=True)
    r = train_model(cfg, tc, data, tmp_path / "m.scnb", log=lambda s: None)
    assert r["test_acc"] > 0.75, r["test_acc"]  # chance is 0.10
    b = load_bundle(tmp_path / "m.scnb")
    prov = b.provenance
    assert prov["dataset"] == "mnist" and prov["seed"] == 0 and prov["test_accuracy"] == round(r["test_acc"], 6)
    assert prov["method"] == "train" and prov["tool_version"] and prov["config"]["T"] == 4
    # the trained (float-emulated) model and the golden model on the exported bundle agree exactly
    model, meta = load_checkpoint(tmp_path / "m.pt")
    acc_model = evaluate(model, torch.as_tensor(data.test_x), torch.as_tensor(data.test_y))
    acc_golden = float((infer(b.network, data.test_x).classes == data.test_y).mean())
    assert acc_model == acc_golden == r["test_acc"]
    assert meta["test_acc"] == r["test_acc"]


@pytest.mark.parametrize("labels,needle", [
    ({"val_y": np.array([0, 1, 2, 3, 0, 1])}, "tiny: the validation labels must be integers in [0, 3) for a network "
                                              "with 3 outputs, found 3"),
    ({"train_y": np.arange(24) % 3 - 1}, "tiny: the training labels must be integers in [0, 3) for a network with 3 "
                                         "outputs, found -1"),
    ({"test_y": np.full(8, 0.5)}, "tiny: the test labels must be integers, found 0.5"),
])
@pytest.mark.parametrize("entry", ["train", "distill", "ann"])
def test_training_entry_points_check_labels_first(tmp_path, monkeypatch, labels, needle, entry):
    monkeypatch.setattr(tr.pipeline, "fit", lambda *a, **k: pytest.fail("training started"))
    tc = TrainConfig(epochs=1, augment=0, quiet=True, method="self" if entry == "distill" else "none")
    with pytest.raises(ValueError, match=re.escape(needle)):
        if entry == "train":
            train_model(SNNConfig(sizes=(16, 4, 3), T=2), tc, _tiny_data(**labels), tmp_path / "o.scnb")
        elif entry == "distill":
            tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=2), tc, _tiny_data(**labels), None, tmp_path / "o.scnb")
        else:
            tr.train_ann(tc, _tiny_data(pixels=144, **labels), tmp_path / "o.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change,needle", [
    ({"lr": float("inf")}, "lr must be a positive finite number, not inf"),
    ({"lr": float("nan")}, "lr must be a positive finite number, not nan"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number >= 0, not nan"),
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number >= 0, not inf"),
    ({"dropout": 1.0}, "dropout must be in [0, 1), not 1.0"),
    ({"epochs": 0}, "epochs must be at least 1, not 0"),
    ({"seed": -1}, "seed must be an integer between 0 and"),
    ({"augment": 1}, "image shifts (augment) need square images or two square polarity planes, not 15 inputs; "
                     "use augment=0"),
])
def test_train_model_checks_options_before_training(tmp_path, monkeypatch, change, needle):
    monkeypatch.setattr(tr.pipeline, "fit", lambda *a, **k: pytest.fail("training started"))
    tc = TrainConfig(epochs=1, augment=0, quiet=True)
    with pytest.raises(ValueError, match=r"^" + re.escape(needle)) as e:
        for k, v in change.items():  # a TrainConfig is mutable: the entry point checks it again
            setattr(tc, k, v)
        train_model(SNNConfig(sizes=(15, 4, 3), T=2), tc, _tiny_data(pixels=15), tmp_path / "o.scnb")
    assert "--" not in str(e.value)  # a library message names the field, not a command-line flag
    assert list(tmp_path.iterdir()) == []


def test_library_messages_name_no_flags(tmp_path):
    data = _tiny_data()
    tc = TrainConfig(epochs=1, augment=0, quiet=True, method="temporal")
    with pytest.raises(ValueError, match=r"^method 'temporal' needs a teacher checkpoint$"):
        tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=2), tc, data, None, tmp_path / "o.scnb")
    with pytest.raises(ValueError, match=r"^self-distillation needs teacher_T greater than the student's T"):
        tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=4), dataclasses.replace(tc, method="self", teacher_T=4),
                         data, None, tmp_path / "o.scnb")
    with pytest.raises(ValueError, match=r"^init must be 'auto', 'teacher' or 'random', not 'x'$"):
        tr.distill_model(SNNConfig(sizes=(16, 4, 3), T=2), dataclasses.replace(tc, method="self"), data, None,
                         tmp_path / "o.scnb", init="x")
    assert list(tmp_path.iterdir()) == []
