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
