"""The ``synth`` and ``plan`` subcommands (``sc_neurocore.cli.synth``): their error exits, and their outputs
checked before any work (``synth -o`` gets both reports or neither, ``plan --plot`` exactly the file it names)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from sc_neurocore.bundle import random_bundle, save_bundle
from sc_neurocore.cli import main
from test_data import make_idx_dir


def test_synth_cli_bad_device(tmp_path, capsys):
    p = save_bundle(random_bundle((8, 4, 3), 2), tmp_path / "b.scnb")
    assert main(["synth", str(p), "--device", "xc7"]) == 2
    assert "device must be one of" in capsys.readouterr().err


def test_synth_cli_bad_timeout(tmp_path, capsys):
    p = save_bundle(random_bundle((8, 4, 3), 2), tmp_path / "b.scnb")
    assert main(["synth", str(p), "--device", "ecp5-25f", "--timeout", "0"]) == 2
    assert "--timeout must be a positive number of seconds, not 0.0" in capsys.readouterr().err


def _fake_synth(calls):
    def fake(bundle, config, device, use_cache=True, timeout=7200):
        calls.append(device)
        return {"device": device, "fits": True, "fmax_mhz": 50.0, "utilisation": {},
                "latency": {"worst_case_cycles": 100}}
    return fake


@pytest.mark.parametrize("kind", ["file", "fifo-json", "fifo-md", "link-md", "dir-md"])
def test_synth_cli_checks_the_output_before_running(tmp_path, capsys, monkeypatch, kind):
    import os

    calls = []
    monkeypatch.setattr("sc_neurocore.cli.synth._synth_bundle", _fake_synth(calls))
    p = save_bundle(random_bundle((8, 4, 3), 2), tmp_path / "b.scnb")
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
        message = "is not a directory"
    else:
        out.mkdir()
        what, name = kind.split("-")
        target = out / f"synth.{name}"
        if what == "fifo":
            os.mkfifo(target)
            message = "it is a FIFO"
        elif what == "link":
            (tmp_path / "elsewhere.md").write_text("keep")
            os.symlink(tmp_path / "elsewhere.md", target)
            message = "it is a symbolic link"
        else:
            target.mkdir()
            message = "it is a directory"
    before = sorted(str(q.relative_to(tmp_path)) for q in tmp_path.rglob("*"))
    assert main(["synth", str(p), "--device", "ecp5-25f", "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert calls == []  # refused before any synthesis
    assert sorted(str(q.relative_to(tmp_path)) for q in tmp_path.rglob("*")) == before  # no synth.json alone
    # with the obstacle gone, the folder gets both reports
    if kind == "file":
        out.unlink()
    elif kind == "dir-md":
        target.rmdir()
    else:
        target.unlink()
    assert main(["synth", str(p), "--device", "ecp5-25f", "-o", str(out)]) == 0
    assert calls == ["ecp5-25f"] and sorted(q.name for q in out.iterdir()) == ["synth.json", "synth.md"]
    assert json.loads((out / "synth.json").read_text())["worst_case_latency_us"] == 2.0


def test_synth_cli_checks_device_before_loading(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "missing.scnb"), "--device", "xc7"]) == 2
    assert "device must be one of" in capsys.readouterr().err


def test_plan_cli_on_random_bundles(tmp_path, capsys):
    for T in (1, 3):
        main(["random-bundle", "-o", str(tmp_path / f"r{T}.scnb"), "--sizes", "784-16-10", "--T", str(T)])
    capsys.readouterr()
    rc = main(["plan", str(tmp_path / "r1.scnb"), str(tmp_path / "r3.scnb"), "--latency-budget", "1s",
               "--clock-mhz", "100", "--limit", "50", "--json", "--plot", str(tmp_path / "plan.png")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["chosen"] in ("r1", "r3") and len(out["candidates"]) == 2
    for c in out["candidates"]:
        assert c["worst_cycles"] >= c["typical_cycles"] > 0
    assert (tmp_path / "plan.png").is_file()
    rc = main(["plan", str(tmp_path / "r1.scnb"), "--latency-budget", "1ns", "--clock-mhz", "100", "--limit", "20"])
    assert rc == 1 and "no T meets the 1 ns budget" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["plan", "--latency-budget", "10us", "--clock-mhz", "100"], "give bundle paths, --pretrained NAME or --pretrained-all"),
    (["plan", "x.scnb", "--latency-budget", "10"], "has no unit"),
    (["plan", "x.scnb", "--latency-budget", "10us", "--clock-mhz", "100", "--device", "ecp5-25f"],
     "give --clock-mhz F (a fixed clock and your --lanes/--events) or --device NAME"),
    (["plan", "x.scnb", "--latency-budget", "10us", "--device", "xc7a35t"], "device must be one of ecp5-85f"),
    (["plan", "x.scnb", "--latency-budget", "10us", "--clock-mhz", "fast"], "clock must be a frequency"),
    (["synth", "x.scnb"], "bundle file not found"),
])
def test_plan_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def plan_dir(tmp_path):
    save_bundle(random_bundle((20, 6, 3), 2, seed=1), tmp_path / "r.scnb")
    data = tmp_path / "digits"
    data.mkdir()
    make_idx_dir(data)
    return tmp_path


def _plan(d, *extra):
    return ["plan", str(d / "r.scnb"), "--latency-budget", "1s", "--clock-mhz", "100", "--data-dir",
            str(d / "digits"), *extra]


def _entries(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "--limit must be at least 1, not 0"),
    (["--limit", "-3"], "--limit must be at least 1, not -3"),
    (["--clock-mhz", "1e400"], "clock '1e400' is too large"),
    (["--latency-budget", "1e400us"], "latency budget '1e400us' is too large"),
    (["--plot", "{d}/plan"], "the plot file must end in .png, .pdf or .svg, not '{d}/plan'"),
    (["--plot", "{d}/plan.jpeg"], "must end in .png, .pdf or .svg"),
    (["--plot", "{d}/digits"], "--plot {d}/digits is a directory: give the plot file, e.g. {d}/digits/plan.png"),
])
def test_plan_cli_refuses(plan_dir, capsys, argv, message):
    before = _entries(plan_dir)
    argv = [a.replace("{d}", str(plan_dir)) for a in argv]
    assert main(_plan(plan_dir, *argv)) == 2
    captured = capsys.readouterr()
    assert message.replace("{d}", str(plan_dir)) in captured.err and captured.out == ""
    assert _entries(plan_dir) == before  # no plan.png, no digits.png


def test_plan_refuses_special_plot_files_before_any_work(plan_dir, capsys, monkeypatch):
    os.mkfifo(plan_dir / "p.png")
    os.symlink("r.scnb", plan_dir / "l.png")
    cases = [("p.png", "it is a FIFO"), ("l.png", "it is a symbolic link")]
    if os.geteuid() == 0:
        os.mknod(plan_dir / "n.png", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        cases.append(("n.png", "it is a character device"))

    def no_work(*a, **k):
        raise AssertionError("the dataset was loaded before --plot was checked")

    monkeypatch.setattr("sc_neurocore.data.load_dataset", no_work)
    before = _entries(plan_dir)
    for name, message in cases:
        assert main(_plan(plan_dir, "--plot", str(plan_dir / name))) == 2, name
        assert message in capsys.readouterr().err, name
    assert _entries(plan_dir) == before and stat.S_ISFIFO(os.lstat(plan_dir / "p.png").st_mode)


def test_plan_plot_needs_matplotlib_up_front(plan_dir, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(_plan(plan_dir, "--plot", str(plan_dir / "p.png"))) == 2
    captured = capsys.readouterr()
    assert "--plot needs matplotlib" in captured.err and captured.out == ""


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plan_plot_writes_exactly_the_reported_file(plan_dir, capsys, suffix, magic):
    out = plan_dir / "out"
    out.mkdir()
    assert main(_plan(plan_dir, "--plot", str(out))) == 2  # a folder: refused, not written as out.png
    assert f"--plot {out} is a directory" in capsys.readouterr().err
    assert not (plan_dir / "out.png").exists() and list(out.iterdir()) == []
    target = out / "sub" / f"plan{suffix}"
    assert main(_plan(plan_dir, "--plot", str(target))) == 0
    assert f"Pareto plot: {target}\n" in capsys.readouterr().out
    assert target.read_bytes().startswith(magic)
    assert [str(p.relative_to(out)) for p in sorted(out.rglob("*"))] == ["sub", f"sub/plan{suffix}"]


def test_plan_refuses_labels_beyond_the_bundles_classes(plan_dir, capsys):
    save_bundle(random_bundle((20, 6, 2), 2), plan_dir / "r.scnb")  # 2 classes; the labels are 0..2
    assert main(_plan(plan_dir)) == 2
    assert "r: the digits test labels range over 0..2 but the bundle has 2 classes" in capsys.readouterr().err


def test_plan_pretrained_all_takes_the_shipped_image_bundles_and_leaves_out_event_input():
    from sc_neurocore.bundle import pretrained_names, resolve_bundle
    from sc_neurocore.cli.synth import pretrained_candidates

    names = [n for n, _ in pretrained_candidates("mnist")]
    # what is shipped, read independently: every bundle of MNIST images (the -lite one too), none of the recordings
    want = [n for n in pretrained_names() if resolve_bundle(pretrained=n).provenance["dataset"] == "mnist"]
    assert names == want and "mnist-t4-lite" in names and "mnist-saccade-t4" not in names
    assert [n for n, _ in pretrained_candidates("fashion-mnist")] == ["fmnist-conv-t4"]
