"""The command line: --version, info, eval, random-bundle, and error exits."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sc_neurocore import __version__
from sc_neurocore.bundle import load_bundle
from sc_neurocore.cli import main
from test_data import make_idx_dir


def test_version():
    out = subprocess.run([sys.executable, "-m", "sc_neurocore.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"sc-neurocore {__version__}"


def test_random_info_eval(tmp_path, capsys):
    b = tmp_path / "r.scnb"
    assert main(["random-bundle", "-o", str(b), "--sizes", "20-8-3", "--T", "3"]) == 0
    assert load_bundle(b).network.sizes == (20, 8, 3)
    assert main(["info", str(b), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["sizes"] == [20, 8, 3] and info["T"] == 3
    make_idx_dir(tmp_path, n_test=10)  # 4x5 = 20 pixel images
    assert main(["eval", str(b), "--data-dir", str(tmp_path), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    from sc_neurocore.data import load_idx_dir
    from sc_neurocore.golden import infer
    ds = load_idx_dir(tmp_path)
    expect = float(np.mean(infer(load_bundle(b).network, ds.test_x).classes == ds.test_y))
    assert res["n"] == 10 and res["accuracy"] == expect


def test_info_shows_input_bits(capsys):
    assert main(["info", "--pretrained", "mnist-t4-lite"]) == 0
    assert "encoding=direct (1-bit inputs)" in capsys.readouterr().out
    assert main(["info", "--pretrained", "mnist-t4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_bits"] == 8


def test_eval_mnist_limit(tmp_path, capsys):
    b = tmp_path / "r.scnb"
    main(["random-bundle", "-o", str(b)])
    capsys.readouterr()
    assert main(["eval", str(b), "--limit", "50", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "(" in out and "/50)" in out


@pytest.mark.parametrize("argv, message", [
    (["eval", "missing.scnb"], "bundle file not found"),
    (["eval"], "give either a bundle path or --pretrained"),
    (["eval", "--pretrained", "nope"], "unknown pretrained bundle 'nope'"),
    (["random-bundle", "-o", "{tmp}/x.scnb", "--T", "0"], "T must be between 1 and 65535, not 0"),
])
def test_errors_exit_2(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.scnb").exists()


def test_eval_size_mismatch(tmp_path, capsys):
    b = tmp_path / "r.scnb"
    main(["random-bundle", "-o", str(b), "--sizes", "30-4-3"])
    make_idx_dir(tmp_path)
    assert main(["eval", str(b), "--data-dir", str(tmp_path), "--quiet"]) == 2
    assert "expects 30 inputs but" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    exe = [sys.executable, "-c", "import sys; from sc_neurocore.cli import main; sys.exit(main())"]
    r = subprocess.run(exe + ["eval", str(tmp_path / "nope.scnb")], capture_output=True, text=True)
    assert r.returncode == 2 and "error:" in r.stderr


# --- issue 12: what the command line shows, refuses and writes ------------------------------------------

import os
import stat
from pathlib import Path

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.data import Dataset


def _listing(d: Path) -> dict:
    """Every entry under ``d`` with its kind and content (what a failed command must leave unchanged)."""
    out = {}
    for p in sorted(d.rglob("*")):
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            out[str(p.relative_to(d))] = ("link", os.readlink(p))
        elif stat.S_ISREG(st.st_mode):
            out[str(p.relative_to(d))] = ("file", p.read_bytes())
        else:
            out[str(p.relative_to(d))] = (stat.S_IFMT(st.st_mode), None)
    return out


def test_info_escapes_control_characters_in_provenance(tmp_path, capsys):
    b = random_bundle((6, 3), 2)
    b = type(b)(b.network, {"note": "\x1b[31mred\x1b[0m\rover\x07", "author": "Zoë Ñandú 数字",
                            "nested": {"k": "\x1b]0;title\x07"}, "bidi": "abc\u202edef", "\x1b[2Jkey": 1})
    p = save_bundle(b, tmp_path / "b.scnb")
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[31mred\\x1b[0m\\rover\\x07" in out
    assert "Zoë Ñandú 数字" in out              # normal unicode text is kept as it is
    assert "abc\\u202edef" in out and "\\x1b[2Jkey" in out
    assert 'nested      {"k": "\\u001b]0;title\\u0007"}' in out  # other values are shown as JSON


def test_info_aligns_provenance_keys(tmp_path, capsys):
    b = tmp_path / "r.scnb"
    assert main(["random-bundle", "-o", str(b), "--sizes", "6-3"]) == 0
    capsys.readouterr()
    assert main(["info", str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"tool_version  {__version__}" in lines
    assert "kind          random" in lines and "seed          0" in lines


def test_error_messages_escape_control_characters(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "evil\x1b[2J\r.scnb")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    assert "bundle file not found" in err and "evil\\x1b[2J\\r.scnb" in err


@pytest.mark.parametrize("bs", ["-1", "0"])
def test_eval_refuses_batch_size_below_1(tmp_path, capsys, bs):
    b = save_bundle(random_bundle((20, 8, 3), 2), tmp_path / "r.scnb")
    make_idx_dir(tmp_path)
    assert main(["eval", str(b), "--data-dir", str(tmp_path), "--quiet", "--batch-size", bs]) == 2
    captured = capsys.readouterr()
    assert f"--batch-size must be at least 1, not {bs}" in captured.err and captured.out == ""


def test_eval_refuses_labels_beyond_the_bundles_classes(tmp_path, capsys):
    b = save_bundle(random_bundle((20, 8, 2), 2), tmp_path / "r.scnb")  # 2 classes; the labels are 0..2
    make_idx_dir(tmp_path)
    assert main(["eval", str(b), "--data-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "test labels range over 0..2 but the bundle has 2 classes (labels 0..1)" in err


def _fake_dataset(monkeypatch, test_x, test_y, name="fake"):
    ds = Dataset(name, np.zeros((2, test_x.shape[1]), np.uint8), np.zeros(2, np.int64), test_x, test_y)
    monkeypatch.setattr("sc_neurocore.data.load_dataset", lambda dataset="mnist", data_dir=None: ds)


def test_eval_refuses_negative_labels(tmp_path, capsys, monkeypatch):
    b = save_bundle(random_bundle((20, 8, 3), 2), tmp_path / "r.scnb")
    _fake_dataset(monkeypatch, np.zeros((4, 20), np.uint8), np.array([0, -1, 2, 1]))
    assert main(["eval", str(b), "--quiet"]) == 2
    assert "fake test labels range over -1..2 but the bundle has 3 classes" in capsys.readouterr().err


def test_eval_refuses_an_empty_test_set(tmp_path, capsys, monkeypatch):
    b = save_bundle(random_bundle((20, 8, 3), 2), tmp_path / "r.scnb")
    _fake_dataset(monkeypatch, np.zeros((0, 20), np.uint8), np.zeros(0, np.int64))
    assert main(["eval", str(b), "--quiet"]) == 2
    assert "the fake test set has no images" in capsys.readouterr().err


@pytest.mark.parametrize("sizes", ["abc", "10", "10--3", "10-3-", "", "784-x-10", "10-0-3"])
def test_random_bundle_refuses_bad_sizes(tmp_path, capsys, sizes):
    assert main(["random-bundle", "-o", str(tmp_path / "x.scnb"), "--sizes", sizes]) == 2
    err = capsys.readouterr().err
    assert "sc-neurocore: error: --sizes" in err and repr(sizes) in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, words", [
    (["--weight-bits", "99"], ("weight", "99")),
    (["--seed", "-1"], ("seed", "-1")),
])
def test_random_bundle_bad_parameters_name_the_problem(tmp_path, capsys, argv, words):
    # The checks live in bundle.random_bundle; the command line passes them through with exit status 2.
    assert main(["random-bundle", "-o", str(tmp_path / "x.scnb"), "--sizes", "6-3"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sc-neurocore: error: ") and all(w in err for w in words), err
    assert list(tmp_path.iterdir()) == []


def test_random_bundle_input_bits(tmp_path, capsys):
    p = tmp_path / "x.scnb"
    assert main(["random-bundle", "-o", str(p), "--sizes", "6-3", "--input-bits", "2"]) == 0
    assert load_bundle(p).network.input_bits == 2
    p.unlink()
    assert main(["random-bundle", "-o", str(p), "--sizes", "6-3", "--input-bits", "9"]) == 2
    assert "input_bits must be between 1 and 8, not 9" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _special_outputs(tmp_path):
    """Output paths that must never be written over: name -> (path, message)."""
    (tmp_path / "target.txt").write_text("keep me")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("target.txt", tmp_path / "link.scnb")
    (tmp_path / "adir").mkdir()
    cases = {"fifo": (tmp_path / "fifo", "it is a FIFO"),
             "link": (tmp_path / "link.scnb", "it is a symbolic link"),
             "dir": (tmp_path / "adir", "it is a directory")}
    if os.geteuid() == 0:
        os.mknod(tmp_path / "fakenull", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        cases["chardev"] = (tmp_path / "fakenull", "it is a character device")
    return cases


def test_random_bundle_checks_the_output_before_generating(tmp_path, capsys, monkeypatch):
    cases = _special_outputs(tmp_path)
    before = _listing(tmp_path)

    def no_work(*a, **k):
        raise AssertionError("random_bundle ran before the output was checked")

    monkeypatch.setattr("sc_neurocore.bundle.random_bundle", no_work)
    for name, (path, message) in cases.items():
        assert main(["random-bundle", "-o", str(path), "--sizes", "6-3"]) == 2, name
        err = capsys.readouterr().err
        assert message in err and str(path) in err, (name, err)
    assert _listing(tmp_path) == before
    assert (tmp_path / "target.txt").read_text() == "keep me"


def test_pretrained_empty_name(capsys):
    assert main(["info", "--pretrained", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sc-neurocore: error: ") and "pretrained" in err and "NoneType" not in err, err


def test_pretrained_name_is_not_a_path(tmp_path, capsys):
    # A bundle that exists outside the shipped folder must not be reachable through --pretrained.
    from sc_neurocore import bundle as bundle_mod

    save_bundle(random_bundle((6, 3), 2), tmp_path / "outside.scnb")
    shipped = Path(bundle_mod.__file__).parent / "pretrained"
    for name in (str(tmp_path / "outside"), os.path.relpath(tmp_path / "outside", shipped)):
        assert main(["info", "--pretrained", name, "--json"]) == 2, name
        captured = capsys.readouterr()
        assert captured.out == "" and "pretrained" in captured.err, (name, captured.err)
