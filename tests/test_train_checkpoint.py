"""Tests of sc_neurocore.train.checkpoint: checkpoints: fuzzed files raise only CheckpointError, valid ones load, interrupted saves leave nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sc_neurocore import train as tr
from sc_neurocore.train import (CHECKPOINT_FORMAT, CheckpointError, SNNConfig, SpikingMLP, load_checkpoint,
                                save_checkpoint)

torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# hostile input: checkpoints, labels, options (issue 12)
# --------------------------------------------------------------------------------------------

_SNN_CFG = SNNConfig(sizes=(9, 4, 3), T=2)
_DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool, torch.complex64]
_SHAPES = st.lists(st.integers(0, 5), max_size=3).map(tuple)


@st.composite
def _tensors(draw, shape=None):
    shape = draw(_SHAPES) if shape is None else shape
    dtype = draw(st.sampled_from(_DTYPES))
    t = torch.zeros(shape, dtype=dtype)
    fill = draw(st.sampled_from([0.0, 1.5, float("nan"), float("inf")]))
    if dtype.is_floating_point or dtype.is_complex:
        t = t + fill
    if draw(st.integers(0, 3)) == 0 and t.numel() > 1:  # a stride-0 view: a large tensor from a small storage
        t = t.flatten()[:1].clone().expand(*shape)
    return t


_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.integers(-3, 70), max_size=4), st.dictionaries(st.text(max_size=3),
                                                                                     st.integers(), max_size=2),
    _tensors(),
)


def _valid_snn_checkpoint() -> dict:
    return tr.checkpoint._checkpoint_object(SpikingMLP(_SNN_CFG, seed=0), {"test_acc": 0.5})


def _valid_ann_checkpoint() -> dict:
    return tr.checkpoint._checkpoint_object(tr.ANNTeacher(144, 3), {})


@st.composite
def _mutated(draw, d: dict, plausible: dict):
    """Drop some keys, replace some values (by junk or by a plausible alternative), add some keys."""
    d = dict(d)
    for k in list(d):
        action = draw(st.sampled_from(["keep"] * 4 + ["drop", "junk", "plausible"]))
        if action == "drop":
            del d[k]
        elif action == "junk":
            d[k] = draw(_JUNK)
        elif action == "plausible" and k in plausible:
            d[k] = draw(plausible[k])
    for k in draw(st.lists(st.text(max_size=8), max_size=2)):
        d[k] = draw(_JUNK)
    return d


_SIZE = st.integers(-1, 12)
_PLAUSIBLE_SNN = {
    "sizes": st.lists(st.one_of(_SIZE, st.just(10**12)), max_size=4),
    "T": st.integers(-1, 70000), "encoding": st.sampled_from(["direct", "rate", "morse"]),
    "reset": st.sampled_from(["subtract", "zero", ""]), "readout": st.sampled_from(["membrane", "spike_count", "x"]),
    "weight_bits": st.integers(0, 20), "membrane_bits": st.integers(0, 40), "leak_shift": st.integers(-1, 40),
    "out_leak_shift": st.integers(-1, 40), "rate_seed": st.integers(-1, 70000), "input_bits": st.integers(0, 9),
    "theta": st.floats(allow_nan=True, allow_infinity=True), "surrogate_slope": st.floats(allow_nan=True),
}
_PLAUSIBLE_ANN = {"n_inputs": st.sampled_from([0, 9, 144, 145, 10**12, 10**400]), "n_classes": st.integers(-1, 10**9)}


@st.composite
def _checkpoints(draw) -> dict:
    kind = draw(st.sampled_from(["snn", "ann"]))
    obj = _valid_snn_checkpoint() if kind == "snn" else _valid_ann_checkpoint()
    if draw(st.integers(0, 9)) == 0:
        obj["kind"] = draw(st.one_of(st.sampled_from(["snn", "ann", "cnn"]), _JUNK))
    what = draw(st.sampled_from(["config", "state_dict", "both", "top", "none"]))
    if what in ("config", "both"):
        obj["config"] = draw(_mutated(obj["config"], _PLAUSIBLE_SNN if kind == "snn" else _PLAUSIBLE_ANN))
    if what in ("state_dict", "both"):
        shapes = {k: tuple(v.shape) for k, v in obj["state_dict"].items()}
        plausible = {k: st.one_of(_tensors(), _tensors(shape=s)) for k, s in shapes.items()}
        obj["state_dict"] = draw(_mutated(obj["state_dict"], plausible))
    if what == "top":
        obj = draw(_mutated(obj, {"config": _JUNK, "state_dict": _JUNK, "meta": _JUNK}))
        obj["format"], obj["version"] = CHECKPOINT_FORMAT, 1
    return obj


def _check_fuzzed_checkpoint(obj: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.pt"
        torch.save(obj, p)
        try:
            model, meta = load_checkpoint(p)
        except CheckpointError as e:
            assert str(p) in str(e) and "\n" not in str(e), str(e)
        else:  # a model: then the file held a checkpoint this model really is
            assert isinstance(meta, dict) and isinstance(model, (SpikingMLP, tr.ANNTeacher))
            assert all(torch.isfinite(v).all() for v in model.state_dict().values())


_FUZZ = dict(deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)


@settings(max_examples=200, derandomize=True, **_FUZZ)
@given(_checkpoints())
def test_fuzzed_checkpoints_raise_only_checkpoint_error(obj):
    _check_fuzzed_checkpoint(obj)


@pytest.mark.slow
@settings(max_examples=5000, **_FUZZ)
@given(_checkpoints())
def test_fuzzed_checkpoints_raise_only_checkpoint_error_long(obj):
    _check_fuzzed_checkpoint(obj)


def test_valid_checkpoints_still_load(tmp_path):
    for obj in (_valid_snn_checkpoint(), _valid_ann_checkpoint()):
        torch.save(obj, tmp_path / "ok.pt")
        model, meta = load_checkpoint(tmp_path / "ok.pt")
        assert model.kind == obj["kind"] and meta == obj["meta"]
        assert all(torch.equal(model.state_dict()[k], v) for k, v in obj["state_dict"].items())
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(CheckpointError, match="is not a checkpoint file"):
        load_checkpoint(tmp_path / "dir.pt")


def test_save_checkpoint_interrupted_leaves_nothing(tmp_path, monkeypatch):
    real = torch.save

    def interrupted(obj, f, *a, **k):
        real(obj, f, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(torch, "save", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(SpikingMLP(_SNN_CFG), out / "x.pt")
    assert _tree(tmp_path) == ["out"]
    (out / "x.pt").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(SpikingMLP(_SNN_CFG), out / "x.pt")
    assert _tree(tmp_path) == ["out", "out/x.pt"] and (out / "x.pt").read_bytes() == b"old"


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))
