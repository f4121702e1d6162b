"""The ``verilog`` and ``latency`` subcommands (``sc_neurocore.cli.hw``): their outputs, the generator options,
the user errors, and ``verilog -o`` writing all three files or none."""

from __future__ import annotations

import json
import os

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.cli import main
from test_cli_bundle import _listing
from test_data import make_idx_dir
from test_hw_export import SMALL


def test_cli_verilog_and_latency(tmp_path, capsys):
    bpath = tmp_path / "net.scnb"
    save_bundle(random_bundle(SMALL["sizes"], SMALL["T"], seed=2), bpath)
    out = tmp_path / "out"
    assert main(["verilog", str(bpath), "-o", str(out), "--lanes", "4,2", "--pixels-per-beat", "4"]) == 0
    text = capsys.readouterr().out
    assert "latency worst case" in text
    rep = json.loads((out / "report.json").read_text())
    assert rep["generator"]["lanes"] == [4, 2]
    assert rep["weight_port"] is None
    assert main(["verilog", str(bpath), "-o", str(tmp_path / "wp"), "--weight-port"]) == 0
    capsys.readouterr()
    rep = json.loads((tmp_path / "wp" / "report.json").read_text())
    assert rep["generator"]["weight_port"] is True and rep["weight_port"]["words"] > 0
    assert "wgt_data" in (tmp_path / "wp" / "sc_neurocore_top.v").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sc_neurocore-verilog-")]
    # user errors: exit 2, nothing written
    bad = tmp_path / "bad"
    assert main(["verilog", str(bpath), "-o", str(bad), "--lanes", "0"]) == 2
    assert main(["verilog", str(bpath), "-o", str(bad), "--events", "3,1"]) == 2
    assert not bad.exists()
    assert "lanes must be positive" in capsys.readouterr().err
    assert main(["latency", str(bpath), "--pixels-per-beat", "4"]) == 0
    assert "worst case" in capsys.readouterr().out
    assert main(["latency", str(bpath), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["worst_case_cycles"] > 0


def test_latency_cli_names_the_data_dir_dataset(tmp_path, capsys):
    from sc_neurocore.bundle import save_bundle
    from sc_neurocore.cli import main
    from test_data import make_idx_dir

    b = save_bundle(random_bundle((20, 8, 3), 2), tmp_path / "r.scnb")
    d = tmp_path / "fashion"
    d.mkdir()
    make_idx_dir(d, n_test=7)
    assert main(["latency", str(b), "--data-dir", str(d)]) == 0
    out = capsys.readouterr().out
    assert "cycles over 7 fashion test images" in out and "None" not in out
    assert main(["latency", str(b), "--data-dir", str(d), "--limit", "3", "--json"]) == 0
    import json
    res = json.loads(capsys.readouterr().out)
    assert res["dataset"] == "fashion" and res["typical"]["n"] == 3


def _verilog_names():
    from sc_neurocore.hw.export import TOP_NAME
    return {f"{TOP_NAME}.v", "report.json", "report.md"}


def test_verilog_interrupted_leaves_the_old_output_whole(tmp_path, capsys, monkeypatch):
    b = save_bundle(random_bundle((6, 4, 3), 2), tmp_path / "b.scnb")
    out = tmp_path / "core"
    out.mkdir()
    old = {n: f"old {n}".encode() for n in _verilog_names()}
    for n, data in old.items():
        (out / n).write_bytes(data)
    (out / "notes.txt").write_text("mine")
    real_replace, real_rename, calls = os.replace, os.rename, []

    def interrupted_replace(src, dst, *a, **k):  # Ctrl-C while the outputs are put in place
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    monkeypatch.setattr(os, "rename", interrupted_replace)
    assert main(["verilog", str(b), "-o", str(out)]) == 130
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert files == {**old, "notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.scnb", "core"]  # no temporary folder left
    # uninterrupted, the folder is refilled: the three new files, the user's own file kept
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.setattr(os, "rename", real_rename)
    assert main(["verilog", str(b), "-o", str(out)]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(files) == _verilog_names() | {"notes.txt"} and files["notes.txt"] == b"mine"
    assert all(files[n] != old[n] for n in old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.scnb", "core"]


def test_verilog_refuses_special_output_folders_before_any_work(tmp_path, capsys, monkeypatch):
    b = save_bundle(random_bundle((6, 4, 3), 2), tmp_path / "b.scnb")
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "linkdir")
    (tmp_path / "afile").write_text("keep")
    os.mkfifo(tmp_path / "fifo")
    before = _listing(tmp_path)

    def no_work(*a, **k):
        raise AssertionError("the bundle was loaded before the output folder was checked")

    monkeypatch.setattr("sc_neurocore.cli.common.bundle_from_args", no_work)
    monkeypatch.setattr("sc_neurocore.cli.hw.bundle_from_args", no_work)
    for name, message in (("linkdir", "it is a symbolic link"), ("afile", "it is a regular file"),
                          ("fifo", "it is a FIFO")):
        assert main(["verilog", str(b), "-o", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert message in err and str(tmp_path / name) in err, (name, err)
    assert _listing(tmp_path) == before


def test_double_buffer_from_the_command_line(tmp_path, capsys):
    """``--double-buffer``: in the report's generator options and the latency output; refused with exit 2 and
    nothing written for a network it cannot serve (rate input)."""
    b = save_bundle(random_bundle((20, 8, 3), 2, seed=3), tmp_path / "r.scnb")
    out = tmp_path / "out"
    assert main(["verilog", str(b), "-o", str(out), "--lanes", "4,3", "--pixels-per-beat", "4",
                 "--double-buffer"]) == 0
    capsys.readouterr()
    assert json.loads((out / "report.json").read_text())["generator"]["double_buffer"] is True
    d = tmp_path / "data"
    d.mkdir()
    make_idx_dir(d, n_test=9)
    assert main(["latency", str(b), "--data-dir", str(d), "--pixels-per-beat", "4", "--double-buffer",
                 "--json"]) == 0
    db = json.loads(capsys.readouterr().out)["typical"]
    assert main(["latency", str(b), "--data-dir", str(d), "--pixels-per-beat", "4", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["typical"]
    assert db["mean_cycles"] == plain["mean_cycles"] + 1    # an image alone: phase LOAD more
    assert db["stream_cycles_per_image"] < plain["stream_cycles_per_image"] == plain["mean_cycles"]
    assert main(["latency", str(b), "--data-dir", str(d), "--double-buffer"]) == 0
    assert "(double-buffered input)" in capsys.readouterr().out
    rate = save_bundle(random_bundle((20, 8, 3), 2, seed=3, encoding="rate"), tmp_path / "rate.scnb")
    bad = tmp_path / "bad"
    assert main(["verilog", str(rate), "-o", str(bad), "--double-buffer"]) == 2
    assert "double_buffer needs direct pixel input" in capsys.readouterr().err
    assert not bad.exists()
