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


def test_cli_load_sends_the_weights_and_checks_its_input(tmp_path, capsys):
    import os
    import threading

    from sc_neurocore.hw.boards import LOAD_ACK, board_config, weight_stream
    from sc_neurocore.bundle import load_bundle, pretrained_path

    up5k = load_bundle(pretrained_path("mnist-up5k-t4"))
    n = len(weight_stream(up5k, board_config("icebreaker", up5k)))
    board_fd, host_fd = os.openpty()

    def board():
        got = 0
        while got < n:
            got += len(os.read(board_fd, n - got))
        os.write(board_fd, bytes([LOAD_ACK]))

    t = threading.Thread(target=board)
    t.start()
    try:
        assert main(["board", "--board", "icebreaker", "--pretrained", "mnist-up5k-t4",
                     "--load", os.ttyname(host_fd)]) == 0
    finally:
        t.join()
        os.close(board_fd), os.close(host_fd)
    assert f"loaded {n} bytes of weights into the 1BitSquared iCEBreaker" in capsys.readouterr().out
    # A build whose weights live in the bitstream has nothing to load; a missing port; no -o to build.
    assert main(["board", "--board", "ulx3s", "--pretrained", "mnist-up5k-t4", "--load", "/dev/null"]) == 2
    assert "keeps its weights in the bitstream" in capsys.readouterr().err
    missing = tmp_path / "ttyNONE"
    assert main(["board", "--board", "icebreaker", "--pretrained", "mnist-up5k-t4", "--load", str(missing)]) == 2
    assert "cannot open serial port" in capsys.readouterr().err and not missing.exists()
    assert main(["board", "--board", "icebreaker", "--pretrained", "mnist-up5k-t4"]) == 2
    assert "-o/--output is required" in capsys.readouterr().err


def test_cli_takes_per_layer_lanes_and_events(tmp_path, capsys, monkeypatch):
    """``--lanes 2,3 --events 2,1`` (what ``plan --device`` prints per layer) reach the board's core; bad values
    are refused with exit 2 before anything is written."""
    import sc_neurocore.hw.board as board

    seen = []
    real = board.write_board_verilog

    def spy(b, bundle, out, cfg, **kw):
        seen.append(cfg)
        return real(b, bundle, out, cfg, **kw)

    monkeypatch.setattr(board, "write_board_verilog", spy)
    argv = ["board", "--board", "arty_a7", "--random", "8-4-3", "-T", "2"]
    assert main([*argv, "-o", str(tmp_path / "ok"), "--lanes", "2,3", "--events", "2,1"]) == 0
    assert (seen[0].lanes, seen[0].events) == ((2, 3), (2, 1))
    assert (tmp_path / "ok" / "sc_neurocore_board.v").is_file()
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "bad"), "--lanes", "0"]) == 2
    assert "--lanes must be at least 1, not 0" in capsys.readouterr().err
    assert main([*argv, "-o", str(tmp_path / "bad"), "--events", "3,1"]) == 2
    assert "events[0] must divide pixels_per_beat (8), not 3" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
