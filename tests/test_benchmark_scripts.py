"""The bookkeeping of the benchmark scripts that make the shipped bundles and the results tables: run order,
what counts as done, and the numbers their tables print (checked against hand-computed values)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_an_extras_float_teacher_runs_first_and_counts_as_done_by_its_checkpoint(tmp_path):
    pre = _load("pretrained")
    args = pre.argparse.Namespace(epochs=15, seed=0, threads=1, device="cpu", augment=1, limit=None)
    cmds = pre.extra_commands("fmnist-conv-t4", args, tmp_path)
    teacher, student = cmds
    assert teacher[:2] == ["train", "--ann"] and student[0] == "distill"
    assert str(tmp_path / "fmnist-cnn.pt") in student
    first, rest = pre._teachers_first(list(reversed(cmds)))
    assert first == [teacher] and rest == [student]
    assert not pre._done(teacher)
    (tmp_path / "fmnist-cnn.pt").write_bytes(b"")   # an ANN teacher writes only OUT.pt
    assert pre._done(teacher) and not pre._done(student)
    (tmp_path / "fmnist-conv-kd-t4.scnb").write_bytes(b"")
    assert pre._done(student)


def test_every_shipped_extra_names_its_candidates_among_its_outputs():
    pre = _load("pretrained")
    for name, (cmds, outs, cands) in pre.EXTRAS.items():
        assert len(cmds) == len(outs), name
        assert {stem for stem, _ in cands.values()} <= set(outs), name


def _write(folder: Path, row: str, seed: int, acc: float, teacher=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{row}-s{seed}.json").write_text(json.dumps(
        {"row": row, "seed": seed, "test_accuracy": acc, "val_accuracy": acc, "best_epoch": 1, "command": "x",
         "torch_version": "t", "teacher": teacher}))


def test_the_small_student_table_reports_means_and_paired_gains(tmp_path, monkeypatch):
    small = _load("small_student")
    monkeypatch.setattr(small, "RESULTS", tmp_path)
    for seed, (base, kd) in enumerate([(0.9580, 0.9600), (0.9560, 0.9610), (0.9600, 0.9590)]):
        _write(tmp_path, "scratch-e15", seed, base)
        _write(tmp_path, "average-e15", seed, kd, teacher=0.9842)
    text = small.section()
    assert "(teacher: 98.42 %)" in text
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    # scratch 95.80 / 95.60 / 96.00: mean 95.80, sample std 0.20; KD 96.00 / 96.10 / 95.90: mean 96.00, std 0.10
    assert "95.80 ± 0.20 % | 3 | 95.80, 95.60, 96.00 |" in rows["from scratch, 15 epochs"]
    # paired gains +0.20, +0.50, -0.10: mean +0.20
    assert "96.00 ± 0.10 % | 3 | 96.00, 96.10, 95.90 | +0.20 (paired, n = 3) |" in rows["`average` KD, 15 epochs"]
    assert not any("30 epochs" in r for r in rows)   # rows with nothing recorded are left out


@pytest.mark.parametrize("accs,want", [((0.9072, 0.9107, 0.9055), "90.78 ± 0.27 % | 3 | 90.72, 91.07, 90.55"),
                                       ((0.9941,), "99.41 ± 0.00 % | 1 | 99.41")])
def test_the_conv_table_reports_the_recorded_seeds(tmp_path, monkeypatch, accs, want):
    conv = _load("conv_table")
    monkeypatch.setattr(conv, "RESULTS", tmp_path)
    for seed, acc in enumerate(accs):
        (tmp_path / f"fmnist-conv-t4-s{seed}.json").write_text(json.dumps(
            {"name": "fmnist-conv-t4", "seed": seed, "test_accuracy": acc, "command": f"cmd {seed}"}))
    text = conv.section()
    assert f"| `fmnist-conv-t4` | Fashion-MNIST | {want} | ≥ 91.0 % |" in text
    assert "* `fmnist-conv-t4` seed 0: `cmd 0`" in text and "| `mnist-conv-t4` |" not in text  # none recorded
