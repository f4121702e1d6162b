"""`sc-neurocore demo` end to end on a small budget: train, distil, export, Verilog, RTL bit-exact check."""

import json
import re

import pytest

from sc_neurocore import train as _train
from sc_neurocore.bundle import load_bundle
from sc_neurocore.cli import main
from sc_neurocore.demo import run_demo


def test_demo_end_to_end_small(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--teacher-T", "4", "--T", "2", "--teacher-epochs", "1",
               "--student-epochs", "1", "--limit", "500", "--threads", "1", "--rtl-images", "3", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    r = json.loads((out / "demo.json").read_text())
    assert r["ok"] is True
    assert r["rtl"]["vectors_checked"] == 3 and r["rtl"]["mismatched_vectors"] == 0
    assert r["rtl"]["cycle_mismatches"] == 0
    assert (out / "verilog" / "sc_neurocore_top.v").is_file() and (out / "student-t2.scnb").is_file()
    rows = {row["model"]: row for row in r["latency"]}
    assert rows["student"]["T"] == 2 and rows["teacher"]["T"] == 4
    assert rows["student"]["worst_cycles"] >= rows["student"]["typical_cycles"] > 0
    assert "RTL bit-exact with the golden model: yes" in printed



@pytest.mark.parametrize("change,needle", [
    ({"T_student": 0}, "T_student must be between 1 and 65535, not 0"),
    ({"teacher_epochs": 0}, "teacher_epochs must be at least 1, not 0"),
    ({"rtl_images": -1}, "rtl_images must be an integer >= 0, not -1"),
    ({"simulator": "modelsim"}, "simulator must be one of ('verilator', 'icarus'), not 'modelsim'"),
    ({"clock_mhz": float("nan")}, "clock_mhz must be a positive finite number, not nan"),
])
def test_run_demo_checks_everything_before_it_starts(tmp_path, monkeypatch, change, needle):

    monkeypatch.setattr(_train, "prepare_data", lambda *a, **k: pytest.fail("the data was loaded"))
    with pytest.raises(ValueError) as e:
        run_demo(tmp_path / "demo", **{"quiet": True, "log": lambda m: None, **change})
    assert str(e.value) == needle or str(e.value).startswith(needle), e.value
    assert list(tmp_path.iterdir()) == []


def test_run_demo_refuses_an_unwritable_output_first(tmp_path, monkeypatch):
    from sc_neurocore.fileio import OutputError

    monkeypatch.setattr(_train, "prepare_data", lambda *a, **k: pytest.fail("the data was loaded"))
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").mkdir()
    with pytest.raises(OutputError, match="demo.json: it is a directory"):
        run_demo(out, quiet=True, log=lambda m: None)
    (out / "demo.json").rmdir()
    (out / "verilog").write_text("not a folder")
    with pytest.raises(OutputError, match="verilog as the output folder: it is a regular file"):
        run_demo(out, quiet=True, log=lambda m: None)
    assert sorted(p.name for p in out.iterdir()) == ["verilog"]


def test_run_demo_reports_a_missing_simulator_before_training(tmp_path, monkeypatch):
    import sc_neurocore.sim.runner as runner

    def missing(sim):
        raise RuntimeError(f"{sim} not found: install it")

    monkeypatch.setattr(runner, "ensure_simulator", missing)
    monkeypatch.setattr(_train, "prepare_data", lambda *a, **k: pytest.fail("the data was loaded"))
    with pytest.raises(RuntimeError, match="^icarus not found"):
        run_demo(tmp_path / "demo", simulator="icarus", quiet=True, log=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_demo_training_steps_only(tmp_path):
    """``rtl_images=0``: the training half (teacher, student, summary.json), no Verilog."""
    r = run_demo(tmp_path / "demo", teacher_epochs=1, student_epochs=1, T_teacher=8, T_student=2, limit=400,
                 threads=1, rtl_images=0, quiet=True, log=lambda m: None)
    s = r["train"]
    assert (tmp_path / "demo" / "student-t2.scnb").is_file() and (tmp_path / "demo" / "summary.json").is_file()
    assert not (tmp_path / "demo" / "verilog").exists()
    b = load_bundle(tmp_path / "demo" / "student-t2.scnb")
    assert b.T == 2 and b.provenance["method"] == "distill-temporal"
    assert s["student"]["test_accuracy"] == b.provenance["test_accuracy"] > 0.25


@pytest.mark.parametrize("change,needle", [
    ({"teacher_epochs": 0}, "teacher_epochs must be at least 1, not 0"),
    ({"student_epochs": 0}, "student_epochs must be at least 1, not 0"),
    ({"T_student": 0}, "T_student must be between 1 and 65535, not 0"),
    ({"T_teacher": 70000}, "T_teacher must be between 1 and 65535, not 70000"),
    ({"limit": 0}, "limit must be at least 1, not 0"),
    ({"seed": -1}, "seed must be an integer between 0 and"),
])
def test_demo_training_checks_everything_before_it_starts(tmp_path, monkeypatch, change, needle):
    monkeypatch.setattr(_train, "prepare_data", lambda *a, **k: pytest.fail("the data was loaded"))
    with pytest.raises(ValueError, match=r"^" + re.escape(needle)):
        run_demo(tmp_path / "demo", **{"teacher_epochs": 1, "student_epochs": 1, "rtl_images": 0, "quiet": True,
                                       **change})
    assert list(tmp_path.iterdir()) == []
