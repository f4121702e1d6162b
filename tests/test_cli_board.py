"""The ``board`` subcommand (``sc_neurocore.cli.board``): its outputs and its error exits."""

from __future__ import annotations

from sc_neurocore.cli import main


def test_cli_exits_2_with_clear_message(tmp_path, capsys):
    """`sc-neurocore board` follows the CLI's conventions: `sc-neurocore: error: …`, exit status 2."""
    assert main(["board", "--board", "icebreaker", "--random", "784-128-10", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sc-neurocore: error: 784-128-10 does not fit the 1BitSquared iCEBreaker "
                          "(iCE40UP5K-SG48): weights need 815104 bits")
    assert main(["board", "--board", "de10", "--random", "8-4-3", "-o", str(tmp_path)]) == 2
    assert "error: board must be one of 'ulx3s', 'icebreaker', 'arty_a7', not 'de10'" in capsys.readouterr().err
    assert main(["board", "--board", "ulx3s", "--pretrained", "no-such-net", "-o", str(tmp_path)]) == 2
    assert "unknown pretrained bundle 'no-such-net'" in capsys.readouterr().err


def test_cli_arty_writes_verilog_and_xdc(tmp_path, capsys):
    assert main(["board", "--board", "arty_a7", "--random", "8-4-3", "-T", "2", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "sc_neurocore_board.v").is_file() and (tmp_path / "arty_a7.xdc").is_file()
    assert "wrote" in capsys.readouterr().out
