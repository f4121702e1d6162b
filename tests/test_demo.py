"""`sc-neurocore demo` end to end on a small budget: train, distil, export, Verilog, RTL bit-exact check."""

import json

from sc_neurocore.cli import main


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
