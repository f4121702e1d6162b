"""`sc-neurocore train`, `distill`, `demo` on hostile and careless input (issue 12).

Every case goes through ``sc_neurocore.cli.main``: exit status 2, a one-line
``sc-neurocore: error: …`` naming the problem, and nothing created or left behind.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from sc_neurocore import train as tr
from sc_neurocore.cli import main
from sc_neurocore.data import write_idx
from sc_neurocore.train import CHECKPOINT_FORMAT

torch.set_num_threads(1)

FAST = ["--T", "2", "--epochs", "1", "--hidden", "4", "--threads", "1", "--augment", "0", "--quiet"]
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def _write_idx(path: Path, a: np.ndarray) -> None:
    """An IDX file of any of the types the format allows (data.write_idx writes uint8 only)."""
    a = np.ascontiguousarray(a)
    header = bytes([0, 0, IDX_CODES[a.dtype], a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    path.write_bytes(header + a.tobytes())


def _idx_dir(d: Path, n_train: int = 24, n_test: int = 8, side: int = 4, train_labels=None) -> Path:
    """Square ``side`` x ``side`` images, 3 classes; ``train_labels`` replaces the training labels file."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(d / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side)))
        write_idx(d / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 3)
    if train_labels is not None:
        _write_idx(d / "train-labels-idx1-ubyte", train_labels)
    return d


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("sc-neurocore: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the command gets as far as loading data."""
    def refuse(*a, **k):
        raise AssertionError("the data was loaded before the bad option was reported")

    monkeypatch.setattr(tr, "prepare_data", refuse)


# --------------------------------------------------------------------------------------------
# distill --teacher: malformed checkpoints
# --------------------------------------------------------------------------------------------


def _ck(**kw) -> dict:
    obj = {"format": CHECKPOINT_FORMAT, "version": 1, "kind": "snn", "config": {"sizes": [16, 4, 3], "T": 2},
           "state_dict": {"weights.0": torch.zeros(16, 4), "weights.1": torch.zeros(4, 3),
                          "log_logit_scale": torch.tensor(1.0)}, "meta": {}}
    for k, v in kw.items():
        if v is ...:
            del obj[k]
        else:
            obj[k] = v
    return obj


BAD_CHECKPOINTS = [
    (_ck(config=...), "the checkpoint has no 'config'"),
    (_ck(state_dict=...), "the checkpoint has no 'state_dict'"),
    (_ck(config=[16, 4, 3]), "'config' must be a dict, not list"),
    (_ck(state_dict=[torch.zeros(2)]), "'state_dict' must be a dict, not list"),
    (_ck(config={"T": 2}), "config['sizes'] is missing"),
    (_ck(config={"sizes": "16-4-3"}), "config['sizes'] must be a list of at least 2 positive integers"),
    (_ck(config={"sizes": [16, 4, 3], "T": "2"}), "config['T'] must be an integer, not '2'"),
    (_ck(config={"sizes": [16, 4, 3], "encoding": "morse"}), "bad config: encoding must be one of"),
    (_ck(state_dict={"w": torch.zeros(2)}), "the state_dict does not fit the config (missing 'weights.0'"),
    (_ck(state_dict={"weights.0": torch.zeros(4, 16), "weights.1": torch.zeros(4, 3),
                     "log_logit_scale": torch.tensor(1.0)}),
     "state_dict['weights.0'] has shape (4, 16), the config needs (16, 4)"),
    (_ck(state_dict={"weights.0": torch.zeros(16, 4), "weights.1": "zeros", "log_logit_scale": torch.tensor(1.0)}),
     "state_dict['weights.1'] must be a tensor, not str"),
    (_ck(state_dict={"weights.0": torch.full((16, 4), float("nan")), "weights.1": torch.zeros(4, 3),
                     "log_logit_scale": torch.tensor(1.0)}), "state_dict['weights.0'] holds NaN or infinite values"),
    (_ck(kind="ann", config={"n_classes": 3}), "config['n_inputs'] is missing"),
    (_ck(kind="ann", config={"n_inputs": "abc", "n_classes": 3}), "config['n_inputs'] must be a positive integer"),
    (_ck(meta=torch.zeros(3)), "'meta' must be a dict, not Tensor"),
    (_ck(version=torch.tensor(1)), "unsupported checkpoint version"),
]


@pytest.mark.parametrize("obj,needle", BAD_CHECKPOINTS, ids=[n for _, n in BAD_CHECKPOINTS])
def test_distill_malformed_teacher_checkpoint(tmp_path, capsys, no_data, obj, needle):
    teacher = tmp_path / "nc.pt"
    torch.save(obj, teacher)
    rc = main(["distill", "--teacher", str(teacher), *FAST, "-o", str(tmp_path / "s.scnb")])
    err = _err(capsys)
    assert rc == 2 and f"{teacher}: " in err and needle in err, err
    assert _tree(tmp_path) == ["nc.pt"]


class Gadget:
    """Not a tensor, not a builtin: its pickle is a GLOBAL that weights_only refuses."""


class Shell:
    def __reduce__(self):
        return (os.system, ("echo this should never run",))


@pytest.mark.parametrize("payload", [Gadget(), Shell()], ids=["class", "os.system"])
def test_distill_teacher_with_code_is_refused_in_one_line(tmp_path, capsys, no_data, payload):
    teacher = tmp_path / "evil.pt"
    torch.save(_ck(meta={"x": payload}), teacher)
    rc = main(["distill", "--teacher", str(teacher), *FAST, "-o", str(tmp_path / "s.scnb")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == f"sc-neurocore: error: refusing to load a checkpoint that contains code: {teacher}\n"
    assert _tree(tmp_path) == ["evil.pt"]


def test_distill_garbage_teacher_gets_one_short_line(tmp_path, capsys, no_data):
    teacher = tmp_path / "junk.pt"
    teacher.write_bytes(b"not a checkpoint")
    assert main(["distill", "--teacher", str(teacher), *FAST, "-o", str(tmp_path / "s.scnb")]) == 2
    err = _err(capsys)
    assert f"{teacher} is not an sc_neurocore checkpoint" in err and "weights_only" not in err and len(err) < 200
    teacher.unlink()
    teacher.mkdir()  # a folder named like a checkpoint
    assert main(["distill", "--teacher", str(teacher), *FAST, "-o", str(tmp_path / "s.scnb")]) == 2
    assert "is not a checkpoint file" in _err(capsys)
    assert _tree(tmp_path) == ["junk.pt"]


def test_distill_refuses_to_replace_its_teacher(tmp_path, capsys):
    d = _idx_dir(tmp_path / "idx")
    assert main(["train", "--data-dir", str(d), *FAST, "-o", str(tmp_path / "t.scnb")]) == 0
    before = (tmp_path / "t.pt").read_bytes()
    for out in ("t.scnb", "t"):  # both would write the student's checkpoint to t.pt
        rc = main(["distill", "--teacher", str(tmp_path / "t.pt"), "--data-dir", str(d), *FAST,
                   "-o", str(tmp_path / out)])
        assert rc == 2 and "would replace the teacher checkpoint" in _err(capsys)
    assert (tmp_path / "t.pt").read_bytes() == before
    assert _tree(tmp_path) == ["idx", *[f"idx/{p}" for p in _tree(d)], "t.pt", "t.scnb"]


# --------------------------------------------------------------------------------------------
# train --data-dir: labels the network cannot have
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [
    np.array([0, 1, 2, -1] * 6, np.int8),
    np.array([0, 1, 2, np.nan] * 6, ">f4"),
    np.array([0, 1, 2, 2**31 - 1] * 6, ">i4"),  # would size a 2^31-class output layer
], ids=["minus-one", "nan", "huge"])
@pytest.mark.parametrize("cmd", ["train", "train-ann", "distill-self"])
def test_bad_labels_are_refused_before_training(tmp_path, capsys, monkeypatch, labels, cmd):
    d = _idx_dir(tmp_path / "idx", side=12, train_labels=labels)
    monkeypatch.setattr(tr.pipeline, "fit", lambda *a, **k: pytest.fail("training started"))
    argv = {"train": ["train"], "train-ann": ["train", "--ann"], "distill-self": ["distill", "--method", "self"]}[cmd]
    rc = main([*argv, "--data-dir", str(d), *FAST, "-o", str(tmp_path / "o.scnb")])
    err = _err(capsys)
    assert rc == 2 and "label" in err, err
    assert _tree(tmp_path) == ["idx", *[f"idx/{p}" for p in _tree(d)]]


# --------------------------------------------------------------------------------------------
# options checked before the data is loaded
# --------------------------------------------------------------------------------------------


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


OUTPUTS = [  # (what to make in tmp_path, -o, message)
    (lambda t: (t / "o.pt").mkdir(), "o.scnb", "refusing to write over {tmp}/o.pt: it is a directory"),
    (lambda t: (t / "o.scnb").symlink_to(t / "elsewhere.scnb"), "o.scnb", "it is a symbolic link"),
    (lambda t: (t / "o.pt").symlink_to(t / "elsewhere.pt"), "o.scnb", "{tmp}/o.pt: it is a symbolic link"),
    (lambda t: _fifo(t / "o.scnb"), "o.scnb", "it is a FIFO, not a regular file"),
    (lambda t: _socket(t / "o.pt"), "o.scnb", "{tmp}/o.pt: it is a socket"),
    (lambda t: (t / "file").write_text("x"), "file/o.scnb", "{tmp}/file is not a directory"),
    (lambda t: None, "o.pt", "the bundle must not be named *.pt"),
]


@pytest.mark.parametrize("make,out,needle", OUTPUTS, ids=[n for *_, n in OUTPUTS])
@pytest.mark.parametrize("cmd", ["train", "distill"])
def test_unwritable_output_is_refused_before_the_data_is_loaded(tmp_path, capsys, no_data, make, out, needle, cmd):
    make(tmp_path)
    before = _tree(tmp_path)
    argv = ["train"] if cmd == "train" else ["distill", "--method", "self"]
    assert main([*argv, *FAST, "-o", str(tmp_path / out)]) == 2
    err = _err(capsys)
    assert needle.format(tmp=tmp_path) in err, err
    assert _tree(tmp_path) == before


def test_ann_output_is_checked_before_the_data_is_loaded(tmp_path, capsys, no_data):
    (tmp_path / "cnn.pt").mkdir()
    assert main(["train", "--ann", *FAST, "-o", str(tmp_path / "cnn.scnb")]) == 2
    assert "it is a directory, not a regular file" in _err(capsys)
    assert _tree(tmp_path) == ["cnn.pt"]


def test_output_in_a_read_only_folder(tmp_path, capsys, no_data, monkeypatch):
    from sc_neurocore import fileio

    ro = tmp_path / "ro"
    ro.mkdir()
    # the tests run as root, who may write anywhere: the folder is made unwritable for os.access instead
    real_access = fileio.os.access
    monkeypatch.setattr(fileio.os, "access", lambda p, mode: False if Path(p) == ro else real_access(p, mode))
    assert main(["train", *FAST, "-o", str(ro / "o.scnb")]) == 2
    assert "no permission to create files in" in _err(capsys)
    assert _tree(tmp_path) == ["ro"]


@pytest.mark.parametrize("argv,needle", [
    (["train", "--lr", "nan"], "--lr must be a positive finite number, not nan"),
    (["train", "--lr", "inf"], "--lr must be a positive finite number, not inf"),
    (["train", "--weight-decay", "nan"], "--weight-decay must be a finite number >= 0, not nan"),
    (["train", "--weight-decay", "inf"], "--weight-decay must be a finite number >= 0, not inf"),
    (["train", "--ann", "--lr", "inf"], "--lr must be a positive finite number, not inf"),
    (["train", "--seed", "-1"], "--seed must be an integer between 0 and"),
    (["train", "--hidden", "abc"], "--hidden must be positive integers separated by commas"),
    (["train", "--hidden", "64,x"], "--hidden must be positive integers separated by commas"),
    (["train", "--weight-bits", "1"], "--weight-bits must be between 2 and 16, not 1"),
    (["train", "--encoding", "rate", "--input-bits", "1"], "--input-bits must be 8 with 'rate' encoding"),
    (["distill", "--method", "self", "--alpha", "nan"], "--alpha must be a number in [0, 1], not nan"),
    (["distill", "--method", "self", "--temperature", "inf"], "--temperature must be a positive finite number"),
    (["distill", "--method", "self", "--entropy-weight", "inf"], "--entropy-weight must be a non-negative finite number"),
    (["distill", "--method", "self", "--T", "4", "--teacher-T", "4"], "self-distillation needs --teacher-T greater than the student's T (4 <= 4)"),
    (["distill", "--method", "mixed", "--T", "4", "--teacher-T", "2"], "self-distillation needs --teacher-T greater than the student's T (2 <= 4)"),
    (["distill", "--method", "self", "--hidden", "abc"], "--hidden must be positive integers separated by commas"),
])
def test_bad_options_are_refused_before_the_data_is_loaded(tmp_path, capsys, no_data, argv, needle):
    assert main([*argv, "--quiet", "-o", str(tmp_path / "o.scnb")]) == 2
    assert needle in _err(capsys)
    assert _tree(tmp_path) == []


def test_augment_on_non_square_images_is_refused_before_training(tmp_path, capsys, monkeypatch):
    d = tmp_path / "idx"
    d.mkdir()
    from test_data import make_idx_dir

    make_idx_dir(d)  # 4 x 5 images
    monkeypatch.setattr(tr.pipeline, "fit", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--data-dir", str(d), "--T", "2", "--epochs", "1", "--quiet",
                 "-o", str(tmp_path / "o.scnb")]) == 2
    assert "--augment 1 needs square images, but idx images have 20 pixels; use --augment 0" in _err(capsys)
    assert not (tmp_path / "o.scnb").exists()


# --------------------------------------------------------------------------------------------
# demo: every option before anything runs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,needle", [
    (["--T", "0"], "--T must be between 1 and 65535, not 0"),
    (["--teacher-T", "0"], "--teacher-T must be between 1 and 65535, not 0"),
    (["--teacher-epochs", "0"], "--teacher-epochs must be at least 1, not 0"),
    (["--student-epochs", "0"], "--student-epochs must be at least 1, not 0"),
    (["--limit", "0"], "--limit must be at least 1, not 0"),
    (["--seed", "-1"], "--seed must be an integer between 0 and"),
])
@pytest.mark.parametrize("rtl", ["0", "3"])
def test_demo_bad_option_creates_nothing(tmp_path, capsys, no_data, argv, needle, rtl):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--rtl-images", rtl, "--quiet", *argv]) == 2
    assert needle in _err(capsys)
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("rtl", ["0", "3"])
def test_demo_unwritable_output_creates_nothing(tmp_path, capsys, no_data, rtl):
    (tmp_path / "file").write_text("x")
    assert main(["demo", "-o", str(tmp_path / "file"), "--rtl-images", rtl, "--quiet"]) == 2
    assert "it is a regular file, not a directory" in _err(capsys)
    out = tmp_path / "demo"
    out.mkdir()
    (out / "student-t4.pt").mkdir()  # where the student checkpoint goes
    assert main(["demo", "-o", str(out), "--rtl-images", rtl, "--quiet"]) == 2
    assert f"refusing to write over {out / 'student-t4.pt'}: it is a directory" in _err(capsys)
    assert _tree(tmp_path) == ["demo", "demo/student-t4.pt", "file"]


# --------------------------------------------------------------------------------------------
# the bundle and its checkpoint: both or neither, no temporary files
# --------------------------------------------------------------------------------------------


def _failing_save(exc):
    real = torch.save

    def save(obj, f, *a, **k):
        real(obj, f, *a, **k)  # a complete temporary file, then the failure (Ctrl-C, disk full)
        raise exc

    return save


@pytest.mark.parametrize("exc,rc", [(KeyboardInterrupt(), 130), (OSError(28, "No space left on device"), 2)],
                         ids=["ctrl-c", "disk-full"])
@pytest.mark.parametrize("existing", [False, True])
def test_train_writes_bundle_and_checkpoint_together(tmp_path, capsys, monkeypatch, exc, rc, existing):
    d = _idx_dir(tmp_path / "idx")
    out = tmp_path / "out"
    out.mkdir()
    if existing:
        assert main(["train", "--data-dir", str(d), *FAST, "--seed", "1", "-o", str(out / "m.scnb")]) == 0
    before = {p: p.read_bytes() for p in out.iterdir()}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    # torch's compile cache (made in the temporary folder when Adam first imports torch._dynamo in this
    # process, i.e. when this test runs first) is not a file of ours: keep it out of the checked folder
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "torch-cache"))
    monkeypatch.setattr(torch, "save", _failing_save(exc))
    capsys.readouterr()
    assert main(["train", "--data-dir", str(d), *FAST, "-o", str(out / "m.scnb")]) == rc
    assert {p: p.read_bytes() for p in out.iterdir()} == before  # the old pair (or nothing), untouched
    assert list(scratch.iterdir()) == []
    monkeypatch.undo()
    # and the pair written for real: both files; the checkpoint has the bytes it always had
    saved = []
    real_object = tr.pipeline._checkpoint_object
    monkeypatch.setattr(tr.pipeline, "_checkpoint_object", lambda *a: saved.append(real_object(*a)) or saved[-1])
    assert main(["train", "--data-dir", str(d), *FAST, "-o", str(out / "m.scnb")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["m.pt", "m.scnb"]
    torch.save(saved[0], tmp_path / "m.pt.tmp")  # how checkpoints were always saved: to OUT.pt.tmp
    assert (tmp_path / "m.pt.tmp").read_bytes() == (out / "m.pt").read_bytes()


def test_train_ann_interrupted_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    d = _idx_dir(tmp_path / "idx", side=12)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(torch, "save", _failing_save(KeyboardInterrupt()))
    assert main(["train", "--ann", "--data-dir", str(d), *FAST, "-o", str(out / "cnn.pt")]) == 130
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------------------------
# one validation, in the library; the command line only maps field names to flags
# --------------------------------------------------------------------------------------------


def test_the_cli_maps_a_library_field_name_to_its_flag():
    from sc_neurocore.cli.train import DEMO_FLAGS, flagged
    from sc_neurocore.train import TrainConfig

    with pytest.raises(ValueError) as e:
        TrainConfig(label_smoothing=1.0)
    assert str(e.value) == "label_smoothing must be in [0, 1), not 1.0"  # the library names its field
    assert str(flagged(e.value)) == "--label-smoothing must be in [0, 1), not 1.0"
    assert str(flagged(ValueError("T_student must be between 1 and 65535, not 0"), DEMO_FLAGS)) \
        == "--T must be between 1 and 65535, not 0"
    other = ValueError("the training set is empty")
    assert flagged(other) is other  # a message that does not start with a field is left alone


def test_the_library_messages_name_no_flags():
    import re as _re

    root = Path(__file__).resolve().parent.parent / "sc_neurocore"
    for f in [*sorted((root / "train").glob("*.py")), root / "params.py", root / "demo.py"]:
        for m in _re.finditer(r'raise \w+\(f?"([^"]*)', f.read_text()):
            assert " --" not in " " + m.group(1), f"{f.name}: {m.group(1)!r} names a command-line flag"


def test_distill_with_feature_distillation(tmp_path, capsys):
    from sc_neurocore.bundle import load_bundle

    d = _idx_dir(tmp_path / "idx", side=12)  # the ANN teacher needs 12x12 images
    t = ["--data-dir", str(d), "--epochs", "1", "--threads", "1", "--augment", "0", "--quiet"]
    assert main(["train", *t, "--T", "4", "--hidden", "4", "-o", str(tmp_path / "t.scnb")]) == 0
    assert main(["train", "--ann", *t, "-o", str(tmp_path / "ann.scnb")]) == 0
    out = tmp_path / "s.scnb"
    assert main(["distill", *t, "--T", "2", "--teacher", str(tmp_path / "t.pt"), "--feature-weight", "2",
                 "-o", str(out)]) == 0
    prov = load_bundle(out).provenance
    assert prov["train_config"]["feature_weight"] == 2 and "--feature-weight 2" in prov["command"]
    capsys.readouterr()
    cases = [
        (["--teacher", str(tmp_path / "ann.pt")], "feature distillation needs an SNN teacher (its hidden spikes); this teacher is a float ANN"),
        (["--teacher", str(tmp_path / "t.pt"), "--hidden", "6"],
         "feature distillation pairs hidden layers: the student's are 6, the teacher's 4"),
        (["--method", "self"], "--feature-weight needs method 'temporal' or 'average' (an SNN teacher's hidden spikes), not 'self'"),
        (["--teacher", str(tmp_path / "t.pt"), "--feature-weight", "-1"], "--feature-weight must be a non-negative"),
    ]
    for extra, needle in cases:
        bad = tmp_path / "bad.scnb"
        argv = ["distill", *t, "--T", "2", "--feature-weight", "1", *extra, "-o", str(bad)]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        assert needle in err, (needle, err)
        assert not bad.exists() and not bad.with_suffix(".pt").exists()


def test_self_distillation_of_a_non_spiking_model_is_refused(tmp_path, capsys):
    d = _idx_dir(tmp_path / "idx", side=12)
    t = ["--data-dir", str(d), "--epochs", "1", "--threads", "1", "--augment", "0", "--quiet"]
    assert main(["train", "--ann", *t, "-o", str(tmp_path / "ann.scnb")]) == 0
    capsys.readouterr()
    for method in ("self", "mixed"):
        out = tmp_path / f"{method}.scnb"
        assert main(["distill", *t, "--T", "2", "--method", method, "--teacher", str(tmp_path / "ann.pt"),
                     "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"self-distillation ({method}) runs a spiking model at more timesteps; the teacher checkpoint is a " \
               "non-spiking ANN model" in err
        assert not out.exists() and not out.with_suffix(".pt").exists()
