"""The board top on Icarus or Verilator: weights over the simulated UART, then images, class bytes back.

:func:`run_board_session` generates :class:`~sc_neurocore.hw.board_top.BoardTop` for a bundle
(clocked at ``SIM_CLK_HZ`` with ``SIM_BAUD``, 4 clocks a bit, so a session is short), builds it
with :func:`sc_neurocore.sim.runner.build` and runs :mod:`sc_neurocore.sim.tb_board`, which plays
the host bit by bit.  It returns the board's answers to the weight streams and its class bytes, for
the caller to compare with the golden model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from .runner import TIMESCALE, Core, _runner_environ, build, build_root, cached_core, generator_fingerprint

__all__ = ["BOARD_TOP", "SIM_CLK_HZ", "SIM_BAUD", "generate_board", "run_board_session"]

BOARD_TOP = "sc_neurocore_board_top"
SIM_CLK_HZ, SIM_BAUD = 400_000, 100_000
TEST_MODULE = "sc_neurocore.sim.tb_board"


def generate_board(bundle, config, *, root: Path | None = None) -> Core:
    """The Verilog of ``BoardTop(bundle, config)`` (no idle timeout), cached by content like the cores."""
    from sc_neurocore.bundle import bundle_bytes, save_bundle
    from sc_neurocore.hw.board_top import BoardTop
    from sc_neurocore.hw.tools import convert_verilog

    h = hashlib.sha256(b"board\0" + bundle_bytes(bundle))
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode() + generator_fingerprint().encode())
    def fill(tmp: Path) -> None:
        top = BoardTop(bundle.network, config, SIM_CLK_HZ, SIM_BAUD, n_leds=8, idle_timeout=None)
        (tmp / f"{BOARD_TOP}.v").write_text(convert_verilog(top, name=BOARD_TOP))
        report = {"top": BOARD_TOP, "divisor": top.divisor, "config": config.to_dict()}
        (tmp / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        save_bundle(bundle, tmp / "bundle.scnb")

    return cached_core((root or build_root()) / "boards" / h.hexdigest()[:16], fill)


def run_board_session(bundle, config, images, sim: str, *, streams=(), root: Path | None = None) -> dict:
    """Send ``streams`` (bytes each: weight streams), then ``images``; returns ``{"answers", "classes", ...}``."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    core = generate_board(bundle, config, root=root)
    bdir = build(core, sim, waves=False, root=root)
    cdir = Path(tempfile.mkdtemp(prefix="board-", dir=bdir))
    paths = []
    for i, s in enumerate(streams):
        p = cdir / f"stream{i}.bin"
        p.write_bytes(bytes(s))
        paths.append(str(p))
    np.save(cdir / "images.npy", np.asarray(images, dtype=np.uint8))
    cfg = {"divisor": core.report["divisor"], "streams": paths, "images": str(cdir / "images.npy"),
           "results": str(cdir / "results.json")}
    (cdir / "config.json").write_text(json.dumps(cfg))
    with _runner_environ():
        try:
            get_runner(sim).test(test_module=TEST_MODULE, hdl_toplevel=BOARD_TOP, build_dir=bdir,
                                 hdl_toplevel_lang="verilog", test_dir=cdir,
                                 extra_env={"SCN_SIM_CONFIG": str(cdir / "config.json"),
                                            "COCOTB_LOG_LEVEL": "WARNING"},
                                 results_xml=str(cdir / "results.xml"), log_file=cdir / "sim.log",
                                 timescale=TIMESCALE if sim == "icarus" else None)
        except SystemExit:
            pass
    try:
        tests, failed = get_results(cdir / "results.xml")
    except RuntimeError:
        tests, failed = 0, 1
    res = json.loads((cdir / "results.json").read_text()) if (cdir / "results.json").is_file() else {}
    res.update({"tests": tests, "failed": failed, "case_dir": str(cdir)})
    if failed:
        log = cdir / "sim.log"
        res["log_tail"] = log.read_text()[-3000:] if log.is_file() else ""
    return res
